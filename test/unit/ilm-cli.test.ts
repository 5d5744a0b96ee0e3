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

// LVM2's suite (aux.sh prepare_idm) runs `seagate_ilm -D 0 ...` and then, at
// once, `pgrep seagate_ilm`: propeller's forked child has that name from the
// start. Ours must be named, and listening, by the time the command returns.
test('without -D the command returns once the detached daemon listens under its own name', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { spawnSync } = await import('node:child_process');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ilm-detach-'));
  const runDir = path.join(tmp, 'run');
  const bin = path.join(tmp, 'seagate_ilm');
  fs.symlinkSync(path.resolve(__dirname, '..', '..', '..', 'bin', 'seagate_ilm'), bin);
  let pid = 0;
  try {
    const r = spawnSync(process.execPath, [bin, '-D', '0', '-l', '0', '-L', '7', '-E', '7', '-S', '0'], {
      env: { ...process.env, ILM_RUN_DIR: runDir, ILM_LOG_DIR: tmp }, encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(runDir, 'main.sock')), 'main.sock is there when the command returns');
    pid = Number(fs.readFileSync(path.join(runDir, 'main.pid'), 'utf8').trim());
    assert.ok(pid > 0 && pid !== r.pid, 'the pid file names the detached daemon');
    assert.equal(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'seagate_ilm', 'pgrep seagate_ilm finds it');
  } finally {
    if (pid > 0) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((res) => setTimeout(res, 50));
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
