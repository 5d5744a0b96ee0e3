// Lock adoption in the sanlock lock manager, on memory disks with a manual
// clock: a daemon instance dies holding leases (its i/o stops), the next
// instance continues its delta lease and adopts (adopt_only / adopt_ok) or
// purges the leases left behind; another host never gets an adopted lease.
// Also nodelay on a free host_id lease.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/io/clock';
import { MemoryDisk } from '../../src/io/memory-disk';
import type { Disk } from '../../src/io/disk';
import { SeededRandom } from '../../src/leases/random';
import * as L from '../../src/leases';
import { E } from '../../src/core/constants';
import { newGlobalLockChoice } from '../../src/core/lockd';
import type { ResourceView } from '../../src/lm/types';
import { SanlockLockManager, type SanlockLockspace, type AdoptName, type AdoptNameStore } from '../../src/lm/sanlock/sanlock-lm';

const MiB = 1 << 20;
const IO = 1;
const HOST_DEAD = L.calcHostDeadSeconds(IO, 60);

/** A view of the medium; `dead()` makes every later i/o fail, as after kill -9. */
function view(disk: MemoryDisk, clock: ManualClock): { disk: Disk; kill(): void } {
  let dead = false;
  const d = new MemoryDisk(0, { clock, backing: disk.data, fault: () => (dead ? { kind: 'eio' } : undefined) });
  const shared: Disk = {
    path: d.path, sectorSize: d.sectorSize, size: async () => d.data.length,
    read: (o, l, opts) => d.read(o, l, opts), write: (o, b, opts) => d.write(o, b, opts), close: async () => undefined,
  };
  return { disk: shared, kill: () => { dead = true; } };
}

function names(): AdoptNameStore & { map: Map<string, AdoptName> } {
  const map = new Map<string, AdoptName>();
  return { map, get: (k) => map.get(k), set: (k, v) => { map.set(k, v); }, delete: (k) => { map.delete(k); } };
}

interface Inst { m: SanlockLockManager; logs: string[]; kill(): void }

function instance(disk: MemoryDisk, clock: ManualClock, hostId: number, hostName: string, adoptNames?: AdoptNameStore): Inst {
  const logs: string[] = [];
  const gl = newGlobalLockChoice();
  gl.manager = 'sanlock';
  const v = view(disk, clock);
  const m = new SanlockLockManager({
    glChoice: gl, ioTimeout: IO, defaultHostId: () => hostId, lockspaceCount: () => 0,
    debug: (l) => logs.push(l), error: (l) => logs.push('ERROR ' + l),
    sleep: (ms) => clock.sleep(ms), clock, random: new SeededRandom(hostId * 100 + hostName.length),
    openDisk: async () => v.disk, mapperDir: '/dev/mapper',
    blockSizes: () => ({ physical: 512, logical: 512 }), deviceExists: () => true, hostName,
    ...(adoptNames ? { adoptNames } : {}),
  });
  return { m, logs, kill: v.kill };
}

function lockspace(i: Inst): SanlockLockspace {
  return i.m.createLockspace({ name: 'lvm_vg1', vgName: 'vg1', vgUuid: 'u', vgArgs: '1.0.0:lvmlock', hostId: 0 }, { failed: () => undefined });
}

async function join(i: Inst, clock: ManualClock, opts: { adoptOnly?: boolean; adoptOk?: boolean; nodelay?: boolean } = {}): Promise<{ ls: SanlockLockspace; rv: number }> {
  const ls = lockspace(i);
  assert.equal((await clock.drive(ls.prepare({ repair: false }))).rv, 0, i.logs.join('\n'));
  const rv = await clock.drive(ls.join({ adoptOnly: !!opts.adoptOnly, adoptOk: !!opts.adoptOk, nodelay: !!opts.nodelay }));
  return { ls, rv };
}

const lv = (uuid: string, lvArgs: string): ResourceView => ({ name: uuid, type: 'lv', mode: 'un', lvArgs, useValueBlock: false, testRemote: null });
const VG: ResourceView = { name: 'VGLK', type: 'vg', mode: 'un', lvArgs: '', useValueBlock: true, testRemote: null };
const PLAIN = { adoptOnly: false, adoptOk: false, repair: false };
const ADOPT_ONLY = { adoptOnly: true, adoptOk: false, repair: false };
const ADOPT_OK = { adoptOnly: false, adoptOk: true, repair: false };

