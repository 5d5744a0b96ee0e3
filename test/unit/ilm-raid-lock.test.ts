// The ILM's majority rules and per-drive state machine (src/ilm/raid-lock.ts,
// after propeller's src/raid_lock.c as summarised in the IDM spec §3.3-3.4),
// on in-process emulated drives with a manual clock: no sockets, no sleeping.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MutexOp } from '../../src/idm/record';
import { DriveCommands } from '../../src/ilm/drive-commands';
import { RaidLock, MAJORITY_TIMEOUT_MS } from '../../src/ilm/raid-lock';
import { ManualClock, inProcessDrives } from '../helpers/idm-inprocess';

const E = { IO: 5 };
const EX = 1;
const SH = 2;
const LOCK_ID = Buffer.alloc(64, 0x41);
const hostId = (n: number): Buffer => Buffer.alloc(32, n);

function rig(n: number) {
  const clock = new ManualClock();
  const { drives, lockDrives } = inProcessDrives(n, clock);
  const lock = (host: number, mode: number, timeoutMs = 60_000, failedDrives = 0) =>
    new RaidLock({ lockId: LOCK_ID, hostId: hostId(host), mode, timeoutMs, drives: lockDrives, failedDrives }, clock);
  return { clock, drives, lock };
}

describe('ILM raid lock: majority', () => {
  test('3 drives: a lock held on a majority refuses another host with -1 after the 5 s deadline', async () => {
    const { clock, lock } = rig(3);
    assert.equal(await lock(1, EX).lock(), 0);
    const t0 = clock.ms;
    assert.equal(await lock(2, EX).lock(), -1);
    assert.ok(clock.ms - t0 > MAJORITY_TIMEOUT_MS);
  });

  test('one drive of three down: lock, renew and unlock succeed; two down: -EIO', async () => {
    const { drives, lock } = rig(3);
    drives[2]!.down = true;
    const a = lock(1, EX);
    assert.equal(await a.lock(), 0);
    assert.equal(await a.renew(), 0);
    assert.equal(await a.unlock(), 0);
    drives[1]!.down = true;
    assert.equal(await lock(1, EX).lock(), -E.IO);
  });

  test('unresolvable paths count as failed drives in N', async () => {
    const { lock } = rig(2);
    const l = lock(1, EX, 60_000, 2); // N = 4, majority 3, two answering drives
    assert.equal(l.majority, 3);
    assert.equal(await l.lock(), -E.IO);
  });

  test('renew keeps a lock on half of an even set; acquire needs more than half', async () => {
    const { drives, lock } = rig(4);
    const a = lock(1, EX);
    assert.equal(await a.lock(), 0);
    drives[0]!.down = true;
    drives[1]!.down = true;
    assert.equal(await a.renew(), 0, '2 of 4 keep it');
    drives[2]!.down = true;
    assert.equal(await a.renew(), -1, '1 of 4 does not');
  });

  test('a partial acquisition is given back before the retry (no drive left held by the loser)', async () => {
    const { drives, lock } = rig(3);
    // host 1 holds the mutex on drive 0 only
    await drives[0]!.execute({ cdb: Buffer.from('f0200000000000000000000002000100', 'hex'), dataOut: null, dataInBytes: 0, timeoutMs: 1 });
    const a = lock(1, EX);
    assert.equal(await a.lock(), 0);
    assert.equal(await lock(2, EX).lock(), -1);
    const b = new DriveCommands(drives[1]!);
    assert.deepEqual(await b.count(LOCK_ID, hostId(2)), { rv: 0, count: 1, self: 0 });
  });
});

