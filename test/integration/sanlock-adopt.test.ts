// Lock adoption with real LVM2 commands: host 1's daemon (-A 1) is killed
// with SIGKILL while it holds one LV ex and another sh, and restarted with
// --adopt 1 well inside host_dead. The restarted daemon takes the locks back:
// host 2 stays refused, also after host_dead has passed (the leases are held
// and renewed again, not merely not expired yet), `lvmlockctl --info` on host
// 1 lists them, and host 1's `lvchange -an` hands them over. (Without
// adoption the other host gets them after host_dead: sanlock-failover.)

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Cluster } from '../harness/cluster';
import { sleep } from '../harness/exec';

const ARGS = ['-o', '1', '-A', '1'];
const HOST_DEAD_S = 8 * 1 + 60;

describe('sanlock lock adoption after a daemon restart', () => {
  let c: Cluster | null = null;
  after(async () => { await c?.destroy(); });

  test('kill -9, restart with --adopt 1: locks kept past host_dead, released by lvchange -an', { timeout: 240_000 }, async () => {
    c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 512 }], name: 'san-adopt' });
    const [h1, h2] = [c.host(1), c.host(2)];
    for (const h of [h1, h2]) await h.startDaemon({ kind: 'ts', args: ARGS });
    await c.emulateLvmlock('vga');
    assert.equal((await h1.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vga', c.disks[0]!.path])).code, 0);
    assert.equal((await h2.lvm(['vgchange', '--lock-start', 'vga'])).code, 0);
    for (const lv of ['lvx', 'lvs', 'lvfree']) {
      assert.equal((await h1.lvm(['lvcreate', '-an', '-n', lv, '-L', '8M', 'vga'])).code, 0);
    }
    const uuid = async (lv: string) => (await h1.lvm(['lvs', '--noheadings', '-o', 'lv_uuid', `vga/${lv}`])).stdout.trim();
    const [ux, us] = [await uuid('lvx'), await uuid('lvs')];
    assert.equal((await h1.lvm(['lvchange', '-aey', 'vga/lvx'])).code, 0);
    assert.equal((await h1.lvm(['lvchange', '-asy', 'vga/lvs'])).code, 0);
    const adoptFile = fs.readFileSync(h1.hostPath('/run/lvm/lvmlockd.adopt'), 'utf8');
    assert.match(adoptFile, new RegExp(`^LV: +\\S+ ${ux} 1\\.0\\.0:\\d+ ex 0$`, 'm'), adoptFile);
    assert.match(adoptFile, new RegExp(`^LV: +\\S+ ${us} 1\\.0\\.0:\\d+ sh 0$`, 'm'), adoptFile);

    await h1.stopDaemon({ signal: 'SIGKILL', timeoutMs: 1000 });
    const killed = Date.now();
    await h1.startDaemon({ kind: 'ts', args: ARGS, readyTimeoutMs: 30_000 });
    const restartS = (Date.now() - killed) / 1000;
    console.log(`# restarted and adopted ${restartS.toFixed(1)} s after SIGKILL`);
    const log = h1.daemonLog();
    assert.match(log, new RegExp(`adopt success lv vga ${ux} ex`), log.slice(-4000));
    assert.match(log, new RegExp(`adopt success lv vga ${us} sh`));
    assert.match(log, /adopt_locks done/);

    const info = (await h1.lvmlockctl(['--info'])).stdout;
    assert.match(info, new RegExp(`^LK LV ex ${ux}$`, 'm'), info);
    assert.match(info, new RegExp(`^LK LV sh ${us}$`, 'm'), info);

    const refusedOn2 = async (when: string) => {
      for (const [lv, mode] of [['lvx', '-asy'], ['lvx', '-aey'], ['lvs', '-aey']] as const) {
        const r = await h2.lvm(['lvchange', mode, `vga/${lv}`]);
        assert.equal(r.code, 5, `${when}: host 2 ${mode} ${lv} must be refused (ECMD_FAILED)`);
        assert.match(r.stderr, /LV locked by other host/, `${when}: ${r.stderr}`);
      }
    };
    await refusedOn2('right after the restart');
    // sh stays shareable; a free LV is not held by anyone.
    assert.equal((await h2.lvm(['lvchange', '-asy', 'vga/lvs'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-an', 'vga/lvs'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-aey', 'vga/lvfree'])).code, 0);

    const wait = killed + (HOST_DEAD_S + 6) * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    await refusedOn2(`${((Date.now() - killed) / 1000).toFixed(0)} s after SIGKILL (host_dead ${HOST_DEAD_S} s)`);

    assert.equal((await h1.lvm(['lvchange', '-an', 'vga/lvx'])).code, 0);
    assert.equal((await h1.lvm(['lvchange', '-an', 'vga/lvs'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-aey', 'vga/lvx'])).code, 0);
    assert.equal((await h2.lvm(['lvchange', '-aey', 'vga/lvs'])).code, 0);
    assert.match((await h2.lvmlockctl(['--info'])).stdout, new RegExp(`^LK LV ex ${ux}$`, 'm'));
    assert.doesNotMatch((await h1.lvmlockctl(['--info'])).stdout, /^LK LV (ex|sh) /m);
  });
});
