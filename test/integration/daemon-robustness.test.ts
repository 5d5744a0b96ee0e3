// Robustness of the real daemon process: `bin/lvmlockd -T -f` on a private
// socket, hit with malformed, hostile and heavy traffic over raw connections.
// A persistent LV lock taken at the start must survive all of it, and the
// daemon must keep answering. Also: pid-file locking, SIGTERM and options.
//
// Needs `npm run build` first (it runs dist/ through bin/lvmlockd).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { RawClient, TERM, lvmRequest, opResult } from '../helpers/raw-client';
import { spawn, spawnSync } from 'node:child_process';
import { DaemonProcess, LVMLOCKD_BIN, makeTempDir, removeDir, runLvmlockd, startTestDaemon } from '../helpers/daemon-process';

const HELLO_REPLY = 'response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 1\n';
const VG = 'vg1';
const LV_PERSIST = 'Pers1s-tent-LVAA-AAAA-AAAA-AAAA-AAAAAA';
const LV_VANISH = 'Vanish-ingC-lien-tLVx-xxxx-xxxx-xxxxxx';
const LV_QUEUE = 'Queued-Clie-ntLV-yyyy-yyyy-yyyy-yyyyyy';
/** How long to wait to conclude that no reply is coming. */
const NO_REPLY_MS = 400;

function lockLv(uuid: string, mode: string, opts = 'none', lvName = 'lv1'): string {
  return lvmRequest('lock_lv', [['cmd', 'lvchange'], ['pid', process.pid], ['mode', mode], ['opts', opts],
    ['vg_name', VG], ['lv_name', lvName], ['lv_uuid', uuid], ['vg_lock_type', 'dlm'],
    ['vg_lock_args', '1.0.0:test'], ['lv_lock_args', 'dlm']]);
}

function lockVg(vgName: string, mode: string): string {
  return lvmRequest('lock_vg', [['cmd', 'vgs'], ['pid', process.pid], ['mode', mode], ['opts', 'none'],
    ['vg_name', vgName], ['vg_lock_type', 'none'], ['vg_lock_args', 'none']]);
}