describe('ILM raid lock: per-drive state machine', () => {
  test('BUSY -> BREAK: expired holders are broken, and the LVB then reads with the 0xFF marker byte', async () => {
    const { clock, lock } = rig(3);
    const a = lock(1, EX, 3000);
    assert.equal(await a.lock(), 0);
    clock.ms += 3001;
    const b = lock(2, EX, 60_000);
    assert.equal(await b.lock(), 0);
    assert.equal((await b.readLvb()).lvb.toString('hex'), '00000000000000ff');
    assert.equal(await a.unlock(), 0, 'UNLOCK of a broken entry: -ENOENT per drive, not counted as -EIO or -ETIME');
    assert.equal(await a.renew(), -1);
  });

  test('DUPLICATE: our own stale entry (earlier incarnation, same host id) is unlocked and retaken', async () => {
    const { lock } = rig(3);
    assert.equal(await lock(1, EX).lock(), 0);
    assert.equal(await lock(1, EX).lock(), 0);
  });

  test('convert: sh -> ex refused while another host shares (-1, rolled back), ex -> sh ok', async () => {
    const { lock } = rig(3);
    const a = lock(1, SH);
    const b = lock(2, SH);
    assert.equal(await a.lock(), 0);
    assert.equal(await b.lock(), 0);
    assert.equal(await a.convert(EX), -1);
    assert.equal(a.mode, SH);
    assert.equal(a.convertFailed, false);
    assert.equal(await b.unlock(), 0);
    assert.equal(await a.convert(EX), 0);
    assert.deepEqual(await lock(3, 0).queryMode(), { rv: 0, mode: EX });
    assert.equal(await a.convert(SH), 0);
    assert.deepEqual(await lock(3, 0).count(), { rv: 0, count: 1, self: 0 });
  });

  test('sh -> ex against expired sharers succeeds through BREAK', async () => {
    const { clock, lock } = rig(3);
    const a = lock(1, SH, 3000);
    const b = lock(2, SH, 3000);
    assert.equal(await a.lock(), 0);
    assert.equal(await b.lock(), 0);
    clock.ms += 3001;
    assert.equal(await a.renew(), 0);
    assert.equal(await a.convert(EX), 0);
  });

  test('LVB: written with the unlock; the next holder reads the largest value a majority reports', async () => {
    const { drives, lock } = rig(3);
    const a = lock(1, EX);
    assert.equal(await a.lock(), 0);
    a.lvb = Buffer.from([1, 2, 3, 4, 5, 6, 7, 0x99]);
    assert.equal(await a.unlock(), 0);
    await a.destroy();
    drives[0]!.down = true;
    const b = lock(2, SH);
    assert.equal(await b.lock(), 0);
    assert.deepEqual(await b.readLvb(), { rv: 0, lvb: Buffer.from([1, 2, 3, 4, 5, 6, 7, 0]) });
    void MutexOp;
  });

  test('a holder that read all ones (BREAK) and wrote nothing leaves the drives\' LVB on unlock, not zeros (simulator finding 21)', async () => {
    const { clock, lock } = rig(3);
    const a = lock(1, EX, 3000);
    assert.equal(await a.lock(), 0);
    a.lvb = Buffer.from([9, 8, 7, 6, 5, 4, 3, 0]);
    assert.equal(await a.unlock(), 0);
    const stale = lock(3, EX, 3000);
    assert.equal(await stale.lock(), 0, 'a holder that dies: its entries expire');
    clock.ms += 3001;
    const b = lock(2, SH, 60_000);
    assert.equal(await b.lock(), 0);
    assert.equal((await b.readLvb()).lvb.toString('hex'), '09080706050403ff', 'the marker byte over the drives\' value');
    assert.equal(await b.unlock(), 0);
    await b.destroy();
    const c = lock(4, SH, 60_000);
    assert.equal(await c.lock(), 0);
    assert.deepEqual(await c.readLvb(), { rv: 0, lvb: Buffer.from([9, 8, 7, 6, 5, 4, 3, 0]) });
  });

  test('entries added between the inquiry and the list read do not hide ours (simulator finding 24)', async () => {
    const { clock, drives, lockDrives } = (() => { const c = new ManualClock(); return { clock: c, ...inProcessDrives(1, c) }; })();
    const other = (host: number) => new RaidLock({ lockId: Buffer.alloc(64, 0x30), hostId: hostId(host), mode: SH, timeoutMs: 60_000, drives: lockDrives, failedDrives: 0 }, clock);
    assert.equal(await other(10).lock(), 0, 'a mutex created before ours: its entries list first');
    const a = new RaidLock({ lockId: LOCK_ID, hostId: hostId(1), mode: EX, timeoutMs: 60_000, drives: lockDrives, failedDrives: 0 }, clock);
    assert.equal(await a.lock(), 0);
    const d = drives[0]!;
    const execute = d.execute.bind(d);
    let armed = true;
    d.execute = async (cmd) => {
      const r = await execute(cmd);
      if (armed && cmd.cdb[14] === 0xff) {
        armed = false;
        // After the count was read: three more hosts share the earlier mutex, pushing our entry down.
        for (const h of [11, 12, 13]) assert.equal(await other(h).lock(), 0);
      }
      return r;
    };
    a.lvb = Buffer.from([1, 2, 3, 4, 5, 6, 7, 0]);
    assert.deepEqual(await a.readLvb(), { rv: 0, lvb: Buffer.alloc(8) });
    assert.equal(a.driveStates()[0]!.state, 3, 'still LOCK');
    assert.equal(await a.unlock(), 0);
    assert.deepEqual(await new DriveCommands(d).count(LOCK_ID, hostId(2)), { rv: 0, count: 0, self: 0 }, 'our UNLOCK reached the drive');
  });

  test('a demotion that loses the majority (broken by another host) answers 0 and marks the convert failed', async () => {
    const { clock, lock } = rig(3);
    const a = lock(1, EX, 1000);
    assert.equal(await a.lock(), 0);
    clock.ms += 1001;
    assert.equal(await lock(2, EX, 1000).lock(), 0);
    assert.equal(await a.convert(SH), 0, 'demotion without majority: marked failed, answered 0');
    assert.equal(a.convertFailed, true);
    assert.equal(await a.convert(EX), -1);
  });
});
