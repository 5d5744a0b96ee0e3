// LockdCore driven directly through fake ports (test/helpers/core-harness.ts)
// with the test-mode lock managers, as `lvmlockd -T` builds them. Expected
// results follow lvmlockd-core.c (res_process, res_lock, res_unlock,
// res_convert, client_send_result) and the golden traces.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  CoreHarness, hello, lockGl, lockLv, lockVg, simpleVg, startVg, vgUpdate, type Fields,
} from '../helpers/core-harness';

const LV1 = 'uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub';
const LV2 = 'aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg';
const SANLOCK_DEV = '/dev/mapper/vgs-lvmlock';

/** A harness with a started VG (and, for dlm, lvm_global) and one client. */
async function started(lm: 'dlm' | 'sanlock', vg = lm === 'dlm' ? 'vg1' : 'vgs'): Promise<{ h: CoreHarness; a: number; vg: string }> {
  const h = new CoreHarness({ devices: [SANLOCK_DEV] });
  const a = h.connect();
  const r = await h.req(a, startVg(vg, lm));
  assert.equal(r.opResult, 0, r.text);
  const w = await h.req(a, [['request', 'start_wait'], ['pid', 1]]);
  assert.equal(w.opResult, 0, w.text);
  return { h, a, vg };
}

function resource(h: CoreHarness, lsName: string, resName: string) {
  const ls = h.core.lockspaces.find((l) => l.name === lsName);
  return ls?.resources.find((r) => r.name === resName);
}

describe('hello, bad input, no lockspaces', () => {
  test('hello reply is the exact four-line text (trace 01)', async () => {
    const h = new CoreHarness();
    const a = h.connect();
    const r = await h.req(a, hello());
    assert.equal(r.text, 'response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 1\n');
    // lvmlockctl and the lvm commands spell it differently; both work.
    assert.equal((await h.req(a, 'request="hello"\n')).text, r.text);
  });

  test('lock_gl before any lockspace: -210 NO_LOCKSPACES,NO_GL_LS,NO_LM (trace 02, pvcreate)', async () => {
    const h = new CoreHarness();
    const a = h.connect();
    const r = await h.req(a, 'request="lock_gl"\ncmd ="pvcreate"\npid =6369\nmode ="ex"\nopts ="none"\nvg_lock_type ="none"\n');
    assert.equal(r.text, 'response = "OK"\nop = 7\nlock_type = "none"\nop_result = -210\nlm_result = 0\nresult_flags = "NO_LOCKSPACES,NO_GL_LS,NO_LM"\n');
  });

  test('unknown request name and unparsable text: libdaemon\'s "failed" reply with a reason and a log line', async () => {
    const h = new CoreHarness();
    const a = h.connect();
    const cases: Array<[string, string]> = [
      ['request = "bogus"\n', 'unknown request bogus'],
      // names every JavaScript object inherits are names like any other
      ['request = "constructor"\n', 'unknown request constructor'],
      ['request = "__proto__"\n', 'unknown request __proto__'],
      ['request = "toString"\n', 'unknown request toString'],
      ['request = "unterminated\n', 'unknown request unterminated'],
      ['no_request_key = 1\n', 'no request name'],
      ['request = 5\n', 'no request name'],
      ['request = ""\n', 'empty request name'],
      ['request = "a\\"b c"\n', 'unknown request a?b?c'],
      [`request = "${'x'.repeat(100)}"\n`, `unknown request ${'x'.repeat(64)}...`],
      ['request = "hello"\nversion = 99999999999999999999999\n', 'unparsable request'],
      ['}}} garbage {{{\n', 'unparsable request'],
      ['', 'no request name'],
      ['request = "hello"\nx = [' + '1,'.repeat(600_000) + '1]\n', 'request too large'],
    ];
    for (const [text, reason] of cases) {
      const logged = h.log.length;
      h.send(a, text);
      await h.settle();
      assert.deepEqual(h.take(a), [`response = "failed"\nreason = "${reason}"\n`], JSON.stringify(text.slice(0, 80)));
      assert.ok(h.log.slice(logged).some((l) => /^ERROR client recv \d+ (config_from_string error|bad request name|request of \d+ characters refused)/.test(l)), `no log line for ${JSON.stringify(text.slice(0, 80))}`);
    }
    // The connection keeps working.
    assert.equal((await h.req(a, hello())).str('protocol'), 'lvmlockd');
  });

  test('quit: result 0 and quit() with no lockspaces, -16 and no quit with one', async () => {
    const h = new CoreHarness();
    const a = h.connect();
    const q = await h.req(a, 'request = "quit"\n');
    assert.equal(q.int('result'), 0);
    assert.equal(h.quitCalled, 1);
    await h.req(a, startVg('vg1', 'dlm'));
    const q2 = await h.req(a, 'request = "quit"\n');
    assert.equal(q2.int('result'), -16);
    assert.equal(h.quitCalled, 1);
  });

  test('unsupported lock type idm → -93 (not compiled in), also for start_vg and init_vg', async () => {
    const h = new CoreHarness();
    const a = h.connect();
    const r = await h.req(a, startVg('vgi', 'idm'));
    assert.equal(r.opResult, -93);
    const i = await h.req(a, [['request', 'init_vg'], ['pid', 1], ['vg_name', 'vgi'], ['vg_lock_type', 'idm']]);
    assert.equal(i.opResult, -93);
    assert.equal(i.str('op'), undefined);
    assert.equal(i.int('op'), 3);
    const g = await h.req(a, lockGl('ex', [['vg_lock_type', 'idm']]));
    // vg_lock_type appears twice; the first ("none") wins, as in libdm lookups.
    assert.equal(g.opResult, -210);
    const g2 = await h.req(a, [['request', 'lock_gl'], ['pid', 1], ['mode', 'ex'], ['vg_lock_type', 'idm']]);
    assert.equal(g2.opResult, -93);
    assert.equal(h.core.lockspaces.length, 0);
  });

  test('invalid mode strings → -22', async () => {
    const { h, a, vg } = await started('dlm');
    for (const mode of ['nl', 'iv', 'EX', '']) {
      const r = await h.req(a, lockLv(vg, LV1, mode));
      assert.equal(r.opResult, -22, `mode ${mode}`);
    }
  });
});

