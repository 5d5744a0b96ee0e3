// NVMe/TCP PDUs (NVMe over TCP transport spec 1.0; the layouts the Linux host
// driver drivers/nvme/host/tcp.c sends and expects): an 8-byte common header
// (type, flags, hlen, pdo, plen), the PDU-specific header, then data. Digests
// are not offered (ICResp answers "off"; a host asking for them is refused by
// the kernel's own check, and we refuse a PDU that carries them).

export const PduType = {
  ICREQ: 0x00, ICRESP: 0x01, H2C_TERM: 0x02, C2H_TERM: 0x03, CMD: 0x04, RSP: 0x05,
  H2C_DATA: 0x06, C2H_DATA: 0x07, R2T: 0x09,
} as const;

export const PduFlag = { HDGST: 0x01, DDGST: 0x02, DATA_LAST: 0x04, DATA_SUCCESS: 0x08 } as const;

export const COMMON_HEADER_BYTES = 8;
export const ICREQ_BYTES = 128;
export const ICRESP_BYTES = 128;
/** Command capsule header: common header + 64-byte submission queue entry. */
export const CMD_HLEN = 72;
/** Response, C2HData, H2CData and R2T headers are all 24 bytes. */
export const SHORT_HLEN = 24;
export const SQE_BYTES = 64;
/** Largest PDU we accept (a command with in-capsule data up to this, or an H2CData PDU). */
export const PDU_BYTES_MAX = 1 << 20;

export interface Pdu {
  type: number;
  flags: number;
  hlen: number;
  pdo: number;
  plen: number;
  /** The whole PDU (header and data). */
  raw: Buffer;
}

/** Splits a byte stream into PDUs; throws on a header that cannot be right. */
export class PduReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  next(): Pdu | null {
    if (this.buf.length < COMMON_HEADER_BYTES) return null;
    const b = this.buf;
    const plen = b.readUInt32LE(4);
    const hlen = b[2]!;
    if (plen < COMMON_HEADER_BYTES || plen > PDU_BYTES_MAX || hlen < COMMON_HEADER_BYTES || hlen > plen) {
      throw new Error(`bad PDU header: type ${b[0]} hlen ${hlen} plen ${plen}`);
    }
    if (b.length < plen) return null;
    const raw = Buffer.from(b.subarray(0, plen));
    this.buf = b.subarray(plen);
    return { type: raw[0]!, flags: raw[1]!, hlen, pdo: raw[3]!, plen, raw };
  }
}

function header(type: number, flags: number, hlen: number, pdo: number, plen: number): Buffer {
  const b = Buffer.alloc(hlen);
  b[0] = type;
  b[1] = flags;
  b[2] = hlen;
  b[3] = pdo;
  b.writeUInt32LE(plen, 4);
  return b;
}

export interface IcReq { pfv: number; hpda: number; digest: number; maxr2t: number }

export function parseIcReq(p: Pdu): IcReq {
  if (p.type !== PduType.ICREQ || p.plen !== ICREQ_BYTES) throw new Error('expected an ICReq PDU');
  return { pfv: p.raw.readUInt16LE(8), hpda: p.raw[10]!, digest: p.raw[11]!, maxr2t: p.raw.readUInt32LE(12) };
}

export function encodeIcReq(r: IcReq): Buffer {
  const b = header(PduType.ICREQ, 0, ICREQ_BYTES, 0, ICREQ_BYTES);
  b.writeUInt16LE(r.pfv, 8);
  b[10] = r.hpda;
  b[11] = r.digest;
  b.writeUInt32LE(r.maxr2t, 12);
  return b;
}

export interface IcResp { pfv: number; cpda: number; digest: number; maxdata: number }

export function encodeIcResp(r: IcResp): Buffer {
  const b = header(PduType.ICRESP, 0, ICRESP_BYTES, 0, ICRESP_BYTES);
  b.writeUInt16LE(r.pfv, 8);
  b[10] = r.cpda;
  b[11] = r.digest;
  b.writeUInt32LE(r.maxdata, 12);
  return b;
}

export function parseIcResp(p: Pdu): IcResp {
  if (p.type !== PduType.ICRESP || p.plen !== ICRESP_BYTES) throw new Error('expected an ICResp PDU');
  return { pfv: p.raw.readUInt16LE(8), cpda: p.raw[10]!, digest: p.raw[11]!, maxdata: p.raw.readUInt32LE(12) };
}

/** A command capsule: the SQE and its in-capsule data (empty when none). */
export interface Capsule { sqe: Buffer; data: Buffer }

export function parseCapsule(p: Pdu): Capsule {
  if (p.type !== PduType.CMD || p.hlen !== CMD_HLEN) throw new Error('expected a command capsule PDU');
  if (p.flags & (PduFlag.HDGST | PduFlag.DDGST)) throw new Error('digests were not negotiated');
  const sqe = Buffer.from(p.raw.subarray(COMMON_HEADER_BYTES, CMD_HLEN));
  const data = p.pdo && p.plen > p.pdo ? Buffer.from(p.raw.subarray(p.pdo, p.plen)) : Buffer.alloc(0);
  return { sqe, data };
}

