// One ILM lock spread over several drives, and the majority rules that make
// it one lock (propeller: src/raid_lock.c). Each drive has a small state
// machine that decides which command the next request becomes on that drive
// (a LOCK that found the mutex held becomes a BREAK; one that found our own
// stale entry becomes an UNLOCK first). The whole lock needs a majority of
// all drives named, counting the drives whose path could not be resolved as
// failed. Time and randomness come from the caller (RaidEnv).

import { E } from '../core/constants';
import { MutexOp } from '../idm/record';
import { IdmMode } from './protocol';
import type { DriveCommands, MutexRequest } from './drive-commands';

/** ILM_MAJORITY_TIMEOUT: how long lock, renew and read-LVB keep retrying. */
export const MAJORITY_TIMEOUT_MS = 5000;
/** Pause between failed renew or read rounds (propeller spins; we yield). */
export const RETRY_PAUSE_MS = 20;

export const DriveState = { INIT: 0, BUSY: 1, DUPLICATE: 2, LOCK: 3, TIMEOUT: 4, FAULT: 5 } as const;
type DriveStateCode = (typeof DriveState)[keyof typeof DriveState];

export type RaidOp = 'lock' | 'unlock' | 'convert' | 'renew' | 'break' | 'destroy' | 'read_lvb' | 'count' | 'mode';

export interface RaidEnv {
  /** Monotonic ms. */
  nowMs(): number;
  /** Wall-clock ms, written to the drives as time_now. */
  utcMs(): bigint;
  sleep(ms: number): Promise<void>;
  /** Uniform integer in [lo, hi]. */
  randomInt(lo: number, hi: number): number;
}

export interface LockDrive {
  /** Identity used to merge duplicate paths (WWN or emulated socket). */
  id: string;
  cmds: DriveCommands;
}

interface Slot {
  drive: LockDrive;
  state: DriveStateCode;
  result: number;
  count: number;
  self: number;
  mode: number;
  lvb: Buffer;
  isBrk: boolean;
}

/** Which drive command a requested op becomes in a state; 'skip' = answered 0 without I/O. */
function commandFor(state: DriveStateCode, op: RaidOp): RaidOp | 'skip' {
  switch (state) {
    case DriveState.INIT:
      if (op === 'renew' || op === 'convert') return 'lock';
      if (op === 'unlock') return 'skip';
      return op;
    case DriveState.BUSY: return 'break';
    case DriveState.DUPLICATE:
    case DriveState.TIMEOUT:
    case DriveState.FAULT: return 'unlock';
    case DriveState.LOCK: return op;
  }
}

function transition(state: DriveStateCode, result: number): DriveStateCode {
  switch (state) {
    case DriveState.INIT:
      if (result === 0) return DriveState.LOCK;
      if (result === -E.BUSY) return DriveState.BUSY;
      if (result === -E.AGAIN) return DriveState.DUPLICATE;
      return DriveState.INIT;
    case DriveState.BUSY: return result === 0 ? DriveState.LOCK : DriveState.INIT;
    case DriveState.LOCK:
      if (result === -E.TIME) return DriveState.TIMEOUT;
      if (result === -E.FAULT) return DriveState.FAULT;
      if (result === -E.NOENT || result === 1) return DriveState.INIT;
      return DriveState.LOCK;
    default: return DriveState.INIT;
  }
}

function opposite(mode: number): number {
  return mode === IdmMode.EXCLUSIVE ? IdmMode.SHAREABLE : IdmMode.EXCLUSIVE;
}

export interface RaidLockSpec {
  lockId: Buffer;
  hostId: Buffer;
  mode: number;
  timeoutMs: number;
  drives: LockDrive[];
  /** Paths named by the client that did not resolve to a drive. */
  failedDrives: number;
}

export class RaidLock {
  readonly lockId: Buffer;
  readonly hostId: Buffer;
  mode: number;
  readonly timeoutMs: number;
  readonly failedDrives: number;
  private lvbValue: Buffer = Buffer.alloc(8);
  /**
   * Whether the LVB holds a value (written by the client, or read from a
   * majority). Until it does, UNLOCK leaves the drives' LVB as it is: writing
   * the initial zeros would erase the last writer's value (simulator finding 21).
   */
  lvbKnown = false;
  /** Last LVB written by the client or read from the drives; reaches the drives with UNLOCK. */
  get lvb(): Buffer { return this.lvbValue; }
  set lvb(b: Buffer) {
    this.lvbValue = b;
    this.lvbKnown = true;
  }
  convertFailed = false;
  private readonly slots: Slot[];

