/** Delta leases (host_id ownership) on the in-memory disk with a manual clock. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/io/clock';
import { MemoryDisk } from '../../src/io/memory-disk';
import { Lockspace, initLockspace } from '../../src/leases/delta-lease';
import { SANLK, isLeaseError } from '../../src/leases/errors';
import { decodeLeader, leaderSector } from '../../src/leases/ondisk';
import { SeededRandom } from '../../src/leases/random';

const MiB = 1 << 20;

async function setup(io = 10, sectorSize = 512, alignSize = MiB) {
  const clock = new ManualClock();
  const disk = new MemoryDisk(4 * MiB, { clock, sectorSize: sectorSize === 4096 ? 4096 : 512 });
  await initLockspace(disk, 0, 'LS', { sectorSize, alignSize, ioTimeout: io });
  const mk = (hostId: number, hostName = `host${hostId}`, seed = hostId) =>
    new Lockspace({ disk, offset: 0, name: 'LS', hostId, clock, random: new SeededRandom(seed), hostName, ioTimeout: io });
  return { clock, disk, mk };
}

describe('delta lease', () => {
  test('acquire of a free host_id waits exactly 2*io_timeout and sets generation 1', async () => {
    const { clock, disk, mk } = await setup(10);
    const a = mk(1);
    const t0 = clock.nowMs();
    const gen = await clock.drive(a.acquire());
    assert.equal(gen, 1);
    assert.equal(clock.nowMs() - t0, 20_000);
    const l = decodeLeader(disk.data, 0);
    assert.equal(l.ownerId, 1);
    assert.equal(l.ownerGeneration, 1);
    assert.equal(l.ioTimeout, 10);
    assert.equal(l.timestamp, Math.floor(t0 / 1000));
  });

  test('renew changes the timestamp and writes the bitmap; release clears timestamp only', async () => {
    const { clock, disk, mk } = await setup(1);
    const a = mk(1);
    await clock.drive(a.acquire());
    a.setHostBit(5);
    clock.advance(3000);
    await clock.drive(a.renew());
    const l = decodeLeader(disk.data, 0);
    assert.equal(l.timestamp, clock.monotonicSeconds());
    assert.equal(disk.data[256], 1 << 4, 'bit for host 5');
    await clock.drive(a.release());
    const r = decodeLeader(disk.data, 0);
    assert.equal(r.timestamp, 0);
    assert.equal(r.ownerGeneration, 1);
    assert.equal(disk.data[256], 0, 'bitmap zero after release');
  });

  test('acquire of a held, live host_id waits host_dead and fails with HOSTID_BUSY', async () => {
    const { clock, mk } = await setup(1);
    const a = mk(1, 'a');
    await clock.drive(a.acquire());
    a.startRenewal();
    const b = mk(1, 'b');
    const t0 = clock.nowMs();
    await assert.rejects(clock.drive(b.acquire()), (e) => isLeaseError(e, SANLK.HOSTID_BUSY));
    // max(host_dead = 8+60, renewal + 6 = 8) = 68 s
    assert.equal(Math.round((clock.nowMs() - t0) / 1000), 68);
    await clock.drive(a.stopRenewal());
  });

  test('a dead holder is replaced after host_dead_seconds, with generation + 1', async () => {
    const { clock, mk } = await setup(1);
    const a = mk(1, 'a');
    await clock.drive(a.acquire()); // never renewed: "crashed"
    const b = mk(1, 'b');
    const t0 = clock.nowMs();
    assert.equal(await clock.drive(b.acquire()), 2);
    assert.equal(Math.round((clock.nowMs() - t0) / 1000), 68 + 2);
  });

  test('the same host instance (same host name) reacquires fast', async () => {
    const { clock, mk } = await setup(1);
    await clock.drive(mk(1, 'same').acquire());
    const t0 = clock.nowMs();
    assert.equal(await clock.drive(mk(1, 'same').acquire()), 2);
    assert.equal(clock.nowMs() - t0, 2000);
  });

  test('liveness of other hosts follows their renewals', async () => {
    const { clock, mk } = await setup(1);
    const a = mk(1);
    const b = mk(2);
    await clock.drive(Promise.all([a.acquire(), b.acquire()]));
    a.startRenewal();
    b.startRenewal();
    await clock.drive(clock.sleep(10_000));
    assert.equal(a.hostLive(2, b.generation), true);
    assert.equal(a.hostLive(3, 0), false, 'free host_id is not alive');
    // A generation newer than the free record's was never seen: host 3 may have joined since
    // our last renewal (a SHARED mode block can name it), so it is unknown, hence live.
    assert.equal(a.hostLive(3, 1), true, 'unseen generation is unknown');
    assert.equal(mk(7).hostLive(2, 1), true, 'nothing known yet counts as alive');
    await clock.drive(b.stopRenewal()); // b "crashes": stops renewing
    await clock.drive(clock.sleep(60_000));
    assert.equal(a.hostLive(2, b.generation), true, 'not yet host_dead');
    await clock.drive(clock.sleep(15_000));
    assert.equal(a.hostLive(2, b.generation), false, 'dead after host_dead (68 s) without renewal');
    assert.equal(a.hostLive(2, 0), false, 'newer generation = old instance dead');
    assert.equal(a.hostState(2).state, 'dead');
    assert.equal(a.hostState(3).state, 'free');
    assert.equal(mk(9).hostState(2).state, 'unknown');
    await clock.drive(a.stopRenewal());
  });

  test('renewal detects a stolen lease (RENEW_OWNER) and the loop reports failure', async () => {
    const { clock, disk } = await setup(1);
    let failed: Error | undefined;
    const a = new Lockspace({
      disk,
      offset: 0,
      name: 'LS',
      hostId: 1,
      clock,
      random: new SeededRandom(1),
      hostName: 'a',
      ioTimeout: 1,
      onFail: (e) => {
        failed = e;
      },
    });
    await clock.drive(a.acquire());
    // someone overwrites our record with another owner generation
    const l = decodeLeader(disk.data, 0);
    const { leaderSector } = await import('../../src/leases/ondisk');
    leaderSector({ ...l, ownerGeneration: 9 }, 512).copy(disk.data, 0);
    a.startRenewal();
    await clock.drive(clock.sleep(5000));
    assert.ok(failed && isLeaseError(failed, SANLK.RENEW_OWNER));
    assert.equal(a.state, 'failed');
  });

  test('renewal failing for id_renewal_fail_seconds fails the lockspace', async () => {
    const { clock, disk, mk } = await setup(1);
    const a = mk(1);
    await clock.drive(a.acquire());
    let failed = false;
    (a as unknown as { onFail: () => void }).onFail = () => {
      failed = true;
    };
    disk.fault = () => ({ kind: 'eio' });
    a.startRenewal();
    // 8*io counts from the timestamp written by acquire (as sanlock's last_success), 2*io before acquire returns.
    await clock.drive(clock.sleep(5000));
    assert.equal(failed, false, 'still within 8*io');
    await clock.drive(clock.sleep(3000));
    assert.equal(failed, true);
  });

  test('bad input: corrupt record, wrong magic, unknown version, bad host_id -> clear error, no write', async () => {
    const { clock, disk, mk } = await setup(1);
    const check = async (mutate: () => void, re: RegExp, rv: number, hostId = 3) => {
      const snapshot = Buffer.from(disk.data);
      mutate();
      const before = Buffer.from(disk.data);
      const w = disk.stats.writes;
      await assert.rejects(clock.drive(mk(hostId).acquire()), (e: unknown) => isLeaseError(e, rv) && re.test((e as Error).message));
      assert.equal(disk.stats.writes, w);
      assert.ok(disk.data.equals(before));
      snapshot.copy(disk.data);
    };
    await check(() => (disk.data[2 * 512 + 60] ^= 1), /checksum/, SANLK.LEADER_CHECKSUM);
    await check(() => disk.data.writeUInt32LE(0x12345678, 2 * 512), /magic 0x12345678/, SANLK.LEADER_MAGIC);
    await check(() => {
      const l = decodeLeader(disk.data, 2 * 512);
      leaderSector({ ...l, version: 0x00040001 }, 512).copy(disk.data, 2 * 512);
    }, /version 0x40001/, SANLK.LEADER_VERSION);
    assert.throws(() => mk(2001), /invalid host_id 2001/);
    // a resource lease where a lockspace is expected
    const { initResource } = await import('../../src/leases/paxos-lease');
    await initResource(disk, 2 * MiB, 'LS', 'R', { sectorSize: 512 });
    const wrong = new Lockspace({ disk, offset: 2 * MiB, name: 'LS', hostId: 1, clock, random: new SeededRandom(1), ioTimeout: 1 });
    const w = disk.stats.writes;
    await assert.rejects(clock.drive(wrong.acquire()), /holds a resource lease, not a lockspace/);
    assert.equal(disk.stats.writes, w);
  });

  test('4096-byte sectors with 8 MiB align (2000 hosts)', async () => {
    const clock = new ManualClock();
    const disk = new MemoryDisk(8 * MiB, { clock, sectorSize: 4096 });
    await initLockspace(disk, 0, 'LS4', { sectorSize: 4096, alignSize: 8 * MiB, ioTimeout: 1 });
    const a = new Lockspace({ disk, offset: 0, name: 'LS4', hostId: 2000, clock, random: new SeededRandom(1), hostName: 'h', ioTimeout: 1 });
    assert.equal(await clock.drive(a.acquire()), 1);
    assert.equal(decodeLeader(disk.data, 1999 * 4096).ownerId, 2000);
    const bad = new Lockspace({ disk, offset: 0, name: 'OTHER', hostId: 1, clock, random: new SeededRandom(1), ioTimeout: 1 });
    await assert.rejects(clock.drive(bad.acquire()), (e) => isLeaseError(e, SANLK.LEADER_LOCKSPACE));
  });
});

describe('host view of observeArea', () => {
  test('the same host statuses whether the area is read as words, as bytes (unaligned) or with sector versions', async () => {
    const { clock, disk, mk } = await setup(1);
    const a = mk(1);
    const b = mk(2);
    const c = mk(7);
    for (const l of [a, b, c]) await clock.drive(l.acquire());
    const geo = { sectorSize: 512 as const, alignSize: MiB, maxHosts: 2000 };
    const viewers = { words: mk(3), bytes: mk(4), versions: mk(5) };
    const versionsOf = new WeakMap<Buffer, Uint32Array>();
    // a disk that knows sector versions: a sector gets a new version whenever its bytes changed
    const seen = new Map<number, { bytes: Buffer; version: number }>();
    let stamp = 1;
    (viewers.versions as unknown as { disk: unknown }).disk = { ...disk, sectorVersions: (buf: Buffer) => versionsOf.get(buf) };
    const snapshot = (): Buffer => {
      const area = Buffer.from(disk.data.subarray(0, MiB));
      const v = new Uint32Array(2000);
      for (let i = 0; i < 2000; i++) {
        const sec = area.subarray(i * 512, i * 512 + 512);
        let e = seen.get(i);
        if (!e || !e.bytes.equals(sec)) seen.set(i, (e = { bytes: Buffer.from(sec), version: ++stamp }));
        v[i] = e.version;
      }
      versionsOf.set(area, v);
      return area;
    };
    const unaligned = (area: Buffer): Buffer => {
      const big = Buffer.alloc(area.length + 1);
      area.copy(big, 1);
      return big.subarray(1);
    };
    const compare = (what: string) => {
      for (let h = 1; h <= 10; h++) {
        if (h >= 3 && h <= 5) continue; // the viewers themselves
        const w = viewers.words.hostStatus(h);
        assert.deepEqual(viewers.bytes.hostStatus(h), w, `${what}: host ${h}, bytes vs words`);
        assert.deepEqual(viewers.versions.hostStatus(h), w, `${what}: host ${h}, versions vs words`);
      }
    };
    for (let round = 0; round < 4; round++) {
      const area = Buffer.from(disk.data.subarray(0, MiB));
      const now = clock.monotonicSeconds();
      viewers.words.observeArea(area, geo, now);
      viewers.bytes.observeArea(unaligned(area), geo, now);
      viewers.versions.observeArea(snapshot(), geo, now);
      compare(`round ${round}`);
      clock.advance(3000);
      if (round === 0) await clock.drive(b.renew());
      if (round === 1) await clock.drive(c.release());
      if (round === 2) { await clock.drive(a.renew()); await clock.drive(b.renew()); }
    }
    assert.equal(viewers.words.hostStatus(2)!.ownerId, 2);
    assert.equal(viewers.words.hostStatus(7)!.timestamp, 0, 'host 7 released');
    assert.equal(viewers.words.hostState(1).state, 'live');
  });
});
