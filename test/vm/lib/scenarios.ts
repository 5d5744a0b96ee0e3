// Command sequences of the VM tier, shared by the C reference runs and ours:
// the same steps, the same expectations, whichever lvmlockd answers.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunResult, sleep } from '../../harness/exec';
import { Vm, VmCluster } from './vm';
import { lvm, mapperExists } from './stack';

export interface StepRecord {
  vm: string;
  what: string;
  code: number;
  ms: number;
  note: string;
}

/** Collects step results and timings; printed and saved as steps.json. */
export class Steps {
  readonly records: StepRecord[] = [];
  constructor(readonly c: VmCluster, readonly label: string, readonly log: (s: string) => void) {}

  async run(vm: Vm, args: string[], expectCode: number | 'nonzero' = 0, timeoutMs = 180_000): Promise<RunResult> {
    const r = await lvm(vm, args, timeoutMs);
    const note = firstLine(r.stderr, /WARNING: Activation|^\s*$/);
    this.records.push({ vm: vm.name, what: `lvm ${args.join(' ')}`, code: r.code, ms: r.durationMs, note });
    this.log(`${this.label} ${vm.name}$ lvm ${args.join(' ')} → ${r.code} (${r.durationMs} ms)${note ? ` ${note}` : ''}`);
    const ok = expectCode === 'nonzero' ? r.code !== 0 : r.code === expectCode;
    assert.ok(ok, `${vm.name}: lvm ${args.join(' ')}: exit ${r.code}, expected ${expectCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    return r;
  }

  note(vm: Vm, what: string, ms = 0, code = 0, note = ''): void {
    this.records.push({ vm: vm.name, what, code, ms, note });
    this.log(`${this.label} ${vm.name}: ${what}${note ? ` ${note}` : ''}`);
  }

  save(): void {
    try {
      fs.writeFileSync(path.join(this.c.dir, `steps-${this.label.replace(/[^a-z0-9]+/gi, '_')}.json`), JSON.stringify(this.records, null, 1));
    } catch { /* dir gone */ }
  }

  table(): string {
    return this.records.map((r) => `${r.vm.padEnd(4)} ${String(r.code).padStart(3)} ${String(r.ms).padStart(6)} ms  ${r.what}${r.note ? `  # ${r.note}` : ''}`).join('\n');
  }
}

export function firstLine(s: string, skip: RegExp): string {
  for (const l of s.split('\n')) if (!skip.test(l)) return l.trim();
  return '';
}

async function assertMapper(vm: Vm, name: string, present: boolean): Promise<void> {
  assert.equal(await mapperExists(vm, name), present, `${vm.name}: /dev/mapper/${name} should ${present ? '' : 'not '}exist`);
}

/** Retry an lvm command until it exits 0 (e.g. vgremove right after another host's lock-stop). */
export async function runUntilOk(steps: Steps, vm: Vm, args: string[], timeoutMs: number): Promise<RunResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await lvm(vm, args);
    if (r.code === 0 || Date.now() > deadline) {
      steps.records.push({ vm: vm.name, what: `lvm ${args.join(' ')} (retried)`, code: r.code, ms: r.durationMs, note: firstLine(r.stderr, /^\s*$/) });
      assert.equal(r.code, 0, `${vm.name}: lvm ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      return r;
    }
    await sleep(2000);
  }
}

/**
 * vgchange --lock-start, retried once per second (up to 5 tries) while it fails
 * with "invalid parameters for sanlock": lvm activates the lvmlock LV and
 * sends start_vg before udev has created /dev/mapper/<vg>-lvmlock (lvm syncs
 * device names only when the command ends), and C lvmlockd's
 * prepare_lockspace_san fails its stat() with ENOENT (-212). Real lvm 2.03.16
 * behaviour, frequent on a slow (TCG) VM; a second try finds the node.
 */