describe('lvmlockd -T robustness over the socket', () => {
  let dir = '';
  let d: DaemonProcess | null = null;
  const clients: RawClient[] = [];
  const open = async (): Promise<RawClient> => {
    const c = await RawClient.connect(d!.socketPath);
    clients.push(c);
    return c;
  };
  /** A fresh connection that must still get the exact hello reply. */
  const assertAlive = async (what: string): Promise<void> => {
    assert.ok(d!.alive, `daemon died after ${what}: ${d!.stderr}`);
    const c = await open();
    assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY, `no hello after ${what}`);
    c.destroy();
  };

  before(async () => {
    dir = makeTempDir();
    d = await startTestDaemon(dir);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    if (d) await d.kill();
    if (dir) removeDir(dir);
  });

  test('setup: start a dlm VG and take a persistent ex LV lock, then disconnect', async () => {
    const c = await open();
    assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY);
    const s = await c.request(lvmRequest('start_vg', [['pid', process.pid], ['vg_name', VG], ['vg_lock_type', 'dlm'],
      ['vg_lock_args', '1.0.0:test'], ['vg_uuid', 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'], ['version', 1], ['host_id', 0], ['opts', 'none']]));
    assert.equal(opResult(s), 0, String(s));
    assert.equal(opResult(await c.request(lvmRequest('start_wait', [['pid', process.pid]]))), 0);
    const l = await c.request(lockLv(LV_PERSIST, 'ex', 'persistent'));
    assert.equal(l, 'response = "OK"\nop = 7\nlock_type = "dlm"\nop_result = 0\nlm_result = 0\nresult_flags = "none"\n');
    c.destroy();
  });

  test('malformed frames get libdaemon\'s "failed" reply and leave the connection usable', async () => {
    const cases: Array<[string, Buffer]> = [
      ['garbage text', Buffer.from('this is not a config tree }}}{{{ = = =\n')],
      ['unterminated string', Buffer.from('request = "frobnicate\n')],
      ['unterminated array', Buffer.from('request = ["hello", \n')],
      ['binary bytes', Buffer.concat([crypto.randomBytes(2048).map((b) => (b === 0x0a ? 0x0b : b)), Buffer.from('\n')])],
      ['NUL bytes', Buffer.from('request = "hel\0lo"\0\0\n')],
      ['bad number', Buffer.from('request = "lock_vg"\nversion = 99999999999999999999999\n')],
      ['empty body', Buffer.from('\n')],
      ['deep nesting', Buffer.from('a = ' + '['.repeat(100000) + ']'.repeat(100000) + '\n')],
    ];
    const reasons: Record<string, RegExp> = {
      'unterminated string': /^unknown request frobnicate$/,
      'empty body': /^no request name$/,
      'bad number': /^unparsable request$/,
      'garbage text': /^unparsable request$/,
      'deep nesting': /^unparsable request$/,
    };
    for (const [what, body] of cases) {
      const c = await open();
      await c.write(Buffer.concat([body, Buffer.from(TERM)]));
      const r = await c.next(2000);
      assert.ok(r !== null, `${what}: no reply`);
      const m = /^response = "failed"\nreason = "([^"\n]*)"\n$/.exec(r);
      assert.ok(m, `${what}: not a failed reply: ${r}`);
      if (reasons[what]) assert.match(m[1]!, reasons[what]!, what);
      assert.equal(c.closed, false, `${what}: connection closed`);
      assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY, `${what}: hello afterwards`);
      c.destroy();
    }
    // libdm ends an unclosed quote at the text's last character: lvmlockd answers this one.
    const u = await open();
    assert.equal(await u.request('request = "hello\n'), HELLO_REPLY);
    assert.equal(await u.request("request = 'hello\n"), HELLO_REPLY);
    assert.equal(await u.request('request = hello\n'), HELLO_REPLY);
    u.destroy();
    // Bytes without any terminator, then the client goes away.
    const c = await open();
    await c.write(crypto.randomBytes(100000));
    c.destroy();
    await assertAlive('malformed frames');
  });

  test('unknown request names get a "failed" reply naming them; a following hello on the same connection works', async () => {
    const c = await open();
    const cases: Array<[string, string]> = [
      ['frobnicate', 'unknown request frobnicate'], ['', 'empty request name'], ['HELLO', 'unknown request HELLO'],
      ['lock_lv_extra', 'unknown request lock_lv_extra'], ['x'.repeat(10000), `unknown request ${'x'.repeat(64)}...`],
      ['../../etc/passwd', 'unknown request ..?..?etc?passwd'],
    ];
    for (const [name, reason] of cases) {
      await c.sendFrame(`request = "${name}"\n`);
      assert.equal(await c.next(2000), `response = "failed"\nreason = "${reason}"\n`, `reply to bad request name "${name.slice(0, 20)}"`);
    }
    await c.sendFrame('no_request_key = 1\n');
    assert.equal(await c.next(2000), 'response = "failed"\nreason = "no request name"\n');
    assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY);
    assert.equal(c.buffered, 0, 'late extra replies');
    c.destroy();
  });

  test('over-long names and invalid characters → clear error reply, op_result -22', async () => {
    const c = await open();
    const bad = [
      lockVg('x'.repeat(300), 'sh'),
      lockVg('x'.repeat(100000), 'sh'),
      lockVg('bad name', 'sh'),
      lockVg('../../etc', 'sh'),
      lockVg('vg\u00e9', 'sh'),
      lockVg('vg\\"quote', 'sh'),
      lockLv('u'.repeat(500), 'ex'),
      lockLv('uuid with spaces', 'ex'),
      lockLv(LV_VANISH, 'ex', 'none', 'n'.repeat(1000)),
      lockLv(LV_VANISH, 'ex', 'none', 'lv/with/slash'),
      lvmRequest('start_vg', [['pid', 1], ['vg_name', 'y'.repeat(64)], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test']]),
      lvmRequest('start_vg', [['pid', 1], ['vg_name', 'vg2'], ['vg_lock_type', 'dlm'], ['vg_lock_args', 'a b c']]),
      lvmRequest('init_vg', [['pid', 1], ['vg_name', 'vg2'], ['vg_lock_type', 'dlm'], ['vg_lock_args', 'z'.repeat(1000)]]),
    ];
    for (const req of bad) {
      const r = await c.request(req);
      assert.ok(r !== null, `no reply to ${req.slice(0, 60)}`);
      assert.equal(opResult(r), -22, `${req.slice(0, 60)} → ${r}`);
      assert.match(r, /^response = "OK"\nop = \d+\n/);
    }
    c.destroy();
  });

  test('missing fields → -22 (or the documented default), never silence', async () => {
    const c = await open();
    const cases: Array<[string, number]> = [
      [lvmRequest('lock_lv', [['pid', 1], ['mode', 'ex'], ['vg_name', VG]]), -22],          // no lv_uuid
      [lvmRequest('lock_vg', [['pid', 1], ['mode', 'sh']]), -22],                           // no vg_name
      [lvmRequest('lock_vg', [['pid', 1], ['vg_name', VG]]), -22],                          // no mode → iv
      [lvmRequest('lock_gl', [['pid', 1]]), -22],                                           // no mode
      [lvmRequest('start_vg', [['pid', 1], ['vg_name', 'vg3']]), -22],                      // no lock type
      [lvmRequest('stop_vg', [['pid', 1]]), -22],                                           // no vg_name
      [lvmRequest('vg_update', [['pid', 1], ['vg_name', VG]]), -2],                         // no lock held
      [lvmRequest('lock_lv', [['pid', 1], ['mode', 'ex'], ['vg_name', 'nosuchvg'], ['lv_uuid', 'abc']]), -210],
    ];
    for (const [req, want] of cases) {
      const r = await c.request(req);
      assert.equal(opResult(r), want, `${req.replace(/\n/g, ' ')} → ${r}`);
    }
    c.destroy();
  });

  test('a 17 MiB message closes that connection; the daemon stays alive', async () => {
    for (const terminated of [false, true]) {
      const c = await open();
      const big = Buffer.alloc(17 * 1024 * 1024, 0x61);
      big.write('request = "hello"\nx = "', 0);
      const t0 = Date.now();
      void c.write(terminated ? Buffer.concat([big, Buffer.from('"\n' + TERM)]) : big);
      assert.ok(await c.waitClosed(15000), 'daemon did not close the connection');
      assert.equal(c.buffered, 0, 'no reply expected');
      await assertAlive(`17 MiB message (terminated=${terminated}, ${Date.now() - t0} ms)`);
    }
  });

  test('clients vanishing mid-request do not leave locks or queued requests behind', async () => {
    // Half a frame, then gone.
    const half = await open();
    await half.write('request="lock_lv"\ncmd ="lvextend"\npid =1\nmode ="ex"\n');
    half.destroy();
    // A whole lock request, gone before the reply can be read.
    for (let i = 0; i < 20; i++) {
      const c = await open();
      void c.write(lockLv(LV_VANISH, 'ex') + '\n##\n');
      c.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    const x = await open();
    assert.equal(opResult(await x.request(lockLv(LV_VANISH, 'ex'))), 0, 'transient lock of a vanished client still held');
    assert.equal(opResult(await x.request(lockLv(LV_VANISH, 'un'))), 0);
    // A queued request whose client vanishes is cancelled.
    assert.equal(opResult(await x.request(lockLv(LV_QUEUE, 'ex'))), 0);
    const y = await open();
    await y.sendFrame(lockLv(LV_QUEUE, 'ex'));
    assert.equal(await y.next(NO_REPLY_MS), null, 'second ex must wait');
    y.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(opResult(await x.request(lockLv(LV_QUEUE, 'un'))), 0);
    const z = await open();
    assert.equal(opResult(await z.request(lockLv(LV_QUEUE, 'ex'), 2000)), 0, 'queued request of a vanished client was granted');
    assert.equal(opResult(await z.request(lockLv(LV_QUEUE, 'un'))), 0);
    x.destroy();
    z.destroy();
    await assertAlive('vanishing clients');
  });

  test('pipelined requests on one connection are answered in order', async () => {
    const c = await open();
    const reqs = [
      'request = "hello"\n',
      lockVg(VG, 'sh'),
      'request = "bogus"\n',
      lockVg(VG, 'un'),
      'request = "hello"\n',
      lockLv(LV_PERSIST, 'ex', 'persistent'),
    ];
    await c.write(reqs.map((r) => r + '\n##\n').join(''));
    const got: Array<string | null> = [];
    for (let i = 0; i < 6; i++) got.push(await c.next(3000));
    assert.equal(got[0], HELLO_REPLY);
    assert.equal(opResult(got[1]!), 0);
    assert.equal(got[2], 'response = "failed"\nreason = "unknown request bogus"\n');
    assert.equal(opResult(got[3]!), 0);
    assert.equal(got[4], HELLO_REPLY);
    assert.equal(opResult(got[5]!), -114);
    assert.equal(await c.next(NO_REPLY_MS), null, 'one reply per request');
    c.destroy();
  });

  test('too many pipelined requests close that connection only', async () => {
    const c = await open();
    await c.write(Array.from({ length: 200 }, () => 'request = "hello"\n\n##\n').join(''));
    const deadline = Date.now() + 5000;
    while (!c.closed && Date.now() < deadline) await c.next(200);
    // Either the daemon answered them all or refused the flood by closing; both are bounded.
    assert.ok(c.closed || c.buffered <= 200);
    c.destroy();
    await assertAlive('pipeline flood');
  });

  test('the listen backlog is net.core.somaxconn (ss shows it as the listener\'s Send-Q)', async () => {
    const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
    const r = spawnSync('ss', ['-xlH', 'src', d!.socketPath], { encoding: 'utf8' });
    assert.equal(r.status, 0, `ss failed: ${r.stderr}`);
    const cols = r.stdout.trim().split(/\s+/);
    assert.equal(cols[1], 'LISTEN', r.stdout);
    assert.equal(Number(cols[3]), somaxconn, `backlog ${cols[3]} (somaxconn ${somaxconn}): ${r.stdout}`);
    assert.ok(somaxconn >= 1024, `net.core.somaxconn is ${somaxconn}: bursts of connections will be refused with EAGAIN`);
  });

  test('a bounded flood: 500 concurrent connect/hello/close', async () => {
    const N = 500;
    const t0 = Date.now();
    const deadline = t0 + 25000;
    let eagain = 0;
    const one = async (): Promise<boolean> => {
      while (Date.now() < deadline) {
        let c: RawClient;
        try {
          c = await RawClient.connect(d!.socketPath, 5000);
        } catch (e) {
          // A full listen backlog refuses non-blocking connects with EAGAIN; retry.
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
            eagain++;
            await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
            continue;
          }
          throw e;
        }
        const r = await c.request('request = "hello"\n', 10000);
        c.destroy();
        return r === HELLO_REPLY;
      }
      return false;
    };
    const results = await Promise.all(Array.from({ length: N }, one));
    const ms = Date.now() - t0;
    assert.equal(results.filter(Boolean).length, N, `only ${results.filter(Boolean).length}/${N} hellos answered (${eagain} EAGAIN retries)`);
    // 500 pending connections fit in a somaxconn-sized backlog: none is refused.
    assert.equal(eagain, 0, `${eagain} connects refused with EAGAIN`);
    assert.ok(ms < 30000, `flood took ${ms} ms`);
    await assertAlive('connection flood');
  });

  test('after everything: the persistent LV lock is still held and hello is answered', async () => {
    const c = await open();
    // Same persistent mode from any client → EALREADY: the persistent lock exists.
    assert.equal(opResult(await c.request(lockLv(LV_PERSIST, 'ex', 'persistent'))), -114);
    // A transient sh under a persistent ex is granted without a record (lvmlockd semantics)
    // and there is nothing transient to unlock afterwards.
    assert.equal(opResult(await c.request(lockLv(LV_PERSIST, 'sh'))), 0);
    assert.equal(opResult(await c.request(lockLv(LV_PERSIST, 'un'))), -2);
    // stop_vg refuses while the LV lock is held.
    assert.equal(opResult(await c.request(lvmRequest('stop_vg', [['pid', 1], ['vg_name', VG]]))), -16);
    assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY);
    c.destroy();
    assert.ok(d!.alive);
    assert.ok(fs.existsSync(d!.pidFile));
    assert.equal(fs.readFileSync(d!.pidFile, 'utf8').trim(), String(d!.pid));
  });

  test('quit and SIGTERM are refused while an LV lock is held', async () => {
    const c = await open();
    const q = await c.request('request = "quit"\n');
    assert.equal(q, 'response = "OK"\nresult = -16\nprotocol = "lvmlockd"\nversion = 1\n');
    process.kill(d!.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(d!.alive, 'daemon exited on SIGTERM with an LV lock held');
    assert.ok(fs.existsSync(d!.socketPath));
    assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY, 'same connection still served');
    assert.equal(opResult(await c.request(lockLv(LV_PERSIST, 'ex', 'persistent'))), -114);
    c.destroy();
  });
});

