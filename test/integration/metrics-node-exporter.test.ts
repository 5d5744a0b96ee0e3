// Metrics scraped by a real client: Debian's prometheus-node-exporter with its
// textfile collector reads the file `lvmlockd --metrics-file` writes, and an
// HTTP scrape of the exporter returns our series with counts equal to the
// requests a scripted workload made.
//
// The exporter is unpacked from the .deb that scripts/setup.sh downloads (never
// installed), and listens on 127.0.0.1 inside a private network namespace.
// Needs `npm run build`, root (unshare --net).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir, removeDir, startTestDaemon } from '../helpers/daemon-process';
import { RawClient, lvmRequest, opResult } from '../helpers/raw-client';

const DEB_DIR = '/var/cache/lvmlockd-ts-pkgs';
const deb = fs.existsSync(DEB_DIR) ? fs.readdirSync(DEB_DIR).find((f) => /^prometheus-node-exporter_.*\.deb$/.test(f)) : undefined;
const whyNot = process.getuid?.() !== 0 ? 'needs root (unshare --net)'
  : !deb ? `no prometheus-node-exporter .deb in ${DEB_DIR} (scripts/setup.sh downloads it)` : null;
if (whyNot) console.error(`SKIPPED metrics-node-exporter: ${whyNot}`);

/** One series' value, whatever the label order the exporter prints. */
function series(text: string, name: string, labels: Record<string, string>): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return null;
}

const VG = 'vgm';
const lockLv = (mode: string) => lvmRequest('lock_lv', [['cmd', 'workload'], ['pid', process.pid], ['mode', mode], ['opts', 'none'],
  ['vg_name', VG], ['lv_name', 'lv1'], ['lv_uuid', 'Metric-sLVx-xxxx-xxxx-xxxx-xxxx-xxxxxx'], ['vg_lock_type', 'dlm'],
  ['vg_lock_args', '1.0.0:test'], ['lv_lock_args', 'dlm']]);

describe('node_exporter textfile scrape', { skip: whyNot ?? false }, () => {
  test('the exporter serves our series with the workload\'s counts', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('lvmlockd-nodeexp-');
    const textDir = path.join(dir, 'textfile');
    fs.mkdirSync(textDir);
    const d = await startTestDaemon(dir, ['--metrics-file', path.join(textDir, 'lvmlockd.prom'), '--metrics-interval', '1']);
    try {
      const c = await RawClient.connect(d.socketPath);
      assert.equal(opResult(await c.request(lvmRequest('start_vg', [['pid', process.pid], ['vg_name', VG], ['vg_lock_type', 'dlm'],
        ['vg_lock_args', '1.0.0:test'], ['vg_uuid', 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'], ['version', 1], ['host_id', 0], ['opts', 'none']]))), 0);
      const N = 25;
      for (let i = 0; i < N; i++) {
        assert.equal(opResult(await c.request(lockLv('ex'))), 0);
        assert.equal(opResult(await c.request(lockLv('un'))), 0);
      }
      c.destroy();
      await new Promise((r) => setTimeout(r, 1500)); // one more --metrics-interval

      const unpacked = path.join(dir, 'exporter');
      const x = spawnSync('dpkg-deb', ['-x', path.join(DEB_DIR, deb!), unpacked], { encoding: 'utf8' });
      assert.equal(x.status, 0, x.stderr);
      const exporter = path.join(unpacked, 'usr', 'bin', 'prometheus-node-exporter');
      const scrape = `
        ip link set lo up
        "${exporter}" --web.listen-address=127.0.0.1:19100 --collector.disable-defaults --collector.textfile \
          --collector.textfile.directory="${textDir}" >"${dir}/exporter.log" 2>&1 &
        for i in $(seq 100); do
          "${process.execPath}" -e 'require("http").get("http://127.0.0.1:19100/metrics", (r) => { let b = ""; r.on("data", (d) => b += d); r.on("end", () => { process.stdout.write(b); process.exit(0); }); }).on("error", () => process.exit(1))' && exit 0
          sleep 0.1
        done
        exit 1`;
      const r = spawnSync('unshare', ['--net', '--pid', '--fork', '--kill-child', 'sh', '-c', scrape], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `scrape failed: ${r.stderr} ${fs.existsSync(path.join(dir, 'exporter.log')) ? fs.readFileSync(path.join(dir, 'exporter.log'), 'utf8') : ''}`);
      const text = r.stdout;
      assert.equal(series(text, 'node_textfile_scrape_error', {}) ?? Number(/^node_textfile_scrape_error (\d+)/m.exec(text)?.[1]), 0, 'the exporter could not parse our file');
      const lv = (mode: string) => series(text, 'lvmlockd_requests_total', { op: 'lock_lv', lock_type: 'dlm', mode, result: 'ok' });
      assert.equal(lv('ex'), N, text.split('\n').filter((l) => l.startsWith('lvmlockd_requests')).join('\n'));
      assert.equal(lv('un'), N);
      assert.equal(series(text, 'lvmlockd_request_duration_seconds_count', { op: 'lock_lv', lock_type: 'dlm', mode: 'ex', result: 'ok' }), N);
      assert.equal(series(text, 'lvmlockd_requests_total', { op: 'start_vg', lock_type: 'dlm', mode: '', result: 'ok' }) ?? series(text, 'lvmlockd_requests_total', { op: 'start_vg', lock_type: 'dlm', result: 'ok' }), 1);
      assert.equal(series(text, 'lvmlockd_lockspaces', { lock_type: 'dlm', state: 'running' }), 2);
    } finally {
      await d.kill();
      removeDir(dir);
    }
  });
});
