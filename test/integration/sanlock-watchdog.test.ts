// Our daemon arms the host watchdog through wdmd for sanlock lockspaces, driven
// by real LVM2 commands. This machine has no /dev/watchdog, so a stand-in wdmd
// listens on the host's /run/wdmd/wdmd.sock and records what the daemon tells
// it (the VM tier runs the real wdmd on softdog and sees the host reset).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, type Host } from '../harness/cluster';
import { sleep } from '../harness/exec';
import { WDMD_CMD } from '../../src/daemon/wdmd';
import { FakeWdmd } from '../helpers/fake-wdmd';

const monotonicSeconds = (): number => Number(process.hrtime.bigint() / 1_000_000_000n);

async function waitFor(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    if (cond()) return;
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('sanlock lockspaces arm the host watchdog (wdmd stand-in, real LVM2 commands)', () => {
  let c: Cluster;
  let h: Host;
  let wdmd: FakeWdmd;

  before(async () => {
    c = await Cluster.create({ hosts: 1, disks: [{ sizeMiB: 1024 }], name: 'san-wd' });
    h = c.host(1);
    wdmd = new FakeWdmd(h.hostPath('/run/wdmd/wdmd.sock'), { legacy: true }); // as wdmd 3.8 of Debian 12
    await wdmd.start();
    // Default --watchdog auto: wdmd is used because it runs.
    await h.startDaemon({ kind: 'ts', args: ['-o', '2'] });
  });

  after(async () => {
    if (wdmd) await wdmd.stop();
    if (c) await c.destroy();
  });

  test('lock-start arms it before the start returns, renewals move it, lock-stop disarms it', { timeout: 180_000 }, async () => {
    await c.emulateLvmlock('vgw');
    const vg = await h.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgw', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.match(vg.stdout, /VG vgw starting sanlock lockspace/);
    // lvm's start is asynchronous: wait for the lockspace, then look at what wdmd heard.
    const st = await h.lvm(['vgchange', '--lock-start', 'vgw']);
    assert.equal(st.code, 0, st.stderr);
    await waitFor('the lockspace to be armed', () => wdmd.clients.some((cl) => FakeWdmd.lives(cl).length > 0), 30_000);
    const cl = wdmd.clients.find((x) => FakeWdmd.lives(x).length > 0)!;
    const cmds = cl.headers.map((x) => x.cmd);
    assert.deepEqual(cmds.slice(0, 5), [WDMD_CMD.REGISTER, WDMD_CMD.REFCOUNT_SET, WDMD_CMD.OPEN_WATCHDOG, WDMD_CMD.STATUS, WDMD_CMD.TEST_LIVE]);
    assert.equal(cl.headers[0]!.name, 'lvmlockd_lvm_vgw:1');
    const [renewal, expire] = FakeWdmd.lives(cl)[0]!;
    assert.equal(expire - renewal, 16, 'expire = last renewal + id_renewal_fail (8 x io_timeout 2)');
    const now = monotonicSeconds();
    assert.ok(renewal <= now && expire > now, `renewal ${renewal} expire ${expire} now ${now} (CLOCK_MONOTONIC)`);

    // An LV lock is granted under the armed watchdog.
    assert.equal((await h.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgw'])).code, 0);
    const act = await h.lvm(['lvchange', '-aey', 'vgw/lv1']);
    assert.equal(act.code, 0, act.stderr);

    // Renewals every 2 x io_timeout move the expiry forward.
    await waitFor('two renewals', () => FakeWdmd.lives(cl).length >= 3, 20_000);
    const lives = FakeWdmd.lives(cl);
    for (let i = 1; i < lives.length; i++) {
      assert.ok(lives[i]![0] > lives[i - 1]![0], `renewals go forward: ${JSON.stringify(lives)}`);
      assert.equal(lives[i]![1] - lives[i]![0], 16);
    }
    assert.ok(!cl.closed, 'the daemon keeps its wdmd connection while the lockspace runs');

    assert.equal((await h.lvm(['lvchange', '-an', 'vgw/lv1'])).code, 0);
    const stop = await h.lvm(['vgchange', '--lock-stop', 'vgw']);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor('the wdmd connection to close', () => cl.closed);
    const tail = cl.headers.slice(-3);
    assert.equal(tail[0]!.cmd, WDMD_CMD.TEST_LIVE);
    assert.equal(tail[0]!.expireTime, 0n, 'disarm: test_live 0 0');
    assert.equal(tail[1]!.cmd, WDMD_CMD.REFCOUNT_CLEAR);
    assert.equal(tail[2]!.cmd, WDMD_CMD.STATUS, 'the daemon waits for wdmd to have read the disarm before it closes');
  });

  test('--watchdog on without wdmd: the lockspace does not start and the log says why; auto without wdmd starts with a warning', { timeout: 180_000 }, async () => {
    await wdmd.stop();
    await h.stopDaemon();
    await h.startDaemon({ kind: 'ts', args: ['-o', '2', '--watchdog', 'on'] });
    // As with C lvmlockd and sanlock -w 1 without wdmd: lvm's start is asynchronous, so the
    // command ends without an error; the lockspace never starts and the daemon log says why.
    const st = await h.lvm(['vgchange', '--lock-start', 'vgw']);
    assert.equal(st.code, 0, st.stderr);
    const lv = await h.lvm(['lvchange', '-aey', 'vgw/lv1']);
    assert.equal(lv.code, 5, `no LV lock without the lockspace: ${lv.stderr}`);
    const info = await h.lvmlockctl(['--info']);
    assert.doesNotMatch(info.stdout, /^LS sanlock lvm_vgw$/m, `${st.stdout}${st.stderr}\n${info.stdout}`);
    assert.match(h.daemonLog(), /watchdog wdmd at \/run\/wdmd\/wdmd\.sock \(--watchdog on\): cannot connect to wdmd/);

    await h.stopDaemon();
    await h.startDaemon({ kind: 'ts', args: ['-o', '2'] });
    const st2 = await h.lvm(['vgchange', '--lock-start', 'vgw']);
    assert.equal(st2.code, 0, st2.stderr);
    await waitFor('the lockspace', () => /WARNING: no watchdog \(wdmd is not running at \/run\/wdmd\/wdmd\.sock\)/.test(h.daemonLog()), 30_000);
    assert.equal((await h.lvm(['lvchange', '-aey', 'vgw/lv1'])).code, 0);
    assert.equal((await h.lvm(['lvchange', '-an', 'vgw/lv1'])).code, 0);
    assert.equal((await h.lvm(['vgchange', '--lock-stop', 'vgw'])).code, 0);
  });
});
