// stop_all (lvmlockctl --stop-lockspaces, which sends "wait" by default) must
// answer once every lockspace has ended, whatever its lock manager did on the
// way: failed to start, lost its lease storage, returned errors or threw. In
// lvmlockd 2.03.16 the lm_* calls only return results, so the lockspace
// thread always reaches thread_done; stop_all waits only while a lockspace
// still holds locks (for_each_lockspace's need_stop, without "force") or is
// still inside a lock-manager call (need_free).
//
// Part 1 drives the core with the test manager and injects failures into one
// call of its lockspaces; part 2 uses the real sanlock manager on an in-memory
// lvmlock LV whose I/O starts failing (EIO) or hanging at each stage.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CoreHarness, lockLv, startVg, type Fields } from '../helpers/core-harness';
import type { LockResult, ManagedLockspace } from '../../src/lm/types';
import { E } from '../../src/core/constants';
import { ManualClock, flushAsync } from '../../src/io/clock';
import { MemoryDisk, type FaultAction } from '../../src/io/memory-disk';
import type { Disk } from '../../src/io/disk';
import { SeededRandom } from '../../src/leases/random';
import { LockdCore, newGlobalLockChoice } from '../../src/core/lockd';
import { SanlockLockManager } from '../../src/lm/sanlock/sanlock-lm';
import { ConfigMap, formatRequest, parseConfigTree } from '../../src/protocol/config-tree';

const LV1 = 'uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub';
function stopAll(opts: string): Fields {
  return [['request', 'stop_all'], ['cmd', 'lvmlockctl'], ['pid', 1], ['opts', opts]];
}
/** What `lvmlockctl --stop-lockspaces` sends by default. */
const STOP_ALL_WAIT = stopAll('wait ');

function opResult(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const p = parseConfigTree(text);
  assert.ok(p.ok, text);
  const m = new ConfigMap(p.entries);
  const v = m.int('op_result') ?? m.int('result');
  return v === undefined ? undefined : Number(v);
}

// ---- part 1: the core with a manager call that throws ----

type Call = 'prepare' | 'join' | 'lock' | 'unlock' | 'leave';

/**
 * A harness whose sanlock lockspaces throw from `call` (lock/unlock: for LV
 * resources only). `thrown` counts the throws.
 */
function throwingHarness(call: Call): { h: CoreHarness; thrown: () => number; left: () => number } {
  const h = new CoreHarness({ devices: ['/dev/mapper/vgs-lvmlock'] });
  const m = h.managers.sanlock!;
  const create = m.createLockspace.bind(m);
  let thrown = 0;
  let left = 0;
  m.createLockspace = (view, events) => {
    const ls = create(view, events);
    const wrapped: ManagedLockspace = Object.create(ls) as ManagedLockspace;
    const fail = (): never => { thrown++; throw new Error(`injected ${call} failure`); };
    if (call === 'prepare') wrapped.prepare = async () => fail();
    if (call === 'join') wrapped.join = async () => fail();
    wrapped.leave = async (o) => {
      left++;
      if (call === 'leave') fail();
      return ls.leave(o);
    };
    wrapped.lock = async (res, mode, o): Promise<LockResult> => (call === 'lock' && res.type === 'lv' ? fail() : ls.lock(res, mode, o));
    wrapped.unlock = async (res, v, o) => (call === 'unlock' && res.type === 'lv' ? fail() : ls.unlock(res, v, o));
    return wrapped;
  };
  return { h, thrown: () => thrown, left: () => left };
}

/** Sends a request and settles (with the worker's paced passes); returns the replies it got. */
async function exchange(h: CoreHarness, cl: number, fields: Fields): Promise<string[]> {
  h.take(cl);
  h.send(cl, fields);
  for (let i = 0; i < 5; i++) await h.settle();
  return h.take(cl);
}

