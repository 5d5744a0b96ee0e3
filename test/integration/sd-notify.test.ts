// sd_notify as systemd's Type=notify expects it, checked with a fake
// NOTIFY_SOCKET receiver (an AF_UNIX datagram socket, as systemd binds) and the
// real bin/lvmlockd: READY=1 with MAINPID only once the socket accepts,
// STATUS= following the lockspaces, STOPPING=1 on shutdown; the path and the
// @abstract form of NOTIFY_SOCKET; nothing sent (and no error) without it.
//
// Needs `npm run build` first.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { DaemonProcess, LVMLOCKD_BIN, makeTempDir, removeDir } from '../helpers/daemon-process';
import { RawClient, lvmRequest, opResult } from '../helpers/raw-client';
import {
  AF_UNIX, SOCK_DGRAM, SOCK_CLOEXEC, MSG_DONTWAIT,
  sysSocket, sysBind, sysRecv, sysClose, pollInAsync,
} from '../../src/util/libc';
import { Errno } from '../../src/util/errno';

const { EAGAIN } = Errno;
import { lockspaceStatus, notifyAddress, SdNotifier } from '../../src/daemon/sd-notify';

/** What systemd does: bind a datagram socket and read what arrives. */
class FakeNotifySocket {
  private constructor(readonly fd: number, readonly env: string) {}

  static bind(where: { path: string } | { abstract: string }): FakeNotifySocket {
    const env = 'path' in where ? where.path : '@' + where.abstract;
    const addr = notifyAddress(env);
    if (typeof addr === 'string') throw new Error(addr);
    const s = sysSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert.ok(s.rv >= 0, `socket errno ${s.errno}`);
    const b = sysBind(s.rv, addr);
    assert.equal(b.rv, 0, `bind ${env} errno ${b.errno}`);
    return new FakeNotifySocket(s.rv, env);
  }

  /** The next datagram's fields, or null after timeoutMs without one. */
  async next(timeoutMs = 10000): Promise<Record<string, string> | null> {
    const deadline = Date.now() + timeoutMs;
    const buf = Buffer.alloc(4096);
    for (;;) {
      const r = sysRecv(this.fd, buf, MSG_DONTWAIT);
      if (r.rv >= 0) {
        const text = buf.toString('utf8', 0, r.rv);
        return Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      }
      assert.equal(r.errno, EAGAIN, `recv errno ${r.errno}`);
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await pollInAsync(this.fd, Math.min(left, 100));
    }
  }

  /** Datagrams until one has `key`; the others are returned too. */
  async until(key: string, timeoutMs = 10000): Promise<Record<string, string>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.next(Math.max(0, deadline - Date.now()));
      assert.ok(m, `no datagram with ${key} within ${timeoutMs} ms`);
      if (key in m) return m;
    }
  }

  close(): void { sysClose(this.fd); }
}

