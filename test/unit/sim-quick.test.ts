// The simulator's quick fixed set (what CI runs): a fixed base seed, all
// fault classes, lease-level and core-level schedules on two worker
// processes; zero violations allowed. Then every --inject-bug must be
// caught, which proves the invariant checker can fail, and a schedule must
// replay to the identical trace from its seed (an IDM schedule too). The IDM
// set is small (its schedules cost 1-6 CPU-s each) and runs without the
// dead-writer fault, which finds the open finding 22 (docs/simulator.md).
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

const IDM_SCHEDULES = Number(process.env.SIM_QUICK_IDM_SCHEDULES ?? 16);

test(`sim idm set: ${IDM_SCHEDULES} core-level schedules with the real IDM manager, ILM and drive firmware, drive faults, no violation`, async () => {
  const sum = await runParallel({ seed: SEED, schedules: IDM_SCHEDULES, faults: ALL_FAULTS, coreShare: 0, idmShare: 1, jobs: JOBS });
  assert.equal(sum.coreSchedules, IDM_SCHEDULES);
  assert.ok(sum.faultsInjected > IDM_SCHEDULES, `only ${sum.faultsInjected} faults injected`);
  assert.deepEqual(sum.violations, [], `violations (replay with: npm run sim -- --replay <seed> --level core --lm idm):\n${sum.violations.map((v) => `${v.seed} ${v.rule}: ${v.message}`).join('\n')}`);
});

/**
 * The rules an IDM bug must break. A schedule counts only where the same schedule without the bug breaks no
 * rule (sim/runner.ts), and the rule must be the one the bug is about.
 */
const IDM_BUG_RULES: Record<string, string[]> = {
  'idm-break-live-holder': ['two-ex', 'ex-with-sh'],
  'idm-no-timestamp-plus-one': ['stale-vg-metadata'],
};

for (const bug of BUGS) {
  test(`sim --inject-bug ${bug.name} is caught`, async () => {
    const sum = await runParallel({ seed: SEED, schedules: 60, faults: ALL_FAULTS, coreShare: 0, jobs: 1, bug: bug.name, stopOnViolation: true });
    assert.ok(sum.violations.length > 0, `${bug.name} was not caught in ${sum.schedules} schedules`);
    if (bug.profile === 'idm') {
      const v = sum.violations[0]!;
      assert.ok(IDM_BUG_RULES[bug.name]?.includes(v.rule), `${bug.name}: caught by ${v.rule} (${v.message}), not by ${IDM_BUG_RULES[bug.name]?.join('/')}`);
      const clean = await runCoreSchedule(v.seed, { lm: 'idm' });
      assert.equal(clean.violation, undefined, `schedule ${v.seed} breaks ${clean.violation?.rule} without the bug too`);
    }
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
  // The IDM path: drives, ILM processes, wall clocks and their faults come from the seed too.
  const i1 = await runCoreSchedule(seed, { lm: 'idm', coreDebug: true });
  const i2 = await runCoreSchedule(seed, { lm: 'idm', coreDebug: true });
  assert.ok(i1.trace.some((l) => / ilm pid \d+ lock /.test(l)), 'the IDM schedule asked the ILM for locks');
  assert.deepEqual(i2.trace, i1.trace);
});