/** Host 1 (first instance) holds LV1 ex, LV2 sh and the VG lock ex; host 2 is in the lockspace. */
async function setup() {
  const clock = new ManualClock();
  const disk = new MemoryDisk(72 * MiB, { clock });
  const store = names();
  const a1 = instance(disk, clock, 1, 'host1-first', store);
  const b = instance(disk, clock, 2, 'host2');
  assert.equal((await a1.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' })).rv, 0);
  const j1 = await join(a1, clock);
  assert.equal(j1.rv, 0);
  assert.deepEqual(store.get('lvm_vg1'), { hostId: 1, hostName: 'host1-first' }, 'the joined lockspace records its host name');
  const jb = await join(b, clock);
  assert.equal(jb.rv, 0);
  const args: string[] = [];
  for (const u of ['LV1', 'LV2', 'LV3']) {
    const r = await a1.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: u, vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: j1.ls });
    assert.equal(r.rv, 0);
    args.push(r.lvArgs);
  }
  const [a1Args, a2Args, a3Args] = args as [string, string, string];
  assert.equal((await clock.drive(j1.ls.lock(lv('LV1', a1Args), 'ex', PLAIN))).rv, 0);
  assert.equal((await clock.drive(j1.ls.lock(lv('LV2', a2Args), 'sh', PLAIN))).rv, 0);
  assert.equal((await clock.drive(j1.ls.lock(VG, 'ex', PLAIN))).rv, 0);
  const gen = j1.ls.generation;
  a1.kill(); // kill -9: nothing is released, renewals stop
  await clock.drive(clock.sleep(5000));
  return { clock, disk, store, b, lb: jb.ls, gen, lv1: lv('LV1', a1Args), lv2: lv('LV2', a2Args), lv3: lv('LV3', a3Args) };
}

