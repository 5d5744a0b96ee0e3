/** Paxos (resource) leases: ex/sh, liveness of owners, convert, request, and bad input. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/io/clock';
import { MemoryDisk } from '../../src/io/memory-disk';
import { Lockspace, initLockspace } from '../../src/leases/delta-lease';
import { SANLK, isLeaseError, LeaseError } from '../../src/leases/errors';
import { decodeDblock, decodeLeader, decodeModeBlock, encodeLeader, leaderSector } from '../../src/leases/ondisk';
import {
  ResourceRef,
  acquireResource,
  convertResource,
  directHost,
  initResource,
  paxosHostFor,
  readRequest,
  readResourceOwners,
  releaseResource,
  requestResource,
  requestWantsRelease,
} from '../../src/leases/paxos-lease';
import { SeededRandom } from '../../src/leases/random';

const MiB = 1 << 20;

async function cluster(n: number, io = 1) {
  const clock = new ManualClock();
  const disk = new MemoryDisk(8 * MiB, { clock });
  await initLockspace(disk, 0, 'LS', { sectorSize: 512, ioTimeout: io });
  await initResource(disk, MiB, 'LS', 'R1', { sectorSize: 512 });
  const hosts: Lockspace[] = [];
  for (let i = 1; i <= n; i++) {
    hosts.push(new Lockspace({ disk, offset: 0, name: 'LS', hostId: i, clock, random: new SeededRandom(i), hostName: `h${i}`, ioTimeout: io }));
  }
  await clock.drive(Promise.all(hosts.map((h) => h.acquire())));
  for (const h of hosts) h.startRenewal();
  // let every host see every other host renew at least once
  await clock.drive(clock.sleep(5000));
  const ref: ResourceRef = { disk, offset: MiB, lockspace: 'LS', resource: 'R1' };
  const stop = () => clock.drive(Promise.all(hosts.map((h) => h.stopRenewal())));
  return { clock, disk, hosts, ref, px: hosts.map(paxosHostFor), stop };
}

const isRv = (rv: number) => (e: unknown) => isLeaseError(e, rv);

describe('paxos lease', () => {
  test('ex acquire and release on a free lease', async () => {
    const { clock, disk, px, ref, stop } = await cluster(1);
    const lease = await clock.drive(acquireResource(px[0]!, ref));
    assert.equal(lease.lver, 1);
    let l = decodeLeader(disk.data, MiB);
    assert.equal(l.ownerId, 1);
    assert.notEqual(l.timestamp, 0);
    assert.equal(l.writeId, 1);
    await clock.drive(releaseResource(px[0]!, lease));
    l = decodeLeader(disk.data, MiB);
    assert.equal(l.timestamp, 0);
    assert.equal(l.ownerId, 1, 'owner kept after release');
    assert.equal(decodeDblock(disk.data, MiB + 2 * 512).flags, 1, 'dblock RELEASED');
    const again = await clock.drive(acquireResource(px[0]!, ref));
    assert.equal(again.lver, 2);
    await stop();
  });

  test('ex held by a live host is refused to another, naming the holder', async () => {
    const { clock, px, ref, stop } = await cluster(2);
    const lease = await clock.drive(acquireResource(px[0]!, ref));
    await assert.rejects(clock.drive(acquireResource(px[1]!, ref, { ownerNowait: true })), (e: unknown) => {
      assert.ok(e instanceof LeaseError);
      assert.ok(e.rv === SANLK.ACQUIRE_IDLIVE || e.rv === SANLK.ACQUIRE_OWNED_RETRY, e.message);
      assert.equal(e.holder?.hostId, 1);
      assert.equal(e.holder?.generation, 1);
      return true;
    });
    await assert.rejects(clock.drive(acquireResource(px[1]!, ref)), isRv(SANLK.ACQUIRE_IDLIVE));
    await clock.drive(releaseResource(px[0]!, lease));
    const l2 = await clock.drive(acquireResource(px[1]!, ref));
    assert.equal(l2.leader.ownerId, 2);
    await stop();
  });

  test('a dead owner loses the lease only after host_dead_seconds', async () => {
    const { clock, px, hosts, ref, stop } = await cluster(2);
    await clock.drive(acquireResource(px[0]!, ref));
    await clock.drive(hosts[0]!.stopRenewal()); // host 1 crashes
    const t0 = clock.monotonicSeconds();
    // Right after the crash host 2's renewal thread still saw host 1 change: IDLIVE.
    // Callers retry; the grant comes once host 1 has been silent for host_dead_seconds.
    const retry = async () => {
      for (;;) {
        try {
          return await acquireResource(px[1]!, ref);
        } catch (e) {
          if (!isLeaseError(e, SANLK.ACQUIRE_IDLIVE)) throw e;
          assert.ok(clock.monotonicSeconds() - t0 < 68, 'IDLIVE only before host_dead');
          await clock.sleep(1000);
        }
      }
    };
    const l2 = await clock.drive(retry());
    const waited = clock.monotonicSeconds() - t0;
    assert.equal(l2.leader.ownerId, 2);
    assert.ok(waited >= 68 - 4 && waited <= 68 + 7, `waited ${waited}s`);
    await stop();
  });

  test('a released host_id frees its paxos leases immediately', async () => {
    const { clock, px, hosts, ref, stop } = await cluster(2);
    await clock.drive(acquireResource(px[0]!, ref));
    await clock.drive(hosts[0]!.release());
    const t0 = clock.nowMs();
    const l2 = await clock.drive(acquireResource(px[1]!, ref));
    assert.equal(l2.leader.ownerId, 2);
    assert.ok(clock.nowMs() - t0 < 1000);
    await stop();
  });

  test('without a joined lockspace an owned lease fails with ACQUIRE_LOCKSPACE (like sanlock direct)', async () => {
    const { clock, px, ref, stop } = await cluster(1);
    await clock.drive(acquireResource(px[0]!, ref));
    const h = directHost(2, 1, clock, new SeededRandom(9), 1);
    await assert.rejects(clock.drive(acquireResource(h, ref)), isRv(SANLK.ACQUIRE_LOCKSPACE));
    await stop();
  });

  test('shared holders coexist; ex is refused with -EAGAIN naming them; ok after they release', async () => {
    const { clock, disk, px, ref, stop } = await cluster(3);
    const s1 = await clock.drive(acquireResource(px[0]!, ref, { mode: 'sh' }));
    const s2 = await clock.drive(acquireResource(px[1]!, ref, { mode: 'sh' }));
    const owners = await clock.drive(readResourceOwners(ref));
    assert.deepEqual(owners.shared.map((s) => s.hostId), [1, 2]);
    assert.equal(owners.exclusive, undefined);
    await assert.rejects(clock.drive(acquireResource(px[2]!, ref)), (e: unknown) => {
      assert.ok(isLeaseError(e, SANLK.EAGAIN));
      assert.deepEqual(e.holder?.sharedHolders?.map((s) => s.hostId), [1, 2]);
      return true;
    });
    assert.equal(decodeLeader(disk.data, MiB).timestamp, 0, 'refused ex left the leader free');
    await clock.drive(releaseResource(px[0]!, s1));
    await clock.drive(releaseResource(px[1]!, s2));
    const ex = await clock.drive(acquireResource(px[2]!, ref));
    await assert.rejects(clock.drive(acquireResource(px[0]!, ref, { mode: 'sh' })), isRv(SANLK.ACQUIRE_IDLIVE));
    await clock.drive(releaseResource(px[2]!, ex));
    await stop();
  });

  test('shared mode block of a dead host is cleared by an ex acquire', async () => {
    const { clock, disk, px, hosts, ref, stop } = await cluster(2);
    await clock.drive(acquireResource(px[0]!, ref, { mode: 'sh' }));
    await clock.drive(hosts[0]!.stopRenewal());
    await assert.rejects(clock.drive(acquireResource(px[1]!, ref)), isRv(SANLK.EAGAIN));
    await clock.drive(clock.sleep(80_000));
    const ex = await clock.drive(acquireResource(px[1]!, ref));
    assert.equal(ex.mode, 'ex');
    assert.equal(decodeModeBlock(disk.data, MiB + 2 * 512 + 128).flags, 0, 'dead SH holder cleared');
    await stop();
  });

  test('convert ex->sh->ex', async () => {
    const { clock, px, ref, stop } = await cluster(2);
    const lease = await clock.drive(acquireResource(px[0]!, ref));
    await clock.drive(convertResource(px[0]!, lease, 'sh'));
    const s2 = await clock.drive(acquireResource(px[1]!, ref, { mode: 'sh' }));
    await assert.rejects(clock.drive(convertResource(px[0]!, lease, 'ex')), isRv(SANLK.EAGAIN));
    assert.equal(lease.mode, 'sh');
    let o = await clock.drive(readResourceOwners(ref));
    assert.deepEqual(o.shared.map((s) => s.hostId), [1, 2], 'failed convert keeps our SH');
    await clock.drive(releaseResource(px[1]!, s2));
    await clock.drive(convertResource(px[0]!, lease, 'ex'));
    assert.equal(lease.mode, 'ex');
    o = await clock.drive(readResourceOwners(ref));
    assert.equal(o.exclusive?.hostId, 1);
    assert.deepEqual(o.shared, []);
    await clock.drive(releaseResource(px[0]!, lease));
    await stop();
  });

  test('a failed ex->sh convert leaves the lease as sh, never as ex', async () => {
    const { clock, disk, px, ref, stop } = await cluster(3);
    const lease = await clock.drive(acquireResource(px[0]!, ref));
    // the mode-block write lands, the leader release fails
    disk.fault = (r) => (r.op === 'write' && r.label === 'paxos_release' ? { kind: 'eio' } : undefined);
    await assert.rejects(clock.drive(convertResource(px[0]!, lease, 'sh')), /injected I\/O error/);
    disk.fault = undefined;
    assert.equal(lease.mode, 'sh');
    // ex stays refused to others (our SH mode block, or our leader)
    await assert.rejects(clock.drive(acquireResource(px[2]!, ref, { ownerNowait: true })), (e: unknown) => isLeaseError(e));
    await clock.drive(releaseResource(px[0]!, lease));
    const ex = await clock.drive(acquireResource(px[2]!, ref));
    assert.equal(ex.mode, 'ex');
    await stop();
  });

  test('request record and bitmap notification reach the owner', async () => {
    const { clock, px, hosts, ref, stop } = await cluster(2);
    const lease = await clock.drive(acquireResource(px[0]!, ref));
    const seen: number[] = [];
    hosts[0]!.onBitmapSeen = (from) => seen.push(from);
    assert.equal(await clock.drive(requestResource(px[1]!, ref, 0, 1)), 1);
    const rr = await clock.drive(readRequest(ref));
    assert.equal(rr.lver, 2);
    assert.equal(rr.forceMode, 1);
    assert.ok(requestWantsRelease(rr, lease));
    await assert.rejects(clock.drive(requestResource(px[1]!, ref, 1, 1)), isRv(SANLK.REQUEST_OLD));
    await clock.drive(clock.sleep(5000));
    assert.ok(seen.includes(2), 'owner saw requester bit');
    await stop();
  });

  test('a failed commit is retracted so the lease does not stay stuck on us', async () => {
    const { clock, disk, px, ref, stop } = await cluster(2);
    let n = 0;
    disk.fault = (r) => (r.op === 'write' && r.label === 'paxos_acquire_commit' && n++ === 0 ? { kind: 'eio' } : undefined);
    await assert.rejects(clock.drive(acquireResource(px[0]!, ref)), /injected I\/O error/);
    disk.fault = undefined;
    assert.equal(decodeDblock(disk.data, MiB + 2 * 512).flags, 1, 'our dblock marked RELEASED');
    // host 2 commits host 1's proposal (ACQUIRE_OTHER) or takes the lease; either way it is not stuck
    let got;
    for (let i = 0; i < 3 && !got; i++) {
      try {
        got = await clock.drive(acquireResource(px[1]!, ref));
      } catch (e) {
        assert.ok(isLeaseError(e, SANLK.ACQUIRE_OTHER), String(e));
      }
    }
    assert.equal(got?.leader.ownerId, 2);
    await stop();
  });

  test('acquire with a required lver', async () => {
    const { clock, px, ref, stop } = await cluster(1);
    await assert.rejects(clock.drive(acquireResource(px[0]!, ref, { lver: 5 })), isRv(SANLK.ACQUIRE_LVER));
    await stop();
  });
});

describe('bad input: clear errors and no writes to a lease we cannot parse', () => {
  async function one() {
    const clock = new ManualClock();
    const disk = new MemoryDisk(4 * MiB, { clock });
    await initResource(disk, MiB, 'LS', 'R1', { sectorSize: 512 });
    const host = directHost(1, 1, clock, new SeededRandom(1), 1);
    const ref: ResourceRef = { disk, offset: MiB, lockspace: 'LS', resource: 'R1' };
    return { clock, disk, host, ref };
  }
  async function expectNoWrite(disk: MemoryDisk, p: Promise<unknown>, rv: number, msg: RegExp) {
    const before = Buffer.from(disk.data);
    const w = disk.stats.writes;
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isLeaseError(e, rv), String(e));
      assert.match((e as Error).message, msg);
      return true;
    });
    assert.equal(disk.stats.writes, w, 'no write');
    assert.ok(disk.data.equals(before));
  }

  test('corrupt leader checksum', async () => {
    const { clock, disk, host, ref } = await one();
    disk.data[MiB + 60] ^= 0xff; // inside space_name, covered by the checksum
    await expectNoWrite(disk, clock.drive(acquireResource(host, { ...ref, lockspace: decodeLeader(disk.data, MiB).spaceName.toString('latin1').replace(/\0+$/, '') })), SANLK.LEADER_CHECKSUM, /checksum/);
  });

  test('wrong magic (not a lease, or a lockspace where a resource is expected)', async () => {
    const { clock, disk, host, ref } = await one();
    await expectNoWrite(disk, clock.drive(acquireResource(host, { ...ref, offset: 2 * MiB })), SANLK.LEADER_MAGIC, /no sanlock lease|magic/);
    await initLockspace(disk, 2 * MiB, 'LS', { sectorSize: 512 });
    await expectNoWrite(disk, clock.drive(acquireResource(host, { ...ref, offset: 2 * MiB })), SANLK.LEADER_MAGIC, /lockspace/);
  });

  test('unknown major version', async () => {
    const { clock, disk, host, ref } = await one();
    const l = decodeLeader(disk.data, MiB);
    leaderSector({ ...l, version: 0x00070001 }, 512).copy(disk.data, MiB);
    await expectNoWrite(disk, clock.drive(acquireResource(host, ref)), SANLK.LEADER_VERSION, /version 0x70001/);
  });

  test('wrong lockspace or resource name', async () => {
    const { clock, disk, host, ref } = await one();
    await expectNoWrite(disk, clock.drive(acquireResource(host, { ...ref, resource: 'R2' })), SANLK.LEADER_RESOURCE, /"R1" on disk, expected "R2"/);
    await expectNoWrite(disk, clock.drive(acquireResource(host, { ...ref, lockspace: 'XX' })), SANLK.LEADER_LOCKSPACE, /expected "XX"/);
  });

  test('corrupt dblock', async () => {
    const { clock, disk, host, ref } = await one();
    disk.data[MiB + 3 * 512] = 7; // host 2's dblock mbal, checksum now wrong
    await expectNoWrite(disk, clock.drive(acquireResource(host, ref)), SANLK.DBLOCK_CHECKSUM, /host_id 2/);
  });

  test('host_id above num_hosts', async () => {
    const { clock, disk, ref } = await one();
    await initResource(disk, MiB, 'LS', 'R1', { sectorSize: 512, numHosts: 4 });
    await expectNoWrite(disk, clock.drive(acquireResource(directHost(5, 1, clock, new SeededRandom(1), 1), ref)), SANLK.LEADER_NUMHOSTS, /num_hosts 4/);
  });

  test('truncated device and misaligned offsets', async () => {
    const clock = new ManualClock();
    const small = new MemoryDisk(MiB + 4096, { clock });
    await assert.rejects(initResource(small, MiB, 'LS', 'R', { sectorSize: 512 }), /needs 2097152 bytes/);
    await assert.rejects(initLockspace(small, 100, 'LS', { sectorSize: 512 }), /not a multiple/);
    const d4k = new MemoryDisk(4 * MiB, { clock, sectorSize: 4096 });
    await assert.rejects(initResource(d4k, 0, 'LS', 'R', { sectorSize: 512 }), /4096-byte sectors/);
    assert.equal(small.stats.writes + d4k.stats.writes, 0);
    // a lease whose area runs past the end of the device
    const { disk, host, ref } = await one();
    const cut = MemoryDisk.fromBuffer(disk.data.subarray(0, MiB + 64 * 1024), { clock });
    await expectNoWrite(cut, clock.drive(acquireResource(host, { ...ref, disk: cut })), SANLK.LEADER_READ, /past the end/);
  });

  test('I/O errors and timeouts surface as lease errors', async () => {
    const { clock, disk, host, ref } = await one();
    disk.fault = (r) => (r.op === 'read' ? { kind: 'eio' } : undefined);
    await assert.rejects(clock.drive(acquireResource(host, ref)), /injected I\/O error/);
    disk.fault = (r) => (r.op === 'read' ? { kind: 'hang' } : undefined);
    await assert.rejects(clock.drive(acquireResource(host, ref)), isRv(SANLK.AIO_TIMEOUT));
  });

  test('encodeLeader refuses nothing silently: names over 48 bytes are rejected', async () => {
    const { disk } = await one();
    await assert.rejects(initResource(disk, 0, 'x'.repeat(49), 'R', { sectorSize: 512 }), /longer than 48/);
    assert.ok(encodeLeader(decodeLeader(disk.data, MiB)).length === 200);
  });
});
