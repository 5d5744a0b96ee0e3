// A wdmd stand-in for tests on machines without /dev/watchdog: listens on a
// UNIX socket, records every header each client sends and answers like wdmd
// (STATUS always; OPEN_WATCHDOG only as newer wdmd does, wdmd 3.8 ignores it).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { WDMD_CMD, WDMD_HEADER_SIZE, decodeWdmdHeader, encodeWdmdHeader, type WdmdHeader } from '../../src/daemon/wdmd';

export interface FakeWdmdClient { headers: WdmdHeader[]; closed: boolean; socket: net.Socket }

export interface FakeWdmdOptions {
  /** wdmd 3.8 (Debian 12): no answer to OPEN_WATCHDOG. */
  legacy: boolean;
  fireTimeout?: number;
  testInterval?: number;
  /** Newer wdmd that cannot open the device: OPEN_WATCHDOG answered with fire_timeout 0. */
  openFails?: boolean;
}

export class FakeWdmd {
  readonly clients: FakeWdmdClient[] = [];
  private server: net.Server | null = null;

  constructor(readonly socketPath: string, private readonly o: FakeWdmdOptions) {}

  async start(): Promise<void> {
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true });
    const server = net.createServer((s) => this.serve(s));
    this.server = server;
    await new Promise<void>((r) => server.listen(this.socketPath, r));
  }

  private serve(s: net.Socket): void {
    const c: FakeWdmdClient = { headers: [], closed: false, socket: s };
    this.clients.push(c);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= WDMD_HEADER_SIZE) {
        const h = decodeWdmdHeader(buf.subarray(0, WDMD_HEADER_SIZE));
        buf = buf.subarray(WDMD_HEADER_SIZE);
        c.headers.push(h);
        if (h.cmd === WDMD_CMD.STATUS) {
          s.write(encodeWdmdHeader({ cmd: WDMD_CMD.STATUS, testInterval: this.o.testInterval ?? 10, fireTimeout: this.o.fireTimeout ?? 60, lastKeepalive: 5n }));
        } else if (h.cmd === WDMD_CMD.OPEN_WATCHDOG && !this.o.legacy) {
          s.write(encodeWdmdHeader({ cmd: WDMD_CMD.OPEN_WATCHDOG, fireTimeout: this.o.openFails ? 0 : h.fireTimeout }));
        }
      }
    });
    s.on('close', () => { c.closed = true; });
    s.on('error', () => undefined);
  }

  /** Stop listening and remove the socket file (connected clients stay until they close). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise((r) => s.close(() => r(undefined)));
    fs.rmSync(this.socketPath, { force: true });
  }

  /** [renewal, expire] of every TEST_LIVE a client sent. */
  static lives(c: FakeWdmdClient): Array<[number, number]> {
    return c.headers.filter((h) => h.cmd === WDMD_CMD.TEST_LIVE).map((h) => [Number(h.renewalTime), Number(h.expireTime)]);
  }
}
