// Client of wdmd, the watchdog multiplexing daemon that ships with sanlock.
//
// wdmd pets /dev/watchdog only while every registered client's expire time
// (CLOCK_MONOTONIC seconds) lies ahead. We register one connection per
// lockspace and move its expire time forward on every delta lease renewal,
// as the sanlock daemon does. If this daemon stops renewing (hung, SIGSTOP,
// killed, storage lost and the kill path never completes), the expire time
// passes, wdmd stops petting and the machine is reset before other hosts
// can count our host_id dead and take our leases.
//
// The wire format is wdmd's fixed 176-byte header in host byte order, sent on
// a UNIX stream socket (default /run/wdmd/wdmd.sock). Only STATUS and
// OPEN_WATCHDOG are answered; wdmd before 2022 ignores OPEN_WATCHDOG (it opens
// the device when it starts).

import * as net from 'node:net';
import type { WatchdogConnection, WatchdogProvider } from '../lm/sanlock/watchdog';

export const WDMD_DEFAULT_SOCKET = '/run/wdmd/wdmd.sock';
export const WDMD_HEADER_SIZE = 176;
export const WDMD_NAME_SIZE = 128;
const WDMD_STANDARD_TEST_INTERVAL = 10;

export const WDMD_CMD = {
  REGISTER: 1,
  REFCOUNT_SET: 2,
  REFCOUNT_CLEAR: 3,
  TEST_LIVE: 4,
  STATUS: 5,
  DUMP_DEBUG: 6,
  OPEN_WATCHDOG: 7,
} as const;

export interface WdmdHeader {
  cmd: number;
  testInterval: number;
  fireTimeout: number;
  lastKeepalive: bigint;
  renewalTime: bigint;
  expireTime: bigint;
  name: string;
}

export function encodeWdmdHeader(h: Partial<WdmdHeader> & { cmd: number }): Buffer {
  const b = Buffer.alloc(WDMD_HEADER_SIZE);
  // magic (0), cmd, len (unused), flags (unused)
  b.writeUInt32LE(h.cmd, 4);
  b.writeUInt32LE(h.testInterval ?? 0, 16);
  b.writeUInt32LE(h.fireTimeout ?? 0, 20);
  b.writeBigUInt64LE(h.lastKeepalive ?? 0n, 24);
  b.writeBigUInt64LE(h.renewalTime ?? 0n, 32);
  b.writeBigUInt64LE(h.expireTime ?? 0n, 40);
  if (h.name) {
    const name = Buffer.from(h.name, 'utf8');
    if (name.length >= WDMD_NAME_SIZE) throw new Error(`wdmd client name too long (${name.length} bytes, at most ${WDMD_NAME_SIZE - 1})`);
    name.copy(b, 48);
  }
  return b;
}

export function decodeWdmdHeader(b: Buffer): WdmdHeader {
  if (b.length < WDMD_HEADER_SIZE) throw new Error(`short wdmd header (${b.length} bytes)`);
  const nameEnd = b.indexOf(0, 48);
  return {
    cmd: b.readUInt32LE(4),
    testInterval: b.readUInt32LE(16),
    fireTimeout: b.readUInt32LE(20),
    lastKeepalive: b.readBigUInt64LE(24),
    renewalTime: b.readBigUInt64LE(32),
    expireTime: b.readBigUInt64LE(40),
    name: b.toString('utf8', 48, nameEnd < 0 || nameEnd > 48 + WDMD_NAME_SIZE ? 48 + WDMD_NAME_SIZE : nameEnd),
  };
}

const REPLY_TIMEOUT_MS = 10_000;

