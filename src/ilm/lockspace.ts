// An ILM lockspace: what one client connection holds (propeller:
// src/lockspace.c, src/lock.c, src/failure.c). It owns its locks, renews each
// of them about once a second, and when a lock could not be renewed for
// QUIESCENT_PERIOD_MS runs the client's kill path (or sends its signal) once
// and stops renewing for good.

import { spawn } from 'node:child_process';
import { E } from '../core/constants';
import { RaidLock, type RaidEnv, type RaidLockSpec } from './raid-lock';

/** IDM_QUIESCENT_PERIOD: renewal may fail this long before the failure action. */
export const QUIESCENT_PERIOD_MS = 50_000;
export const RENEWAL_INTERVAL_MS = 1000;

export interface LockspaceHooks {
  env: RaidEnv;
  log: (level: 'debug' | 'info' | 'warn' | 'error', line: string) => void;
  /** Runs "<path> <args>" through a shell (popen in propeller). */
  runKillPath?: (path: string, args: string) => void;
  sendSignal?: (pid: number, sig: number) => void;
  /** Timer for the renewal loop; injectable for tests. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  /** Overrides QUIESCENT_PERIOD_MS (tests shorten it). */
  quiescentMs?: number;
}

interface HeldLock {
  raid: RaidLock;
  /** Monotonic ms of the last successful renewal (acquire counts); 0 = paused. */
  lastRenewalMs: number;
  /** Serialises drive operations on this lock (client commands and renewals). */
  queue: Promise<unknown>;
}

