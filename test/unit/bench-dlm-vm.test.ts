// The dlm VM bench's knobs (bench/dlm-vm-options.ts) and report (bench/dlm-vm.ts):
// a bad value is refused with a message naming the knob, before anything boots,
// never with an uncaught throw; the report's verdicts follow the figures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import {
  DLM_VM_DEFAULTS, DlmBenchUsageError, parseDlmVmArgs, validateDlmVmOptions,
} from '../../bench/dlm-vm-options';
import { formatDlmVmReport, quantile, runDlmVmBench, type DlmVmReportInput } from '../../bench/dlm-vm';

const CLI = path.resolve(__dirname, '..', '..', 'bench', 'dlm-vm.js');

test('no arguments: the defaults', () => {
  assert.deepEqual(parseDlmVmArgs([]), DLM_VM_DEFAULTS);
});

test('every knob parsed, separate and --flag=value forms', () => {
  const o = parseDlmVmArgs(['--rounds', '3', '--seconds', '2.5', '--warmup=0', '--handovers', '10', '--lvchange-reps=4', '--keep', '--quiet']);
  assert.deepEqual(o, { rounds: 3, seconds: 2.5, warmupSeconds: 0, handovers: 10, lvchangeReps: 4, keep: true, verbose: false });
});

const BAD: Array<[string[], RegExp]> = [
  [['--rounds', 'abc'], /--rounds must be an integer >= 1 and <= 20, got "abc"/],
  [['--rounds', '0'], /--rounds must be an integer >= 1/],
  [['--rounds', '-2'], /--rounds must be/],
  [['--rounds', '1.5'], /--rounds must be an integer/],
  [['--rounds', '21'], /<= 20/],
  [['--rounds', ''], /--rounds must be .*got ""/],
  [['--rounds', ' 2'], /--rounds must be/],
  [['--rounds', '0x10'], /--rounds must be/],
  [['--rounds'], /--rounds needs a value/],
  [['--rounds', '--keep'], /--rounds needs a value/],
  [['--seconds', '0'], /--seconds must be a number > 0 and <= 600, got "0"/],
  [['--seconds', 'NaN'], /--seconds must be/],
  [['--seconds', 'Infinity'], /--seconds must be/],
  [['--seconds', '1e9'], /<= 600/],
  [['--warmup', '-1'], /--warmup must be a number >= 0/],
  [['--handovers', '2.5'], /--handovers must be an integer/],
  [['--handovers=0'], /--handovers must be an integer >= 1/],
  [['--lvchange-reps', 'x'], /--lvchange-reps must be/],
  [['--budget', '3'], /unknown argument "--budget"/],
  [['5'], /unknown argument "5"/],
];

for (const [argv, re] of BAD) {
  test(`refused with a clear message: ${JSON.stringify(argv)}`, () => {
    assert.throws(() => parseDlmVmArgs(argv), (e: unknown) => e instanceof DlmBenchUsageError && re.test(e.message));
  });
}

test('validateDlmVmOptions refuses values of the wrong type or range from callers', () => {
  assert.throws(() => validateDlmVmOptions({ rounds: NaN }), DlmBenchUsageError);
  assert.throws(() => validateDlmVmOptions({ seconds: -1 }), /--seconds must be a number > 0/);
  assert.throws(() => validateDlmVmOptions({ rounds: '2' as unknown as number }), /--rounds must be an integer.*got "2"/);
  assert.throws(() => validateDlmVmOptions({ keep: 1 as unknown as boolean }), /keep must be true or false/);
  assert.throws(() => validateDlmVmOptions({ nope: 1 } as never), /unknown option "nope"/);
  assert.deepEqual(validateDlmVmOptions({ rounds: undefined }), DLM_VM_DEFAULTS);
});

test('runDlmVmBench refuses a bad knob before it boots anything', async () => {
  const t0 = Date.now();
  await assert.rejects(runDlmVmBench({ rounds: 0 }), (e: unknown) => e instanceof DlmBenchUsageError && /--rounds/.test(e.message));
  assert.ok(Date.now() - t0 < 2000, 'refused at once');
});

test('the CLI answers a bad knob with exit 2, the message and the usage, no stack trace', () => {
  for (const argv of [['--rounds', 'abc'], ['--seconds', '-3'], ['--frobnicate']]) {
    const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, `${argv.join(' ')}: status ${r.status}, stderr ${r.stderr}`);
    assert.match(r.stderr, /^dlm-vm bench: /);
    assert.match(r.stderr, /usage: node dist\/bench\/dlm-vm\.js/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack frames');
    assert.equal(r.stdout, '');
  }
});

test('quantile is nearest rank', () => {
  assert.equal(quantile([5, 1, 3, 2, 4], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

function loop(exUs: number[], unUs: number[], seconds: number, results: Array<[number, number]> = [[0, exUs.length]]) {
  return { exUs, unUs, seconds, exResults: results, daemonCpuSeconds: 0.5, clientCpuSeconds: 0.5 };
}

function input(oursScale: number): DlmVmReportInput {
  const side = (k: number) => [{
    round: 1,
    local: loop([100 * k, 100 * k, 100 * k], [50 * k, 50 * k, 50 * k], k),
    refused: loop([200 * k, 200 * k], [], k, [[-11, 2]]),
    handA: { exUs: [300 * k], unUs: [60 * k], refusals: 0, seconds: 1 },
    handB: { exUs: [300 * k], unUs: [60 * k], refusals: 0, seconds: 1 },
    aeyMs: [100 * k, 100 * k],
    anMs: [80 * k, 80 * k],
    exe: 'x',
  }];
  return {
    results: { ours: side(oursScale), c: side(1) }, o: DLM_VM_DEFAULTS, accel: 'tcg', accelReason: 'test', guestKernel: 'k',
    cVersion: 'C', commit: 'abc', load0: [0, 0, 0], load1: [0, 0, 0], bootS: 1, stackS: 1, totalS: 2, notes: [],
  };
}

test('report: ours slower than C is MISSED on every target, faster is met', () => {
  const slow = formatDlmVmReport(input(2));
  assert.match(slow, /local lock_lv ex \(no other holder\)\s+3\/3\s+200 us\s+200 us\s+100 us\s+100 us\s+2\.00x\s+MISSED/);
  assert.match(slow, /lvchange -aey .* 2\.00x\s+MISSED/);
  assert.match(slow, /local ex\+un round trips\/s 0\.50x \(>= 1\.0x\) MISSED/);
  assert.doesNotMatch(slow.split('targets:')[1]!, / met\b/);
  const fast = formatDlmVmReport(input(0.5));
  assert.doesNotMatch(fast.split('targets:')[1]!, /MISSED/);
  assert.match(fast, /refused answers: ours op_result -11 x2; C op_result -11 x2/);
});

test('report without figures says n/a, not met', () => {
  const x = input(1);
  x.results = { ours: [], c: [] };
  const text = formatDlmVmReport(x);
  assert.doesNotMatch(text, /\bmet\b/);
  assert.match(text, /n\/a/);
});
