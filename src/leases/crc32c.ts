/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven.
 *
 * sanlock seeds it with 0xFFFFFFFE (~1) and applies no final XOR; see
 * `sanlockChecksum`. `crc32c` is the raw update step so the standard
 * (iSCSI) variant can be built from it as well.
 */
const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Raw CRC update: no pre/post inversion. */
export function crc32c(seed: number, data: Uint8Array, start = 0, end = data.length): number {
  let crc = seed >>> 0;
  for (let i = start; i < end; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

/** The checksum sanlock stores in leader records and dblocks. */
export function sanlockChecksum(data: Uint8Array, start = 0, end = data.length): number {
  return crc32c(0xfffffffe, data, start, end);
}

/** Standard CRC-32C (init ~0, final xor ~0), for test vectors. */
export function standardCrc32c(data: Uint8Array): number {
  return (crc32c(0xffffffff, data) ^ 0xffffffff) >>> 0;
}
