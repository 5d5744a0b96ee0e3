// The sanlock lock manager on in-memory disks with a manual clock: the
// lvmlock layout against sanlock's golden images, the lvmlockd rules
// (sizes, args, GL naming, free slots, -EMSGSIZE), and two hosts locking.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ManualClock } from '../../src/io/clock';
import { MemoryDisk } from '../../src/io/memory-disk';
import { DiskError, type Disk } from '../../src/io/disk';
import { SeededRandom } from '../../src/leases/random';
import { decodeLeader } from '../../src/leases/ondisk';
import * as L from '../../src/leases';
import { E, AF } from '../../src/core/constants';
import { newGlobalLockChoice } from '../../src/core/lockd';
import type { ResourceView } from '../../src/lm/types';
import type { MutableGlobalLockChoice } from '../../src/core/lockd';
import {
  SanlockLockManager, type SanlockLockspace, lvOffsetFromArgs, mapAcquireError, sizesForDevice,
} from '../../src/lm/sanlock/sanlock-lm';
import { repoRoot } from '../harness/cluster';

const MiB = 1 << 20;
const GOLDEN = path.join(repoRoot(), 'test', 'fixtures', 'sanlock-golden');

/** Blocks of a golden sectors.xxd: offset → bytes. */
function goldenBlocks(caseName: string): Map<number, Buffer> {
  const text = fs.readFileSync(path.join(GOLDEN, caseName, 'sectors.xxd'), 'utf8');
  const out = new Map<number, Buffer>();
  let cur: { off: number; buf: Buffer } | null = null;
  let last: { addr: number; bytes: Buffer } | null = null;
  let repeat = false;
  for (const line of text.split('\n')) {
    const h = /^## offset=(\d+) size=(\d+)/.exec(line);
    if (h) {
      cur = { off: Number(h[1]), buf: Buffer.alloc(Number(h[2])) };
      out.set(cur.off, cur.buf);
      last = null;
      continue;
    }
    if (!cur) continue;
    if (line === '*') { repeat = true; continue; }
    const m = /^([0-9a-f]{8}): ((?:[0-9a-f]{4} ?){1,8})/.exec(line);
    if (!m) continue;
    const addr = parseInt(m[1]!, 16) - cur.off;
    const bytes = Buffer.from(m[2]!.replace(/ /g, ''), 'hex');
    if (repeat && last) for (let a = last.addr + 16; a < addr; a += 16) last.bytes.copy(cur.buf, a);
    repeat = false;
    bytes.copy(cur.buf, addr);
    last = { addr, bytes };
  }
  return out;
}

/**
 * A disk whose close() does nothing, so several managers can share one medium.
 * With `deviceSize`, each open sees the device size of that moment (a real
 * handle caches it) and I/O past it fails, as on a block device.
 */
function shared(disk: MemoryDisk, deviceSize?: () => number): Disk {
  const size = deviceSize ? deviceSize() : disk.data.length;
  const check = (o: number, l: number) => {
    if (o + l > size) throw new DiskError('ERANGE', `${o}+${l} past the end (${size})`);
  };
  return {
    path: disk.path, sectorSize: disk.sectorSize,
    size: async () => size,
    read: async (o, l, opts) => { check(o, l); return disk.read(o, l, opts); },
    write: async (o, d, opts) => { check(o, d.length); return disk.write(o, d, opts); },
    close: async () => undefined,
  };
}

interface Host { m: SanlockLockManager; gl: MutableGlobalLockChoice; failures: string[]; logs: string[] }

function host(disk: MemoryDisk, clock: ManualClock, n: number, opts: { lockspaces?: () => number; block?: [number, number]; io?: number; deviceSize?: () => number } = {}): Host {
  const gl = newGlobalLockChoice();
  gl.manager = 'sanlock';
  const logs: string[] = [];
  const m = new SanlockLockManager({
    glChoice: gl, ioTimeout: opts.io ?? 1, defaultHostId: () => n, lockspaceCount: opts.lockspaces ?? (() => 0),
    debug: (l) => logs.push(l), error: (l) => logs.push('ERROR ' + l),
    sleep: (ms) => clock.sleep(ms), clock, random: new SeededRandom(n),
    openDisk: async () => shared(disk, opts.deviceSize), mapperDir: '/dev/mapper',
    blockSizes: () => ({ physical: opts.block?.[0] ?? disk.sectorSize, logical: opts.block?.[1] ?? disk.sectorSize }),
    deviceExists: () => true, hostName: `host${n}`,
  });
  return { m, gl, failures: [], logs };
}

