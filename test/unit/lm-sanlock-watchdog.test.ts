// The host watchdog of sanlock lockspaces: wdmd's wire format, the client
// against a fake wdmd (old and new protocol, refusals), and the manager's
// arming rules on an in-memory disk with a manual clock: armed before join
// returns, moved forward by every renewal, never touched after a failed
// renewal, disarmed only when the lockspace is left, refused for timeouts
// the watchdog cannot serve.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '../../src/io/clock';
import { MemoryDisk } from '../../src/io/memory-disk';
import { SeededRandom } from '../../src/leases/random';
import * as L from '../../src/leases';
import { deriveTimeouts } from '../../src/leases/timeouts';
import { newGlobalLockChoice } from '../../src/core/lockd';
import { SanlockLockManager } from '../../src/lm/sanlock/sanlock-lm';
import { watchdogTimeoutProblem, type WatchdogConnection, type WatchdogProvider } from '../../src/lm/sanlock/watchdog';
import {
  WDMD_CMD, WDMD_HEADER_SIZE, WdmdWatchdog, decodeWdmdHeader, encodeWdmdHeader, parseWatchdogMode,
} from '../../src/daemon/wdmd';
import { FakeWdmd } from '../helpers/fake-wdmd';

const MiB = 1 << 20;

describe('wdmd wire format', () => {
  test('header layout is wdmd_header: cmd@4, test_interval@16, fire_timeout@20, times@24/32/40, name@48, 176 bytes', () => {
    const b = encodeWdmdHeader({ cmd: WDMD_CMD.TEST_LIVE, renewalTime: 1234n, expireTime: 1314n, name: 'lvmlockd_lvm_vg1:3' });
    assert.equal(b.length, WDMD_HEADER_SIZE);
    assert.equal(b.readUInt32LE(0), 0, 'magic unused');
    assert.equal(b.readUInt32LE(4), 4);
    assert.equal(b.readBigUInt64LE(32), 1234n);
    assert.equal(b.readBigUInt64LE(40), 1314n);
    assert.equal(b.toString('utf8', 48, 48 + 18), 'lvmlockd_lvm_vg1:3');
    assert.equal(b[48 + 18], 0);
    const h = decodeWdmdHeader(b);
    assert.deepEqual(h, { cmd: 4, testInterval: 0, fireTimeout: 0, lastKeepalive: 0n, renewalTime: 1234n, expireTime: 1314n, name: 'lvmlockd_lvm_vg1:3' });
  });
  test('bad input: a name that does not fit, a short header', () => {
    assert.throws(() => encodeWdmdHeader({ cmd: 1, name: 'x'.repeat(128) }), /name too long/);
    assert.throws(() => decodeWdmdHeader(Buffer.alloc(100)), /short wdmd header/);
  });
  test('--watchdog values', () => {
    assert.equal(parseWatchdogMode('auto'), 'auto');
    assert.equal(parseWatchdogMode('on'), 'on');
    assert.equal(parseWatchdogMode('off'), 'off');
    assert.equal(parseWatchdogMode('1'), null);
  });
});

describe('wdmd client', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockd-wdmd-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const errors: string[] = [];

  test('auto without wdmd: no watchdog; on without wdmd: a clear error; off: never connects', async () => {
    const missing = path.join(dir, 'none.sock');
    assert.equal(await new WdmdWatchdog('auto', missing, (m) => errors.push(m)).connect('a', 60), null);
    await assert.rejects(new WdmdWatchdog('on', missing, (m) => errors.push(m)).connect('a', 60), /cannot connect to wdmd at .*none\.sock/);
    assert.equal(await new WdmdWatchdog('off', missing, (m) => errors.push(m)).connect('a', 60), null);
  });

  for (const legacy of [true, false]) {
    test(`${legacy ? 'wdmd 3.8 (opens the device at start)' : 'newer wdmd (OPEN_WATCHDOG)'}: register, refcount, status; test_live; disarm`, async () => {
      const sock = path.join(dir, `w${legacy ? 'old' : 'new'}.sock`);
      const fake = new FakeWdmd(sock, { legacy, fireTimeout: 60, testInterval: 10 });
      await fake.start();
      try {
        const wd = await new WdmdWatchdog('on', sock, (m) => errors.push(m)).connect('lvmlockd_lvm_vg1:1', 60);
        assert.ok(wd);
        assert.equal(wd.fireTimeout, 60);
        assert.equal(wd.testInterval, 10);
        wd.testLive(100, 180);
        wd.testLive(120, 200);
        await wd.disarm();
        await new Promise((r) => setTimeout(r, 50));
        const conn = fake.clients[0]!.headers;
        const cmds = conn.map((h) => h.cmd);
        assert.deepEqual(cmds, [WDMD_CMD.REGISTER, WDMD_CMD.REFCOUNT_SET, WDMD_CMD.OPEN_WATCHDOG, WDMD_CMD.STATUS,
          WDMD_CMD.TEST_LIVE, WDMD_CMD.TEST_LIVE, WDMD_CMD.TEST_LIVE, WDMD_CMD.REFCOUNT_CLEAR, WDMD_CMD.STATUS]);
        assert.equal(conn[0]!.name, 'lvmlockd_lvm_vg1:1');
        assert.equal(conn[2]!.fireTimeout, 60);
        assert.deepEqual(FakeWdmd.lives(fake.clients[0]!), [[100, 180], [120, 200], [0, 0]], 'disarm is test_live 0 0');
        assert.ok(fake.clients[0]!.closed);
      } finally {
        await fake.stop();
      }
    });
  }

  test('newer wdmd that cannot open the device with our fire timeout: refused', async () => {
    const sock = path.join(dir, 'wfail.sock');
    const fake = new FakeWdmd(sock, { legacy: false, openFails: true });
    await fake.start();
    try {
      await assert.rejects(new WdmdWatchdog('auto', sock, (m) => errors.push(m)).connect('x', 60), /could not open the watchdog device with fire timeout 60/);
    } finally {
      await fake.stop();
    }
  });

  test('wdmd going away is logged (the device will reset the host)', async () => {
    const sock = path.join(dir, 'wgone.sock');
    const fake = new FakeWdmd(sock, { legacy: true });
    await fake.start();
    const logged: string[] = [];
    try {
      const wd = await new WdmdWatchdog('on', sock, (m) => logged.push(m)).connect('x', 60);
      assert.ok(wd);
      fake.clients[0]!.socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      assert.match(logged.join('\n'), /wdmd connection lost/);
      wd.testLive(1, 2);
      assert.match(logged.join('\n'), /test_live 1 2 failed: wdmd connection is closed/);
      await wd.disarm(); // nothing to tell a wdmd that is gone: no throw, no wait
    } finally {
      await fake.stop();
    }
  });
});

