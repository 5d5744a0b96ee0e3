// A host dies while holding an LV lock ex: the other host is refused until the
// dead host's delta lease has not been renewed for host_dead_seconds
// (8 * io_timeout + 60), then granted. Both with our daemon dying and with a
// C host (lvmlockd + sanlock daemon) dying next to ours.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, type Host } from '../harness/cluster';
import { sleep } from '../harness/exec';

async function until(h: Host, args: string[], deadlineMs: number): Promise<{ ok: boolean; refusals: number }> {
  let refusals = 0;
  while (Date.now() < deadlineMs) {
    const r = await h.lvm(args);
    if (r.code === 0) return { ok: true, refusals };
    assert.match(r.stderr, /LV locked by other host/);
    refusals++;
    await sleep(3000);
  }
  return { ok: false, refusals };
}

// The two scenarios use separate clusters and mostly wait for host_dead:
// they run at the same time.
describe('sanlock failover after a host dies', { concurrency: true }, () => {
  const clusters: Cluster[] = [];
  after(async () => {
    for (const c of clusters) await c.destroy();
  });

  test('our host dies holding ex: the other host of ours gets it after host_dead (io 1: 68 s)', { timeout: 180_000 }, async () => {
    const c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 512 }], name: 'san-fo1' });
    clusters.push(c);
    const [h1, h2] = [c.host(1), c.host(2)];
    for (const h of [h1, h2]) await h.startDaemon({ kind: 'ts', args: ['-o', '1'] });
    await c.emulateLvmlock('vgf');
    assert.equal((await h1.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgf', c.disks[0]!.path])).code, 0);
    assert.equal((await h2.lvm(['vgchange', '--lock-start', 'vgf'])).code, 0);
    assert.equal((await h1.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgf'])).code, 0);
    assert.equal((await h1.lvm(['lvchange', '-aey', 'vgf/lv1'])).code, 0);
    await h1.stopDaemon({ signal: 'SIGKILL', timeoutMs: 1000 });
    const killed = Date.now();
    const r = await until(h2, ['lvchange', '-aey', 'vgf/lv1'], killed + 120_000);
    const waited = (Date.now() - killed) / 1000;
    console.log(`# granted ${waited.toFixed(1)} s after the holder died, ${r.refusals} refusals`);
    assert.ok(r.ok, 'granted after host_dead');
    assert.ok(r.refusals >= 1, 'refused while the dead host might still be alive');
    assert.ok(waited >= 60 && waited <= 85, `waited ${waited} s`);
    assert.match((await h2.lvmlockctl(['--info'])).stdout, /^LK LV ex \S+$/m);
  });

  test('a C host (lvmlockd + sanlock daemon) dies holding ex: our host gets it after host_dead (io 2: 76 s)', { timeout: 200_000 }, async () => {
    const c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 512 }], name: 'san-fo2' });
    clusters.push(c);
    const [hc, hts] = [c.host(1), c.host(2)];
    const san = await hc.startSanlock();
    await hc.startDaemon({ kind: 'c', args: ['-o', '2'] });
    await hts.startDaemon({ kind: 'ts', args: ['-o', '2'] });
    await c.emulateLvmlock('vgf');
    assert.equal((await hc.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgf', c.disks[0]!.path])).code, 0);
    assert.equal((await hts.lvm(['vgchange', '--lock-start', 'vgf'])).code, 0);
    assert.equal((await hc.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgf'])).code, 0);
    assert.equal((await hc.lvm(['lvchange', '-aey', 'vgf/lv1'])).code, 0);
    // The whole host stops at once: no clean release anywhere.
    process.kill(san.pid, 'SIGKILL');
    await hc.stopDaemon({ signal: 'SIGKILL', timeoutMs: 1000 });
    await hc.stopSanlock({ timeoutMs: 500 });
    const killed = Date.now();
    const r = await until(hts, ['lvchange', '-aey', 'vgf/lv1'], killed + 140_000);
    const waited = (Date.now() - killed) / 1000;
    console.log(`# granted ${waited.toFixed(1)} s after the C holder died, ${r.refusals} refusals`);
    assert.ok(r.ok, 'granted after host_dead');
    assert.ok(r.refusals >= 1);
    assert.ok(waited >= 65 && waited <= 100, `waited ${waited} s`);
  });
});
