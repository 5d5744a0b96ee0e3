// The IDM VM bench (bench/idm-vm.ts): its knobs are refused with a sentence
// naming the knob (exit 2) before anything boots; the GPT layout gives every
// VG its own partition on each of its drives; the report names TCG and keeps
// the n of every cell.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { IDM_VM_DEFAULTS, IdmBenchUsageError, parseIdmVmArgs, validateIdmVmOptions } from '../../bench/idm-vm-options';
import { formatIdmVmReport, vmDriveLayout, vmPvPartition, type VmConfigResult } from '../../bench/idm-vm-report';
import { runIdmVmBench } from '../../bench/idm-vm';
import { emptyResult } from '../../bench/idm-report';
import { PROPELLER_PART } from '../vm/lib/idm-scsi';

const CLI = path.resolve(__dirname, '..', '..', 'bench', 'idm-vm.js');

test('no arguments give the defaults; every knob is read', () => {
  assert.deepEqual(parseIdmVmArgs([]), IDM_VM_DEFAULTS);
  const o = parseIdmVmArgs(['--drives', '2,4', '--lv-reps=3', '--raw-rounds', '5', '--raw-seconds', '0.5', '--warmup', '0',
    '--io', '1', '--kill-drive', '4:1:2.5', '--no-sanlock', '--keep', '--quiet']);
  assert.deepEqual(o, {
    drives: [2, 4], lvReps: 3, rawRounds: 5, rawSeconds: 0.5, warmupSeconds: 0, io: 1,
    killDrive: { drives: 4, index: 1, afterSeconds: 2.5 }, sanlock: false, keep: true, verbose: false,
  });
});

const BAD: Array<[string[], RegExp]> = [
  [['--drives', 'x'], /--drives .*"x" is not an integer/],
  [['--drives', '1,,3'], /--drives .*an empty item/],
  [['--drives', '3,3'], /--drives .*3 twice/],
  [['--drives', '0'], /--drives .*0 is out of range/],
  [['--drives', '9'], /--drives wants distinct integers 1-8 .*9 is out of range/],
  [['--drives'], /--drives needs a value/],
  [['--lv-reps', '0'], /--lv-reps must be an integer >= 1/],
  [['--lv-reps', '2.5'], /--lv-reps/],
  [['--raw-rounds', ''], /--raw-rounds .*got ""/],
  [['--raw-seconds', '0'], /--raw-seconds must be a number > 0/],
  [['--raw-seconds', 'NaN'], /--raw-seconds/],
  [['--warmup', '-1'], /--warmup must be a number >= 0/],
  [['--warmup', '61'], /<= 60/],
  [['--io', ' 5'], /--io .*got " 5"/],
  [['--io', '--keep'], /--io needs a value/],
  [['--kill-drive', '3:5:1'], /drive index 5 is not below 3/],
  [['--kill-drive', 'x'], /--kill-drive wants N:I:S/],
  [['--kill-drive', '2:0:1', '--drives', '1,3'], /no VG of 2 drives in this run/],
  [['--handovers', '3'], /unknown argument "--handovers"/],
  [['5'], /unknown argument "5"/],
];

for (const [argv, re] of BAD) {
  test(`refused with the knob named: ${JSON.stringify(argv)}`, () => {
    assert.throws(() => parseIdmVmArgs(argv), (e: unknown) => e instanceof IdmBenchUsageError && re.test(e.message));
  });
}

test('validateIdmVmOptions refuses bad values from callers', () => {
  assert.deepEqual(validateIdmVmOptions({}), IDM_VM_DEFAULTS);
  assert.throws(() => validateIdmVmOptions({ lvReps: 0 }), /--lv-reps must be an integer >= 1/);
  assert.throws(() => validateIdmVmOptions({ rawSeconds: NaN }), /--raw-seconds/);
  assert.throws(() => validateIdmVmOptions({ drives: [1, 1] }), /1 twice/);
  assert.throws(() => validateIdmVmOptions({ drives: [] }), /--drives/);
  assert.throws(() => validateIdmVmOptions({ keep: 1 as unknown as boolean }), /keep must be true or false/);
  assert.throws(() => validateIdmVmOptions({ killDrive: { drives: 5, index: 0, afterSeconds: 1 }, drives: [1, 3] }), /no VG of 5 drives/);
  assert.throws(() => validateIdmVmOptions({ nope: 1 } as never), /unknown option "nope"/);
});

test('runIdmVmBench refuses a bad knob before it boots anything', async () => {
  const t0 = Date.now();
  await assert.rejects(runIdmVmBench({ rawRounds: 0 }), (e: unknown) => e instanceof IdmBenchUsageError && /--raw-rounds/.test(e.message));
  assert.ok(Date.now() - t0 < 2000, 'refused at once');
});

test('the CLI answers a bad knob with exit 2, one sentence and the usage, no stack trace', () => {
  for (const argv of [['--drives', '9'], ['--raw-seconds', '-3'], ['--frobnicate']]) {
    const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, `${argv.join(' ')}: status ${r.status}, stderr ${r.stderr}`);
    assert.match(r.stderr, /^idm-vm bench: /);
    assert.match(r.stderr, /usage: node dist\/bench\/idm-vm\.js/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack frames');
    assert.equal(r.stdout, '');
  }
});

