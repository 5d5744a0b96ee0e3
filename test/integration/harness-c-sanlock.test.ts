// C reference with real sanlock: two hosts, each with its own sanlock daemon
// (unprivileged, no watchdog) and C lvmlockd (not test mode), sharing one
// disk. /dev/mapper/<vg>-lvmlock is emulated with an offset loop device,
// created before vgcreate because the daemon writes the leases during it.
// Shows real cross-host LV lock conflicts that test mode cannot.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../harness/cluster';
import { sleep } from '../harness/exec';

describe('C lvmlockd + real sanlock, two hosts', () => {
  let c: Cluster;

  before(async () => {
    c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 1024 }], name: 'csan' });
    for (const h of c.hosts) {
      await h.startSanlock();
      // -o 2: sanlock io timeout 2 s, so joining a lockspace takes ~8 s, not ~24 s.
      await h.startDaemon({ kind: 'c', args: ['-o', '2'] });
    }
  });

  after(async () => {
    if (c) await c.destroy();
  });

  test('sanlock VG shared by two hosts, LV locks conflict across hosts', { timeout: 180_000 }, async () => {
    const h1 = c.host(1);
    const h2 = c.host(2);
    const m = await c.emulateLvmlock('vgs1');
    assert.equal(m.path, '/dev/mapper/vgs1-lvmlock');

    const vg = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgs1', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.match(vg.stdout, /Enabling sanlock global lock/);
    assert.match(vg.stdout, /Logical volume "lvmlock" created\./);
    assert.match(vg.stdout, /VG vgs1 starting sanlock lockspace/);

    // The emulated device sits exactly where lvm put the lvmlock LV.
    const seg = await h1.lvm(['lvs', '-a', '--noheadings', '-o', 'seg_pe_ranges,lv_size', '--units', 'm', 'vgs1/lvmlock']);
    assert.match(seg.stdout, new RegExp(`${c.disks[0]!.path}:0-63\\s+256\\.00m`));

    const st1 = await h1.run(['sanlock', 'client', 'status']);
    assert.match(st1.stdout, /^s lvm_vgs1:1:\/dev\/mapper\/vgs1-lvmlock:0/m);

    const start2 = await h2.lvm(['vgchange', '--lock-start', 'vgs1'], { timeoutMs: 120_000 });
    assert.equal(start2.code, 0, start2.stderr);
    const st2 = await h2.run(['sanlock', 'client', 'status']);
    assert.match(st2.stdout, /^s lvm_vgs1:2:\/dev\/mapper\/vgs1-lvmlock:0/m);

    // Both hosts' delta leases are on the shared disk.
    const dump = await h1.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgs1-lvmlock:0:1M']);
    assert.match(dump.stdout, /lvm_vgs1 .*\n(.*\n)*.*lvm_vgs1/);

    const lc = await h1.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgs1']);
    assert.equal(lc.code, 0, lc.stderr);
    assert.equal((await h1.lvm(['lvchange', '-aey', 'vgs1/lv1'])).code, 0);
    const conflict = await h2.lvm(['lvchange', '-aey', 'vgs1/lv1']);
    assert.equal(conflict.code, 5);
    assert.match(conflict.stderr, /LV locked by other host: vgs1\/lv1/);

    assert.equal((await h1.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-asy', 'vgs1/lv1'])).code, 0);
    assert.equal((await h1.lvm(['lvchange', '-asy', 'vgs1/lv1'])).code, 0);
    for (const h of [h1, h2]) {
      const info = await h.lvmlockctl(['--info']);
      assert.match(info.stdout, /^LS sanlock lvm_vgs1$/m);
      assert.match(info.stdout, /^LK LV sh \S+$/m);
    }
    const ex = await h1.lvm(['lvchange', '-aey', 'vgs1/lv1']);
    assert.equal(ex.code, 5, `ex while the other host holds sh must fail: ${ex.stderr}`);

    assert.equal((await h1.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);
    assert.equal((await h2.lvm(['vgchange', '--lock-stop', 'vgs1'])).code, 0);

    // Host 1 sees host 2's lockspace as gone only after its next renewal.
    let rm = await h1.lvm(['vgremove', '-y', 'vgs1']);
    for (let i = 0; i < 20 && rm.code !== 0; i++) {
      assert.match(rm.stderr, /Lockspace for "vgs1" not stopped on other hosts/);
      await sleep(1000);
      rm = await h1.lvm(['vgremove', '-y', 'vgs1']);
    }
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /Volume group "vgs1" successfully removed/);
  });
});
