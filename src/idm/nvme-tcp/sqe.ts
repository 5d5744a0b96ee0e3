// Submission queue entries (64 bytes, NVMe base spec) and status codes the
// target answers with. Fabrics commands (opcode 0x7F) carry their type in
// byte 4 and their own fields (Connect, Property Get/Set).

export interface Sqe {
  opcode: number;
  flags: number;
  cid: number;
  nsid: number;
  /** SGL descriptor of the data pointer: address, length, type byte (type << 4 | subtype). */
  sglAddr: bigint;
  sglLength: number;
  sglType: number;
  cdw10: number;
  cdw11: number;
  cdw12: number;
  cdw13: number;
  cdw14: number;
  cdw15: number;
  raw: Buffer;
}

export function parseSqe(b: Buffer): Sqe {
  return {
    opcode: b[0]!, flags: b[1]!, cid: b.readUInt16LE(2), nsid: b.readUInt32LE(4),
    sglAddr: b.readBigUInt64LE(24), sglLength: b.readUInt32LE(32), sglType: b[39]!,
    cdw10: b.readUInt32LE(40), cdw11: b.readUInt32LE(44), cdw12: b.readUInt32LE(48),
    cdw13: b.readUInt32LE(52), cdw14: b.readUInt32LE(56), cdw15: b.readUInt32LE(60), raw: b,
  };
}

export interface SqeFields {
  opcode: number; cid: number; nsid?: number; fctype?: number;
  cdw10?: number; cdw11?: number; cdw12?: number; cdw13?: number; cdw14?: number; cdw15?: number;
  /** Data length; with inline data the SGL says "offset 0 in this capsule", else "transport, host data". */
  dataBytes?: number; inline?: boolean;
}

/** An SQE as the Linux host builds it (SGL data descriptor, PSDT = SGL). */
export function encodeSqe(f: SqeFields): Buffer {
  const b = Buffer.alloc(64);
  b[0] = f.opcode;
  b[1] = 0x40; // PSDT: SGL for the data
  b.writeUInt16LE(f.cid, 2);
  b.writeUInt32LE((f.nsid ?? 0) >>> 0, 4);
  if (f.fctype !== undefined) b[4] = f.fctype;
  b.writeUInt32LE((f.dataBytes ?? 0) >>> 0, 32);
  b[39] = f.inline ? SglType.DATA_OFFSET : SglType.TRANSPORT;
  b.writeUInt32LE((f.cdw10 ?? 0) >>> 0, 40);
  b.writeUInt32LE((f.cdw11 ?? 0) >>> 0, 44);
  b.writeUInt32LE((f.cdw12 ?? 0) >>> 0, 48);
  b.writeUInt32LE((f.cdw13 ?? 0) >>> 0, 52);
  b.writeUInt32LE((f.cdw14 ?? 0) >>> 0, 56);
  b.writeUInt32LE((f.cdw15 ?? 0) >>> 0, 60);
  return b;
}

/** SGL descriptor type bytes the Linux host uses. */
export const SglType = { DATA_OFFSET: 0x01, TRANSPORT: 0x5a } as const;

export const FABRICS_OPCODE = 0x7f;
export const FabricsType = { PROPERTY_SET: 0x00, CONNECT: 0x01, PROPERTY_GET: 0x04 } as const;

export const AdminOp = {
  GET_LOG_PAGE: 0x02, IDENTIFY: 0x06, SET_FEATURES: 0x09, GET_FEATURES: 0x0a, ASYNC_EVENT: 0x0c, KEEP_ALIVE: 0x18,
} as const;
export const IoOp = { FLUSH: 0x00, WRITE: 0x01, READ: 0x02 } as const;

/** Status field values (SCT << 8 | SC, DNR bit 14), as the completion carries them shifted by one. */
export const Status = {
  SUCCESS: 0,
  INVALID_OPCODE: 0x4001,
  INVALID_FIELD: 0x4002,
  DATA_XFER_ERROR: 0x4004,
  INTERNAL: 0x4006,
  INVALID_NS: 0x400b,
  LBA_RANGE: 0x4080,
  CONNECT_INVALID_PARAM: 0x4182,
  CONNECT_INVALID_HOST: 0x4184,
} as const;

/** Does the command move data from host to controller? (opcode bit 0, or a fabrics command whose type has it.) */
export function isHostToController(s: Sqe): boolean {
  if (s.opcode === FABRICS_OPCODE) return (s.raw[4]! & 1) === 1;
  return (s.opcode & 1) === 1;
}
