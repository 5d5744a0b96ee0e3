// One emulated IDM drive: a process that owns the firmware state of one drive,
// persists it in a file (written to a temporary name, fsynced, renamed, after
// every command that changed it, before the answer goes out) and answers SCSI
// commands on a unix socket that stands in for the device node. Several ILM
// daemons (hosts) connect to the same socket, as several hosts reach one
// shared drive.
//
// The drive's clock for membership expiry is the wall clock of this process
// (Date.now()), so a drive restarted from its file keeps judging expiry
// consistently; the hosts' time_now values are only stored.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { IdmFirmware, emptyFirmwareState, type FirmwareOptions, type FirmwareState } from './firmware';
import { ScsiTarget } from './scsi-target';
import { SgDecoder, driveAddress, encodeSgReply, parseSgRequest, type SgRequest } from './transport';

export interface DriveServerOptions {
  socketPath: string;
  statePath: string;
  wwn: string;
  versionMajor?: number;
  /** Answer every command this many ms late (a slow drive). */
  delayMs?: number;
  firmware?: Partial<FirmwareOptions>;
  log?: (line: string) => void;
}

export function loadFirmwareState(file: string): FirmwareState {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as FirmwareState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyFirmwareState();
    throw new Error(`cannot read drive state ${file}: ${(e as Error).message}`);
  }
}

export function saveFirmwareState(file: string, state: FirmwareState): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(state));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export class DriveServer {
  private readonly server: net.Server;
  private readonly target: ScsiTarget;
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly opts: DriveServerOptions) {
    const firmware = new IdmFirmware(loadFirmwareState(opts.statePath), opts.firmware ?? {});
    this.target = new ScsiTarget(firmware, { wwn: opts.wwn, versionMajor: opts.versionMajor ?? 8 });
    this.server = net.createServer((c) => this.accept(c));
  }

  /** Listens on the unix socket, or on TCP for a `tcp:HOST:PORT` address. */
  listen(): Promise<void> {
    const addr = driveAddress(this.opts.socketPath);
    if ('path' in addr) {
      fs.mkdirSync(path.dirname(addr.path), { recursive: true });
      try { fs.unlinkSync(addr.path); } catch { /* not there */ }
    }
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      if ('path' in addr) this.server.listen(addr.path, () => resolve());
      else this.server.listen(addr.port, addr.host, () => resolve());
    });
  }

  close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(c: net.Socket): void {
    this.conns.add(c);
    c.setNoDelay(true);
    const decoder = new SgDecoder<SgRequest>(parseSgRequest);
    let busy = Promise.resolve();
    c.on('data', (chunk) => {
      decoder.push(chunk);
      for (;;) {
        let req: SgRequest | null;
        try {
          req = decoder.next();
        } catch (e) {
          this.opts.log?.(`dropping a connection: ${(e as Error).message}`);
          c.destroy();
          return;
        }
        if (!req) return;
        const r = req;
        busy = busy.then(() => this.answer(c, r));
      }
    });
    c.on('error', () => c.destroy());
    c.on('close', () => this.conns.delete(c));
  }

  private async answer(c: net.Socket, req: SgRequest): Promise<void> {
    if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
    const done = this.target.execute(req.cdb, req.dataOut, req.dataInBytes, Date.now());
    if (done.mutated) saveFirmwareState(this.opts.statePath, this.target.firmware.state);
    if (!c.destroyed) c.write(encodeSgReply(done));
  }
}
