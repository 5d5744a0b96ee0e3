import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Getopt, getoptLong, cAtoi, type LongOption, type GetoptEvent, type GetoptConfig } from '../../src/util/getopt';

// lvmlockctl's table (HEAD: the last three have no short form, C uses codes >= 128).
const LONGS: LongOption[] = [
  { name: 'help', hasArg: 'none', val: 'h' },
  { name: 'quit', hasArg: 'none', val: 'q' },
  { name: 'info', hasArg: 'none', val: 'i' },
  { name: 'dump', hasArg: 'none', val: 'd' },
  { name: 'wait', hasArg: 'required', val: 'w' },
  { name: 'force', hasArg: 'required', val: 'f' },
  { name: 'kill', hasArg: 'required', val: 'k' },
  { name: 'drop', hasArg: 'required', val: 'r' },
  { name: 'gl-enable', hasArg: 'required', val: 'E' },
  { name: 'gl-disable', hasArg: 'required', val: 'D' },
  { name: 'stop-lockspaces', hasArg: 'none', val: 'S' },
  { name: 'stderr', hasArg: 'none', val: 'e' },
];
const CFG = { shortopts: 'hqidE:D:w:k:r:Se', longopts: LONGS, progName: 'lvmlockctl', posixlyCorrect: false };

function run(args: string[], cfg: GetoptConfig = CFG) {
  return getoptLong(args, cfg);
}
function firstError(args: string[], cfg: GetoptConfig = CFG): Extract<GetoptEvent, { kind: 'error' }> | undefined {
  return run(args, cfg).events.find((e): e is Extract<GetoptEvent, { kind: 'error' }> => e.kind === 'error');
}

test('clustered short flags and attached/separate arguments', () => {
  const r = run(['-iq', '-wx', '-E', 'vg1', '-Sv']);
  assert.deepEqual(r.events, [
    { kind: 'option', opt: 'i' },
    { kind: 'option', opt: 'q' },
    { kind: 'option', opt: 'w', arg: 'x' },
    { kind: 'option', opt: 'E', arg: 'vg1' },
    { kind: 'option', opt: 'S' },
    { kind: 'error', code: 'unknown-short', optopt: 'v', ret: '?', message: "lvmlockctl: invalid option -- 'v'\n" },
  ]);
});

test('long options: exact, abbreviation, =value, separate value', () => {
  const r = run(['--inf', '--gl-enable=vgA', '--kill', 'vgB', '--stop']);
  assert.deepEqual(r.events, [
    { kind: 'option', opt: 'i', name: 'info', longIndex: 2 },
    { kind: 'option', opt: 'E', name: 'gl-enable', longIndex: 8, arg: 'vgA' },
    { kind: 'option', opt: 'k', name: 'kill', longIndex: 6, arg: 'vgB' },
    { kind: 'option', opt: 'S', name: 'stop-lockspaces', longIndex: 10 },
  ]);
});

test('a required argument may start with a dash (as glibc)', () => {
  assert.deepEqual(run(['-E', '-i']).events, [{ kind: 'option', opt: 'E', arg: '-i' }]);
  assert.deepEqual(run(['--drop', '--']).events, [{ kind: 'option', opt: 'r', name: 'drop', longIndex: 7, arg: '--' }]);
});

test('glibc diagnostics, byte for byte as observed from the C lvmlockctl', () => {
  const cases: Array<[string[], string]> = [
    [['--s'], "lvmlockctl: option '--s' is ambiguous; possibilities: '--stop-lockspaces' '--stderr'\n"],
    [['--st'], "lvmlockctl: option '--st' is ambiguous; possibilities: '--stop-lockspaces' '--stderr'\n"],
    [['--gl'], "lvmlockctl: option '--gl' is ambiguous; possibilities: '--gl-enable' '--gl-disable'\n"],
    [['-x'], "lvmlockctl: invalid option -- 'x'\n"],
    [['--info=3'], "lvmlockctl: option '--info' doesn't allow an argument\n"],
    [['-E'], "lvmlockctl: option requires an argument -- 'E'\n"],
    [['--kill'], "lvmlockctl: option '--kill' requires an argument\n"],
    [['--force'], "lvmlockctl: option '--force' requires an argument\n"],
    [['--foo=bar'], "lvmlockctl: unrecognized option '--foo=bar'\n"],
    [['--version'], "lvmlockctl: unrecognized option '--version'\n"],
    [['-f', '1'], "lvmlockctl: invalid option -- 'f'\n"],
  ];
  for (const [args, msg] of cases) {
    assert.equal(firstError(args)?.message, msg, args.join(' '));
  }
});

