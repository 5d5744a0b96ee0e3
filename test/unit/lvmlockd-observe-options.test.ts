// lvmlockd's own observability options: accepted values and refused ones.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from '../../src/cli/lvmlockd';
import { DaemonMetrics, writeMetricsFile } from '../../src/daemon/metrics';

test('--log-format, --metrics-file and --metrics-interval are parsed into the config', () => {
  const r = parseArgs(['-f', '--log-format', 'json', '--metrics-file', '/run/x.prom', '--metrics-interval', '5'], {});
  assert.equal(r.kind, 'run');
  if (r.kind === 'run') assert.deepEqual(r.config.observe, { logFormat: 'json', metricsFile: '/run/x.prom', metricsInterval: 5 });
  const d = parseArgs(['-f'], {});
  if (d.kind === 'run') assert.equal(d.config.observe, undefined);
});

test('bad values are refused with a message and exit 1', () => {
  for (const [args, msg] of [
    [['--log-format', 'xml'], /invalid log format 'xml' \(text or json\)/],
    [['--metrics-interval', '0'], /invalid metrics interval '0'/],
    [['--metrics-interval', 'soon'], /invalid metrics interval 'soon'/],
  ] as const) {
    const r = parseArgs([...args], {});
    assert.equal(r.kind, 'exit');
    if (r.kind === 'exit') {
      assert.equal(r.code, 1);
      assert.match(r.stderr, msg);
    }
  }
});

test('the metrics file is replaced whole; an unwritable path is one error line, not a crash', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockd-metrics-'));
  try {
    const m = new DaemonMetrics({ lockspaces: () => [], clientsConnected: () => 7, adoptedLocks: () => 0 });
    const errors: string[] = [];
    const file = path.join(dir, 'm.prom');
    const stop = writeMetricsFile(m, file, 1, (e) => errors.push(e));
    const bad = writeMetricsFile(m, path.join(dir, 'no', 'such', 'dir', 'm.prom'), 1, (e) => errors.push(e));
    await new Promise((r) => setTimeout(r, 1300));
    stop();
    bad();
    assert.match(fs.readFileSync(file, 'utf8'), /^lvmlockd_clients_connected 7$/m);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), []);
    assert.equal(errors.length, 1, 'the same failure is reported once');
    assert.match(errors[0]!, /cannot write metrics file .*no\/such\/dir\/m\.prom: ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
