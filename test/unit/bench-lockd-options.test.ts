/**
 * The lock_lv bench's command line: --help prints the usage, an unknown flag or
 * bad value is one sentence and exit 2, before any daemon starts; and the
 * tracer summaries of --syscalls are read back into counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { LockdBenchUsage, parseLockdArgs } from '../../bench/lockd-options';
import { parseSyscallSummary } from '../../bench/syscall-summary';

test('no arguments run the main bench with its defaults; each mode reads its knobs', () => {
  assert.deepEqual(parseLockdArgs([]), { mode: 'bench' });
  assert.deepEqual(parseLockdArgs(['--seconds', '5', '--rounds=5', '--max-ops', '1000', '--only', 'c']),
    { mode: 'bench', seconds: 5, rounds: 5, maxOps: 1000, only: 'c' });
  assert.deepEqual(parseLockdArgs(['--profile']), { mode: 'profile', clients: 64, seconds: 5, profileOut: null });
  assert.deepEqual(parseLockdArgs(['--profile', '--clients', '8', '--profile-out', 'x.cpuprofile']),
    { mode: 'profile', clients: 8, seconds: 5, profileOut: 'x.cpuprofile' });
  assert.deepEqual(parseLockdArgs(['--core-only', '--seconds', '0.5']), { mode: 'core-only', clients: 8, seconds: 0.5 });
  assert.deepEqual(parseLockdArgs(['--instructions']), { mode: 'instructions', clients: [1, 8, 64], ops: 3000, keepDumps: null, only: 'both' });
  assert.deepEqual(parseLockdArgs(['--instructions', '--clients', '1,8', '--ops', '500', '--only', 'ours', '--keep-dumps', 'd']),
    { mode: 'instructions', clients: [1, 8], ops: 500, keepDumps: 'd', only: 'ours' });
  assert.deepEqual(parseLockdArgs(['--syscalls']), { mode: 'syscalls', clients: [1, 8, 64], ops: 20000, tracer: 'perf', only: 'both' });
  assert.deepEqual(parseLockdArgs(['--syscalls', '--tracer', 'strace', '--clients=64']),
    { mode: 'syscalls', clients: [64], ops: 20000, tracer: 'strace', only: 'both' });
  assert.deepEqual(parseLockdArgs(['--help']), { mode: 'help' });
  assert.deepEqual(parseLockdArgs(['--seconds', '3', '-h']), { mode: 'help' });
});

test('each unknown flag, bad value or misplaced knob is refused with a sentence naming it', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--verbose'], /unknown argument "--verbose"/],
    [['5'], /unknown argument "5"/],
    [['--seconds'], /--seconds needs a value/],
    [['--seconds', '--rounds', '2'], /--seconds needs a value/],
    [['--seconds', '0'], /--seconds must be a number > 0/],
    [['--seconds', 'x'], /--seconds .*got "x"/],
    [['--rounds', '2.5'], /--rounds must be an integer >= 1/],
    [['--max-ops', ''], /--max-ops .*got ""/],
    [['--only', 'C'], /--only must be ours or c, got "C"/],
    [['--rounds', '2', '--rounds', '3'], /--rounds given twice/],
    [['--instructions', '--rounds', '2'], /--rounds does not apply to --instructions/],
    [['--clients', '8'], /--clients does not apply to the main bench/],
    [['--profile', '--core-only'], /--profile and --core-only cannot be combined/],
    [['--core-only', '--clients', '1,8'], /--clients takes one number with --core-only/],
    [['--instructions', '--clients', '1,,8'], /--clients wants comma-separated/],
    [['--instructions', '--clients', '0'], /--clients wants .*got "0"/],
    [['--syscalls', '--tracer', 'ltrace'], /--tracer must be perf or strace, got "ltrace"/],
    [['--syscalls', '--ops', '-1'], /--ops must be an integer >= 1/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseLockdArgs(argv), (e: unknown) => e instanceof LockdBenchUsage && re.test(e.message), argv.join(' '));
  }
});

const BIN = path.resolve(__dirname, '..', '..', 'bench', 'lockd.js');

test('--help prints the usage and exits 0 without starting anything', () => {
  const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: node dist\/bench\/lockd\.js/);
  assert.match(r.stdout, /--syscalls/);
  assert.equal(r.stderr, '');
});

test('an unknown flag exits 2 with the sentence and the usage, no stack trace', () => {
  const r = spawnSync(process.execPath, [BIN, '--frobnicate'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^lockd bench: unknown argument "--frobnicate"\n/);
  assert.match(r.stderr, /usage: node dist\/bench\/lockd\.js/);
  assert.doesNotMatch(r.stderr, /\bat \S+ \(/);
  assert.equal(r.stdout, '');
});

const PERF_SUMMARY = `
 Summary of events:

 lvmlockd (4242), 6816 events, 88.1%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   epoll_pwait         1373      0   812.771     0.000     0.592    14.212      4.10%
   write               1001      0    60.120     0.020     0.060     0.901      1.95%
   read                1001      0    19.822     0.010     0.020     0.118      0.78%
   futex                 10      2     0.310     0.005     0.031     0.120     30.10%

 node (4243), 30 events, 0.4%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   futex                 12      0     9.001     0.003     0.750     4.100     50.00%
   munmap                 2      0     0.040     0.020     0.020     0.020      0.00%

 node (4244), 8 events, 0.1%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   futex                  4      0     1.000     0.003     0.250     0.900     50.00%
`;

const STRACE_SUMMARY = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 55.31    0.002743         548     19702      9851 futex
  8.17    0.000405          11      6000           read
  6.43    0.000319           8      6000           write
  3.27    0.000162           4      4000           poll
------ ----------- ----------- --------- --------- ----------------
100.00    0.004959          16     35702      9851 total
`;

test('perf trace -s: one table per thread, threads of one name summed', () => {
  const c = parseSyscallSummary(PERF_SUMMARY);
  assert.deepEqual([...c.byThread.keys()], ['lvmlockd', 'node']);
  assert.deepEqual([...c.byThread.get('lvmlockd')!], [['epoll_pwait', 1373], ['write', 1001], ['read', 1001], ['futex', 10]]);
  assert.deepEqual([...c.byThread.get('node')!], [['futex', 16], ['munmap', 2]]);
});

test('strace -c -f: one table, errors column optional, the total row left out', () => {
  const c = parseSyscallSummary(STRACE_SUMMARY);
  assert.deepEqual([...c.byThread.keys()], ['*']);
  assert.deepEqual([...c.byThread.get('*')!], [['futex', 19702], ['read', 6000], ['write', 6000], ['poll', 4000]]);
});

test('text without a summary gives no threads', () => {
  assert.equal(parseSyscallSummary('strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n').byThread.size, 0);
});