describe('vgcreate (trace 02), dlm', () => {
  test('exact reply texts of the vgcreate sequence', async () => {
    const h = new CoreHarness();
    const a = h.connect(6401);
    const rq = (t: string) => h.req(a, t);
    const r1 = await rq('request="lock_gl"\ncmd ="vgcreate"\npid =6401\nmode ="ex"\nopts ="none"\nvg_lock_type ="dlm"\n');
    assert.equal(r1.text, 'response = "OK"\nop = 7\nlock_type = "dlm"\nop_result = 0\nlm_result = 0\nresult_flags = "none"\n');
    const r2 = await rq('request="init_vg"\npid =6401\nvg_name ="vg1"\nvg_lock_type ="dlm"\n');
    assert.equal(r2.text, 'response = "OK"\nop = 3\nop_result = 0\nlm_result = 0\nvg_lock_args = "1.0.0:test"\nlv_lock_args = "none"\nresult_flags = "none"\n');
    const r3 = await rq('request="vg_update"\npid =6401\nvg_name ="vg1"\nversion =2\n');
    assert.equal(r3.text, 'response = "OK"\nop = 8\nlock_type = "none"\nop_result = -210\nlm_result = 0\nresult_flags = "none"\n');
    const r4 = await rq('request="start_vg"\npid =6401\nvg_name ="vg1"\nvg_lock_type ="dlm"\nvg_lock_args ="1.0.0:test"\n' +
      'vg_uuid ="Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK"\nversion =2\nhost_id =0\nopts ="start_init"\n');
    assert.equal(r4.text, 'response = "OK"\nop = 5\nlock_type = "dlm"\nop_result = 0\nlm_result = 0\nresult_flags = "none"\n');
    const r5 = await rq('request="lock_gl"\ncmd ="vgcreate"\npid =6401\nmode ="un"\nopts ="none"\nvg_lock_type ="none"\n');
    assert.equal(r5.text, 'response = "OK"\nop = 7\nlock_type = "dlm"\nop_result = 0\nlm_result = 0\nresult_flags = "none"\n');
    const r6 = await rq('request="start_wait"\npid =6401\n');
    assert.equal(r6.text, 'response = "OK"\nop = 12\nlock_type = "none"\nop_result = 0\nlm_result = 0\nresult_flags = "none"\n');
    assert.deepEqual(h.core.lockspaces.map((l) => l.name).sort(), ['lvm_global', 'lvm_vg1']);
    // The GL unlock from ex wrote version 1 (trace: "res_unlock r_version inc 1").
    assert.equal(resource(h, 'lvm_global', 'GLLK')?.version, 1);
  });

  test('start_vg twice → -17 EEXIST; stop_vg of an unknown VG → -210', async () => {
    const { h, a, vg } = await started('dlm');
    assert.equal((await h.req(a, startVg(vg, 'dlm'))).opResult, -17);
    assert.equal((await h.req(a, simpleVg('stop_vg', 'nosuch'))).opResult, -210);
  });
});