describe('lvmlockd process handling', () => {
  test('a second daemon with the same pid file exits 13 with "Cannot lock lockfile"', async () => {
    const dir = makeTempDir();
    let d: DaemonProcess | null = null;
    try {
      d = await startTestDaemon(dir);
      const r = await runLvmlockd(['-T', '-f', '-s', path.join(dir, 'other.sock'), '-p', d.pidFile]);
      assert.equal(r.code, 13, r.stderr);
      assert.match(r.stderr, /Cannot lock lockfile \[.*s\.pid\]/);
      assert.ok(!fs.existsSync(path.join(dir, 'other.sock')));
      // The first daemon is unaffected.
      const c = await RawClient.connect(d.socketPath);
      assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY);
      c.destroy();
    } finally {
      if (d) await d.kill();
      removeDir(dir);
    }
  });

  test('one SIGTERM with no lockspaces: clean exit, socket and pid file removed', async () => {
    const dir = makeTempDir();
    let d: DaemonProcess | null = null;
    try {
      d = await startTestDaemon(dir);
      const c = await RawClient.connect(d.socketPath);
      assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY);
      process.kill(d.pid, 'SIGTERM');
      const r = await d.waitExit(10000);
      assert.ok(r, 'daemon did not exit on SIGTERM');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.signal, null);
      assert.ok(!fs.existsSync(d.socketPath), 'socket left behind');
      assert.ok(!fs.existsSync(d.pidFile), 'pid file left behind');
      assert.ok(await c.waitClosed(2000), 'client connection not closed');
      c.destroy();
    } finally {
      if (d) await d.kill();
      removeDir(dir);
    }
  });

  test('a stale socket file is replaced on start', async () => {
    const dir = makeTempDir();
    let d: DaemonProcess | null = null;
    try {
      const first = await startTestDaemon(dir);
      await first.kill(); // SIGKILL: the socket file stays
      assert.ok(fs.existsSync(first.socketPath));
      d = await startTestDaemon(dir);
      const c = await RawClient.connect(d.socketPath);
      assert.equal(await c.request('request = "hello"\n'), HELLO_REPLY);
      c.destroy();
    } finally {
      if (d) await d.kill();
      removeDir(dir);
    }
  });

  test('-h prints usage, -V the version, both exit 0', async () => {
    const h = await runLvmlockd(['-h']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^Usage:\n/);
    assert.match(h.stdout, /--gl-type \| -g <str>/);
    const long = await runLvmlockd(['--help']);
    assert.equal(long.stdout, h.stdout);
    const v = await runLvmlockd(['-V']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^lvmlockd version: \d+\.\d+\.\d+/);
  });

  test('-g foo → "invalid gl-type option", exit 1; -g dlm/sanlock/idm accepted (C built with IDM support)', async () => {
    const r2 = await runLvmlockd(['--gl-type', 'foo']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /invalid gl-type option/);
    // Accepted values get as far as needing a pid file: -V after them proves the parse.
    assert.equal((await runLvmlockd(['-g', 'dlm', '-V'])).code, 0);
    assert.equal((await runLvmlockd(['-g', 'sanlock', '-V'])).code, 0);
    assert.equal((await runLvmlockd(['-g', 'idm', '-V'])).code, 0);
  });

  test('--watchdog accepts auto|on|off and refuses anything else, exit 1', async () => {
    for (const bad of ['yes', '1', '']) {
      const r = await runLvmlockd(['--watchdog', bad]);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /invalid watchdog option '.*' \(auto, on or off\)/);
    }
    for (const ok of ['auto', 'on', 'off']) assert.equal((await runLvmlockd(['--watchdog', ok, '--wdmd-socket', '/nonexistent', '-V'])).code, 0, ok);
    assert.match((await runLvmlockd(['-h'])).stdout, /--watchdog auto\|on\|off/);
  });

  test('a bad option prints usage and exits 1', async () => {
    for (const args of [['--bogus'], ['-Z'], ['-p']]) {
      const r = await runLvmlockd(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage:\n/, args.join(' '));
      assert.ok(r.stderr.length > 0, `${args.join(' ')}: no error message`);
    }
  });
});

