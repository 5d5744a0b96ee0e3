import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInfo, infoToJson } from '../../src/cli/lvmlockctl';

const RAW =
  'info=structs unused_action_count=31 unused_client_count=31 unused_resource_count=29 unused_lock_count=31\n' +
  'info=client pid=5637 fd=7 pi=2 id=35 name=.\n' +
  'info=client pid=700 fd=9 pi=3 id=4 name=lvcreate\n' +
  'info=ls ls_name=lvm_global vg_name= vg_uuid= vg_sysid=. vg_args= lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
  'info=r name=GLLK type=gl mode=sh sh_count=1 version=4\n' +
  'info=lk mode=sh version=4 flags=0x0 client_id=4\n' +
  'info=ls ls_name=REM:lvm_vg1 vg_name=vg1 vg_uuid=Ome5tJ-6Zke vg_sysid=. vg_args=1.0.0:test lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=1 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
  'info=ls_action client_id=4 flags=0x0 version=0 op=stop rt=vg mode=iv lm_type=dlm result=0 lm_rv=0\n' +
  'info=r name=uRgWe9 type=lv mode=ex sh_count=0 version=0\n' +
  'info=lk mode=ex version=0 flags=0x1 client_id=0\n' +
  'info=r_action client_id=4 flags=0x0 version=0 op=lock rt=lv mode=sh lm_type=dlm result=0 lm_rv=0\n' +
  'info=mystery x=1\n';

test('JSON document structure', () => {
  const d = parseInfo(RAW);
  assert.equal(d.lvmlockctl_json, 1);
  assert.equal(d.daemon_format, '2.03.16');
  assert.deepEqual(d.structs, { unused_action_count: 31, unused_client_count: 31, unused_resource_count: 29, unused_lock_count: 31 });
  assert.deepEqual(d.clients, [
    { pid: 5637, fd: 7, pi: 2, id: 35, name: '.' },
    { pid: 700, fd: 9, pi: 3, id: 4, name: 'lvcreate' },
  ]);
  assert.equal(d.lockspaces.length, 2);
  const g = d.lockspaces[0]!;
  assert.equal(g['ls_name'], 'lvm_global');
  assert.equal(g['vg_name'], '');
  assert.equal(g['vg_sysid'], '.');
  assert.equal(g['lm_type'], 'dlm');
  assert.equal(g['create_done'], 1);
  assert.equal(g.removing, false);
  assert.deepEqual(g.resources, [{
    name: 'GLLK', type: 'gl', mode: 'sh', sh_count: 1, version: 4,
    locks: [{ mode: 'sh', version: 4, flags: 0, client_id: 4, persistent: false, client: { pid: 700, name: 'lvcreate' } }],
    actions: [], fence_wait_actions: [],
  }]);
  const v = d.lockspaces[1]!;
  assert.equal(v.removing, true);
  assert.equal(v['ls_name'], 'REM:lvm_vg1');
  assert.equal(v['vg_args'], '1.0.0:test');
  assert.deepEqual(v.actions, [{ client_id: 4, flags: 0, version: 0, op: 'stop', rt: 'vg', mode: 'iv', lm_type: 'dlm', result: 0, lm_rv: 0, client: { pid: 700, name: 'lvcreate' } }]);
  const lv = v.resources[0]!;
  assert.deepEqual(lv.locks, [{ mode: 'ex', version: 0, flags: 1, client_id: 0, persistent: true, client: null }]);
  assert.equal(lv.actions[0]!['mode'], 'sh');
  assert.deepEqual(d.unknown_lines, ['info=mystery x=1']);
});

test('HEAD lines are recognised, big keys stay strings', () => {
  const d = parseInfo(
    'info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=U vg_args=1.0.0:x lm_type=sanlock host_id=1 generation=2 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 fence_pr=1 no_timeout=0 sanlock_gl_enabled=0\n' +
    'info=ls_fence_history op=fence result=0 msg_id=1 owner_host_id=3 owner_generation=9 ourkey=0x100 remkey=0xffffffffffffffff\n' +
    'info=r name=LV1 type=lv mode=un sh_count=0 version=0\n' +
    'info=r_fence_wait_action client_id=0 flags=0x0 version=0 op=lock rt=lv mode=ex lm_type=sanlock result=0 lm_rv=0 owner_host_id=3 owner_generation=9\n');
  assert.equal(d.daemon_format, 'head');
  const ls = d.lockspaces[0]!;
  assert.equal(ls['generation'], 2);
  assert.deepEqual(ls.fence_history, [{ op: 'fence', result: 0, msg_id: 1, owner_host_id: 3, owner_generation: 9, ourkey: '0x100', remkey: '0xffffffffffffffff' }]);
  assert.equal(ls.resources[0]!.fence_wait_actions[0]!['owner_host_id'], 3);
});

test('empty info gives an empty document; output is JSON with a newline', () => {
  const s = infoToJson('');
  assert.ok(s.endsWith('}\n'));
  assert.deepEqual(JSON.parse(s), { lvmlockctl_json: 1, daemon_format: 'unknown', structs: null, clients: [], lockspaces: [], unknown_lines: [] });
});

test('lines out of context go to unknown_lines', () => {
  const d = parseInfo('info=lk mode=ex version=0 flags=0x0 client_id=1\ninfo=r name=X type=lv mode=un sh_count=0 version=0\n');
  assert.equal(d.unknown_lines.length, 2);
});
