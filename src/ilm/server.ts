// The ILM daemon's socket shell: accepts libseagate_ilm clients on
// $ILM_RUN_DIR/main.sock, parses frames (protocol.ts), runs one request per
// connection at a time, answers with propeller's result codes. A connection is
// at most one lockspace; a client that goes away without DEL_LOCKSPACE has its
// locks unlocked and destroyed on the drives.
//
// Deliberate differences from propeller (never hang a client): DEL_LOCKSPACE
// without a lockspace and unknown commands are answered -EINVAL (propeller
// sends nothing); a frame cut short by EOF is answered -EIO; a second
// ADD_LOCKSPACE on one connection is refused with -EBUSY (propeller leaks the first).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { E } from '../core/constants';
import { peerPid, tryLockFd } from '../util/libc';
import { Cmd, RequestParser, cmdName, encodeReply, type IlmRequest } from './protocol';
import { IlmLockspace } from './lockspace';
import { RaidLock, type RaidEnv } from './raid-lock';
import { DriveRegistry } from './drives';
import type { FaultInjector } from './drive-commands';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface IlmServerOptions {
  runDir: string;
  driveMap: string | null;
  log: (level: LogLevel, line: string) => void;
  env?: RaidEnv;
  /** Renewal failure time before the kill path (default QUIESCENT_PERIOD_MS). */
  quiescentMs?: number;
}

export function realEnv(): RaidEnv {
  return {
    nowMs: () => Math.floor(performance.now()),
    utcMs: () => BigInt(Date.now()),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    randomInt: (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1)),
  };
}

class PercentFaults implements FaultInjector {
  percentage = 0;
  fail(): boolean {
    return this.percentage > 0 && Math.random() * 100 < this.percentage;
  }
}

interface Conn {
  sock: net.Socket;
  pid: number;
  parser: RequestParser;
  ls: IlmLockspace | null;
  busy: boolean;
  closed: boolean;
}

export class IlmServer {
  /** ilm_uuid: made at start, never persisted; a restarted daemon is a new host. */
  readonly uuid = randomBytes(16);
  readonly faults = new PercentFaults();
  readonly drives: DriveRegistry;
  private readonly server: net.Server;
  private readonly conns = new Set<Conn>();
  private readonly env: RaidEnv;
  private pidFd = -1;

  constructor(private readonly opts: IlmServerOptions) {
    this.env = opts.env ?? realEnv();
    this.drives = new DriveRegistry(opts.driveMap, this.faults, (l) => opts.log('warn', l));
    this.server = net.createServer((s) => this.accept(s));
  }

  get socketPath(): string {
    return path.join(this.opts.runDir, 'main.sock');
  }

