// SCSI encoding of the IDM commands (propeller: src/idm_scsi.c): the 16-byte
// 0xF0 write and read CDBs, the version INQUIRY, the sense data the firmware
// returns and how the ILM turns status + sense into an errno. Pure codec,
// shared by the ILM's drive layer and the emulated drive's SCSI target.

import { E } from '../core/constants';
import { MutexOp, RECORD_BYTES, Group } from './record';

export const IDM_SCSI_OPCODE = 0xf0;
export const CDB_BYTES = 16;
/** Sense buffer the ILM hands to SG_IO. */
export const SENSE_BYTES_MAX = 64;
/** SG_IO timeout propeller uses for every IDM command. */
export const SCSI_TIMEOUT_MS = 15000;

/** SCSI status bytes (SAM), as the target sends them; SG_IO's masked_status is status >> 1. */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  COMMAND_TERMINATED: 0x22,
} as const;

/** Write CDB: opcode in the upper nibble of byte 1, 512 bytes (as 00 00 02 00), group 1. */
export function writeCdb(mutexOp: number): Buffer {
  const cdb = Buffer.alloc(CDB_BYTES);
  cdb[0] = IDM_SCSI_OPCODE;
  cdb[1] = (mutexOp & 0x0f) << 4;
  cdb.writeUInt32BE(RECORD_BYTES, 10);
  cdb[14] = Group.DEFAULT;
  return cdb;
}

/** Read CDB: byte 1 = 0x01, number of 512-byte records big-endian in 10..13, group in 14. */
export function readCdb(group: number, records: number): Buffer {
  const cdb = Buffer.alloc(CDB_BYTES);
  cdb[0] = IDM_SCSI_OPCODE;
  cdb[1] = 0x01;
  cdb.writeUInt32BE(records >>> 0, 10);
  cdb[14] = group & 0xff;
  return cdb;
}

/** Standard INQUIRY for VPD page 0xC3 (allocation 0x70); the IDM major version is byte 96. */
export function versionInquiryCdb(): Buffer {
  return Buffer.from([0x12, 0x01, 0xc3, 0x00, 0x70, 0x00]);
}
export const VERSION_INQUIRY_BYTES = 0x70;
export const VERSION_MAJOR_OFFSET = 96;

/** INQUIRY for the device identification VPD page (0x83): where a drive's WWN lives. */
export function deviceIdInquiryCdb(): Buffer {
  return Buffer.from([0x12, 0x01, 0x83, 0x00, 0x40, 0x00]);
}
export const DEVICE_ID_INQUIRY_BYTES = 0x40;

/** The device identification VPD page (0x83) a target answers: one NAA designator (binary, LU, 8 bytes) of `wwn` (hex digits). */
export function deviceIdPage(wwn: string): Buffer {
  const data = Buffer.alloc(4 + 4 + 8);
  data[1] = 0x83;
  data.writeUInt16BE(12, 2);
  data[4] = 0x01;
  data[5] = 0x03;
  data[7] = 8;
  Buffer.from(wwn.padStart(16, '0').slice(-16), 'hex').copy(data, 8);
  return data;
}

export type DecodedCdb =
  | { kind: 'mutex-write'; mutexOp: number; transferBytes: number; group: number }
  | { kind: 'mutex-read'; group: number; records: number }
  | { kind: 'inquiry'; evpd: boolean; page: number; allocation: number }
  | { kind: 'unknown'; opcode: number };

/**
 * What a target makes of a CDB. Write and read share opcode 0xF0; the data
 * direction tells them apart (propeller relies on that), so the caller says it.
 */
export function decodeCdb(cdb: Buffer, dataOut: boolean): DecodedCdb {
  const opcode = cdb[0] ?? -1;
  if (opcode === IDM_SCSI_OPCODE && cdb.length >= CDB_BYTES) {
    if (dataOut) return { kind: 'mutex-write', mutexOp: cdb[1]! >> 4, transferBytes: cdb.readUInt32BE(10), group: cdb[14]! };
    return { kind: 'mutex-read', group: cdb[14]!, records: cdb.readUInt32BE(10) };
  }
  if (opcode === 0x12 && cdb.length >= 6) {
    return { kind: 'inquiry', evpd: (cdb[1]! & 1) === 1, page: cdb[2]!, allocation: cdb.readUInt16BE(3) };
  }
  return { kind: 'unknown', opcode };
}