  constructor(spec: RaidLockSpec, private readonly env: RaidEnv) {
    this.lockId = spec.lockId;
    this.hostId = spec.hostId;
    this.mode = spec.mode;
    this.timeoutMs = spec.timeoutMs;
    this.failedDrives = spec.failedDrives;
    this.slots = spec.drives.map((drive) => ({
      drive, state: DriveState.INIT, result: 0, count: 0, self: 0, mode: 0, lvb: Buffer.alloc(8), isBrk: false,
    }));
  }

  get total(): number { return this.slots.length + this.failedDrives; }
  get majority(): number { return Math.floor(this.total / 2) + 1; }
  /** N - N/2: how many failures make a majority impossible. */
  private get failQuorum(): number { return this.total - Math.floor(this.total / 2); }

  driveStates(): Array<{ id: string; state: number; result: number }> {
    return this.slots.map((s) => ({ id: s.drive.id, state: s.state, result: s.result }));
  }

  private lockedScore(): number {
    return this.slots.filter((s) => s.result === 0 && s.state === DriveState.LOCK).length;
  }
  private countResult(errno: number): number {
    return this.slots.filter((s) => s.result === errno).length;
  }
  private ioFailures(): number {
    return this.countResult(-E.IO) + this.failedDrives;
  }

  private request(mode: number, withLvb: boolean): MutexRequest {
    return {
      lockId: this.lockId, hostId: this.hostId, mode, timeoutMs: this.timeoutMs,
      lvb: withLvb && this.lvbKnown ? this.lvb : undefined, timeNowMs: this.env.utcMs(),
    };
  }

  /** One drive command; returns its errno. */
  private async run(slot: Slot, cmd: RaidOp, mode: number): Promise<number> {
    const c = slot.drive.cmds;
    switch (cmd) {
      case 'lock': return c.mutex(MutexOp.TRYLOCK, this.request(mode, false));
      case 'unlock': return c.mutex(MutexOp.UNLOCK, this.request(mode, true));
      case 'convert':
      case 'renew': return c.mutex(MutexOp.REFRESH, this.request(mode, false));
      case 'break': return c.mutex(MutexOp.BREAK, this.request(mode, false));
      case 'destroy': return c.mutex(MutexOp.DESTROY, this.request(mode, false));
      case 'read_lvb': {
        const r = await c.readLvb(this.lockId, this.hostId);
        if (r.rv === 0) slot.lvb = r.lvb;
        return r.rv;
      }
      case 'count': {
        const r = await c.count(this.lockId, this.hostId);
        if (r.rv === 0) { slot.count = r.count; slot.self = r.self; }
        return r.rv;
      }
      case 'mode': {
        const r = await c.mode(this.lockId);
        if (r.rv === 0) slot.mode = r.mode;
        return r.rv;
      }
    }
  }

  /** Drives one drive through its state machine for one requested op. */
  private async issue(slot: Slot, op: RaidOp, mode: number): Promise<void> {
    for (let guard = 0; guard < 4; guard++) {
      const cmd = commandFor(slot.state, op);
      if (cmd === 'skip') { slot.result = 0; return; }
      // In INIT a lock or break is asked for in the wanted mode; otherwise in the lock's mode.
      const cmdMode = cmd === 'unlock' || cmd === 'destroy' ? this.mode : mode;
      let result = await this.run(slot, cmd, cmdMode);
      const forced = (slot.state === DriveState.INIT && (op === 'count' || op === 'mode' || op === 'read_lvb'))
        || (slot.state === DriveState.LOCK && op === 'unlock');
      if (cmd === 'convert' && slot.state === DriveState.LOCK && result === -E.PERM && mode === IdmMode.EXCLUSIVE) {
        // Other sharers present: a BREAK succeeds if their memberships have timed out.
        result = await this.run(slot, 'break', IdmMode.EXCLUSIVE);
        if (result === 0) slot.isBrk = true;
      }
      const next = transition(slot.state, forced ? 1 : result);
      if (result === 0 && cmd === 'break') slot.isBrk = true;
      if (result === 0 && cmd === 'lock') slot.isBrk = false;
      slot.result = result;
      slot.state = next;
      if (next === DriveState.INIT && cmd === 'unlock' && result === -E.INVAL) {
        // The mutex was left in the other mode by an earlier user of this host id.
        await slot.drive.cmds.mutex(MutexOp.UNLOCK, this.request(opposite(this.mode), true));
        await slot.drive.cmds.mutex(MutexOp.DESTROY, this.request(opposite(this.mode), false));
      }
      if (next === DriveState.LOCK || next === DriveState.INIT) return;
    }
  }

  private async round(op: RaidOp, mode: number, only?: (s: Slot) => boolean): Promise<void> {
    await Promise.all(this.slots.filter((s) => !only || only(s)).map((s) => this.issue(s, op, mode)));
  }