  async listen(): Promise<void> {
    const old = process.umask(0o002);
    try {
      fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o775 });
    } finally {
      process.umask(old);
    }
    // As propeller: a write lock on main.pid marks the running daemon; a second one refuses to start.
    const pidFile = path.join(this.opts.runDir, 'main.pid');
    this.pidFd = fs.openSync(pidFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    if (!tryLockFd(this.pidFd)) {
      fs.closeSync(this.pidFd);
      this.pidFd = -1;
      throw new Error(`${pidFile} is locked: another ILM daemon is running`);
    }
    fs.ftruncateSync(this.pidFd, 0);
    fs.writeSync(this.pidFd, `${process.pid}\n`, 0);
    try { fs.unlinkSync(this.socketPath); } catch { /* absent */ }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ path: this.socketPath, backlog: 5 }, () => resolve());
    });
    fs.chmodSync(this.socketPath, 0o660);
    this.opts.log('info', `listening on ${this.socketPath}`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of [...this.conns]) await this.drop(c, false);
    this.drives.close();
    if (this.pidFd >= 0) fs.closeSync(this.pidFd);
    this.pidFd = -1;
  }

  /** Lockspaces and their locks, for logs and tests. */
  lockspaces(): IlmLockspace[] {
    return [...this.conns].map((c) => c.ls).filter((ls): ls is IlmLockspace => ls !== null);
  }

  private accept(sock: net.Socket): void {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    const c: Conn = { sock, pid: peerPid(fd), parser: new RequestParser(), ls: null, busy: false, closed: false };
    this.conns.add(c);
    sock.on('data', (chunk) => { c.parser.push(chunk); this.pump(c); });
    sock.on('end', () => {
      if (c.parser.midFrame && !c.busy) this.reply(c, -1, -E.IO);
      void this.drop(c, true);
    });
    sock.on('error', () => { void this.drop(c, true); });
    sock.on('close', () => { void this.drop(c, true); });
  }

  private async drop(c: Conn, clientGone: boolean): Promise<void> {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    const ls = c.ls;
    c.ls = null;
    if (!c.sock.destroyed) c.sock.end();
    if (ls) {
      this.opts.log('info', `client pid ${c.pid} gone${clientGone ? '' : ' (daemon stopping)'}: ${ls.locks.size} lock(s) released`);
      await ls.close(true);
    }
  }

  private reply(c: Conn, cmd: number, result: number, data?: Buffer): void {
    if (c.sock.writable) c.sock.write(encodeReply(cmd < 0 ? 0 : cmd, result, data));
  }

  private pump(c: Conn): void {
    if (c.busy || c.closed) return;
    const f = c.parser.next();
    if (!f) return;
    if (f.kind === 'fatal') {
      this.opts.log('warn', `client pid ${c.pid}: ${f.reason}; closing`);
      this.reply(c, f.cmd, f.result);
      void this.drop(c, true);
      return;
    }
    if (f.kind === 'reject') {
      this.opts.log('debug', `client pid ${c.pid}: ${f.reason}`);
      this.reply(c, f.cmd, f.result);
      this.pump(c);
      return;
    }
    c.busy = true;
    void this.handle(c, f.req).then(({ result, data }) => {
      c.busy = false;
      this.reply(c, f.req.cmd, result, result >= 0 ? data : undefined);
      this.pump(c);
    }, (e: unknown) => {
      c.busy = false;
      this.opts.log('error', `client pid ${c.pid}: ${cmdName(f.req.cmd)} failed: ${(e as Error).stack ?? String(e)}`);
      this.reply(c, f.req.cmd, -E.IO);
      this.pump(c);
    });
  }

  private hostIdFor(pid: number): Buffer {
    const id = Buffer.alloc(32);
    id.writeInt32LE(pid, 0);
    this.uuid.copy(id, 16);
    return id;
  }

  private async handle(c: Conn, req: IlmRequest): Promise<{ result: number; data?: Buffer }> {
    const ls = c.ls;
    switch (req.cmd) {
      case Cmd.ADD_LOCKSPACE:
        // propeller would make a second lockspace and leak the first (still renewing its locks).
        if (ls) return { result: -E.BUSY };
        c.ls = new IlmLockspace(this.hostIdFor(c.pid), c.pid, { env: this.env, log: this.opts.log, quiescentMs: this.opts.quiescentMs });
        this.opts.log('info', `client pid ${c.pid}: lockspace added`);
        return { result: 0 };
      case Cmd.DEL_LOCKSPACE:
        if (!ls) return { result: -E.INVAL };
        c.ls = null;
        // As propeller: held locks stay on the drives until they time out.
        await ls.close(false);
        return { result: 0 };
      case Cmd.INJECT_FAULT:
        if (req.percentage < 0 || req.percentage > 100) return { result: -E.INVAL };
        this.faults.percentage = req.percentage;
        return { result: 0 };
      case Cmd.VERSION: {
        const d = this.drives.resolve(req.drive);
        if (!d) return { result: -E.NOENT };
        const v = await d.cmds.version();
        return { result: v.rv, data: Buffer.from([v.major, v.minor]) };
      }
      default:
        break;
    }
    if (!ls) return { result: -E.INVAL };
    switch (req.cmd) {
      case Cmd.ACQUIRE: {
        if (ls.find(req.lockId)) return { result: -E.BUSY };
        const { drives, failed } = this.drives.resolveAll(req.drives);
        if (drives.length <= Math.floor((drives.length + failed) / 2)) return { result: -E.NOMEM };
        const result = await ls.acquire({ lockId: req.lockId, hostId: ls.hostId, mode: req.mode, timeoutMs: req.timeoutMs, drives, failedDrives: failed });
        return { result };
      }
      case Cmd.RELEASE:
        return { result: await ls.release(req.lockId) };
      case Cmd.CONVERT:
        return { result: await ls.convert(req.lockId, req.mode) };
      case Cmd.WRITE_LVB:
        return { result: ls.writeLvb(req.lockId, req.lvb) };
      case Cmd.READ_LVB: {
        const r = await ls.readLvb(req.lockId);
        return { result: r.rv, data: r.lvb };
      }
      case Cmd.LOCK_HOST_COUNT: {
        const r = await this.queryLock(ls, req.lockId, req.drives, (raid) => raid.count());
        if (!r) return { result: -E.NOMEM };
        const data = Buffer.alloc(8);
        data.writeInt32LE(r.count, 0);
        data.writeInt32LE(r.self, 4);
        return { result: r.rv, data };
      }
      case Cmd.LOCK_MODE: {
        const r = await this.queryLock(ls, req.lockId, req.drives, (raid) => raid.queryMode());
        if (!r) return { result: -E.NOMEM };
        const data = Buffer.alloc(4);
        data.writeInt32LE(r.mode, 0);
        return { result: r.rv, data };
      }
      case Cmd.SET_SIGNAL:
        ls.killSig = req.signo & 0xff;
        return { result: 4 };
      case Cmd.SET_KILLPATH:
        ls.killPath = req.path;
        ls.killArgs = req.args;
        return { result: 0 };
      case Cmd.SET_HOST_ID:
        for (const other of this.lockspaces()) {
          if (other !== ls && other.hostId.equals(req.hostId)) return { result: -E.BUSY };
        }
        ls.hostId = Buffer.from(req.hostId);
        return { result: 0 };
      case Cmd.STOP_RENEW:
        ls.stopRenew = true;
        return { result: 0 };
      case Cmd.START_RENEW:
        ls.stopRenew = false;
        return { result: 0 };
      default:
        return { result: -E.INVAL };
    }
  }

  /**
   * A query on the held lock (between its renewals), or on a temporary lock
   * over the given paths; null when too few of them resolve to drives.
   */
  private async queryLock<T>(ls: IlmLockspace, lockId: Buffer, paths: string[], fn: (raid: RaidLock) => Promise<T>): Promise<T | null> {
    const held = ls.query(lockId, fn);
    if (held) return held;
    const { drives, failed } = this.drives.resolveAll(paths);
    if (drives.length <= Math.floor((drives.length + failed) / 2)) return null;
    return fn(new RaidLock({ lockId, hostId: ls.hostId, mode: 0, timeoutMs: 0, drives, failedDrives: failed }, this.env));
  }
}