describe('random and mutated requests over the socket', () => {
  const NAMES = ['hello', 'info', 'dump', 'init_vg', 'init_lv', 'free_vg', 'busy_vg', 'free_lv', 'start_vg', 'stop_vg',
    'start_wait', 'vg_status', 'stop_all', 'lock_gl', 'lock_vg', 'lock_lv', 'vg_update', 'enable_gl', 'disable_gl',
    'rename_vg_before', 'rename_vg_final', 'running_lm', 'query_lock_vg', 'query_lock_lv', 'set_remote_lv_lock',
    'find_free_lock', 'kill_vg', 'drop_vg', 'refresh_lv', 'setlockargs_vg_before', 'setlockargs_vg_final'];
  const field = fc.oneof(
    fc.tuple(fc.constantFrom('vg_name'), fc.constantFrom('vg1', 'vg2', 'x'.repeat(70))),
    fc.tuple(fc.constantFrom('mode'), fc.constantFrom('ex', 'sh', 'un', 'nl')),
    fc.tuple(fc.constantFrom('opts'), fc.constantFrom('none', 'persistent', 'force', 'wait', 'unlock_cancel')),
    fc.tuple(fc.constantFrom('vg_lock_type'), fc.constantFrom('none', 'dlm', 'sanlock', 'idm')),
    fc.tuple(fc.constantFrom('vg_lock_args', 'lv_lock_args'), fc.constantFrom('1.0.0:test', 'dlm', 'none')),
    fc.tuple(fc.constantFrom('lv_uuid'), fc.constantFrom('u-1', 'u-2')),
    fc.tuple(fc.constantFrom('lv_name'), fc.constantFrom('lv1')),
    fc.tuple(fc.constantFrom('version', 'host_id', 'pid', 'max_retries'), fc.integer({ min: -5, max: 2001 })),
  );
  const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { maxLength: 4 });
  const requestArb = fc.tuple(fc.constantFrom(...NAMES), fc.array(field, { maxLength: 8 }), mutation).map(([name, fields, muts]) => {
    let bytes = [...Buffer.from(lvmRequest(name, fields as Array<[string, string | number]>))];
    for (const [at, b, how] of muts) {
      const i = at % (bytes.length + 1);
      if (how === 'insert') bytes.splice(i, 0, b);
      else if (how === 'delete') bytes.splice(i, 1);
      else if (i < bytes.length) bytes[i] = b;
    }
    // A byte mutation must not forge a terminator inside the body.
    const body = Buffer.from(bytes).toString('latin1').split(TERM).join('\n#\n');
    return Buffer.from(body, 'latin1');
  });

  let dir = '';
  let d: DaemonProcess | null = null;
  before(async () => { dir = makeTempDir(); d = await startTestDaemon(dir); });
  after(async () => { if (d) await d.kill(); if (dir) removeDir(dir); });

  test('property: after any request the connection (or a new one) still gets hello answered', async () => {
    let waited = 0;
    await fc.assert(fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 4 }), async (reqs) => {
      const c = await RawClient.connect(d!.socketPath);
      try {
        for (const body of reqs) {
          // The request, then a hello pipelined behind it: the hello reply must come.
          await c.write(Buffer.concat([body, Buffer.from('\n' + TERM + 'request = "hello"\n' + TERM)]));
          let seen = 0;
          let ok = false;
          for (;;) {
            const f = await c.next(1500);
            if (f === null) break;
            if (f === HELLO_REPLY && (seen === 1 || !/^request="hello"/.test(body.toString('latin1')))) { ok = true; break; }
            seen++;
            assert.ok(seen <= 2, 'more replies than requests');
            assert.match(f, /^response = "OK"\n|^response = "failed"\nreason = "[^"\n]*"\n$/);
          }
          if (!ok) {
            // Only a request that legitimately waits (a lock behind another lock, stop_all wait) may hold the line.
            waited++;
            break;
          }
        }
      } finally {
        c.destroy();
      }
      assert.ok(d!.alive, `daemon died: ${d!.stderr}`);
      const p = await RawClient.connect(d!.socketPath);
      assert.equal(await p.request('request = "hello"\n', 3000), HELLO_REPLY);
      p.destroy();
    }), { numRuns: 120 });
    assert.ok(waited < 30, `${waited} runs never got their hello answered`);
  });
});