function defaultKillPath(path: string, args: string): void {
  const child = spawn('/bin/sh', ['-c', `${path} ${args}`], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
}

export class IlmLockspace {
  readonly locks = new Map<string, HeldLock>();
  killPath = '';
  killArgs = '';
  killSig = 0;
  failed = false;
  stopRenew = false;
  private timer: { cancel(): void } | null = null;
  /** Checks every lock's renewal deadline each second, whatever the renewals are waiting for. */
  private watchTimer: { cancel(): void } | null = null;
  private closed = false;

  constructor(public hostId: Buffer, readonly killPid: number, private readonly hooks: LockspaceHooks) {
    this.schedule();
  }

  /** Runs fn on a lock's queue so drive commands of one lock never interleave. */
  private serial<T>(held: HeldLock, fn: () => Promise<T>): Promise<T> {
    const run = held.queue.then(fn);
    held.queue = run.catch(() => undefined);
    return run;
  }

  find(lockId: Buffer): HeldLock | undefined {
    return this.locks.get(lockId.toString('hex'));
  }

  /** Runs a query on a held lock between its renewals (null when not held). */
  query<T>(lockId: Buffer, fn: (raid: RaidLock) => Promise<T>): Promise<T> | null {
    const held = this.find(lockId);
    return held ? this.serial(held, () => fn(held.raid)) : null;
  }

  async acquire(spec: RaidLockSpec): Promise<number> {
    const key = spec.lockId.toString('hex');
    if (this.locks.has(key)) return -E.BUSY;
    const raid = new RaidLock(spec, this.hooks.env);
    const held: HeldLock = { raid, lastRenewalMs: 0, queue: Promise.resolve() };
    this.locks.set(key, held); // reserve the id while the drives are asked
    const started = this.hooks.env.nowMs();
    const rv = await this.serial(held, () => raid.lock());
    if (rv !== 0 || this.closed) {
      this.locks.delete(key);
      if (rv === 0) await raid.unlock().then(() => raid.destroy());
      return rv === 0 ? -E.IO : rv;
    }
    // The drives' countdown started when the command reached them, at or after this.
    held.lastRenewalMs = started;
    return 0;
  }

  async release(lockId: Buffer): Promise<number> {
    const held = this.find(lockId);
    if (!held) return -1;
    held.lastRenewalMs = 0;
    this.locks.delete(lockId.toString('hex'));
    return this.serial(held, async () => {
      const rv = await held.raid.unlock();
      await held.raid.destroy();
      return rv;
    });
  }

  async convert(lockId: Buffer, mode: number): Promise<number> {
    const held = this.find(lockId);
    if (!held) return -1;
    const previous = held.lastRenewalMs;
    held.lastRenewalMs = 0;
    const rv = await this.serial(held, () => held.raid.convert(mode));
    held.lastRenewalMs = previous;
    return rv;
  }

  writeLvb(lockId: Buffer, lvb: Buffer): number {
    const held = this.find(lockId);
    if (!held) return -1;
    held.raid.lvb = Buffer.from(lvb);
    return 0;
  }

  async readLvb(lockId: Buffer): Promise<{ rv: number; lvb: Buffer }> {
    const held = this.find(lockId);
    if (!held) return { rv: -1, lvb: Buffer.alloc(8) };
    return this.serial(held, () => held.raid.readLvb());
  }

  /** Stops renewing; with releaseLocks (client gone without DEL_LOCKSPACE) unlocks and destroys every lock. */
  async close(releaseLocks: boolean): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
    this.watchTimer?.cancel();
    this.watchTimer = null;
    const held = [...this.locks.values()];
    this.locks.clear();
    if (!releaseLocks) return;
    await Promise.all(held.map((h) => this.serial(h, async () => {
      await h.raid.unlock();
      await h.raid.destroy();
    })));
  }

  private setTimer(fn: () => void, ms: number): { cancel(): void } {
    if (this.hooks.setTimer) return this.hooks.setTimer(fn, ms);
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  }

  private schedule(): void {
    if (this.closed || this.failed) return;
    this.timer = this.setTimer(() => { void this.renewPass().finally(() => this.schedule()); }, RENEWAL_INTERVAL_MS);
    this.watch();
  }

  /**
   * The failure action must run within QUIESCENT_PERIOD_MS of the last
   * successful renewal, before the drives' countdown lets another host break
   * the locks. The renewal pass renews one lock after another, and a renewal
   * can wait for SG_IO timeouts (15 s per command on a hung drive): checking
   * only between renewals ran the kill path too late, after another host had
   * broken the mutex (simulator finding 25). So the deadlines are also checked
   * every second on a timer of their own.
   */
  private watch(): void {
    if (this.watchTimer || this.closed || this.failed) return;
    this.watchTimer = this.setTimer(() => {
      this.watchTimer = null;
      this.checkDeadlines();
      this.watch();
    }, RENEWAL_INTERVAL_MS);
  }

  /** Runs the failure action when a lock has not been renewed for the quiescent period; true if it did. */
  private checkDeadlines(): boolean {
    if (this.stopRenew || this.failed || this.closed) return this.failed;
    const now = this.hooks.env.nowMs();
    for (const held of this.locks.values()) {
      if (held.lastRenewalMs !== 0 && now > held.lastRenewalMs + (this.hooks.quiescentMs ?? QUIESCENT_PERIOD_MS)) {
        this.fail(held);
        return true;
      }
    }
    return false;
  }

  /** One pass of propeller's lockspace thread. */
  async renewPass(): Promise<void> {
    if (this.stopRenew || this.failed || this.closed) return;
    if (this.checkDeadlines()) return;
    for (const held of [...this.locks.values()]) {
      if (held.lastRenewalMs === 0) continue;
      if (this.checkDeadlines()) return;
      // Counted from before the renewal: the drives' countdown restarted when it reached them.
      const started = this.hooks.env.nowMs();
      const rv = await this.serial(held, () => held.raid.renew());
      if (rv === 0 && held.lastRenewalMs !== 0) held.lastRenewalMs = started;
      else if (rv !== 0) this.hooks.log('warn', `lock ${held.raid.lockId.toString('hex').slice(0, 16)}…: renewal failed (${rv})`);
    }
  }

  private fail(held: HeldLock): void {
    this.failed = true;
    this.hooks.log('error', `lockspace of pid ${this.killPid}: lock ${held.raid.lockId.toString('hex').slice(0, 16)}… `
      + `not renewed for ${(this.hooks.quiescentMs ?? QUIESCENT_PERIOD_MS) / 1000} s; running the failure action`);
    if (this.killPath) (this.hooks.runKillPath ?? defaultKillPath)(this.killPath, this.killArgs);
    else if (this.killSig) {
      try { (this.hooks.sendSignal ?? ((p, s) => process.kill(p, s)))(this.killPid, this.killSig); } catch { /* gone */ }
    }
  }
}
