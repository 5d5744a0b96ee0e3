// The ILM daemon's command line (src/cli/ilm.ts), as propeller's main.c reads
// it: "-X <int>" pairs only, --version/-V alone, its messages on bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIlmArgs } from '../../src/cli/ilm';

test('defaults: detach, file and syslog at LOG_WARNING, stderr at LOG_DEBUG', () => {
  assert.deepEqual(parseIlmArgs([]), { debug: 0, filePriorityMax: 4, fileUtc: false, syslogPriorityMax: 4, stderrPriorityMax: 7, mlock: 0, replay: 0 });
});

test('every option takes an integer', () => {
  assert.deepEqual(parseIlmArgs(['-D', '1', '-L', '7', '-U', '1', '-S', '3', '-E', '6', '-l', '1', '-R', '5']),
    { debug: 1, filePriorityMax: 7, fileUtc: true, syslogPriorityMax: 3, stderrPriorityMax: 6, mlock: 1, replay: 5 });
  assert.equal((parseIlmArgs(['-D', 'x']) as { debug: number }).debug, 0, 'atoi of junk is 0');
});

test('--version and -V only alone', () => {
  assert.deepEqual(parseIlmArgs(['--version']), { version: true });
  assert.deepEqual(parseIlmArgs(['-V']), { version: true });
  assert.deepEqual(parseIlmArgs(['-D', '1', '-V']), { error: "Option 'V' requires arg" });
});

test('bad input: propeller\'s messages', () => {
  assert.deepEqual(parseIlmArgs(['-X', '1']), { error: "Unknown Option 'X'" });
  assert.deepEqual(parseIlmArgs(['--debug', '1']), { error: 'Unknown option --debug\n' });
  assert.deepEqual(parseIlmArgs(['D', '1']), { error: 'Unknown option D\n' });
  assert.deepEqual(parseIlmArgs(['-D']), { error: "Option 'D' requires arg" });
});