function spawnDaemon(dir: string, notifySocket: string | null): DaemonProcess {
  const socketPath = path.join(dir, 's.sock');
  const pidFile = path.join(dir, 's.pid');
  const env: NodeJS.ProcessEnv = { ...process.env, LVM_LVMLOCKD_SOCKET: '', LVM_LVMLOCKD_PIDFILE: '' };
  delete env.NOTIFY_SOCKET;
  if (notifySocket) env.NOTIFY_SOCKET = notifySocket;
  const proc = spawn(process.execPath, [LVMLOCKD_BIN, '-T', '-f', '-s', socketPath, '-p', pidFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
  return new DaemonProcess(proc, dir, socketPath, pidFile);
}

const START_VG = lvmRequest('start_vg', [['pid', process.pid], ['vg_name', 'vg1'], ['vg_lock_type', 'dlm'],
  ['vg_lock_args', '1.0.0:test'], ['vg_uuid', 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'], ['version', 1], ['host_id', 0], ['opts', 'none']]);
const STOP_VG = lvmRequest('stop_vg', [['pid', process.pid], ['vg_name', 'vg1'], ['opts', 'none']]);

describe('sd_notify', () => {
  for (const kind of ['path', 'abstract'] as const) {
    test(`READY=1 once the socket accepts, STATUS= per lockspace, STOPPING=1 (${kind} NOTIFY_SOCKET)`, async () => {
      const dir = makeTempDir('lvmlockd-notify-');
      const fake = FakeNotifySocket.bind(kind === 'path' ? { path: path.join(dir, 'notify') } : { abstract: `lvmlockd-ts-test-${crypto.randomUUID()}` });
      const d = spawnDaemon(dir, fake.env);
      let c: RawClient | null = null;
      try {
        const ready = await fake.next();
        assert.ok(ready, `no READY=1: ${d.stderr}`);
        assert.equal(ready.READY, '1');
        assert.equal(ready.MAINPID, String(d.pid));
        assert.equal(ready.STATUS, 'no lockspaces');
        // READY=1 promises a socket that answers, right now.
        c = await RawClient.connect(d.socketPath, 1000);
        assert.match(String(await c.request('request = "hello"\n', 2000)), /protocol = "lvmlockd"/);

        assert.equal(opResult(await c.request(START_VG)), 0);
        assert.equal((await fake.until('STATUS')).STATUS, '2 lockspaces: lvm_global lvm_vg1');
        assert.equal(opResult(await c.request(STOP_VG)), 0);
        assert.equal((await fake.until('STATUS')).STATUS, 'no lockspaces');

        process.kill(d.pid, 'SIGTERM');
        const stopping = await fake.until('STOPPING');
        assert.equal(stopping.STOPPING, '1');
        const exit = await d.waitExit(5000);
        assert.equal(exit?.code, 0);
        assert.doesNotMatch(d.stderr + d.stdout, /sd_notify/);
      } finally {
        c?.destroy();
        await d.kill();
        fake.close();
        removeDir(dir);
      }
    });
  }

  test('without NOTIFY_SOCKET nothing is sent and the daemon serves as before', async () => {
    const dir = makeTempDir('lvmlockd-notify-');
    const fake = FakeNotifySocket.bind({ path: path.join(dir, 'notify') });
    const d = spawnDaemon(dir, null);
    try {
      const deadline = Date.now() + 10000;
      let c: RawClient | null = null;
      while (!c && Date.now() < deadline) {
        try { c = await RawClient.connect(d.socketPath, 500); } catch { await new Promise((r) => setTimeout(r, 50)); }
      }
      assert.ok(c, 'daemon never accepted');
      assert.match(String(await c.request('request = "hello"\n', 2000)), /protocol = "lvmlockd"/);
      c.destroy();
      assert.equal(await fake.next(300), null);
    } finally {
      await d.kill();
      fake.close();
      removeDir(dir);
    }
  });
});

describe('sd_notify pieces', () => {
  test('NOTIFY_SOCKET addresses: path with NUL, @abstract with a leading NUL, bad values refused', () => {
    const p = notifyAddress('/run/systemd/notify') as Buffer;
    assert.equal(p.readUInt16LE(0), AF_UNIX);
    assert.equal(p.subarray(2).toString('latin1'), '/run/systemd/notify\0');
    const a = notifyAddress('@sd') as Buffer;
    assert.deepEqual([...a], [AF_UNIX, 0, 0, 0x73, 0x64]);
    assert.match(String(notifyAddress('relative/path')), /neither an absolute path/);
    assert.match(String(notifyAddress('@')), /bad abstract name length/);
    assert.match(String(notifyAddress('/' + 'x'.repeat(107))), /path too long/);
  });

  test('fromEnv takes NOTIFY_SOCKET out of the environment and reports a bad one', () => {
    const errors: string[] = [];
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: 'nonsense' };
    assert.equal(SdNotifier.fromEnv(env, (m) => errors.push(m)), null);
    assert.equal(env.NOTIFY_SOCKET, undefined);
    assert.equal(errors.length, 1);
    assert.equal(SdNotifier.fromEnv({}, (m) => errors.push(m)), null);
    assert.equal(errors.length, 1);
  });

  test('a receiver that is gone is an error line, not an exception', () => {
    const errors: string[] = [];
    const n = SdNotifier.fromEnv({ NOTIFY_SOCKET: '/nonexistent-dir/notify' }, (m) => errors.push(m))!;
    assert.equal(n.send(['READY=1']), false);
    assert.match(errors[0] ?? '', /sd_notify send failed: No such file or directory/);
    n.close();
  });

  test('STATUS text', () => {
    assert.equal(lockspaceStatus([]), 'no lockspaces');
    assert.equal(lockspaceStatus(['vg1']), '1 lockspace: vg1');
    assert.equal(lockspaceStatus(['a', 'b']), '2 lockspaces: a b');
    assert.equal(lockspaceStatus(Array.from({ length: 10 }, (_, i) => `v${i}`)), '10 lockspaces: v0 v1 v2 v3 v4 v5 v6 v7 …');
  });
});
