/**
 * Encoding and decoding of sanlock's on-disk records. This is the only module
 * that reads or writes raw lease bytes. All integers are little-endian.
 *
 * Record layouts (byte offsets):
 *   leader  (200 B): magic@0 version@4 flags@8 sector_size@12 num_hosts@16
 *                    max_hosts@24 owner_id@32 owner_generation@40 lver@48
 *                    space_name@56[48] resource_name@104[48] timestamp@152
 *                    unused1@160 checksum@168 unused2@172 io_timeout@174
 *                    write_id@176 write_generation@184 write_timestamp@192
 *   dblock  (56 B):  mbal@0 bal@8 inp@16 inp2@24 inp3@32 lver@40 checksum@48 flags@52
 *   mode block:      at byte 128 of a dblock sector: flags@0 generation@8
 *   request (24 B):  magic@0 version@4 lver@8 force_mode@16
 *   host bitmap:     bytes 256..511 of a delta-lease sector
 */
import { sanlockChecksum } from './crc32c';
import { LeaseError, SANLK } from './errors';
import { assert } from '../util/assert';

export const DELTA_DISK_MAGIC = 0x12212010;
export const PAXOS_DISK_MAGIC = 0x06152010;
export const PAXOS_DISK_CLEAR = 0x11282016;
export const REQ_DISK_MAGIC = 0x08292011;

export const DELTA_DISK_VERSION = 0x00030004;
export const PAXOS_DISK_VERSION = 0x00060004;
export const REQ_DISK_VERSION = 0x00010001;
export const DELTA_DISK_VERSION_MAJOR = 0x00030000;
export const PAXOS_DISK_VERSION_MAJOR = 0x00060000;
export const REQ_DISK_VERSION_MAJOR = 0x00010000;
export const VERSION_MAJOR_MASK = 0xffff0000;

export const NAME_ID_SIZE = 48;
export const LEADER_RECORD_SIZE = 200;
export const LEADER_RECORD_MAX = 256;
export const LEADER_CHECKSUM_OFFSET = 168;
export const DBLOCK_SIZE = 56;
export const DBLOCK_CHECKSUM_OFFSET = 48;
export const MBLOCK_OFFSET = 128;
export const REQUEST_RECORD_SIZE = 24;
export const HOSTID_BITMAP_OFFSET = 256;
export const HOSTID_BITMAP_SIZE = 256;

/** Sectors before host_id 1's dblock in a resource lease area: the leader (0) and the request record (1). */
export const PAXOS_DBLOCK_FIRST_SECTOR = 2;

/** Byte offset of host_id's delta lease sector in a lockspace area (sector host_id - 1). */
export function deltaSectorOffset(hostId: number, sectorSize: number): number {
  return (hostId - 1) * sectorSize;
}

/** Byte offset of host_id's dblock sector (dblock at 0, mode block at MBLOCK_OFFSET) in a resource lease area. */
export function dblockSectorOffset(hostId: number, sectorSize: number): number {
  return (PAXOS_DBLOCK_FIRST_SECTOR + hostId - 1) * sectorSize;
}

export const DBLOCK_FL_RELEASED = 0x1;
export const MBLOCK_SHARED = 0x1;
export const REQ_FORCE = 1;
export const REQ_GRACEFUL = 2;

export interface LeaderRecord {
  magic: number;
  version: number;
  flags: number;
  sectorSize: number;
  numHosts: number;
  maxHosts: number;
  ownerId: number;
  ownerGeneration: number;
  lver: number;
  /** Raw 48-byte name fields (bytes after a NUL are kept, they are covered by the checksum). */
  spaceName: Buffer;
  resourceName: Buffer;
  timestamp: number;
  unused1: number;
  checksum: number;
  unused2: number;
  /** Only the low byte is meaningful on disk (stored as u16). */
  ioTimeout: number;
  writeId: number;
  writeGeneration: number;
  writeTimestamp: number;
}

export interface PaxosDblock {
  mbal: number;
  bal: number;
  inp: number;
  inp2: number;
  inp3: number;
  lver: number;
  checksum: number;
  flags: number;
}

export interface ModeBlock {
  flags: number;
  generation: number;
}

export interface RequestRecord {
  magic: number;
  version: number;
  lver: number;
  forceMode: number;
}

// ---- small buffers -------------------------------------------------------

const SLAB_SIZE = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabUsed = 0;

