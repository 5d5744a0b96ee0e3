/** The sanlock bench's knobs: bad values are refused with a sentence naming the knob, before anything starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { SANLOCK_DEFAULTS, SanlockBenchUsage, parseSanlockArgs, runSanlockBench, sanlockOptionsProblem } from '../../bench/sanlock';

test('the defaults are accepted', () => {
  assert.equal(sanlockOptionsProblem(SANLOCK_DEFAULTS), null);
});

test('each bad knob value is named', () => {
  const cases: Array<[Partial<typeof SANLOCK_DEFAULTS>, RegExp]> = [
    [{ starts: -1 }, /--starts must be a whole number >= 0, not -1/],
    [{ lvReps: 2.5 }, /--lv-reps/],
    [{ rawReps: NaN }, /--raw-reps .* not NaN/],
    [{ io: 0 }, /--io must be a number of seconds > 0/],
    [{ io: 1.5 }, /--io must be a whole number/],
    [{ localSeconds: NaN }, /--local-seconds/],
    [{ budgetSeconds: -5 }, /--budget/],
    [{ localClients: [] }, /--local-clients/],
    [{ localClients: [1, 0] }, /--local-clients .* not 1,0/],
    [{ localClients: [1, 65] }, /from 1 to 64/],
    [{ localClients: [NaN] }, /--local-clients/],
  ];
  for (const [bad, re] of cases) assert.match(sanlockOptionsProblem({ ...SANLOCK_DEFAULTS, ...bad }) ?? 'accepted', re, JSON.stringify(bad));
});

test('runSanlockBench refuses bad knobs before starting a cluster', async () => {
  await assert.rejects(runSanlockBench({ localClients: [0], verbose: false }), (e: unknown) => e instanceof SanlockBenchUsage && /--local-clients/.test(e.message));
});

test('the command line: each knob read, --help, unknown flags and missing values refused', () => {
  assert.deepEqual(parseSanlockArgs([]), {});
  assert.deepEqual(parseSanlockArgs(['--io', '2', '--starts=3', '--lv-reps', '4', '--raw-reps', '5', '--local-seconds', '1.5',
    '--local-clients', '1,8,64', '--budget', '60', '--keep', '--quiet']),
  { io: 2, starts: 3, lvReps: 4, rawReps: 5, localSeconds: 1.5, localClients: [1, 8, 64], budgetSeconds: 60, keep: true, verbose: false });
  assert.equal(parseSanlockArgs(['--help']), 'help');
  assert.equal(parseSanlockArgs(['--io', '2', '-h']), 'help');
  const cases: Array<[string[], RegExp]> = [
    [['--local-client', '8'], /unknown argument "--local-client"/],
    [['8'], /unknown argument "8"/],
    [['--io'], /--io needs a value/],
    [['--io', '--keep'], /--io needs a value/],
    [['--io', ''], /--io must be a number of seconds > 0, not NaN/],
    [['--starts', ' 5'], /--starts must be a whole number/],
    [['--local-clients', '1,x'], /--local-clients .* not 1,NaN/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseSanlockArgs(argv), (e: unknown) => e instanceof SanlockBenchUsage && re.test(e.message), argv.join(' '));
  }
});

test('the bench command: --help prints the usage (exit 0), an unknown flag exits 2, nothing started', () => {
  const bin = path.resolve(__dirname, '..', '..', 'bench', 'sanlock.js');
  const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: node dist\/bench\/sanlock\.js/);
  const bad = spawnSync(process.execPath, [bin, '--frobnicate'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /^sanlock bench: unknown argument "--frobnicate"\n/);
  assert.doesNotMatch(bad.stderr, /\bat \S+ \(/);
  assert.equal(bad.stdout, '');
});
