// Our daemon's sanlock lock manager on a real multi-host cluster: three hosts,
// each running bin/lvmlockd without -T (no sanlock daemon anywhere), sharing
// one disk. /dev/mapper/<vg>-lvmlock is an offset loop device over the PV
// where lvm puts the lvmlock LV. Real LVM2 commands, global/activation = 0.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, type Host } from '../harness/cluster';
import { runCommand, sleep } from '../harness/exec';

const IO = '1'; // io_timeout: joining a free host_id takes 2 s

function lvLine(mode: string): RegExp {
  return new RegExp(`^LK LV ${mode} \\S+$`, 'm');
}

/**
 * A removed VG's lockspace stays listed as REM:lvm_<vg> until the daemon's
 * worker frees it (1-2 s, as in C); until then lvm will not enable a new GL.
 */
async function waitNoLockspaces(h: Host): Promise<void> {
  for (let i = 0; i < 20; i++) {
    if (!/^LS /m.test((await h.lvmlockctl(['--info'])).stdout)) return;
    await sleep(500);
  }
  assert.fail(`${h.name}: lockspaces still listed`);
}

describe('sanlock VGs with our daemon only (3 hosts)', () => {
  let c: Cluster;
  let h1: Host, h2: Host, h3: Host;

  before(async () => {
    c = await Cluster.create({ hosts: 3, disks: [{ sizeMiB: 1024 }, { sizeMiB: 64 }], name: 'san-ours' });
    [h1, h2, h3] = [c.host(1), c.host(2), c.host(3)];
    for (const h of c.hosts) await h.startDaemon({ kind: 'ts', args: ['-o', IO] });
  });

  after(async () => {
    if (c) await c.destroy();
  });

  test('vgcreate, start everywhere, LV locks across hosts, GL enable/disable, vgremove rules', { timeout: 240_000 }, async () => {
    await c.emulateLvmlock('vgs1');
    const vg = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgs1', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.match(vg.stdout, /Enabling sanlock global lock/);
    assert.match(vg.stdout, /Logical volume "lvmlock" created\./);
    assert.match(vg.stdout, /VG vgs1 starting sanlock lockspace/);

    // The on-disk layout is sanlock's: the real tool reads it.
    const dump = await h1.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgs1-lvmlock:0:70M']);
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /^\s*00000000\s+lvm_vgs1\s+\S+\.host1\s+\d+\s+0+1\s+0+1\b/m, dump.stdout);
    assert.match(dump.stdout, /^\s*68157440\s+lvm_vgs1\s+GLLK\b/m);
    assert.match(dump.stdout, /^\s*69206016\s+lvm_vgs1\s+VGLK\b/m);
    assert.match(dump.stdout, /^\s*70254592\s+lvm_vgs1\s+#unused\b/m);

    for (const h of [h2, h3]) {
      const st = await h.lvm(['vgchange', '--lock-start', 'vgs1']);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, /VG vgs1 starting sanlock lockspace/);
    }
    for (const [i, h] of [h1, h2, h3].entries()) {
      const info = await h.lvmlockctl(['--info']);
      assert.match(info.stdout, /^LS sanlock lvm_vgs1$/m, `host${i + 1}: ${info.stdout}`);
    }
    const hosts = await h1.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgs1-lvmlock:0:1M']);
    for (const id of [1, 2, 3]) assert.match(hosts.stdout, new RegExp(`\\S+\\.host${id}\\s+\\d+\\s+0*${id}\\s`), hosts.stdout);

    const lc = await h1.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgs1']);
    assert.equal(lc.code, 0, lc.stderr);
    const lvs = await h2.lvm(['lvs', '--noheadings', '-o', 'lv_name,lock_args', 'vgs1']);
    assert.equal(lvs.code, 0, lvs.stderr);
    assert.match(lvs.stdout, /lv1\s+1\.0\.0:70254592/);

    // ex on host1 refuses ex and sh elsewhere
    assert.equal((await h1.lvm(['lvchange', '-aey', 'vgs1/lv1'])).code, 0);
    for (const [h, flag] of [[h2, '-aey'], [h3, '-asy']] as const) {
      const r = await h.lvm(['lvchange', flag, 'vgs1/lv1']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /LV locked by other host: vgs1\/lv1/);
    }
    assert.match((await h1.lvmlockctl(['--info'])).stdout, lvLine('ex'));
    assert.doesNotMatch((await h2.lvmlockctl(['--info'])).stdout, /^LK LV/m);

    // release, then the other host is granted
    assert.equal((await h1.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-aey', 'vgs1/lv1'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);

    // sh on two hosts, ex refused while they hold it
    assert.equal((await h2.lvm(['lvchange', '-asy', 'vgs1/lv1'])).code, 0);
    assert.equal((await h3.lvm(['lvchange', '-asy', 'vgs1/lv1'])).code, 0);
    for (const h of [h2, h3]) assert.match((await h.lvmlockctl(['--info'])).stdout, lvLine('sh'));
    const ex = await h1.lvm(['lvchange', '-aey', 'vgs1/lv1']);
    assert.equal(ex.code, 5);
    assert.match(ex.stderr, /LV locked by other host: vgs1\/lv1/);
    // a sh holder cannot convert to ex while the other one holds sh
    const conv = await h2.lvm(['lvchange', '-aey', 'vgs1/lv1']);
    assert.equal(conv.code, 5, conv.stderr);
    assert.equal((await h2.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);
    assert.equal((await h3.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);
    assert.equal((await h1.lvm(['lvchange', '-aey', 'vgs1/lv1'])).code, 0);
    assert.equal((await h1.lvm(['lvchange', '-an', 'vgs1/lv1'])).code, 0);

    // GL disable/enable with lvmlockctl renames the lease on disk
    const dis = await h1.lvmlockctl(['--gl-disable', 'vgs1']);
    assert.equal(dis.code, 0, dis.stdout + dis.stderr);
    let gl = await h1.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgs1-lvmlock:65M:1M']);
    assert.match(gl.stdout, /lvm_vgs1\s+_GLLK_disabled/);
    // another host that still believes in the GL finds it disabled
    const nogl = await h3.lvm(['pvs']);
    assert.equal(nogl.code, 0, nogl.stderr);
    assert.match(nogl.stderr, /Skipping global lock: lockspace not found or started/);
    const pvc = await h3.lvm(['pvcreate', c.disks[1]!.path]);
    assert.equal(pvc.code, 5);
    assert.match(pvc.stderr, /Global lock failed: check that global lockspace is started/);
    const en = await h3.lvmlockctl(['--gl-enable', 'vgs1']);
    assert.equal(en.code, 0, en.stdout + en.stderr);
    gl = await h1.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgs1-lvmlock:65M:1M']);
    assert.match(gl.stdout, /lvm_vgs1\s+GLLK\b/);
    const pvs = await h3.lvm(['pvs']);
    assert.equal(pvs.code, 0, pvs.stderr);
    assert.doesNotMatch(pvs.stderr, /global lock/i);
    const pvc2 = await h3.lvm(['pvcreate', c.disks[1]!.path]);
    assert.equal(pvc2.code, 0, pvc2.stderr);

    // lvremove frees the slot (#unused), the next LV reuses it
    assert.equal((await h3.lvm(['lvremove', '-y', 'vgs1/lv1'])).code, 0);
    const slot = await h1.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgs1-lvmlock:67M:1M']);
    assert.match(slot.stdout, /lvm_vgs1\s+#unused/);
    assert.equal((await h3.lvm(['lvcreate', '-an', '-n', 'lv2', '-L', '8M', 'vgs1'])).code, 0);
    const lvs2 = await h1.lvm(['lvs', '--noheadings', '-o', 'lv_name,lock_args', 'vgs1']);
    assert.match(lvs2.stdout, /lv2\s+1\.0\.0:70254592/);

    // vgremove is refused while other hosts have the lockspace started
    const busy = await h1.lvm(['vgremove', '-y', 'vgs1']);
    assert.equal(busy.code, 5);
    assert.match(busy.stderr, /Lockspace for "vgs1" not stopped on other hosts/);
    for (const h of [h2, h3]) assert.equal((await h.lvm(['vgchange', '--lock-stop', 'vgs1'])).code, 0);
    let rm = await h1.lvm(['vgremove', '-y', 'vgs1']);
    for (let i = 0; i < 10 && rm.code !== 0; i++) {
      await sleep(1000);
      rm = await h1.lvm(['vgremove', '-y', 'vgs1']);
    }
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /Volume group "vgs1" successfully removed/);
    // the lockspace is wiped, GL and VG leases renamed
    const gone = await h1.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgs1-lvmlock:0:67M']);
    assert.doesNotMatch(gone.stdout, /lvm_vgs1\s+\S+\.host/);
    assert.match(gone.stdout, /invalid_removed/);
    await c.removeMapper('vgs1-lvmlock');
  });

  test('host_id out of range is refused with the lvm message', { timeout: 120_000 }, async () => {
    await c.emulateLvmlock('vgs2');
    await waitNoLockspaces(h1);
    const vg = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgs2', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    const bad = await h2.lvm(['vgchange', '--lock-start', '--config', 'local/host_id=2001', 'vgs2']);
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /VG vgs2 start failed: invalid sanlock host_id, set in lvmlocal\.conf/);
    // a failed start stays listed as REM:lvm_vgs2 until the worker frees it, as in C
    assert.doesNotMatch((await h2.lvmlockctl(['--info'])).stdout, /^LS sanlock lvm_vgs2$/m);
    const rm = await h1.lvm(['vgremove', '-y', 'vgs2']);
    assert.equal(rm.code, 0, rm.stderr);
  });

  test('dlm VGs fail as with the C daemon where no dlm_controld runs (dlm-no-controld.test.ts compares)', async () => {
    const r = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'dlm', 'vgd', c.disks[1]!.path]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /Global lock failed: check that global lockspace is started\./);
  });

  test('lost delta lease: the VG is killed (lvmlockctl --kill), new locks refused, drop', { timeout: 120_000 }, async () => {
    const m = await c.emulateLvmlock('vgs3');
    for (const h of [h1, h2, h3]) await waitNoLockspaces(h);
    const vg = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgs3', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.equal((await h1.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgs3'])).code, 0);
    assert.equal((await h1.lvm(['lvchange', '-aey', 'vgs3/lv1'])).code, 0);
    // Someone re-initializes the lockspace under us (as a vgremove elsewhere would).
    const init = await runCommand(['sanlock', 'direct', 'init', '-s', `lvm_vgs3:0:${m.loop}:0`, '-o', IO]);
    assert.equal(init.code, 0, init.stderr);
    let log = '';
    for (let i = 0; i < 20 && !/kill_vg_vg rv 0/.test(log); i++) {
      await sleep(500);
      log = h1.daemonLog();
    }
    assert.match(log, /S lvm_vgs3 lock manager failed: delta lease for host_id 1 lost/);
    assert.match(log, /running kill helper: \S*lvmlockctl --kill vgs3/);
    const lc = await h1.lvm(['lvcreate', '-an', '-n', 'lv2', '-L', '8M', 'vgs3']);
    assert.equal(lc.code, 5);
    assert.match(lc.stderr, /VG vgs3 lock failed: storage failed for sanlock leases/);
    assert.equal((await h1.lvmlockctl(['--drop', 'vgs3'])).code, 0);
    let info = '';
    for (let i = 0; i < 10; i++) {
      info = (await h1.lvmlockctl(['--info'])).stdout;
      if (!/lvm_vgs3/.test(info)) break;
      await sleep(500);
    }
    assert.doesNotMatch(info, /^LS sanlock lvm_vgs3$/m);
  });
});
