// The layout of a sanlock VG's hidden "lvmlock" LV and the lock_args strings
// that point into it (see sanlock-lm.ts): lease slot numbers, the sector and
// align size for a new VG, "1.0.0:<offset>" parsing, and reading one slot.

import type { Disk } from '../../io/disk';
import * as L from '../../leases';
import { decodeLeader, PAXOS_DISK_MAGIC, DELTA_DISK_MAGIC } from '../../leases/ondisk';

export { GL_LOCK_BEGIN, VG_LOCK_BEGIN, LV_LOCK_BEGIN, LV_UNUSED_NAME as LV_UNUSED } from '../../leases/direct';
export const R_NAME_GL_DISABLED = '_GLLK_disabled';
export const R_NAME_INVALID_REMOVED = 'invalid_removed';
export const ONE_MB = 1024 * 1024;
export const ARGS_VERSION = '1.0.0';
/** The largest sanlock host_id. */
export const MAX_HOST_ID = 2000;

/** lvmlockd's get_sizes_device: sector and align size for a new VG from the device's block sizes. */
export function sizesForDevice(physical: number, logical: number, warn: (s: string) => void): { sectorSize: number; alignSize: number } | null {
  let p = physical, l = logical;
  if (p === 512 && l === 512) return { sectorSize: 512, alignSize: ONE_MB };
  if (p === 4096 && l === 4096) return { sectorSize: 4096, alignSize: 8 * ONE_MB };
  if (p && p !== 512 && p !== 4096) { warn(`WARNING: invalid block sizes physical ${p} logical ${l}`); p = 0; }
  if (l && l !== 512 && l !== 4096) { warn(`WARNING: invalid block sizes physical ${p} logical ${l}`); l = 0; }
  if (!p && !l) return null;
  if (!p || !l) {
    warn(`WARNING: incomplete block size information physical ${p} logical ${l}`);
    if (!p) p = l;
    if (!l) l = p;
  }
  if (l === 4096 || p === 4096) return { sectorSize: 4096, alignSize: 8 * ONE_MB };
  return { sectorSize: 512, alignSize: ONE_MB };
}

/** "1.0.0:<offset>" → offset; null when unusable (bad version or number). */
export function lvOffsetFromArgs(lvArgs: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+):(?:.*:)?(\d+)$/.exec(lvArgs);
  if (!m || Number(m[1]) > 1) return null;
  const n = Number(m[4]);
  return Number.isSafeInteger(n) ? n : null;
}

export function argsMajor(args: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+):/.exec(args);
  return m ? Number(m[1]) : null;
}

export type SlotState = { kind: 'empty' } | { kind: 'lease'; name: string; lockspace: string } | { kind: 'other' };

/** The leader sector of a lease slot, unverified (sanlock_read_resource). */
export async function readSlot(disk: Disk, off: number, sectorSize: number, io: number): Promise<SlotState> {
  let buf: Buffer;
  try {
    buf = await disk.read(off, sectorSize, { timeoutMs: io * 1000, label: 'read_resource' });
  } catch (e) {
    throw new L.LeaseError(L.SANLK.LEADER_READ, `read_resource at ${off}: ${(e as Error).message}`);
  }
  const l = decodeLeader(buf);
  if (l.magic === PAXOS_DISK_MAGIC) return { kind: 'lease', name: L.nameString(l.resourceName), lockspace: L.nameString(l.spaceName) };
  if (l.magic === DELTA_DISK_MAGIC) return { kind: 'other' };
  return { kind: 'empty' };
}