/**
 * A zero-filled buffer of n bytes, like Buffer.alloc(n). Small ones are cut
 * from a shared slab: Buffer.alloc gives each buffer its own ArrayBuffer,
 * which for records and sectors costs the garbage collector far more than
 * their bytes (renewals and ballots build several per operation).
 */
export function zeroBuffer(n: number): Buffer {
  if (n > 16 * 1024) return Buffer.alloc(n);
  if (slabUsed + n > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabUsed = 0;
  }
  const b = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += (n + 7) & ~7;
  return b.fill(0);
}

// ---- names -------------------------------------------------------------

/** 48-byte zero-padded field from a string (strncpy semantics: no NUL when exactly 48 bytes). */
export function nameField(name: string): Buffer {
  const b = zeroBuffer(NAME_ID_SIZE);
  const src = Buffer.from(name, 'utf8');
  if (src.length > NAME_ID_SIZE) throw new RangeError(`name "${name}" is longer than ${NAME_ID_SIZE} bytes`);
  src.copy(b);
  return b;
}

/** The string in a name field: up to the first NUL or 48 bytes. */
export function nameString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? NAME_ID_SIZE : end).toString('utf8');
}

/** strncmp(a, b, 48) == 0 */
export function namesEqual(a: Buffer, b: Buffer): boolean {
  for (let i = 0; i < NAME_ID_SIZE; i++) {
    if (a[i] !== b[i]) return false;
    if (a[i] === 0) return true;
  }
  return true;
}

/**
 * snprintf(field, 48, "%s", name): copies at most 47 bytes plus a NUL and
 * leaves the bytes after the NUL unchanged. Returns a new buffer.
 */
export function snprintfName(old: Buffer, name: string): Buffer {
  const out = Buffer.from(old);
  const src = Buffer.from(name, 'utf8').subarray(0, NAME_ID_SIZE - 1);
  src.copy(out);
  out[src.length] = 0;
  return out;
}