for (const lm of ['dlm', 'sanlock'] as const) {
  describe(`LV lock semantics (${lm})`, () => {
    test('transient: same mode again → -114 EALREADY; unlock without lock → -2', async () => {
      const { h, a, vg } = await started(lm);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, 0);
      const again = await h.req(a, lockLv(vg, LV1, 'ex'));
      assert.equal(again.opResult, -114);
      assert.equal(again.str('lock_type'), lm);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'un'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'un'))).opResult, -2);
      assert.equal((await h.req(a, lockLv(vg, LV2, 'un', 'persistent'))).opResult, -2);
    });

    test('persistent: any client asking the same persistent mode → -114; survives disconnect', async () => {
      const { h, a, vg } = await started(lm);
      const b = h.connect();
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, 0);
      assert.equal((await h.req(b, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, -114);
      h.disconnect(a);
      await h.settle();
      const r = resource(h, `lvm_${vg}`, LV1)!;
      assert.deepEqual(r.locks, [{ mode: 'ex', version: 0, persistent: true, clientId: 0 }]);
      assert.match(h.info(), new RegExp(`info=r name=${LV1} type=lv mode=ex[^\\n]*\\ninfo=lk mode=ex version=0 flags=0x1 client_id=0\\n`));
      // Released only by a persistent unlock.
      assert.equal((await h.req(b, lockLv(vg, LV1, 'un'))).opResult, -2);
      assert.equal((await h.req(b, lockLv(vg, LV1, 'un', 'persistent'))).opResult, 0);
      assert.equal(resource(h, `lvm_${vg}`, LV1), undefined);
    });

    test('transient under persistent ex → 0 without a record; under persistent sh: sh → 0, ex → -17 SH_EXISTS', async () => {
      const { h, a, vg } = await started(lm);
      const b = h.connect();
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, 0);
      assert.equal((await h.req(b, lockLv(vg, LV1, 'ex'))).opResult, 0);
      assert.equal((await h.req(b, lockLv(vg, LV1, 'sh'))).opResult, 0);
      assert.equal(resource(h, `lvm_${vg}`, LV1)!.locks.length, 1);
      // The transient grant left nothing to unlock.
      assert.equal((await h.req(b, lockLv(vg, LV1, 'un'))).opResult, -2);

      assert.equal((await h.req(a, lockLv(vg, LV2, 'sh', 'persistent'))).opResult, 0);
      assert.equal((await h.req(b, lockLv(vg, LV2, 'sh'))).opResult, 0);
      const ex = await h.req(b, lockLv(vg, LV2, 'ex'));
      assert.equal(ex.opResult, -17);
      assert.equal(ex.flags, 'SH_EXISTS,');
      assert.equal(ex.text, `response = "OK"\nop = 7\nlock_type = "${lm}"\nop_result = -17\nlm_result = 0\nresult_flags = "SH_EXISTS,"\n`);
    });

    test('transient → persistent: same mode converts the lock to persistent; other mode → -17', async () => {
      const { h, a, vg } = await started(lm);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh', 'persistent'))).opResult, 0);
      assert.deepEqual(resource(h, `lvm_${vg}`, LV1)!.locks, [{ mode: 'sh', version: 0, persistent: true, clientId: 0 }]);
      assert.equal((await h.req(a, lockLv(vg, LV2, 'sh'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV2, 'ex', 'persistent'))).opResult, -17);
      h.disconnect(a);
      await h.settle();
      // LV1 is persistent now and stays; LV2 was transient and is gone.
      assert.equal(resource(h, `lvm_${vg}`, LV1)!.locks.length, 1);
      assert.equal(resource(h, `lvm_${vg}`, LV2), undefined);
    });

    test('sh ↔ ex conversion; ex conversion with another sh holder → -11', async () => {
      const { h, a, vg } = await started(lm);
      const b = h.connect();
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, 0);
      assert.equal(resource(h, `lvm_${vg}`, LV1)!.mode, 'ex');
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh'))).opResult, 0);
      const r = resource(h, `lvm_${vg}`, LV1)!;
      assert.equal(r.mode, 'sh');
      assert.equal(r.shCount, 1);
      assert.equal((await h.req(b, lockLv(vg, LV1, 'sh'))).opResult, 0);
      assert.equal(r.shCount, 2);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, -11);
      assert.equal(r.mode, 'sh');
      assert.deepEqual(r.locks.map((l) => l.mode), ['sh', 'sh']);
    });

    test('local queueing: B waits for A ex, granted when A unlocks; sh after queued ex waits too', async () => {
      const { h, a, vg } = await started(lm);
      const b = h.connect();
      const c = h.connect();
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, 0);
      h.send(b, lockLv(vg, LV1, 'ex'));
      await h.settle();
      assert.deepEqual(h.take(b), [], 'B must wait');
      h.send(c, lockLv(vg, LV1, 'sh'));
      await h.settle();
      assert.deepEqual(h.take(c), [], 'C must wait');
      assert.equal((await h.req(a, lockLv(vg, LV1, 'un'))).opResult, 0);
      const gotB = h.take(b);
      assert.equal(gotB.length, 1);
      assert.match(gotB[0]!, /op_result = 0\n/);
      assert.deepEqual(h.take(c), [], 'C queued behind B still waits');
      assert.equal((await h.req(b, lockLv(vg, LV1, 'un'))).opResult, 0);
      const gotC = h.take(c);
      assert.equal(gotC.length, 1);
      assert.match(gotC[0]!, /op_result = 0\n/);
    });

    test('disconnect releases transient locks, keeps persistent ones, cancels queued requests', async () => {
      const { h, a, vg } = await started(lm);
      const b = h.connect();
      const c = h.connect();
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV2, 'ex', 'persistent'))).opResult, 0);
      h.send(b, lockLv(vg, LV1, 'ex'));
      await h.settle();
      assert.deepEqual(h.take(b), []);
      // B gives up while queued: its request is cancelled, nothing is granted to it later.
      h.disconnect(b);
      await h.settle();
      assert.equal(resource(h, `lvm_${vg}`, LV1)!.actions.length, 0);
      h.disconnect(a);
      await h.settle();
      assert.equal(resource(h, `lvm_${vg}`, LV1), undefined, 'transient LV lock released');
      assert.deepEqual(resource(h, `lvm_${vg}`, LV2)!.locks, [{ mode: 'ex', version: 0, persistent: true, clientId: 0 }]);
      assert.equal((await h.req(c, lockLv(vg, LV1, 'ex'))).opResult, 0);
      assert.equal((await h.req(c, lockLv(vg, LV2, 'ex', 'persistent'))).opResult, -114);
      assert.deepEqual(h.take(b), []);
    });

    test('a queued request granted after its client died is undone (auto unlock for failed client)', async () => {
      const { h, a, vg } = await started(lm);
      const b = h.connect();
      const c = h.connect();
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, 0);
      h.send(b, lockLv(vg, LV1, 'ex'));
      await h.settle();
      // The reply to B cannot be written (peer vanished, close not yet seen).
      h.unwritable.add(b);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'un'))).opResult, 0);
      assert.ok(h.log.some((l) => l.includes(`auto unlock lv for failed client ${b}`)), h.log.slice(-10).join('\n'));
      assert.equal((await h.req(c, lockLv(vg, LV1, 'ex'))).opResult, 0);
    });

    test('stop_vg with an LV lock → -16; with force → 0 and the lockspace goes', async () => {
      const { h, a, vg } = await started(lm);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh', 'persistent'))).opResult, 0);
      const s = await h.req(a, simpleVg('stop_vg', vg));
      assert.equal(s.opResult, -16);
      assert.equal(s.text, `response = "OK"\nop = 6\nlock_type = "none"\nop_result = -16\nlm_result = 0\nresult_flags = "none"\n`);
      assert.equal((await h.req(a, simpleVg('stop_vg', vg, 'force'))).opResult, 0);
      await h.settle();
      assert.ok(!h.core.lockspaces.some((l) => l.name === `lvm_${vg}`));
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh'))).opResult, -210);
    });

    test('kill_vg: later locks → -217, unlock still allowed; drop_vg frees the lockspace', async () => {
      const { h, a, vg } = await started(lm);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV2, 'sh'))).opResult, 0);
      assert.equal((await h.req(a, simpleVg('kill_vg', vg))).opResult, 0);
      assert.match(h.info(), new RegExp(`info=ls ls_name=lvm_${vg} [^\\n]* kill_vg=1`));
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, -217);
      assert.equal((await h.req(a, lockVg(vg, 'sh'))).opResult, -217);
      assert.equal((await h.req(a, vgUpdate(vg, 9))).opResult, -217);
      assert.equal((await h.req(a, lockLv(vg, LV2, 'un'))).opResult, 0);
      assert.equal((await h.req(a, simpleVg('drop_vg', vg))).opResult, 0);
      await h.settle();
      assert.ok(!h.core.lockspaces.some((l) => l.name === `lvm_${vg}`));
      assert.equal((await h.req(a, lockVg(vg, 'sh'))).opResult, -210);
      // The VG can be started again afterwards.
      assert.equal((await h.req(a, startVg(vg, lm))).opResult, 0);
    });

    test('free_vg, drop_vg (not killed), rename_vg_before, free_lv while this host holds LV locks → -16, lock kept; force and the kill procedure still work', async () => {
      const { h, a, vg } = await started(lm);
      const b = h.connect();
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, 0);
      const lvArgs = lm === 'sanlock' ? '1.0.0:70254592' : 'none';
      const freeLv: Fields = [['request', 'free_lv'], ['pid', 1], ['vg_name', vg], ['lv_name', 'lv1'], ['lv_uuid', LV1], ['lv_lock_args', lvArgs]];
      for (const req of ['free_vg', 'drop_vg', 'rename_vg_before', 'free_lv']) {
        const logged = h.log.length;
        const r = await h.req(b, req === 'free_lv' ? freeLv : simpleVg(req, vg));
        assert.equal(r.opResult, -16, `${req}: ${r.text}`);
        assert.ok(h.log.slice(logged).some((l) => l.startsWith('ERROR ') && l.includes('refused')), `${req}: no log line`);
        assert.equal((await h.req(b, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, -114, `lock lost after ${req}`);
      }
      // A transient LV lock of a live client counts too.
      assert.equal((await h.req(a, lockLv(vg, LV1, 'un', 'persistent'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV2, 'sh'))).opResult, 0);
      assert.equal((await h.req(b, simpleVg('free_vg', vg))).opResult, -16);
      // drop_vg after kill_vg ends the kill procedure: it goes ahead with LV locks held.
      assert.equal((await h.req(b, simpleVg('kill_vg', vg))).opResult, 0);
      assert.equal((await h.req(b, simpleVg('drop_vg', vg))).opResult, 0);
      await h.settle();
      assert.ok(!h.core.lockspaces.some((l) => l.name === `lvm_${vg}`));
      // free_vg with "force" goes ahead under a held LV lock.
      assert.equal((await h.req(a, startVg(vg, lm))).opResult, 0);
      await h.req(a, [['request', 'start_wait'], ['pid', 1]]);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, 0);
      assert.equal((await h.req(b, simpleVg('free_vg', vg, 'force'))).opResult, 0);
      await h.settle();
      assert.ok(!h.core.lockspaces.some((l) => l.name === `lvm_${vg}`));
    });

    test('free_vg with no LV lock held: 0, the lockspace goes (vgremove)', async () => {
      const { h, a, vg } = await started(lm);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'un', 'persistent'))).opResult, 0);
      assert.equal((await h.req(a, lockVg(vg, 'ex'))).opResult, 0);
      assert.equal((await h.req(a, simpleVg('free_vg', vg))).opResult, 0);
      await h.settle();
      assert.ok(!h.core.lockspaces.some((l) => l.name === `lvm_${vg}`));
    });

    test('set_remote_lv_lock (test mode): remote ex → ex and sh -11; remote sh → sh allowed, ex -11; un clears', async () => {
      const { h, a, vg } = await started(lm);
      const setRemote = (mode: string): Fields => [['request', 'set_remote_lv_lock'], ['pid', 1], ['vg_name', vg],
        ['lv_name', 'lv1'], ['lv_uuid', LV1], ['mode', mode]];
      const sr = await h.req(a, setRemote('ex'));
      assert.equal(sr.text, 'response = "OK"\nop = 30\nop_result = 0\n');
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, -11);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh'))).opResult, -11);
      assert.equal((await h.req(a, setRemote('sh'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex', 'persistent'))).opResult, -11);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'sh', 'persistent'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'un', 'persistent'))).opResult, 0);
      assert.equal((await h.req(a, setRemote('un'))).opResult, 0);
      assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, 0);
    });
  });
}

