// Regression tests for the bugs the simulator found in src/leases (see
// docs/simulator.md, "What it found"), as small directed scenarios on the
// in-memory disk, plus one core-level schedule with the real sanlock lock
// manager that must stay clean.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/io/clock';
import { MemoryDisk } from '../../src/io/memory-disk';
import { Lockspace, initLockspace } from '../../src/leases/delta-lease';
import { SANLK, isLeaseError } from '../../src/leases/errors';
import { decodeLeader, encodeLeader, leaderSector } from '../../src/leases/ondisk';
import { acquireResource, initResource, paxosHostFor, releaseResource, type ResourceRef } from '../../src/leases/paxos-lease';
import { SeededRandom } from '../../src/leases/random';
import { runCoreSchedule } from '../../sim/core-cluster';
import { ALL_FAULTS, makeLeaseSchedule, runLeaseSchedule } from '../../sim/lease-cluster';

const MiB = 1 << 20;

test('delta acquire: last success is the timestamp written, not the end of the 2*io wait (kill-path-late)', async () => {
  const clock = new ManualClock();
  const disk = new MemoryDisk(2 * MiB, { clock });
  await initLockspace(disk, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
  const ls = new Lockspace({ disk, offset: 0, name: 'LS', hostId: 1, clock, random: new SeededRandom(1), hostName: 'h1', ioTimeout: 1 });
  await clock.drive(ls.acquire());
  const written = decodeLeader(disk.data, 0).timestamp;
  assert.equal(ls.lastSuccess, written);
  assert.ok(clock.monotonicSeconds() - written >= 2, 'acquire waited 2*io after writing');
});

test('a stale leader (older lver than the dblocks) fails the acquire instead of retrying forever (wait-forever)', async () => {
  const clock = new ManualClock();
  const disk = new MemoryDisk(4 * MiB, { clock });
  await initLockspace(disk, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
  await initResource(disk, MiB, 'LS', 'R', { sectorSize: 512, numHosts: 8 });
  const hosts = [1, 2].map((i) => new Lockspace({ disk, offset: 0, name: 'LS', hostId: i, clock, random: new SeededRandom(i), hostName: `h${i}`, ioTimeout: 1 }));
  await clock.drive(Promise.all(hosts.map((h) => h.acquire())));
  const ref: ResourceRef = { disk, offset: MiB, lockspace: 'LS', resource: 'R' };
  const [a, b] = hosts.map(paxosHostFor) as [ReturnType<typeof paxosHostFor>, ReturnType<typeof paxosHostFor>];
  // Host 1 takes and releases the lease three times: leader and its dblock at lver 3.
  for (let i = 0; i < 3; i++) await clock.drive(releaseResource(a, await clock.drive(acquireResource(a, ref))));
  // A slow commit of lver 1 lands late: the leader goes back to lver 1 (free), two behind the dblocks.
  const stale = decodeLeader(disk.data, MiB);
  stale.lver = 1;
  stale.timestamp = 0;
  encodeLeader(stale);
  leaderSector(stale, 512).copy(disk.data, MiB);
  await assert.rejects(clock.drive(acquireResource(b, ref, { mode: 'ex', ownerNowait: true })), (e: unknown) => isLeaseError(e, SANLK.DBLOCK_LVER));
});

test('core level with the sanlock lock manager: one clean schedule', async () => {
  const r = await runCoreSchedule(7001, { lm: 'sanlock' });
  assert.equal(r.violation, undefined, r.violation ? `${r.violation.rule}: ${r.violation.message}` : '');
  assert.ok(r.stats.requests > 50);
});

test('a retracted proposal committed by another host is not claimed by a later acquire (two-ex, seed 4171688295)', async () => {
  // Found by `npm run sim -- --seed 777 --schedules 4000`; shrunk: one crash with adopt, 72 s.
  const s0 = makeLeaseSchedule(4171688295, { faults: ALL_FAULTS });
  const s = { ...s0, plan: s0.plan.slice(0, 1), durationMs: 72000 };
  const r = await runLeaseSchedule(s);
  assert.equal(r.violation, undefined, r.violation ? `${r.violation.rule}: ${r.violation.message}` : '');
});

// Core level, sanlock lock manager. A stop_vg accepted while the lock manager
// was acquiring an LV lease: the grant went out, then the stop released the
// lease and another host got ex (now: released at once, -ESTALE).
test('a lock granted after stop_vg was accepted is given back, not reported (two-ex, seed 2341988194)', async () => {
  const r = await runCoreSchedule(2341988194, { lm: 'sanlock' });
  assert.equal(r.violation, undefined, r.violation ? `${r.violation.rule}: ${r.violation.message}` : '');
});

// Core level, sanlock lock manager, failing storage of one host: an ex -> sh
// convert failed after our SHARED mode block landed; the core kept ex while
// another host took sh (now: the convert reports success, we hold sh).
test('an ex to sh convert that fails part way leaves the host at sh (ex-with-sh, seed 113731155)', async () => {
  const r = await runCoreSchedule(113731155, { lm: 'sanlock' });
  assert.equal(r.violation, undefined, r.violation ? `${r.violation.rule}: ${r.violation.message}` : '');
});

// Lease level: an acquire of our previous generation failed with its lockspace
// after its ballot wrote a proposal; after rejoining, phase 1 found that value
// and Paxos committed it, naming our dead generation. It was taken as a grant
// while other hosts, seeing a dead owner, took the lease (now: a new ballot).
test('a committed proposal of our own older generation is not a grant (ex-with-sh, seed 1700370983)', async () => {
  const r = await runLeaseSchedule(makeLeaseSchedule(1700370983, { faults: ALL_FAULTS }));
  assert.equal(r.violation, undefined, r.violation ? `${r.violation.rule}: ${r.violation.message}` : '');
});

// Lease level: a daemon restarted with adopt wrote its delta lease, was then
// paused for longer than host_dead inside the join's 2*io wait, and on waking
// finished the join and adopted a lease on a host_id lease the other hosts
// already counted dead (now: the join fails; grants need a current lease).
test('a join that outlived the renewal-fail time during its wait fails (kill-path-late, seed 1053217936)', async () => {
  const r = await runLeaseSchedule(makeLeaseSchedule(1053217936, { faults: ALL_FAULTS }));
  assert.equal(r.violation, undefined, r.violation ? `${r.violation.rule}: ${r.violation.message}` : '');
});
