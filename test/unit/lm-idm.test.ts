// lvmlockd's IDM side without the core: lock ids, the LVB timestamp with its
// +1 rule, the global-lock drive scan, and the per-lockspace session
// (lm_*_idm) over a fake ILM whose drives keep one LVB per lock (what the
// emulated firmware does), with two sessions standing for two hosts.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { idmLockId } from '../../src/lm/idm/lock-id';
import { nextTimestamp, encodeTimestamp, decodeTimestamp } from '../../src/lm/idm/lvb-timestamp';
import { scsiPropellerDrives, extraGlDrives, type SysfsReader } from '../../src/lm/idm/gl-drives';
import { IdmSession, IDM_TIMEOUT_MS, type IlmConnection } from '../../src/lm/idm/idm-session';

const VG_UUID = 'aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg';
const LV_UUID = '111111-2222-3333-4444-5555-6666-777777';
const E = { IO: 5, INVAL: 22, MANAGER: 214, LOCKIO: 218, LMERR: 221 };

describe('IDM lock ids', () => {
  test('gl all zeros; vg = VG UUID without dashes + 32 zeros; lv = both halves', () => {
    assert.deepEqual(idmLockId('gl', VG_UUID, ''), Buffer.alloc(64));
    const vg = idmLockId('vg', VG_UUID, '')!;
    assert.equal(vg.subarray(0, 32).toString('ascii'), 'aaaaaabbbbccccddddeeeeffffgggggg');
    assert.deepEqual(vg.subarray(32), Buffer.alloc(32));
    const lv = idmLockId('lv', VG_UUID, LV_UUID)!;
    assert.equal(lv.toString('ascii'), 'aaaaaabbbbccccddddeeeeffffgggggg11111122223333444455556666777777');
    assert.equal(idmLockId('vg', 'short-uuid', ''), null);
    assert.equal(idmLockId('lv', VG_UUID, 'x'), null);
  });
});

describe('IDM LVB timestamp', () => {
  test('now when ahead of the stored value; stored + 1 when the clock is behind or equal', () => {
    assert.equal(nextTimestamp(0n, 1000n), 1000n);
    assert.equal(nextTimestamp(999n, 1000n), 1000n);
    assert.equal(nextTimestamp(1000n, 1000n), 1001n);
    assert.equal(nextTimestamp(5000n, 1000n), 5001n);
  });
  test('after a broken lock: the clock after propeller\'s all ones (not a wrap to 0), the drives\' value under our ILM\'s marker (finding 19)', () => {
    assert.equal(nextTimestamp(0xffff_ffff_ffff_ffffn, 1_764_547_200_000_000n), 1_764_547_200_000_000n);
    // Our ILM's answer: the marker byte over the drives' largest value, which the next write goes above.
    assert.equal(nextTimestamp((0xffn << 56n) | 1_764_547_200_000_000n, 1_764_547_100_000_000n), 1_764_547_200_000_001n);
    assert.equal(nextTimestamp((0xffn << 56n) | 5n, 1_764_547_100_000_000n), 1_764_547_100_000_000n);
  });

  test('8 bytes little-endian', () => {
    assert.equal(encodeTimestamp(0x0102030405060708n).toString('hex'), '0807060504030201');
    assert.equal(decodeTimestamp(encodeTimestamp(123456789n)), 123456789n);
  });
});

