// bench/lockd-client.ts: the lock_lv requests of the load generator. For IDM
// VGs lvm sends the LV's PVs as path[N] keys; the order below is what lvm
// 2.03.16 wrote for `lvchange -aey` of an LV striped over three PVs (strace of
// the write to lvmlockd's socket): request, path[2], path[1], path[0], path_num,
// then the keys of every lock_lv.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lockLvFrame, pathFields, replyResult } from '../../bench/lockd-client';
import { parseConfigTree, ConfigMap } from '../../src/protocol/config-tree';

const IDM = {
  vg: 'vgc', lv: 'lv1', lvUuid: 'Pse8wE-9qZr-iLfm-celC-bVDC-LLis-aWXQwZ', lockType: 'idm' as const,
  vgArgs: 'none', lvArgs: 'idm', pvs: ['/dev/loop0', '/dev/loop1', '/dev/loop2'],
};

function body(frame: Buffer): string {
  const s = frame.toString('utf8');
  assert.ok(s.endsWith('\n##\n'), 'framed with the end marker');
  return s.slice(0, -4);
}

test('an IDM lock_lv carries path[N-1]..path[0] and path_num right after request, as lvm writes them', () => {
  assert.equal(body(lockLvFrame(IDM, 'ex', 8759)),
    'request="lock_lv"\n' +
    'path[2] ="/dev/loop2"\npath[1] ="/dev/loop1"\npath[0] ="/dev/loop0"\npath_num =3\n' +
    'cmd ="bench"\npid =8759\nmode ="ex"\nopts ="none"\nvg_name ="vgc"\nlv_name ="lv1"\n' +
    'lv_uuid ="Pse8wE-9qZr-iLfm-celC-bVDC-LLis-aWXQwZ"\nvg_lock_type ="idm"\nvg_lock_args ="none"\nlv_lock_args ="idm"\n');
});

test('the daemon\'s parser reads the PV list back in order', () => {
  const p = parseConfigTree(body(lockLvFrame(IDM, 'un')));
  assert.ok(p.ok);
  const m = new ConfigMap(p.entries);
  assert.equal(m.int('path_num'), 3n);
  assert.deepEqual([0, 1, 2].map((i) => m.str(`path[${i}]`)), IDM.pvs);
  assert.equal(m.str('mode'), 'un');
});

test('no path keys without PVs (dlm, sanlock); an unknown path is "none" as in lvm', () => {
  assert.deepEqual(pathFields(undefined), []);
  assert.deepEqual(pathFields([]), []);
  assert.doesNotMatch(body(lockLvFrame({ ...IDM, lockType: 'sanlock', pvs: [] }, 'ex')), /path/);
  assert.deepEqual(pathFields(['/dev/sdb', '']), [['path[1]', 'none'], ['path[0]', '/dev/sdb'], ['path_num', 2]]);
});

test('replyResult reads op_result of an OK reply and names what is wrong otherwise', () => {
  assert.equal(replyResult('response = "OK"\nop_result = 0\nlock_type = "idm"\n'), 0);
  assert.equal(replyResult('response = "OK"\nop_result = -11\n'), -11);
  assert.match(String(replyResult('response = "BAD"\n')), /^not OK/);
  assert.match(String(replyResult('response = "OK"\n')), /^no op_result/);
});
