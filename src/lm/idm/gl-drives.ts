// The drives that carry the IDM global lock (lvm2: lm_idm_get_gl_lock_pv_list):
// every SCSI disk (/sys/bus/scsi/devices/H:C:T:L/block/<name>) with a
// partition named "propeller", as its whole-disk node /dev/<name>. C asks
// libblkid for the partition names; the kernel exposes the same GPT names as
// PARTNAME in each partition's uevent, which is what we read.
//
// Emulated drives are not SCSI disks; for them the composition root adds the
// paths of LVMLOCKD_IDM_GL_DRIVES (our extension).

export interface SysfsReader {
  listDir(path: string): string[] | null;
  readFile(path: string): string | null;
}

const SCSI_DEVICES = '/sys/bus/scsi/devices';

/** null when there is no SCSI bus at all (C: "Attached devices: none", lockspace start fails). */
export function scsiPropellerDrives(sys: SysfsReader): string[] | null {
  const devices = sys.listDir(SCSI_DEVICES);
  if (!devices) return null;
  const out: string[] = [];
  for (const hctl of devices.filter((d) => /^[0-9]+:[0-9]+:[0-9]+:[0-9]+$/.test(d)).sort()) {
    const blocks = sys.listDir(`${SCSI_DEVICES}/${hctl}/block`);
    if (!blocks || blocks.length !== 1) continue;
    const disk = blocks[0]!;
    const parts = (sys.listDir(`/sys/class/block/${disk}`) ?? []).filter((p) => p.startsWith(disk));
    const named = parts.some((p) => /^PARTNAME=propeller$/m.test(sys.readFile(`/sys/class/block/${disk}/${p}/uevent`) ?? ''));
    if (named) out.push(`/dev/${disk}`);
  }
  return out;
}

/** LVMLOCKD_IDM_GL_DRIVES: paths separated by spaces or commas. */
export function extraGlDrives(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter((s) => s.length > 0);
}
