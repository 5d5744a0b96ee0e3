/**
 * Time source for the lease algorithms.
 *
 * The lease code never reads the wall clock or arms timers itself; it asks a
 * Clock. RealClock uses the kernel's CLOCK_MONOTONIC (via process.hrtime),
 * which is the same clock sanlock writes into lease timestamps. ManualClock
 * is fully controlled by a test or simulator: time only moves when the
 * driver calls advance()/runNext().
 */
export interface Clock {
  /** Whole seconds of a monotonic clock (what sanlock calls monotime()). */
  monotonicSeconds(): number;
  /** Monotonic milliseconds (fractional allowed); not wall-clock time. */
  nowMs(): number;
  /** Resolve after `ms` milliseconds of this clock. */
  sleep(ms: number): Promise<void>;
}

export class RealClock implements Clock {
  monotonicSeconds(): number {
    return Number(process.hrtime.bigint() / 1_000_000_000n);
  }
  nowMs(): number {
    return Number(process.hrtime.bigint()) / 1e6;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      setTimeout(resolve, Math.max(0, ms));
    });
  }
}

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. Sleepers are woken in deadline
 * order (ties in creation order), so a simulator gets a deterministic run.
 */
export class ManualClock implements Clock {
  private now: number;
  private seq = 0;
  private timers: Timer[] = [];

  /** `startMs` defaults to 1000 s so that a lease timestamp is never 0 (0 means "free" on disk). */
  constructor(startMs = 1_000_000) {
    this.now = startMs;
  }
  monotonicSeconds(): number {
    return Math.floor(this.now / 1000);
  }
  nowMs(): number {
    return this.now;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timers.push({ at: this.now + Math.max(0, ms), seq: this.seq++, resolve });
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    });
  }
  /** Number of sleepers not yet woken. */
  pendingTimers(): number {
    return this.timers.length;
  }
  /** Deadline of the earliest sleeper, or undefined. */
  nextDeadline(): number | undefined {
    return this.timers[0]?.at;
  }
  /** Move to the earliest deadline and wake every sleeper due then. Returns false when nothing sleeps. */
  runNext(): boolean {
    const first = this.timers[0];
    if (!first) return false;
    this.now = Math.max(this.now, first.at);
    this.fireDue();
    return true;
  }
  /** Advance by `ms`, waking sleepers in deadline order. */
  advance(ms: number): void {
    const target = this.now + ms;
    while (this.timers.length > 0 && this.timers[0]!.at <= target) {
      this.now = Math.max(this.now, this.timers[0]!.at);
      this.fireDue();
    }
    this.now = target;
  }
  /**
   * Run the clock until `p` settles: let pending I/O and continuations run,
   * then jump to the next sleeper's deadline, repeatedly. Throws if `p` can
   * never settle (nothing sleeps and nothing is pending).
   */
  async drive<T>(p: Promise<T>, maxSteps = 10_000_000): Promise<T> {
    let done = false;
    p.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    for (let i = 0; i < maxSteps; i++) {
      await flushAsync(1);
      if (done) return p;
      if (!this.runNext()) {
        await flushAsync(3);
        if (done) return p;
        if (this.timers.length === 0) throw new Error('ManualClock.drive: promise can never settle (no sleepers left)');
      }
    }
    throw new Error('ManualClock.drive: step limit reached');
  }

  private fireDue(): void {
    while (this.timers.length > 0 && this.timers[0]!.at <= this.now) {
      const t = this.timers.shift()!;
      t.resolve();
    }
  }
}

/**
 * Let every pending promise continuation run (used by tests and the
 * simulator between clock steps). Uses the event loop's check phase.
 */
export function flushAsync(rounds = 3): Promise<void> {
  let p = Promise.resolve();
  for (let i = 0; i < rounds; i++) p = p.then(() => new Promise<void>((r) => setImmediate(r)));
  return p;
}
