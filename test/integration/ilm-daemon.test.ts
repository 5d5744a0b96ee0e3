// Our ILM daemon (bin/ilmd, the seagate_ilm work-alike) with three emulated
// drive processes, driven over its client socket by our libseagate_ilm
// work-alike. Two daemons stand for two hosts. Shortened timings: lock
// timeout (drive countdown) 3 s, renewal-failure period 2.5 s
// (ILM_TS_QUIESCENT_MS); propeller's 5 s majority deadline is unchanged, so a
// refused lock takes ~5 s.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../helpers/daemon-process';
import { IdmRig, type IlmDaemon } from '../helpers/idm-rig';
import { IlmClient } from '../../src/ilm/client';
import { Cmd, IdmMode, ILM_MAGIC, encodeHeader, encodeRequest, ReplyReader } from '../../src/ilm/protocol';

const E = { NOENT: 2, IO: 5, NOMEM: 12, BUSY: 16, INVAL: 22 };
const EX = IdmMode.EXCLUSIVE;
const SH = IdmMode.SHAREABLE;
const TIMEOUT_MS = 3000;
const QUIESCENT_MS = 2500;

function lockId(n: number): Buffer {
  return Buffer.from(`${String(n).padStart(32, 'v')}${'l'.repeat(32)}`, 'ascii');
}

async function client(d: IlmDaemon): Promise<IlmClient> {
  const r = await IlmClient.connect(d.socket);
  assert.equal(r.rv, 0);
  return r.client!;
}

async function rawExchange(socket: string, bytes: Buffer, closeAfter = false): Promise<number[]> {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    const reader = new ReplyReader();
    const results: number[] = [];
    s.on('data', (c) => {
      reader.push(c);
      for (let r = reader.next(); r; r = reader.next()) results.push(r.header.result);
    });
    s.on('connect', () => { s.write(bytes); if (closeAfter) s.end(); });
    s.on('close', () => resolve(results));
    s.on('error', () => resolve(results));
    setTimeout(() => s.end(), 500);
  });
}

