// VM tier, real activation with OUR daemon in test mode (`bin/lvmlockd -T`)
// on one VM with real device-mapper: lvcreate / lvchange -aey / -asy create
// /dev/mapper/<vg>-<lv>, -an removes it, for dlm and sanlock VGs (a sanlock
// VG gets a real, active lvmlock LV). The same sequence runs first against C
// `lvmlockd -T` on the same VM; exit codes and normalized output must match.

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { VmCluster, Vm } from './lib/vm';
import { vmSkipReason, vmLog, describeVm } from './lib/gate';
import { DaemonKind, mapperExists, setupLvm, startLvmlockd, stopLvmlockd } from './lib/stack';
import { normalize, normalizeInfo, newNormalizeContext, lineDiff } from '../harness/compare';

const skip = vmSkipReason();

interface Step {
  argv: string[];
  /** /dev/mapper names that must exist (true) or not (false) after the step */
  mapper?: Record<string, boolean>;
  /** lvmlockctl --info: normalize and sort lock lines */
  info?: boolean;
}

function sequence(lockType: 'dlm' | 'sanlock'): Step[] {
  const vg = `vgt${lockType[0]}`;
  const node = `${vg}-lv1`;
  return [
    { argv: ['lvm', 'vgcreate', '--shared', '--lock-type', lockType, vg, '/dev/vdb'], mapper: lockType === 'sanlock' ? { [`${vg}-lvmlock`]: true } : {} },
    { argv: ['lvm', 'lvcreate', '-n', 'lv1', '-L', '32M', vg], mapper: { [node]: true } },
    { argv: ['lvm', 'lvchange', '-an', `${vg}/lv1`], mapper: { [node]: false } },
    { argv: ['lvm', 'lvchange', '-aey', `${vg}/lv1`], mapper: { [node]: true } },
    { argv: ['lvm', 'lvextend', '-L', '+8M', `${vg}/lv1`] },
    { argv: ['lvm', 'lvchange', '-an', `${vg}/lv1`], mapper: { [node]: false } },
    { argv: ['lvm', 'lvchange', '-asy', `${vg}/lv1`], mapper: { [node]: true } },
    { argv: ['lvm', 'lvextend', '-L', '+8M', `${vg}/lv1`] },
    { argv: ['lvm', 'lvs', '--noheadings', '-o', 'lv_name,lv_size,lv_active,lv_active_exclusively,lv_active_locally', vg] },
    { argv: ['lvmlockctl', '--info'], info: true },
    { argv: ['lvm', 'lvchange', '-an', `${vg}/lv1`], mapper: { [node]: false } },
    { argv: ['lvm', 'lvcreate', '-n', 'lv2', '-L', '16M', '-an', vg], mapper: { [`${vg}-lv2`]: false } },
    { argv: ['lvm', 'lvremove', '-y', `${vg}/lv1`, `${vg}/lv2`] },
    { argv: ['lvm', 'vgremove', '-y', vg], mapper: lockType === 'sanlock' ? { [`${vg}-lvmlock`]: false } : {} },
  ];
}

interface Result {
  code: number;
  out: string;
}

async function runSequence(vm: Vm, kind: DaemonKind, steps: Step[]): Promise<Result[]> {
  await vm.sh('dd if=/dev/zero of=/dev/vdb bs=1M count=4 oflag=direct status=none');
  await startLvmlockd(vm, { kind, args: ['-T'] });
  const ctx = newNormalizeContext();
  const results: Result[] = [];
  try {
    for (const s of steps) {
      const r = await vm.exec(s.argv, { timeoutMs: 120_000 });
      const out = s.info ? normalizeInfo(r.stdout, ctx, { sort: true }) : normalize(r.stdout, ctx);
      const text = `${out}\n--- stderr\n${normalize(r.stderr, ctx)}`;
      results.push({ code: r.code, out: text });
      vmLog(`testmode ${kind} ${s.argv.join(' ')} → ${r.code} (${r.durationMs} ms)`);
      for (const [name, present] of Object.entries(s.mapper ?? {})) {
        assert.equal(await mapperExists(vm, name), present,
          `${kind}: after ${s.argv.join(' ')} (exit ${r.code}): /dev/mapper/${name} should ${present ? '' : 'not '}exist\n${r.stderr}`);
      }
    }
  } finally {
    await stopLvmlockd(vm);
    await vm.sh('dmsetup remove_all 2>/dev/null; true');
  }
  return results;
}

describeVm('vm tier: our lvmlockd -T with real device-mapper (1 VM), same as C -T', { skip, timeout: 15 * 60_000 }, () => {
  let c: VmCluster;

  before(async () => {
    c = await VmCluster.create({ vms: 1, disks: [{ sizeMiB: 512 }], name: 'testmode', log: vmLog });
    await setupLvm(c.vm(1));
  });

  after(async () => {
    if (c) await c.destroy();
  });

  for (const lockType of ['dlm', 'sanlock'] as const) {
    it(`${lockType} VG: activation creates and removes /dev/mapper nodes; C and ours agree`, async () => {
      const steps = sequence(lockType);
      const cRes = await runSequence(c.vm(1), 'c', steps);
      const tsRes = await runSequence(c.vm(1), 'ts', steps);
      const diffs: string[] = [];
      steps.forEach((s, i) => {
        const a = cRes[i]!;
        const b = tsRes[i]!;
        if (a.code !== b.code || a.out !== b.out) {
          diffs.push(`step ${i + 1} ${s.argv.join(' ')}: exit C ${a.code} / ours ${b.code}\n${lineDiff(a.out, b.out)}`);
        }
      });
      assert.equal(diffs.length, 0, diffs.join('\n'));
    });
  }
});
