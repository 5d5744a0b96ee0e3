// A raw libdaemon stream client for tests: writes arbitrary bytes, frames
// replies at "\n##\n", and reports timeouts and closes instead of throwing.
// Independent of src/ on purpose (it must not share bugs with the daemon).

import * as net from 'node:net';

export const TERM = '\n##\n';

export class RawClient {
  private buf = Buffer.alloc(0);
  private readonly frames: string[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  error: string | null = null;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const at = this.buf.indexOf(TERM);
        if (at < 0) break;
        this.frames.push(this.buf.subarray(0, at).toString('utf8'));
        this.buf = this.buf.subarray(at + TERM.length);
      }
      this.wake();
    });
    sock.on('error', (e) => { this.error = (e as NodeJS.ErrnoException).code ?? String(e); this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
  }

  static connect(path: string, timeoutMs = 5000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ path });
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect ${path} timed out`)); }, timeoutMs);
      sock.once('connect', () => { clearTimeout(timer); resolve(new RawClient(sock)); });
      sock.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Writes raw bytes (no framing). Resolves when flushed to the kernel, or on error. */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.sock.destroyed) { resolve(); return; }
      this.sock.write(data, () => resolve());
    });
  }

  /** Writes a body and the terminator, as libdaemon's buffer_write does. */
  sendFrame(body: string): Promise<void> {
    return this.write((body.endsWith('\n') ? body : body + '\n') + TERM);
  }

  /** Next reply body (without the terminator), or null on timeout/close. */
  async next(timeoutMs = 3000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== done); resolve(); }, left);
        const done = (): void => { clearTimeout(t); resolve(); };
        this.waiters.push(done);
      });
    }
    return this.frames.shift()!;
  }

  /** sendFrame + next. */
  async request(body: string, timeoutMs = 3000): Promise<string | null> {
    await this.sendFrame(body);
    return this.next(timeoutMs);
  }

  /** Resolves true once the peer closed the connection, false on timeout. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return true;
  }

  /** Replies received and not yet read. */
  get buffered(): number { return this.frames.length; }

  destroy(): void { this.sock.destroy(); }
}

/** `key ="value"` request text as lvm commands write it (first line `request="x"`). */
export function lvmRequest(request: string, fields: Array<[string, string | number]> = []): string {
  let out = `request="${request}"\n`;
  for (const [k, v] of fields) out += typeof v === 'number' ? `${k} =${v}\n` : `${k} ="${v}"\n`;
  return out;
}

/** op_result of a reply text, or NaN. */
export function opResult(reply: string | null): number {
  const m = reply === null ? null : /(?:^|\n)op_result = (-?\d+)/.exec(reply);
  return m ? Number(m[1]) : NaN;
}
