// The same command sequence on an all-C cluster (C lvmlockd + sanlock daemon
// on each host) and on an all-ours cluster (bin/lvmlockd, no sanlock daemon):
// exit codes, stdout and stderr must be identical after normalization.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compareDaemons, formatComparison, type DaemonSpec, type Step } from '../harness/compare';

const IO = '2';
const C: DaemonSpec = { kind: 'c', args: ['-o', IO], sanlock: true };
const TS: DaemonSpec = { kind: 'ts', args: ['-o', IO] };
// 2.03.16 keeps "LK LV un <uuid>" lines of unlocked LVs in --info; ours frees them (as newer lvmlockd).
// 2.03.16 also keeps VG/GL versions in sanlock LVBs, so its "LK VG un ver N" follows other hosts'
// changes; we keep LVBs off as newer lvmlockd does (LVMLOCKD_USE_SANLOCK_LVB 0), so the VG line's
// version only follows this host's changes. lvm 2.03 commands never use that version.
const INFO = (host: number, waitMs?: number): Step => ({
  host, argv: ['lvmlockctl', '--info'], sortInfo: true, dropLines: /^LK LV un |^LK (VG|GL) un ver /, ...(waitMs ? { waitMs } : {}),
});
// Lease names and lock state on disk, as the real sanlock tool reads them (timestamps and owners vary).
const LEASES = (host: number): Step => ({
  host, argv: ['sh', '-c', "sanlock direct dump /dev/mapper/vgc-lvmlock:65M:4M | awk '{print $1, $2, $3}'"], label: 'lease names',
});

const SCRIPT: Step[] = [
  { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'sanlock', 'vgc', '{disk0}'] },
  LEASES(1),
  { host: 2, argv: ['lvm', 'vgchange', '--lock-start', 'vgc'], timeoutMs: 120_000 },
  INFO(2),
  { host: 1, argv: ['lvm', 'lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgc'] },
  { host: 2, argv: ['lvm', 'lvcreate', '-an', '-n', 'lv2', '-L', '8M', 'vgc'] },
  { host: 2, argv: ['lvm', 'lvs', '-a', '-o', 'lv_name,lv_lock_args,seg_pe_ranges', 'vgc'] },
  LEASES(2),
  { host: 1, argv: ['lvm', 'lvchange', '-aey', 'vgc/lv1'] },
  { host: 2, argv: ['lvm', 'lvchange', '-aey', 'vgc/lv1'] },
  { host: 2, argv: ['lvm', 'lvchange', '-asy', 'vgc/lv1'] },
  INFO(1),
  INFO(2),
  { host: 1, argv: ['lvm', 'lvchange', '-an', 'vgc/lv1'] },
  { host: 2, argv: ['lvm', 'lvchange', '-aey', 'vgc/lv1'] },
  { host: 2, argv: ['lvm', 'lvchange', '-an', 'vgc/lv1'] },
  { host: 1, argv: ['lvm', 'lvchange', '-asy', 'vgc/lv2'] },
  { host: 2, argv: ['lvm', 'lvchange', '-asy', 'vgc/lv2'] },
  { host: 1, argv: ['lvm', 'lvchange', '-aey', 'vgc/lv2'] },
  INFO(1),
  { host: 1, argv: ['lvm', 'lvchange', '-an', 'vgc/lv2'] },
  { host: 2, argv: ['lvm', 'lvchange', '-an', 'vgc/lv2'] },
  { host: 2, argv: ['lvm', 'lvremove', '-y', 'vgc/lv1'] },
  { host: 1, argv: ['lvm', 'lvcreate', '-an', '-n', 'lv3', '-L', '8M', 'vgc'] },
  { host: 1, argv: ['lvm', 'lvs', '-o', 'lv_name,lv_lock_args', 'vgc'] },
  { host: 1, argv: ['lvmlockctl', '--gl-disable', 'vgc'] },
  { host: 1, argv: ['lvm', 'pvs'] },
  { host: 1, argv: ['lvmlockctl', '--gl-enable', 'vgc'] },
  { host: 1, argv: ['lvm', 'pvs'] },
  LEASES(1),
  { host: 1, argv: ['lvm', 'vgremove', '-y', 'vgc'] },
  { host: 2, argv: ['lvm', 'vgchange', '--lock-stop', 'vgc'] },
  // Host 1 sees host 2's release at its next lease renewal (2 * io_timeout).
  { host: 1, argv: ['lvm', 'vgremove', '-y', 'vgc'], waitMs: 6000 },
  INFO(1, 3000),
];

