// bench/stats.ts: nearest-rank percentiles and sample summaries used by the bench reports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nearestRank, quantile, summarize } from '../../bench/stats';

test('nearestRank picks the smallest sample with at least q of the samples at or below it', () => {
  const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(nearestRank(s, 0.5), 5);
  assert.equal(nearestRank(s, 0.9), 9);
  assert.equal(nearestRank(s, 0.91), 10);
  assert.equal(nearestRank(s, 1), 10);
  assert.equal(nearestRank(s, 0.01), 1);
  assert.equal(nearestRank([7], 0.5), 7);
  assert.equal(nearestRank(new Float64Array([1.5, 2.5, 3.5]), 0.5), 2.5, 'typed arrays too');
  assert.ok(Number.isNaN(nearestRank([], 0.5)));
  assert.throws(() => nearestRank(s, 0), RangeError);
  assert.throws(() => nearestRank(s, 1.5), RangeError);
});

test('quantile sorts numerically and leaves its input alone', () => {
  const xs = [10, 9, 100, 2, 1];
  assert.equal(quantile(xs, 0.5), 9, 'numeric order, not string order (100 < 2 as strings)');
  assert.deepEqual(xs, [10, 9, 100, 2, 1]);
});

test('summarize: n, p50, p90, min and max; NaN figures for no samples; non-finite samples refused', () => {
  const xs = Array.from({ length: 20 }, (_, i) => 20 - i); // 20 .. 1
  assert.deepEqual(summarize(xs), { n: 20, p50: 10, p90: 18, min: 1, max: 20 });
  const e = summarize([]);
  assert.equal(e.n, 0);
  for (const v of [e.p50, e.p90, e.min, e.max]) assert.ok(Number.isNaN(v));
  assert.throws(() => summarize([1, NaN]), RangeError);
  assert.throws(() => summarize([1, Infinity]), RangeError);
});
