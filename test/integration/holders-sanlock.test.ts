// "Who holds what" on a sanlock VG shared by two hosts running our daemon:
// `lvmlockctl --holders` on either host reads the lease area and names
// exactly the holders (an LV active ex on host1, an LV active sh on both), and
// an LV lock refused on host2 is a warning line naming host1 as the holder.
//
// Needs `npm run build`, root, lvm2 and util-linux (the namespace harness,
// docs/testing.md).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, tsLvmlockctlPath, type Host } from '../harness/cluster';

interface Report {
  source: string;
  locks: Array<{ resource: string; type: string; mode: string; holders: Array<{ host_id: number; host: string; local: boolean; live: boolean | null; state: string; generation: number }> }>;
}

describe('lvmlockctl --holders on a sanlock VG (2 hosts, ours)', () => {
  let c: Cluster;
  let h1: Host, h2: Host;

  before(async () => {
    c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 512 }], name: 'holders' });
    [h1, h2] = [c.host(1), c.host(2)];
    for (const h of c.hosts) await h.startDaemon({ kind: 'ts', args: ['-o', '1'] });
  });

  after(async () => {
    if (c) await c.destroy();
  });

  test('names the ex and sh holders of each LV, from either host; a refusal names the holder', { timeout: 180_000 }, async () => {
    const ok = async (h: Host, args: string[]) => {
      const r = await h.lvm(args);
      assert.equal(r.code, 0, `${h.name} lvm ${args.join(' ')}: ${r.stderr}`);
      return r;
    };
    await c.emulateLvmlock('vgh');
    await ok(h1, ['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgh', c.disks[0]!.path]);
    await ok(h2, ['vgchange', '--lock-start', 'vgh']);
    await ok(h1, ['lvcreate', '-an', '-n', 'lvx', '-L', '8M', 'vgh']);
    await ok(h1, ['lvcreate', '-an', '-n', 'lvs', '-L', '8M', 'vgh']);
    const uuid = async (lv: string) => (await ok(h1, ['lvs', '--noheadings', '-o', 'lv_uuid', `vgh/${lv}`])).stdout.trim();
    const [ux, us] = [await uuid('lvx'), await uuid('lvs')];
    await ok(h1, ['lvchange', '-aey', 'vgh/lvx']);
    await ok(h1, ['lvchange', '-asy', 'vgh/lvs']);
    await ok(h2, ['lvchange', '-asy', 'vgh/lvs']);

    for (const [h, me] of [[h1, 1], [h2, 2]] as const) {
      const r = await h.lvmlockctl(['--holders', 'vgh', '--json'], { binary: tsLvmlockctlPath() });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const doc = JSON.parse(r.stdout) as Report;
      assert.equal(doc.source, 'disk');
      const lv = doc.locks.filter((l) => l.type === 'lv').map((l) => ({
        resource: l.resource, mode: l.mode, holders: l.holders.map((x) => [x.host_id, x.local, x.live, x.state, /host\d/.exec(x.host)?.[0]]),
      }));
      assert.deepEqual(lv, [
        { resource: ux, mode: 'ex', holders: [[1, me === 1, true, 'LIVE', 'host1']] },
        { resource: us, mode: 'sh', holders: [[1, me === 1, true, 'LIVE', 'host1'], [2, me === 2, true, 'LIVE', 'host2']] },
      ], r.stdout);
      assert.ok(doc.locks.every((l) => l.holders.every((x) => x.generation > 0)));
    }
    const text = await h2.lvmlockctl(['--holders', 'vgh'], { binary: tsLvmlockctlPath() });
    assert.match(text.stdout, /from the lease area on disk/);
    assert.match(text.stdout, new RegExp(`^${ux}\\s+lv\\s+ex\\s+1\\s+\\S*host1\\S*\\s+\\d+\\s+yes\\s+LIVE$`, 'm'), text.stdout);

    const refused = await h2.lvm(['lvchange', '-aey', 'vgh/lvx']);
    assert.match(refused.stderr, /LV locked by other host: vgh\/lvx/);
    assert.match(h2.daemonLog(), /LV vgh\/lvx ex for lvchange\[\d+\] refused: held by host_id 1 \(\S*host1\S*\) generation \d+/);

    for (const h of [h1, h2]) await ok(h, ['lvchange', '-an', 'vgh/lvs']);
    await ok(h1, ['lvchange', '-an', 'vgh/lvx']);
    const none = await h2.lvmlockctl(['--holders', 'vgh', '--json'], { binary: tsLvmlockctlPath() });
    assert.deepEqual((JSON.parse(none.stdout) as Report).locks.filter((l) => l.type === 'lv'), []);
    await ok(h2, ['vgchange', '--lock-stop', 'vgh']);
  });
});