// vgrename: refused while another host has the VG started, then the leases
// are rewritten under the new lockspace name (rename_vg_final). Without
// device-mapper the renamed lvmlock device is emulated up front.
const RENAME: Step[] = [
  { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'sanlock', 'vgc', '{disk0}'] },
  { host: 1, argv: ['lvm', 'lvcreate', '-an', '-n', 'lv1', '-L', '8M', 'vgc'] },
  { host: 2, argv: ['lvm', 'vgchange', '--lock-start', 'vgc'], timeoutMs: 120_000 },
  { host: 1, argv: ['lvm', 'vgrename', 'vgc', 'vgr'] },
  { host: 2, argv: ['lvm', 'vgchange', '--lock-stop', 'vgc'] },
  { host: 1, argv: ['lvm', 'vgrename', 'vgc', 'vgr'], waitMs: 6000 },
  { host: 1, argv: ['lvm', 'vgchange', '--lock-start', 'vgr'], timeoutMs: 120_000 },
  { host: 2, argv: ['lvm', 'vgchange', '--lock-start', 'vgr'], timeoutMs: 120_000 },
  { host: 2, argv: ['lvm', 'lvchange', '-aey', 'vgr/lv1'] },
  { host: 1, argv: ['lvm', 'lvchange', '-aey', 'vgr/lv1'] },
  INFO(2),
  { host: 1, argv: ['sh', '-c', "sanlock direct dump /dev/mapper/vgr-lvmlock:65M:3M | awk '{print $1, $2, $3}'"], label: 'lease names' },
  { host: 2, argv: ['lvm', 'lvchange', '-an', 'vgr/lv1'] },
];

// Two VGs created by hosts that did not know each other's: both GLs enabled.
// Commands warn about the duplicate until one is disabled with lvmlockctl.
const DUP_GL: Step[] = [
  { host: 1, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'sanlock', 'vga', '{disk0}'] },
  { host: 2, argv: ['lvm', 'vgcreate', '--shared', '--lock-type', 'sanlock', 'vgb', '{disk1}'] },
  { host: 1, argv: ['lvm', 'vgchange', '--lock-start', 'vgb'], timeoutMs: 120_000 },
  { host: 2, argv: ['lvm', 'vgchange', '--lock-start', 'vga'], timeoutMs: 120_000 },
  { host: 1, argv: ['lvm', 'pvs'] },
  { host: 2, argv: ['lvm', 'vgs'] },
  { host: 1, argv: ['lvmlockctl', '--gl-disable', 'vgb'] },
  { host: 1, argv: ['lvm', 'pvs'] },
  { host: 2, argv: ['lvm', 'pvs'] },
  { host: 2, argv: ['lvm', 'pvs'] },
  { host: 1, argv: ['sh', '-c', "sanlock direct dump /dev/mapper/vgb-lvmlock:65M:1M | awk '{print $1, $2, $3}'"], label: 'lease names' },
];

// The three comparisons (each an all-C and an all-ours cluster, run at the
// same time by compareDaemons) share nothing and mostly wait for lease
// timings: they run at the same time too.
describe('sanlock: all-C cluster vs all-ours cluster', { concurrency: true }, () => {
  test('same command sequence, same output', { timeout: 300_000 }, async () => {
    const cmp = await compareDaemons(SCRIPT, C, TS, {
      disks: [{ sizeMiB: 512 }],
      stepTimeoutMs: 60_000,
      setup: async (c) => { await c.emulateLvmlock('vgc'); },
    });
    assert.ok(cmp.same, formatComparison(cmp, { withOutput: true }));
  });

  test('vgrename', { timeout: 300_000 }, async () => {
    const cmp = await compareDaemons(RENAME, C, TS, {
      disks: [{ sizeMiB: 512 }],
      stepTimeoutMs: 60_000,
      setup: async (c) => {
        await c.emulateLvmlock('vgc');
        await c.emulateLvmlock('vgr');
      },
    });
    assert.ok(cmp.same, formatComparison(cmp, { withOutput: true }));
  });

  test('duplicate global locks', { timeout: 300_000 }, async () => {
    const cmp = await compareDaemons(DUP_GL, C, TS, {
      disks: [{ sizeMiB: 512 }, { sizeMiB: 512 }],
      stepTimeoutMs: 60_000,
      setup: async (c) => {
        await c.emulateLvmlock('vga', { disk: 0 });
        await c.emulateLvmlock('vgb', { disk: 1 });
      },
    });
    assert.ok(cmp.same, formatComparison(cmp, { withOutput: true }));
  });
});
