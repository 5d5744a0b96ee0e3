// The ILM's side of an emulated drive: SCSI commands over the drive process's
// unix socket (the socket stands in for /dev/sgN), or its TCP port (tcp:HOST:PORT). One connection, commands
// strictly one at a time as on one SG_IO file descriptor. A drive that cannot
// be reached, hangs up or does not answer within the command timeout gives
// -EIO (what the ILM's raid layer counts as a failed drive).

import * as net from 'node:net';
import { E } from '../core/constants';
import { SgDecoder, driveAddress, encodeSgRequest, parseSgReply, type DriveTransport, type ScsiCommand, type ScsiReply, type SgResponse } from './transport';

interface Pending { resolve: (r: ScsiReply) => void; timer: NodeJS.Timeout }

export class SocketTransport implements DriveTransport {
  private sock: net.Socket | null = null;
  private decoder = new SgDecoder<SgResponse>(parseSgReply);
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  execute(cmd: ScsiCommand): Promise<ScsiReply> {
    const run = this.queue.then(() => this.executeNow(cmd));
    this.queue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.drop('closed');
  }

  private connect(): Promise<net.Socket | string> {
    if (this.sock) return Promise.resolve(this.sock);
    return new Promise((resolve) => {
      const s = net.createConnection(driveAddress(this.path));
      const fail = (e: Error): void => resolve(`cannot connect to ${this.path}: ${e.message}`);
      s.once('error', fail);
      s.once('connect', () => {
        s.off('error', fail);
        this.sock = s;
        s.setNoDelay(true);
        this.decoder = new SgDecoder<SgResponse>(parseSgReply);
        s.on('data', (chunk) => this.onData(chunk));
        s.on('error', () => this.drop('connection error'));
        s.on('close', () => this.drop('connection closed'));
        resolve(s);
      });
    });
  }

  private async executeNow(cmd: ScsiCommand): Promise<ScsiReply> {
    const s = await this.connect();
    if (typeof s === 'string') return { ok: false, errno: -E.IO, message: s };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.drop(`no answer within ${cmd.timeoutMs} ms`);
      }, cmd.timeoutMs);
      this.pending = { resolve, timer };
      s.write(encodeSgRequest(cmd));
    });
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    let r: SgResponse | null;
    try {
      r = this.decoder.next();
    } catch (e) {
      this.drop((e as Error).message);
      return;
    }
    if (!r || !this.pending) return;
    const p = this.pending;
    this.pending = null;
    clearTimeout(p.timer);
    p.resolve({ ok: true, ...r });
  }

  private drop(message: string): void {
    const s = this.sock;
    this.sock = null;
    if (s) s.destroy();
    const p = this.pending;
    this.pending = null;
    if (p) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, errno: -E.IO, message: `${this.path}: ${message}` });
    }
  }
}
