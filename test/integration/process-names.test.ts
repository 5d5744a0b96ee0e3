// The programs in bin/ carry their C names where administrators and LVM2's
// test suite look for them: /proc/PID/comm, `ps -o comm`, `pgrep -x`,
// `killall` (LVM2's suite stops the daemon with `killall lvmlockd`), and the
// command line with its arguments in `ps -o args`.
//
// The daemon runs in a private pid namespace with its own /proc, so pgrep and
// killall there see only it, never another lvmlockd on the machine; ending
// the namespace's init ends everything in it, whatever happens (--kill-child
// ends that init when unshare itself is killed by the timeout).
//
// Needs `npm run build` first, root (unshare --pid) and procps/psmisc.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LVMLOCKD_BIN, REPO_ROOT, makeTempDir, removeDir } from '../helpers/daemon-process';

function missingTools(): string | null {
  for (const tool of ['unshare', 'pgrep', 'killall', 'ps']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (process.getuid?.() !== 0) return 'needs root for unshare --pid';
  return null;
}

const whyNot = missingTools();
if (whyNot) console.error(`SKIPPED process-names: ${whyNot}`);

describe('process names', { skip: whyNot ?? false }, () => {
  test('lvmlockd is found by comm, ps, pgrep -x and stopped by killall', () => {
    const dir = makeTempDir('lvmlockd-names-');
    try {
      const sock = path.join(dir, 's.sock');
      // One line per fact, "key=value", read back below.
      const script = `
        "${process.execPath}" "${LVMLOCKD_BIN}" -T -f -s "${sock}" -p "${dir}/pid" &
        d=$!
        i=0
        while [ ! -S "${sock}" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
        echo "pid=$d"
        echo "comm=$(cat /proc/$d/comm)"
        echo "pscomm=$(ps -o comm= -p $d)"
        echo "psargs=$(ps -o args= -p $d)"
        echo "pgrep=$(pgrep -x lvmlockd | tr '\\n' ' ')"
        echo "pgrepnode=$(pgrep -x node | tr '\\n' ' ')"
        killall lvmlockd; k=$?; echo "killall=$k"
        [ $k -eq 0 ] || kill $d
        wait $d; echo "exit=$?"
      `;
      const r = spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', script], {
        encoding: 'utf8', timeout: 30000, env: { ...process.env, LVM_LVMLOCKD_SOCKET: '', LVM_LVMLOCKD_PIDFILE: '' },
      });
      assert.equal(r.status, 0, `namespace script failed: ${r.stderr}`);
      const facts = Object.fromEntries(r.stdout.trim().split('\n').map((l) => {
        const i = l.indexOf('=');
        return [l.slice(0, i), l.slice(i + 1).trim()];
      }));
      assert.equal(facts.comm, 'lvmlockd');
      assert.equal(facts.pscomm, 'lvmlockd');
      assert.equal(facts.psargs, `lvmlockd -T -f -s ${sock} -p ${dir}/pid`);
      assert.equal(facts.pgrep, facts.pid, 'pgrep -x lvmlockd names exactly the daemon');
      assert.equal(facts.pgrepnode, '', 'no process is left called node');
      assert.equal(facts.killall, '0');
      assert.equal(facts.exit, '0', 'killall sends SIGTERM, which the daemon takes as a clean stop');
      assert.ok(!fs.existsSync(sock), 'the daemon removed its socket on the way out');
    } finally {
      removeDir(dir);
    }
  });

  // The CLIs are short-lived: a preloaded hook reports the comm and command
  // line they have while running (read at exit, after main has run).
  for (const [name, args] of [['lvmlockctl', ['--help']], ['leasectl', ['direct']]] as const) {
    test(`${name} names itself ${name}`, () => {
      const dir = makeTempDir('lvmlockd-names-');
      try {
        const hook = path.join(dir, 'hook.js');
        fs.writeFileSync(hook, `process.on('exit', () => {
          const fs = require('fs');
          fs.writeSync(2, 'COMM=' + fs.readFileSync('/proc/self/comm', 'utf8').trim() + '\\n');
          fs.writeSync(2, 'ARGS=' + fs.readFileSync('/proc/self/cmdline', 'utf8').replace(/\\0+$/, '').split('\\0').join(' ') + '\\n');
        });\n`);
        const r = spawnSync(process.execPath, ['--require', hook, path.join(REPO_ROOT, 'bin', name), ...args], { encoding: 'utf8', timeout: 30000 });
        assert.match(r.stderr, new RegExp(`^COMM=${name}$`, 'm'), r.stderr);
        assert.match(r.stderr, new RegExp(`^ARGS=${name} ${args.join(' ')}$`, 'm'), r.stderr);
      } finally {
        removeDir(dir);
      }
    });
  }
});
