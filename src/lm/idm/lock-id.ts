// IDM lock ids (lvm2: lvmlockd-idm.c, lm_lock_idm and uuid_read_format): 64
// ASCII bytes, the VG UUID without dashes then the LV UUID without dashes.
// The global lock is all zeros; a VG lock has a zero LV half.

import type { ResourceType } from '../../core/constants';

export const LOCK_ID_BYTES = 64;
const HALF = 32;

/** The 32 characters of a UUID with its dashes removed, or null when that is not 32 long. */
export function uuidWithoutDashes(uuid: string): string | null {
  const s = uuid.replace(/-/g, '');
  return s.length === HALF ? s : null;
}

/**
 * The lock id of a resource. C logs a malformed UUID and goes on with what it
 * copied; we refuse it instead (null), since a partial id could name another
 * VG's lock.
 */
export function idmLockId(type: ResourceType, vgUuid: string, lvUuid: string): Buffer | null {
  const id = Buffer.alloc(LOCK_ID_BYTES);
  if (type === 'gl') return id;
  const vg = uuidWithoutDashes(vgUuid);
  if (!vg) return null;
  id.write(vg, 0, 'ascii');
  if (type === 'vg') return id;
  const lv = uuidWithoutDashes(lvUuid);
  if (!lv) return null;
  id.write(lv, HALF, 'ascii');
  return id;
}
