/**
 * The simulator's random source: a seeded PRNG (the lease code's
 * SeededRandom) with helpers, and independent streams forked by label, so
 * removing one use of randomness from a schedule leaves the other streams
 * unchanged.
 */
import { SeededRandom } from '../../src/leases/random';

/** Seeded random with helpers; independent streams are forked by label. */
export class Rng extends SeededRandom {
  readonly seed: number;
  constructor(seed: number) {
    super(seed);
    this.seed = seed >>> 0;
  }
  /** An independent stream: same seed + label always gives the same stream. */
  fork(label: string): Rng {
    let h = (this.seed ^ 0x9e3779b9) >>> 0;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng(h ^ (h >>> 16));
  }
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
  range(min: number, max: number): number {
    return min + this.next() * (max - min);
  }
  intIn(min: number, maxInclusive: number): number {
    return min + this.int(maxInclusive - min + 1);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}
