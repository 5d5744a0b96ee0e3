#!/usr/bin/env node
// `npm test`: node's test runner over scripts/test-files.js, TEST_CONCURRENCY
// files at a time (default 2), in that order. `node --test a b c` would sort
// the files by name; run() keeps the order given. Output as `node --test`:
// spec on a terminal, TAP otherwise. Exit code 1 when a test failed.
// Usage: node scripts/run-tests.js [file.test.js ...]   (default: every file)
'use strict';
const path = require('node:path');
const { run } = require('node:test');
const reporters = require('node:test/reporters');
const { testFiles } = require('./test-files');

const files = process.argv.length > 2 ? process.argv.slice(2) : testFiles(path.join('dist', 'test'));
const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write(`TEST_CONCURRENCY must be a positive integer, not ${process.env.TEST_CONCURRENCY}\n`);
  process.exit(2);
}

const stream = run({ files: files.map((f) => path.resolve(f)), concurrency });
stream.on('test:fail', (data) => {
  if (!data.todo && !data.skip) process.exitCode = 1;
});
const reporter = process.stdout.isTTY ? new reporters.spec() : reporters.tap;
stream.compose(reporter).pipe(process.stdout);