describe('IDM global-lock drives', () => {
  const tree: Record<string, string[]> = {
    '/sys/bus/scsi/devices': ['0:0:0:0', '1:0:0:0', '2:0:0:0', 'host0', 'target0:0:0'],
    '/sys/bus/scsi/devices/0:0:0:0/block': ['sda'],
    '/sys/bus/scsi/devices/1:0:0:0/block': ['sdb'],
    '/sys/bus/scsi/devices/2:0:0:0/block': ['sdc'],
    '/sys/class/block/sda': ['sda1', 'queue'],
    '/sys/class/block/sdb': ['sdb1', 'sdb2'],
    '/sys/class/block/sdc': [],
  };
  const files: Record<string, string> = {
    '/sys/class/block/sda/sda1/uevent': 'MAJOR=8\nPARTN=1\nPARTNAME=boot\n',
    '/sys/class/block/sdb/sdb1/uevent': 'PARTN=1\n',
    '/sys/class/block/sdb/sdb2/uevent': 'PARTN=2\nPARTNAME=propeller\n',
  };
  const sys: SysfsReader = { listDir: (p) => tree[p] ?? null, readFile: (p) => files[p] ?? null };
  test('SCSI disks with a partition named propeller, as whole-disk nodes', () => {
    assert.deepEqual(scsiPropellerDrives(sys), ['/dev/sdb']);
    assert.equal(scsiPropellerDrives({ listDir: () => null, readFile: () => null }), null);
  });
  test('LVMLOCKD_IDM_GL_DRIVES adds paths', () => {
    assert.deepEqual(extraGlDrives(' /dev/loop1,/dev/loop2  /dev/loop3'), ['/dev/loop1', '/dev/loop2', '/dev/loop3']);
    assert.deepEqual(extraGlDrives(undefined), []);
  });
});

/** An ILM whose drives keep one LVB per lock (shared by every host), and the ex/sh rules. */
class FakeDrives {
  lvb = new Map<string, Buffer>();
  holders = new Map<string, Map<string, number>>();
  calls: string[] = [];
}

class FakeIlm implements IlmConnection {
  alive = true;
  killPath = '';
  cached = new Map<string, Buffer>();
  constructor(readonly drives: FakeDrives, readonly host: string) {}
  async disconnect() { this.alive = false; return 0; }
  close() { this.alive = false; }
  async setKillPath(p: string, a: string) { this.killPath = `${p} ${a}`; return 0; }
  async lock(id: Buffer, mode: number, drives: string[], timeoutMs: number) {
    this.drives.calls.push(`${this.host} lock ${mode} ${drives.join(',')} ${timeoutMs}`);
    const k = id.toString('hex');
    const h = this.drives.holders.get(k) ?? new Map<string, number>();
    for (const [other, m] of h) if (other !== this.host && (m === 1 || mode === 1)) return -1;
    h.set(this.host, mode);
    this.drives.holders.set(k, h);
    return 0;
  }
  async unlock(id: Buffer) {
    const k = id.toString('hex');
    const mine = this.cached.get(k);
    if (mine) { const v = Buffer.from(mine); v[7] = 0; this.drives.lvb.set(k, v); }
    this.drives.holders.get(k)?.delete(this.host);
    return 0;
  }
  async convert(id: Buffer, mode: number) { this.drives.holders.get(id.toString('hex'))?.set(this.host, mode); return 0; }
  async writeLvb(id: Buffer, lvb: Buffer) { this.cached.set(id.toString('hex'), Buffer.from(lvb)); return 0; }
  async readLvb(id: Buffer) { return { rv: 0, lvb: this.drives.lvb.get(id.toString('hex')) ?? Buffer.alloc(8) }; }
  async hostCount(id: Buffer) {
    const h = this.drives.holders.get(id.toString('hex'));
    return { rv: 0, count: h ? [...h.keys()].filter((x) => x !== this.host).length : 0, self: h?.has(this.host) ? 1 : 0 };
  }
}

function session(drives: FakeDrives, host: string, clock: { us: bigint }, lsName = 'lvm_vg1') {
  const ilm = new FakeIlm(drives, host);
  const s = new IdmSession({
    lsName, vgName: lsName === 'lvm_global' ? '' : 'vg1', vgUuid: VG_UUID,
    connect: async () => ({ rv: 0, client: ilm }), killPath: '/usr/sbin/lvmlockctl',
    utcUs: () => clock.us, glDrives: () => ['/dev/sdb'], debug: () => {}, error: () => {},
  });
  s.vgDrives = ['/dev/loop1', '/dev/loop2', '/dev/loop3'];
  return { s, ilm };
}

