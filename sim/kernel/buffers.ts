/**
 * Buffers for the simulated storage: spare buffers handed from one run to
 * the next, and slabs that small buffers are cut from.
 */

/**
 * Buffers of finished runs, by length, for the next run's medium chunks and
 * area buffers (each schedule would otherwise allocate several MiB).
 */
const spare = new Map<number, Buffer[]>();
const SPARE_MAX = 64;
export function takeSpare(len: number): Buffer | undefined {
  return spare.get(len)?.pop();
}
export function giveSpare(buf: Buffer): void {
  let l = spare.get(buf.length);
  if (!l) spare.set(buf.length, (l = []));
  if (l.length < SPARE_MAX) l.push(buf);
}

/**
 * Small buffers (copies of written data, results of sector reads) are cut
 * from slabs: a Buffer of its own costs the garbage collector more than its
 * bytes. Large ones (area init writes) come from the spare buffers.
 */
export const SMALL = 16 * 1024;
let slab = Buffer.allocUnsafeSlow(256 * 1024);
let slabUsed = 0;
export function slabBuffer(len: number): Buffer {
  if (slabUsed + len > slab.length) {
    slab = Buffer.allocUnsafeSlow(256 * 1024);
    slabUsed = 0;
  }
  const b = slab.subarray(slabUsed, slabUsed + len);
  slabUsed += (len + 7) & ~7;
  return b;
}
export function copyOf(data: Buffer): Buffer {
  const b = data.length > SMALL ? takeSpare(data.length) ?? Buffer.allocUnsafe(data.length) : slabBuffer(data.length);
  data.copy(b);
  return b;
}

