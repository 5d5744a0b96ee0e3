// A libseagate_ilm work-alike: one connection = one ILM lockspace (ilm_connect
// sends ADD_LOCKSPACE). Calls are answered in order, one at a time, each
// resolving to propeller's result (0 or negative) plus reply data. Used by
// lvmlockd's IDM manager and by tests against either ILM daemon.

import * as net from 'node:net';
import * as path from 'node:path';
import { E } from '../core/constants';
import { Cmd, ReplyReader, encodeRequest, type IlmRequest, type LockMode, type Reply } from './protocol';

export function ilmSocketPath(runDir = process.env.ILM_RUN_DIR || '/run/seagate_ilm'): string {
  return path.join(runDir, 'main.sock');
}

interface Waiter { resolve: (r: Reply | null) => void }

export class IlmClient {
  private readonly reader = new ReplyReader();
  private readonly waiters: Waiter[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private dead = false;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (chunk) => {
      this.reader.push(chunk);
      for (;;) {
        let r: Reply | null;
        try { r = this.reader.next(); } catch { this.fail(); return; }
        if (!r) return;
        this.waiters.shift()?.resolve(r);
      }
    });
    sock.on('error', () => this.fail());
    sock.on('close', () => this.fail());
  }

  /** ilm_connect: a new connection and lockspace; rejects with the result on failure. */
  static async connect(socketPath = ilmSocketPath()): Promise<{ rv: number; client?: IlmClient }> {
    const sock = await new Promise<net.Socket | number>((resolve) => {
      const s = net.createConnection(socketPath);
      s.once('connect', () => { s.removeAllListeners('error'); resolve(s); });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? -E.NOENT : -111));
    });
    if (typeof sock === 'number') return { rv: sock };
    const client = new IlmClient(sock);
    const r = await client.call({ cmd: Cmd.ADD_LOCKSPACE });
    if (r.rv < 0) { client.close(); return { rv: r.rv }; }
    return { rv: 0, client };
  }

  get alive(): boolean { return !this.dead; }

  close(): void {
    this.dead = true;
    this.sock.destroy();
  }

  private fail(): void {
    this.dead = true;
    for (const w of this.waiters.splice(0)) w.resolve(null);
  }

  /** Sends one request and waits for its reply; a broken connection gives -EPIPE (-32). */
  call(req: IlmRequest): Promise<{ rv: number; data: Buffer }> {
    const run = this.queue.then(() => new Promise<{ rv: number; data: Buffer }>((resolve) => {
      if (this.dead) { resolve({ rv: -32, data: Buffer.alloc(0) }); return; }
      this.waiters.push({ resolve: (r) => resolve(r ? { rv: r.header.result, data: r.data } : { rv: -32, data: Buffer.alloc(0) }) });
      this.sock.write(encodeRequest(req));
    }));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async disconnect(): Promise<number> {
    const r = await this.call({ cmd: Cmd.DEL_LOCKSPACE });
    if (r.rv === 0) this.close();
    return r.rv;
  }

  async lock(lockId: Buffer, mode: LockMode, drives: string[], timeoutMs: number): Promise<number> {
    if (drives.length === 0) return -E.INVAL;
    return (await this.call({ cmd: Cmd.ACQUIRE, mode, lockId, timeoutMs, drives })).rv;
  }

  async unlock(lockId: Buffer): Promise<number> {
    return (await this.call({ cmd: Cmd.RELEASE, lockId })).rv;
  }

  async convert(lockId: Buffer, mode: number): Promise<number> {
    return (await this.call({ cmd: Cmd.CONVERT, mode, lockId })).rv;
  }

  async writeLvb(lockId: Buffer, lvb: Buffer): Promise<number> {
    return (await this.call({ cmd: Cmd.WRITE_LVB, lockId, lvb })).rv;
  }

  async readLvb(lockId: Buffer): Promise<{ rv: number; lvb: Buffer }> {
    const r = await this.call({ cmd: Cmd.READ_LVB, lockId });
    return { rv: r.rv, lvb: r.rv >= 0 && r.data.length === 8 ? r.data : Buffer.alloc(8) };
  }

  async hostCount(lockId: Buffer, drives: string[]): Promise<{ rv: number; count: number; self: number }> {
    const r = await this.call({ cmd: Cmd.LOCK_HOST_COUNT, lockId, drives });
    if (r.rv < 0 || r.data.length < 8) return { rv: r.rv, count: 0, self: 0 };
    return { rv: r.rv, count: r.data.readInt32LE(0), self: r.data.readInt32LE(4) };
  }

  async mode(lockId: Buffer, drives: string[]): Promise<{ rv: number; mode: number }> {
    const r = await this.call({ cmd: Cmd.LOCK_MODE, lockId, drives });
    return { rv: r.rv, mode: r.rv >= 0 && r.data.length >= 4 ? r.data.readInt32LE(0) : 0 };
  }

  async setKillPath(killPath: string, args: string): Promise<number> {
    return (await this.call({ cmd: Cmd.SET_KILLPATH, path: killPath, args })).rv;
  }

  async setSignal(signo: number): Promise<number> {
    const rv = (await this.call({ cmd: Cmd.SET_SIGNAL, signo })).rv;
    return rv >= 0 ? 0 : rv;
  }

  async stopRenew(): Promise<number> { return (await this.call({ cmd: Cmd.STOP_RENEW })).rv; }
  async startRenew(): Promise<number> { return (await this.call({ cmd: Cmd.START_RENEW })).rv; }
  async injectFault(percentage: number): Promise<number> {
    return (await this.call({ cmd: Cmd.INJECT_FAULT, percentage })).rv;
  }

  async version(drive: string): Promise<{ rv: number; major: number; minor: number }> {
    const r = await this.call({ cmd: Cmd.VERSION, drive });
    return { rv: r.rv, major: r.data[0] ?? 0, minor: r.data[1] ?? 0 };
  }
}