function lv(uuid: string, lvArgs: string, mode: 'un' | 'sh' | 'ex' = 'un'): ResourceView {
  return { name: uuid, type: 'lv', mode, lvArgs, useValueBlock: false, testRemote: null };
}
const VG: ResourceView = { name: 'VGLK', type: 'vg', mode: 'un', lvArgs: '', useValueBlock: true, testRemote: null };
const NOOPT = { adoptOnly: false, adoptOk: false, repair: false };

async function start(h: Host, clock: ManualClock, vg: string, hostId = 0): Promise<SanlockLockspace> {
  const ls = h.m.createLockspace(
    { name: `lvm_${vg}`, vgName: vg, vgUuid: 'u', vgArgs: '1.0.0:lvmlock', hostId },
    { failed: (r) => h.failures.push(r) },
  );
  const p = await clock.drive(ls.prepare({ repair: false }));
  assert.equal(p.rv, 0, h.logs.join('\n'));
  assert.equal(await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay: false })), 0, h.logs.join('\n'));
  return ls;
}

describe('sanlock manager: helpers', () => {
  test('sector/align choice from device block sizes (get_sizes_device)', () => {
    const w: string[] = [];
    const warn = (s: string) => w.push(s);
    assert.deepEqual(sizesForDevice(512, 512, warn), { sectorSize: 512, alignSize: MiB });
    assert.deepEqual(sizesForDevice(4096, 4096, warn), { sectorSize: 4096, alignSize: 8 * MiB });
    assert.deepEqual(sizesForDevice(4096, 512, warn), { sectorSize: 4096, alignSize: 8 * MiB });
    assert.deepEqual(sizesForDevice(512, 4096, warn), { sectorSize: 4096, alignSize: 8 * MiB });
    assert.deepEqual(sizesForDevice(0, 512, warn), { sectorSize: 512, alignSize: MiB });
    assert.deepEqual(sizesForDevice(1024, 512, warn), { sectorSize: 512, alignSize: MiB });
    assert.equal(sizesForDevice(0, 0, warn), null);
    assert.ok(w.length >= 2);
  });

  test('lv_args offsets', () => {
    assert.equal(lvOffsetFromArgs('1.0.0:70254592'), 70254592);
    assert.equal(lvOffsetFromArgs('1.2.0:x:70254592'), 70254592);
    assert.equal(lvOffsetFromArgs('2.0.0:70254592'), null);
    assert.equal(lvOffsetFromArgs('1.0.0:'), null);
    assert.equal(lvOffsetFromArgs('garbage'), null);
  });

  test('lease errors map to what lvmlockd 2.03.16 returns, but I/O errors give the -ELOCKIO its code computes and drops', () => {
    const err = (rv: number) => new L.LeaseError(rv, 'x');
    assert.deepEqual(mapAcquireError(err(L.SANLK.ACQUIRE_IDLIVE), 'ex'), { rv: -E.AGAIN, retry: false });
    assert.deepEqual(mapAcquireError(err(L.SANLK.ACQUIRE_IDLIVE), 'sh'), { rv: -E.AGAIN, retry: true });
    assert.deepEqual(mapAcquireError(err(L.SANLK.ACQUIRE_OWNED_RETRY), 'sh'), { rv: -E.AGAIN, retry: false });
    assert.deepEqual(mapAcquireError(err(L.SANLK.EAGAIN), 'ex'), { rv: -E.AGAIN, retry: false });
    assert.deepEqual(mapAcquireError(err(L.SANLK.AIO_TIMEOUT), 'ex'), { rv: -E.AGAIN, retry: false });
    assert.deepEqual(mapAcquireError(err(L.SANLK.DBLOCK_MBAL), 'ex'), { rv: -E.AGAIN, retry: false });
    for (const rv of [L.SANLK.LEADER_READ, L.SANLK.LEADER_WRITE, L.SANLK.DBLOCK_READ, L.SANLK.DBLOCK_WRITE, L.SANLK.EIO]) {
      assert.deepEqual(mapAcquireError(err(rv), 'ex'), { rv: -E.LOCKIO, retry: false });
    }
    assert.deepEqual(mapAcquireError(err(L.SANLK.LEADER_CHECKSUM), 'ex'), { rv: -E.LMERR, retry: false });
    assert.deepEqual(mapAcquireError(new Error('x'), 'ex'), { rv: -E.LMERR, retry: false });
  });
});

