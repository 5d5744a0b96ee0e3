// Proves the multi-host harness works with the real C lvmlockd in test mode
// (`lvmlockd -T`): shared dlm VG, LV locks through activation without
// device-mapper, per-host daemons, and the C-vs-C comparison being clean
// after normalization.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../harness/cluster';
import { compareDaemons, formatComparison, normalizeInfo, Step } from '../harness/compare';

const WARN_NO_DM = 'WARNING: Activation disabled. No device-mapper interaction will be attempted.';

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l.trim() !== '');
}

describe('harness with the C lvmlockd -T (dlm test mode)', () => {
  let c: Cluster;

  before(async () => {
    c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 512 }, { sizeMiB: 128 }], name: 'cref' });
    await c.host(1).startDaemon({ kind: 'c', args: ['-T'] });
    await c.host(2).startDaemon({ kind: 'c', args: ['-T'] });
  });

  after(async () => {
    if (c) await c.destroy();
  });

  test('each host has its own /run, /etc/lvm, host_id and daemon', async () => {
    const h1 = c.host(1);
    const h2 = c.host(2);
    assert.notEqual(h1.daemon!.pid, h2.daemon!.pid);
    const conf1 = await h1.run(['lvmconfig', 'local/host_id']);
    const conf2 = await h2.run(['lvmconfig', 'local/host_id']);
    assert.equal(conf1.stdout.trim(), 'host_id=1');
    assert.equal(conf2.stdout.trim(), 'host_id=2');
    const pid1 = await h1.run(['cat', '/run/lvmlockd.pid']);
    const pid2 = await h2.run(['cat', '/run/lvmlockd.pid']);
    assert.equal(Number(pid1.stdout.trim()), h1.daemon!.pid);
    assert.equal(Number(pid2.stdout.trim()), h2.daemon!.pid);
    const hn = await h2.run(['hostname']);
    assert.equal(hn.stdout.trim(), 'host2');
    // Both hosts see the same shared disk.
    for (const h of [h1, h2]) {
      const r = await h.run(['test', '-b', c.disks[0]!.path]);
      assert.equal(r.code, 0);
    }
  });

  test('dlm VG lifecycle on host 1, host 2 independent', async () => {
    const h1 = c.host(1);
    const h2 = c.host(2);
    const disk = c.disks[0]!.path;

    const vg = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', disk]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.deepEqual(lines(vg.stdout).map((l) => l.trim()), [
      `Physical volume "${disk}" successfully created.`,
      'Volume group "vg1" successfully created',
      'VG vg1 starting dlm lockspace',
      'Starting locking.  Waiting until locks are ready...',
    ]);

    const lc = await h1.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vg1']);
    assert.equal(lc.code, 0, lc.stderr);
    assert.match(lc.stdout, /Logical volume "lv1" created\./);
    assert.ok(lc.stderr.includes(WARN_NO_DM), 'activation is disabled by lvm.conf, not by device-mapper errors');
    assert.doesNotMatch(lc.stderr, /device-mapper driver/);

    const uuid = (await h1.lvm(['lvs', '--noheadings', '-o', 'lv_uuid', 'vg1/lv1'])).stdout.trim();
    assert.match(uuid, /^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/);

    const act = await h1.lvm(['lvchange', '-aey', 'vg1/lv1']);
    assert.equal(act.code, 0, act.stderr);
    const info = await h1.lvmlockctl(['--info']);
    assert.equal(info.code, 0);
    assert.ok(lines(info.stdout).includes(`LK LV ex ${uuid}`), info.stdout);
    assert.ok(lines(info.stdout).includes('LS dlm lvm_vg1'), info.stdout);

    // Host 2's daemon knows nothing of host 1's lockspaces.
    const info2 = await h2.lvmlockctl(['--info']);
    assert.equal(info2.code, 0);
    assert.equal(info2.stdout, '');
    const raw2 = await h2.lvmlockctl(['--info', '--dump']);
    assert.doesNotMatch(raw2.stdout, /info=ls /);

    // Lock-stop is refused while the LV is active.
    const busy = await h1.lvm(['vgchange', '--lock-stop', 'vg1']);
    assert.equal(busy.code, 5);
    assert.match(busy.stderr, /VG vg1 stop failed: LVs must first be deactivated/);

    const deact = await h1.lvm(['lvchange', '-an', 'vg1/lv1']);
    assert.equal(deact.code, 0, deact.stderr);
    const info3 = await h1.lvmlockctl(['--info']);
    // 2.03.16 keeps the unlocked resource listed as `LK LV un <uuid>`.
    assert.doesNotMatch(info3.stdout, /^LK LV (ex|sh) /m, info3.stdout);

    const stop = await h1.lvm(['vgchange', '--lock-stop', 'vg1']);
    assert.equal(stop.code, 0, stop.stderr);
    // Stopped lockspaces are listed as REM:<name> until the C daemon frees
    // them 1-2 s later; either way no started lockspace is left.
    const info4 = await h1.lvmlockctl(['--info']);
    assert.doesNotMatch(info4.stdout, /^LS dlm lvm_vg1$/m, info4.stdout);
    assert.doesNotMatch(info4.stdout, /^LS {2}lvm_global$/m, info4.stdout);

    // Host 2 can still read the VG (without a lock) and start its own lockspace.
    const vgs2 = await h2.lvm(['vgs', '--noheadings', '-o', 'vg_name,vg_lock_type', 'vg1']);
    assert.equal(vgs2.code, 0, vgs2.stderr);
    assert.match(vgs2.stdout, /vg1\s+dlm/);
    const start2 = await h2.lvm(['vgchange', '--lock-start', 'vg1']);
    assert.equal(start2.code, 0, start2.stderr);
    const info5 = await h2.lvmlockctl(['--info']);
    assert.match(info5.stdout, /^LS dlm lvm_vg1$/m);
    // ... and host 1's view is unchanged by that.
    const info6 = await h1.lvmlockctl(['--info']);
    assert.doesNotMatch(info6.stdout, /^LS dlm lvm_vg1$/m, info6.stdout);
  });

  test('with global/activation=0 every LV command still sends its lock requests', async () => {
    const h = c.host(2);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Requests the daemon received during one command, from its -D log.
    const requests = async (args: string[]): Promise<string[]> => {
      const before = h.daemonLog().length;
      const r = await h.lvm(args);
      assert.equal(r.code, 0, `lvm ${args.join(' ')}: ${r.stderr}`);
      await sleep(100);
      return h
        .daemonLog()
        .slice(before)
        .split('\n')
        .filter((l) => / recv \S+ cl \d+ /.test(l))
        .map((l) => l.replace(/^.* recv \S+ cl \d+ /, ''));
    };
    assert.deepEqual(await requests(['vgcreate', '--shared', '--lock-type', 'dlm', 'vg2', c.disks[1]!.path]), [
      'lock gl "" mode ex flags 0', 'init vg "vg2" mode iv flags 0', 'update vg "vg2" mode iv flags 0',
      'start vg "vg2" mode iv flags 0', 'lock gl "" mode un flags 0', 'start_wait . "" mode iv flags 0',
    ]);
    // lvcreate without -an activates: persistent (flags 1) ex LV lock.
    assert.deepEqual(await requests(['lvcreate', '-n', 'a', '-L', '8M', 'vg2']), [
      'lock vg "vg2" mode ex flags 0', 'update vg "vg2" mode iv flags 0', 'lock lv "vg2" mode ex flags 1', 'lock vg "vg2" mode un flags 0',
    ]);
    assert.deepEqual(await requests(['lvchange', '-an', 'vg2/a']), [
      'lock vg "vg2" mode sh flags 0', 'lock lv "vg2" mode un flags 1', 'lock vg "vg2" mode un flags 0',
    ]);
    assert.deepEqual(await requests(['lvchange', '-asy', 'vg2/a']), [
      'lock vg "vg2" mode sh flags 0', 'lock lv "vg2" mode sh flags 1', 'lock vg "vg2" mode un flags 0',
    ]);
    assert.equal((await h.lvm(['lvchange', '-an', 'vg2/a'])).code, 0);
    // lvextend of an inactive LV: transient ex LV lock, released by disconnect.
    assert.deepEqual(await requests(['lvextend', '-L', '+4M', 'vg2/a']), [
      'lock vg "vg2" mode ex flags 0', 'lock lv "vg2" mode ex flags 0', 'update vg "vg2" mode iv flags 0', 'lock vg "vg2" mode un flags 0',
    ]);
    assert.deepEqual(await requests(['lvremove', '-y', 'vg2/a']), [
      'lock vg "vg2" mode ex flags 0', 'lock lv "vg2" mode ex flags 1', 'lock lv "vg2" mode un flags 1',
      'free lv "vg2" mode iv flags 0', 'update vg "vg2" mode iv flags 0', 'lock vg "vg2" mode un flags 0',
    ]);
    assert.equal((await h.lvm(['lvcreate', '-an', '-n', 'b', '-L', '8M', 'vg2'])).code, 0);
    assert.deepEqual(await requests(['vgremove', '-y', 'vg2']), [
      'lock gl "" mode ex flags 0', 'lock vg "vg2" mode ex flags 0', 'lock lv "vg2" mode ex flags 1', 'lock lv "vg2" mode un flags 1',
      'free lv "vg2" mode iv flags 0', 'update vg "vg2" mode iv flags 0', 'busy vg "vg2" mode iv flags 0',
      'update vg "vg2" mode iv flags 0', 'free vg "vg2" mode iv flags 0', 'lock vg "vg2" mode un flags 0',
    ]);
  });

  test('lvmlockctl --info normalization keeps structure, hides run specifics', async () => {
    // Host 2 started vg1 above and never stopped it (host 1's stopped
    // lockspaces are freed by the C daemon 1-2 s after the stop).
    await c.host(2).lvm(['vgchange', '--lock-start', 'vg1']);
    const raw = await c.host(2).lvmlockctl(['--info', '--dump']);
    const n = normalizeInfo(raw.stdout);
    assert.match(n, /^info=structs$/m);
    assert.match(n, /^info=client pid=PID fd=N pi=N id=N name=\.$/m);
    assert.match(n, /vg_uuid=\{UUID1\}/);
    assert.doesNotMatch(n, /unused_action_count/);
  });
});