describe('lock value block versions', () => {
  test('vg_update + unlock ex raises the VG version (trace 06: 3→4→5); never backwards', async () => {
    const { h, a, vg } = await started('dlm');
    const b = h.connect();
    const vgRes = () => resource(h, `lvm_${vg}`, 'VGLK')!;
    for (const v of [4, 5]) {
      assert.equal((await h.req(a, lockVg(vg, 'ex'))).opResult, 0);
      assert.equal((await h.req(a, vgUpdate(vg, v))).opResult, 0);
      assert.equal((await h.req(a, lockVg(vg, 'un'))).opResult, 0);
      assert.equal(vgRes().version, v);
      assert.match(h.info(), new RegExp(`info=r name=VGLK type=vg mode=un sh_count=0 version=${v}\\n`));
    }
    // A smaller version is logged and not written: the LVB never goes back.
    assert.equal((await h.req(a, lockVg(vg, 'ex'))).opResult, 0);
    assert.equal((await h.req(a, vgUpdate(vg, 3))).opResult, 0);
    assert.ok(h.log.some((l) => l.includes('old version 5 new version 3 too small')));
    assert.equal((await h.req(a, lockVg(vg, 'un'))).opResult, 0);
    assert.equal(vgRes().version, 5);
    // Another client sees the version on its next lock.
    assert.equal((await h.req(b, lockVg(vg, 'sh'))).opResult, 0);
    assert.equal(vgRes().version, 5);
    // vg_update needs an ex lock held by the same client.
    assert.equal((await h.req(b, vgUpdate(vg, 6))).opResult, -22);
    assert.equal((await h.req(a, vgUpdate(vg, 6))).opResult, -2);
    assert.equal((await h.req(b, lockVg(vg, 'un'))).opResult, 0);
    // next_version: one more than the current.
    assert.equal((await h.req(a, lockVg(vg, 'ex'))).opResult, 0);
    assert.equal((await h.req(a, [...vgUpdate(vg, 0), ['opts', 'next_version']])).opResult, 0);
    assert.equal((await h.req(a, lockVg(vg, 'un'))).opResult, 0);
    assert.equal(vgRes().version, 6);
  });

  test('GL version increments on every ex unlock and ex→sh convert, not on sh', async () => {
    const { h, a } = await started('dlm');
    const gl = () => resource(h, 'lvm_global', 'GLLK');
    let seen = gl()?.version ?? 0;
    for (let i = 0; i < 3; i++) {
      assert.equal((await h.req(a, lockGl('ex'))).opResult, 0);
      assert.equal((await h.req(a, lockGl('un'))).opResult, 0);
      assert.equal(gl()!.version, seen + 1);
      seen++;
    }
    assert.equal((await h.req(a, lockGl('sh'))).opResult, 0);
    assert.equal((await h.req(a, lockGl('un'))).opResult, 0);
    assert.equal(gl()!.version, seen);
    assert.equal((await h.req(a, lockGl('ex'))).opResult, 0);
    assert.equal((await h.req(a, lockGl('sh'))).opResult, 0);
    assert.equal(gl()!.version, seen + 1);
    assert.equal((await h.req(a, lockGl('un'))).opResult, 0);
    assert.equal(gl()!.version, seen + 1);
  });

  test('a VG lock held ex at stop --force writes its version (clear_locks)', async () => {
    const { h, a, vg } = await started('dlm');
    assert.equal((await h.req(a, lockVg(vg, 'ex'))).opResult, 0);
    assert.equal((await h.req(a, vgUpdate(vg, 7))).opResult, 0);
    assert.equal((await h.req(a, simpleVg('stop_vg', vg, 'force'))).opResult, 0);
    await h.settle();
    assert.ok(h.log.some((l) => l.includes('VGLK clear_locks r_version new 7')), h.log.join('\n'));
    // Restart: the LVB of the test manager survives in the old lockspace object only, so
    // a new lockspace starts from zero — what matters is that clear_locks wrote 7.
  });
});

