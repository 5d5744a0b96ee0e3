// The lvmlockd command line loads the daemon only where the daemon runs: the
// daemonizing parent (no -f) parses the options and waits for its child, so it
// must not load the daemon's modules too (a start took twice as long on slow
// CPUs: LVM2's test suite starts lvmlockd in every test of its --test flavours).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const cli = path.resolve(__dirname, '../../src/cli/lvmlockd.js');
const server = path.resolve(__dirname, '../../src/daemon/server.js');

function loadedAfter(code: string): string[] {
  const out = execFileSync(process.execPath, ['-e', `
    const cli = require(${JSON.stringify(cli)});
    ${code}
    process.stdout.write(JSON.stringify(Object.keys(require.cache)));
  `], { encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

test('loading the command line and parsing options does not load the daemon', () => {
  const loaded = loadedAfter(`cli.parseArgs(['--test', '-g', 'dlm'], {});`);
  assert.ok(loaded.includes(cli), 'the command line module was loaded');
  assert.ok(!loaded.includes(server), 'daemon/server.js was loaded by the command line alone');
  assert.ok(!loaded.some((f) => f.includes(`${path.sep}prom-client${path.sep}`)), 'prom-client was loaded by the command line alone');
  assert.ok(loaded.length < 20, `the command line alone loaded ${loaded.length} modules`);
});

test('the daemon itself loads prom-client only when the metrics are first read', () => {
  const metrics = path.resolve(__dirname, '../../src/daemon/metrics.js');
  const out = execFileSync(process.execPath, ['-e', `
    require(${JSON.stringify(server)});
    const hasProm = () => Object.keys(require.cache).some((f) => f.includes(${JSON.stringify(`${path.sep}prom-client${path.sep}`)}));
    const before = hasProm();
    const { DaemonMetrics } = require(${JSON.stringify(metrics)});
    const m = new DaemonMetrics({ lockspaces: () => [], clientsConnected: () => 0, adoptedLocks: () => 0 });
    const afterNew = hasProm();
    m.text().then((text) => {
      process.stdout.write(JSON.stringify({ before, afterNew, after: hasProm(), text }));
    });
  `], { encoding: 'utf8' });
  const r = JSON.parse(out) as { before: boolean; afterNew: boolean; after: boolean; text: string };
  assert.equal(r.before, false, 'daemon/server.js loaded prom-client at start');
  assert.equal(r.afterNew, false, 'making the metrics object loaded prom-client');
  assert.equal(r.after, true, 'reading the metrics loaded prom-client');
  assert.match(r.text, /^# HELP lvmlockd_clients_connected /m);
});