describe('sanlock manager: lvmlock layout', () => {
  test('init_vg, init_lv and free_lv write what sanlock writes (golden lvmlock512_layout)', async () => {
    const clock = new ManualClock();
    const disk = new MemoryDisk(72 * MiB, { clock });
    const h = host(disk, clock, 1, { io: 0 }); // io_timeout 0 = sanlock's default 10, as in the golden image
    const out = await h.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' });
    assert.deepEqual(out, { rv: 0, vgArgs: '1.0.0:lvmlock' });
    assert.equal(h.m.glInVg.glLockspace, 'lvm_vg1', 'first sanlock VG gets the enabled GL');
    const g = goldenBlocks('lvmlock512_layout');
    for (const off of [0, 512, 65 * MiB, 66 * MiB, 67 * MiB]) {
      const want = g.get(off)!;
      assert.ok(want, `golden block ${off}`);
      assert.ok(disk.data.subarray(off, off + want.length).equals(want), `bytes at ${off}`);
    }
    // every LV slot up to the end of the device is "#unused"
    for (const off of [68 * MiB, 71 * MiB]) assert.ok(disk.data.subarray(off, off + 512).equals(g.get(67 * MiB)!));

    const uuid = '7xoDtu-yvNM-iwQx-C94t-BbYs-UzBl-o8hAIa';
    const lvOut = await h.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: uuid, vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: null });
    assert.deepEqual(lvOut, { rv: 0, lvArgs: `1.0.0:${67 * MiB}` });
    const lvLease = g.get(68 * MiB)!; // the golden image holds the LV lease one slot later
    assert.ok(disk.data.subarray(67 * MiB, 67 * MiB + lvLease.length).equals(lvLease));
    const dup = await h.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: uuid, vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: null });
    assert.equal(dup.rv, -E.EXIST);

    const ls = await start(h, clock, 'vg1', 1);
    // A lease this host holds is never freed, whatever LV the request names (a stray free_lv).
    assert.equal((await clock.drive(ls.lock(lv(uuid, `1.0.0:${67 * MiB}`), 'ex', NOOPT))).rv, 0);
    const heldBytes = Buffer.from(disk.data.subarray(67 * MiB, 67 * MiB + MiB));
    assert.equal(await ls.freeLv(lv(uuid, `1.0.0:${67 * MiB}`)), -E.BUSY);
    assert.equal(await ls.freeLv(lv('other-lv-uuid', `1.0.0:${67 * MiB}`)), -E.BUSY);
    assert.ok(disk.data.subarray(67 * MiB, 67 * MiB + MiB).equals(heldBytes), 'held lease untouched');
    assert.equal(await clock.drive(ls.unlock(lv(uuid, `1.0.0:${67 * MiB}`, 'ex'), 0, { freeVg: false })), 0);
    assert.equal(await ls.freeLv(lv(uuid, `1.0.0:${67 * MiB}`)), 0);
    assert.ok(disk.data.subarray(67 * MiB, 67 * MiB + 512).equals(g.get(67 * MiB)!), 'freed slot is #unused again');
    await clock.drive(ls.leave({ freeVg: false }));
  });

  test('4K sectors: 8 MiB align (golden lvmlock4k8m_layout); a second VG gets the GL disabled', async () => {
    const clock = new ManualClock();
    const disk = new MemoryDisk(600 * MiB, { clock, sectorSize: 4096 });
    const h = host(disk, clock, 1, { lockspaces: () => 1, io: 0 });
    const out = await h.m.initVg({ lsName: 'lvm_vg4k', vgName: 'vg4k', flags: AF.ENABLE, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' });
    assert.equal(out.rv, 0);
    const g = goldenBlocks('lvmlock4k8m_layout');
    for (const off of [0, 65 * 8 * MiB, 66 * 8 * MiB]) {
      const want = g.get(off)!;
      assert.ok(want, `golden block ${off}`);
      assert.ok(disk.data.subarray(off, off + want.length).equals(want), `bytes at ${off}`);
    }
    const disk2 = new MemoryDisk(600 * MiB, { clock, sectorSize: 4096 });
    const h2 = host(disk2, clock, 1, { lockspaces: () => 1 });
    h2.m.glInVg.glLockspace = 'lvm_vg4k';
    assert.equal((await h2.m.initVg({ lsName: 'lvm_vg2', vgName: 'vg2', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' })).rv, 0);
    const gl = decodeLeader(disk2.data, 65 * 8 * MiB);
    assert.equal(L.nameString(gl.resourceName), '_GLLK_disabled');
  });

  test('full lvmlock: find_free_lock and init_lv answer -EMSGSIZE (the command extends lvmlock)', async () => {
    const clock = new ManualClock();
    const disk = new MemoryDisk(72 * MiB, { clock });
    let deviceSize = 70 * MiB;
    const h = host(disk, clock, 1, { deviceSize: () => deviceSize });
    assert.equal((await h.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' })).rv, 0);
    const ls = await start(h, clock, 'vg1');
    const args: string[] = [];
    for (let i = 0; i < 3; i++) {
      assert.equal(await ls.findFreeLock(8n * BigInt(MiB)), 0);
      const r = await h.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: `lv${i}`, vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: ls });
      assert.equal(r.rv, 0);
      args.push(r.lvArgs);
    }
    assert.deepEqual(args, [67, 68, 69].map((s) => `1.0.0:${s * MiB}`));
    assert.equal(await ls.findFreeLock(8n * BigInt(MiB)), -E.MSGSIZE);
    const full = await h.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: 'lv3', vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: ls });
    assert.equal(full.rv, -E.MSGSIZE);
    // a lease beyond the end of the device: the command refreshes lvmlock and retries
    const beyond = await clock.drive(ls.lock(lv('lvX', `1.0.0:${70 * MiB}`), 'ex', NOOPT));
    assert.equal(beyond.rv, -E.MSGSIZE);
    await ls.freeLv(lv('lv1', args[1]!));
    assert.equal(await ls.findFreeLock(8n * BigInt(MiB)), 0);
    const again = await h.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: 'lv4', vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: ls });
    assert.equal(again.lvArgs, `1.0.0:${68 * MiB}`);
    // lvm extends lvmlock (the device grows under the open lockspace): the new, never
    // initialized space is found free, and its leases are reachable from this and other hosts
    assert.equal(await ls.findFreeLock(8n * BigInt(MiB)), -E.MSGSIZE);
    deviceSize = 72 * MiB;
    assert.equal(await ls.findFreeLock(8n * BigInt(MiB)), 0);
    const grown = await h.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: 'lv5', vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: ls });
    assert.equal(grown.lvArgs, `1.0.0:${70 * MiB}`);
    assert.equal((await clock.drive(ls.lock(lv('lv5', grown.lvArgs), 'ex', NOOPT))).rv, 0);
    assert.equal(await clock.drive(ls.unlock(lv('lv5', grown.lvArgs, 'ex'), 0, { freeVg: false })), 0);
    await clock.drive(ls.leave({ freeVg: false }));
  });
});

