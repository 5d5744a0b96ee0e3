#!/usr/bin/env node
// Prints the compiled test files `npm test` runs (every dist/test/**/*.test.js
// except the VM tier), longest first, so that `node --test
// --test-concurrency=2` keeps both lanes busy to the end (a long file started
// last would run alone). Files not listed in SLOW keep name order after them.
// Usage: node scripts/test-files.js [dist/test] [--exclude-dir vm]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// Slowest first (seconds measured on 2 loaded cores, 2026-11-25). Approximate
// is fine: only the order matters. A missing entry only costs balance.
const SLOW = [
  'unit/sim-quick.test.js', // CPU-bound, 2 workers: overlaps with the lease waits below
  'integration/sanlock-failover.test.js', // ~80 s waiting for host_dead
  'integration/leases-sanlock.test.js', // ~80 s, idem
  'integration/sanlock-race.test.js',
  'integration/sanlock-compare.test.js',
  'integration/compat-test-mode.test.js',
  'integration/sanlock-ours.test.js',
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

const args = process.argv.slice(2);
const root = args.find((a) => !a.startsWith('--')) ?? path.join('dist', 'test');
const excludeDirs = new Set(['vm']);

function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!(dir === root && excludeDirs.has(e.name))) walk(p, out);
    } else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = walk(root, []).sort();
const rank = (f) => {
  const i = SLOW.indexOf(path.relative(root, f).split(path.sep).join('/'));
  return i < 0 ? SLOW.length : i;
};
files.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
process.stdout.write(files.join('\n') + '\n');