const VG = (mode: 'un' | 'sh' | 'ex') => ({ name: 'VGLK', type: 'vg' as const, mode });

describe('IDM session (lm_*_idm)', () => {
  test('start hands the ILM "lvmlockctl --kill <vg>"; the gl lockspace passes an empty vg name', async () => {
    const d = new FakeDrives();
    const a = session(d, 'A', { us: 1n });
    assert.equal(await a.s.start(), 0);
    assert.equal(a.ilm.killPath, '/usr/sbin/lvmlockctl --kill vg1');
    const g = session(d, 'A', { us: 1n }, 'lvm_global');
    assert.equal(await g.s.start(), 0);
    assert.equal(g.ilm.killPath, '/usr/sbin/lvmlockctl --kill ');
  });

  test('start fails -EMANAGER without an ILM, -EIO without gl drives', async () => {
    const s = new IdmSession({
      lsName: 'lvm_vg1', vgName: 'vg1', vgUuid: VG_UUID, connect: async () => ({ rv: -111 }), killPath: 'x',
      utcUs: () => 0n, glDrives: () => null, debug: () => {}, error: () => {},
    });
    assert.equal(await s.start(), -E.MANAGER);
    const g = new IdmSession({
      lsName: 'lvm_global', vgName: '', vgUuid: '', connect: async () => ({ rv: 0 }), killPath: 'x',
      utcUs: () => 0n, glDrives: () => null, debug: () => {}, error: () => {},
    });
    assert.equal(await g.start(), -E.IO);
  });

  test('vg lock uses the VG PVs with a 60 s timeout; lv lock the request\'s paths; refusal -> -ELOCKIO', async () => {
    const d = new FakeDrives();
    const a = session(d, 'A', { us: 1n });
    const b = session(d, 'B', { us: 1n });
    await a.s.start(); await b.s.start();
    assert.equal((await a.s.lock(VG('un'), 'ex', '', [])).rv, 0);
    assert.equal(d.calls[0], `A lock 1 /dev/loop1,/dev/loop2,/dev/loop3 ${IDM_TIMEOUT_MS}`);
    assert.equal((await b.s.lock(VG('un'), 'sh', '', [])).rv, -E.LOCKIO);
    const lv = { name: LV_UUID, type: 'lv' as const, mode: 'un' as const };
    assert.deepEqual(await a.s.lock(lv, 'sh', LV_UUID, ['/dev/loop2']), { rv: 0 });
    assert.equal(d.calls.at(-1), `A lock 2 /dev/loop2 ${IDM_TIMEOUT_MS}`);
    assert.equal(await b.s.hosts(), 1, 'A holds the VG lock B asked for');
    assert.equal(await a.s.hosts(), 0);
    assert.equal((await b.s.lock(lv, 'sh', LV_UUID, ['/dev/loop2'])).rv, 0);
    assert.equal(await a.s.hosts(), 1, 'B shares the LV');
  });

  test('a metadata change on one host invalidates the other host\'s cached value block; the writer keeps its own', async () => {
    const d = new FakeDrives();
    const clockA = { us: 1_000_000n };
    const a = session(d, 'A', clockA);
    const b = session(d, 'B', { us: 1_000_000n });
    await a.s.start(); await b.s.start();
    // B's first lock: nothing cached yet.
    assert.deepEqual((await b.s.lock(VG('un'), 'sh', '', [])).vb, { version: 0, flags: 0, rVersion: 0 });
    assert.equal(await b.s.unlock(VG('sh'), 0), 0);
    // A changes the VG (seqno 7) and releases ex.
    await a.s.lock(VG('un'), 'ex', '', []);
    assert.equal(await a.s.unlock(VG('ex'), 7), 0);
    // A sees its own timestamp: trusts its cached val_blk.
    assert.deepEqual((await a.s.lock(VG('un'), 'sh', '', [])).vb, { version: 0x0101, flags: 0, rVersion: 7 });
    await a.s.unlock(VG('sh'), 0);
    // B sees a timestamp it did not cache: version 0 -> the core invalidates.
    assert.deepEqual((await b.s.lock(VG('un'), 'sh', '', [])).vb, { version: 0, flags: 0, rVersion: 0 });
    await b.s.unlock(VG('sh'), 0);
    // Nothing changed since: B keeps what it has.
    assert.deepEqual((await b.s.lock(VG('un'), 'sh', '', [])).vb, { version: 0, flags: 0, rVersion: 0 });
    assert.equal(decodeTimestamp(d.lvb.get(idmLockId('vg', VG_UUID, '')!.toString('hex'))!), 1_000_000n);
  });

  test('an ILM unlock error still releases: the ILM has forgotten the lock (simulator finding 20)', async () => {
    const d = new FakeDrives();
    const a = session(d, 'A', { us: 1n });
    await a.s.start();
    const lv = { name: LV_UUID, type: 'lv' as const, mode: 'un' as const };
    assert.equal((await a.s.lock(lv, 'ex', LV_UUID, ['/dev/loop2'])).rv, 0);
    a.ilm.unlock = async () => -E.IO;
    assert.equal(await a.s.unlock({ ...lv, mode: 'ex' }, 0), 0);
  });

  test('every timestamp change is reported as lost value-block content, not only the first (simulator finding 18)', async () => {
    const d = new FakeDrives();
    const clock = { us: 1_000_000n };
    const a = session(d, 'A', clock);
    const b = session(d, 'B', clock);
    await a.s.start(); await b.s.start();
    const bLock = async () => { const r = await b.s.lock(VG('un'), 'sh', '', []); await b.s.unlock(VG('sh'), 0); return r; };
    assert.equal((await bLock()).vbLost, undefined, 'B cached the initial zero timestamp: nothing changed');
    for (const version of [2, 3]) {
      clock.us += 1000n;
      await a.s.lock(VG('un'), 'ex', '', []);
      await a.s.unlock(VG('ex'), version);
      // A zero val_blk alone reads as "still zero" to a core that took zero as valid before.
      assert.deepEqual(await bLock(), { rv: 0, vb: { version: 0, flags: 0, rVersion: 0 }, vbLost: true }, `change to ${version}`);
      assert.equal((await bLock()).vbLost, undefined, `no change after ${version}`);
    }
  });

  test('clock behind: a host whose clock is behind the stored timestamp writes stored + 1', async () => {
    const d = new FakeDrives();
    const a = session(d, 'A', { us: 5_000_000n });
    const b = session(d, 'B', { us: 1_000n });
    await a.s.start(); await b.s.start();
    await a.s.lock(VG('un'), 'ex', '', []);
    await a.s.unlock(VG('ex'), 1);
    await b.s.lock(VG('un'), 'ex', '', []);
    await b.s.unlock(VG('ex'), 2);
    const key = idmLockId('vg', VG_UUID, '')!.toString('hex');
    assert.equal(decodeTimestamp(d.lvb.get(key)!), 5_000_001n);
    // and A, whose cached timestamp is now older, invalidates
    assert.equal((await a.s.lock(VG('un'), 'sh', '', [])).vb?.rVersion, 0);
  });

  test('convert away from ex with a new version writes the timestamp first (the 2026 address fix)', async () => {
    const d = new FakeDrives();
    const a = session(d, 'A', { us: 42n });
    await a.s.start();
    await a.s.lock(VG('un'), 'ex', '', []);
    assert.equal(await a.s.convert(VG('ex'), 'sh', 3), 0);
    assert.equal(decodeTimestamp(a.ilm.cached.get(idmLockId('vg', VG_UUID, '')!.toString('hex'))!), 42n);
    // no version, no write
    const before = a.ilm.cached.size;
    await a.s.convert(VG('sh'), 'ex', 0);
    assert.equal(a.ilm.cached.size, before);
  });
});
