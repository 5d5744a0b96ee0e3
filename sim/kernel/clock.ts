/** A simulated machine's monotonic clock (offset and drift against virtual time). */
import type { Clock } from '../../src/io/clock';
import type { SimHost } from './host';


/**
 * The host's monotonic clock. It never jumps (CLOCK_MONOTONIC does not); it
 * has an offset (hosts booted at different times) and a small rate error
 * (crystal drift, |rate - 1| ≤ 1e-4). A pause freezes the process, not the
 * clock: after a pause the process sees time jump by the pause length.
 */
export class SimClock implements Clock {
  constructor(private readonly host: SimHost, private readonly offsetMs: number, private readonly rate: number) {}
  nowMs(): number {
    return this.offsetMs + this.host.sim.now * this.rate;
  }
  monotonicSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }
  /** Global time at which this clock reads `localMs`. */
  toGlobal(localMs: number): number {
    return Math.ceil((localMs - this.offsetMs) / this.rate);
  }
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const target = this.toGlobal(this.nowMs() + Math.max(0, ms));
      this.host.at(Math.max(target, this.host.sim.now + (ms > 0 ? 1 : 0)), resolve);
    });
  }
}
