// The emulated drive firmware's In-Drive-Mutex table: a pure state machine
// (no clock, no I/O; the caller hands in the drive's time). No firmware source
// exists; the behaviour below is the reconstruction in the project's IDM spec
// §5 (hardware tests in propeller's test/*.py, the status→errno mapping in
// src/idm_scsi.c, the raid layer's comments). Choices where the spec marks
// behaviour as inferred are stated where they are made:
//
// - A holder is expired when now > last refresh + countdown. An expired holder
//   keeps its mutex (its own REFRESH and UNLOCK still succeed) until another
//   host BREAKs it; TRYLOCK against an expired holder is refused like against
//   a live one (the ILM always follows a refused TRYLOCK with BREAK).
// - BREAK drops the broken holders' entries, so their later UNLOCK gets a
//   reservation conflict (-ENOENT) and their REFRESH one too (-ETIME).
// - DESTROY with no live holder removes the mutex's entries. Whether the real
//   firmware also forgets the mutex's LVB is not known (propeller's LVB tests
//   predate its destroy-after-every-release); by default the emulated drive
//   keeps the LVB for the next TRYLOCK of the same id, which is what lvmlockd's
//   timestamp scheme needs to tell other hosts about a change.
//   FirmwareOptions.keepLvbOnDestroy = false models the other reading.
// - Capacity: entryLimit entries in the table, hostLimit distinct hosts,
//   sharedHostLimit holders of one mutex (the real values are not public).

import assert from 'node:assert/strict';
import { EntryState, LVB_BYTES, MutexClass, MutexOp, ResVerType, COUNTDOWN_FOREVER, type ReadRecord, type WriteRecord } from './record';

/** What the firmware answers; the SCSI/NVMe front ends turn it into status + sense. */
export type Outcome =
  | 'good'
  | 'not-found'          // LBA out of range: no such mutex
  | 'conflict'           // RESERVATION CONFLICT
  | 'busy'               // BUSY
  | 'terminated'         // COMMAND TERMINATED
  | 'invalid-opcode'
  | 'mutex-list-full'
  | 'host-list-full'
  | 'mutex-host-list-full';

export interface FirmwareOptions {
  entryLimit: number;
  hostLimit: number;
  sharedHostLimit: number;
  /** Keep a destroyed mutex's LVB for the next TRYLOCK of the same id. */
  keepLvbOnDestroy: boolean;
}

export const DEFAULT_FIRMWARE_OPTIONS: FirmwareOptions = {
  entryLimit: 4000, hostLimit: 64, sharedHostLimit: 64, keepLvbOnDestroy: true,
};

/** One (mutex, host) entry. Times are the drive's clock in ms. */
export interface Entry {
  hostId: string;           // hex, client order
  locked: boolean;
  mutexClass: number;
  countdownMs: number | null;  // null = never expires
  lastRefreshMs: number;
  modifiedMs: string;       // the host's time_now of the last write, decimal u64
}

export interface Mutex {
  lockId: string;           // hex, client order
  /** Client-order LVB; byte 7 is never stored (it carries the res_ver type on the wire). */
  lvb: string;              // hex, 8 bytes
  entries: Entry[];
}

/** The whole persisted state of one drive (JSON-safe). */
export interface FirmwareState {
  version: 1;
  mutexes: Mutex[];
  /** LVBs of destroyed mutexes, when keepLvbOnDestroy. */
  keptLvbs: Record<string, string>;
}

export function emptyFirmwareState(): FirmwareState {
  return { version: 1, mutexes: [], keptLvbs: {} };
}

/** One row of a list read: an entry of a mutex, as the drive reports it. */
export type ListedEntry = ReadRecord;

const ZERO_LVB = '00'.repeat(LVB_BYTES);

export class IdmFirmware {
  readonly state: FirmwareState;
  private readonly opts: FirmwareOptions;

  constructor(state: FirmwareState = emptyFirmwareState(), opts: Partial<FirmwareOptions> = {}) {
    if (state.version !== 1) throw new Error(`unsupported drive state version ${String(state.version)}`);
    this.state = state;
    this.opts = { ...DEFAULT_FIRMWARE_OPTIONS, ...opts };
  }