test('--force 1 is accepted by getopt (C then rejects the value f silently)', () => {
  assert.deepEqual(run(['--force', '1']).events, [{ kind: 'option', opt: 'f', name: 'force', longIndex: 5, arg: '1' }]);
});

test('error codes and optopt', () => {
  assert.deepEqual(firstError(['--s']), { kind: 'error', code: 'ambiguous', optopt: 0, ret: '?', message: firstError(['--s'])!.message });
  assert.equal(firstError(['--info=1'])!.optopt, 'i');
  assert.equal(firstError(['--info=1'])!.code, 'unexpected-arg');
  assert.equal(firstError(['--kill'])!.optopt, 'k');
  assert.equal(firstError(['--nope'])!.optopt, 0);
  assert.equal(firstError(['-E'])!.code, 'missing-arg');
});

test('permutation: operands are collected and options after them still parsed', () => {
  const r = run(['vg1', '-i', 'x', '-E', 'vg2', 'y', '--', '-q', 'z']);
  assert.deepEqual(r.events, [{ kind: 'option', opt: 'i' }, { kind: 'option', opt: 'E', arg: 'vg2' }]);
  assert.deepEqual(r.operands, ['vg1', 'x', 'y', '-q', 'z']);
});

test('"-" alone is an operand', () => {
  const r = run(['-', '-i']);
  assert.deepEqual(r.operands, ['-']);
  assert.deepEqual(r.events, [{ kind: 'option', opt: 'i' }]);
});

test("REQUIRE_ORDER with '+' or POSIXLY_CORRECT", () => {
  const r1 = run(['a', '-i'], { ...CFG, shortopts: '+' + CFG.shortopts });
  assert.deepEqual(r1.events, []);
  assert.deepEqual(r1.operands, ['a', '-i']);
  const r2 = run(['-q', 'a', '-i'], { ...CFG, posixlyCorrect: true });
  assert.deepEqual(r2.events, [{ kind: 'option', opt: 'q' }]);
  assert.deepEqual(r2.operands, ['a', '-i']);
});

test("RETURN_IN_ORDER with '-'", () => {
  const r = run(['a', '-i', 'b'], { ...CFG, shortopts: '-' + CFG.shortopts });
  assert.deepEqual(r.events, [{ kind: 'operand', arg: 'a' }, { kind: 'option', opt: 'i' }, { kind: 'operand', arg: 'b' }]);
});

test("leading ':' returns ':' for a missing argument and prints nothing", () => {
  const e1 = firstError(['-E'], { ...CFG, shortopts: ':' + CFG.shortopts })!;
  assert.equal(e1.ret, ':');
  assert.equal(e1.message, '');
  const e2 = firstError(['--kill'], { ...CFG, shortopts: ':' + CFG.shortopts })!;
  assert.equal(e2.ret, ':');
  const e3 = firstError(['-x'], { ...CFG, shortopts: ':' + CFG.shortopts })!;
  assert.equal(e3.ret, '?');
  assert.equal(e3.message, '');
});

test('optional arguments', () => {
  const longs: LongOption[] = [{ name: 'opt', hasArg: 'optional', val: 'o' }];
  const r = run(['-o', 'x', '-ofoo', '--opt', '--opt=bar'], { shortopts: 'o::', longopts: longs, progName: 'p', posixlyCorrect: false });
  assert.deepEqual(r.events, [
    { kind: 'option', opt: 'o' },
    { kind: 'option', opt: 'o', arg: 'foo' },
    { kind: 'option', opt: 'o', name: 'opt', longIndex: 0 },
    { kind: 'option', opt: 'o', name: 'opt', longIndex: 0, arg: 'bar' },
  ]);
  assert.deepEqual(r.operands, ['x']);
});

