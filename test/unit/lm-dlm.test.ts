// The dlm lock manager (src/lm/dlm) against the DLM model (sim/dlm-model.ts):
// lock_args and cluster names, lockspace start and adoption, ex/sh exclusion
// across nodes with NOQUEUE, the val_blk in the LVB (little-endian, version
// bumps seen by the other node, VBF_REMOVED), every lost-LVB case leading to
// invalidation, orphans kept by a killed daemon and adopted by the next one,
// refresh_lv through the run API, and what happens without dlm_controld.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { E } from '../../src/core/constants';
import type { ResourceView } from '../../src/lm/types';
import { DlmLockManager, vgLvFromPath, type DlmLockspace } from '../../src/lm/dlm/dlm-lm';
import { LKM } from '../../src/lm/dlm/kernel';
import { DlmClusterModel, grantedModes, type ModelProcess } from '../../sim/dlm-model';

interface Node { m: DlmLockManager; proc: ModelProcess; logs: string[]; errors: string[] }

function node(c: DlmClusterModel, nodeid: number, controld = () => true): Node {
  const n = c.node(nodeid);
  const proc = n.process();
  const logs: string[] = [];
  const errors: string[] = [];
  const m = new DlmLockManager({
    kernel: proc, control: n.control(), configfs: n.configfs({ controld }),
    debug: (l) => logs.push(l), error: (l) => { logs.push(l); errors.push(l); },
    sleep: () => new Promise((r) => setImmediate(r)),
  });
  return { m, proc, logs, errors };
}

const VIEW = (vg: string, vgArgs: string) => ({ name: `lvm_${vg}`, vgName: vg, vgUuid: 'u', vgArgs, hostId: 0 });
const NO_EVENTS = { failed: () => undefined };
const PLAIN = { adoptOnly: false, adoptOk: false, repair: false };
const ADOPT_ONLY = { adoptOnly: true, adoptOk: false, repair: false };
const res = (name: string, type: 'gl' | 'vg' | 'lv', mode: 'un' | 'sh' | 'ex' = 'un'): ResourceView =>
  ({ name, type, mode, lvArgs: '', useValueBlock: type !== 'lv', testRemote: null });

async function started(n: Node, vg: string, args = '1.0.0:cluster1'): Promise<DlmLockspace> {
  const ls = n.m.createLockspace(VIEW(vg, args), NO_EVENTS);
  assert.equal((await ls.prepare({ repair: false })).rv, 0, n.logs.join('\n'));
  assert.equal(await ls.join({ adoptOnly: false, adoptOk: false, nodelay: false }), 0, n.logs.join('\n'));
  return ls;
}

