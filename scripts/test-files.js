#!/usr/bin/env node
// The compiled test files `npm test` runs (every dist/test/**/*.test.js except
// the VM tier), longest first, so that running two at a time keeps both lanes
// busy to the end (a long file started last would run alone). Files not
// listed in SLOW follow in name order. Printed one per line when run
// directly; scripts/run-tests.js runs them in this order (`node --test`
// itself would sort them by name).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// Slowest first (measured on 2 loaded cores, 2026-11-25). Approximate is
// fine: only the order matters, and a missing entry only costs balance.
const SLOW = [
  'integration/package.test.js', // first: ~3.5 min, mostly lease waits in systemd containers
  'unit/sim-quick.test.js', // CPU-bound, two workers: beside the lease waits of the next two
  'integration/sanlock-failover.test.js', // ~90 s, waits for host_dead
  'integration/leases-sanlock.test.js', // ~85 s, idem
  'integration/sanlock-adopt.test.js', // ~90 s, a kill -9 and host_dead
  'integration/idm-lvm.test.js', // ~75 s: lock retries, a host crash's countdown
  'integration/sanlock-race.test.js',
  'integration/sanlock-compare.test.js',
  'integration/compat-test-mode.test.js',
  'integration/sanlock-ours.test.js',
  'integration/ilm-daemon.test.js', // ~37 s: 5 s majority deadlines
  'integration/bench-idm-drive-loss.test.js', // ~15 s: an IDM bench run cut short by a killed drive
  'integration/holders-sanlock.test.js', // ~20 s
  'integration/fuzz-socket.test.js',
  'integration/sanlock-mixed.test.js',
  'integration/compat-dlm-testmode.test.js',
  'integration/harness-c-sanlock.test.js',
  'integration/daemon-robustness.test.js',
  'integration/lvmlockctl-c-daemon.test.js',
  'unit/core-property.test.js',
  'integration/harness-c-reference.test.js',
  'integration/harness-self.test.js',
];
const EXCLUDE_DIRS = ['vm'];

function testFiles(root = path.join('dist', 'test')) {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!(dir === root && EXCLUDE_DIRS.includes(e.name))) walk(p);
      } else if (e.name.endsWith('.test.js')) out.push(p);
    }
  };
  walk(root);
  const rank = (f) => {
    const i = SLOW.indexOf(path.relative(root, f).split(path.sep).join('/'));
    return i < 0 ? SLOW.length : i;
  };
  return out.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

module.exports = { testFiles, SLOW };

if (require.main === module) process.stdout.write(testFiles(process.argv[2]).join('\n') + '\n');