/** One registered wdmd client connection (one per lockspace). */
class WdmdConnection implements WatchdogConnection {
  private buffered = Buffer.alloc(0);
  private readonly waiting: Array<{ resolve: (h: WdmdHeader) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private closed = false;
  private closeReason = '';
  testInterval = 0;
  fireTimeout = 0;

  constructor(private readonly sock: net.Socket, private readonly onError: (msg: string) => void) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e) => { this.closeReason = e.message; });
    sock.on('close', () => {
      const wasOpen = !this.closed;
      this.closed = true;
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`wdmd closed the connection${this.closeReason ? `: ${this.closeReason}` : ''}`));
      }
      if (wasOpen) this.onError(`wdmd connection lost${this.closeReason ? `: ${this.closeReason}` : ''}; the watchdog may reset this host`);
    });
  }

  private onData(d: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, d]);
    while (this.buffered.length >= WDMD_HEADER_SIZE && this.waiting.length > 0) {
      const reply = decodeWdmdHeader(this.buffered.subarray(0, WDMD_HEADER_SIZE));
      this.buffered = this.buffered.subarray(WDMD_HEADER_SIZE);
      const w = this.waiting.shift()!;
      clearTimeout(w.timer);
      w.resolve(reply);
    }
  }

  private send(h: Partial<WdmdHeader> & { cmd: number }): void {
    if (this.closed) throw new Error(`wdmd connection is closed${this.closeReason ? `: ${this.closeReason}` : ''}`);
    this.sock.write(encodeWdmdHeader(h));
  }

  private reply(): Promise<WdmdHeader> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error('wdmd connection is closed'));
        return;
      }
      const timer = setTimeout(() => {
        const i = this.waiting.findIndex((w) => w.timer === timer);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error(`wdmd did not answer within ${REPLY_TIMEOUT_MS / 1000} s`));
      }, REPLY_TIMEOUT_MS);
      this.waiting.push({ resolve, reject, timer });
      this.onData(Buffer.alloc(0));
    });
  }

  /**
   * Register, ask wdmd to open the device with our fire timeout (newer wdmd;
   * older ones opened it at start and do not answer), and read its status.
   */
  async register(name: string, fireTimeout: number): Promise<void> {
    this.send({ cmd: WDMD_CMD.REGISTER, name });
    this.send({ cmd: WDMD_CMD.REFCOUNT_SET });
    this.send({ cmd: WDMD_CMD.OPEN_WATCHDOG, fireTimeout });
    this.send({ cmd: WDMD_CMD.STATUS });
    let r = await this.reply();
    if (r.cmd === WDMD_CMD.OPEN_WATCHDOG) {
      if (r.fireTimeout !== fireTimeout) {
        throw new Error(`wdmd could not open the watchdog device with fire timeout ${fireTimeout} s (answer ${r.fireTimeout})`);
      }
      r = await this.reply();
    }
    if (r.cmd !== WDMD_CMD.STATUS) throw new Error(`unexpected wdmd answer (command ${r.cmd})`);
    // While recovering from a failed test wdmd reports its 1 s retry interval;
    // its early-failure margin is always the standard 10 s.
    this.testInterval = Math.max(r.testInterval, WDMD_STANDARD_TEST_INTERVAL);
    this.fireTimeout = r.fireTimeout;
  }

  testLive(renewal: number, expire: number): void {
    try {
      this.send({ cmd: WDMD_CMD.TEST_LIVE, renewalTime: BigInt(renewal), expireTime: BigInt(expire) });
    } catch (e) {
      this.onError(`wdmd test_live ${renewal} ${expire} failed: ${(e as Error).message}`);
    }
  }

  async disarm(): Promise<void> {
    if (!this.closed) {
      try {
        this.send({ cmd: WDMD_CMD.TEST_LIVE, renewalTime: 0n, expireTime: 0n });
        this.send({ cmd: WDMD_CMD.REFCOUNT_CLEAR });
        // wdmd handles a client's headers in order, one per poll wakeup, and
        // on hang-up it reads no further: a close right after these writes
        // could leave a renewal's expiry as the last one it read, and a dead
        // client with an expiry resets the host. Its answer to STATUS proves
        // that the disarm has been read.
        this.send({ cmd: WDMD_CMD.STATUS });
        await this.reply();
      } catch (e) {
        this.onError(`wdmd disarm failed: ${(e as Error).message}`);
      }
    }
    await this.close();
  }

  /** Close the connection (a full close: wdmd drops a client without an expiry on hang-up). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sock.destroy();
  }
}

export type WatchdogMode = 'auto' | 'on' | 'off';

export function parseWatchdogMode(s: string): WatchdogMode | null {
  return s === 'auto' || s === 'on' || s === 'off' ? s : null;
}

/**
 * wdmd as the daemon's watchdog. `auto` uses wdmd when its socket exists and
 * runs without a watchdog (with a warning per lockspace) when it does not;
 * `on` refuses to start a sanlock lockspace without one.
 */
export class WdmdWatchdog implements WatchdogProvider {
  constructor(
    readonly mode: WatchdogMode,
    private readonly socketPath: string,
    private readonly onError: (msg: string) => void,
  ) {}

  get describe(): string {
    return `wdmd at ${this.socketPath} (--watchdog ${this.mode})`;
  }

  get absentReason(): string {
    return this.mode === 'off' ? 'disabled by --watchdog off' : `wdmd is not running at ${this.socketPath}`;
  }

  async connect(name: string, fireTimeout: number): Promise<WatchdogConnection | null> {
    if (this.mode === 'off') return null;
    let sock: net.Socket;
    try {
      sock = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(this.socketPath);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (this.mode === 'auto' && (code === 'ENOENT' || code === 'ECONNREFUSED')) return null;
      throw new Error(`cannot connect to wdmd at ${this.socketPath}: ${(e as Error).message}`);
    }
    const conn = new WdmdConnection(sock, this.onError);
    try {
      await conn.register(name, fireTimeout);
    } catch (e) {
      await conn.close();
      throw e;
    }
    return conn;
  }
}