describe('global lock, sanlock', () => {
  test('sanlock VG start enables the GL in that VG; lock_gl goes there', async () => {
    const { h, a } = await started('sanlock');
    assert.equal(h.managers.sanlock?.glInVg?.glLockspace, 'lvm_vgs');
    const r = await h.req(a, lockGl('ex'));
    assert.equal(r.opResult, 0, r.text);
    assert.equal(r.str('lock_type'), 'sanlock');
    assert.equal((await h.req(a, lockGl('un'))).opResult, 0);
    assert.equal(resource(h, 'lvm_vgs', 'GLLK')!.version, 1);
  });

  test('sanlock start without the lvmlock device → -212; without host id → -213', async () => {
    const h = new CoreHarness();
    const a = h.connect();
    assert.equal((await h.req(a, startVg('vgx', 'sanlock'))).opResult, -212);
    h.devices.add('/dev/mapper/vgy-lvmlock');
    const noHostId = startVg('vgy', 'sanlock').filter(([k]) => k !== 'host_id');
    assert.equal((await h.req(a, noHostId)).opResult, -213);
  });
});

describe('input validation', () => {
  test('over-long and invalid names, missing fields → -22 with a normal reply', async () => {
    const { h, a, vg } = await started('dlm');
    const r = await h.req(a, lockVg('x'.repeat(200), 'ex'));
    assert.equal(r.text, 'response = "OK"\nop = 7\nlock_type = "none"\nop_result = -22\nlm_result = 0\nresult_flags = "none"\n');
    assert.equal((await h.req(a, lockVg('bad/name', 'ex'))).opResult, -22);
    assert.equal((await h.req(a, lockVg('bad name', 'ex'))).opResult, -22);
    assert.equal((await h.req(a, lockLv(vg, 'u"q', 'ex'))).opResult, -22);
    assert.equal((await h.req(a, lockLv(vg, 'u'.repeat(65), 'ex'))).opResult, -22);
    assert.equal((await h.req(a, [['request', 'lock_lv'], ['pid', 1], ['vg_name', vg], ['mode', 'ex']])).opResult, -22);
    assert.equal((await h.req(a, [['request', 'lock_vg'], ['pid', 1], ['mode', 'ex']])).opResult, -22);
    assert.equal((await h.req(a, [['request', 'start_vg'], ['pid', 1], ['vg_lock_type', 'dlm']])).opResult, -22);
    // Lock args are echoed raw in init replies: a quote or backslash would break the reply.
    for (const args of ['a"b', '"', 'back\\slash']) {
      const r = await h.req(a, [['request', 'init_vg'], ['pid', 1], ['vg_name', 'vgq'], ['vg_lock_type', 'sanlock'], ['vg_lock_args', args]]);
      assert.equal(r.opResult, -22, r.text);
      const l = await h.req(a, [['request', 'init_lv'], ['pid', 1], ['vg_name', vg], ['lv_name', 'lv1'], ['lv_uuid', LV1], ['vg_lock_type', 'dlm'], ['lv_lock_args', args]]);
      assert.equal(l.opResult, -22, l.text);
      assert.equal(l.str('lv_lock_args'), 'none');
    }
    // The longest name that fits a lockspace name (64 - "lvm_" - 1) is accepted.
    assert.equal((await h.req(a, lockVg('v'.repeat(59), 'ex'))).opResult, -210);
    assert.equal((await h.req(a, lockVg('v'.repeat(60), 'ex'))).opResult, -22);
  });
});