// ---- issue #18's probe: 20 hostile inputs, each on a fresh connection ----

describe('the 20-input probe: every frame answered within 2 s or the connection closed, the first lock kept', () => {
  const LV_FIRST = 'First0-Lock-Held-ByLi-veCl-ient-AAAAAA';
  const ANSWER_MS = 2000;
  let dir = '';
  let d: DaemonProcess | null = null;
  let holder: RawClient | null = null;
  const clients: RawClient[] = [];
  const open = async (): Promise<RawClient> => {
    const c = await RawClient.connect(d!.socketPath, 2000);
    clients.push(c);
    return c;
  };
  const failedReply = /^response = "failed"\nreason = "[^"\n]+"\n$/;
  const vgReq = (req: string): string => lvmRequest(req, [['cmd', 'probe'], ['pid', 1], ['vg_name', VG], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test']]);

  type Expect = 'failed' | number | 'hello' | 'closed';
  /** Input name → (bytes, what the answer must be). */
  const inputs: Array<[string, () => Buffer | string, Expect]> = [
    ['garbage', () => 'this is not a config tree }}}{{{ = = =\n', 'failed'],
    ['unknown request', () => 'request = "lock_lv_v2"\nvg_name = "vg1"\n', 'failed'],
    ['empty body', () => '\n', 'failed'],
    ['huge integer', () => lockLv(LV_FIRST, 'un').replace('pid =', 'pid =99999999999999999999999999\nx ='), 'failed'],
    ['missing fields (lock_lv without lv_uuid)', () => lvmRequest('lock_lv', [['pid', 1], ['mode', 'ex'], ['vg_name', VG]]), -22],
    ['bad mode', () => lockLv('Other0-LVAA-AAAA-AAAA-AAAA-AAAA-AAAAAA', 'xx'), -22],
    ['over-long name', () => lockVg('v'.repeat(100000), 'sh'), -22],
    ['path-like name', () => lockVg('../../../etc/lvm', 'sh'), -22],
    ['unterminated string', () => 'request = "lock_lv"\ncmd = "probe\nvg_name = "vg1\n', 'failed'],
    ['deep nesting', () => 'a = ' + '['.repeat(200000) + ']'.repeat(200000) + '\n', 'failed'],
    // libdm's parser stops at the NUL (a C string): a lock_lv without its fields.
    ['NUL and binary bytes', () => Buffer.concat([Buffer.from('request = "lock_lv"\0\x01\xff\xfe', 'latin1'), crypto.randomBytes(4096).map((b) => (b === 0x0a ? 0x0b : b)), Buffer.from('\n')]), -22],
    // Refused unparsed beyond 1 MiB (parsing millions of tokens would stall every client).
    ['8 MiB body', () => 'request = "lock_lv"\nx = [' + '1,'.repeat(4 * 1024 * 1024) + '1]\n', 'failed'],
    ['stray free_vg', () => vgReq('free_vg'), -16],
    ['stray stop_vg', () => vgReq('stop_vg'), -16],
    ['stray drop_vg', () => vgReq('drop_vg'), -16],
    ['stray rename_vg_before', () => vgReq('rename_vg_before'), -16],
    ['unlock from a foreign client', () => lockLv(LV_FIRST, 'un'), -2],
    ['200 connections at once', () => '', 'hello'],
    ['no terminator before the 16 MiB limit', () => Buffer.alloc(17 * 1024 * 1024, 0x61), 'closed'],
    ['stray kill_vg', () => vgReq('kill_vg'), 0],
  ];

  before(async () => {
    dir = makeTempDir();
    d = await startTestDaemon(dir);
    holder = await open();
    const s = await holder.request(lvmRequest('start_vg', [['pid', process.pid], ['vg_name', VG], ['vg_lock_type', 'dlm'],
      ['vg_lock_args', '1.0.0:test'], ['vg_uuid', 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'], ['version', 1], ['host_id', 0], ['opts', 'none']]));
    assert.equal(opResult(s), 0, String(s));
    assert.equal(opResult(await holder.request(lvmRequest('start_wait', [['pid', process.pid]]))), 0);
    // The first lock: a transient ex held by a live client (the holder connection stays open).
    assert.equal(opResult(await holder.request(lockLv(LV_FIRST, 'ex'))), 0);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    if (d) await d.kill();
    if (dir) removeDir(dir);
  });

  test('20/20', async () => {
    const results: string[] = [];
    let passed = 0;
    for (const [what, make, expect] of inputs) {
      const t0 = Date.now();
      let verdict = '';
      if (what === '200 connections at once') {
        // All connect without EAGAIN (listen backlog = net.core.somaxconn) and get hello answered.
        const one = async (): Promise<string | null> => {
          const c = await RawClient.connect(d!.socketPath, ANSWER_MS);
          const r = await c.request('request = "hello"\n', ANSWER_MS);
          c.destroy();
          return r;
        };
        const all = await Promise.allSettled(Array.from({ length: 200 }, one));
        const ok = all.filter((x) => x.status === 'fulfilled' && x.value === HELLO_REPLY).length;
        const errs = [...new Set(all.flatMap((x) => (x.status === 'rejected' ? [(x.reason as NodeJS.ErrnoException).code ?? String(x.reason)] : [])))];
        if (ok !== 200) verdict = `${ok}/200 answered (${errs.join(',')})`;
      } else {
        const c = await open();
        const bytes = make();
        void c.write(Buffer.concat([Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'), Buffer.from(expect === 'closed' ? '' : TERM)]));
        if (expect === 'closed') {
          if (!(await c.waitClosed(ANSWER_MS + 3000))) verdict = 'connection not closed';
          else if (c.buffered) verdict = 'a reply before the close';
        } else {
          const r = await c.next(ANSWER_MS + 1000);
          const ms = Date.now() - t0;
          if (r === null) verdict = c.closed ? 'connection closed instead of an answer' : 'no answer';
          else if (ms > ANSWER_MS) verdict = `answered after ${ms} ms`;
          else if (expect === 'failed' && !failedReply.test(r)) verdict = `not a "failed" reply: ${r}`;
          else if (expect === 'hello' && r !== HELLO_REPLY) verdict = `not the hello reply: ${r}`;
          else if (typeof expect === 'number' && opResult(r) !== expect) verdict = `op_result ${opResult(r)}, expected ${expect}: ${r}`;
          // The connection stays usable.
          else if ((await c.request('request = "hello"\n', ANSWER_MS)) !== HELLO_REPLY) verdict = 'connection unusable afterwards';
        }
        c.destroy();
      }
      // The daemon is alive and the first lock is still held by its live client.
      if (!verdict && !d!.alive) verdict = `daemon died: ${d!.stderr.slice(-500)}`;
      if (!verdict) {
        const fresh = await open();
        if ((await fresh.request('request = "hello"\n', ANSWER_MS)) !== HELLO_REPLY) verdict = 'no hello on a new connection';
        fresh.destroy();
      }
      if (!verdict) {
        const again = opResult(await holder!.request(lockLv(LV_FIRST, 'ex'), ANSWER_MS));
        // After kill_vg (lvmlockctl --kill) the VG refuses new lock requests (-217) and keeps its
        // locks until drop_vg: the holder's unlock answering 0 shows the lock was still held.
        if (what === 'stray kill_vg') {
          if (again !== -217) verdict = `repeated ex after kill_vg: ${again}`;
          else if (opResult(await holder!.request(lockLv(LV_FIRST, 'un'), ANSWER_MS)) !== 0) verdict = 'the first lock was gone after kill_vg';
        } else if (again !== -114) verdict = `first lock lost: repeated ex answered ${again}`;
      }
      if (!verdict) passed++;
      results.push(`${verdict ? 'FAIL' : 'ok  '} ${what} (${Date.now() - t0} ms)${verdict ? ': ' + verdict : ''}`);
    }
    process.stdout.write(results.map((l) => `# ${l}\n`).join('') + `# probe: ${passed}/${inputs.length}\n`);
    assert.equal(passed, inputs.length, results.join('\n'));
    assert.equal(inputs.length, 20);
  });
});

// ---- same request sequences against the C lvmlockd (-T), when installed ----

const C_LVMLOCKD = '/usr/sbin/lvmlockd';
// Replies normally come in milliseconds; the long wait only matters on a loaded machine, where a late
// reply would otherwise be read as the answer to the next step. Steps that expect no reply say so (NO_REPLY).
const REPLY_WAIT_MS = 3000;
const NO_REPLY = 400;

type Step = [who: string, what: string, waitMs?: number];

/** Runs the steps on a fresh daemon; returns one line per step (reply text, "(none)", "closed"). */
/**
 * Connects, retrying while the socket is refused: a daemon binds (the file
 * appears) before it listens, and under a loaded full run a connect fell
 * between the two once (ECONNREFUSED). A daemon that died is reported as such
 * by replay(), not retried here into a timeout.
 */
async function connectWhenListening(sock: string, timeoutMs = 5000): Promise<RawClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await RawClient.connect(sock);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

async function replay(cmd: string, args: string[], steps: Step[]): Promise<string[]> {
  const dir = makeTempDir('lvmlockd-test-replay-');
  const sock = path.join(dir, 's.sock');
  const proc = spawn(cmd, [...args, '-T', '-f', '-s', sock, '-p', path.join(dir, 's.pid'), '--adopt-file', path.join(dir, 'adopt')],
    { stdio: ['ignore', 'ignore', 'ignore'] });
  const clients = new Map<string, RawClient>();
  const out: string[] = [];
  try {
    for (let i = 0; i < 200 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25));
    for (const [who, what, waitMs = REPLY_WAIT_MS] of steps) {
      if (what === 'CLOSE') {
        clients.get(who)?.destroy();
        clients.delete(who);
        await new Promise((r) => setTimeout(r, 200));
        out.push(`${who} closed`);
        continue;
      }
      let c = clients.get(who);
      if (!c) {
        if (proc.exitCode !== null || proc.signalCode !== null) {
          throw new Error(`${path.basename(args[0] ?? cmd)} exited (code ${proc.exitCode}, signal ${proc.signalCode}) before step ${out.length + 1}: ${out.join(' | ')}`);
        }
        c = await connectWhenListening(sock);
        clients.set(who, c);
      }
      const r = what === 'READ' ? await c.next(waitMs) : await c.request(what, waitMs);
      out.push(`${who} ${what.split('\n')[0]} ${what.match(/(mode|opts|lv_uuid) ="[^"]*"/g)?.join(' ') ?? ''} -> ${r ?? '(none)'}`);
    }
  } finally {
    for (const c of clients.values()) c.destroy();
    try { process.kill(proc.pid!, 'SIGKILL'); } catch { /* gone */ }
    await new Promise((r) => proc.exitCode !== null || proc.signalCode !== null ? r(null) : proc.once('exit', r));
    removeDir(dir);
  }
  return out;
}

describe('same request sequences as lvmlockd 2.03.16 -T', { skip: !fs.existsSync(C_LVMLOCKD) && 'C lvmlockd not installed' }, () => {
  const R = lvmRequest;
  const lv = (uuid: string, mode: string, opts = 'none'): string => R('lock_lv', [['cmd', 'lvchange'], ['pid', 1], ['mode', mode], ['opts', opts],
    ['vg_name', 'vg1'], ['lv_name', 'lv1'], ['lv_uuid', uuid], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test'], ['lv_lock_args', 'dlm']]);
  const vg = (mode: string, opts = 'none'): string => R('lock_vg', [['cmd', 'vgs'], ['pid', 1], ['mode', mode], ['opts', opts],
    ['vg_name', 'vg1'], ['vg_lock_type', 'none'], ['vg_lock_args', 'none']]);
  const gl = (mode: string): string => R('lock_gl', [['cmd', 'vgs'], ['pid', 1], ['mode', mode], ['opts', 'none'], ['vg_lock_type', 'none']]);
  const start: Step[] = [
    ['A', gl('ex')],
    ['A', R('init_vg', [['pid', 1], ['vg_name', 'vg1'], ['vg_lock_type', 'dlm']])],
    ['A', R('start_vg', [['pid', 1], ['vg_name', 'vg1'], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test'],
      ['vg_uuid', 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'], ['version', 1], ['host_id', 0], ['opts', 'start_init']])],
    ['A', R('start_wait', [['pid', 1]]), 3000],
  ];
  const query = (uuid: string): string => R('query_lock_lv', [['pid', 1], ['opts', 'none'], ['vg_name', 'vg1'], ['lv_name', 'lv1'],
    ['lv_uuid', uuid], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test'], ['lv_lock_args', 'dlm']]);

  const scripts: Record<string, Step[]> = {
    'transient/persistent rules, conversion, queueing, disconnect': [
      ...start,
      ['A', lv('u-1', 'ex')], ['A', lv('u-1', 'ex')], ['A', lv('u-1', 'un')], ['A', lv('u-1', 'un')],
      ['A', lv('u-2', 'ex', 'persistent')], ['B', lv('u-2', 'ex', 'persistent')], ['B', lv('u-2', 'ex')], ['B', lv('u-2', 'sh')], ['B', lv('u-2', 'un')],
      ['A', lv('u-3', 'sh', 'persistent')], ['B', lv('u-3', 'sh')], ['B', lv('u-3', 'ex')],
      ['A', lv('u-4', 'sh')], ['A', lv('u-4', 'sh', 'persistent')], ['A', lv('u-5', 'sh')], ['A', lv('u-5', 'ex', 'persistent')],
      ['A', lv('u-6', 'sh')], ['A', lv('u-6', 'ex')], ['A', lv('u-6', 'sh')], ['B', lv('u-6', 'sh')], ['A', lv('u-6', 'ex')],
      ['C', lv('u-8', 'ex')], ['D', lv('u-8', 'ex'), NO_REPLY], ['C', lv('u-8', 'un')], ['D', 'READ'],
      ['C', lv('u-9', 'ex')], ['D', lv('u-9', 'sh'), NO_REPLY], ['C', 'CLOSE'], ['D', 'READ'], ['D', lv('u-9', 'ex')],
      ['E', lv('u-10', 'ex', 'persistent')], ['F', lv('u-10', 'sh', 'persistent')], ['F', lv('u-10', 'ex')],
      ['A', R('stop_vg', [['pid', 1], ['vg_name', 'vg1']])],
      ['A', 'request = "quit"\n'],
    ],
    'versions, GL conflicts, query, unlock_cancel, kill/drop': [
      ...start,
      ['A', gl('un')],
      ['A', vg('ex')], ['A', R('vg_update', [['pid', 1], ['vg_name', 'vg1'], ['version', 5]])], ['A', vg('un')],
      ['A', R('vg_update', [['pid', 1], ['vg_name', 'vg1'], ['version', 6]])],
      ['B', vg('sh')], ['B', R('vg_update', [['pid', 1], ['vg_name', 'vg1'], ['version', 7]])], ['B', vg('un')],
      ['A', gl('ex')], ['B', gl('sh'), NO_REPLY], ['A', gl('sh')], ['B', 'READ'], ['A', gl('ex')], ['B', gl('un')], ['A', gl('ex')], ['A', gl('un')], ['A', gl('un')],
      ['A', lv('u-9', 'nl')], ['A', lv('u-9', 'xx')],
      ['A', query('u-1')], ['A', lv('u-1', 'sh')], ['A', query('u-1')],
      ['A', vg('un', 'unlock_cancel')], ['B', lv('u-1', 'un', 'unlock_cancel')], ['A', 'request = "hello"\n'],
      ['A', R('kill_vg', [['pid', 1], ['vg_name', 'vg1']])], ['A', lv('u-2', 'ex')], ['A', lv('u-1', 'un')], ['A', vg('sh')],
      ['A', R('vg_update', [['pid', 1], ['vg_name', 'vg1'], ['version', 9]])],
      ['A', R('drop_vg', [['pid', 1], ['vg_name', 'vg1']])], ['A', vg('sh')],
    ],
    'malformed and unknown requests': [
      ['A', 'garbage }}} = =\n', NO_REPLY], ['A', 'request = "hello\n'], ['A', 'request = "frobnicate"\n', NO_REPLY], ['A', 'request = "hello"\n'],
      ['B', '\n', NO_REPLY], ['B', 'request = "hello"\n'],
      ['C', 'request = hello\n'], ['C', "request = 'hello'\n"], ['C', '"request" = "hello"\n'], ['C', 'request = "hello"\n\0garbage }}}\n'],
      ['C', 'request = "hello" garbage\n', NO_REPLY], ['C', 'request = "hello"\npid = 99999999999999999999\n', NO_REPLY], ['C', 'request = "hel\\lo"\n', NO_REPLY],
      ['C', 'request = "hello"\nx = [1 2 3]\n', NO_REPLY], ['C', 'request = "hello"\nx = -\n'], ['C', 'request = "hello"\nx = 1.2.3\n', NO_REPLY],
      ['C', 'request = "hello"\nsec { a = 1 }\n'], ['C', "request = 'hello\n"], ['C', 'request = ["hello"]\n'], ['C', 'request = [hello, 1]\n', NO_REPLY],
      ['C', 'request = "bogus"\nrequest = "hello"\n', NO_REPLY], ['C', 'request = "hello"\nrequest = "bogus"\n'],
    ],
  };

  for (const [name, steps] of Object.entries(scripts)) {
    test(name, async (t) => {
      let c = await replay(C_LVMLOCKD, [], steps);
      let ours = await replay(process.execPath, [LVMLOCKD_BIN], steps);
      // The one deliberate difference: where lvmlockd 2.03.16 stays silent (a frame it cannot
      // parse, a request it does not know) we answer libdaemon's "failed" reply.
      const failed = /-> response = "failed"\nreason = "[^"\n]*"\n$/;
      if (name === 'malformed and unknown requests') {
        assert.ok(!ours.some((l) => l.endsWith('-> (none)')), `a frame went unanswered:\n${ours.join('\n')}`);
        assert.ok(ours.filter((l) => failed.test(l)).length >= 10, 'expected "failed" replies');
      }
      const same = (): boolean => JSON.stringify(ours.map((l) => l.replace(failed, '-> (none)'))) === JSON.stringify(c);
      if (!same()) {
        // A reply later than REPLY_WAIT_MS (seen once from C under a loaded full run)
        // shifts every later reply of a trace by one. A real difference survives a second
        // replay of both daemons; a late reply does not.
        t.diagnostic(`traces differ; replaying both daemons once more\nC:\n${c.join('\n')}\nours:\n${ours.join('\n')}`);
        c = await replay(C_LVMLOCKD, [], steps);
        ours = await replay(process.execPath, [LVMLOCKD_BIN], steps);
      }
      assert.deepEqual(ours.map((l) => l.replace(failed, '-> (none)')), c);
    });
  }
});
