/**
 * Virtual time and the one event queue of a simulation run.
 *
 * Everything runs on one thread. Nothing in a simulation reads the real
 * clock, arms a real timer or calls Math.random: time only moves when the
 * scheduler pops the next event, and every random choice comes from an Rng
 * derived from the run's seed (rng.ts). After each event the scheduler
 * lets every promise continuation run (setImmediate drains the microtask
 * queue) before it pops the next one, so async lease and core code runs
 * unmodified and a run is reproducible from its seed.
 */

interface Ev {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Binary heap of events ordered by (time, insertion order). */
class EventHeap {
  private a: Ev[] = [];
  get size(): number {
    return this.a.length;
  }
  push(e: Ev): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p]!, e)) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = e;
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (!top || !last || a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && less(a[r]!, a[l]!) ? r : l;
      if (less(last, a[c]!)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
  peek(): Ev | undefined {
    return this.a[0];
  }
}
function less(x: Ev, y: Ev): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

export interface TraceLine {
  t: number;
  text: string;
}

/** Virtual time (global ms) and the event queue. */
export class Scheduler {
  now = 0;
  private seq = 0;
  private readonly q = new EventHeap();
  steps = 0;
  /** Ring of recent trace lines (the run's story, printed on a violation). */
  readonly trace: TraceLine[] = [];
  traceLimit = 4000;
  traceAll = false;

  at(t: number, fn: () => void): { cancel(): void } {
    const e: Ev = { at: Math.max(t, this.now), seq: this.seq++, fn, cancelled: false };
    this.q.push(e);
    return { cancel: () => void (e.cancelled = true) };
  }
  after(ms: number, fn: () => void): { cancel(): void } {
    return this.at(this.now + Math.max(0, ms), fn);
  }
  log(text: string): void {
    this.trace.push({ t: this.now, text });
    if (this.traceAll) process.stdout.write(`${fmtT(this.now)} ${text}\n`);
    if (this.trace.length > this.traceLimit * 2) this.trace.splice(0, this.trace.length - this.traceLimit);
  }
  pending(): number {
    return this.q.size;
  }
  nextAt(): number | undefined {
    return this.q.peek()?.at;
  }
  /**
   * Run events until `until` (global ms) or until `stop()` returns true.
   * After each event every promise continuation runs before `check` is
   * called and the next event is popped.
   *
   * Each event runs in its own setImmediate callback: Node empties the
   * microtask queue (and process.nextTick's) between two immediate
   * callbacks, so the continuations of one event all run before the next
   * callback checks and pops. Immediates are queued in batches, so one turn
   * of the event loop runs many events (a turn per event cost more than
   * some events).
   */
  run(until: number, check: () => void, stop: () => boolean = () => false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      let checkDue = false;
      let emptyOnce = false;
      let queued = 0;
      const done = () => {
        finished = true;
        resolve();
      };
      const step = () => {
        queued--;
        if (finished) return;
        try {
          if (checkDue) {
            checkDue = false;
            check();
          }
          for (;;) {
            if (stop()) return done();
            const e = this.q.peek();
            if (!e) {
              // Nothing queued: let continuations run once more (they may add events).
              if (emptyOnce) {
                this.now = Math.max(this.now, until);
                return done();
              }
              emptyOnce = true;
              break;
            }
            emptyOnce = false;
            if (e.at > until) {
              this.now = Math.max(this.now, until);
              return done();
            }
            this.q.pop();
            if (e.cancelled) continue;
            this.now = e.at;
            this.steps++;
            e.fn();
            checkDue = true;
            break;
          }
        } catch (err) {
          finished = true;
          reject(err);
          return;
        }
        if (queued === 0) batch();
      };
      const batch = () => {
        for (let i = 0; i < 64; i++) setImmediate(step);
        queued += 64;
      };
      // The first step runs now, in the caller's turn (as an async loop would).
      queued++;
      step();
    });
  }
}

/** Let every queued promise continuation run (the microtask queue empties before a check-phase callback). */
export function drain(): Promise<void> {
  return new Promise<void>((r) => setImmediate(r));
}

export function fmtT(ms: number): string {
  return (ms / 1000).toFixed(3).padStart(9);
}