// ---- field ranges ----------------------------------------------------------

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function isU16(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

function isU64(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

const LEADER_U32_FIELDS = ['magic', 'version', 'flags', 'sectorSize', 'checksum'] as const;
const LEADER_U16_FIELDS = ['unused2', 'ioTimeout'] as const;
const LEADER_U64_FIELDS = [
  'numHosts', 'maxHosts', 'ownerId', 'ownerGeneration', 'lver',
  'timestamp', 'unused1', 'writeId', 'writeGeneration', 'writeTimestamp',
] as const;

/**
 * The first leader field whose value its on-disk width cannot hold, or
 * undefined. `wide` includes the 64-bit fields (writeU64 checks those itself
 * on encode, with a RangeError callers rely on).
 */
function leaderFieldOutOfRange(rec: LeaderRecord, wide: boolean): string | undefined {
  // Plain comparisons first: this runs on every leader encoded and decoded.
  const fits =
    isU32(rec.magic) && isU32(rec.version) && isU32(rec.flags) && isU32(rec.sectorSize) && isU32(rec.checksum) &&
    isU16(rec.unused2) && isU16(rec.ioTimeout) &&
    rec.spaceName.length <= NAME_ID_SIZE && rec.resourceName.length <= NAME_ID_SIZE &&
    (!wide ||
      (isU64(rec.numHosts) && isU64(rec.maxHosts) && isU64(rec.ownerId) && isU64(rec.ownerGeneration) &&
        isU64(rec.lver) && isU64(rec.timestamp) && isU64(rec.unused1) && isU64(rec.writeId) &&
        isU64(rec.writeGeneration) && isU64(rec.writeTimestamp)));
  if (fits) return undefined;
  for (const k of LEADER_U32_FIELDS) if (!isU32(rec[k])) return `${k} ${rec[k]}`;
  for (const k of LEADER_U16_FIELDS) if (!isU16(rec[k])) return `${k} ${rec[k]}`;
  if (wide) for (const k of LEADER_U64_FIELDS) if (!isU64(rec[k])) return `${k} ${rec[k]}`;
  return 'a name field longer than 48 bytes';
}

// ---- u64 helpers ---------------------------------------------------------

export function readU64(b: Buffer, off: number): number {
  const lo = b.readUInt32LE(off);
  const hi = b.readUInt32LE(off + 4);
  if (hi > 0x1fffff) {
    throw new LeaseError(SANLK.ERROR, `on-disk 64-bit value ${b.readBigUInt64LE(off)} at byte ${off} is out of range`);
  }
  return hi * 0x100000000 + lo;
}

function writeU64(b: Buffer, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`64-bit field value ${v} out of range`);
  b.writeUInt32LE(v % 0x100000000, off);
  b.writeUInt32LE(Math.floor(v / 0x100000000), off + 4);
}

const ZERO_DBLOCK = Buffer.alloc(56);

/**
 * A 32-bit word view of `buf` for fast scans of whole lease areas (thousands
 * of records per read), or undefined when buf is not 4-byte aligned.
 */
export function wordsOf(buf: Buffer): Int32Array | undefined {
  if ((buf.byteOffset & 3) !== 0 || (buf.length & 3) !== 0) return undefined;
  return new Int32Array(buf.buffer, buf.byteOffset, buf.length >> 2);
}

/**
 * True when the 56 dblock bytes at `off` are all zero (never written).
 * `words` (wordsOf(buf)) makes it a few word loads instead of a native call.
 */
export function dblockIsZero(buf: Buffer, off = 0, words?: Int32Array): boolean {
  if (words && (off & 3) === 0 && off + 56 <= buf.length) {
    const w = off >> 2;
    return (
      (words[w]! | words[w + 1]! | words[w + 2]! | words[w + 3]! | words[w + 4]! | words[w + 5]! | words[w + 6]! |
        words[w + 7]! | words[w + 8]! | words[w + 9]! | words[w + 10]! | words[w + 11]! | words[w + 12]! | words[w + 13]!) ===
      0
    );
  }
  return buf.compare(ZERO_DBLOCK, 0, 56, off, off + 56) === 0;
}

// ---- leader ----------------------------------------------------------------

export function emptyLeader(): LeaderRecord {
  return {
    magic: 0,
    version: 0,
    flags: 0,
    sectorSize: 0,
    numHosts: 0,
    maxHosts: 0,
    ownerId: 0,
    ownerGeneration: 0,
    lver: 0,
    spaceName: zeroBuffer(NAME_ID_SIZE),
    resourceName: zeroBuffer(NAME_ID_SIZE),
    timestamp: 0,
    unused1: 0,
    checksum: 0,
    unused2: 0,
    ioTimeout: 0,
    writeId: 0,
    writeGeneration: 0,
    writeTimestamp: 0,
  };
}

export function cloneLeader(l: LeaderRecord): LeaderRecord {
  return { ...l, spaceName: Buffer.from(l.spaceName), resourceName: Buffer.from(l.resourceName) };
}

export function decodeLeader(buf: Buffer, off = 0): LeaderRecord {
  if (buf.length < off + LEADER_RECORD_SIZE) {
    throw new LeaseError(SANLK.LEADER_READ, `leader record needs ${LEADER_RECORD_SIZE} bytes, have ${buf.length - off}`);
  }
  const b = buf.subarray(off, off + LEADER_RECORD_SIZE);
  const rec: LeaderRecord = {
    magic: b.readUInt32LE(0),
    version: b.readUInt32LE(4),
    flags: b.readUInt32LE(8),
    sectorSize: b.readUInt32LE(12),
    numHosts: readU64(b, 16),
    maxHosts: readU64(b, 24),
    ownerId: readU64(b, 32),
    ownerGeneration: readU64(b, 40),
    lver: readU64(b, 48),
    spaceName: Buffer.from(b.subarray(56, 104)),
    resourceName: Buffer.from(b.subarray(104, 152)),
    timestamp: readU64(b, 152),
    unused1: readU64(b, 160),
    checksum: b.readUInt32LE(168),
    unused2: b.readUInt16LE(172),
    ioTimeout: b.readUInt16LE(174),
    writeId: readU64(b, 176),
    writeGeneration: readU64(b, 184),
    writeTimestamp: readU64(b, 192),
  };
  const bad = leaderFieldOutOfRange(rec, true);
  assert(bad === undefined, () => `decoded leader has ${bad}`);
  return rec;
}

/** Encode without touching the checksum field's value (writes rec.checksum). */
export function encodeLeaderRaw(rec: LeaderRecord): Buffer {
  // The 32- and 16-bit fields would otherwise be cut to their width without a word.
  const bad = leaderFieldOutOfRange(rec, false);
  assert(bad === undefined, () => `leader to encode has ${bad}`);
  const b = zeroBuffer(LEADER_RECORD_SIZE);
  b.writeUInt32LE(rec.magic >>> 0, 0);
  b.writeUInt32LE(rec.version >>> 0, 4);
  b.writeUInt32LE(rec.flags >>> 0, 8);
  b.writeUInt32LE(rec.sectorSize >>> 0, 12);
  writeU64(b, 16, rec.numHosts);
  writeU64(b, 24, rec.maxHosts);
  writeU64(b, 32, rec.ownerId);
  writeU64(b, 40, rec.ownerGeneration);
  writeU64(b, 48, rec.lver);
  rec.spaceName.copy(b, 56, 0, NAME_ID_SIZE);
  rec.resourceName.copy(b, 104, 0, NAME_ID_SIZE);
  writeU64(b, 152, rec.timestamp);
  writeU64(b, 160, rec.unused1);
  b.writeUInt32LE(rec.checksum >>> 0, 168);
  b.writeUInt16LE(rec.unused2 & 0xffff, 172);
  b.writeUInt16LE(rec.ioTimeout & 0xffff, 174);
  writeU64(b, 176, rec.writeId);
  writeU64(b, 184, rec.writeGeneration);
  writeU64(b, 192, rec.writeTimestamp);
  return b;
}

/** Checksum of an encoded leader (bytes 0..167). */
export function leaderChecksum(encoded: Buffer): number {
  return sanlockChecksum(encoded, 0, LEADER_CHECKSUM_OFFSET);
}

/** Encode with a freshly computed checksum; also stores it in rec.checksum. */
export function encodeLeader(rec: LeaderRecord): Buffer {
  const b = encodeLeaderRaw(rec);
  const sum = leaderChecksum(b);
  b.writeUInt32LE(sum, LEADER_CHECKSUM_OFFSET);
  rec.checksum = sum;
  return b;
}

/** The 48 bytes encodeLeaderRaw stores for a name field are equal (missing bytes encode as 0). */
function nameBytesEqual(a: Buffer, b: Buffer): boolean {
  if (a === b) return true;
  for (let i = 0; i < NAME_ID_SIZE; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return false;
  return true;
}

/**
 * Byte-level equality of two decoded records (sanlock's memcmp of the
 * struct): equal exactly when encodeLeaderRaw(a) equals encodeLeaderRaw(b),
 * compared field by field in the stored width without encoding either.
 */
export function leadersEqual(a: LeaderRecord, b: LeaderRecord): boolean {
  for (const l of [a, b]) {
    for (const v of [l.numHosts, l.maxHosts, l.ownerId, l.ownerGeneration, l.lver, l.timestamp, l.unused1, l.writeId, l.writeGeneration, l.writeTimestamp]) {
      if (!Number.isSafeInteger(v) || v < 0) return encodeLeaderRaw(a).equals(encodeLeaderRaw(b)); // throws as before
    }
  }
  return (
    a.magic >>> 0 === b.magic >>> 0 &&
    a.version >>> 0 === b.version >>> 0 &&
    a.flags >>> 0 === b.flags >>> 0 &&
    a.sectorSize >>> 0 === b.sectorSize >>> 0 &&
    a.numHosts === b.numHosts &&
    a.maxHosts === b.maxHosts &&
    a.ownerId === b.ownerId &&
    a.ownerGeneration === b.ownerGeneration &&
    a.lver === b.lver &&
    a.timestamp === b.timestamp &&
    a.unused1 === b.unused1 &&
    a.checksum >>> 0 === b.checksum >>> 0 &&
    (a.unused2 & 0xffff) === (b.unused2 & 0xffff) &&
    (a.ioTimeout & 0xffff) === (b.ioTimeout & 0xffff) &&
    a.writeId === b.writeId &&
    a.writeGeneration === b.writeGeneration &&
    a.writeTimestamp === b.writeTimestamp &&
    nameBytesEqual(a.spaceName, b.spaceName) &&
    nameBytesEqual(a.resourceName, b.resourceName)
  );
}

// ---- dblock / mode block ---------------------------------------------------

export function decodeDblock(buf: Buffer, off = 0): PaxosDblock {
  const d: PaxosDblock = {
    mbal: readU64(buf, off),
    bal: readU64(buf, off + 8),
    inp: readU64(buf, off + 16),
    inp2: readU64(buf, off + 24),
    inp3: readU64(buf, off + 32),
    lver: readU64(buf, off + 40),
    checksum: buf.readUInt32LE(off + 48),
    flags: buf.readUInt32LE(off + 52),
  };
  assert(isU64(d.mbal) && isU64(d.bal) && isU64(d.inp) && isU64(d.inp2) && isU64(d.inp3) && isU64(d.lver), 'decoded dblock has a 64-bit field out of range');
  assert(isU32(d.checksum) && isU32(d.flags), 'decoded dblock has a 32-bit field out of range');
  return d;
}

/** Encode a dblock with a fresh checksum (stored into d.checksum too). */
export function encodeDblock(d: PaxosDblock): Buffer {
  assert(isU32(d.flags), () => `dblock to encode has flags ${d.flags}`);
  const b = zeroBuffer(DBLOCK_SIZE);
  writeU64(b, 0, d.mbal);
  writeU64(b, 8, d.bal);
  writeU64(b, 16, d.inp);
  writeU64(b, 24, d.inp2);
  writeU64(b, 32, d.inp3);
  writeU64(b, 40, d.lver);
  const sum = sanlockChecksum(b, 0, DBLOCK_CHECKSUM_OFFSET);
  b.writeUInt32LE(sum, 48);
  b.writeUInt32LE(d.flags >>> 0, 52);
  d.checksum = sum;
  return b;
}

export function dblockChecksumOf(buf: Buffer, off = 0): number {
  return sanlockChecksum(buf, off, off + DBLOCK_CHECKSUM_OFFSET);
}

/** sanlock's verify_dblock: an all-zero (never written) dblock is valid; otherwise the CRC must match. */
export function dblockValid(buf: Buffer, off = 0): boolean {
  if (dblockIsZero(buf, off)) return true;
  const d = decodeDblock(buf, off);
  if (!d.checksum && !d.mbal && !d.bal && !d.inp && !d.lver) return true;
  return dblockChecksumOf(buf, off) === d.checksum;
}

export function decodeModeBlock(buf: Buffer, off = MBLOCK_OFFSET): ModeBlock {
  return { flags: buf.readUInt32LE(off), generation: readU64(buf, off + 8) };
}

function encodeModeBlockInto(b: Buffer, m: ModeBlock): void {
  assert(isU32(m.flags), () => `mode block to encode has flags ${m.flags}`);
  b.writeUInt32LE(m.flags >>> 0, MBLOCK_OFFSET);
  b.writeUInt32LE(0, MBLOCK_OFFSET + 4);
  writeU64(b, MBLOCK_OFFSET + 8, m.generation);
}

// ---- request record --------------------------------------------------------

export function decodeRequest(buf: Buffer, off = 0): RequestRecord {
  return {
    magic: buf.readUInt32LE(off),
    version: buf.readUInt32LE(off + 4),
    lver: readU64(buf, off + 8),
    forceMode: buf.readUInt32LE(off + 16),
  };
}

export function encodeRequest(r: RequestRecord): Buffer {
  assert(isU32(r.magic) && isU32(r.version) && isU32(r.forceMode), () => `request record to encode has magic ${r.magic} version ${r.version} force_mode ${r.forceMode}`);
  const b = zeroBuffer(REQUEST_RECORD_SIZE);
  b.writeUInt32LE(r.magic >>> 0, 0);
  b.writeUInt32LE(r.version >>> 0, 4);
  writeU64(b, 8, r.lver);
  b.writeUInt32LE(r.forceMode >>> 0, 16);
  return b;
}

// ---- whole sectors ---------------------------------------------------------

/** A whole sector holding a leader (checksum recomputed) and optionally a host bitmap at byte 256. */
export function leaderSector(rec: LeaderRecord, sectorSize: number, bitmap?: Buffer): Buffer {
  const s = zeroBuffer(sectorSize);
  encodeLeader(rec).copy(s, 0);
  if (bitmap) bitmap.copy(s, HOSTID_BITMAP_OFFSET, 0, Math.min(HOSTID_BITMAP_SIZE, bitmap.length));
  return s;
}

/** A whole dblock sector; the mode block is zero unless given. */
export function dblockSector(d: PaxosDblock, sectorSize: number, mode?: ModeBlock): Buffer {
  const s = zeroBuffer(sectorSize);
  encodeDblock(d).copy(s, 0);
  if (mode) encodeModeBlockInto(s, mode);
  return s;
}

/** A dblock sector where either part may be absent (absent = zero). */
export function hostBlockSector(sectorSize: number, d?: PaxosDblock, mode?: ModeBlock): Buffer {
  const s = zeroBuffer(sectorSize);
  if (d) encodeDblock(d).copy(s, 0);
  if (mode) encodeModeBlockInto(s, mode);
  return s;
}

export function requestSector(r: RequestRecord, sectorSize: number): Buffer {
  const s = zeroBuffer(sectorSize);
  encodeRequest(r).copy(s, 0);
  return s;
}

// ---- host bitmap -----------------------------------------------------------

export function testIdBit(bitmap: Buffer, hostId: number): boolean {
  const i = hostId - 1;
  return ((bitmap[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

export function setIdBit(bitmap: Buffer, hostId: number): void {
  const i = hostId - 1;
  bitmap[i >> 3] = (bitmap[i >> 3] ?? 0) | (1 << (i & 7));
}

export function clearIdBit(bitmap: Buffer, hostId: number): void {
  const i = hostId - 1;
  bitmap[i >> 3] = (bitmap[i >> 3] ?? 0) & ~(1 << (i & 7));
}

// ---- verification ------------------------------------------------------------

function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16);
}

/** Checks sanlock's delta_lease verify_leader does, in the same order. `raw` is the encoded record as read. */
export function verifyDeltaLeader(rec: LeaderRecord, raw: Buffer, spaceName: Buffer | undefined, where: string): void {
  if (rec.magic !== DELTA_DISK_MAGIC) {
    throw new LeaseError(SANLK.LEADER_MAGIC, `${where}: not a lockspace (delta lease) leader: magic ${hex(rec.magic)}, expected ${hex(DELTA_DISK_MAGIC)}`);
  }
  if ((rec.version & VERSION_MAJOR_MASK) >>> 0 !== DELTA_DISK_VERSION_MAJOR) {
    throw new LeaseError(SANLK.LEADER_VERSION, `${where}: unsupported delta lease version ${hex(rec.version)}`);
  }
  if (spaceName && !namesEqual(rec.spaceName, spaceName)) {
    throw new LeaseError(
      SANLK.LEADER_LOCKSPACE,
      `${where}: lockspace name "${nameString(rec.spaceName)}" on disk, expected "${nameString(spaceName)}"`,
    );
  }
  const sum = leaderChecksum(raw);
  if (sum !== rec.checksum) {
    throw new LeaseError(SANLK.LEADER_CHECKSUM, `${where}: leader checksum ${hex(rec.checksum)} on disk, computed ${hex(sum)}`);
  }
}

/** Checks sanlock's paxos _verify_leader does, in the same order. */
export function verifyPaxosLeader(
  rec: LeaderRecord,
  raw: Buffer,
  spaceName: Buffer | undefined,
  resourceName: Buffer | undefined,
  hostId: number,
  where: string,
): void {
  if (rec.magic === PAXOS_DISK_CLEAR) {
    throw new LeaseError(SANLK.LEADER_MAGIC, `${where}: resource lease was cleared (magic ${hex(rec.magic)})`);
  }
  if (rec.magic !== PAXOS_DISK_MAGIC) {
    throw new LeaseError(SANLK.LEADER_MAGIC, `${where}: not a resource (paxos) leader: magic ${hex(rec.magic)}, expected ${hex(PAXOS_DISK_MAGIC)}`);
  }
  if ((rec.version & VERSION_MAJOR_MASK) >>> 0 !== PAXOS_DISK_VERSION_MAJOR) {
    throw new LeaseError(SANLK.LEADER_VERSION, `${where}: unsupported paxos lease version ${hex(rec.version)}`);
  }
  if (spaceName && !namesEqual(rec.spaceName, spaceName)) {
    throw new LeaseError(
      SANLK.LEADER_LOCKSPACE,
      `${where}: lockspace name "${nameString(rec.spaceName)}" on disk, expected "${nameString(spaceName)}"`,
    );
  }
  if (resourceName && !namesEqual(rec.resourceName, resourceName)) {
    throw new LeaseError(
      SANLK.LEADER_RESOURCE,
      `${where}: resource name "${nameString(rec.resourceName)}" on disk, expected "${nameString(resourceName)}"`,
    );
  }
  if (rec.numHosts < hostId) {
    throw new LeaseError(SANLK.LEADER_NUMHOSTS, `${where}: host_id ${hostId} is above num_hosts ${rec.numHosts}`);
  }
  const sum = leaderChecksum(raw);
  if (sum !== rec.checksum) {
    throw new LeaseError(SANLK.LEADER_CHECKSUM, `${where}: leader checksum ${hex(rec.checksum)} on disk, computed ${hex(sum)}`);
  }
}