describe('lock retries on -EAGAIN (manual scheduler)', () => {
  /** A dlm harness whose VGLK lock fails with -EAGAIN `fails` times. */
  async function flaky(fails: number): Promise<{ h: CoreHarness; a: number; attempts: () => number }> {
    const h = new CoreHarness({ sleep: 'manual' });
    const m = h.managers.dlm!;
    const create = m.createLockspace.bind(m);
    let left = fails;
    let attempts = 0;
    m.createLockspace = (view, events) => {
      const ls = create(view, events);
      const lock = ls.lock.bind(ls);
      ls.lock = async (res, mode, o) => {
        if (res.name !== 'VGLK') return lock(res, mode, o);
        attempts++;
        if (left > 0) { left--; return { rv: -11 }; }
        return lock(res, mode, o);
      };
      return ls;
    };
    const a = h.connect();
    assert.equal((await h.req(a, startVg('vg1', 'dlm'))).opResult, 0);
    return { h, a, attempts: () => attempts };
  }

  test('a VG lock conflict is retried after a delay and then granted', async () => {
    const { h, a, attempts } = await flaky(3);
    const b = h.connect();
    h.send(a, lockVg('vg1', 'ex'));
    await h.settle();
    assert.deepEqual(h.take(a), []);
    assert.equal(h.pendingSleeps(), 1);
    // While the lockspace waits out the delay, its other requests wait too (as lvmlockd's thread sleeps).
    h.send(b, lockLv('vg1', LV1, 'ex'));
    await h.settle();
    assert.deepEqual(h.take(b), []);
    for (let i = 0; i < 3; i++) await h.releaseSleeps();
    const got = h.take(a);
    assert.equal(got.length, 1);
    assert.match(got[0]!, /op_result = 0\n/);
    assert.equal(attempts(), 4);
    assert.equal(h.take(b).length, 1);
    assert.equal(h.pendingSleeps(), 0);
  });

  test('after max_retries (default 4) the conflict is returned as -11', async () => {
    const { h, a, attempts } = await flaky(100);
    h.send(a, lockVg('vg1', 'ex'));
    await h.settle();
    let sleeps = 0;
    while (h.pendingSleeps() > 0 && sleeps < 20) { await h.releaseSleeps(); sleeps++; }
    assert.equal(sleeps, 5);
    const got = h.take(a);
    assert.equal(got.length, 1);
    assert.match(got[0]!, /op_result = -11\n/);
    assert.equal(attempts(), 6);
  });

  test('max_retries from the request bounds the retries', async () => {
    const { h, a, attempts } = await flaky(100);
    h.send(a, [...lockVg('vg1', 'sh'), ['max_retries', 0]]);
    await h.settle();
    assert.equal(h.pendingSleeps(), 1);
    await h.releaseSleeps();
    assert.match(h.take(a)[0] ?? '', /op_result = -11\n/);
    assert.equal(attempts(), 2);
  });

  test('an LV lock conflict is not retried', async () => {
    const h = new CoreHarness({ sleep: 'manual' });
    const a = h.connect();
    assert.equal((await h.req(a, startVg('vg1', 'dlm'))).opResult, 0);
    await h.req(a, [['request', 'set_remote_lv_lock'], ['pid', 1], ['vg_name', 'vg1'], ['lv_uuid', LV1], ['mode', 'ex']]);
    assert.equal((await h.req(a, lockLv('vg1', LV1, 'sh'))).opResult, -11);
    assert.equal(h.pendingSleeps(), 0);
  });
});

describe('unlock_cancel', () => {
  test('with nothing held or queued: exactly one reply (VG: -125 as lvmlockd; unknown LV: -2 as HEAD)', async () => {
    const { h, a, vg } = await started('dlm');
    // The VG resource exists: the unlock finds itself first and takes -ECANCELED (lvmlockd
    // 2.03.16 and HEAD answer the same, once).
    h.send(a, [['request', 'lock_vg'], ['pid', 1], ['vg_name', vg], ['mode', 'un'], ['opts', 'unlock_cancel']]);
    await h.settle();
    const got = h.take(a);
    assert.equal(got.length, 1, `lock_vg: ${got.length} replies`);
    assert.match(got[0]!, /op_result = -125\n/);
    // No LV resource: HEAD does not create one for an unlock (-ENOENT); 2.03.16 did (-125).
    for (const opts of ['unlock_cancel', 'persistent,unlock_cancel']) {
      h.send(a, lockLv(vg, LV1, 'un', opts));
      await h.settle();
      const g = h.take(a);
      assert.equal(g.length, 1, `lock_lv ${opts}: ${g.length} replies`);
      assert.match(g[0]!, /op_result = -2\n/);
    }
    // An LV resource that exists (another client holds it): the unlock cancels itself.
    const b = h.connect();
    assert.equal((await h.req(b, lockLv(vg, LV1, 'sh'))).opResult, 0);
    assert.equal((await h.req(a, lockLv(vg, LV1, 'un', 'unlock_cancel'))).opResult, -125);
    assert.equal((await h.req(b, lockLv(vg, LV1, 'un'))).opResult, 0);
  });

  test('persistent unlock_cancel cancels a queued persistent request of another client', async () => {
    const { h, a, vg } = await started('dlm');
    const b = h.connect();
    const c = h.connect();
    assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, 0);
    h.send(b, lockLv(vg, LV1, 'sh', 'persistent'));
    await h.settle();
    assert.deepEqual(h.take(b), []);
    const r = await h.req(c, lockLv(vg, LV1, 'un', 'persistent,unlock_cancel'));
    assert.equal(r.opResult, -125);
    const gotB = h.take(b);
    assert.equal(gotB.length, 1);
    assert.match(gotB[0]!, /op_result = -125\n/);
    // a's lock is untouched.
    assert.equal((await h.req(a, lockLv(vg, LV1, 'ex'))).opResult, -114);
  });
});

