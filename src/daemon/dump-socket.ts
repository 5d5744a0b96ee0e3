// The side channel lvmlockd uses for the `info` and `dump` replies: an AF_UNIX
// SOCK_DGRAM socket in the abstract namespace, "\0lvmlockd-dump.sock".
//
// * lvmlockctl (the receiver) binds that name BEFORE it sends the `info` /
//   `dump` request on the stream socket; only one receiver can exist at a time
//   in a network namespace (a second bind fails with EADDRINUSE).
// * the daemon replies on the stream with `dump_len = N`, and only after that
//   reply has been written it sends the N bytes as datagrams of at most 65536
//   bytes each, non-blocking, retrying EAGAIN/EINTR every ~1 ms for at most
//   0.5 s in total. There is no terminator and no NUL on the wire.
//
// The address is 21 bytes long: sa_family (2 bytes), the NUL that marks the
// abstract namespace, then the 18 name bytes (no trailing NUL).
//
// Node has no AF_UNIX datagram sockets, so this goes through koffi (see
// ../util/libc.ts). Waiting is never done with a blocking call on the main
// thread: the sender sleeps with timers between retries, the receiver waits
// with poll() on a koffi worker thread.
//
// API
//   sendDump(text, options?)          -> Promise<SendDumpResult>   (daemon side, never throws)
//   DumpReceiver.bind(options?)       -> DumpReceiver               (client side, throws DumpSocketError)
//   receiver.receive(len, options?)   -> Promise<Buffer>            (throws DumpSocketError)
//   receiver.close()

import {
  AF_UNIX, SOCK_DGRAM, SOCK_CLOEXEC, MSG_DONTWAIT, MSG_NOSIGNAL,
  sysSocket, sysBind, sysSendto, sysRecv, sysClose, pollInAsync,
} from '../util/libc';
import { Errno, errnoNames } from '../util/errno';

const { EAGAIN, EINTR, EADDRINUSE, ETIMEDOUT } = Errno;

export const DUMP_SOCKET_NAME = 'lvmlockd-dump.sock';
/** Largest datagram the daemon sends (MAX_SEND_LEN in lvmlockd). */
export const MAX_DUMP_CHUNK = 65536;
/** Pause between EAGAIN retries (RESEND_DELAY_US). */
export const RESEND_DELAY_MS = 1;
/** Give up after this much accumulated retry delay (RESEND_DELAY_US_MAX). */
export const RESEND_DELAY_MAX_MS = 500;
/** Default receive timeout: longest wait for the next datagram. */
export const DEFAULT_RECEIVE_TIMEOUT_MS = 5000;

/** The sockaddr_un bytes for an abstract name (family, NUL, name). */
export function abstractAddress(name: string = DUMP_SOCKET_NAME): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length > 107) throw new RangeError(`bad abstract socket name length ${nameBytes.length}`);
  const addr = Buffer.alloc(2 + 1 + nameBytes.length);
  addr.writeUInt16LE(AF_UNIX, 0);
  nameBytes.copy(addr, 3);
  return addr;
}

export class DumpSocketError extends Error {
  constructor(
    /** The failing step. */
    readonly syscall: 'socket' | 'bind' | 'recvfrom' | 'poll' | 'timeout',
    /** Positive errno (ETIMEDOUT for a receive timeout). */
    readonly errno: number,
    message: string,
    /** Bytes received before the failure (receive only). */
    readonly partial?: Buffer,
  ) {
    super(message);
    this.name = 'DumpSocketError';
  }
  get code(): string {
    return ERRNO_NAMES.get(this.errno) ?? `E${this.errno}`;
  }
}

/** The errnos the dump socket names in its errors; any other prints as `E<n>`. */
const ERRNO_NAMES = errnoNames([
  'EAGAIN', 'EINTR', 'EADDRINUSE', 'ETIMEDOUT', 'ECONNREFUSED', 'ENOENT', 'EACCES', 'EMFILE', 'EBADF', 'ENOBUFS', 'EMSGSIZE',
]);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------
// Daemon side

export interface SendDumpOptions {
  /** Abstract name to send to; default "lvmlockd-dump.sock". */
  name?: string;
  /** Maximum chunk size; default 65536. */
  chunkSize?: number;
  /** Total EAGAIN retry budget in ms; default 500. */
  maxDelayMs?: number;
  /** Pause between retries in ms; default 1. */
  retryDelayMs?: number;
}

export interface SendDumpResult {
  /** All bytes were sent. */
  ok: boolean;
  /** Bytes sent. */
  sent: number;
  /** Bytes that should have been sent. */
  total: number;
  /** Number of EAGAIN/EINTR retries. */
  retries: number;
  /** What the C daemon logs as "delay": retries x 1000 (microseconds). */
  delayUs: number;
  /** errno of the failure when !ok (e.g. ECONNREFUSED when nobody is bound, EAGAIN when the receiver stalled). */
  errno?: number;
  /** Which call failed when !ok. */
  syscall?: 'socket' | 'sendto';
}

