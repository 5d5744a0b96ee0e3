import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatInfo, cScan } from '../../src/cli/lvmlockctl';

// Raw info text and `lvmlockctl --info` output of the same daemon state, from the
// golden trace 07 (LVM 2.03.16).
const RAW_07 =
  'info=structs unused_action_count=31 unused_client_count=31 unused_resource_count=29 unused_lock_count=31\n' +
  'info=client pid=5637 fd=7 pi=2 id=35 name=.\n' +
  'info=ls ls_name=lvm_global vg_name= vg_uuid= vg_sysid=. vg_args= lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
  'info=r name=VGLK type=vg mode=un sh_count=0 version=0\n' +
  'info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK vg_sysid=. vg_args=1.0.0:test lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
  'info=r name=VGLK type=vg mode=un sh_count=0 version=5\n' +
  'info=r name=uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub type=lv mode=ex sh_count=0 version=0\n' +
  'info=lk mode=ex version=0 flags=0x1 client_id=0\n';
const FORMATTED_07 =
  'VG vg_uuid= lock_type= \n' +
  'LS  lvm_global\n' +
  'LK VG un ver 0\n' +
  '\n' +
  'VG vg1 lock_type=dlm Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK\n' +
  'LS dlm lvm_vg1\n' +
  'LK VG un ver 5\n' +
  'LK LV ex uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub\n';

test('trace 07: 2.03.16 raw info formats byte for byte', () => {
  assert.equal(RAW_07.length, 837); // dump_len in the trace
  assert.equal(formatInfo(RAW_07), FORMATTED_07);
  assert.equal(formatInfo(Buffer.from(RAW_07, 'latin1')), FORMATTED_07);
});

// The same state as a HEAD daemon prints it (generation, fence_pr, no_timeout; no vg_sysid/drop_vg).
const RAW_07_HEAD = RAW_07
  .replace(/ vg_sysid=\S*/g, '')
  .replace(/ host_id=0 /g, ' host_id=0 generation=0 ')
  .replace(/ drop_vg=0 sanlock_gl_enabled=0/g, ' fence_pr=0 no_timeout=0 sanlock_gl_enabled=0');

test('the HEAD info=ls line formats like HEAD lvmlockctl does', () => {
  assert.match(RAW_07_HEAD, /info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=\S+ vg_args=1.0.0:test lm_type=dlm host_id=0 generation=0 /);
  assert.equal(formatInfo(RAW_07_HEAD), FORMATTED_07);
  const sanlock = 'info=ls ls_name=lvm_vgs1 vg_name=vgs1 vg_uuid=U1 vg_args=1.0.0:lvmlock lm_type=sanlock host_id=7 generation=3 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 fence_pr=0 no_timeout=0 sanlock_gl_enabled=1\n';
  assert.equal(formatInfo(sanlock), 'VG vgs1 lock_type=sanlock U1\nLS sanlock lvm_vgs1\n');
  const legacy = 'info=ls ls_name=lvm_vgs1 vg_name=vgs1 vg_uuid=U1 vg_sysid=host1 vg_args=1.0.0:lvmlock lm_type=sanlock host_id=7 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=1\n';
  assert.equal(formatInfo(legacy), 'VG vgs1 lock_type=sanlock U1\nLS sanlock lvm_vgs1\n');
});

test('trace 08: GLLK resource, trace 10: no lockspaces', () => {
  const raw08 =
    'info=structs unused_action_count=31 unused_client_count=31 unused_resource_count=30 unused_lock_count=32\n' +
    'info=client pid=5637 fd=7 pi=2 id=41 name=.\n' +
    'info=ls ls_name=lvm_global vg_name= vg_uuid= vg_sysid=. vg_args= lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
    'info=r name=VGLK type=vg mode=un sh_count=0 version=0\n' +
    'info=r name=GLLK type=gl mode=un sh_count=0 version=1\n';
  assert.equal(formatInfo(raw08), 'VG vg_uuid= lock_type= \nLS  lvm_global\nLK VG un ver 0\nLK GL un ver 1\n');
  const raw10 =
    'info=structs unused_action_count=31 unused_client_count=31 unused_resource_count=30 unused_lock_count=32\n' +
    'info=client pid=5637 fd=7 pi=2 id=72 name=.\n';
  assert.equal(formatInfo(raw10), '');
});

test('trace 09: stopping lockspaces keep their REM: names', () => {
  const raw =
    'info=ls ls_name=REM:lvm_global vg_name= vg_uuid= vg_sysid=. vg_args= lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=1 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
    'info=ls ls_name=REM:lvm_vg2 vg_name=vg2 vg_uuid=VdnlAf-j4j2-Q8ZM-EGfV-EyS1-3VPE-Y2vmx1 vg_sysid=. vg_args=1.0.0:test lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=1 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n';
  assert.equal(formatInfo(raw),
    'VG vg_uuid= lock_type= \nLS  REM:lvm_global\n\nVG vg2 lock_type=dlm VdnlAf-j4j2-Q8ZM-EGfV-EyS1-3VPE-Y2vmx1\nLS dlm REM:lvm_vg2\n');
});

