// The ILM client socket protocol: what Seagate's libseagate_ilm (propeller,
// src/lib_client.c) and its daemon seagate_ilm (src/client.c, src/lock.c,
// src/lockspace.c) exchange over $ILM_RUN_DIR/main.sock. Pure codec: no
// socket, no clock. Integers are host-endian on the wire (propeller never
// converts); we write little-endian, which is what x86_64 and arm64 use.
//
// A request is a 16-byte header {magic, cmd, length, result = 0} followed by
// command-specific bytes; a reply is a header whose result is the answer,
// then reply data for VERSION, READ_LVB, LOCK_HOST_COUNT and LOCK_MODE.

import { E } from '../core/constants';

export const ILM_MAGIC = 0x494c4d00;
export const LOCK_PAYLOAD_MAGIC = 0x4c4f434b;
export const HEADER_BYTES = 16;
export const PAYLOAD_BYTES = 80;
/** Every drive path travels in a PATH_MAX block, NUL padded. */
export const PATH_SLOT_BYTES = 4096;
export const LOCK_ID_BYTES = 64;
export const HOST_ID_BYTES = 32;
export const KILL_FIELD_BYTES = 128;
export const LVB_BYTES = 8;
export const DRIVE_MAX = 512;
/** Longest frame a real client can send: an ACQUIRE naming DRIVE_MAX drives. */
export const FRAME_BYTES_MAX = HEADER_BYTES + PAYLOAD_BYTES + DRIVE_MAX * PATH_SLOT_BYTES;
/**
 * libseagate_ilm's ilm_set_killpath() claims 16 + 80 + 256 bytes although it
 * sends only the two 128-byte fields (it adds the lock payload size by
 * mistake). We send the same length so the real daemon sees what it expects.
 */
export const KILLPATH_CLAIMED_LENGTH = HEADER_BYTES + PAYLOAD_BYTES + 2 * KILL_FIELD_BYTES;

/** Command codes, in propeller's src/cmd.h enum order. */
export const Cmd = {
  VERSION: 0,
  ADD_LOCKSPACE: 1,
  DEL_LOCKSPACE: 2,
  ACQUIRE: 3,
  RELEASE: 4,
  CONVERT: 5,
  WRITE_LVB: 6,
  READ_LVB: 7,
  LOCK_HOST_COUNT: 8,
  LOCK_MODE: 9,
  SET_SIGNAL: 10,
  SET_KILLPATH: 11,
  SET_HOST_ID: 12,
  STOP_RENEW: 13,
  START_RENEW: 14,
  INJECT_FAULT: 15,
} as const;
export type CmdCode = (typeof Cmd)[keyof typeof Cmd];
const CMD_NAMES = Object.fromEntries(Object.entries(Cmd).map(([k, v]) => [v, k])) as Record<number, string>;
export function cmdName(cmd: number): string {
  return CMD_NAMES[cmd] ?? `UNKNOWN(${cmd})`;
}

/** ilm.h IDM_MODE_*. */
export const IdmMode = { UNLOCK: 0, EXCLUSIVE: 1, SHAREABLE: 2 } as const;
export type LockMode = typeof IdmMode.EXCLUSIVE | typeof IdmMode.SHAREABLE;
export function isLockMode(m: number): m is LockMode {
  return m === IdmMode.EXCLUSIVE || m === IdmMode.SHAREABLE;
}

export interface Header {
  magic: number;
  cmd: number;
  /** HEADER_BYTES + the bytes the sender says follow. */
  length: number;
  result: number;
}

export function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32LE(h.magic >>> 0, 0);
  b.writeUInt32LE(h.cmd >>> 0, 4);
  b.writeUInt32LE(h.length >>> 0, 8);
  b.writeInt32LE(h.result | 0, 12);
  return b;
}

export function decodeHeader(b: Buffer, off = 0): Header {
  return {
    magic: b.readUInt32LE(off),
    cmd: b.readUInt32LE(off + 4),
    length: b.readUInt32LE(off + 8),
    result: b.readInt32LE(off + 12),
  };
}

