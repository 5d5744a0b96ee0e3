// Compatibility: the same LVM command scripts against the C lvmlockd -T and
// our lvmlockd -T (fresh 2-host clusters each), outputs compared after
// normalization. The scenarios follow the golden traces (shared/spec/traces
// 02-09) plus two-host use.
//
// Scenarios listed in KNOWN_DIFFERENT run as `todo` (reported, not failing
// the run) until the TS daemon matches; COMPAT_STRICT=1 enforces them too.
// Every other scenario must match exactly.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { compareDaemons, formatComparison, Step, DaemonSpec } from '../harness/compare';
import { tsLvmlockdPath } from '../harness/cluster';

const STRICT = process.env.COMPAT_STRICT === '1';
const C: DaemonSpec = { kind: 'c', args: ['-T'] };
const TS: DaemonSpec = { kind: 'ts', args: ['-T'] };

/** Scenario name → the known difference (remove the entry once fixed). */
const KNOWN_DIFFERENT: Record<string, string> = {
};

const INFO = (host: number, waitMs?: number): Step => ({ host, argv: ['lvmlockctl', '--info'], waitMs });
const RAW = (host: number, waitMs?: number): Step => ({ host, argv: ['lvmlockctl', '--info', '--dump'], waitMs });
// The C daemon frees stopped lockspaces (listed as REM:<name> meanwhile) 1-2 s
// after the stop: look at the lock state only once that settled.
const SETTLE = 3000;

const SCENARIOS: Record<string, Step[]> = {
  'idle daemon and vgcreate (traces 01, 02)': [
    INFO(1),
    { host: 1, argv: ['lvm', 'pvcreate', '{disk0}'] },
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', '{disk0}'] },
    INFO(1),
    RAW(1),
    { host: 1, argv: ['lvm', 'vgs', '-o', 'vg_name,vg_attr,vg_lock_type,vg_lock_args'] },
  ],
  'lock stop/start (trace 03)': [
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', '{disk0}'] },
    { host: 1, argv: ['lvm', 'vgchange', '--lock-stop', 'vg1'] },
    INFO(1, SETTLE),
    { host: 1, argv: ['lvm', 'vgchange', '--lock-start', 'vg1'] },
    INFO(1),
  ],
  'lvcreate and activation (traces 04, 05)': [
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', '{disk0}'] },
    { host: 1, argv: ['lvm', 'lvcreate', '-an', '-Zn', '-L', '16M', '-n', 'lv1', 'vg1'] },
    { host: 1, argv: ['lvm', 'lvs', '-o+lv_lock_args,vg_lock_type,vg_lock_args', 'vg1'] },
    { host: 1, argv: ['lvm', 'lvchange', '-aey', 'vg1/lv1'] },
    INFO(1),
    { host: 1, argv: ['lvm', 'lvchange', '-an', 'vg1/lv1'] },
    { host: 1, argv: ['lvm', 'lvchange', '-asy', 'vg1/lv1'] },
    INFO(1),
    { host: 1, argv: ['lvm', 'lvchange', '-an', 'vg1/lv1'] },
    // Deliberate: 2.03.16 keeps the unlocked LV resource listed (`LK LV un
    // <uuid>`) for the daemon's lifetime; ours frees it as newer lvmlockd does.
    { ...INFO(1), dropLines: /^LK LV un / },
  ],
  'lvextend (trace 06)': [
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', '{disk0}'] },
    { host: 1, argv: ['lvm', 'lvcreate', '-an', '-L', '16M', '-n', 'lv1', 'vg1'] },
    { host: 1, argv: ['lvm', 'lvextend', '-L', '+8M', 'vg1/lv1'] },
    { host: 1, argv: ['lvm', 'lvchange', '-aey', 'vg1/lv1'] },
    { host: 1, argv: ['lvm', 'lvextend', '-L', '+8M', 'vg1/lv1'] },
    INFO(1),
    RAW(1),
    { host: 1, argv: ['lvm', 'lvchange', '-an', 'vg1/lv1'] },
  ],
  'busy lock-stop and vgremove (trace 08)': [
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', '{disk0}'] },
    { host: 1, argv: ['lvm', 'lvcreate', '-L', '16M', '-n', 'lv1', 'vg1'] },
    { host: 1, argv: ['lvm', 'vgchange', '--lock-stop', 'vg1'] },
    { host: 1, argv: ['lvm', 'lvchange', '-an', 'vg1/lv1'] },
    { host: 1, argv: ['lvm', 'vgremove', '-y', 'vg1'] },
    RAW(1, SETTLE),
    { host: 1, argv: ['lvm', 'pvs'] },
  ],
  'global lockspace lifecycle (trace 09)': [
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg2', '{disk0}'] },
    { host: 1, argv: ['lvm', 'vgchange', '--lock-stop', 'vg2'] },
    INFO(1, SETTLE),
    { host: 1, argv: ['lvm', 'lvcreate', '-an', '-L', '8M', '-n', 'lvx', 'vg2'] },
    { host: 1, argv: ['lvm', 'vgs', '-o+lock_type,lock_args'] },
    { host: 1, argv: ['lvm', 'vgchange', '--lock-start', 'vg2'] },
    { host: 1, argv: ['lvmlockctl', '--stop-lockspaces'] },
    RAW(1, SETTLE),
  ],
  'two hosts, lvmlockctl admin requests': [
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'vg1', '{disk0}'] },
    { host: 1, argv: ['lvm', 'lvcreate', '-an', '-L', '8M', '-n', 'lv1', 'vg1'] },
    { host: 2, argv: ['lvm', 'vgchange', '--lock-start', 'vg1'] },
    { host: 2, argv: ['lvm', 'lvchange', '-asy', 'vg1/lv1'] },
    { host: 1, argv: ['lvm', 'lvchange', '-asy', 'vg1/lv1'] },
    INFO(1),
    INFO(2),
    { host: 2, argv: ['lvmlockctl', '--gl-enable', 'vg1'] },
    { host: 2, argv: ['lvmlockctl', '--gl-disable', 'vg1'] },
    // The documented procedure: --kill, then --drop. (A --drop without --kill while host 2 holds
    // its LV lock is refused by our daemon, a deliberate difference: README.)
    { host: 2, argv: ['lvmlockctl', '--kill', 'vg1'] },
    INFO(2),
    { host: 2, argv: ['lvmlockctl', '--drop', 'vg1'] },
    INFO(2, SETTLE),
    { host: 2, argv: ['lvmlockctl', '--stop-lockspaces'] },
    { host: 1, argv: ['lvm', 'lvchange', '-an', 'vg1/lv1'] },
    { host: 1, argv: ['lvm', 'vgchange', '--lock-stop', 'vg1'] },
    INFO(1, SETTLE),
    { host: 1, argv: ['lvmlockctl', '--quit'] },
  ],
};