describe('watchdog timeouts', () => {
  test('io_timeout must leave a renewal more than one wdmd test interval before expiry', () => {
    const wd = { testInterval: 10, fireTimeout: 60 };
    assert.match(watchdogTimeoutProblem(deriveTimeouts(1), wd)!, /io_timeout 1 s is too small .*\(use -o 2 or more\)/);
    assert.equal(watchdogTimeoutProblem(deriveTimeouts(2), wd), null);
    assert.equal(watchdogTimeoutProblem(deriveTimeouts(10), wd), null);
    assert.match(watchdogTimeoutProblem(deriveTimeouts(10), { testInterval: 10, fireTimeout: 30 })!, /fires after 30 s, the lockspace needs 60 s/);
  });
});

/** A recording watchdog for the manager tests. */
class RecordingWatchdog implements WatchdogProvider {
  readonly describe = 'recording';
  readonly absentReason = 'not running here';
  readonly events: string[] = [];
  constructor(private readonly o: { absent?: boolean; fail?: string; testInterval?: number } = {}) {}
  async connect(name: string, fireTimeout: number): Promise<WatchdogConnection | null> {
    if (this.o.fail) throw new Error(this.o.fail);
    if (this.o.absent) return null;
    this.events.push(`connect ${name} ${fireTimeout}`);
    const ev = this.events;
    return {
      testInterval: this.o.testInterval ?? 10,
      fireTimeout: 60,
      testLive: (r, e) => { ev.push(`live ${r} ${e}`); },
      disarm: async () => { ev.push('disarm'); },
      close: async () => { ev.push('close'); },
    };
  }
}

function manager(disk: MemoryDisk, clock: ManualClock, io: number, watchdog: WatchdogProvider) {
  const gl = newGlobalLockChoice();
  gl.manager = 'sanlock';
  const logs: string[] = [];
  const m = new SanlockLockManager({
    glChoice: gl, ioTimeout: io, defaultHostId: () => 1, lockspaceCount: () => 0,
    debug: (l) => logs.push(l), error: (l) => logs.push('ERROR ' + l),
    sleep: (ms) => clock.sleep(ms), clock, random: new SeededRandom(7),
    openDisk: async () => ({
      path: disk.path, sectorSize: disk.sectorSize, size: async () => disk.data.length,
      read: (o, l, opts) => disk.read(o, l, opts), write: (o, d, opts) => disk.write(o, d, opts), close: async () => undefined,
    }),
    mapperDir: '/dev/mapper', blockSizes: () => ({ physical: 512, logical: 512 }), deviceExists: () => true,
    hostName: 'host1', watchdog,
  });
  return { m, logs };
}

async function freshVg(io: number, watchdog: WatchdogProvider) {
  const clock = new ManualClock();
  const disk = new MemoryDisk(72 * MiB, { clock });
  const h = manager(disk, clock, io, watchdog);
  assert.equal((await h.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: 'lvmlock', alignMb: 0, otherArgs: '' })).rv, 0);
  const failures: string[] = [];
  const ls = h.m.createLockspace({ name: 'lvm_vg1', vgName: 'vg1', vgUuid: 'u', vgArgs: '1.0.0:lvmlock', hostId: 1 }, { failed: (r) => failures.push(r) });
  assert.equal((await clock.drive(ls.prepare({ repair: false }))).rv, 0);
  return { clock, disk, ls, failures, logs: h.logs };
}

