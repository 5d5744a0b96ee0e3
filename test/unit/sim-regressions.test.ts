// Regression tests for the bugs the simulator found in src/leases (see
// docs/simulator.md, "What it found"), as small directed scenarios on the
// in-memory disk, plus one core-level schedule with the real sanlock lock
// manager that must stay clean.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, type Clock } from '../../src/io/clock';
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

test('core level: a request sent before a long daemon pause is judged by unpaused time (wait-forever, seed 2771032064)', async () => {
  // Found by the long run: start_wait sent at 39.6 s, the daemon paused (SIGSTOP) from 54.3 s
  // for 128 s; the checker counted the pause and failed the request the moment the daemon
  // resumed, before it could answer.
  const r = await runCoreSchedule(2771032064, { lm: 'sanlock' });
  assert.ok(r.trace.some((l) => l.includes('h3 PAUSE daemon 128.3s')), 'the schedule still pauses host 3 for 128 s');
  assert.equal(r.violation, undefined, r.violation && `${r.violation.rule}: ${r.violation.message}`);
});

test('a delta acquire that outlives its lease (process stopped in the 2*io wait) renews before returning (kill-path-late, seeds 1050332461, 1053217936)', async () => {
  // Found by the long run: a host restarted, wrote its delta lease, was stopped (SIGSTOP) for
  // longer than host_dead, and on resuming finished the acquire with last success = the old
  // timestamp and at once re-acquired its leases, while the other hosts considered it dead.
  const clock = new ManualClock();
  const disk = new MemoryDisk(2 * MiB, { clock });
  await initLockspace(disk, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
  let stopped = false;
  const pausing: Clock = {
    monotonicSeconds: () => clock.monotonicSeconds(),
    nowMs: () => clock.nowMs(),
    // The first sleep is the 2*io wait after the delta write: it ends 60 s late.
    sleep: (ms) => {
      if (stopped) return clock.sleep(ms);
      stopped = true;
      return clock.sleep(ms + 60_000);
    },
  };
  const ls = new Lockspace({ disk, offset: 0, name: 'LS', hostId: 1, clock: pausing, random: new SeededRandom(1), hostName: 'h1', ioTimeout: 1 });
  await clock.drive(ls.acquire());
  assert.ok(stopped);
  assert.equal(ls.state, 'held');
  assert.ok(clock.monotonicSeconds() - ls.lastSuccess < ls.timeouts.idRenewalFailSeconds, 'last success is fresh');
  assert.equal(decodeLeader(disk.data, 0).timestamp, ls.lastSuccess, 'the fresh timestamp is on disk');
  for (const seed of [1050332461, 1053217936]) {
    const r = await runLeaseSchedule(makeLeaseSchedule(seed, { faults: ALL_FAULTS }));
    assert.equal(r.violation, undefined, r.violation && `seed ${seed}: ${r.violation.rule}: ${r.violation.message}`);
  }
});
