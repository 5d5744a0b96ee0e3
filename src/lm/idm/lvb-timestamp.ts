// The IDM value block: drives keep only 7 usable LVB bytes, so lvmlockd
// stores a microsecond UTC timestamp there instead of its val_blk (lvm2 commit
// 7a8b7b4ad). Whoever changes what the lock protects writes a fresh
// timestamp; a host that reads a timestamp other than the one it cached knows
// its cached view is stale. A clock behind the stored value must still move
// the value forward, hence "+1" (lm_idm_update_vb_timestamp).

export const LVB_BYTES = 8;

/** The timestamp to write next, given the one last read or written. */
export function nextTimestamp(previous: bigint, nowUs: bigint): bigint {
  return previous >= nowUs ? previous + 1n : nowUs;
}

/** The 8 bytes ilm_write_lvb carries: the host-endian (little-endian) u64. */
export function encodeTimestamp(ts: bigint): Buffer {
  const b = Buffer.alloc(LVB_BYTES);
  b.writeBigUInt64LE(ts & 0xffff_ffff_ffff_ffffn);
  return b;
}

export function decodeTimestamp(b: Buffer): bigint {
  return b.length >= LVB_BYTES ? b.readBigUInt64LE(0) : 0n;
}
