// The daemon's syslog lines reach /dev/log as syslog(3) sends them: facility
// daemon, ident "lvmlockd", only lines at or above -S, JSON with
// --log-format json. The daemon runs in a private mount namespace whose /dev
// is a tmpfs with the few device nodes Node needs and /dev/log pointing at
// this test's datagram socket (the machine's own /dev/log is never touched).
//
// Needs `npm run build`, root (unshare --mount).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { LVMLOCKD_BIN, makeTempDir, removeDir } from '../helpers/daemon-process';
import { RawClient } from '../helpers/raw-client';
import { AF_UNIX, SOCK_DGRAM, SOCK_CLOEXEC, MSG_DONTWAIT, sysSocket, sysBind, sysRecv, sysClose, pollInAsync } from '../../src/util/libc';
import { notifyAddress } from '../../src/daemon/sd-notify';

const whyNot = process.getuid?.() !== 0 ? 'needs root for unshare --mount'
  : spawnSync('sh', ['-c', 'command -v unshare']).status !== 0 ? 'unshare is not installed' : null;
if (whyNot) console.error(`SKIPPED syslog: ${whyNot}`);

/** Starts bin/lvmlockd -T -f with /dev/log → `logSock`; resolves once it answers hello. */
async function startWithDevLog(dir: string, logSock: string, args: string[]) {
  const sock = path.join(dir, 's.sock');
  const script = `set -e
    mount --make-rprivate /
    mkdir -p "${dir}/hostdev"
    mount --rbind /dev "${dir}/hostdev"
    mount -t tmpfs tmpfs /dev
    for n in null zero urandom random full; do touch /dev/$n; mount --bind "${dir}/hostdev/$n" /dev/$n; done
    ln -s /proc/self/fd /dev/fd
    ln -s "${logSock}" /dev/log
    exec "${process.execPath}" "${LVMLOCKD_BIN}" -T -f -s "${sock}" -p "${dir}/pid" ${args.join(' ')}`;
  const proc = spawn('unshare', ['--mount', '--kill-child', 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVM_LVMLOCKD_SOCKET: '', LVM_LVMLOCKD_PIDFILE: '' },
  });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    try {
      const c = await RawClient.connect(sock, 500);
      await c.request('request = "hello"\n', 1000);
      c.destroy();
      return proc;
    } catch { await new Promise((r) => setTimeout(r, 50)); }
  }
  proc.kill('SIGKILL');
  throw new Error(`daemon did not start: ${err}`);
}

async function receiveAll(fd: number, quietMs: number): Promise<string[]> {
  const out: string[] = [];
  const buf = Buffer.alloc(8192);
  for (;;) {
    const r = sysRecv(fd, buf, MSG_DONTWAIT);
    if (r.rv >= 0) { out.push(buf.toString('utf8', 0, r.rv)); continue; }
    if ((await pollInAsync(fd, quietMs)) <= 0) return out;
  }
}

describe('syslog through /dev/log', { skip: whyNot ?? false }, () => {
  for (const [name, args, check] of [
    ['-S debug: debug lines as daemon.debug with ident lvmlockd', ['-S', 'debug'], (msgs: string[]) => {
      assert.ok(msgs.some((m) => /^<31>\w{3} [ \d]\d \d\d:\d\d:\d\d lvmlockd: lvmlockd started \(test mode\)$/.test(m)), msgs.join('\n'));
    }],
    ['default -S warning: no debug lines', [], (msgs: string[]) => {
      assert.deepEqual(msgs, []);
    }],
    ['--log-format json: the message is a JSON object', ['-S', 'debug', '--log-format', 'json'], (msgs: string[]) => {
      const started = msgs.map((m) => m.slice(m.indexOf('lvmlockd: ') + 10)).map((t) => JSON.parse(t) as { level: string; msg: string })
        .find((o) => o.msg === 'lvmlockd started (test mode)');
      assert.equal(started?.level, 'debug');
    }],
  ] as const) {
    test(name, async () => {
      const dir = makeTempDir('lvmlockd-syslog-');
      const logSock = path.join(dir, 'log.sock');
      const s = sysSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      assert.equal(sysBind(s.rv, notifyAddress(logSock) as Buffer).rv, 0);
      let proc: ReturnType<typeof spawn> | null = null;
      try {
        proc = await startWithDevLog(dir, logSock, [...args]);
        check(await receiveAll(s.rv, 500));
      } finally {
        if (proc && proc.exitCode === null) {
          const gone = new Promise((r) => proc!.once('exit', r));
          proc.kill('SIGKILL');
          await gone;
        }
        sysClose(s.rv);
        removeDir(dir);
      }
    });
  }
});