// ~10 steps touching every lock type; run twice on fresh clusters.
const SCRIPT: Step[] = [
  { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', '{disk0}'] },
  { host: 1, argv: ['lvm', 'lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vg1'] },
  { host: 1, argv: ['lvm', 'lvcreate', '-an', '-n', 'lv2', '-L', '8M', 'vg1'] },
  { host: 1, argv: ['lvm', 'lvchange', '-aey', 'vg1/lv1'] },
  { host: 1, argv: ['lvm', 'lvchange', '-asy', 'vg1/lv2'] },
  { host: 1, argv: ['lvmlockctl', '--info'] },
  { host: 1, argv: ['lvm', 'lvs', '-o', 'lv_name,lv_uuid,lv_size,lv_lock_args', 'vg1'] },
  { host: 2, argv: ['lvm', 'vgchange', '--lock-start', 'vg1'] },
  { host: 2, argv: ['lvm', 'lvchange', '-aey', 'vg1/lv2'] },
  { host: 2, argv: ['lvmlockctl', '--info'] },
  { host: 1, argv: ['lvm', 'lvextend', '-L', '+8M', 'vg1/lv1'] },
  { host: 1, argv: ['lvm', 'vgchange', '--lock-stop', 'vg1'] },
  { host: 1, argv: ['lvm', 'lvchange', '-an', 'vg1/lv1', 'vg1/lv2'] },
  { host: 1, argv: ['lvmlockctl', '--info', '--dump'] },
  { host: 1, argv: ['lvm', 'pvs', '-o', 'pv_name,vg_name,pv_uuid'] },
];

describe('compare tool, C vs C', () => {
  test('two fresh C -T clusters produce identical normalized output', async () => {
    const cmp = await compareDaemons(SCRIPT, { kind: 'c', args: ['-T'] }, { kind: 'c', args: ['-T'] });
    assert.equal(cmp.a.raw.length, SCRIPT.length);
    // The runs really were different clusters: UUIDs differ before normalization.
    assert.notEqual(cmp.a.raw[6]!.stdout, cmp.b.raw[6]!.stdout);
    assert.ok(cmp.same, formatComparison(cmp));
    // And the script did what it should (guards against two equally broken runs).
    const r = cmp.a.normalized;
    assert.deepEqual(r.map((s) => s.code), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
    assert.match(r[5]!.stdout, /^VG vg1 lock_type=dlm \{vg1\.uuid\}$/m);
    assert.match(r[5]!.stdout, /^LK LV ex \{vg1\/lv1\.uuid\}$/m);
    assert.match(r[5]!.stdout, /^LK LV sh \{vg1\/lv2\.uuid\}$/m);
    assert.match(r[6]!.stdout, /lv1\s+\{vg1\/lv1\.uuid\}\s+8\.00m/);
    assert.match(r[9]!.stdout, /^LK LV ex \{vg1\/lv2\.uuid\}$/m);
    assert.match(r[10]!.stdout, /changed from 8\.00 MiB \(2 extents\) to 16\.00 MiB/);
    assert.match(r[11]!.stderr, /LVs must first be deactivated/);
    assert.match(r[14]!.stdout, /\{disk0\}\s+vg1\s+\{pv:\{disk0\}\.uuid\}/);
    assert.doesNotMatch(r.map((s) => s.stdout + s.stderr).join(''), /\{UUID\d+\}/, 'every UUID got a name');
  });
});