describe('sanlock manager: adoption after a daemon restart', () => {
  test('the next instance continues the delta lease, adopts LV locks in their mode, purges the rest', async () => {
    const s = await setup();
    const { clock } = s;
    const a2 = instance(s.disk, clock, 1, 'host1-second', s.store);
    const { ls, rv } = await join(a2, clock, { adoptOnly: true });
    assert.equal(rv, 0, a2.logs.join('\n'));
    assert.equal(ls.generation, s.gen, 'same generation: the old leases are still ours');
    assert.equal(s.store.get('lvm_vg1')?.hostName, 'host1-first', 'the continued delta lease keeps its name');

    // Before anything is adopted, the continued delta lease already protects the orphans.
    assert.equal((await clock.drive(s.lb.lock(s.lv1, 'sh', PLAIN))).rv, -E.AGAIN, 'no window in which the orphan is free');
    // adopt_only: the recorded mode, the other mode (-EADOPT_RETRY), nothing held (-EADOPT_NONE)
    assert.equal((await clock.drive(ls.lock(s.lv1, 'ex', ADOPT_ONLY))).rv, 0);
    assert.equal((await clock.drive(ls.lock(s.lv2, 'ex', ADOPT_ONLY))).rv, -E.ADOPT_RETRY);
    assert.equal((await clock.drive(ls.lock(s.lv2, 'sh', ADOPT_ONLY))).rv, 0);
    assert.equal((await clock.drive(ls.lock(s.lv3, 'ex', ADOPT_ONLY))).rv, -E.ADOPT_NONE);
    // a plain request meeting an orphan of ours (the VG lock, not adopted yet)
    assert.equal((await clock.drive(ls.lock(VG, 'sh', PLAIN))).rv, -E.ORPHAN);
    // the other host: refused for the adopted leases and the orphan
    assert.equal((await clock.drive(s.lb.lock(s.lv1, 'sh', PLAIN))).rv, -E.AGAIN);
    assert.equal((await clock.drive(s.lb.lock(s.lv2, 'ex', PLAIN))).rv, -E.AGAIN);
    assert.equal((await clock.drive(s.lb.lock(VG, 'sh', PLAIN))).rv, -E.AGAIN);

    assert.equal(await clock.drive(ls.purgeOrphans()), 1, a2.logs.join('\n'));
    assert.ok(a2.logs.some((l) => /R VGLK purge_orphans released orphan ex/.test(l)));
    const vg = await clock.drive(s.lb.lock(VG, 'ex', PLAIN));
    assert.equal(vg.rv, 0, 'the purged VG lock is free for the other host');
    assert.equal(await clock.drive(s.lb.unlock({ ...VG, mode: 'ex' }, 0, { freeVg: false })), 0);
    assert.equal((await clock.drive(ls.lock(VG, 'sh', PLAIN))).rv, 0, 'after the purge plain requests work again');
    assert.equal(await clock.drive(ls.unlock({ ...VG, mode: 'sh' }, 0, { freeVg: false })), 0);

    // still refused after host_dead: the lease is held and renewed, not just not yet expired
    await clock.drive(clock.sleep((HOST_DEAD + 10) * 1000));
    assert.equal((await clock.drive(s.lb.lock(s.lv1, 'ex', PLAIN))).rv, -E.AGAIN);
    assert.equal((await clock.drive(s.lb.lock(s.lv2, 'ex', PLAIN))).rv, -E.AGAIN);

    // releasing the adopted locks hands them over
    assert.equal(await clock.drive(ls.unlock({ ...s.lv1, mode: 'ex' }, 0, { freeVg: false })), 0);
    assert.equal(await clock.drive(ls.unlock({ ...s.lv2, mode: 'sh' }, 0, { freeVg: false })), 0);
    assert.equal((await clock.drive(s.lb.lock(s.lv1, 'ex', PLAIN))).rv, 0);
    assert.equal((await clock.drive(s.lb.lock(s.lv2, 'ex', PLAIN))).rv, 0);
    assert.equal(await clock.drive(ls.leave({ freeVg: false })), 0);
    assert.equal(s.store.get('lvm_vg1'), undefined, 'a left lockspace has nothing to adopt');
  });

  test('adopt_ok takes an orphan or a free lease; plain joins never continue the old lease', async () => {
    const s = await setup();
    const { clock } = s;
    const a2 = instance(s.disk, clock, 1, 'host1-second', s.store);
    const { ls, rv } = await join(a2, clock, { adoptOk: true });
    assert.equal(rv, 0);
    assert.equal(ls.generation, s.gen);
    assert.equal((await clock.drive(ls.lock(s.lv1, 'sh', ADOPT_OK))).rv, -E.ADOPT_RETRY, 'held ex');
    assert.equal((await clock.drive(ls.lock(s.lv1, 'ex', ADOPT_OK))).rv, 0);
    assert.equal((await clock.drive(ls.lock(s.lv3, 'ex', ADOPT_OK))).rv, 0, 'free: acquired');
    assert.equal((await clock.drive(s.lb.lock(s.lv3, 'sh', PLAIN))).rv, -E.AGAIN);
  });

  test('too late, or no recorded name: adopt_only fails with -EADOPT_NONE, adopt_ok joins anew and the old leases go to others', async () => {
    const s = await setup();
    const { clock } = s;
    const maxAge = HOST_DEAD - 4 * IO;
    await clock.drive(clock.sleep(maxAge * 1000));
    const late = instance(s.disk, clock, 1, 'host1-second', s.store);
    const j = await join(late, clock, { adoptOnly: true });
    assert.equal(j.rv, -E.ADOPT_NONE);
    assert.equal(late.m.glInVg.glLockspace, '', 'a lockspace not adopted claims no GL');
    assert.ok(late.logs.some((l) => /last renewed \d+ s ago, more than 64 s/.test(l)), late.logs.join('\n'));

    const none = instance(s.disk, clock, 1, 'host1-third', names());
    assert.equal((await join(none, clock, { adoptOnly: true })).rv, -E.ADOPT_NONE, 'no name recorded');

    const fresh = instance(s.disk, clock, 1, 'host1-third', s.store);
    const j2 = await join(fresh, clock, { adoptOk: true });
    assert.equal(j2.rv, 0, fresh.logs.join('\n'));
    assert.equal(j2.ls.generation, s.gen + 1, 'a new generation');
    assert.equal(s.store.get('lvm_vg1')?.hostName, 'host1-third');
    assert.equal((await clock.drive(j2.ls.lock(s.lv1, 'ex', ADOPT_ONLY))).rv, -E.ADOPT_NONE, 'leases of an older generation are not orphans');
    assert.equal((await clock.drive(s.lb.lock(s.lv1, 'ex', PLAIN))).rv, 0, 'the old generation\'s lease is free for others');
    assert.equal((await clock.drive(s.lb.lock(s.lv2, 'ex', PLAIN))).rv, 0, 'and its sh lease too');
  });

  test('a plain join with a new host name waits for the previous instance to be dead', async () => {
    const s = await setup();
    const { clock } = s;
    const a2 = instance(s.disk, clock, 1, 'host1-second', s.store);
    const t0 = clock.monotonicSeconds();
    const { ls, rv } = await join(a2, clock);
    assert.equal(rv, 0);
    assert.ok(clock.monotonicSeconds() - t0 >= HOST_DEAD, 'waited host_dead');
    assert.equal(ls.generation, s.gen + 1);
  });
});