/** Sends `text` to the dump receiver. Resolves (never rejects) with what happened;
 *  the caller logs it like lvmlockd ("send_dump_buf delay %d total %d" / "... errno %d"). */
export async function sendDump(text: Buffer | string, options: SendDumpOptions = {}): Promise<SendDumpResult> {
  const data = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const chunkSize = options.chunkSize ?? MAX_DUMP_CHUNK;
  const maxDelay = options.maxDelayMs ?? RESEND_DELAY_MAX_MS;
  const retryDelay = options.retryDelayMs ?? RESEND_DELAY_MS;
  const res: SendDumpResult = { ok: false, sent: 0, total: data.length, retries: 0, delayUs: 0 };
  if (data.length === 0) { res.ok = true; return res; }

  const s = sysSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s.rv < 0) { res.errno = s.errno; res.syscall = 'socket'; return res; }
  const fd = s.rv;
  const addr = abstractAddress(options.name);
  const started = Date.now();
  try {
    while (res.sent < data.length) {
      const len = Math.min(chunkSize, data.length - res.sent);
      const r = sysSendto(fd, data.subarray(res.sent, res.sent + len), MSG_NOSIGNAL | MSG_DONTWAIT, addr);
      if (r.rv >= 0) {
        res.sent += r.rv;
        continue;
      }
      if ((r.errno === EAGAIN || r.errno === EINTR) && Date.now() - started < maxDelay) {
        res.retries++;
        res.delayUs = res.retries * 1000;
        await sleep(retryDelay);
        continue;
      }
      res.errno = r.errno;
      res.syscall = 'sendto';
      return res;
    }
    res.ok = true;
    return res;
  } finally {
    sysClose(fd);
  }
}

// ---------------------------------------------------------------------------
// Client side

export interface BindOptions {
  /** Abstract name to bind; default "lvmlockd-dump.sock". */
  name?: string;
}

export interface ReceiveOptions {
  /** Longest wait for the next datagram, in ms; default 5000. The whole receive
   *  never waits longer than this without progress. */
  timeoutMs?: number;
  /** Poll slice in ms (how often the deadline is re-checked); default 100. */
  pollSliceMs?: number;
}

export class DumpReceiver {
  private closed = false;

  private constructor(readonly fd: number, readonly name: string) {}

  /** Creates the socket and binds the abstract name. Throws DumpSocketError
   *  (errno EADDRINUSE when another lvmlockctl is dumping right now). */
  static bind(options: BindOptions = {}): DumpReceiver {
    const name = options.name ?? DUMP_SOCKET_NAME;
    const s = sysSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s.rv < 0) throw new DumpSocketError('socket', s.errno, `dump socket: socket() failed, errno ${s.errno}`);
    const b = sysBind(s.rv, abstractAddress(name));
    if (b.rv < 0) {
      sysClose(s.rv);
      const why = b.errno === EADDRINUSE
        ? `the abstract socket @${name} is already bound (another lvmlockctl --info/--dump is running?)`
        : `bind(@${name}) failed, errno ${b.errno}`;
      throw new DumpSocketError('bind', b.errno, `dump socket: ${why}`);
    }
    return new DumpReceiver(s.rv, name);
  }

  /** Receives exactly `len` bytes (as one or more datagrams). Rejects with a
   *  DumpSocketError ('timeout', ETIMEDOUT, with the partial data) when no
   *  datagram arrives for `timeoutMs`. */
  async receive(len: number, options: ReceiveOptions = {}): Promise<Buffer> {
    if (this.closed) throw new DumpSocketError('recvfrom', 9, 'dump socket is closed');
    const timeout = options.timeoutMs ?? DEFAULT_RECEIVE_TIMEOUT_MS;
    const slice = options.pollSliceMs ?? 100;
    const buf = Buffer.alloc(len);
    let count = 0;
    let lastProgress = Date.now();
    while (count < len) {
      if (this.closed) throw new DumpSocketError('recvfrom', 9, 'dump socket closed while receiving', buf.subarray(0, count));
      const r = sysRecv(this.fd, buf.subarray(count), MSG_DONTWAIT);
      if (r.rv > 0) {
        count += r.rv;
        lastProgress = Date.now();
        continue;
      }
      if (r.rv === 0) continue; // an empty datagram carries nothing
      if (r.errno === EINTR) continue;
      if (r.errno !== EAGAIN) {
        throw new DumpSocketError('recvfrom', r.errno, `dump socket: recvfrom failed, errno ${r.errno}`, buf.subarray(0, count));
      }
      const left = timeout - (Date.now() - lastProgress);
      if (left <= 0) {
        throw new DumpSocketError('timeout', ETIMEDOUT,
          `dump socket: timed out after ${timeout} ms with ${count} of ${len} bytes`, buf.subarray(0, count));
      }
      const p = await pollInAsync(this.fd, Math.min(left, slice));
      if (p < 0) {
        // poll errno is not reliable from a worker thread; EINTR is the only expected one.
        await sleep(1);
      }
    }
    return buf;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sysClose(this.fd);
  }
}