describe('sanlock manager with a watchdog', () => {
  test('armed before join returns (expire = last_success + id_renewal_fail), moved by every renewal, disarmed at leave', async () => {
    const wd = new RecordingWatchdog();
    const { clock, ls, logs } = await freshVg(2, wd);
    const rv = await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay: false }));
    assert.equal(rv, 0, logs.join('\n'));
    assert.equal(wd.events[0], 'connect lvmlockd_lvm_vg1:1 60');
    const armed = /^live (\d+) (\d+)$/.exec(wd.events[1]!);
    assert.ok(armed, wd.events.join(','));
    assert.equal(Number(armed[2]) - Number(armed[1]), 16, 'id_renewal_fail at io 2');
    assert.equal(wd.events.length, 2);
    await clock.drive(clock.sleep(20_000));
    const lives = wd.events.slice(1).map((e) => e.split(' ').map(Number).slice(1));
    assert.ok(lives.length >= 5, `renewals every 4 s arm again: ${wd.events.join(',')}`);
    for (let i = 1; i < lives.length; i++) {
      assert.ok(lives[i]![0]! > lives[i - 1]![0]!, 'renewal times go forward');
      assert.equal(lives[i]![1]! - lives[i]![0]!, 16);
    }
    // Every renewal leaves the expiry more than one test interval ahead until the next renewal.
    for (let i = 1; i < lives.length; i++) assert.ok(lives[i - 1]![1]! - 10 > lives[i]![0]!);
    await clock.drive(ls.leave({ freeVg: false }));
    assert.equal(wd.events.at(-1), 'disarm');
  });

  test('a failed renewal stops arming; the kill path ends in leave, which disarms', async () => {
    const wd = new RecordingWatchdog();
    const { clock, disk, ls, failures, logs } = await freshVg(2, wd);
    assert.equal(await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay: false })), 0, logs.join('\n'));
    const before = wd.events.length;
    disk.fault = (req) => (req.op === 'write' ? { kind: 'eio' } : undefined);
    await clock.drive(clock.sleep(30_000));
    assert.equal(failures.length, 1, 'the lockspace failed');
    const after = wd.events.slice(before);
    assert.ok(after.every((e) => e.startsWith('live')), after.join(','));
    const lastLive = wd.events.filter((e) => e.startsWith('live')).at(-1)!;
    const expire = Number(lastLive.split(' ')[2]);
    // Nothing moved the expiry past the last good renewal.
    assert.ok(clock.monotonicSeconds() >= expire, `expiry ${expire} passed at ${clock.monotonicSeconds()}`);
    assert.ok(!wd.events.includes('disarm'), 'not disarmed while the lockspace still exists');
    disk.fault = undefined;
    await clock.drive(ls.leave({ freeVg: false }));
    assert.equal(wd.events.at(-1), 'disarm');
  });

  test('io_timeout 1 with a watchdog: join refused (-203) before the delta lease is touched', async () => {
    const wd = new RecordingWatchdog();
    const { clock, disk, ls, logs } = await freshVg(1, wd);
    const before = Buffer.from(disk.data.subarray(0, 4096));
    const rv = await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay: false }));
    assert.equal(rv, L.SANLK.WD_ERROR);
    assert.match(logs.join('\n'), /io_timeout 1 s is too small for the watchdog/);
    assert.deepEqual(wd.events.slice(1), ['close']);
    assert.ok(disk.data.subarray(0, 4096).equals(before), 'no delta lease written');
  });

  test('a required watchdog that cannot be used: join refused (-203) with the reason logged', async () => {
    const { clock, ls, logs } = await freshVg(2, new RecordingWatchdog({ fail: 'cannot connect to wdmd at /x: ENOENT' }));
    assert.equal(await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay: false })), L.SANLK.WD_ERROR);
    assert.match(logs.join('\n'), /watchdog recording: cannot connect to wdmd/);
  });

  test('no watchdog daemon (auto): the lockspace starts, with a warning', async () => {
    const { clock, ls, logs } = await freshVg(2, new RecordingWatchdog({ absent: true }));
    assert.equal(await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay: false })), 0);
    assert.match(logs.join('\n'), /WARNING: no watchdog \(not running here\); if this daemon hangs/);
    await clock.drive(ls.leave({ freeVg: false }));
  });

  test('a join that fails after connecting closes the watchdog without arming it', async () => {
    const wd = new RecordingWatchdog();
    const { clock, disk, ls } = await freshVg(2, wd);
    disk.fault = (req) => (req.op === 'write' ? { kind: 'eio' } : undefined);
    const rv = await clock.drive(ls.join({ adoptOnly: false, adoptOk: false, nodelay: false }));
    assert.ok(rv < 0);
    assert.deepEqual(wd.events.slice(1), ['close']);
  });
});