test('GPT layout: propeller first, then one PV partition per VG using the drive, disjoint, in their slots', () => {
  const drives = [1, 3, 5];
  const bytes = 128 * 1024 * 1024;
  const lastUsable = bytes / 512 - 34;
  const seen = new Map<string, number>();
  for (let i = 0; i < 5; i++) {
    const parts = vmDriveLayout(drives, i, bytes);
    assert.deepEqual(parts[0], PROPELLER_PART);
    const names = parts.slice(1).map((p) => p.name);
    assert.deepEqual(names, drives.filter((n) => i < n).map((n) => `pv-vgi${n}`), `drive ${i}`);
    for (let k = 1; k < parts.length; k++) {
      const p = parts[k]!;
      assert.ok(p.firstLba > parts[k - 1]!.lastLba && p.lastLba >= p.firstLba && p.lastLba <= lastUsable, `drive ${i} partition ${k + 1}`);
      assert.equal(p.firstLba % 2048, 0);
      // vmPvPartition names the same partition number
      const v = drives.indexOf(Number(p.name.slice('pv-vgi'.length)));
      assert.equal(vmPvPartition(drives, v, i), k + 1);
      seen.set(`${p.name}:${i}`, p.lastLba - p.firstLba + 1);
    }
    for (const [v, n] of drives.entries()) if (i >= n) assert.equal(vmPvPartition(drives, v, i), null);
  }
  assert.equal(seen.size, 1 + 3 + 5, 'one PV per drive of each VG');
  assert.equal(new Set(seen.values()).size, 1, 'equal PV sizes');
  assert.throws(() => vmDriveLayout([1, 2, 3, 4, 5, 6, 7, 8], 0, 8 * 1024 * 1024), /no room/);
});

test('report: TCG said, n per cell, ratios to sanlock, CPU split', () => {
  const idm: VmConfigResult = { ...emptyResult('idm x3', 3), rawTcmuCpu: 0.5 };
  idm.lvAcquireMs.push(900, 1100, 1000, 1200);
  idm.lvReleaseMs.push(500, 600, 700, 800);
  idm.rawExUs.push(20_000, 30_000);
  idm.rawUnUs.push(10_000, 12_000);
  idm.rawSeconds = 0.1;
  idm.rawCpu = { lvmlockd: 0.04, ilm: 0.04, drives: 0.08 };
  const san: VmConfigResult = { ...emptyResult('sanlock', 0), rawTcmuCpu: 0 };
  san.lvAcquireMs.push(2000, 2000, 2000, 2000);
  san.lvReleaseMs.push(1000, 1000, 1000, 1000);
  san.rawExUs.push(10_000, 10_000);
  san.rawUnUs.push(5000, 5000);
  san.rawSeconds = 0.05;
  san.rawCpu = { lvmlockd: 0.02, ilm: 0, drives: 0 };
  const text = formatIdmVmReport([idm, san], {
    date: '2026-12-03T00:00:00Z', commit: 'abc1234', accel: 'tcg', accelReason: 'forced', guestKernel: '6.1.0', load0: '1 1 1', load1: '2 2 2',
    seconds: 600, bootSeconds: 60, setupSeconds: 120, cpus: 2, node: 'v20', lvReps: 1, rawRounds: 1, rawSeconds: 2, warmupSeconds: 1,
    io: 2, maxDrives: 3, notes: ['FAULT INJECTED (test)'],
  });
  assert.match(text, /accelerator TCG \(forced\)/);
  assert.match(text, /^TCG: every guest instruction is emulated/m);
  assert.match(text, /load average \(1\/5\/15 min\) 1 1 1 at start, 2 2 2 at end/);
  assert.match(text, /^idm x3 .*\(4\).*\(4\).*\(2\).*\(2\)/m);
  assert.match(text, /^sanlock .*\(4\)/m);
  assert.match(text, /idm x3 +lvchange -aey 0\.50x, lvchange -an 0\.60x, lock_lv ex 2\.00x/);
  // 4 round trips: lvmlockd 10 ms, ILM 10 ms, TCMU 125 ms, drives 20 ms each
  assert.match(text, /idm x3 +10\.0 ms \/ 10\.0 ms \/ 125 ms \/ 20\.0 ms, together 165 ms of 25\.0 ms/);
  assert.match(text, /sanlock +5\.00 ms \/ - \/ - \/ -, together 5\.00 ms/);
  assert.match(text, /^note: FAULT INJECTED \(test\)$/m);
  assert.match(text, /The sanlock VG is on its own virtio disk/);
  assert.match(text, /our lvmlockd -f -g idm -o 2 /);
  const kvm = formatIdmVmReport([idm], {
    date: 'd', commit: 'c', accel: 'kvm', accelReason: 'probe', guestKernel: 'k', load0: '', load1: '', seconds: 1, bootSeconds: 1,
    setupSeconds: 1, cpus: 2, node: 'v', lvReps: 1, rawRounds: 1, rawSeconds: 1, warmupSeconds: 0, io: 2, maxDrives: 3, notes: [],
  });
  assert.doesNotMatch(kvm, /^TCG:/m);
  assert.match(kvm, /no sanlock VG in this run/);
  assert.doesNotMatch(kvm, /The sanlock VG is on/);
});