describe('stop_all when a lock-manager call throws', () => {
  const cases: Array<{ call: Call; start: number; lock: number; unlock: number }> = [
    // start_vg answers after prepare (no "wait" option): the prepare error, or 0 before a join that fails.
    { call: 'prepare', start: -E.LMERR, lock: -E.NOLS, unlock: -E.NOLS },
    { call: 'join', start: 0, lock: -E.NOLS, unlock: -E.NOLS },
    { call: 'lock', start: 0, lock: -E.LMERR, unlock: -E.NOENT },
    // lvmlockd keeps a lock whose unlock failed in the lock manager (res_unlock returns
    // the error before removing it): stop_all then waits for it, unless forced.
    { call: 'unlock', start: 0, lock: 0, unlock: -E.LMERR },
    { call: 'leave', start: 0, lock: 0, unlock: 0 },
  ];
  for (const c of cases) {
    test(`${c.call} throws: every request is answered, the lockspace ends, stop_all answers 0`, async () => {
      const { h, thrown, left } = throwingHarness(c.call);
      const a = h.connect();
      assert.deepEqual((await exchange(h, a, startVg('vgs', 'sanlock'))).map(opResult), [c.start]);
      assert.deepEqual((await exchange(h, a, [['request', 'start_wait'], ['pid', 1]])).map(opResult), [0]);
      assert.deepEqual((await exchange(h, a, lockLv('vgs', LV1, 'ex', 'persistent'))).map(opResult), [c.lock]);
      assert.deepEqual((await exchange(h, a, lockLv('vgs', LV1, 'un', 'persistent'))).map(opResult), [c.unlock]);
      const stop = await exchange(h, a, c.call === 'unlock' ? stopAll('wait force') : STOP_ALL_WAIT);
      assert.ok(thrown() > 0, 'the failure was injected');
      assert.deepEqual(stop.map(opResult), [0], `stop_all answered\n${h.log.slice(-25).join('\n')}`);
      assert.deepEqual(h.core.lockspaces.map((l) => l.name), [], 'no lockspace left');
      // A lockspace that joined is left, also when the join threw half-way.
      assert.equal(left(), c.call === 'prepare' ? 0 : 1);
      assert.ok(h.log.some((l) => l.startsWith('ERROR S lvm_vgs lock manager ') && l.includes(`injected ${c.call} failure`)),
        'the throw is logged');
    });
  }

  test('a failed unlock keeps the lock (as lvmlockd): stop_all "wait" without force waits for it, -w 0 counts it', async () => {
    const { h } = throwingHarness('unlock');
    const a = h.connect();
    await exchange(h, a, startVg('vgs', 'sanlock'));
    await exchange(h, a, [['request', 'start_wait'], ['pid', 1]]);
    assert.deepEqual((await exchange(h, a, lockLv('vgs', LV1, 'ex', 'persistent'))).map(opResult), [0]);
    assert.deepEqual((await exchange(h, a, lockLv('vgs', LV1, 'un', 'persistent'))).map(opResult), [-E.LMERR]);
    assert.deepEqual(await exchange(h, a, STOP_ALL_WAIT), [], 'waits while the LV lock is held');
    const b = h.connect();
    assert.deepEqual((await exchange(h, b, stopAll('none'))).map(opResult), [1]);
  });

  test('a pass of the loop that fails (a bug of ours): its request is cancelled, the loop serves on and stops', async () => {
    const h = new CoreHarness({ devices: ['/dev/mapper/vgs-lvmlock'] });
    const a = h.connect();
    await exchange(h, a, startVg('vgs', 'sanlock'));
    await exchange(h, a, [['request', 'start_wait'], ['pid', 1]]);
    assert.deepEqual((await exchange(h, a, lockLv('vgs', LV1, 'ex', 'persistent'))).map(opResult), [0]);
    const ls = h.core.lockspaces[0]! as unknown as { processResource?: () => Promise<boolean> };
    // The next pass over the resources fails in the core itself.
    ls.processResource = async () => { throw new Error('injected core failure'); };
    assert.deepEqual((await exchange(h, a, lockLv('vgs', LV1, 'un', 'persistent'))).map(opResult), [-E.CANCELED]);
    assert.ok(h.log.some((l) => /^ERROR S lvm_vgs lockspace loop failed: injected core failure/.test(l)), h.log.slice(-10).join('\n'));
    // The lock is still held (its unlock was cancelled): stop_all waits for it, as for any held lock.
    assert.deepEqual(await exchange(h, a, STOP_ALL_WAIT), []);
    delete ls.processResource;
    const b = h.connect();
    assert.deepEqual((await exchange(h, b, lockLv('vgs', LV1, 'un', 'persistent'))).map(opResult), [0]);
    for (let i = 0; i < 5; i++) await h.settle();
    assert.deepEqual(h.take(a).map(opResult), [0], 'the waiting stop_all answers once the lock is released');
    assert.deepEqual(h.core.lockspaces, []);
  });

  test('a request that fails while still queued is answered -ECANCELED once, and the loop goes on', async () => {
    const h = new CoreHarness({ devices: ['/dev/mapper/vgs-lvmlock'] });
    const a = h.connect();
    await exchange(h, a, startVg('vgs', 'sanlock'));
    await exchange(h, a, [['request', 'start_wait'], ['pid', 1]]);
    const ls = h.core.lockspaces[0]! as unknown as { findResource?: () => never };
    let thrown = 0;
    ls.findResource = () => { thrown++; throw new Error('injected core failure'); };
    const query: Fields = [['request', 'query_lock_lv'], ['pid', 1], ['opts', 'none'], ['vg_name', 'vgs'], ['lv_name', 'lv1'],
      ['lv_uuid', LV1], ['vg_lock_type', 'sanlock'], ['vg_lock_args', '1.0.0:lvmlock'], ['lv_lock_args', '1.0.0:70254592']];
    assert.deepEqual((await exchange(h, a, query)).map(opResult), [-E.CANCELED]);
    assert.equal(thrown, 1, 'taken off the queue, not retried');
    delete ls.findResource;
    assert.deepEqual((await exchange(h, a, query)).map(opResult), [0]);
    assert.deepEqual((await exchange(h, a, STOP_ALL_WAIT)).map(opResult), [0]);
  });
});