describe('differences found against lvmlockd 2.03.16 (same request sequences)', () => {
  const query = (vg: string, uuid: string): Fields => [['request', 'query_lock_lv'], ['pid', 1], ['opts', 'none'], ['vg_name', vg],
    ['lv_name', 'lv1'], ['lv_uuid', uuid], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test'], ['lv_lock_args', 'dlm']];

  test('query_lock_lv of an LV nobody locks → 0, mode "un" (not -2)', async () => {
    const { h, a, vg } = await started('dlm');
    const q = await h.req(a, query(vg, LV1));
    assert.equal(q.text, 'response = "OK"\nop = 23\nop_result = 0\nlock_type = "dlm"\nmode = "un"\n');
    assert.equal(resource(h, `lvm_${vg}`, LV1), undefined, 'no resource left behind');
    assert.equal((await h.req(a, lockLv(vg, LV1, 'sh'))).opResult, 0);
    assert.equal((await h.req(a, query(vg, LV1))).str('mode'), 'sh');
    const other = await h.req(a, query('vgx', LV1).filter(([k]) => k !== 'vg_lock_type'));
    assert.equal(other.text, 'response = "OK"\nop = 23\nop_result = -210\nlock_type = "none"\nmode = "iv"\n');
  });

  test('-210 with dlm as GL type never carries NO_GL_LS (lvmlockd\'s dlm GL name is fixed)', async () => {
    // Right after stop_all, the stopped lockspaces are still listed (REM:) until the worker's
    // delayed pass frees them: no lvm_global, yet lockspaces exist.
    const h = new CoreHarness({ sleep: 'manual' });
    const a = h.connect();
    assert.equal((await h.req(a, startVg('vg1', 'dlm'))).opResult, 0);
    // start_wait runs a worker pass now, so the free pass after stop_all waits (paced).
    assert.equal((await h.req(a, [['request', 'start_wait'], ['pid', 1]])).opResult, 0);
    h.send(a, [['request', 'stop_all'], ['pid', 1], ['opts', 'none']]);
    await h.settle();
    assert.match(h.take(a)[0] ?? '', /op_result = 2\n/);
    assert.ok(h.core.lockspaces.length > 0 && !h.core.lockspaces.some((l) => l.name === 'lvm_global'));
    const r = await h.req(a, simpleVg('stop_vg', 'vg1'));
    assert.equal(r.text, 'response = "OK"\nop = 6\nlock_type = "none"\nop_result = -210\nlm_result = 0\nresult_flags = "none"\n');
    // With -g dlm and no lockspace at all: only NO_LOCKSPACES.
    const g = new CoreHarness({ glType: 'dlm' });
    const c = g.connect();
    const r3 = await g.req(c, lockVg('vgx', 'sh'));
    assert.equal(r3.opResult, -210);
    assert.equal(r3.flags, 'NO_LOCKSPACES,');
  });
});

describe('stop_vg while a lock request waits to retry (found by the simulator, seed 5002)', () => {
  test('the waiting request is refused (-116), never granted and then cleared by the stop', async () => {
    const h = new CoreHarness({ sleep: 'manual' });
    const m = h.managers.dlm!;
    const create = m.createLockspace.bind(m);
    m.createLockspace = (view, events) => {
      const ls = create(view, events);
      const lock = ls.lock.bind(ls);
      let first = true;
      ls.lock = async (res, mode, o) => {
        // The LV is held elsewhere on the first try; the manager says a retry may succeed.
        if (res.type === 'lv' && first) { first = false; return { rv: -11, retry: true }; }
        return lock(res, mode, o);
      };
      return ls;
    };
    const a = h.connect();
    const b = h.connect();
    assert.equal((await h.req(a, startVg('vg1', 'dlm'))).opResult, 0);
    h.send(a, lockLv('vg1', LV1, 'sh', 'persistent'));
    await h.settle();
    assert.deepEqual(h.take(a), [], 'the lock request waits for its retry');
    assert.equal(h.pendingSleeps(), 1);
    h.send(b, simpleVg('stop_vg', 'vg1'));
    await h.settle();
    await h.releaseSleeps();
    const lockReply = h.take(a);
    assert.equal(lockReply.length, 1);
    assert.match(lockReply[0]!, /op_result = -116\n/, 'never "granted" to a lockspace that is being stopped');
    const stopReply = h.take(b);
    assert.equal(stopReply.length, 1);
    assert.match(stopReply[0]!, /op_result = 0\n/);
  });
});

describe('a failed ex request does not strand the lock requests queued behind it (simulator finding 23)', () => {
  /**
   * A dlm harness whose manager refuses the first ex lock of `resName` with `rv`, without
   * a retry (as the IDM manager answers a lock held elsewhere: -ELOCKIO, 218).
   */
  async function refusingFirstEx(resName: string, rv: number): Promise<{ h: CoreHarness; calls: string[] }> {
    const h = new CoreHarness({ sleep: 'manual' });
    const m = h.managers.dlm!;
    const create = m.createLockspace.bind(m);
    const calls: string[] = [];
    let refused = false;
    m.createLockspace = (view, events) => {
      const ls = create(view, events);
      const lock = ls.lock.bind(ls);
      ls.lock = async (res, mode, o) => {
        if (res.name === resName) calls.push(mode);
        if (res.name === resName && mode === 'ex' && !refused) { refused = true; return { rv }; }
        return lock(res, mode, o);
      };
      return ls;
    };
    const s = h.connect();
    assert.equal((await h.req(s, startVg('vg1', 'dlm'))).opResult, 0);
    return { h, calls };
  }

  test('LV: the next ex request runs in another pass after the retry delay and is granted', async () => {
    const { h, calls } = await refusingFirstEx(LV1, -218);
    const a = h.connect();
    const b = h.connect();
    // Both queued before the lockspace loop runs: one pass sees both.
    h.send(a, lockLv('vg1', LV1, 'ex'));
    h.send(b, lockLv('vg1', LV1, 'ex'));
    await h.settle();
    assert.match(h.take(a)[0] ?? '', /op_result = -218\n/);
    assert.deepEqual(h.take(b), [], 'one ex request per pass');
    assert.equal(h.pendingSleeps(), 1, 'another pass is due after LOCK_RETRY_MS (without it b waits for a request that may never come)');
    await h.releaseSleeps();
    const got = h.take(b);
    assert.equal(got.length, 1);
    assert.match(got[0]!, /op_result = 0\n/);
    assert.deepEqual(calls, ['ex', 'ex']);
    assert.equal(h.pendingSleeps(), 0, 'no further passes once the queue is empty');
  });

  test('VG: an sh request queued behind the refused ex is granted in the next pass', async () => {
    const { h } = await refusingFirstEx('VGLK', -218);
    const a = h.connect();
    const b = h.connect();
    h.send(a, lockVg('vg1', 'ex'));
    h.send(b, lockVg('vg1', 'sh'));
    await h.settle();
    assert.match(h.take(a)[0] ?? '', /op_result = -218\n/);
    assert.deepEqual(h.take(b), [], 'sh requests after an ex wait for it (grant in order)');
    assert.equal(h.pendingSleeps(), 1);
    await h.releaseSleeps();
    assert.match(h.take(b)[0] ?? '', /op_result = 0\n/);
    assert.equal(h.pendingSleeps(), 0);
  });

  test('a refused ex with nothing queued behind it adds no pass (schedules without the case keep their timing)', async () => {
    const { h } = await refusingFirstEx(LV1, -218);
    const a = h.connect();
    h.send(a, lockLv('vg1', LV1, 'ex'));
    await h.settle();
    assert.match(h.take(a)[0] ?? '', /op_result = -218\n/);
    assert.equal(h.pendingSleeps(), 0);
  });
});

describe('a request queued on an unheld resource when the lockspace stops is answered (simulator finding 27)', () => {
  /**
   * A dlm VG started on connection s; a's lock_vg ex sits in the manager
   * until pending.release(rv) answers it; b is connected and idle.
   */
  async function exHeldInManager() {
    const h = new CoreHarness({ sleep: 'manual' });
    const m = h.managers.dlm!;
    const create = m.createLockspace.bind(m);
    const pending: { release?: (rv: number) => void } = {};
    m.createLockspace = (view, events) => {
      const ls = create(view, events);
      const lock = ls.lock.bind(ls);
      ls.lock = async (res, mode, o) => {
        if (res.name === 'VGLK' && mode === 'ex') return { rv: await new Promise<number>((r) => { pending.release = r; }) };
        return lock(res, mode, o);
      };
      return ls;
    };
    const s = h.connect();
    assert.equal((await h.req(s, startVg('vg1', 'dlm'))).opResult, 0);
    const a = h.connect();
    const b = h.connect();
    h.send(a, lockVg('vg1', 'ex'));
    await h.settle();
    assert.ok(pending.release, 'the ex request is in the manager');
    return { h, pending: pending as { release: (rv: number) => void }, s, a, b };
  }

  test('lock_vg un queued while a refused ex is in the manager, then drop_vg after kill_vg: the unlock is answered', async () => {
    const { h, pending, s, a, b } = await exHeldInManager();
    h.send(s, simpleVg('kill_vg', 'vg1'));
    h.send(b, lockVg('vg1', 'un'));
    const k = h.connect();
    h.send(k, simpleVg('drop_vg', 'vg1'));
    await h.settle();
    pending.release(-218);
    await h.settle();
    await h.releaseSleeps();
    assert.match(h.take(a)[0] ?? '', /op_result = -218\n/);
    assert.match(h.take(k).join(''), /op_result = 0\n/, 'dropped');
    const got = h.take(b);
    assert.equal(got.length, 1, 'the queued unlock is answered');
  });

  test('lock_vg sh queued behind a refused ex, then kill_vg and drop_vg: the sh request is answered (finding 26)', async () => {
    const { h, pending, s, a, b } = await exHeldInManager();
    h.send(b, lockVg('vg1', 'sh'));
    await h.settle();
    h.send(s, simpleVg('kill_vg', 'vg1'));
    const k = h.connect();
    h.send(k, simpleVg('drop_vg', 'vg1'));
    await h.settle();
    pending.release(-218);
    await h.settle();
    await h.releaseSleeps();
    assert.match(h.take(a)[0] ?? '', /op_result = -218\n/);
    assert.match(h.take(k).join(''), /op_result = 0\n/, 'dropped');
    const got = h.take(b);
    assert.equal(got.length, 1, 'the queued sh request is answered');
    assert.match(got[0] ?? '', /op_result = -125\n/, 'ECANCELED');
  });
});