  /** A mutex write (TRYLOCK, UNLOCK, REFRESH, BREAK, DESTROY) at drive time nowMs. */
  write(op: number, rec: WriteRecord, nowMs: number): Outcome {
    if (rec.mutexClass !== MutexClass.EXCLUSIVE && rec.mutexClass !== MutexClass.SHARED_PROTECTED_READ
      && op !== MutexOp.DESTROY) {
      return 'terminated';
    }
    const lockId = rec.lockId.toString('hex');
    const hostId = rec.hostId.toString('hex');
    const outcome = this.dispatch(op, lockId, hostId, rec, nowMs);
    const m = this.find(lockId);
    if (m) checkMutex(m);
    return outcome;
  }

  private dispatch(op: number, lockId: string, hostId: string, rec: WriteRecord, nowMs: number): Outcome {
    switch (op) {
      case MutexOp.TRYLOCK: return this.trylock(lockId, hostId, rec, nowMs);
      case MutexOp.UNLOCK: return this.unlock(lockId, hostId, rec);
      case MutexOp.REFRESH: return this.refresh(lockId, hostId, rec, nowMs);
      case MutexOp.BREAK: return this.break(lockId, hostId, rec, nowMs);
      case MutexOp.DESTROY: return this.destroy(lockId, nowMs);
      default: return 'invalid-opcode';
    }
  }

  /** Every entry of the table in order (one row per mutex and host). */
  list(nowMs: number): ListedEntry[] {
    const rows: ListedEntry[] = [];
    for (const m of this.state.mutexes) {
      for (const e of m.entries) {
        rows.push({
          state: !e.locked ? EntryState.UNLOCKED : this.expired(e, nowMs) ? EntryState.TIMEOUT : EntryState.LOCKED,
          modifiedMs: BigInt(e.modifiedMs),
          countdownMs: e.countdownMs === null ? COUNTDOWN_FOREVER : BigInt(e.countdownMs),
          mutexClass: e.mutexClass,
          lvb: Buffer.from(m.lvb, 'hex'),
          lockId: Buffer.from(m.lockId, 'hex'),
          hostId: Buffer.from(e.hostId, 'hex'),
        });
      }
    }
    return rows;
  }

  counters(nowMs: number): { total: number; exclusive: number; shared: number } {
    const rows = this.list(nowMs);
    return {
      total: rows.length,
      exclusive: rows.filter((r) => r.mutexClass === MutexClass.EXCLUSIVE).length,
      shared: rows.filter((r) => r.mutexClass === MutexClass.SHARED_PROTECTED_READ).length,
    };
  }

  private expired(e: Entry, nowMs: number): boolean {
    return e.countdownMs !== null && nowMs > e.lastRefreshMs + e.countdownMs;
  }

  private find(lockId: string): Mutex | undefined {
    return this.state.mutexes.find((m) => m.lockId === lockId);
  }

  private entryCount(): number {
    return this.state.mutexes.reduce((n, m) => n + m.entries.length, 0);
  }

  private hosts(): Set<string> {
    return new Set(this.state.mutexes.flatMap((m) => m.entries.map((e) => e.hostId)));
  }

  private hold(e: Entry, rec: WriteRecord, nowMs: number): void {
    e.locked = true;
    e.mutexClass = rec.mutexClass;
    e.countdownMs = rec.countdownMs >= COUNTDOWN_FOREVER || rec.countdownMs > BigInt(Number.MAX_SAFE_INTEGER)
      ? null : Number(rec.countdownMs);
    e.lastRefreshMs = nowMs;
    e.modifiedMs = rec.timeNowMs.toString();
  }