// ---- part 2: the sanlock manager, lease storage failing ----

const MiB = 1 << 20;
const VG_UUID = 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK';

/** The core with the real sanlock manager (io_timeout 2, as the suite's `lvmlockd -o 2`) on a memory lvmlock LV. */
function sanlockDaemon() {
  const clock = new ManualClock();
  let fault: FaultAction | undefined;
  const disk = new MemoryDisk(72 * MiB, { clock, fault: () => fault });
  const handle: Disk = {
    path: disk.path, sectorSize: disk.sectorSize, size: async () => disk.data.length,
    read: (o, l, opts) => disk.read(o, l, opts), write: (o, d, opts) => disk.write(o, d, opts), close: async () => undefined,
  };
  const gl = newGlobalLockChoice();
  const log: string[] = [];
  const killed: string[] = [];
  const replies: string[] = [];
  const sanlock = new SanlockLockManager({
    glChoice: gl, ioTimeout: 2, defaultHostId: () => 1, lockspaceCount: () => 0,
    debug: (l) => log.push(l), error: (l) => log.push('ERROR ' + l),
    sleep: (ms) => clock.sleep(ms), clock, random: new SeededRandom(1),
    openDisk: async () => handle, mapperDir: '/dev/mapper',
    blockSizes: () => ({ physical: 512, logical: 512 }), deviceExists: () => true, hostName: 'host1',
  });
  const core = new LockdCore({
    send: (_id, text) => { replies.push(text); return true; },
    sendDump: async () => 0, dumpLog: () => '', debug: (l) => log.push(l), error: (l) => log.push('ERROR ' + l),
    sleep: (ms) => clock.sleep(ms), defer: (fn) => setImmediate(fn), nowMs: () => clock.nowMs(),
    quit: () => undefined, locksChanged: () => undefined, killVg: (vg) => killed.push(vg),
  }, { testMode: false, glType: null, managers: { sanlock }, glChoice: gl });
  const cl = core.addClient(1, 10, 1);

  /** Sends a request and runs the clock until it is answered or `limitMs` pass; the reply. */
  async function reqText(fields: Fields, limitMs = 300_000): Promise<string | undefined> {
    const before = replies.length;
    core.request(cl, formatRequest(fields));
    const end = clock.nowMs() + limitMs;
    for (;;) {
      await flushAsync(2);
      if (replies.length > before) return replies[before];
      if (clock.nowMs() >= end || !clock.runNext()) return undefined;
    }
  }
  /** The same, the reply's result. */
  async function req(fields: Fields, limitMs = 300_000): Promise<number | undefined> {
    return opResult(await reqText(fields, limitMs));
  }
  async function advance(ms: number): Promise<void> {
    const end = clock.nowMs() + ms;
    while (clock.nowMs() < end) {
      await flushAsync(2);
      if (!clock.runNext()) break;
    }
  }
  return { core, log, killed, req, reqText, advance, fail: (f: FaultAction['kind'] | null) => { fault = f ? { kind: f } as FaultAction : undefined; } };
}

