// The serving loop of one TCMU device: take the entries between cmd_tail and
// cmd_head, run each command (one at a time, in ring order), write its
// status, sense and data-in in place, move cmd_tail, then kick the kernel;
// wait for the next interrupt. Events that arrive while commands run bump
// the uio event counter, so the next wait returns at once.

import { advanceTail, gather, pendingEntries, readMailbox, scatter, writeResponse, MAILBOX_VERSION } from './ring';
import { isDataOut, type TcmuDisk } from './disk';
import { ScsiStatus } from '../scsi';

export interface RingMemory {
  readonly mem: Buffer;
  waitEvent(): Promise<number>;
  kick(): void;
}

export interface ServeStats { commands: number; byOpcode: Map<number, number> }

/** Runs every pending entry; returns how many commands were answered. */
export async function drain(mem: Buffer, disk: TcmuDisk, stats?: ServeStats, log?: (l: string) => void): Promise<number> {
  let n = 0;
  for (;;) {
    const entries = pendingEntries(mem);
    if (entries.length === 0) return n;
    for (const e of entries) {
      if (e.kind === 'cmd') {
        const out = isDataOut(e.cdb);
        const dataOut = out ? gather(mem, e.iovs) : null;
        let done;
        try {
          done = await disk.execute(e.cdb, dataOut, out ? 0 : e.dataBytes);
        } catch (err) {
          log?.(`command ${e.cdb.toString('hex')} failed: ${(err as Error).message}`);
          done = { status: ScsiStatus.BUSY, sense: Buffer.alloc(0), dataIn: Buffer.alloc(0) };
        }
        const copied = out ? 0 : scatter(mem, e.iovs, done.dataIn);
        writeResponse(mem, e.at, done.status, done.sense, out ? undefined : copied);
        n++;
        if (stats) {
          stats.commands++;
          stats.byOpcode.set(e.cdb[0]!, (stats.byOpcode.get(e.cdb[0]!) ?? 0) + 1);
        }
      } else if (e.kind === 'other') {
        log?.(`skipping ring entry op ${e.op} (${e.len} bytes)`);
      }
      advanceTail(mem, e.len);
    }
  }
}

export class Backstore {
  private stopped = false;
  readonly stats: ServeStats = { commands: 0, byOpcode: new Map() };

  constructor(private readonly ring: RingMemory, private readonly disk: TcmuDisk, private readonly log: (l: string) => void) {
    const mb = readMailbox(ring.mem);
    if (mb.version !== MAILBOX_VERSION) throw new Error(`TCMU mailbox version ${mb.version}, expected ${MAILBOX_VERSION}`);
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      const n = await drain(this.ring.mem, this.disk, this.stats, this.log);
      if (n > 0) this.ring.kick();
      await this.ring.waitEvent();
    }
  }

  stop(): void {
    this.stopped = true;
  }
}