/** struct ilm_lock_payload (propeller src/lock.h), 80 bytes. */
export interface LockPayload {
  magic: number;
  mode: number;
  driveNum: number;
  lockId: Buffer;
  timeoutMs: number;
}

export function encodePayload(p: Partial<LockPayload>): Buffer {
  const b = Buffer.alloc(PAYLOAD_BYTES);
  b.writeUInt32LE((p.magic ?? LOCK_PAYLOAD_MAGIC) >>> 0, 0);
  b.writeUInt32LE((p.mode ?? 0) >>> 0, 4);
  b.writeUInt32LE((p.driveNum ?? 0) >>> 0, 8);
  if (p.lockId) {
    if (p.lockId.length !== LOCK_ID_BYTES) throw new RangeError(`lock id must be ${LOCK_ID_BYTES} bytes`);
    p.lockId.copy(b, 12);
  }
  b.writeInt32LE((p.timeoutMs ?? 0) | 0, 76);
  return b;
}

export function decodePayload(b: Buffer, off = 0): LockPayload {
  return {
    magic: b.readUInt32LE(off),
    mode: b.readUInt32LE(off + 4),
    driveNum: b.readUInt32LE(off + 8),
    lockId: Buffer.from(b.subarray(off + 12, off + 12 + LOCK_ID_BYTES)),
    timeoutMs: b.readInt32LE(off + 76),
  };
}

/** A NUL-padded fixed-size field, as strncpy leaves it. */
export function encodeCString(s: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > size) throw new RangeError(`string longer than ${size} bytes`);
  bytes.copy(b);
  return b;
}

/** Up to the first NUL; bytes after it may be garbage (stack buffers in C). */
export function decodeCString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

// ---------------------------------------------------------------- requests

export type IlmRequest =
  | { cmd: typeof Cmd.VERSION; drive: string }
  | { cmd: typeof Cmd.ADD_LOCKSPACE }
  | { cmd: typeof Cmd.DEL_LOCKSPACE }
  | { cmd: typeof Cmd.ACQUIRE; mode: LockMode; lockId: Buffer; timeoutMs: number; drives: string[] }
  | { cmd: typeof Cmd.RELEASE; lockId: Buffer }
  | { cmd: typeof Cmd.CONVERT; mode: number; lockId: Buffer }
  | { cmd: typeof Cmd.WRITE_LVB; lockId: Buffer; lvb: Buffer }
  | { cmd: typeof Cmd.READ_LVB; lockId: Buffer }
  | { cmd: typeof Cmd.LOCK_HOST_COUNT; lockId: Buffer; drives: string[] }
  | { cmd: typeof Cmd.LOCK_MODE; lockId: Buffer; drives: string[] }
  | { cmd: typeof Cmd.SET_SIGNAL; signo: number }
  | { cmd: typeof Cmd.SET_KILLPATH; path: string; args: string }
  | { cmd: typeof Cmd.SET_HOST_ID; hostId: Buffer }
  | { cmd: typeof Cmd.STOP_RENEW }
  | { cmd: typeof Cmd.START_RENEW }
  | { cmd: typeof Cmd.INJECT_FAULT; percentage: number };

function frame(cmd: number, body: Buffer[], claimedLength?: number): Buffer {
  const bodyBytes = body.reduce((n, b) => n + b.length, 0);
  const header = encodeHeader({ magic: ILM_MAGIC, cmd, length: claimedLength ?? HEADER_BYTES + bodyBytes, result: 0 });
  return Buffer.concat([header, ...body]);
}

function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v | 0, 0);
  return b;
}

function pathSlots(drives: string[]): Buffer[] {
  return drives.map((d) => encodeCString(d, PATH_SLOT_BYTES));
}

