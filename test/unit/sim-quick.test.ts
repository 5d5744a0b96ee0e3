// The simulator's quick fixed set (what CI runs): a fixed base seed, all
// fault classes, lease-level and core-level schedules on two worker
// processes; zero violations allowed. Then every --inject-bug must be
// caught, which proves the invariant checker can fail, and a schedule must
// replay to the identical trace from its seed.
//
// SIM_QUICK_SCHEDULES (default 3000: about 45 s of schedules on two idle cores, 139 s with both
// cores busy elsewhere) and SIM_QUICK_JOBS (default 2) tune it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUGS } from '../../sim/bugs';
import { ALL_FAULTS, makeLeaseSchedule, runLeaseSchedule } from '../../sim/lease-cluster';
import { runCoreSchedule } from '../../sim/core-cluster';
import { runParallel } from '../../sim/parallel';
import { scheduleSeed } from '../../sim/runner';

const SCHEDULES = Number(process.env.SIM_QUICK_SCHEDULES ?? 3000);
const JOBS = Number(process.env.SIM_QUICK_JOBS ?? 2);
const SEED = 20261125;

test(`sim quick set: ${SCHEDULES} schedules, all faults, no violation`, async () => {
  const sum = await runParallel({ seed: SEED, schedules: SCHEDULES, faults: ALL_FAULTS, coreShare: 0.25, jobs: JOBS });
  assert.equal(sum.schedules, SCHEDULES);
  assert.ok(sum.faultsInjected > SCHEDULES / 2, `only ${sum.faultsInjected} faults injected`);
  assert.deepEqual(
    sum.violations,
    [],
    `violations (replay with: npm run sim -- --replay <seed> [--level core]):\n${sum.violations.map((v) => `${v.seed} ${v.level} ${v.rule}: ${v.message}`).join('\n')}`,
  );
});

test('sim dlm set: 200 core-level schedules with the real dlm manager on the DLM model, node failures, no violation', async () => {
  const sum = await runParallel({ seed: SEED, schedules: 200, faults: ALL_FAULTS, coreShare: 0, dlmShare: 1, jobs: JOBS });
  assert.equal(sum.coreSchedules, 200);
  assert.ok(sum.faultsInjected > 100, `only ${sum.faultsInjected} faults injected`);
  assert.deepEqual(sum.violations, [], `violations (replay with: npm run sim -- --replay <seed> --level core --lm dlm):\n${sum.violations.map((v) => `${v.seed} ${v.rule}: ${v.message}`).join('\n')}`);
});

for (const bug of BUGS) {
  test(`sim --inject-bug ${bug.name} is caught`, async () => {
    const sum = await runParallel({ seed: SEED, schedules: 60, faults: ALL_FAULTS, coreShare: 0, jobs: 1, bug: bug.name, stopOnViolation: true });
    assert.ok(sum.violations.length > 0, `${bug.name} was not caught in ${sum.schedules} schedules`);
  });
}

test('a schedule replays to the identical trace from its seed', async () => {
  const seed = scheduleSeed(SEED, 3);
  const s = makeLeaseSchedule(seed, { faults: ALL_FAULTS });
  const a = await runLeaseSchedule(s, undefined, { ioTrace: true });
  const b = await runLeaseSchedule(makeLeaseSchedule(seed, { faults: ALL_FAULTS }), undefined, { ioTrace: true });
  assert.ok(a.trace.length > 10);
  assert.deepEqual(b.trace, a.trace);
  assert.deepEqual(b.stats, a.stats);
  const c1 = await runCoreSchedule(seed);
  const c2 = await runCoreSchedule(seed);
  assert.deepEqual(c2.trace, c1.trace);
});
