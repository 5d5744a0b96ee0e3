// Metrics, the JSON request log, the holder warning and --holders with real
// LVM2 commands against our lvmlockd -T on a one-host namespace cluster:
// - `lvmlockctl --metrics` counts exactly the lock requests the JSON log shows
//   (one line per answered request), and the --metrics-file has the same series;
// - a lock refused because of a (test mode) remote holder is a warning line;
// - `lvmlockctl --holders VG` lists the locks held, as text and JSON.
//
// Needs `npm run build`, root, lvm2 (the namespace harness, docs/testing.md).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Cluster, tsLvmlockctlPath } from '../harness/cluster';

/** The value of one series in Prometheus text, or null when absent. */
function series(text: string, name: string, labels: Record<string, string>): number | null {
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') && Object.keys(labels).length === 0) return Number(line.slice(name.length + 1));
    if (!line.startsWith(name + '{')) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return null;
}

describe('observability with lvm commands (test mode)', () => {
  test('metrics count what the JSON log shows; holders; refused lock names the situation', async () => {
    const c = await Cluster.create({ hosts: 1, disks: [{ sizeMiB: 256 }], name: 'observe' });
    try {
      const h = c.host(1);
      const ctl = (args: string[]) => h.lvmlockctl(args, { binary: tsLvmlockctlPath() });
      await h.startDaemon({ kind: 'ts', args: ['-T', '--log-format', 'json', '-S', 'info', '--metrics-file', '/run/lvmlockd.prom', '--metrics-interval', '1'] });
      assert.equal((await h.lvm(['vgcreate', '--shared', '--lock-type', 'dlm', 'vgo', c.disks[0]!.path])).code, 0);
      assert.equal((await h.lvm(['lvcreate', '-an', '-n', 'lv1', '-L', '4M', 'vgo'])).code, 0);
      const ACTIVATIONS = 3;
      for (let i = 0; i < ACTIVATIONS; i++) {
        let r = await h.lvm(['lvchange', '-aey', 'vgo/lv1']);
        assert.equal(r.code, 0, r.stderr);
        r = await h.lvm(['lvchange', '-an', 'vgo/lv1']);
        assert.equal(r.code, 0, r.stderr);
      }

      const m = await ctl(['--metrics']);
      assert.equal(m.code, 0, m.stderr);
      const events = h.daemonLog().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.event === 'request');
      const logged = (op: string, mode: string) => events.filter((e) => e.op === op && e.mode === mode && e.result === 'ok').length;
      const lvEx = series(m.stdout, 'lvmlockd_requests_total', { op: 'lock_lv', lock_type: 'dlm', mode: 'ex', result: 'ok' });
      assert.equal(lvEx, ACTIVATIONS, m.stdout);
      assert.equal(logged('lock_lv', 'ex'), ACTIVATIONS);
      assert.equal(series(m.stdout, 'lvmlockd_requests_total', { op: 'lock_lv', lock_type: 'dlm', mode: 'un', result: 'ok' }), logged('lock_lv', 'un'));
      assert.equal(series(m.stdout, 'lvmlockd_requests_total', { op: 'lock_vg', lock_type: 'dlm', mode: 'sh', result: 'ok' }), logged('lock_vg', 'sh'));
      assert.equal(series(m.stdout, 'lvmlockd_request_duration_seconds_count', { op: 'lock_lv', lock_type: 'dlm', mode: 'ex', result: 'ok' }), ACTIVATIONS);
      assert.equal(series(m.stdout, 'lvmlockd_lockspaces', { lock_type: 'dlm', state: 'running' }), 2, 'lvm_global and lvm_vgo');
      assert.ok((series(m.stdout, 'lvmlockd_clients_connected', {}) ?? 0) >= 1);
      const ex = events.find((e) => e.op === 'lock_lv' && e.mode === 'ex')!;
      assert.equal(ex.cmd, 'lvchange');
      assert.equal(ex.lockspace, 'lvm_vgo');
      assert.equal(ex.resource, 'lv1');
      assert.equal(typeof ex.pid, 'number');

      // The same series in the metrics file (written every second).
      const file = h.hostPath('/run/lvmlockd.prom');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(series(fs.readFileSync(file, 'utf8'), 'lvmlockd_requests_total', { op: 'lock_lv', lock_type: 'dlm', mode: 'ex', result: 'ok' }), ACTIVATIONS);

      // Holders: lv1 active ex here.
      assert.equal((await h.lvm(['lvchange', '-aey', 'vgo/lv1'])).code, 0);
      const ht = await ctl(['--holders', 'vgo']);
      assert.equal(ht.code, 0, ht.stderr);
      assert.match(ht.stdout, /^VG vgo: lockspace lvm_vgo, lock type dlm, 1 lock held/m);
      const uuid = (await h.lvm(['lvs', '--noheadings', '-o', 'lv_uuid', 'vgo/lv1'])).stdout.trim();
      assert.match(ht.stdout, new RegExp(`^${uuid}\\s+lv\\s+ex\\s+`, 'm'));
      const hj = await ctl(['--holders', 'vgo', '--json']);
      const doc = JSON.parse(hj.stdout) as { locks: Array<{ resource: string; mode: string; holders: Array<{ local: boolean }> }> };
      assert.deepEqual(doc.locks.map((l) => [l.resource, l.mode, l.holders.map((x) => x.local)]), [[uuid, 'ex', [true]]]);
      const none = await ctl(['--holders', 'novg']);
      assert.equal(none.code, 234, none.stderr); // the daemon's -EINVAL (no lockspace for the VG), as an exit status
      assert.match(none.stderr, /refused the holders request \(-22\)/);
      assert.equal((await h.lvm(['lvchange', '-an', 'vgo/lv1'])).code, 0);

      // A refused LV lock is a warning naming the situation.
      assert.equal((await ctl(['--set-remote-lv-lock', 'vgo', '--lv-uuid', uuid, '--lock-mode', 'ex'])).code, 0);
      const refused = await h.lvm(['lvchange', '-aey', 'vgo/lv1']);
      assert.match(refused.stderr, /LV locked by other host/);
      const warn = h.daemonLog().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.level === 'warning' && typeof e.msg === 'string' && e.msg.includes('refused'));
      assert.ok(warn, 'no warning line for the refused lock');
      assert.match(String(warn.msg), /^LV vgo\/lv1 ex for lvchange\[\d+\] refused: held by another host/);
      assert.equal(warn.result, 'EAGAIN');
      assert.equal(series((await ctl(['--metrics'])).stdout, 'lvmlockd_requests_total', { op: 'lock_lv', lock_type: 'dlm', mode: 'ex', result: 'EAGAIN' }), 1);
    } finally {
      await c.destroy();
    }
  });
});
