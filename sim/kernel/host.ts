/** A simulated machine whose daemon process can pause and crash. */
import { SimClock } from './clock';
import type { Scheduler } from './scheduler';
import type { InflightWrite } from './storage';

/**
 * A simulated machine. Its daemon process can be paused (SIGSTOP, a long GC
 * stall: its timers and I/O completions are held until it resumes, while the
 * world and its clock go on) or crash (everything the incarnation was doing
 * is dropped; in-flight writes land, tear or vanish).
 */
export class SimHost {
  incarnation = 0;
  paused = false;
  crashed = false;
  private held: Array<() => void> = [];
  /** Monotonic clock of this machine: local = offset + rate * global. */
  readonly clock: SimClock;
  /** Per-host storage path failure: every I/O of this host fails (EIO) or hangs. */
  pathFault: 'none' | 'eio' | 'hang' = 'none';
  /** In-flight writes of the current incarnation, for crash handling. */
  readonly inflight = new Set<InflightWrite>();
  pausedMs = 0;
  private pausedSince = 0;

  constructor(readonly sim: Scheduler, readonly id: number, offsetMs: number, rate: number) {
    this.clock = new SimClock(this, offsetMs, rate);
  }

  /** Run fn at global time t in this incarnation of the process (held while paused, dropped after a crash). */
  at(t: number, fn: () => void): void {
    const inc = this.incarnation;
    this.sim.at(t, () => this.deliver(inc, fn));
  }
  deliver(inc: number, fn: () => void): void {
    if (inc !== this.incarnation || this.crashed) return;
    if (this.paused) this.held.push(fn);
    else fn();
  }
  pause(): void {
    if (this.paused || this.crashed) return;
    this.paused = true;
    this.pausedSince = this.sim.now;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.pausedMs += this.sim.now - this.pausedSince;
    const h = this.held.splice(0);
    for (const fn of h) fn();
  }
  /** Kill the process: pending work is dropped; in-flight writes are resolved by `resolveWrite`. */
  crash(resolveWrite: (w: InflightWrite) => void): void {
    this.incarnation++;
    this.crashed = true;
    this.paused = false;
    this.held = [];
    for (const w of [...this.inflight]) resolveWrite(w);
    this.inflight.clear();
  }
  restart(): void {
    this.crashed = false;
  }
}