  /** Acquire on a majority within MAJORITY_TIMEOUT_MS: 0, -EIO (too many I/O failures) or -1. */
  async lock(): Promise<number> {
    for (const s of this.slots) { s.state = DriveState.INIT; s.result = 0; }
    const deadline = this.env.nowMs() + MAJORITY_TIMEOUT_MS;
    for (;;) {
      await this.round('lock', this.mode);
      if (this.lockedScore() >= this.majority) return 0;
      // The last lock round's results decide the answer, not the clean-up's.
      const ioFailures = this.ioFailures();
      await this.round('unlock', this.mode, (s) => s.state !== DriveState.INIT);
      if (this.env.nowMs() > deadline) return ioFailures >= this.failQuorum ? -E.IO : -1;
      await this.env.sleep(this.env.randomInt(500, 1000) / 1000);
    }
  }

  async unlock(): Promise<number> {
    await this.round('unlock', this.mode);
    if (this.ioFailures() >= this.failQuorum) return -E.IO;
    if (this.countResult(-E.TIME) >= this.failQuorum) return -E.TIME;
    return 0;
  }

  async convert(newMode: number): Promise<number> {
    if (this.convertFailed) return -1;
    const oldMode = this.mode;
    await this.round('convert', newMode);
    if (this.lockedScore() >= this.majority) { this.mode = newMode; return 0; }
    if (this.countResult(-E.TIME) >= this.failQuorum) return -E.TIME;
    if (this.ioFailures() >= this.failQuorum) return -E.IO;
    if (oldMode === IdmMode.EXCLUSIVE && newMode === IdmMode.SHAREABLE) {
      this.convertFailed = true;
      this.mode = newMode;
      return 0;
    }
    await this.round('convert', oldMode);
    if (this.lockedScore() < this.majority) this.convertFailed = true;
    return -1;
  }

  /** Keep the memberships alive: half of an even set is enough to keep a lock. */
  async renew(): Promise<number> {
    const need = this.total % 2 === 0 ? this.total / 2 : Math.floor(this.total / 2) + 1;
    const deadline = this.env.nowMs() + MAJORITY_TIMEOUT_MS;
    for (;;) {
      await this.round('renew', this.mode);
      if (this.lockedScore() >= need) return 0;
      if (this.env.nowMs() > deadline) return -1;
      await this.env.sleep(RETRY_PAUSE_MS);
    }
  }

  async destroy(): Promise<void> {
    await this.round('destroy', this.mode);
  }

  /**
   * The largest LVB a majority reports. When a drive was taken by BREAK the
   * value cannot be trusted: propeller answers all ones at once. We read the
   * drives anyway, so that UNLOCK writes back the value they hold instead of
   * zeros (finding 21), and answer that value with its last byte, which no
   * drive stores, set to 0xFF: still a value no drive can hold (the reader
   * invalidates), and the next writer's timestamp can count on from the
   * drives' largest one (lvb-timestamp.ts; finding 19). All ones when the
   * read fails.
   */
  async readLvb(): Promise<{ rv: number; lvb: Buffer }> {
    const broken = this.slots.some((s) => s.isBrk);
    const deadline = this.env.nowMs() + MAJORITY_TIMEOUT_MS;
    for (;;) {
      await this.round('read_lvb', this.mode);
      const ok = this.slots.filter((s) => s.result === 0);
      if (ok.length >= this.majority) {
        let best = ok[0]!.lvb;
        for (const s of ok) if (s.lvb.readBigUInt64LE(0) > best.readBigUInt64LE(0)) best = s.lvb;
        if (!this.lvbKnown) this.lvb = Buffer.from(best);
        const answer = Buffer.from(best);
        if (broken) answer[7] = 0xff;
        return { rv: 0, lvb: answer };
      }
      if (this.env.nowMs() > deadline) return broken ? { rv: 0, lvb: Buffer.alloc(8, 0xff) } : { rv: -1, lvb: Buffer.alloc(8) };
      await this.env.sleep(RETRY_PAUSE_MS);
    }
  }

  async count(): Promise<{ rv: number; count: number; self: number }> {
    await this.round('count', this.mode);
    const ok = this.slots.filter((s) => s.result === 0);
    if (ok.length === 0) return { rv: -E.NOENT, count: 0, self: 0 };
    return { rv: 0, count: Math.max(...ok.map((s) => s.count)), self: Math.max(...ok.map((s) => s.self)) };
  }

  async queryMode(): Promise<{ rv: number; mode: number }> {
    await this.round('mode', this.mode);
    const ok = this.slots.filter((s) => s.result === 0);
    if (ok.length === 0) return { rv: -E.NOENT, mode: 0 };
    const tally = [0, 0, 0];
    for (const s of ok) tally[Math.min(s.mode, 2)]!++;
    let best = 0;
    for (let m = 1; m < 3; m++) if (tally[m]! > tally[best]!) best = m;
    return tally[best]! >= this.majority ? { rv: 0, mode: best } : { rv: -1, mode: 0 };
  }
}