export function encodeCapsule(sqe: Buffer, data: Buffer): Buffer {
  const plen = CMD_HLEN + data.length;
  const h = header(PduType.CMD, 0, CMD_HLEN, data.length ? CMD_HLEN : 0, plen);
  sqe.copy(h, COMMON_HEADER_BYTES, 0, SQE_BYTES);
  return Buffer.concat([h, data]);
}

/** A completion queue entry (16 bytes): result, SQ head, SQ id, command id, status field << 1. */
export interface Cqe { result: bigint; sqHead: number; sqId: number; cid: number; status: number }

export function encodeResponse(c: Cqe): Buffer {
  const b = header(PduType.RSP, 0, SHORT_HLEN, 0, SHORT_HLEN);
  b.writeBigUInt64LE(c.result, 8);
  b.writeUInt16LE(c.sqHead & 0xffff, 16);
  b.writeUInt16LE(c.sqId, 18);
  b.writeUInt16LE(c.cid, 20);
  b.writeUInt16LE((c.status << 1) & 0xffff, 22);
  return b;
}

export function parseResponse(p: Pdu): Cqe {
  if (p.type !== PduType.RSP || p.hlen !== SHORT_HLEN) throw new Error('expected a response PDU');
  return {
    result: p.raw.readBigUInt64LE(8), sqHead: p.raw.readUInt16LE(16), sqId: p.raw.readUInt16LE(18),
    cid: p.raw.readUInt16LE(20), status: p.raw.readUInt16LE(22) >> 1,
  };
}

/** C2HData / H2CData: command id, transfer tag, offset, length, then the data. */
export interface DataPdu { cid: number; ttag: number; offset: number; data: Buffer; last: boolean }

function encodeData(type: number, d: DataPdu, extraFlags = 0): Buffer {
  const h = header(type, (d.last ? PduFlag.DATA_LAST : 0) | extraFlags, SHORT_HLEN, SHORT_HLEN, SHORT_HLEN + d.data.length);
  h.writeUInt16LE(d.cid, 8);
  h.writeUInt16LE(d.ttag, 10);
  h.writeUInt32LE(d.offset, 12);
  h.writeUInt32LE(d.data.length, 16);
  return Buffer.concat([h, d.data]);
}

export const encodeC2HData = (d: DataPdu): Buffer => encodeData(PduType.C2H_DATA, d);
export const encodeH2CData = (d: DataPdu): Buffer => encodeData(PduType.H2C_DATA, d);

export function parseDataPdu(p: Pdu): DataPdu {
  if ((p.type !== PduType.H2C_DATA && p.type !== PduType.C2H_DATA) || p.hlen !== SHORT_HLEN) throw new Error('expected a data PDU');
  if (p.flags & (PduFlag.HDGST | PduFlag.DDGST)) throw new Error('digests were not negotiated');
  const len = p.raw.readUInt32LE(16);
  const start = p.pdo || SHORT_HLEN;
  if (start + len > p.plen) throw new Error('data PDU shorter than its data length');
  return {
    cid: p.raw.readUInt16LE(8), ttag: p.raw.readUInt16LE(10), offset: p.raw.readUInt32LE(12),
    data: Buffer.from(p.raw.subarray(start, start + len)), last: (p.flags & PduFlag.DATA_LAST) !== 0,
  };
}

export interface R2t { cid: number; ttag: number; offset: number; length: number }

export function encodeR2t(r: R2t): Buffer {
  const b = header(PduType.R2T, 0, SHORT_HLEN, 0, SHORT_HLEN);
  b.writeUInt16LE(r.cid, 8);
  b.writeUInt16LE(r.ttag, 10);
  b.writeUInt32LE(r.offset, 12);
  b.writeUInt32LE(r.length, 16);
  return b;
}

export function parseR2t(p: Pdu): R2t {
  if (p.type !== PduType.R2T) throw new Error('expected an R2T PDU');
  return { cid: p.raw.readUInt16LE(8), ttag: p.raw.readUInt16LE(10), offset: p.raw.readUInt32LE(12), length: p.raw.readUInt32LE(16) };
}

/** C2HTermReq: fatal error status, then the offending header (up to 128 bytes). */
export function encodeC2HTerm(fes: number, offending: Buffer): Buffer {
  const hdr = offending.subarray(0, Math.min(offending.length, 128));
  const b = header(PduType.C2H_TERM, 0, SHORT_HLEN, 0, SHORT_HLEN + hdr.length);
  b.writeUInt16LE(fes, 8);
  return Buffer.concat([b, hdr]);
}
export const TermFes = { INVALID_HEADER: 1, SEQUENCE: 2, DATA_RANGE: 4, UNSUPPORTED: 6 } as const;
