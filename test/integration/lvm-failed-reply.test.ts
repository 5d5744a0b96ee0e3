// What real lvm commands do when lvmlockd answers a request with libdaemon's
// error reply (`response = "failed"`, `reason = ...`), which our daemon sends
// for a frame it cannot parse or a request it does not know (an lvm newer than
// the daemon). They must fail with a message, or go on without the lock as
// they do without lvmlockd, and never hang.
//
// A stand-in daemon (this file run with `--fake-daemon <socket>`) answers hello
// and gives every other request the "failed" reply, inside a private mount
// namespace (tmpfs on /run, so /run/lvm/lvmlockd.socket and /run/lvmlockd.pid
// are the compiled-in paths lvm looks at). Runs the system's lvm (2.03.16 on
// Debian 12) and, when LVM_TS_EXTRA_LVM names another lvm binary (or a wrapper
// that runs one, e.g. Debian 13's 2.03.31), that one too.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';

function fakeDaemonMain(sock: string): void {
  fs.mkdirSync(path.dirname(sock), { recursive: true });
  net.createServer((s) => {
    let buf = '';
    s.on('error', () => undefined);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let at = buf.indexOf('\n##\n'); at >= 0; at = buf.indexOf('\n##\n')) {
        const name = /request\s*=\s*"([^"]*)"/.exec(buf.slice(0, at))?.[1] ?? '';
        buf = buf.slice(at + 4);
        s.write(name === 'hello'
          ? 'response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 1\n\n##\n'
          : `response = "failed"\nreason = "unknown request ${name.replace(/[^a-z_]/g, '?')}"\n\n##\n`);
      }
    });
  }).listen(sock, () => fs.writeFileSync('/run/lvmlockd.pid', `${process.pid}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

/** stderr: the command's output, stdout and stderr together. */
interface Out { code: number | null; stderr: string; ms: number }

/** Runs each command in one private mount namespace with the stand-in daemon. */
function runAll(lvm: string, cmds: string[][]): Promise<Out[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockd-failed-reply-'));
  fs.writeFileSync(path.join(dir, 'lvm.conf'),
    'global {\n use_lvmlockd = 1\n}\ndevices {\n filter = [ "r|.*|" ]\n}\nactivation {\n udev_sync = 0\n udev_rules = 0\n}\n');
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  let script = 'set -u\nmount -t tmpfs tmpfs /run && mkdir -p /run/lvm /run/lock/lvm || exit 90\n' +
    `${q(process.execPath)} ${q(__filename)} --fake-daemon /run/lvm/lvmlockd.socket & FAKE=$!\n` +
    'for i in $(seq 100); do [ -S /run/lvm/lvmlockd.socket ] && [ -s /run/lvmlockd.pid ] && break; sleep 0.05; done\n';
  cmds.forEach((c, i) => {
    script += `t0=$(date +%s%N); timeout -s KILL 30 ${q(lvm)} ${c.map(q).join(' ')} >${q(path.join(dir, `err${i}`))} 2>&1; ` +
      `echo "$? $(( ($(date +%s%N) - t0) / 1000000 ))" > ${q(path.join(dir, `rc${i}`))}\n`;
  });
  script += 'kill $FAKE\n';
  return new Promise((resolve, reject) => {
    const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LVM_SYSTEM_DIR: dir, LVM_SUPPRESS_FD_WARNINGS: '1', LC_ALL: 'C' },
    });
    let err = '';
    p.stderr!.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`namespace script exited ${code}: ${err}`);
        resolve(cmds.map((_, i) => {
          const [rc, ms] = fs.readFileSync(path.join(dir, `rc${i}`), 'utf8').trim().split(' ').map(Number);
          return { code: rc!, ms: ms!, stderr: fs.readFileSync(path.join(dir, `err${i}`), 'utf8') };
        }));
      } catch (e) {
        reject(e);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

if (process.argv[2] === '--fake-daemon') {
  fakeDaemonMain(process.argv[3]!);
} else {
  const lvms: Array<[string, string]> = [['system lvm', 'lvm']];
  if (process.env.LVM_TS_EXTRA_LVM) lvms.push([`LVM_TS_EXTRA_LVM (${process.env.LVM_TS_EXTRA_LVM})`, process.env.LVM_TS_EXTRA_LVM]);
  for (const [what, lvm] of lvms) {
    describe(`${what} on a "failed" reply`, () => {
      test('reads go on without the lock, writes and activation fail with a message; nothing hangs', async () => {
        const version = await runAll(lvm, [['version']]);
        const [vgs, vgcreate, lvchange, vgchange] = await runAll(lvm, [
          ['vgs'],
          ['vgcreate', '--shared', '--lock-type', 'dlm', 'vgx', '/dev/nonexistent-pv'],
          ['lvchange', '-aey', 'vgx/lv1'],
          ['vgchange', '--lock-start', 'vgx'],
        ]);
        const tag = `${what} ${/LVM version:\s*(\S+)/.exec(version[0]!.stderr)?.[1] ?? ''}`;
        for (const o of [vgs!, vgcreate!, lvchange!, vgchange!]) assert.ok(o.ms < 20000, `${tag}: took ${o.ms} ms`);
        // lvm 2.03.16 prints "lockd_result bad response", 2.03.31 "lockd lock_gl result: bad response".
        const bad = /lockd[_ ].*bad response/;
        assert.equal(vgs!.code, 0, `${tag} vgs: ${vgs!.stderr}`);
        assert.match(vgs!.stderr, bad, tag);
        assert.match(vgs!.stderr, /Reading without shared global lock/, tag);
        assert.equal(vgcreate!.code, 5, `${tag} vgcreate: ${vgcreate!.stderr}`);
        assert.match(vgcreate!.stderr, bad, tag);
        assert.match(vgcreate!.stderr, /Global lock failed: check that lvmlockd is running/, tag);
        assert.notEqual(lvchange!.code, 0, `${tag} lvchange: ${lvchange!.stderr}`);
        assert.notEqual(vgchange!.code, 0, `${tag} vgchange: ${vgchange!.stderr}`);
        process.stdout.write(`# ${tag}: vgs rc ${vgs!.code}, vgcreate rc ${vgcreate!.code}, lvchange rc ${lvchange!.code}, vgchange rc ${vgchange!.code}\n` +
          [vgs, vgcreate, lvchange, vgchange].map((o, i) => `# ${tag} ${['vgs', 'vgcreate', 'lvchange', 'vgchange'][i]}: ${o!.stderr.trim().replace(/\n\s*/g, ' | ')}\n`).join(''));
      });
    });
  }
}