  private trylock(lockId: string, hostId: string, rec: WriteRecord, nowMs: number): Outcome {
    let m = this.find(lockId);
    const mine = m?.entries.find((e) => e.hostId === hostId);
    if (mine?.locked) return 'terminated';
    const others = (m?.entries ?? []).filter((e) => e.locked && e.hostId !== hostId);
    const compatible = others.every((e) => e.mutexClass === MutexClass.SHARED_PROTECTED_READ)
      && (others.length === 0 || rec.mutexClass === MutexClass.SHARED_PROTECTED_READ);
    if (!compatible) return 'conflict';
    if (!mine) {
      if (this.entryCount() >= this.opts.entryLimit) return 'mutex-list-full';
      if (!this.hosts().has(hostId) && this.hosts().size >= this.opts.hostLimit) return 'host-list-full';
      if (others.length >= this.opts.sharedHostLimit) return 'mutex-host-list-full';
    }
    if (!m) {
      m = { lockId, lvb: this.state.keptLvbs[lockId] ?? ZERO_LVB, entries: [] };
      delete this.state.keptLvbs[lockId];
      this.state.mutexes.push(m);
    }
    const entry = mine ?? { hostId, locked: false, mutexClass: rec.mutexClass, countdownMs: null, lastRefreshMs: nowMs, modifiedMs: '0' };
    if (!mine) m.entries.push(entry);
    this.hold(entry, rec, nowMs);
    return 'good';
  }

  private unlock(lockId: string, hostId: string, rec: WriteRecord): Outcome {
    const m = this.find(lockId);
    if (!m) return 'not-found';
    const mine = m.entries.find((e) => e.hostId === hostId);
    if (!mine) return 'conflict';
    if (!mine.locked) return mine.mutexClass === MutexClass.EXCLUSIVE ? 'good' : 'conflict';
    if (mine.mutexClass !== rec.mutexClass) return 'terminated';
    mine.locked = false;
    mine.modifiedMs = rec.timeNowMs.toString();
    if (rec.resVerType === ResVerType.UPDATE_NO_VALID || rec.resVerType === ResVerType.UPDATE_VALID) {
      const lvb = Buffer.from(rec.lvb);
      lvb[LVB_BYTES - 1] = 0;
      m.lvb = lvb.toString('hex');
    }
    return 'good';
  }

  private refresh(lockId: string, hostId: string, rec: WriteRecord, nowMs: number): Outcome {
    const m = this.find(lockId);
    if (!m) return 'not-found';
    const mine = m.entries.find((e) => e.hostId === hostId && e.locked);
    if (!mine) return 'conflict';
    const others = m.entries.filter((e) => e.locked && e !== mine);
    if (rec.mutexClass === MutexClass.EXCLUSIVE && mine.mutexClass !== MutexClass.EXCLUSIVE && others.length > 0) {
      return 'terminated';
    }
    this.hold(mine, rec, nowMs);
    return 'good';
  }

  private break(lockId: string, hostId: string, rec: WriteRecord, nowMs: number): Outcome {
    const m = this.find(lockId);
    if (!m) return 'not-found';
    const others = m.entries.filter((e) => e.locked && e.hostId !== hostId);
    if (others.some((e) => !this.expired(e, nowMs))) return 'conflict';
    m.entries = m.entries.filter((e) => !others.includes(e));
    let mine = m.entries.find((e) => e.hostId === hostId);
    if (!mine) {
      mine = { hostId, locked: false, mutexClass: rec.mutexClass, countdownMs: null, lastRefreshMs: nowMs, modifiedMs: '0' };
      m.entries.push(mine);
    }
    this.hold(mine, rec, nowMs);
    return 'good';
  }

  private destroy(lockId: string, nowMs: number): Outcome {
    const m = this.find(lockId);
    if (!m) return 'not-found';
    if (m.entries.some((e) => e.locked && !this.expired(e, nowMs))) return 'conflict';
    this.state.mutexes = this.state.mutexes.filter((x) => x !== m);
    if (this.opts.keepLvbOnDestroy && m.lvb !== ZERO_LVB) this.state.keptLvbs[lockId] = m.lvb;
    return 'good';
  }
}

/** What no command may break: one entry per host; an exclusive holder holds alone. */
function checkMutex(m: Mutex): void {
  assert.equal(new Set(m.entries.map((e) => e.hostId)).size, m.entries.length, `mutex ${m.lockId}: two entries of one host`);
  const held = m.entries.filter((e) => e.locked);
  const exclusive = held.filter((e) => e.mutexClass === MutexClass.EXCLUSIVE);
  assert.ok(exclusive.length === 0 || held.length === 1, `mutex ${m.lockId}: an exclusive holder beside others`);
}
