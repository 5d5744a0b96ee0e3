/**
 * Property tests (fast-check) of the lease algorithms on the in-memory disk.
 *
 * N hosts share one MemoryDisk buffer, each through its own MemoryDisk view
 * with a fault hook. Every I/O is held at a gate and a seeded scheduler picks
 * which in-flight I/O completes next, or lets simulated time move (which can
 * make pending I/Os time out, their writes never landing). Hosts randomly
 * acquire ex/sh, convert, release; hosts crash (in-flight writes randomly
 * land or vanish); writes fail with EIO or are torn.
 *
 * Invariant, checked after every scheduling step: among live hosts (not
 * crashed, lockspace not failed) at most one holds ex, and ex never
 * coexists with sh.
 *
 * Not modelled: a write that reports success but never reaches the disk.
 * Disk Paxos assumes acknowledged writes are durable; sanlock makes the same
 * assumption.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock, flushAsync } from '../../src/io/clock';
import { FaultAction, IoRequest, MemoryDisk } from '../../src/io/memory-disk';
import { Lockspace, initLockspace } from '../../src/leases/delta-lease';
import { LeaseMode, ResourceLease, acquireResource, convertResource, initResource, paxosHostFor, releaseResource } from '../../src/leases/paxos-lease';
import { SeededRandom } from '../../src/leases/random';

const MiB = 1 << 20;

interface Params {
  seed: number;
  hosts: number;
  eio: number;
  torn: number;
  crash: number;
  advance: number;
  seconds: number;
  /** Crashed hosts come back as a new instance (new generation) after waiting out the old one. */
  restart?: boolean;
  /** Sanity mode: skip the owner checks (force + direct), which must break the invariant. */
  broken?: boolean;
}

interface Stats {
  grantsEx: number;
  grantsSh: number;
  crashes: number;
  restarts: number;
  steps: number;
}

