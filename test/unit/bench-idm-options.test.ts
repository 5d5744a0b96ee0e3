/** The IDM bench's knobs: bad values are refused with a sentence naming the knob (exit 2), before anything starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { IDM_DEFAULTS, IdmBenchUsageError, parseIdmArgs } from '../../bench/idm-options';

test('no arguments give the defaults; every knob is read', () => {
  assert.deepEqual(parseIdmArgs([]), IDM_DEFAULTS);
  const o = parseIdmArgs(['--drives', '2,4', '--lv-reps=3', '--raw-rounds', '5', '--raw-seconds', '0.5', '--io', '2',
    '--kill-drive', '4:1:2.5', '--no-sanlock', '--keep', '--quiet']);
  assert.deepEqual(o, {
    drives: [2, 4], lvReps: 3, rawRounds: 5, rawSeconds: 0.5, io: 2,
    killDrive: { drives: 4, index: 1, afterSeconds: 2.5 }, sanlock: false, keep: true, verbose: false,
  });
});

test('each bad value is refused with the knob named', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--drives', 'x'], /--drives .*"x" is not an integer/],
    [['--drives', '1,,3'], /--drives .*an empty item/],
    [['--drives', '3,3'], /--drives .*3 twice/],
    [['--drives', '0'], /--drives .*0 is out of range/],
    [['--drives', '17'], /--drives .*17 is out of range/],
    [['--drives'], /--drives needs a value/],
    [['--lv-reps', '0'], /--lv-reps must be an integer >= 1/],
    [['--lv-reps', '2.5'], /--lv-reps/],
    [['--raw-rounds', ''], /--raw-rounds .*got ""/],
    [['--raw-seconds', '0'], /--raw-seconds must be a number > 0/],
    [['--raw-seconds', 'NaN'], /--raw-seconds/],
    [['--io', ' 5'], /--io .*got " 5"/],
    [['--io', '--keep'], /--io needs a value/],
    [['--kill-drive', '3:5:1'], /drive index 5 is not below 3/],
    [['--kill-drive', 'x'], /--kill-drive wants N:I:S/],
    [['--kill-drive', '2:0:1', '--drives', '1,3'], /no VG of 2 drives in this run/],
    [['--verbose'], /unknown argument "--verbose"/],
    [['5'], /unknown argument "5"/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseIdmArgs(argv), (e: unknown) => e instanceof IdmBenchUsageError && re.test(e.message), argv.join(' '));
  }
});

test('the bench command exits 2 with the sentence and the usage, no stack trace', () => {
  const bin = path.resolve(__dirname, '..', '..', 'bench', 'idm.js');
  const r = spawnSync(process.execPath, [bin, '--drives', 'x'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^idm bench: --drives wants/);
  assert.match(r.stderr, /usage: node dist\/bench\/idm\.js/);
  assert.doesNotMatch(r.stderr, /\bat \S+ \(/);
  assert.equal(r.stdout, '');
});
