// Which LVs are active on this machine, from the device-mapper uuids in sysfs
// (/sys/block/dm-N/dm/uuid = "LVM-<vg uuid><lv uuid>" without dashes, with a
// "-<layer>" suffix on internal devices). Used to adopt only the locks of
// active LVs, as lvmlockd does through libdevmapper.

import * as fs from 'node:fs';
import * as path from 'node:path';

export type ActiveLvs =
  | { kind: 'dm'; uuids: ReadonlySet<string> }
  /** The kernel has no device-mapper: no LV can be shown inactive. */
  | { kind: 'no-dm' };

export interface DmPaths { sys: string; proc: string }

/**
 * The kernel has device-mapper when its misc device is registered (sysfs
 * class entry, or the /proc/misc list). A /dev/mapper/control node alone
 * proves nothing: it can be left over, or be made for tools, without dm.
 */
export function kernelHasDm(paths: DmPaths): boolean {
  if (fs.existsSync(path.join(paths.sys, 'class/misc/device-mapper'))) return true;
  try {
    return /^\s*\d+\s+device-mapper$/m.test(fs.readFileSync(path.join(paths.proc, 'misc'), 'utf8'));
  } catch {
    return false;
  }
}

export function readActiveLvs(paths: DmPaths = { sys: '/sys', proc: '/proc' }): ActiveLvs {
  if (!kernelHasDm(paths)) return { kind: 'no-dm' };
  const uuids = new Set<string>();
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(paths.sys, 'block')).filter((n) => n.startsWith('dm-'));
  } catch { /* no block devices listed: none active */ }
  for (const n of names) {
    try {
      const u = fs.readFileSync(path.join(paths.sys, 'block', n, 'dm/uuid'), 'utf8').trim();
      if (u.startsWith('LVM-')) uuids.add(u);
    } catch { /* device went away */ }
  }
  return { kind: 'dm', uuids };
}

/** The dm uuid of a top-level LV: "LVM-" + VG uuid + LV uuid, dashes removed. */
export function lvDmUuid(vgUuid: string, lvUuid: string): string {
  return `LVM-${vgUuid.replace(/-/g, '')}${lvUuid.replace(/-/g, '')}`;
}
