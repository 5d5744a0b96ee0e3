// Hosts racing for the same LV locks with real commands: three hosts of our
// daemon and one C lvmlockd + sanlock daemon host, all activating the same
// LVs (ex or sh, chosen at random) at the same moment, for a bounded number of
// rounds. After every round `lvmlockctl --info` of every host must show at
// most one ex holder per LV, and never ex together with sh.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, type Host } from '../harness/cluster';
import { SeededRandom } from '../../src/leases/random';

const ROUNDS = Number(process.env.SANLOCK_RACE_ROUNDS ?? 12);
const SEED = Number(process.env.SANLOCK_RACE_SEED ?? 20261125);

describe('sanlock: 4 hosts (3 ours + 1 C) racing for the same LVs', () => {
  let c: Cluster;

  before(async () => {
    c = await Cluster.create({ hosts: 4, disks: [{ sizeMiB: 512 }], name: 'san-race' });
    for (const h of c.hosts.slice(0, 3)) await h.startDaemon({ kind: 'ts', args: ['-o', '2'] });
    const hc = c.host(4);
    await hc.startSanlock();
    await hc.startDaemon({ kind: 'c', args: ['-o', '2'] });
  });

  after(async () => {
    if (c) await c.destroy();
  });

  test(`never two ex holders over ${ROUNDS} rounds`, { timeout: 280_000 }, async () => {
    const hosts = c.hosts;
    const [h1] = hosts as [Host];
    await c.emulateLvmlock('vgr');
    const vg = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgr', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    const starts = await Promise.all(hosts.slice(1).map((h) => h.lvm(['vgchange', '--lock-start', 'vgr'], { timeoutMs: 120_000 })));
    for (const s of starts) assert.equal(s.code, 0, s.stderr);
    for (const lv of ['r1', 'r2']) {
      const r = await h1.lvm(['lvcreate', '-an', '-n', lv, '-L', '8M', 'vgr']);
      assert.equal(r.code, 0, r.stderr);
    }
    const lvs = await h1.lvm(['lvs', '--noheadings', '-o', 'lv_name,lv_uuid', 'vgr']);
    const uuidOf = new Map<string, string>();
    for (const m of lvs.stdout.matchAll(/^\s*(r\d)\s+(\S+)$/gm)) uuidOf.set(m[2]!, m[1]!);
    assert.equal(uuidOf.size, 2, lvs.stdout);

    const rnd = new SeededRandom(SEED);
    let granted = 0, refusedCount = 0;
    const stats: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const lv = rnd.next() < 0.5 ? 'r1' : 'r2';
      const wants = hosts.map(() => (rnd.next() < 0.7 ? 'ey' : 'sy'));
      const res = await Promise.all(hosts.map((h, i) => h.lvm(['lvchange', `-a${wants[i]}`, `vgr/${lv}`])));
      for (const [i, r] of res.entries()) {
        if (r.code === 0) granted++;
        else {
          refusedCount++;
          assert.match(r.stderr, /LV locked by other host: vgr\/r\d/, `round ${round} host${i + 1}: ${r.stderr}`);
        }
      }
      // The invariant, from every host's own view.
      const holders = new Map<string, Array<{ host: number; mode: string }>>();
      for (const [i, h] of hosts.entries()) {
        const info = await h.lvmlockctl(['--info']);
        for (const m of info.stdout.matchAll(/^LK LV (ex|sh) (\S+)$/gm)) {
          const list = holders.get(m[2]!) ?? [];
          list.push({ host: i + 1, mode: m[1]! });
          holders.set(m[2]!, list);
        }
      }
      for (const [uuid, list] of holders) {
        const ex = list.filter((x) => x.mode === 'ex');
        const desc = `round ${round} ${uuidOf.get(uuid) ?? uuid}: ${JSON.stringify(list)} wants ${wants.join(',')}`;
        assert.ok(ex.length <= 1, `two ex holders: ${desc}`);
        assert.ok(ex.length === 0 || list.length === 1, `ex together with sh: ${desc}`);
      }
      stats.push(`${lv}:${wants.join('')}=>${res.map((r) => (r.code === 0 ? 'Y' : 'n')).join('')}`);
      // Release everything for the next round.
      const rel = await Promise.all(hosts.map((h) => h.lvm(['lvchange', '-an', 'vgr/r1', 'vgr/r2'])));
      for (const r of rel) assert.equal(r.code, 0, r.stderr);
    }
    console.log(`# rounds ${ROUNDS}: granted ${granted}, refused ${refusedCount}: ${stats.join(' ')}`);
    assert.ok(granted >= ROUNDS / 2, 'most rounds grant the lock to someone');

    await Promise.all(hosts.slice(1).map((h) => h.lvm(['vgchange', '--lock-stop', 'vgr'])));
  });
});
