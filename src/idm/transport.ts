// How the ILM reaches a drive: one SCSI command at a time, as SG_IO would
// carry it (CDB, data-out or a data-in size, timeout) and what comes back
// (status, sense, data-in). Implementations: the emulated drive over a unix
// socket (socket-transport.ts) and, for real devices, SG_IO (sg-io.ts).

export interface ScsiCommand {
  cdb: Buffer;
  /** Bytes to the device, or null for a data-in (or no-data) command. */
  dataOut: Buffer | null;
  /** Size of the data-in buffer (0 with dataOut). */
  dataInBytes: number;
  timeoutMs: number;
}

export type ScsiReply =
  | { ok: true; status: number; sense: Buffer; dataIn: Buffer }
  /** The command never completed (device gone, timeout): a negative errno. */
  | { ok: false; errno: number; message: string };

export interface DriveTransport {
  /** What the drive was opened as (a device path or an emulated drive's socket). */
  readonly path: string;
  execute(cmd: ScsiCommand): Promise<ScsiReply>;
  close(): void;
}

// ---- The emulated drive's wire format: SG_IO's fields, framed for a stream.
// Request:  u32 magic 'SGIO' | u8 cdb_len | u8 direction | u16 0 | u32 data_out_len
//           | u32 data_in_len | u32 timeout_ms | cdb | data_out     (all little-endian)
// Reply:    u32 magic 'SGIR' | u8 status | u8 sense_len | u16 0 | u32 data_in_len
//           | sense | data_in

export const SG_REQUEST_MAGIC = 0x4f494753; // "SGIO"
export const SG_REPLY_MAGIC = 0x52494753;   // "SGIR"
export const SG_REQUEST_HEADER_BYTES = 20;
export const SG_REPLY_HEADER_BYTES = 12;
export const SG_DATA_BYTES_MAX = 8192 * 512;

/**
 * An emulated drive's address: a unix socket path, or `tcp:HOST:PORT` for a
 * drive served to other machines (the VM tier's TCMU disks reach their one
 * firmware that way).
 */
export function driveAddress(addr: string): { path: string } | { host: string; port: number } {
  const m = /^tcp:(.+):(\d+)$/.exec(addr);
  return m ? { host: m[1]!, port: Number(m[2]) } : { path: addr };
}

export const Direction = { NONE: 0, TO_DEVICE: 1, FROM_DEVICE: 2 } as const;

export function encodeSgRequest(cmd: ScsiCommand): Buffer {
  const h = Buffer.alloc(SG_REQUEST_HEADER_BYTES);
  h.writeUInt32LE(SG_REQUEST_MAGIC, 0);
  h[4] = cmd.cdb.length;
  h[5] = cmd.dataOut ? Direction.TO_DEVICE : cmd.dataInBytes > 0 ? Direction.FROM_DEVICE : Direction.NONE;
  h.writeUInt32LE(cmd.dataOut?.length ?? 0, 8);
  h.writeUInt32LE(cmd.dataInBytes, 12);
  h.writeUInt32LE(cmd.timeoutMs, 16);
  return Buffer.concat([h, cmd.cdb, cmd.dataOut ?? Buffer.alloc(0)]);
}

export interface SgRequest { cdb: Buffer; dataOut: Buffer | null; dataInBytes: number; timeoutMs: number }

/** Incremental decoder for either direction; `null` = need more bytes; throws on a corrupt stream. */
export class SgDecoder<T> {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly parse: (b: Buffer) => { value: T; bytes: number } | null) {}
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }
  next(): T | null {
    const r = this.parse(this.buf);
    if (!r) return null;
    this.buf = this.buf.subarray(r.bytes);
    return r.value;
  }
}

export function parseSgRequest(b: Buffer): { value: SgRequest; bytes: number } | null {
  if (b.length < SG_REQUEST_HEADER_BYTES) return null;
  if (b.readUInt32LE(0) !== SG_REQUEST_MAGIC) throw new Error('bad SG request magic');
  const cdbLen = b[4]!;
  const dir = b[5]!;
  const outLen = b.readUInt32LE(8);
  const inLen = b.readUInt32LE(12);
  if (cdbLen === 0 || cdbLen > 32 || outLen > SG_DATA_BYTES_MAX || inLen > SG_DATA_BYTES_MAX) {
    throw new Error('SG request out of bounds');
  }
  const total = SG_REQUEST_HEADER_BYTES + cdbLen + outLen;
  if (b.length < total) return null;
  const cdb = Buffer.from(b.subarray(SG_REQUEST_HEADER_BYTES, SG_REQUEST_HEADER_BYTES + cdbLen));
  const dataOut = dir === Direction.TO_DEVICE ? Buffer.from(b.subarray(SG_REQUEST_HEADER_BYTES + cdbLen, total)) : null;
  return { value: { cdb, dataOut, dataInBytes: inLen, timeoutMs: b.readUInt32LE(16) }, bytes: total };
}

export interface SgResponse { status: number; sense: Buffer; dataIn: Buffer }

export function encodeSgReply(r: SgResponse): Buffer {
  const h = Buffer.alloc(SG_REPLY_HEADER_BYTES);
  h.writeUInt32LE(SG_REPLY_MAGIC, 0);
  h[4] = r.status;
  h[5] = Math.min(r.sense.length, 255);
  h.writeUInt32LE(r.dataIn.length, 8);
  return Buffer.concat([h, r.sense.subarray(0, 255), r.dataIn]);
}

export function parseSgReply(b: Buffer): { value: SgResponse; bytes: number } | null {
  if (b.length < SG_REPLY_HEADER_BYTES) return null;
  if (b.readUInt32LE(0) !== SG_REPLY_MAGIC) throw new Error('bad SG reply magic');
  const senseLen = b[5]!;
  const inLen = b.readUInt32LE(8);
  if (inLen > SG_DATA_BYTES_MAX) throw new Error('SG reply out of bounds');
  const total = SG_REPLY_HEADER_BYTES + senseLen + inLen;
  if (b.length < total) return null;
  const sense = Buffer.from(b.subarray(SG_REPLY_HEADER_BYTES, SG_REPLY_HEADER_BYTES + senseLen));
  const dataIn = Buffer.from(b.subarray(SG_REPLY_HEADER_BYTES + senseLen, total));
  return { value: { status: b[4]!, sense, dataIn }, bytes: total };
}