describe('dlm lock manager on the DLM model', () => {
  test('init_vg: lock_args <version>:<cluster_name> from configfs; -EMANAGER without dlm_controld', async () => {
    const c = new DlmClusterModel({ clusterName: 'prod' });
    const a = node(c, 1);
    assert.deepEqual(await a.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: '', alignMb: 0, otherArgs: '' }),
      { rv: 0, vgArgs: '1.0.0:prod' });
    assert.equal(a.m.isRunning(), true);
    let up = false;
    const b = node(c, 2, () => up);
    assert.equal(b.m.isRunning(), false);
    assert.deepEqual(await b.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: '', alignMb: 0, otherArgs: '' }),
      { rv: -E.MANAGER, vgArgs: '' });
    assert.ok(b.logs.includes('read_cluster_name: open error -2, check dlm_controld'), b.logs.join('\n'));
    const ls = b.m.createLockspace(VIEW('vg1', '1.0.0:prod'), NO_EVENTS);
    assert.equal((await ls.prepare({ repair: false })).rv, -E.MANAGER, 'lock-start without dlm_controld');
    up = true;
    c.clusterName = 'x'.repeat(58);
    assert.equal((await a.m.initVg({ lsName: 'lvm_vg1', vgName: 'vg1', flags: 0, vgArgs: '', alignMb: 0, otherArgs: '' })).rv, -E.ARGS);
  });

  test('start: refused for another cluster, a newer args major, args without a cluster name', async () => {
    const c = new DlmClusterModel({ clusterName: 'prod' });
    const a = node(c, 1);
    for (const [args, rv, msg] of [
      ['1.0.0:test', -E.ARGS, 'prepare_lockspace_dlm lvm_vg1 mismatching cluster names sys prod arg test'],
      ['2.0.0:prod', -E.ARGS, 'check_args_version 2.0.0:prod major 2 1'],
      ['1.0.0', -E.ARGS, 'prepare_lockspace_dlm lvm_vg1 no cluster name from args 1.0.0'],
      ['x:prod', -E.ARGS, 'check_args_version x:prod error -1'],
      ['1.0.0:prod', 0, null],
    ] as const) {
      const ls = a.m.createLockspace(VIEW('vg1', args), NO_EVENTS);
      assert.equal((await ls.prepare({ repair: false })).rv, rv, args);
      if (msg) assert.ok(a.errors.includes(msg), `${args}: ${a.errors.join('\n')}`);
    }
    // the global lockspace has no args
    const gl = a.m.createLockspace({ name: 'lvm_global', vgName: '', vgUuid: '', vgArgs: '', hostId: 0 }, NO_EVENTS);
    assert.equal((await gl.prepare({ repair: false })).rv, 0);
  });

  test('ex excludes ex and sh on the other node (NOQUEUE: -EAGAIN at once); sh is shared; release lets the other in', async () => {
    const c = new DlmClusterModel();
    const a = node(c, 1), b = node(c, 2);
    const la = await started(a, 'vg1'), lb = await started(b, 'vg1');
    const lv = res('lvuuid-1', 'lv');
    assert.equal((await la.lock(lv, 'ex', PLAIN)).rv, 0);
    assert.equal((await lb.lock(lv, 'ex', PLAIN)).rv, -E.AGAIN);
    assert.equal((await lb.lock(lv, 'sh', PLAIN)).rv, -E.AGAIN);
    assert.deepEqual(grantedModes(c, 'lvm_vg1', 'lvuuid-1').map((g) => [g.nodeid, g.mode]), [[1, LKM.EX], [2, LKM.NL]]);
    assert.equal(await la.unlock({ ...lv, mode: 'ex' }, 0, { freeVg: false }), 0);
    assert.equal((await lb.lock(lv, 'sh', PLAIN)).rv, 0);
    assert.equal((await la.lock(lv, 'sh', PLAIN)).rv, 0, 'sh with sh');
    assert.equal((await la.lock(lv, 'ex', PLAIN)).rv, -E.AGAIN, 'sh->ex while the other holds sh');
    // forget drops the NL lock: the resource's lock is gone from the kernel
    assert.equal(await la.unlock({ ...lv, mode: 'sh' }, 0, { freeVg: false }), 0);
    la.forget('lvuuid-1');
    await la.leave({ freeVg: false });
    assert.deepEqual(grantedModes(c, 'lvm_vg1', 'lvuuid-1').map((g) => g.nodeid), [2]);
  });

  test('LVB: val_blk little-endian at the start of the LVB; r_version written on ex release is read by the other node', async () => {
    const c = new DlmClusterModel();
    const a = node(c, 1), b = node(c, 2);
    const la = await started(a, 'vg1'), lb = await started(b, 'vg1');
    const vg = res('VGLK', 'vg');
    assert.deepEqual((await la.lock(vg, 'ex', PLAIN)).vb, { version: 0, flags: 0, rVersion: 0 });
    assert.equal(await la.unlock({ ...vg, mode: 'ex' }, 7, { freeVg: false }), 0);
    assert.ok(a.logs.includes('lvm_vg1:VGLK unlock_dlm vb old 0 0 0 new 101 0 7'), a.logs.join('\n'));
    const rsb = c.lockspaces.get('lvm_vg1')!.resources.get('VGLK')!;
    assert.equal(rsb.lvb.subarray(0, 8).toString('hex'), '0101000007000000');
    assert.deepEqual((await lb.lock(vg, 'sh', PLAIN)).vb, { version: 0x101, flags: 0, rVersion: 7 });
    assert.equal(await lb.unlock({ ...vg, mode: 'sh' }, 0, { freeVg: false }), 0);
    // a C host's val_blk written by hand is read the same way
    rsb.lvb.write('0101000009000000', 'hex');
    assert.deepEqual((await lb.lock(vg, 'ex', PLAIN)).vb, { version: 0x101, flags: 0, rVersion: 9 });
    // convert ex->sh writes the new version
    assert.equal(await lb.convert({ ...vg, mode: 'ex' }, 'sh', 10), 0);
    assert.equal(rsb.lvb.readUInt32LE(4), 10);
  });

  test('vgremove: the VG lock released with free_vg carries VBF_REMOVED, which the other node reads', async () => {
    const c = new DlmClusterModel();
    const a = node(c, 1), b = node(c, 2);
    const la = await started(a, 'vg1'), lb = await started(b, 'vg1');
    const vg = res('VGLK', 'vg');
    await la.lock(vg, 'ex', PLAIN);
    assert.equal(await la.unlock({ ...vg, mode: 'ex' }, 3, { freeVg: true }), 0);
    assert.deepEqual((await lb.lock(vg, 'sh', PLAIN)).vb, { version: 0x101, flags: 1, rVersion: 3 });
  });

  test('lost LVB: an EX holder dies, or only NL copies survive -> VALNOTVALID -> empty val_blk; a freed resource -> zeroed LVB', async () => {
    const c = new DlmClusterModel();
    const a = node(c, 1), b = node(c, 2);
    const la = await started(a, 'vg1'), lb = await started(b, 'vg1');
    const vg = res('VGLK', 'vg');
    await la.lock(vg, 'ex', PLAIN);
    await la.unlock({ ...vg, mode: 'ex' }, 5, { freeVg: false });
    await la.lock(vg, 'ex', PLAIN);
    assert.equal((await lb.lock(vg, 'sh', PLAIN)).rv, -E.AGAIN);
    c.failNode(1);
    // b waits for recovery: the lock is not granted before the dead node's locks are released
    let got: { rv: number; vb?: unknown } | null = null;
    const p = lb.lock(vg, 'sh', PLAIN).then((r) => { got = r; });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(got, null, 'granted before recovery');
    c.recoverNode(1);
    await p;
    assert.deepEqual(got, { rv: 0, vb: { version: 0, flags: 0, rVersion: 0 }, vbLost: true });
    assert.ok(b.logs.includes('lvm_vg1:VGLK lock_dlm VALNOTVALID'), b.logs.join('\n'));
    void la;

    // only an NL copy survives the dead PR holder: recovered but not valid
    const c2 = new DlmClusterModel();
    const x = node(c2, 1), y = node(c2, 2);
    const lx = await started(x, 'vg2'), ly = await started(y, 'vg2');
    await ly.lock(vg, 'sh', PLAIN);
    await ly.unlock({ ...vg, mode: 'sh' }, 0, { freeVg: false });
    await lx.lock(vg, 'ex', PLAIN);
    await lx.unlock({ ...vg, mode: 'ex' }, 4, { freeVg: false });
    await lx.lock(vg, 'sh', PLAIN);
    c2.failNode(1);
    c2.recoverNode(1);
    assert.deepEqual(await ly.lock(vg, 'sh', PLAIN), { rv: 0, vb: { version: 0, flags: 0, rVersion: 0 }, vbLost: true });
    assert.ok(y.logs.includes('lvm_vg2:VGLK lock_dlm VALNOTVALID'), y.logs.join('\n'));

    // every lock on the resource released: the kernel frees it and the LVB reads as zeros
    await ly.unlock({ ...vg, mode: 'sh' }, 0, { freeVg: false });
    ly.forget('VGLK');
    await ly.leave({ freeVg: false });
    const ly2 = await started(node(c2, 2), 'vg2');
    assert.deepEqual((await ly2.lock(vg, 'sh', PLAIN)).vb, { version: 0, flags: 0, rVersion: 0 });
    assert.equal(c2.lockspaces.get('lvm_vg2')!.resources.get('VGLK')!.valNotValid, false);
  });

  test('daemon killed: PERSISTENT locks stay as orphans, the other node stays refused; -A 1 adopts them; purge drops the rest', async () => {
    const c = new DlmClusterModel();
    const a = node(c, 1), b = node(c, 2);
    const la = await started(a, 'vg1'), lb = await started(b, 'vg1');
    await la.lock(res('lv-1', 'lv'), 'ex', PLAIN);
    await la.lock(res('lv-2', 'lv'), 'sh', PLAIN);
    await la.lock(res('lv-3', 'lv'), 'ex', PLAIN);
    a.proc.crash();
    assert.deepEqual(grantedModes(c, 'lvm_vg1', 'lv-1').filter((g) => g.nodeid === 1), [{ nodeid: 1, mode: LKM.EX, orphan: true }]);
    assert.equal((await lb.lock(res('lv-1', 'lv'), 'sh', PLAIN)).rv, -E.AGAIN, 'the orphan still protects the LV');

    const a2 = node(c, 1);
    const fresh = a2.m.createLockspace(VIEW('vg1', '1.0.0:cluster1'), NO_EVENTS);
    await fresh.prepare({ repair: false });
    assert.equal(await fresh.join({ adoptOnly: false, adoptOk: false, nodelay: false }), -1, 'NEWEXCL: the lockspace still exists');
    const ls = a2.m.createLockspace(VIEW('vg1', '1.0.0:cluster1'), NO_EVENTS);
    await ls.prepare({ repair: false });
    assert.equal(await ls.join({ adoptOnly: true, adoptOk: false, nodelay: false }), 0);
    assert.equal((await ls.lock(res('lv-1', 'lv'), 'ex', ADOPT_ONLY)).rv, 0);
    assert.equal((await ls.lock(res('lv-2', 'lv'), 'ex', ADOPT_ONLY)).rv, -E.ADOPT_RETRY, 'orphan in the other mode');
    assert.equal((await ls.lock(res('lv-2', 'lv'), 'sh', ADOPT_ONLY)).rv, 0);
    assert.equal((await ls.lock(res('lv-9', 'lv'), 'ex', ADOPT_ONLY)).rv, -E.ADOPT_NONE);
    assert.equal(await ls.purgeOrphans(), 0);
    assert.equal((await lb.lock(res('lv-3', 'lv'), 'ex', PLAIN)).rv, 0, 'the purged orphan is free');
    assert.equal((await lb.lock(res('lv-1', 'lv'), 'sh', PLAIN)).rv, -E.AGAIN, 'the adopted lock still protects');
    // the adopted lock is ours: released normally
    assert.equal(await ls.unlock(res('lv-1', 'lv', 'ex'), 0, { freeVg: false }), 0);
    assert.equal((await lb.lock(res('lv-1', 'lv'), 'sh', PLAIN)).rv, 0);
    // adopt_only of a VG whose lockspace is not in the kernel: nothing to adopt
    const none = a2.m.createLockspace(VIEW('vg7', '1.0.0:cluster1'), NO_EVENTS);
    assert.equal(await none.join({ adoptOnly: true, adoptOk: false, nodelay: false }), -E.ADOPT_NONE);
  });

  test('other hosts from configfs members; refresh_lv runs lvchange --refresh on the other nodes and waits', async () => {
    const c = new DlmClusterModel();
    const a = node(c, 1), b = node(c, 2);
    const la = await started(a, 'vg1');
    assert.deepEqual(await la.otherHosts(true), { rv: 0, hostsUnknown: false });
    const lb = await started(b, 'vg1');
    assert.deepEqual(await la.otherHosts(true), { rv: 1, hostsUnknown: false });
    await lb.leave({ freeVg: false });
    assert.deepEqual(await la.otherHosts(true), { rv: 0, hostsUnknown: false });
    const ran: Array<[number, string]> = [];
    c.runHandler = (nodeid, cmd) => { ran.push([nodeid, cmd]); return 0; };
    assert.equal(await a.m.refreshLv({ lvUuid: 'u', path: '/dev/vg1/lv1' }), 0);
    assert.deepEqual(ran, [[2, 'lvm lvchange --refresh --partial --nolocking vg1/lv1']]);
    c.runHandler = () => 5;
    assert.equal(await a.m.refreshLv({ lvUuid: 'u', path: '/dev/vg1/lv1' }), -1, 'a node failed the refresh');
    assert.equal(await a.m.refreshLv({ lvUuid: 'u', path: 'nopath' }), -E.INVAL);
    assert.deepEqual(vgLvFromPath('/dev//vg-a//lv_b'), { vg: 'vg-a', lv: 'lv_b' });
  });
});
