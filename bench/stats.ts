// Small statistics shared by the bench sections: nearest-rank percentiles and
// a summary of a sample list. Pure (no I/O); tested in test/unit/bench-stats.test.ts.

/**
 * The nearest-rank percentile of an ascending list: the smallest sample with at
 * least q of all samples at or below it (q in (0, 1]). NaN for an empty list.
 */
export function nearestRank(sorted: ArrayLike<number>, q: number): number {
  if (!(q > 0 && q <= 1)) throw new RangeError(`percentile ${q} is not in (0, 1]`);
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** nearestRank of an unsorted list (copied, not changed). */
export function quantile(xs: readonly number[], q: number): number {
  return nearestRank([...xs].sort((a, b) => a - b), q);
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  min: number;
  max: number;
}

/** n, p50, p90 (nearest rank), min and max of a list; NaN figures when it is empty. */
export function summarize(xs: readonly number[]): Summary {
  for (const x of xs) if (!Number.isFinite(x)) throw new RangeError(`sample ${x} is not a finite number`);
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: nearestRank(s, 0.5),
    p90: nearestRank(s, 0.9),
    min: s.length ? s[0]! : NaN,
    max: s.length ? s[s.length - 1]! : NaN,
  };
}