const startSanlockVg: Fields = [['request', 'start_vg'], ['pid', 1], ['vg_name', 'vg1'], ['vg_lock_type', 'sanlock'],
  ['vg_lock_args', '1.0.0:lvmlock'], ['vg_uuid', VG_UUID], ['host_id', 1], ['opts', 'none']];

async function initVgLv(d: ReturnType<typeof sanlockDaemon>): Promise<string> {
  assert.equal(await d.req([['request', 'init_vg'], ['pid', 1], ['vg_name', 'vg1'], ['vg_lock_type', 'sanlock'], ['vg_lock_args', 'lvmlock'], ['opts', 'none']]), 0);
  const lv = await d.reqText([['request', 'init_lv'], ['pid', 1], ['vg_name', 'vg1'], ['lv_name', 'lv1'], ['lv_uuid', LV1],
    ['vg_lock_type', 'sanlock'], ['vg_lock_args', '1.0.0:lvmlock'], ['opts', 'none']]);
  assert.equal(opResult(lv), 0);
  const args = /^lv_lock_args = "(1\.0\.0:\d+)"$/m.exec(lv ?? '');
  assert.ok(args, lv);
  return args[1]!;
}

function lockSanlockLv(lvArgs: string, mode: string): Fields {
  return [['request', 'lock_lv'], ['pid', 1], ['vg_name', 'vg1'], ['lv_name', 'lv1'], ['lv_uuid', LV1],
    ['lv_lock_args', lvArgs], ['mode', mode], ['opts', 'persistent']];
}

describe('stop_all when a sanlock VG\'s lease storage fails (io_timeout 2)', () => {
  for (const kind of ['eio', 'hang'] as const) {
    test(`${kind} after the join: the delta lease is lost, the kill procedure starts, stop_all answers 0`, async () => {
      const d = sanlockDaemon();
      await initVgLv(d);
      assert.equal(await d.req(startSanlockVg), 0);
      assert.equal(await d.req([['request', 'start_wait'], ['pid', 1]]), 0);
      d.fail(kind);
      await d.advance(60_000);
      assert.deepEqual(d.killed, ['vg1']);
      assert.equal(await d.req(STOP_ALL_WAIT), 0, d.log.slice(-20).join('\n'));
      assert.deepEqual(d.core.lockspaces, []);
    });

    test(`${kind} while joining: start_vg fails, stop_all answers 0`, async () => {
      const d = sanlockDaemon();
      await initVgLv(d);
      d.fail(kind);
      assert.equal(await d.req(startSanlockVg), -E.MANAGER);
      assert.equal(await d.req(STOP_ALL_WAIT), 0);
      assert.deepEqual(d.core.lockspaces, []);
    });

    test(`${kind} during an LV lock and during stop_vg: both answered, stop_all answers 0`, async () => {
      const d = sanlockDaemon();
      const lvArgs = await initVgLv(d);
      assert.equal(await d.req(startSanlockVg), 0);
      assert.equal(await d.req([['request', 'start_wait'], ['pid', 1]]), 0);
      d.fail(kind);
      const lock = await d.req(lockSanlockLv(lvArgs, 'ex'));
      assert.ok(lock !== undefined && lock < 0, `lock_lv answered with an error: ${lock}`);
      assert.equal(await d.req([['request', 'stop_vg'], ['pid', 1], ['vg_name', 'vg1'], ['opts', 'none']]), 0);
      assert.equal(await d.req(STOP_ALL_WAIT), 0);
      assert.deepEqual(d.core.lockspaces, []);
    });

    test(`${kind} with an LV lock held: "wait" waits for the LV (as lvmlockd), "force" answers 0`, async () => {
      const d = sanlockDaemon();
      const lvArgs = await initVgLv(d);
      assert.equal(await d.req(startSanlockVg), 0);
      assert.equal(await d.req([['request', 'start_wait'], ['pid', 1]]), 0);
      assert.equal(await d.req(lockSanlockLv(lvArgs, 'ex')), 0, d.log.slice(-15).join('\n'));
      d.fail(kind);
      await d.advance(60_000);
      assert.deepEqual(d.killed, ['vg1']);
      assert.equal(await d.req(STOP_ALL_WAIT, 120_000), undefined, 'no answer while the LV lock is held');
      assert.equal(await d.req(stopAll('wait force')), 0);
      assert.deepEqual(d.core.lockspaces, []);
    });
  }
});
