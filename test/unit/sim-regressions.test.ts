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
import { dblockSector, decodeLeader, encodeLeader, leaderSector } from '../../src/leases/ondisk';
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
// already counted dead (now: the join renews first; grants need a current lease).
test('a join that outlived the renewal-fail time during its wait is safe (kill-path-late, seed 1053217936, whole schedule)', async () => {
  const r = await runLeaseSchedule(makeLeaseSchedule(1053217936, { faults: ALL_FAULTS }));
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

test('a delta acquire that outlives its lease (process stopped in the 2*io wait) fails; the rejoin takes a new generation (kill-path-late, ex-with-sh; seeds 1050332461, 1053217936, 263755292)', async () => {
  // Found by the long run: a host restarted, wrote its delta lease, was stopped (SIGSTOP) for
  // longer than host_dead, and on resuming finished the acquire with last success = the old
  // timestamp and at once re-acquired its leases, while the other hosts considered it dead.
  // Renewing before returning (an earlier fix) was not enough (seed 263755292): another host
  // whose view of us was a renewal interval old still held the generation dead and cleared
  // the SH mode block we wrote under it, then took ex.
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
  await assert.rejects(clock.drive(ls.acquire()), (e: unknown) => isLeaseError(e, SANLK.ETIMEDOUT) && /renewal-fail/.test((e as Error).message));
  assert.ok(stopped);
  assert.equal(ls.state, 'idle');
  assert.equal(decodeLeader(disk.data, 0).ownerGeneration, 1, 'the stale generation stays on disk, unused');
  const again = new Lockspace({ disk, offset: 0, name: 'LS', hostId: 1, clock, random: new SeededRandom(2), hostName: 'h1', ioTimeout: 1 });
  assert.equal(await clock.drive(again.acquire()), 2, 'the rejoin (same host name, no host_dead wait) takes the next generation');
  for (const seed of [1050332461, 1053217936, 263755292]) {
    const r = await runLeaseSchedule(makeLeaseSchedule(seed, { faults: ALL_FAULTS }));
    assert.equal(r.violation, undefined, r.violation && `seed ${seed}: ${r.violation.rule}: ${r.violation.message}`);
  }
});

test('a ballot that commits a proposal of an earlier generation of this host does not grant the lease (two-ex, seeds 216834742, 1700370983, 469811355, 2562140424)', async () => {
  // Found by the long run: host 3 proposed itself (generation 1) in a ballot that failed
  // during a storage loss; host 4's later ballot carried that proposal; host 3 restarted
  // (generation 2), ran a ballot, adopted host 4's dblock and committed "owner 3/1", and
  // took it as granted. Every other host sees host 3 at generation 2, so owner 3/1 is dead
  // to them: host 2 took the lease over at the next lver. Two ex holders.
  const clock = new ManualClock();
  const disk = new MemoryDisk(4 * MiB, { clock });
  await initLockspace(disk, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
  await initResource(disk, MiB, 'LS', 'R', { sectorSize: 512, numHosts: 8 });
  const ls = new Lockspace({ disk, offset: 0, name: 'LS', hostId: 3, clock, random: new SeededRandom(3), hostName: 'h3', ioTimeout: 1 });
  await clock.drive(ls.acquire());
  const host3gen2 = { ...paxosHostFor(ls), generation: 2 };
  // Host 4's dblock holds the accepted proposal "host 3, generation 1" for lver 1.
  const stale = { mbal: 4, bal: 4, inp: 3, inp2: 1, inp3: 100, lver: 1, checksum: 0, flags: 0 };
  await disk.write(MiB + (2 + 4 - 1) * 512, dblockSector(stale, 512));
  const ref: ResourceRef = { disk, offset: MiB, lockspace: 'LS', resource: 'R' };
  await assert.rejects(clock.drive(acquireResource(host3gen2, ref, { mode: 'ex', ownerNowait: true })), (e: unknown) => isLeaseError(e, SANLK.ACQUIRE_OTHER));
  const leader = decodeLeader(disk.data, MiB);
  assert.equal(leader.ownerId, 3);
  assert.equal(leader.ownerGeneration, 1, 'the leader names the dead generation, which others may take over');
  // The next acquire sees an older generation of ours as owner and runs a new ballot.
  const lease = await clock.drive(acquireResource(host3gen2, ref, { mode: 'ex', ownerNowait: true }));
  assert.equal(lease.leader.ownerGeneration, 2);
  assert.equal(lease.lver, 2);
  for (const seed of [216834742, 1700370983, 469811355, 2562140424]) {
    const r = await runLeaseSchedule(makeLeaseSchedule(seed, { faults: ALL_FAULTS }));
    assert.equal(r.violation, undefined, r.violation && `seed ${seed}: ${r.violation.rule}: ${r.violation.message}`);
  }
});

test('a shared holder whose generation is newer than any we have seen is live, not judged by its old record (ex-with-sh, seed 2539072980)', async () => {
  // Found by the long run: host 2 was stopped, reset by its watchdog, rejoined (generation 2)
  // and took R0 sh; host 1 had not seen generation 2 yet (its renewal read predated it),
  // judged the SHARED mode block by generation 1's stale record, cleared it and let host 4
  // take R0 ex while host 2 held it sh.
  const clock = new ManualClock();
  const disk = new MemoryDisk(2 * MiB, { clock });
  await initLockspace(disk, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
  const mk = (id: number) => new Lockspace({ disk, offset: 0, name: 'LS', hostId: id, clock, random: new SeededRandom(id), hostName: `h${id}`, ioTimeout: 1 });
  const h1 = mk(1);
  const h2 = mk(2);
  await clock.drive(Promise.all([h1.acquire(), h2.acquire()]));
  await clock.drive(h1.renew()); // sees host 2 at generation 1
  clock.advance(120_000); // host 2 goes silent for longer than host_dead (68 s)
  await clock.drive(h1.renew());
  assert.equal(h1.hostLive(2, 1), false, 'generation 1 is dead');
  assert.equal(h1.hostLive(2, 2), true, 'generation 2 was never seen: unknown, so live');
  const r = await runLeaseSchedule(makeLeaseSchedule(2539072980, { faults: ALL_FAULTS }));
  assert.equal(r.violation, undefined, r.violation && `${r.violation.rule}: ${r.violation.message}`);
});

test('a proposal of ours that an earlier acquire retracted is not claimed when a later ballot commits it (two-ex, seed 4225378954)', async () => {
  // Found by the long run: host 5's acquire failed at the commit (EIO) and retracted (dblock
  // RELEASED, lver 41). Host 2 committed host 5's proposal at lver 41; host 6 saw the owner's
  // dblock RELEASED and ran a ballot for lver 42. Host 5's next acquire, which had read the
  // leader at lver 40, ran its ballot at lver 41, adopted its own old proposal, committed it
  // and took the lease: two ex holders. An acquire now claims no lver up to the one it found
  // its own dblock RELEASED at; it gives such a commit back and runs at the next lver.
  const r = await runLeaseSchedule(makeLeaseSchedule(4225378954, { faults: ALL_FAULTS }));
  assert.equal(r.violation, undefined, r.violation && `${r.violation.rule}: ${r.violation.message}`);
});

test('core level: lvchange -asy on an LV active ex counts as shared from the request on (checker, ex-with-sh, seed 2811934190)', async () => {
  // Found by the long run: host 2 converted its ex LV lock to sh for an -asy; the SH mode block
  // landed and host 1 activated the LV shared before host 2's reply (host 2 was then paused),
  // and the checker still counted host 2 ex. The user asked to share the LV, so this is what
  // sh means; C lvmlockd with sanlock behaves the same. The lease level already counted it so.
  const r = await runCoreSchedule(2811934190, { lm: 'sanlock' });
  assert.ok(r.trace.some((l) => l.includes('h2 PAUSE daemon 113.4s')), 'the schedule still pauses host 2 mid-convert');
  assert.ok(r.trace.some((l) => l.includes('h1 c5 lvchange -asy vga/lvuuid-a1 -> 0')), 'host 1 still activates the LV shared');
  assert.equal(r.violation, undefined, r.violation && `${r.violation.rule}: ${r.violation.message}`);
});

test('core level with the dlm manager: a disposed LV record does not release the live lock of that LV (ex-with-sh / two-ex, dlm seeds 1-5)', async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = await runCoreSchedule(seed, { lm: 'dlm' });
    assert.equal(r.violation, undefined, `dlm seed ${seed}: ${r.violation?.rule}: ${r.violation?.message}`);
  }
});

test('core level with the dlm manager: a lost LVB invalidates even while all versions were zero (stale-vg-metadata, dlm seed 55)', async () => {
  const r = await runCoreSchedule(55, { lm: 'dlm' });
  assert.ok(r.trace.some((l) => l.includes('CRASH node after writing VG metadata 2')), 'the schedule still kills the writer holding the VG lock ex');
  assert.equal(r.violation, undefined, `${r.violation?.rule}: ${r.violation?.message}`);
  const bug = await runCoreSchedule(55, { lm: 'dlm', dlmBug: { hideLostLvb: true } });
  assert.equal(bug.violation?.rule, 'stale-vg-metadata', 'with the LVB loss hidden the checker must see stale metadata');
});