describe('sanlock manager: two hosts', () => {
  test('ex/sh exclusion with owner info, convert, other hosts, GL enable/disable, vgremove wipe', async () => {
    const clock = new ManualClock();
    const disk = new MemoryDisk(72 * MiB, { clock });
    const a = host(disk, clock, 1);
    const b = host(disk, clock, 2);
    assert.equal((await a.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' })).rv, 0);
    const la = await start(a, clock, 'vg1');
    const lb = await start(b, clock, 'vg1');
    assert.equal(la.hostId, 1);
    assert.equal(lb.hostId, 2);
    assert.equal(la.generation, 1);
    assert.ok(lb.glEnabled && b.m.glInVg.glLockspace === 'lvm_vg1');
    await clock.drive(clock.sleep(5000)); // both renew and see each other
    const { lvArgs } = await a.m.initLv({ lsName: 'lvm_vg1', vgName: 'vg1', lvUuid: 'LV1', vgArgs: '1.0.0:lvmlock', prevArgs: '', lockspace: la });

    const vg = await clock.drive(la.lock(VG, 'ex', NOOPT));
    assert.deepEqual(vg, { rv: 0, vb: { version: 0, flags: 0, rVersion: 0 } }, 'LVB off: versions read as zero');
    assert.equal(await clock.drive(la.unlock({ ...VG, mode: 'ex' }, 5, { freeVg: false })), 0);

    assert.equal((await clock.drive(la.lock(lv('LV1', lvArgs), 'ex', NOOPT))).rv, 0);
    const busy = await clock.drive(lb.lock(lv('LV1', lvArgs), 'ex', NOOPT));
    assert.equal(busy.rv, -E.AGAIN);
    assert.equal(busy.owner?.hostId, 1);
    assert.equal(busy.owner?.generation, 1);
    assert.equal(busy.owner?.state, 'LIVE');
    assert.equal(busy.owner?.name, 'host1');
    assert.equal((await clock.drive(lb.lock(lv('LV1', lvArgs), 'sh', NOOPT))).rv, -E.AGAIN);
    assert.equal(await clock.drive(la.unlock(lv('LV1', lvArgs, 'ex'), 0, { freeVg: false })), 0);

    assert.equal((await clock.drive(lb.lock(lv('LV1', lvArgs), 'sh', NOOPT))).rv, 0);
    assert.equal((await clock.drive(la.lock(lv('LV1', lvArgs), 'sh', NOOPT))).rv, 0);
    assert.equal(await clock.drive(la.convert(lv('LV1', lvArgs, 'sh'), 'ex', 0)), -E.AGAIN, 'sh held elsewhere');
    assert.equal(await clock.drive(lb.unlock(lv('LV1', lvArgs, 'sh'), 0, { freeVg: false })), 0);
    assert.equal(await clock.drive(la.convert(lv('LV1', lvArgs, 'sh'), 'ex', 0)), 0);
    assert.equal((await clock.drive(lb.lock(lv('LV1', lvArgs), 'sh', NOOPT))).rv, -E.AGAIN);
    assert.equal(await clock.drive(la.unlock(lv('LV1', lvArgs, 'ex'), 0, { freeVg: false })), 0);

    // GL disabled by host a: host b's GL lock finds it renamed (-EUNATCH)
    assert.equal(await la.setGlEnabled(false), 0);
    const gl: ResourceView = { name: 'GLLK', type: 'gl', mode: 'un', lvArgs: '', useValueBlock: true, testRemote: null };
    assert.equal((await clock.drive(lb.lock(gl, 'sh', NOOPT))).rv, -E.UNATCH);
    assert.equal(b.m.glInVg.glLockspace, '');
    assert.equal(await lb.refreshGlEnabled(), false);
    assert.equal(await lb.setGlEnabled(true), 0);
    assert.equal(await la.refreshGlEnabled(), true);
    assert.equal((await clock.drive(la.lock(gl, 'ex', NOOPT))).rv, 0);
    assert.equal(await clock.drive(la.unlock({ ...gl, mode: 'ex' }, 1, { freeVg: false })), 0);
    assert.equal(await clock.drive(lb.exDisableGl()), 0);
    assert.equal(await la.refreshGlEnabled(), false);

    // vgremove rules: other host in the lockspace, then gone
    assert.equal((await clock.drive(la.otherHosts(true))).rv, 1);
    assert.equal(await clock.drive(lb.leave({ freeVg: false })), 0);
    assert.equal((await clock.drive(la.otherHosts(true))).rv, 0);
    assert.equal((await clock.drive(la.lock(VG, 'ex', NOOPT))).rv, 0);
    assert.equal(await clock.drive(la.unlock({ ...VG, mode: 'ex' }, 0, { freeVg: true })), 0);
    assert.equal(await clock.drive(la.leave({ freeVg: true })), 0);
    assert.equal(L.nameString(decodeLeader(disk.data, 66 * MiB).resourceName), 'invalid_removed');
    const ls0 = decodeLeader(disk.data, 0);
    assert.equal(L.nameString(ls0.spaceName), '#unused', 'delta leases wiped');
    assert.deepEqual(a.failures, []);
  });

  test('host_id 0 or > 2000 is refused with -EHOSTID; a lost delta lease reports failure', async () => {
    const clock = new ManualClock();
    const disk = new MemoryDisk(72 * MiB, { clock });
    let failWrites = false;
    const faulty = new MemoryDisk(0, { clock, backing: disk.data, fault: (req) => (failWrites && req.op === 'write' ? { kind: 'eio' } : undefined) });
    const a = host(faulty, clock, 0);
    assert.equal((await a.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' })).rv, 0);
    const mk = (hostId: number) => a.m.createLockspace({ name: 'lvm_vg1', vgName: 'vg1', vgUuid: 'u', vgArgs: '1.0.0:lvmlock', hostId }, { failed: (r) => a.failures.push(r) });
    assert.equal((await clock.drive(mk(0).prepare({ repair: false }))).rv, -E.HOSTID);
    assert.equal((await clock.drive(mk(2001).prepare({ repair: false }))).rv, -E.HOSTID);
    const bad = a.m.createLockspace({ name: 'lvm_vg1', vgName: 'vg1', vgUuid: 'u', vgArgs: '2.0.0:lvmlock', hostId: 1 }, { failed: () => undefined });
    assert.equal((await clock.drive(bad.prepare({ repair: false }))).rv, -E.ARGS);

    const ls = await start(a, clock, 'vg1', 7);
    failWrites = true;
    await clock.drive(clock.sleep(20_000));
    assert.equal(a.failures.length, 1, a.logs.join('\n'));
    assert.match(a.failures[0]!, /host_id 7/);
    const after = await clock.drive(ls.lock(VG, 'sh', NOOPT));
    assert.equal(after.rv, -E.LOCKIO);
    failWrites = false;
    await clock.drive(ls.leave({ freeVg: false }));
  });
});