export async function simulate(p: Params): Promise<Stats> {
  const rnd = new SeededRandom(p.seed);
  const clock = new ManualClock();
  const backing = Buffer.alloc(3 * MiB);
  const setupDisk = new MemoryDisk(backing.length, { backing, clock });
  await initLockspace(setupDisk, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
  await initResource(setupDisk, 2 * MiB, 'LS', 'R', { sectorSize: 512, numHosts: 8 });

  // Every host process ("instance") has its own id; a restarted host is a new
  // instance with the same host_id and a new host name (hence generation + 1).
  const pending: Array<{ iid: number; resolve: () => void }> = [];
  const dead = new Set<number>();
  const holding = new Map<number, { hostId: number; mode: LeaseMode }>();
  let faults = false;
  let nextIid = 1;
  const stats: Stats = { grantsEx: 0, grantsSh: 0, crashes: 0, restarts: 0, steps: 0 };
  const spaces: Lockspace[] = [];
  const end = clock.nowMs() + p.seconds * 1000;

  const hook = (iid: number) => (req: IoRequest): FaultAction | undefined => {
    if (dead.has(iid)) return { kind: 'hang' };
    if (!faults) return undefined;
    const x = rnd.next();
    if (x < p.eio) return { kind: 'eio' };
    // Sector writes are atomic (sanlock assumes it, disks guarantee it): a
    // "torn" write lands a whole number of sectors, then reports EIO. For a
    // one-sector lease write that is "landed, but the writer saw an error".
    if (req.op === 'write' && x < p.eio + p.torn) return { kind: 'torn', bytes: rnd.int(req.length / 512 + 1) * 512 };
    let resolve!: () => void;
    const until = new Promise<void>((r) => (resolve = r));
    pending.push({ iid, resolve });
    return { kind: 'gate', until };
  };

  let violation: Error | undefined;
  const check = () => {
    if (violation) throw violation;
    let ex = 0;
    let sh = 0;
    for (const [iid, hm] of holding) {
      if (dead.has(iid)) continue;
      if (hm.mode === 'ex') ex++;
      else sh++;
    }
    const at = `t=${clock.nowMs() / 1000}s holders=${JSON.stringify([...holding])} dead=[${[...dead]}] params=${JSON.stringify(p)}`;
    if (ex > 1) violation = new Error(`two live ex holders: ${at}`);
    else if (ex && sh) violation = new Error(`ex and sh coexist: ${at}`);
    // remembered even if thrown inside a host actor (whose catch would swallow it)
    if (violation) throw violation;
  };

  const trace = (iid: number, msg: string) => {
    if (process.env.LEASES_PROPERTY_TRACE) console.log(`${(clock.nowMs() / 1000).toFixed(3)} i${iid} ${msg}`);
  };

  const actor = async (ls: Lockspace, iid: number) => {
    const h = ls.hostId;
    const px = paxosHostFor(ls);
    const ref = { disk: ls.disk, offset: 2 * MiB, lockspace: 'LS', resource: 'R' };
    while (!dead.has(iid) && clock.nowMs() < end) {
      let lease: ResourceLease | undefined;
      try {
        const mode: LeaseMode = p.broken || rnd.next() < 0.5 ? 'ex' : 'sh';
        lease = await acquireResource(px, ref, p.broken ? { mode: 'ex', force: true, directMode: true } : { mode, ownerNowait: rnd.next() < 0.5 });
        if (p.broken) lease.mode = 'ex';
        if (dead.has(iid)) return;
        holding.set(iid, { hostId: h, mode });
        trace(iid, `host ${h} gen ${ls.generation} acquired ${mode} lver ${lease.lver}`);
        if (mode === 'ex') stats.grantsEx++;
        else stats.grantsSh++;
        check();
        await clock.sleep(rnd.int(4000));
        if (dead.has(iid)) return;
        if (rnd.next() < 0.3) {
          const target: LeaseMode = lease.mode === 'ex' ? 'sh' : 'ex';
          if (target === 'sh') holding.set(iid, { hostId: h, mode: 'sh' });
          try {
            await convertResource(px, lease, target, { ownerNowait: true });
            trace(iid, `converted to ${target}`);
          } catch (e) {
            trace(iid, `convert to ${target} failed: ${(e as Error).message}`);
          }
          if (dead.has(iid)) return;
          holding.set(iid, { hostId: h, mode: lease.mode });
          check();
          await clock.sleep(rnd.int(2000));
          if (dead.has(iid)) return;
        }
        holding.delete(iid);
        trace(iid, `releasing ${lease.mode}`);
        await releaseResource(px, lease);
        trace(iid, `released`);
      } catch (e) {
        trace(iid, `error: ${(e as Error).message}`);
        holding.delete(iid);
        if (dead.has(iid)) return;
        await clock.sleep(rnd.int(3000));
      }
    }
  };

  const start = async (hostId: number, restart: boolean): Promise<void> => {
    const iid = nextIid++;
    const disk = new MemoryDisk(backing.length, { backing, clock, fault: hook(iid), path: `host${hostId}.${iid}` });
    const ls = new Lockspace({
      disk,
      offset: 0,
      name: 'LS',
      hostId,
      clock,
      random: new SeededRandom(p.seed + iid),
      hostName: `host${hostId}.${iid}`,
      ioTimeout: 1,
      onFail: () => kill(iid, hostId),
    });
    spaces.push(ls);
    if (!restart) {
      await clock.drive(ls.acquire());
      ls.startRenewal();
      void actor(ls, iid);
      return;
    }
    try {
      await ls.acquire(); // waits out the old instance: max(host_dead, ...) = 68 s
    } catch (e) {
      trace(iid, `restart of host ${hostId} failed: ${(e as Error).message}`);
      return;
    }
    if (dead.has(iid)) return;
    stats.restarts++;
    trace(iid, `host ${hostId} restarted with generation ${ls.generation}`);
    ls.startRenewal();
    await actor(ls, iid);
  };

  const kill = (iid: number, hostId: number) => {
    if (dead.has(iid)) return;
    dead.add(iid);
    holding.delete(iid);
    stats.crashes++;
    trace(iid, `crash of host ${hostId}`);
    // in-flight I/O of the crashed instance: some lands, the rest is lost
    for (let i = pending.length - 1; i >= 0; i--) {
      if (pending[i]!.iid !== iid) continue;
      const [e] = pending.splice(i, 1);
      if (rnd.next() < 0.5) e!.resolve();
    }
    if (p.restart && clock.nowMs() < end - 75_000) {
      void clock.sleep(rnd.int(5000)).then(() => start(hostId, true));
    }
  };

  for (let h = 1; h <= p.hosts; h++) await start(h, false);
  faults = true;
  const live = () => spaces.map((s, i) => ({ s, iid: i + 1 })).filter((x) => !dead.has(x.iid));

  while (clock.nowMs() < end) {
    stats.steps++;
    await flushAsync(1);
    check();
    if (rnd.next() < p.crash / 100) {
      const l = live();
      if (l.length > 1) {
        const v = l[rnd.int(l.length)]!;
        kill(v.iid, v.s.hostId);
      }
    }
    if (pending.length && rnd.next() > p.advance) {
      const [e] = pending.splice(rnd.int(pending.length), 1);
      e!.resolve();
      continue;
    }
    if (!clock.runNext()) break;
  }
  // wind down: no more faults, let everything finish
  faults = false;
  for (const e of pending.splice(0)) e.resolve();
  for (const s of spaces) void s.stopRenewal();
  for (let i = 0; i < 200000 && clock.pendingTimers() > 0; i++) {
    await flushAsync(1);
    for (const e of pending.splice(0)) e.resolve();
    clock.runNext();
  }
  if (violation) throw violation;
  return stats;
}

test('random interleavings never grant ex to two live hosts, nor ex with sh', async () => {
  let grants = 0;
  let crashes = 0;
  let restarts = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        seed: fc.integer({ min: 1, max: 0x7fffffff }),
        hosts: fc.integer({ min: 2, max: 4 }),
        eio: fc.constantFrom(0, 0.01, 0.05),
        torn: fc.constantFrom(0, 0.005),
        crash: fc.constantFrom(0, 0.05, 0.2),
        advance: fc.constantFrom(0.02, 0.1, 0.3),
        seconds: fc.constantFrom(60, 150, 240),
        restart: fc.boolean(),
      }),
      async (p) => {
        const s = await simulate(p);
        grants += s.grantsEx + s.grantsSh;
        if (process.env.LEASES_PROPERTY_VERBOSE) console.log(JSON.stringify({ ...p, ...s }));
        crashes += s.crashes;
        restarts += s.restarts;
      },
    ),
    { numRuns: Number(process.env.LEASES_PROPERTY_RUNS ?? 40), seed: Number(process.env.LEASES_PROPERTY_SEED ?? 20261125) },
  );
  // the runs must actually exercise grants and crashes, or the property is vacuous
  assert.ok(grants > 50, `grants ${grants}`);
  assert.ok(crashes > 3, `crashes ${crashes}`);
  assert.ok(restarts > 0, `restarts ${restarts}`);
});

test('the checker catches a broken lease algorithm (the property can fail)', async () => {
  let caught = 0;
  for (let seed = 1; seed <= 5; seed++) {
    try {
      await simulate({ seed, hosts: 3, eio: 0, torn: 0, crash: 0, advance: 0.1, seconds: 30, broken: true });
    } catch (e) {
      if (/two live ex holders/.test((e as Error).message)) caught++;
      else throw e;
    }
  }
  assert.ok(caught >= 3, `violations caught in ${caught}/5 runs`);
});