describe('sanlock manager: nodelay', () => {
  test('join with nodelay on a free host_id skips the 2 * io_timeout wait; after an unclean stop it still waits host_dead', async () => {
    const clock = new ManualClock();
    const disk = new MemoryDisk(72 * MiB, { clock });
    const a = instance(disk, clock, 1, 'a');
    assert.equal((await a.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' })).rv, 0);
    const timeJoin = async (i: Inst, nodelay: boolean): Promise<{ s: number; ls: SanlockLockspace }> => {
      const ls = lockspace(i);
      assert.equal((await clock.drive(ls.prepare({ repair: false }))).rv, 0);
      const t0 = clock.nowMs();
      assert.equal(await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay })), 0, i.logs.join('\n'));
      return { s: (clock.nowMs() - t0) / 1000, ls };
    };
    const first = await timeJoin(a, true);
    assert.equal(first.s, 0);
    assert.ok(a.logs.some((l) => /add_lockspace_san host_id 1 io_timeout 1 nodelay/.test(l)));
    assert.equal(await clock.drive(first.ls.leave({ freeVg: false })), 0);
    const b = instance(disk, clock, 1, 'b');
    assert.equal((await timeJoin(b, false)).s, 2 * IO, 'without nodelay');
    b.kill(); // 'b' dies without leaving: its lease stays held; a new instance with nodelay must still wait
    assert.ok((await timeJoin(instance(disk, clock, 1, 'c'), true)).s >= HOST_DEAD);
  });
});

describe('delta lease: nodelay', () => {
  async function timeToAcquire(prep: (disk: MemoryDisk, clock: ManualClock) => Promise<void>, nodelay: boolean): Promise<number> {
    const clock = new ManualClock();
    const disk = new MemoryDisk(MiB, { clock });
    await L.initLockspace(disk, 0, 'ls', { sectorSize: 512, ioTimeout: IO });
    await prep(disk, clock);
    const ls = new L.Lockspace({ disk, offset: 0, name: 'ls', hostId: 1, clock, random: new SeededRandom(1), hostName: 'me', ioTimeout: IO });
    const t0 = clock.nowMs();
    await clock.drive(ls.acquire({ nodelay }));
    assert.equal(ls.state, 'held');
    return (clock.nowMs() - t0) / 1000;
  }

  test('a free host_id lease is taken without the 2 * io_timeout wait; a held one still waits host_dead', async () => {
    const none = async () => undefined;
    assert.equal(await timeToAcquire(none, false), 2 * IO);
    assert.equal(await timeToAcquire(none, true), 0);
    const releasedBefore = async (disk: MemoryDisk, clock: ManualClock) => {
      const other = new L.Lockspace({ disk, offset: 0, name: 'ls', hostId: 1, clock, random: new SeededRandom(2), hostName: 'before', ioTimeout: IO });
      await clock.drive(other.acquire());
      await clock.drive(other.release());
    };
    assert.equal(await timeToAcquire(releasedBefore, true), 0, 'cleanly released: free');
    const heldBefore = async (disk: MemoryDisk, clock: ManualClock) => {
      const other = new L.Lockspace({ disk, offset: 0, name: 'ls', hostId: 1, clock, random: new SeededRandom(2), hostName: 'before', ioTimeout: IO });
      await clock.drive(other.acquire()); // never renewed nor released
    };
    assert.ok(await timeToAcquire(heldBefore, true) >= HOST_DEAD, 'held by another instance: nodelay does not skip the host_dead wait');
  });
});