// ------------------------------------------------------------------ sense
// The exact sense bytes propeller compares against (memcmp over the whole
// array), descriptor format (0x72) first, then fixed format (0x70).

const DESCRIPTOR_TAIL = [0x03, 0x02, 0x00, 0x01, 0x80, 0x0e, 0x00, 0x00];

function descriptor(key: number, asc: number, additional: number, body: number[], total: number): Buffer {
  const b = Buffer.alloc(total);
  Buffer.from([0x72, key, asc, 0x00, 0x00, 0x00, 0x00, additional, ...body]).copy(b);
  return b;
}

function fixed(key: number, asc: number): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x70;
  b[2] = key;
  b[7] = 0x0a;
  b[12] = asc;
  b[14] = 0x01;
  return b;
}

export type SenseKind = 'invalid-opcode' | 'lba-out-of-range' | 'mutex-list-full' | 'host-list-full' | 'mutex-host-list-full';

export const SENSE_DESCRIPTOR: Record<SenseKind, Buffer> = {
  'invalid-opcode': descriptor(0x05, 0x20, 0x1c, [0x02, 0x06, 0x00, 0x00, 0xcf, 0x00, 0x00, 0x00, ...DESCRIPTOR_TAIL], 32),
  'lba-out-of-range': descriptor(0x05, 0x21, 0x14, DESCRIPTOR_TAIL, 28),
  'mutex-list-full': descriptor(0x07, 0x40, 0x14, DESCRIPTOR_TAIL, 16),
  'host-list-full': descriptor(0x07, 0x41, 0x14, DESCRIPTOR_TAIL, 16),
  'mutex-host-list-full': descriptor(0x07, 0x42, 0x14, DESCRIPTOR_TAIL, 16),
};

export const SENSE_FIXED: Record<SenseKind, Buffer> = {
  'invalid-opcode': fixed(0x07, 0x31),
  'lba-out-of-range': fixed(0x05, 0x21),
  'mutex-list-full': fixed(0x07, 0x40),
  'host-list-full': fixed(0x07, 0x41),
  'mutex-host-list-full': fixed(0x07, 0x42),
};

const SENSE_ERRNO: Record<SenseKind, number> = {
  'invalid-opcode': -E.INVAL,
  'lba-out-of-range': -E.NOENT,
  'mutex-list-full': -E.NOMEM,
  'host-list-full': -E.NOMEM,
  'mutex-host-list-full': -E.NOMEM,
};

function startsWith(sense: Buffer, pattern: Buffer): boolean {
  return sense.length >= pattern.length && sense.subarray(0, pattern.length).equals(pattern);
}

/**
 * The errno propeller's _scsi_sg_io/_scsi_read derive from a completed
 * command: status first, then the exact sense bytes, then the mutex opcode
 * for the statuses whose meaning depends on it. For reads the "opcode" is CDB
 * byte 1 (0x01), which never matches REFRESH or UNLOCK.
 */
export function scsiErrno(status: number, sense: Buffer, mutexOp: number): number {
  switch (status) {
    case ScsiStatus.GOOD:
      return 0;
    case ScsiStatus.CHECK_CONDITION:
      for (const kind of Object.keys(SENSE_DESCRIPTOR) as SenseKind[]) {
        if (startsWith(sense, SENSE_DESCRIPTOR[kind]) || startsWith(sense, SENSE_FIXED[kind])) return SENSE_ERRNO[kind];
      }
      return -E.INVAL;
    case ScsiStatus.RESERVATION_CONFLICT:
      return mutexOp === MutexOp.REFRESH ? -E.TIME : mutexOp === MutexOp.UNLOCK ? -E.NOENT : -E.BUSY;
    case ScsiStatus.BUSY:
      return -E.BUSY;
    case ScsiStatus.COMMAND_TERMINATED:
      return mutexOp === MutexOp.REFRESH ? -E.PERM : mutexOp === MutexOp.UNLOCK ? -E.INVAL : -E.AGAIN;
    default:
      return -E.INVAL;
  }
}