export async function lockStart(steps: Steps, vm: Vm, vg: string): Promise<RunResult> {
  for (let i = 1; ; i++) {
    const r = await lvm(vm, ['vgchange', '--lock-start', vg]);
    const note = firstLine(r.stderr, /Skipping global lock|^\s*$/);
    steps.records.push({ vm: vm.name, what: `lvm vgchange --lock-start ${vg}${i > 1 ? ` (try ${i})` : ''}`, code: r.code, ms: r.durationMs, note });
    steps.log(`${steps.label} ${vm.name}$ lvm vgchange --lock-start ${vg} (try ${i}) → ${r.code} (${r.durationMs} ms) ${note}`);
    if (r.code === 0) return r;
    if (i >= 5 || !/invalid parameters for sanlock/.test(r.stderr)) {
      assert.fail(`${vm.name}: vgchange --lock-start ${vg}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    }
    await sleep(1000);
  }
}

export const LOCKED_BY_OTHER = /LV locked by other host/;

/**
 * Scenario 1/3: real activation with ex/sh exclusion across two VMs.
 * Both VMs already run their lock stack and lvmlockd; vm1 creates the VG.
 */
export async function activationSequence(c: VmCluster, steps: Steps, o: { lockType: 'sanlock' | 'dlm'; vg: string }): Promise<void> {
  const [v1, v2] = [c.vm(1), c.vm(2)];
  const vg = o.vg;
  const lv = `${vg}-lv1`;
  await steps.run(v1, ['vgcreate', '--shared', '--lock-type', o.lockType, vg, '/dev/vdb']);
  if (o.lockType === 'sanlock') await assertMapper(v1, `${vg}-lvmlock`, true);
  await lockStart(steps, v2, vg);
  if (o.lockType === 'sanlock') await assertMapper(v2, `${vg}-lvmlock`, true);

  // lvcreate activates the new LV exclusively on vm1
  await steps.run(v1, ['lvcreate', '-n', 'lv1', '-L', '64M', vg]);
  await assertMapper(v1, lv, true);
  await assertMapper(v2, lv, false);
  const r1 = await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`], 5);
  assert.match(r1.stderr, LOCKED_BY_OTHER);
  const r2 = await steps.run(v2, ['lvchange', '-asy', `${vg}/lv1`], 5);
  assert.match(r2.stderr, LOCKED_BY_OTHER);
  await assertMapper(v2, lv, false);

  // data written through vm1's dm device is read through vm2's
  await v1.shOk(`printf 'vm-tier %s\\n' ${vg} | dd of=/dev/mapper/${lv} bs=4096 count=1 conv=sync oflag=direct status=none`);
  await steps.run(v1, ['lvchange', '-an', `${vg}/lv1`]);
  await assertMapper(v1, lv, false);

  await steps.run(v1, ['lvchange', '-asy', `${vg}/lv1`]);
  await steps.run(v2, ['lvchange', '-asy', `${vg}/lv1`]);
  await assertMapper(v1, lv, true);
  await assertMapper(v2, lv, true);
  const rd = await v2.shOk(`dd if=/dev/mapper/${lv} bs=4096 count=1 iflag=direct status=none | tr -d '\\0'`);
  assert.equal(rd.stdout, `vm-tier ${vg}\n`);
  steps.note(v2, 'read vm1\'s O_DIRECT write through /dev/mapper', 0, 0, JSON.stringify(rd.stdout.trim()));
  // ex while another host holds sh: refused
  const r3 = await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`], 'nonzero');
  steps.note(v2, 'lvchange -aey over sh held by both', r3.durationMs, r3.code, firstLine(r3.stderr, /^\s*$/));

  await steps.run(v1, ['lvchange', '-an', `${vg}/lv1`]);
  await steps.run(v2, ['lvchange', '-an', `${vg}/lv1`]);
  await assertMapper(v1, lv, false);
  await assertMapper(v2, lv, false);

  await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`]);
  await assertMapper(v2, lv, true);
  const r4 = await steps.run(v1, ['lvchange', '-aey', `${vg}/lv1`], 5);
  assert.match(r4.stderr, LOCKED_BY_OTHER);
  await steps.run(v2, ['lvchange', '-an', `${vg}/lv1`]);

  // teardown through lvm, as an administrator would
  await steps.run(v1, ['lvremove', '-y', `${vg}/lv1`]);
  await steps.run(v2, ['vgchange', '--lock-stop', vg]);
  await runUntilOk(steps, v1, ['vgremove', '-y', vg], 60_000);
}