// Locks held by clients, waiting requests and odd lines (checked against the C tool
// by the fake-daemon integration test).
export const RAW_BUSY =
  'info=structs unused_action_count=1 unused_client_count=2 unused_resource_count=3 unused_lock_count=4\n' +
  'info=client pid=700 fd=9 pi=3 id=4 name=lvcreate\n' +
  'info=client pid=701 fd=10 pi=4 id=5 name=vgs\n' +
  'info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=UUID-1 vg_sysid=. vg_args=1.0.0:test lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
  'info=ls_action client_id=5 flags=0x0 version=0 op=start rt=vg mode=iv lm_type=dlm result=0 lm_rv=0\n' +
  'info=r name=GLLK type=gl mode=sh sh_count=2 version=4\n' +
  'info=lk mode=sh version=4 flags=0x0 client_id=4\n' +
  'info=lk mode=sh version=4 flags=0x0 client_id=99\n' +
  'info=r_action client_id=5 flags=0x0 version=0 op=lock rt=gl mode=ex lm_type=dlm result=0 lm_rv=0\n' +
  'info=r name=VGLK type=vg mode=ex sh_count=0 version=7\n' +
  'info=lk mode=ex version=7 flags=0x0 client_id=4\n' +
  'info=r_action client_id=5 flags=0x0 version=0 op=update rt=vg mode=ex lm_type=dlm result=0 lm_rv=0\n' +
  'info=r name=LVUUID-2 type=lv mode=sh sh_count=1 version=0\n' +
  'info=lk mode=sh version=0 flags=0x1 client_id=0\n' +
  'info=r_action client_id=4 flags=0x0 version=0 op=lock rt=lv mode=ex lm_type=dlm result=0 lm_rv=0\n' +
  'info=r name=LVUUID-3 type=lv mode=un sh_count=0 version=0\n' +
  'info=bogus a=b\n' +
  '\n';
export const FORMATTED_BUSY =
  'VG vg1 lock_type=dlm UUID-1\n' +
  'LS dlm lvm_vg1\n' +
  'OP start pid 701 (vgs)\n' +
  'LK GL sh ver 4 pid 700 (lvcreate)\n' +
  'LK GL sh ver 4 pid 0 ()\n' +
  'LW GL ex ver 0 pid 701 (vgs)\n' +
  'LK VG ex ver 7 pid 700 (lvcreate)\n' +
  'OP update pid 701 (vgs)\n' +
  'LK LV sh LVUUID-2\n' +
  'LW LV ex LVUUID-2\n' +
  'LK LV un LVUUID-3\n' +
  'UN info=bogus a=b\n\n' +
  'UN \n\n';

test('locks, waiters, actions, unknown lines', () => {
  assert.equal(formatInfo(RAW_BUSY), FORMATTED_BUSY);
});

test('lk / r_action before any resource, NUL-terminated and unterminated lines', () => {
  const raw = 'info=lk mode=ex version=1 flags=0x0 client_id=1\n' +
    'info=r_action client_id=1 flags=0x0 version=0 op=lock rt=lv mode=ex lm_type=dlm result=0 lm_rv=0\n' +
    'junk\0' + 'info=r name=X type=lv mode=un sh_count=0 version=0\0' + 'tail-without-newline';
  assert.equal(formatInfo(raw),
    'format_info_lk error r_name  r_type \ninfo=lk mode=ex version=1 flags=0x0 client_id=1\n\n' +
    'format_info_r_action error r_name  r_type \ninfo=r_action client_id=1 flags=0x0 version=0 op=lock rt=lv mode=ex lm_type=dlm result=0 lm_rv=0\n\n' +
    'UN junk\n' +
    'LK LV un X\n');
});

test('HEAD-only fence lines', () => {
  const raw =
    'info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=U vg_args=1.0.0:x lm_type=sanlock host_id=1 generation=2 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 fence_pr=1 no_timeout=0 sanlock_gl_enabled=0\n' +
    'info=ls_fence_history op=fence result=0 msg_id=1 owner_host_id=3 owner_generation=9 ourkey=0x100 remkey=0x300\n' +
    'info=ls_fence_history op=fence_result result=-5 msg_id=2 owner_host_id=3 owner_generation=9 ourkey=0x100 remkey=0x300\n' +
    'info=ls_fence_history op=fence_result result=0 msg_id=3 owner_host_id=4 owner_generation=1 ourkey=0x100 remkey=0x400\n' +
    'info=r name=LV1 type=lv mode=un sh_count=0 version=0\n' +
    'info=r_fence_wait_action client_id=0 flags=0x0 version=0 op=lock rt=lv mode=ex lm_type=sanlock result=0 lm_rv=0 owner_host_id=3 owner_generation=9\n';
  assert.equal(formatInfo(raw),
    'VG vg1 lock_type=sanlock U\nLS sanlock lvm_vg1\n' +
    'PR host_id 3 generation 9 key 0x300 waiting\n' +
    'PR host_id 3 generation 9 key 0x300 failed\n' +
    'PR host_id 4 generation 1 key 0x400 removed\n' +
    'LK LV un LV1\n' +
    'LW LV ex LV1 fence_owner 3.9\n');
});

test('cScan follows sscanf: %s truncation, %u wrap, stop at the first mismatch', () => {
  assert.deepEqual(cScan('a=xyz b=1', 'a=%s b=%u', [3]), ['xy', 1]);
  assert.deepEqual(cScan('n=-1', 'n=%u'), [4294967295]);
  assert.deepEqual(cScan('n=-1', 'n=%d'), [-1]);
  assert.deepEqual(cScan('x= y=2', 'x=%s y=%u'), ['y=2', undefined]);
  assert.deepEqual(cScan('x=1', 'y=%u'), [undefined]);
});
