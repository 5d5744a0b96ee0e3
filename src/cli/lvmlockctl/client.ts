// lvmlockctl's libdaemon client: one stream connection, one request and one
// reply at a time, the hello handshake, and libdaemon's reply accessors.

import * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { FrameDecoder, encodeFrame } from '../../protocol/framing';
import { parseConfigTree, ConfigMap, type ConfigValue } from '../../protocol/config-tree';
import { sysStrerror } from '../../util/libc';
import { Errno } from '../../util/errno';
import type { CliEnv } from './env';

const { ECONNRESET, EPROTO, EIO } = Errno;

export interface Reply {
  /** errno-style transport error (0 = none), like libdaemon's reply.error. */
  error: number;
  text?: string;
  map?: ConfigMap;
}

/** Lenient reply parsing: the config-tree grammar first, then `key = value` per line. */
export function parseReply(text: string): ConfigMap {
  const parsed = parseConfigTree(text);
  if (parsed.ok) return new ConfigMap(parsed.entries);
  const entries: Array<[string, ConfigValue]> = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_.\-[\]]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const raw = m[2]!;
    if (raw.startsWith('"')) {
      entries.push([m[1]!, raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw.slice(1)]);
    } else if (/^[-+]?\d+$/.test(raw)) {
      entries.push([m[1]!, BigInt(raw)]);
    } else {
      entries.push([m[1]!, raw]);
    }
  }
  return new ConfigMap(entries);
}

/** daemon_reply_str(): the string value or the default. */
export function replyStr(reply: Reply, key: string, def: string): string {
  return reply.map?.str(key) ?? def;
}

/** daemon_reply_int() stored into a C int: 64-bit value truncated to 32 bits. */
export function replyInt(reply: Reply, key: string, def: number): number {
  if (!reply.map) return def;
  let v = reply.map.int(key);
  if (v === undefined) {
    const s = reply.map.str(key);
    if (s !== undefined && /^[-+]?\d+$/.test(s.trim())) v = BigInt(s.trim());
  }
  if (v === undefined) return def;
  return Number(BigInt.asIntN(32, v));
}

/** The positive errno of a Node error (by its code, else its errno), EIO when it has none. */
export function errnoOf(e: unknown): number {
  const code = (e as { code?: string } | null)?.code;
  if (code && code in osConstants.errno) return (osConstants.errno as Record<string, number>)[code]!;
  const n = (e as { errno?: number } | null)?.errno;
  return typeof n === 'number' ? Math.abs(n) : EIO;
}

/** One libdaemon stream connection: strictly one request, one reply. */
export class LvmlockdConnection {
  private readonly decoder = new FrameDecoder();
  private pending: Array<(r: Reply) => void> = [];
  private queued: Reply[] = [];
  private dead = 0;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      for (const ev of this.decoder.push(d)) {
        const r: Reply = ev.kind === 'message'
          ? { error: 0, text: ev.text, map: parseReply(ev.text) }
          : { error: EPROTO };
        this.deliver(r);
      }
    });
    const fail = (err: number) => {
      if (!this.dead) this.dead = err;
      const waiting = this.pending;
      this.pending = [];
      for (const w of waiting) w({ error: this.dead });
    };
    sock.on('error', (e) => fail(errnoOf(e)));
    sock.on('end', () => fail(ECONNRESET));
    sock.on('close', () => fail(ECONNRESET));
  }

  private deliver(r: Reply): void {
    const w = this.pending.shift();
    if (w) w(r); else this.queued.push(r);
  }

  /** Connects; resolves with the connection or the connect errno. */
  static connect(socketPath: string): Promise<LvmlockdConnection | number> {
    return new Promise((resolve) => {
      const sock = net.createConnection({ path: socketPath });
      const onError = (e: Error) => { sock.destroy(); resolve(errnoOf(e)); };
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.removeListener('error', onError);
        resolve(new LvmlockdConnection(sock));
      });
    });
  }

  /** Sends one message body (must end in "\n") and waits for the reply. */
  send(body: string): Promise<Reply> {
    return new Promise((resolve) => {
      if (this.dead && this.queued.length === 0) { resolve({ error: this.dead }); return; }
      if (!this.dead) {
        this.sock.write(encodeFrame(body), (err) => {
          if (err && !this.dead) this.dead = errnoOf(err);
        });
      }
      // Like libdaemon, whatever message arrives next (even one that was sent
      // unsolicited before this request) is taken as the reply.
      const q = this.queued.shift();
      if (q) { resolve(q); return; }
      this.pending.push(resolve);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

/** The body daemon_send_simple() writes: `request = "name"`. */
export function simpleRequest(name: string): string {
  return `request = "${name}"\n`;
}

/** lvmlockd_open(): connect + hello. Messages of libdaemon go to stderr. */
export async function lvmlockdOpen(env: CliEnv): Promise<LvmlockdConnection | null> {
  const c = await LvmlockdConnection.connect(env.socketPath);
  if (typeof c === 'number') {
    // libdaemon of 2.03.16 reports this with log_sys_error (HEAD: debug only).
    env.stderr(`${env.socketPath}: connect failed: ${sysStrerror(c)}\n`);
    return null;
  }
  const r = await c.send(simpleRequest('hello'));
  if (r.error || replyStr(r, 'response', 'unknown') !== 'OK') {
    env.stderr(`Daemon lvmlockd returned error ${r.error}\n`);
    c.close();
    return null;
  }
  const protocol = replyStr(r, 'protocol', '\0');
  if (protocol !== 'lvmlockd') {
    env.stderr(`Daemon lvmlockd: requested protocol lvmlockd != ${protocol === '\0' ? '' : protocol}\n`);
    c.close();
    return null;
  }
  const version = replyInt(r, 'version', 0);
  if (version !== 1) {
    env.stderr(`Daemon lvmlockd: requested protocol version 1 != ${version}\n`);
    c.close();
    return null;
  }
  return c;
}