// sanlock in test mode: no sanlock daemon and no lease I/O, but the daemon
// still stats /dev/mapper/<vg>-lvmlock (start_vg fails -212 without it,
// trace 10), so the harness emulates that device before vgcreate.
const SANLOCK_SCENARIOS: Record<string, Step[]> = {
  'sanlock test mode with emulated lvmlock LV (trace 10)': [
    { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'sanlock', 'vgs1', '{disk0}'] },
    INFO(1),
    { host: 1, argv: ['lvm', 'lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgs1'] },
    { host: 1, argv: ['lvm', 'lvs', '-a', '-o', 'lv_name,lv_lock_args,seg_pe_ranges', 'vgs1'] },
    { host: 1, argv: ['lvm', 'lvchange', '-aey', 'vgs1/lv1'] },
    { host: 2, argv: ['lvm', 'vgchange', '--lock-start', 'vgs1'] },
    { host: 2, argv: ['lvm', 'lvchange', '-asy', 'vgs1/lv1'] },
    INFO(1),
    INFO(2),
    RAW(2),
    { host: 1, argv: ['lvm', 'lvchange', '-an', 'vgs1/lv1'] },
    { host: 2, argv: ['lvm', 'lvchange', '-an', 'vgs1/lv1'] },
    { host: 2, argv: ['lvm', 'vgchange', '--lock-stop', 'vgs1'] },
    { host: 1, argv: ['lvm', 'vgremove', '-y', 'vgs1'] },
    RAW(1, SETTLE),
  ],
};

describe('C lvmlockd -T vs TS lvmlockd -T, sanlock', () => {
  for (const [name, steps] of Object.entries(SANLOCK_SCENARIOS)) {
    const known = KNOWN_DIFFERENT[name];
    const todo = !STRICT && known ? `known difference: ${known} (COMPAT_STRICT=1 to enforce)` : false;
    test(name, { todo, timeout: 300_000 }, async () => {
      assert.ok(fs.existsSync(tsLvmlockdPath()), `TS daemon binary missing: ${tsLvmlockdPath()}`);
      const cmp = await compareDaemons(steps, C, TS, {
        disks: [{ sizeMiB: 1024 }],
        stepTimeoutMs: 30_000,
        setup: async (c) => {
          await c.emulateLvmlock('vgs1');
        },
      });
      assert.ok(cmp.same, formatComparison(cmp));
    });
  }
});

// Scenarios use their own fresh clusters (C and ours at the same time); up to
// three run at once.
describe('C lvmlockd -T vs TS lvmlockd -T', { concurrency: 3 }, () => {
  for (const [name, steps] of Object.entries(SCENARIOS)) {
    const known = KNOWN_DIFFERENT[name];
    const todo = !STRICT && known ? `known difference: ${known} (COMPAT_STRICT=1 to enforce)` : false;
    test(name, { todo, timeout: 300_000 }, async () => {
      assert.ok(fs.existsSync(tsLvmlockdPath()), `TS daemon binary missing: ${tsLvmlockdPath()}`);
      const cmp = await compareDaemons(steps, C, TS, { stepTimeoutMs: 15_000 });
      assert.ok(cmp.same, formatComparison(cmp));
    });
  }
});