/** The bytes libseagate_ilm sends for a request (including its quirks). */
export function encodeRequest(req: IlmRequest): Buffer {
  switch (req.cmd) {
    case Cmd.VERSION:
      return frame(req.cmd, [encodePayload({ driveNum: 1 }), ...pathSlots([req.drive])]);
    case Cmd.ADD_LOCKSPACE:
    case Cmd.DEL_LOCKSPACE:
    case Cmd.STOP_RENEW:
    case Cmd.START_RENEW:
      return frame(req.cmd, []);
    case Cmd.ACQUIRE:
      return frame(req.cmd, [
        encodePayload({ mode: req.mode, driveNum: req.drives.length, lockId: req.lockId, timeoutMs: req.timeoutMs }),
        ...pathSlots(req.drives),
      ]);
    case Cmd.RELEASE:
    case Cmd.READ_LVB:
      return frame(req.cmd, [encodePayload({ lockId: req.lockId })]);
    case Cmd.CONVERT:
      return frame(req.cmd, [encodePayload({ mode: req.mode, lockId: req.lockId })]);
    case Cmd.WRITE_LVB:
      return frame(req.cmd, [encodePayload({ lockId: req.lockId }), req.lvb]);
    case Cmd.LOCK_HOST_COUNT:
    case Cmd.LOCK_MODE:
      return frame(req.cmd, [encodePayload({ driveNum: req.drives.length, lockId: req.lockId }), ...pathSlots(req.drives)]);
    case Cmd.SET_SIGNAL:
      return frame(req.cmd, [int32(req.signo)]);
    case Cmd.SET_KILLPATH:
      return frame(req.cmd, [encodeCString(req.path, KILL_FIELD_BYTES), encodeCString(req.args, KILL_FIELD_BYTES)],
        KILLPATH_CLAIMED_LENGTH);
    case Cmd.SET_HOST_ID:
      return frame(req.cmd, [req.hostId]);
    case Cmd.INJECT_FAULT:
      return frame(req.cmd, [int32(req.percentage)]);
  }
}

/** Reply data length per command on success (others carry none). */
export function replyDataBytes(cmd: number): number {
  switch (cmd) {
    case Cmd.VERSION: return 2;
    case Cmd.READ_LVB: return LVB_BYTES;
    case Cmd.LOCK_HOST_COUNT: return 8;
    case Cmd.LOCK_MODE: return 4;
    default: return 0;
  }
}

export function encodeReply(cmd: number, result: number, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([encodeHeader({ magic: ILM_MAGIC, cmd, length: HEADER_BYTES + data.length, result }), data]);
}

// ------------------------------------------------------- daemon-side parser

/** What the daemon makes of one frame. */
export type ParsedFrame =
  | { kind: 'request'; req: IlmRequest }
  /** Answer `result` and keep the connection (propeller's checks after reading the payload). */
  | { kind: 'reject'; cmd: number; result: number; reason: string }
  /** The stream cannot be trusted any more: answer if possible, then close. */
  | { kind: 'fatal'; cmd: number; result: number; reason: string };

type Need =
  | { phase: 'header' }
  | { phase: 'body'; header: Header; bytes: number; read: (body: Buffer, header: Header) => Step };

type Step = { done: ParsedFrame } | { more: number; read: (body: Buffer, header: Header) => Step };

/**
 * Turns a byte stream into frames, one at a time, as seagate_ilm reads them:
 * exactly the bytes each command needs, then the rest of what the header
 * claims is discarded (a rejected ACQUIRE's path slots, say). One exception:
 * ilm_set_killpath claims 80 bytes more than it sends, so SET_KILLPATH's
 * surplus is never waited for (propeller drains it non-blockingly for ~20 ms;
 * a client waits for the reply before sending more, so nothing is lost).
 * Unlike propeller, a frame whose header claims fewer bytes than the command
 * needs is answered with -EIO after the claimed bytes (propeller would wait
 * for bytes that may never come), an unknown command with -EINVAL, and a
 * header claiming more than the largest legal frame closes the connection.
 */