describe('ILM daemon with emulated drives', { timeout: 180_000 }, () => {
  const rig = new IdmRig();
  let drives: string[];
  let ilmA: IlmDaemon;
  let ilmB: IlmDaemon;
  const env = { ILM_TS_QUIESCENT_MS: String(QUIESCENT_MS) };

  before(async () => {
    drives = [await rig.startDrive(0), await rig.startDrive(1), await rig.startDrive(2)];
    ilmA = await rig.startIlm('a', env);
    ilmB = await rig.startIlm('b', env, 'seagate_ilm');
  });
  after(async () => { await rig.cleanup(); });

  test('ex excludes ex on another host; same lockspace twice -> -EBUSY; LVB travels with the unlock', async () => {
    const a = await client(ilmA);
    const b = await client(ilmB);
    const id = lockId(1);
    assert.equal(await a.lock(id, EX, drives, TIMEOUT_MS), 0);
    assert.equal(await a.lock(id, EX, drives, TIMEOUT_MS), -E.BUSY);
    const t0 = Date.now();
    assert.equal(await b.lock(id, EX, drives, TIMEOUT_MS), -1);
    assert.ok(Date.now() - t0 >= 4900, 'a refused lock retries for the 5 s majority deadline');
    assert.deepEqual(await b.hostCount(id, drives), { rv: 0, count: 1, self: 0 });
    assert.deepEqual(await b.mode(id, drives), { rv: 0, mode: EX });
    const lvb = Buffer.alloc(8);
    lvb.writeBigUInt64LE(0x00ab_cdef_0123_4567n);
    assert.equal(await a.writeLvb(id, lvb), 0);
    assert.equal(await a.unlock(id), 0);
    assert.equal(await a.unlock(id), -1, 'release of a lock not held');
    assert.equal(await b.lock(id, EX, drives, TIMEOUT_MS), 0);
    const r = await b.readLvb(id);
    assert.equal(r.rv, 0);
    assert.equal(r.lvb.readBigUInt64LE(0), 0x00ab_cdef_0123_4567n);
    assert.equal(await b.unlock(id), 0);
    assert.equal(await a.disconnect(), 0);
    assert.equal(await b.disconnect(), 0);
  });

  test('sh with sh on two hosts; convert to ex refused while the other shares; demotion works', async () => {
    const a = await client(ilmA);
    const b = await client(ilmB);
    const id = lockId(2);
    assert.equal(await a.lock(id, SH, drives, TIMEOUT_MS), 0);
    assert.equal(await b.lock(id, SH, drives, TIMEOUT_MS), 0);
    assert.deepEqual(await a.hostCount(id, drives), { rv: 0, count: 1, self: 1 });
    assert.equal(await a.convert(id, EX), -1);
    assert.equal(await b.unlock(id), 0);
    assert.equal(await a.convert(id, EX), 0, 'alone now; the refused convert was rolled back, not marked failed');
    assert.deepEqual(await b.mode(id, drives), { rv: 0, mode: EX });
    assert.equal(await a.convert(id, SH), 0);
    assert.equal(await a.unlock(id), 0);
    await a.disconnect();
    await b.disconnect();
  });

  test('minority of drives lost: locking and renewing go on; majority unresolvable -> -ENOMEM', async () => {
    const a = await client(ilmA);
    const id = lockId(3);
    await rig.stopDrive(2);
    try {
      assert.equal(await a.lock(id, EX, drives, TIMEOUT_MS), 0);
      await new Promise((r) => setTimeout(r, QUIESCENT_MS + 1500));
      assert.equal(a.alive, true);
      assert.equal(await a.unlock(id), 0);
      const missing = [drives[0]!, path.join(rig.dir, 'nope1'), path.join(rig.dir, 'nope2')];
      assert.equal(await a.lock(id, EX, missing, TIMEOUT_MS), -E.NOMEM);
    } finally {
      await rig.startDrive(2);
    }
    await a.disconnect();
  });

  test('majority of drives lost while held: renewal fails and the kill path runs once', async () => {
    const a = await client(ilmA);
    const id = lockId(4);
    const marker = path.join(rig.dir, 'killed');
    const script = path.join(rig.dir, 'kill.sh');
    fs.writeFileSync(script, `#!/bin/sh\necho "$@" >> ${marker}\n`, { mode: 0o755 });
    assert.equal(await a.setKillPath(script, '--kill vg1'), 0);
    assert.equal(await a.lock(id, EX, drives, 60000), 0);
    await rig.stopDrive(1);
    await rig.stopDrive(2);
    try {
      const end = Date.now() + 20000;
      while (!fs.existsSync(marker) && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
      assert.equal(fs.readFileSync(marker, 'utf8'), '--kill vg1\n');
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(fs.readFileSync(marker, 'utf8'), '--kill vg1\n', 'the failure action runs once');
      // With the majority gone a new lock fails with -EIO after the deadline.
      assert.equal(await a.lock(lockId(5), EX, drives, TIMEOUT_MS), -E.IO);
    } finally {
      await rig.startDrive(1);
      await rig.startDrive(2);
    }
    a.close();
  });

  test('host crash: its mutexes time out and another host breaks them; the broken LVB reads with the 0xFF marker byte', async () => {
    const crashed = await rig.startIlm('c', env);
    const c = await client(crashed);
    const b = await client(ilmB);
    const id = lockId(6);
    assert.equal(await c.lock(id, EX, drives, 2000), 0, 'a short countdown: B must get it within its 5 s of retries');
    await crashed.proc.kill('SIGKILL');
    const t0 = Date.now();
    assert.equal(await b.lock(id, EX, drives, TIMEOUT_MS), 0);
    assert.ok(Date.now() - t0 < 5500);
    const r = await b.readLvb(id);
    // propeller answers all ones; ours keeps the drives' value (zero here) under the marker byte.
    assert.equal(r.lvb.toString('hex'), '00000000000000ff');
    assert.equal(await b.unlock(id), 0);
    await b.disconnect();
  });

  test('a client gone without DEL_LOCKSPACE has its locks released on the drives', async () => {
    const a = await client(ilmA);
    const b = await client(ilmB);
    const id = lockId(7);
    assert.equal(await a.lock(id, EX, drives, 60000), 0);
    a.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await b.lock(id, EX, drives, TIMEOUT_MS), 0);
    assert.equal(await b.unlock(id), 0);
    await b.disconnect();
  });

  test('a drive restarted from its state file still knows who holds what', async () => {
    const a = await client(ilmA);
    const b = await client(ilmB);
    const id = lockId(8);
    assert.equal(await a.lock(id, EX, drives, 60000), 0);
    await rig.stopDrive(0);
    await rig.startDrive(0);
    assert.deepEqual(await b.hostCount(id, [drives[0]!]), { rv: 0, count: 1, self: 0 });
    assert.equal(await a.unlock(id), 0);
    await a.disconnect();
    await b.disconnect();
  });

  test('inject_fault: range checked; 100% makes every drive command fail with -EIO', async () => {
    const a = await client(ilmA);
    assert.equal(await a.injectFault(101), -E.INVAL);
    assert.equal(await a.injectFault(100), 0);
    assert.equal(await a.lock(lockId(9), EX, drives, TIMEOUT_MS), -E.IO);
    assert.equal(await a.injectFault(0), 0);
    assert.equal(await a.lock(lockId(9), EX, drives, TIMEOUT_MS), 0);
    assert.equal(await a.unlock(lockId(9)), 0);
    assert.deepEqual(await a.version(drives[0]!), { rv: 0, major: 8, minor: 0 });
    await a.disconnect();
  });

  test('bad frames on the live daemon: answered, never a crash', async () => {
    const badMagic = encodeRequest({ cmd: Cmd.ADD_LOCKSPACE });
    badMagic.writeUInt32LE(0x12345678, 0);
    assert.deepEqual(await rawExchange(ilmA.socket, badMagic), [-E.INVAL]);
    const unknown = encodeHeader({ magic: ILM_MAGIC, cmd: 77, length: 16, result: 0 });
    assert.deepEqual(await rawExchange(ilmA.socket, Buffer.concat([unknown, encodeRequest({ cmd: Cmd.DEL_LOCKSPACE })])), [-E.INVAL, -E.INVAL]);
    const truncated = encodeRequest({ cmd: Cmd.ACQUIRE, mode: EX, lockId: lockId(10), timeoutMs: 1, drives }).subarray(0, 50);
    assert.deepEqual(await rawExchange(ilmA.socket, truncated, true), [-E.IO]);
    assert.deepEqual(await rawExchange(ilmA.socket, encodeRequest({ cmd: Cmd.RELEASE, lockId: lockId(10) })), [-E.INVAL], 'no lockspace on this connection');
    const a = await client(ilmA);
    assert.equal((await a.call({ cmd: Cmd.ADD_LOCKSPACE })).rv, -E.BUSY, 'one lockspace per connection');
    assert.equal(await a.stopRenew(), 0);
    assert.equal(await a.startRenew(), 0);
    assert.equal(await a.setSignal(15), 0);
    await a.disconnect();
  });

  test('a second daemon on the same run dir refuses to start (main.pid is locked)', () => {
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'ilmd'), '-D', '1', '-E', '3'], {
      env: { ...process.env, ILM_RUN_DIR: ilmA.runDir, ILM_LOG_DIR: ilmA.logDir }, encoding: 'utf8', timeout: 20000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /main\.pid is locked: another ILM daemon is running/);
    assert.ok(fs.statSync(ilmA.socket).isSocket(), 'the running daemon keeps its socket');
  });
});
