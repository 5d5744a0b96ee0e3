// The IDM value block: drives keep only 7 usable LVB bytes, so lvmlockd
// stores a microsecond UTC timestamp there instead of its val_blk (lvm2 commit
// 7a8b7b4ad). Whoever changes what the lock protects writes a fresh
// timestamp; a host that reads a timestamp other than the one it cached knows
// its cached view is stale. A clock behind the stored value must still move
// the value forward, hence "+1" (lm_idm_update_vb_timestamp).

export const LVB_BYTES = 8;

/**
 * Drives keep 7 of the 8 bytes, so a timestamp is below 2^56. What reads as
 * more is the ILM's "cannot trust" answer (the lock was obtained by breaking
 * another host's mutex): propeller answers all ones; our ILM sets only the
 * last byte and keeps the drives' largest value below it.
 */
export const TIMESTAMP_LIMIT = 1n << 56n;
const ALL_ONES = 0xffff_ffff_ffff_ffffn;

/**
 * The timestamp to write next, given the one last read or written. Whoever
 * writes next must go above every value a drive may still hold: the ILM's
 * read is the largest value of a majority, so a smaller one is never seen
 * there. C adds 1 to propeller's all-ones answer and writes 0 (the u64
 * wraps), below everything (simulator finding 19). From our ILM's answer we
 * count on from the value under the marker; after propeller's all ones the
 * clock is the only base left (a clock behind the last writer's can then
 * still write a smaller value: docs/simulator.md, finding 19).
 */
export function nextTimestamp(previous: bigint, nowUs: bigint): bigint {
  if (previous === ALL_ONES) return nowUs;
  const base = previous >= TIMESTAMP_LIMIT ? previous & (TIMESTAMP_LIMIT - 1n) : previous;
  return base >= nowUs ? base + 1n : nowUs;
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