export class RequestParser {
  private buf: Buffer = Buffer.alloc(0);
  private need: Need = { phase: 'header' };
  /** Claimed bytes of the frame just parsed that are still to be discarded. */
  private drainLeft = 0;
  /** Body bytes taken so far in the current frame. */
  private bodyTaken = 0;

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.drain();
  }

  /** Bytes of an unfinished frame are buffered (for EOF handling). */
  get midFrame(): boolean {
    return this.need.phase === 'body' || (this.need.phase === 'header' && this.buf.length > 0);
  }

  /** The next complete frame, or null when more bytes are needed. */
  next(): ParsedFrame | null {
    this.drain();
    for (;;) {
      if (this.need.phase === 'header') {
        if (this.buf.length < HEADER_BYTES) return null;
        const header = decodeHeader(this.take(HEADER_BYTES));
        this.bodyTaken = 0;
        const start = this.startFrame(header);
        if ('done' in start) return this.finish(header, start.done);
        this.need = { phase: 'body', header, bytes: start.more, read: start.read };
        continue;
      }
      const { header, bytes, read } = this.need;
      const claimed = Math.max(0, header.length - HEADER_BYTES) - this.bodyTaken;
      if (bytes > claimed) {
        // The header promises less than the command needs: answer -EIO after the claimed bytes.
        if (this.buf.length < claimed) return null;
        this.take(claimed);
        this.bodyTaken += claimed;
        this.need = { phase: 'header' };
        return this.finish(header, {
          kind: 'reject', cmd: header.cmd, result: -E.IO,
          reason: `${cmdName(header.cmd)}: header length ${header.length} is too short for the command`,
        });
      }
      if (this.buf.length < bytes) return null;
      const body = this.take(bytes);
      this.bodyTaken += bytes;
      const step = read(body, header);
      if ('done' in step) {
        this.need = { phase: 'header' };
        return this.finish(header, step.done);
      }
      this.need = { phase: 'body', header, bytes: step.more, read: step.read };
    }
  }

  private finish(header: Header, parsed: ParsedFrame): ParsedFrame {
    const surplus = header.cmd === Cmd.SET_KILLPATH ? 0 : header.length - HEADER_BYTES - this.bodyTaken;
    if (parsed.kind !== 'fatal') this.drainLeft = Math.max(0, surplus);
    this.drain();
    return parsed;
  }

  private drain(): void {
    if (this.drainLeft === 0 || this.buf.length === 0) return;
    const n = Math.min(this.drainLeft, this.buf.length);
    this.take(n);
    this.drainLeft -= n;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  private startFrame(h: Header): Step {
    const cmd = h.cmd;
    if (h.magic !== ILM_MAGIC) {
      return { done: { kind: 'fatal', cmd, result: -E.INVAL, reason: `bad magic 0x${h.magic.toString(16)}` } };
    }
    if (h.length > FRAME_BYTES_MAX) {
      return { done: { kind: 'fatal', cmd, result: -E.INVAL, reason: `header length ${h.length} exceeds ${FRAME_BYTES_MAX}` } };
    }
    const done = (req: IlmRequest): Step => ({ done: { kind: 'request', req } });
    const reject = (result: number, reason: string): Step =>
      ({ done: { kind: 'reject', cmd, result, reason: `${cmdName(cmd)}: ${reason}` } });
    const withPayload = (then: (p: LockPayload) => Step): Step => ({
      more: PAYLOAD_BYTES,
      read: (b) => {
        const p = decodePayload(b);
        if (p.magic !== LOCK_PAYLOAD_MAGIC) return reject(-E.INVAL, `bad payload magic 0x${p.magic.toString(16)}`);
        return then(p);
      },
    });
    const withSlots = (n: number, then: (paths: string[]) => Step): Step => ({
      more: n * PATH_SLOT_BYTES,
      read: (b) => {
        const paths: string[] = [];
        for (let i = 0; i < n; i++) paths.push(decodeCString(b.subarray(i * PATH_SLOT_BYTES, (i + 1) * PATH_SLOT_BYTES)));
        return then(paths);
      },
    });
    const withBytes = (n: number, then: (b: Buffer) => Step): Step => ({ more: n, read: (b) => then(Buffer.from(b)) });

    switch (cmd) {
      case Cmd.ADD_LOCKSPACE:
      case Cmd.DEL_LOCKSPACE:
      case Cmd.STOP_RENEW:
      case Cmd.START_RENEW:
        return done({ cmd });
      case Cmd.VERSION:
        return withPayload((p) => p.driveNum !== 1
          ? reject(-E.INVAL, `drive_num ${p.driveNum} (must be 1)`)
          : withSlots(1, ([drive]) => done({ cmd, drive: drive! })));
      case Cmd.ACQUIRE:
        return withPayload((p) => {
          if (p.driveNum === 0 || p.driveNum > DRIVE_MAX) return reject(-E.INVAL, `drive_num ${p.driveNum}`);
          if (!isLockMode(p.mode)) return reject(-E.INVAL, `mode ${p.mode}`);
          const mode = p.mode;
          return withSlots(p.driveNum, (drives) => done({ cmd, mode, lockId: p.lockId, timeoutMs: p.timeoutMs, drives }));
        });
      case Cmd.RELEASE:
      case Cmd.READ_LVB:
        return withPayload((p) => done({ cmd, lockId: p.lockId }));
      case Cmd.CONVERT:
        return withPayload((p) => done({ cmd, mode: p.mode, lockId: p.lockId }));
      case Cmd.WRITE_LVB:
        return withPayload((p) => withBytes(LVB_BYTES, (lvb) => done({ cmd, lockId: p.lockId, lvb })));
      case Cmd.LOCK_HOST_COUNT:
      case Cmd.LOCK_MODE:
        return withPayload((p) => p.driveNum > DRIVE_MAX
          ? reject(-E.INVAL, `drive_num ${p.driveNum}`)
          : withSlots(p.driveNum, (drives) => done({ cmd, lockId: p.lockId, drives })));
      case Cmd.SET_SIGNAL:
        return withBytes(4, (b) => done({ cmd, signo: b.readInt32LE(0) }));
      case Cmd.INJECT_FAULT:
        return withBytes(4, (b) => done({ cmd, percentage: b.readInt32LE(0) }));
      case Cmd.SET_KILLPATH:
        return withBytes(2 * KILL_FIELD_BYTES, (b) => done({
          cmd,
          path: decodeCString(b.subarray(0, KILL_FIELD_BYTES)),
          args: decodeCString(b.subarray(KILL_FIELD_BYTES)),
        }));
      case Cmd.SET_HOST_ID:
        return withBytes(HOST_ID_BYTES, (hostId) => done({ cmd, hostId }));
      default:
        return reject(-E.INVAL, 'unknown command');
    }
  }
}

// ------------------------------------------------------- client-side reader

export interface Reply {
  header: Header;
  data: Buffer;
}

/** Splits the daemon's byte stream into replies (header, then length - 16 data bytes). */
export class ReplyReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next reply, null when incomplete; throws on a corrupt stream. */
  next(): Reply | null {
    if (this.buf.length < HEADER_BYTES) return null;
    const header = decodeHeader(this.buf);
    if (header.magic !== ILM_MAGIC) throw new Error(`ILM reply with bad magic 0x${header.magic.toString(16)}`);
    if (header.length < HEADER_BYTES || header.length > HEADER_BYTES + 64) {
      throw new Error(`ILM reply with bad length ${header.length}`);
    }
    if (this.buf.length < header.length) return null;
    const data = Buffer.from(this.buf.subarray(HEADER_BYTES, header.length));
    this.buf = this.buf.subarray(header.length);
    return { header, data };
  }
}
