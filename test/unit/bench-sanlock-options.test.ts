/** The sanlock bench's knobs: bad values are refused with a sentence naming the knob, before anything starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SANLOCK_DEFAULTS, SanlockBenchUsage, runSanlockBench, sanlockOptionsProblem } from '../../bench/sanlock';

test('the defaults are accepted', () => {
  assert.equal(sanlockOptionsProblem(SANLOCK_DEFAULTS), null);
});

test('each bad knob value is named', () => {
  const cases: Array<[Partial<typeof SANLOCK_DEFAULTS>, RegExp]> = [
    [{ starts: -1 }, /--starts must be a whole number >= 0, not -1/],
    [{ lvReps: 2.5 }, /--lv-reps/],
    [{ rawReps: NaN }, /--raw-reps .* not NaN/],
    [{ io: 0 }, /--io must be a number of seconds > 0/],
    [{ io: 1.5 }, /--io must be a whole number/],
    [{ localSeconds: NaN }, /--local-seconds/],
    [{ budgetSeconds: -5 }, /--budget/],
    [{ localClients: [] }, /--local-clients/],
    [{ localClients: [1, 0] }, /--local-clients .* not 1,0/],
    [{ localClients: [1, 65] }, /from 1 to 64/],
    [{ localClients: [NaN] }, /--local-clients/],
  ];
  for (const [bad, re] of cases) assert.match(sanlockOptionsProblem({ ...SANLOCK_DEFAULTS, ...bad }) ?? 'accepted', re, JSON.stringify(bad));
});

test('runSanlockBench refuses bad knobs before starting a cluster', async () => {
  await assert.rejects(runSanlockBench({ localClients: [0], verbose: false }), (e: unknown) => e instanceof SanlockBenchUsage && /--local-clients/.test(e.message));
});
