// Names lvm derives from VG and LV names, used by more than one lock manager.

/** device-mapper name of an LV: dashes in VG and LV names are doubled. */
export function dmName(vgName: string, lvName: string): string {
  return `${vgName.replace(/-/g, '--')}-${lvName.replace(/-/g, '--')}`;
}

/** sanlock VG lock_args `1.0.0:lvmlock` → `lvmlock` (the LV holding the leases); null when unusable. */
export function lockLvName(vgArgs: string): string | null {
  const m = /^(\d+)\.(\d+)\.(\d+):([^:]+)/.exec(vgArgs);
  if (!m) return null;
  if (Number(m[1]) > 2) return null;
  return m[4]!;
}
