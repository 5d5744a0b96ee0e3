// The IDM drive command set's constants and its 512-byte `idm_data` record,
// the same in both directions and for SCSI and NVMe (propeller:
// src/idm_cmd_common.h, src/idm_scsi.c). Pure codec.
//
// Encoding rules: every u64 is big-endian; the lock id, host id and LVB byte
// arrays are reversed end to end (propeller bswaps them on x86). The LVB's
// first reversed byte is then overwritten with the res_ver type, which is why
// only 7 of its 8 bytes reach the drive.

export const RECORD_BYTES = 512;
export const LOCK_ID_BYTES = 64;
export const HOST_ID_BYTES = 32;
export const LVB_BYTES = 8;

/** Mutex opcodes (CDB byte 1 upper nibble; NVMe CDW12 byte 0 upper nibble). */
export const MutexOp = {
  NORMAL: 0, INIT: 1, TRYLOCK: 2, LOCK: 3, UNLOCK: 4, REFRESH: 5, BREAK: 6, DESTROY: 7,
} as const;
export type MutexOpCode = (typeof MutexOp)[keyof typeof MutexOp];
const OP_NAMES = Object.fromEntries(Object.entries(MutexOp).map(([k, v]) => [v, k])) as Record<number, string>;
export function mutexOpName(op: number): string {
  return OP_NAMES[op] ?? `op${op}`;
}

/** Mutex classes; ILM maps EX to EXCLUSIVE and SH to SHARED_PROTECTED_READ. */
export const MutexClass = { EXCLUSIVE: 0, PROTECTED_WRITE: 1, SHARED_PROTECTED_READ: 2 } as const;

/** Mutex groups (CDB byte 14): the default group, or the inquiry counters. */
export const Group = { DEFAULT: 1, INQUIRY: 0xff } as const;

/** res_ver type, byte 0 of resource_ver on writes. */
export const ResVerType = { NO_UPDATE_NO_VALID: 0, UPDATE_NO_VALID: 1, UPDATE_VALID: 2, INVALID: 3 } as const;

/** Entry states reported in read records (the firmware uses the low 32 bits). */
export const EntryState = {
  UNINIT: 0, LOCKED: 0x101, UNLOCKED: 0x102, MULTIPLE_LOCKED: 0x103, TIMEOUT: 0x104, DEAD: 0xdead,
} as const;

/** countdown value meaning "never expires" (ilm_lock timeout -1 as u64). */
export const COUNTDOWN_FOREVER = 0xffff_ffff_ffff_ffffn;

/** A record as the host writes it (one mutex operation). */
export interface WriteRecord {
  timeNowMs: bigint;
  countdownMs: bigint;
  mutexClass: number;
  resVerType: number;
  /** The client's 8 LVB bytes in client order (byte 7 is lost on the drive). */
  lvb: Buffer;
  lockId: Buffer;
  hostId: Buffer;
}

/** A record as the drive returns it (one mutex-table entry). */
export interface ReadRecord {
  state: number;
  modifiedMs: bigint;
  countdownMs: bigint;
  mutexClass: number;
  /** Client-order LVB; byte 7 is whatever the drive returned in resource_ver[0]. */
  lvb: Buffer;
  lockId: Buffer;
  hostId: Buffer;
}

function reversed(b: Buffer): Buffer {
  return Buffer.from(b).reverse();
}

function checkLength(name: string, b: Buffer, n: number): void {
  if (b.length !== n) throw new RangeError(`${name} must be ${n} bytes, got ${b.length}`);
}

export function encodeWriteRecord(r: WriteRecord): Buffer {
  checkLength('lock id', r.lockId, LOCK_ID_BYTES);
  checkLength('host id', r.hostId, HOST_ID_BYTES);
  checkLength('lvb', r.lvb, LVB_BYTES);
  const b = Buffer.alloc(RECORD_BYTES);
  b.writeBigUInt64BE(r.timeNowMs, 8);
  b.writeBigUInt64BE(r.countdownMs, 16);
  b.writeBigUInt64BE(BigInt(r.mutexClass), 24);
  reversed(r.lvb).copy(b, 32);
  b[32] = r.resVerType;
  reversed(r.lockId).copy(b, 64);
  reversed(r.hostId).copy(b, 192);
  return b;
}

export function decodeWriteRecord(b: Buffer, off = 0): WriteRecord {
  const rec = b.subarray(off, off + RECORD_BYTES);
  checkLength('record', rec, RECORD_BYTES);
  return {
    timeNowMs: rec.readBigUInt64BE(8),
    countdownMs: rec.readBigUInt64BE(16),
    mutexClass: Number(rec.readBigUInt64BE(24) & 0xffff_ffffn),
    resVerType: rec[32]!,
    lvb: lvbFromResourceVer(rec.subarray(32, 40)),
    lockId: reversed(rec.subarray(64, 128)),
    hostId: reversed(rec.subarray(192, 224)),
  };
}

/** resource_ver bytes [t, b6 … b0] back to client order [b0 … b6, t]. */
function lvbFromResourceVer(rv: Buffer): Buffer {
  return reversed(rv);
}

export function encodeReadRecord(r: ReadRecord): Buffer {
  checkLength('lock id', r.lockId, LOCK_ID_BYTES);
  checkLength('host id', r.hostId, HOST_ID_BYTES);
  checkLength('lvb', r.lvb, LVB_BYTES);
  const b = Buffer.alloc(RECORD_BYTES);
  b.writeBigUInt64BE(BigInt(r.state), 0);
  b.writeBigUInt64BE(r.modifiedMs, 8);
  b.writeBigUInt64BE(r.countdownMs, 16);
  b.writeBigUInt64BE(BigInt(r.mutexClass), 24);
  reversed(r.lvb).copy(b, 32);
  reversed(r.lockId).copy(b, 64);
  reversed(r.hostId).copy(b, 192);
  return b;
}

export function decodeReadRecord(b: Buffer, off = 0): ReadRecord {
  const rec = b.subarray(off, off + RECORD_BYTES);
  checkLength('record', rec, RECORD_BYTES);
  return {
    state: Number(rec.readBigUInt64BE(0) & 0xffff_ffffn),
    modifiedMs: rec.readBigUInt64BE(8),
    countdownMs: rec.readBigUInt64BE(16),
    mutexClass: Number(rec.readBigUInt64BE(24) & 0xffff_ffffn),
    lvb: lvbFromResourceVer(rec.subarray(32, 40)),
    lockId: reversed(rec.subarray(64, 128)),
    hostId: reversed(rec.subarray(192, 224)),
  };
}

/** A record slot past the last entry of a list read. */
export function deadRecord(): Buffer {
  const b = Buffer.alloc(RECORD_BYTES);
  b.writeBigUInt64BE(BigInt(EntryState.DEAD), 0);
  return b;
}

/** Inquiry reply (group 0xFF): big-endian 16-bit counters, [0:1] = total entries. */
export interface InquiryCounters {
  total: number;
  exclusive: number;
  shared: number;
}

export function encodeInquiry(c: InquiryCounters): Buffer {
  const b = Buffer.alloc(RECORD_BYTES);
  b.writeUInt16BE(Math.min(c.total, 0xffff), 0);
  b.writeUInt16BE(Math.min(c.exclusive, 0xffff), 2);
  b.writeUInt16BE(Math.min(c.shared, 0xffff), 6);
  return b;
}

export function decodeInquiryTotal(b: Buffer): number {
  return b.readUInt16BE(0);
}