test('numeric long option codes (HEAD --set-remote-lv-lock) and their ambiguity', () => {
  const longs = [...LONGS,
    { name: 'set-remote-lv-lock', hasArg: 'required' as const, val: 128 },
    { name: 'lv-uuid', hasArg: 'required' as const, val: 129 },
    { name: 'lock-mode', hasArg: 'required' as const, val: 130 }];
  const cfg = { ...CFG, longopts: longs };
  const r = run(['--set-remote-lv-lock', 'vg', '--lv-uuid=U', '--lock', 'ex'], cfg);
  assert.deepEqual(r.events.map((e) => e.kind === 'option' ? [e.opt, e.arg] : e.kind), [[128, 'vg'], [129, 'U'], [130, 'ex']]);
  assert.equal(firstError(['--s'], cfg)!.message,
    "lvmlockctl: option '--s' is ambiguous; possibilities: '--stop-lockspaces' '--stderr' '--set-remote-lv-lock'\n");
  assert.equal(firstError(['--l'], cfg)!.message,
    "lvmlockctl: option '--l' is ambiguous; possibilities: '--lv-uuid' '--lock-mode'\n");
});

test('exact match beats longer prefixes; same-val prefixes are not ambiguous', () => {
  const longs: LongOption[] = [
    { name: 'ab', hasArg: 'none', val: 'a' },
    { name: 'abc', hasArg: 'none', val: 'b' },
    { name: 'xa', hasArg: 'none', val: 'x' },
    { name: 'xb', hasArg: 'none', val: 'x' },
  ];
  const cfg = { shortopts: '', longopts: longs, progName: 'p', posixlyCorrect: false };
  assert.deepEqual(run(['--ab'], cfg).events, [{ kind: 'option', opt: 'a', name: 'ab', longIndex: 0 }]);
  assert.deepEqual(run(['--x'], cfg).events, [{ kind: 'option', opt: 'x', name: 'xa', longIndex: 2 }]);
});

test('lvmlockd-style: an option not in the short string is an error value, not an exception', () => {
  const r = run(['-i', '1'], { shortopts: 'hVd:p:s:fD', progName: 'lvmlockd', posixlyCorrect: false });
  assert.equal(r.events[0]!.kind, 'error');
  assert.equal((r.events[0] as { message: string }).message, "lvmlockd: invalid option -- 'i'\n");
  assert.deepEqual(r.operands, ['1']);
});

test('getopt_long_only', () => {
  const cfg = { ...CFG, longOnly: true };
  assert.deepEqual(run(['-info'], cfg).events, [{ kind: 'option', opt: 'i', name: 'info', longIndex: 2 }]);
  // "-iq": not a long option, 'i' is a valid short option -> short processing
  assert.deepEqual(run(['-iq'], cfg).events, [{ kind: 'option', opt: 'i' }, { kind: 'option', opt: 'q' }]);
  assert.equal(firstError(['-zz'], cfg)!.message, "lvmlockctl: unrecognized option '-zz'\n");
});

test('iterator API: optind and stopping early', () => {
  const g = new Getopt(['-i', 'a', '-x', '-q'], CFG);
  assert.deepEqual(g.next(), { kind: 'option', opt: 'i' });
  const e = g.next();
  assert.equal(e.kind, 'error');
  assert.equal(g.optind, 3);
  assert.deepEqual(g.next(), { kind: 'option', opt: 'q' });
  assert.deepEqual(g.next(), { kind: 'end' });
  assert.deepEqual(g.next(), { kind: 'end' });
  assert.deepEqual(g.operands, ['a']);
});

test('cAtoi', () => {
  assert.equal(cAtoi('1'), 1);
  assert.equal(cAtoi('  -7x'), -7);
  assert.equal(cAtoi('abc'), 0);
  assert.equal(cAtoi(''), 0);
  assert.equal(cAtoi('+3'), 3);
  assert.equal(cAtoi('4294967296'), 0);
  assert.equal(cAtoi('99999999999999999999999'), -1);
});
