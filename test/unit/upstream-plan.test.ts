// test:upstream's pure parts: the command line, test selection and
// sharding with resume, the runner's verdicts, RESULT lines, and finding the
// Debian mirror in the host's apt sources.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  CI_FLAVOURS, CI_SUBSET, DEFAULT_FLAVOURS, daemonsFor, shardByFlavour, FLAVOURS, matchesOnly, parseArgs, parseResultLine, parseStopAt, parseRunnerList, planItems, resultLine, shard, verdictOf,
} from '../upstream/plan';
import { lvm2VersionFromManifest, parseAptSources } from '../upstream/source';

const TESTS = ['aa-lvmlockd-sanlock-prepare.sh', 'lvchange-partial.sh', 'lvmlockd-hello-world.sh', 'lvmlockd-lv-types.sh',
  'vgchange-usage.sh', 'zz-lvmlockd-sanlock-remove.sh'];

test('parseArgs: defaults are the runnable flavours, both daemons, one VM, from 0', () => {
  const p = parseArgs([]);
  assert.ok(p.ok);
  assert.deepEqual(p.options.flavours, DEFAULT_FLAVOURS);
  assert.deepEqual(DEFAULT_FLAVOURS, ['udev-lvmlockd-test', 'udev-lvmlockd-test-sanlock', 'udev-lvmlockd-sanlock', 'udev-lvmlockd-dlm', 'udev-lvmlockd-idm']);
  assert.deepEqual(p.options.daemons, ['c', 'ours']);
  assert.equal(p.options.jobs, 1);
  assert.equal(p.options.from, 0);
  assert.equal(p.options.stopAtMs, null);
});

test('--stop-at: seconds since the epoch (date +%s) become ms; anything else is refused with the reason', () => {
  const p = parseArgs(['--ci', '--stop-at', '1796313600']);
  assert.ok(p.ok);
  assert.equal(p.options.stopAtMs, 1796313600_000);
  const eq = parseArgs(['--stop-at=1796313600']);
  assert.ok(eq.ok);
  assert.equal(eq.options.stopAtMs, 1796313600_000);
  assert.equal(parseStopAt('1796313600'), 1796313600_000);
  for (const bad of [null, undefined, '', '17963136000000', '2026-12-03T17:00', '-5', '1.5e9', '12']) {
    const r = parseStopAt(bad);
    assert.equal(typeof r, 'string', String(bad));
    assert.match(r as string, /--stop-at needs a time in seconds since the epoch/);
  }
  const missing = parseArgs(['--stop-at']);
  assert.ok(!missing.ok && 'error' in missing);
  assert.match(missing.error, /not nothing/);
});

test('parseArgs: every option, in both spellings', () => {
  const p = parseArgs(['--flavour', 'udev-lvmlockd-sanlock', '--only=lvmlockd*', '--daemon', 'ours', '--jobs=2', '--from', '7', '--keep']);
  assert.ok(p.ok);
  assert.deepEqual(p.options.flavours, ['udev-lvmlockd-sanlock']);
  assert.equal(p.options.only, 'lvmlockd*');
  assert.deepEqual(p.options.daemons, ['ours']);
  assert.equal(p.options.jobs, 2);
  assert.equal(p.options.from, 7);
  assert.equal(p.options.keep, true);
  const ci = parseArgs(['--only', 'ci']);
  assert.ok(ci.ok);
  assert.equal(ci.options.only, CI_SUBSET);
  assert.equal(ci.options.ci, false);
  const run = parseArgs(['--ci']);
  assert.ok(run.ok);
  assert.equal(run.options.ci, true);
  assert.equal(run.options.only, CI_SUBSET);
  assert.deepEqual(run.options.flavours, ['udev-lvmlockd-test', 'udev-lvmlockd-sanlock']);
});

test('parseArgs: bad input is an error value with a reason', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--flavour', 'udev-vanilla'], /unknown flavour udev-vanilla/],
    [['--flavour'], /needs a name/],
    [['--daemon', 'dlm'], /ours, c or both/],
    [['--jobs', '0'], /--jobs needs an integer >= 1/],
    [['--from', '-1'], /--from needs an integer >= 0/],
    [['--from', 'x'], /--from needs an integer/],
    [['--bogus'], /unknown argument --bogus/],
  ];
  for (const [argv, re] of cases) {
    const p = parseArgs(argv);
    assert.ok(!p.ok && 'error' in p, argv.join(' '));
    assert.match(p.error, re);
  }
  const h = parseArgs(['--help']);
  assert.ok(!h.ok && 'help' in h);
});

test('the idm flavour runs with ours only, on IDM drives, and says why not with C', () => {
  const f = FLAVOURS.find((x) => x.name === 'udev-lvmlockd-idm')!;
  assert.equal(f.notRun, null);
  assert.equal(f.idmDrives, true);
  assert.equal(f.prepare, 'aa-lvmlockd-idm-prepare.sh');
  assert.equal(f.remove, 'zz-lvmlockd-idm-remove.sh');
  assert.match(f.notRunWith?.c ?? '', /without IDM support/);
  assert.equal(f.notRunWith?.ours, undefined);
  assert.deepEqual(daemonsFor(f, ['c', 'ours']), ['ours']);
  assert.deepEqual(daemonsFor(f, ['c']), []);
  const dlm = FLAVOURS.find((x) => x.name === 'udev-lvmlockd-dlm')!;
  assert.deepEqual(daemonsFor(dlm, ['c', 'ours']), ['c', 'ours']);
  assert.equal(dlm.idmDrives, undefined);
  const p = parseArgs(['--flavour', 'udev-lvmlockd-idm', '--only', 'ci']);
  assert.ok(p.ok);
  assert.deepEqual(planItems([...TESTS, 'aa-lvmlockd-idm-prepare.sh', 'zz-lvmlockd-idm-remove.sh'], p.options).map((i) => i.test),
    planItems(TESTS, { ...p.options, flavours: ['udev-lvmlockd-dlm'] }).map((i) => i.test));
  assert.ok(planItems(TESTS, p.options).length > 0);
  assert.equal(resultLine(f.name, 'lvmlockd-hello-world.sh', { ours: 'pass' }), 'RESULT udev-lvmlockd-idm lvmlockd-hello-world.sh c=- ours=pass');
  assert.ok(!CI_FLAVOURS.includes(f.name), 'not in the CI subset (its time budget)');
});

test('the dlm flavour runs, with its prepare and remove scripts around its tests', () => {
  const f = FLAVOURS.find((x) => x.name === 'udev-lvmlockd-dlm')!;
  assert.equal(f.notRun, null);
  assert.equal(f.prepare, 'aa-lvmlockd-dlm-prepare.sh');
  assert.equal(f.remove, 'zz-lvmlockd-dlm-remove.sh');
  const p = parseArgs(['--flavour', 'udev-lvmlockd-dlm', '--only', 'lvmlockd*']);
  assert.ok(p.ok);
  assert.deepEqual(planItems([...TESTS, 'aa-lvmlockd-dlm-prepare.sh', 'zz-lvmlockd-dlm-remove.sh'], p.options).map((i) => i.test),
    ['lvmlockd-hello-world.sh', 'lvmlockd-lv-types.sh']);
});

test('--only: globs, names with or without .sh, comma lists', () => {
  assert.ok(matchesOnly('lvmlockd-hello-world.sh', 'lvmlockd*'));
  assert.ok(matchesOnly('lvmlockd-hello-world.sh', 'lvmlockd-hello-world'));
  assert.ok(!matchesOnly('lvmlockd-hello-world.sh', 'lvmlockd-hello'));
  assert.ok(matchesOnly('vgchange-usage.sh', 'x,vgchange-?sage.sh'));
  assert.ok(!matchesOnly('lvchange-partial.sh', 'vgchange-*'));
  assert.ok(!matchesOnly('vgchangeXusage.sh', 'vgchange.usage'));
  assert.ok(matchesOnly('anything.sh', null));
});

test('planItems: prepare/remove tests are not items; numbering runs over flavours in order', () => {
  const p = parseArgs(['--flavour', 'udev-lvmlockd-test,udev-lvmlockd-sanlock', '--only', 'ci']);
  assert.ok(p.ok);
  const items = planItems(TESTS, p.options);
  assert.deepEqual(items.map((i) => `${i.index} ${i.flavour.name} ${i.test}`), [
    '0 udev-lvmlockd-test lvchange-partial.sh',
    '1 udev-lvmlockd-test lvmlockd-hello-world.sh',
    '2 udev-lvmlockd-test lvmlockd-lv-types.sh',
    '3 udev-lvmlockd-test vgchange-usage.sh',
    '4 udev-lvmlockd-sanlock lvchange-partial.sh',
    '5 udev-lvmlockd-sanlock lvmlockd-hello-world.sh',
    '6 udev-lvmlockd-sanlock lvmlockd-lv-types.sh',
    '7 udev-lvmlockd-sanlock vgchange-usage.sh',
  ]);
});

test('shard: round robin over the VMs, resume skips the first N items', () => {
  const p = parseArgs(['--flavour', 'udev-lvmlockd-test,udev-lvmlockd-test-sanlock,udev-lvmlockd-sanlock']);
  assert.ok(p.ok);
  const items = planItems(TESTS, p.options); // 4 tests x 3 flavours
  assert.equal(items.length, 12);
  const s = shard(items, 2, 0);
  assert.deepEqual(s.map((x) => x.map((i) => i.index)), [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 11]]);
  const r = shard(items, 3, 10);
  assert.deepEqual(r.map((x) => x.map((i) => i.index)), [[10], [11]]);
  assert.deepEqual(shard(items, 2, 12), []);
});

test('shard by flavour: whole flavours per VM, the largest first to the emptiest VM; --ci shards so', () => {
  const p = parseArgs(['--flavour', 'udev-lvmlockd-test,udev-lvmlockd-test-sanlock,udev-lvmlockd-sanlock', '--only', 'lvmlockd*,vgchange-usage']);
  assert.ok(p.ok);
  const items = planItems(TESTS, p.options); // 3 tests x 3 flavours: 0-2, 3-5, 6-8
  assert.deepEqual(shardByFlavour(items, 2, 0).map((x) => x.map((i) => i.index)), [[0, 1, 2, 6, 7, 8], [3, 4, 5]]);
  assert.deepEqual(shardByFlavour(items, 3, 0).map((x) => x.map((i) => i.flavour.name)),
    [['udev-lvmlockd-test', 'udev-lvmlockd-test', 'udev-lvmlockd-test'], ['udev-lvmlockd-test-sanlock', 'udev-lvmlockd-test-sanlock', 'udev-lvmlockd-test-sanlock'],
      ['udev-lvmlockd-sanlock', 'udev-lvmlockd-sanlock', 'udev-lvmlockd-sanlock']]);
  // resume: the first flavour has one item left, so it goes to a VM last
  assert.deepEqual(shardByFlavour(items, 2, 2).map((x) => x.map((i) => i.index)), [[2, 3, 4, 5], [6, 7, 8]]);
  assert.deepEqual(shardByFlavour(items, 2, 9), []);
  const ci = parseArgs(['--ci']);
  assert.ok(ci.ok && ci.options.shardBy === 'flavour');
  const d = parseArgs([]);
  assert.ok(d.ok && d.options.shardBy === 'item');
  const s = parseArgs(['--shard-by=flavour']);
  assert.ok(s.ok && s.options.shardBy === 'flavour');
  const bad = parseArgs(['--shard-by', 'vm']);
  assert.ok(!bad.ok && 'error' in bad && /item or flavour/.test(bad.error));
});

test('verdicts from the runner: "warnings" (a pass with warnings) is a pass, anything unfinished is a fail', () => {
  assert.equal(verdictOf('passed'), 'pass');
  // the journal's word for WARNED, as lvm2-testsuite 2.03.16 writes it in the list file
  assert.equal(verdictOf('warnings'), 'pass');
  assert.equal(parseRunnerList('udev-lvmlockd-test:shell/cache-metadata2.sh warnings\n').get('udev-lvmlockd-test:cache-metadata2.sh'), 'warnings');
  assert.equal(verdictOf('skipped'), 'skip');
  for (const s of ['failed', 'timeout', 'interrupted', 'started', 'retried', 'unknown']) assert.equal(verdictOf(s), 'fail', s);
  assert.equal(verdictOf(undefined), '-');
  const list = parseRunnerList('udev-lvmlockd-test:shell/lvmlockd-hello-world.sh passed\nudev-lvmlockd-sanlock:shell/vgchange-usage.sh failed\nnoise\n');
  assert.equal(list.get('udev-lvmlockd-test:lvmlockd-hello-world.sh'), 'passed');
  assert.equal(list.get('udev-lvmlockd-sanlock:vgchange-usage.sh'), 'failed');
  assert.equal(list.size, 2);
});

test('RESULT lines round-trip; a daemon not run is -', () => {
  const l = resultLine('udev-lvmlockd-test', 'lvmlockd-hello-world.sh', { c: 'pass', ours: 'fail' });
  assert.equal(l, 'RESULT udev-lvmlockd-test lvmlockd-hello-world.sh c=pass ours=fail');
  assert.deepEqual(parseResultLine(l), { flavour: 'udev-lvmlockd-test', test: 'lvmlockd-hello-world.sh', c: 'pass', ours: 'fail' });
  assert.equal(resultLine('f', 't.sh', { ours: 'skip' }), 'RESULT f t.sh c=- ours=skip');
  assert.equal(parseResultLine('RESULT f t.sh c=maybe ours=pass'), null);
});

test('the mirror comes from the host sources (deb822 or one-line), for the release itself', () => {
  const deb822 = `Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`;
  assert.deepEqual(parseAptSources([{ name: 'x/debian.sources', text: deb822 }], 'bookworm'),
    { uri: 'http://mirror.example/debian', suite: 'bookworm', keyring: '/usr/share/keyrings/debian-archive-keyring.gpg' });
  const oneLine = '# comment\ndeb http://sec.example/debian-security bookworm-security main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n';
  assert.deepEqual(parseAptSources([{ name: '/etc/apt/sources.list', text: oneLine }], 'bookworm'),
    { uri: 'http://m.example/debian', suite: 'bookworm', keyring: '/k.gpg' });
  assert.equal(parseAptSources([{ name: 'a.list', text: 'deb-src http://m/debian bookworm main\n' }], 'bookworm'), null);
  assert.equal(lvm2VersionFromManifest('packages=lvm2,sanlock\nlvm2=2.03.16-2\nlvm2-lockd=2.03.16-2\n'), '2.03.16-2');
  assert.equal(lvm2VersionFromManifest('sanlock=3.8.5\n'), null);
});

test('--failure sets LVM_TEST_FAILURE for the fault tests; idm_inject_failure reads its percentage as atoi', async () => {
  const p = parseArgs(['--flavour', 'udev-lvmlockd-idm', '--only', 'idm_*', '--failure']);
  assert.ok(p.ok);
  assert.equal(p.options.failure, true);
  const q = parseArgs([]);
  assert.ok(q.ok);
  assert.equal(q.options.failure, false);
  const { atoi } = await import('../upstream/idm-inject-failure');
  assert.deepEqual(['40', '0', '100', ' 7x', 'x', undefined, '-1'].map(atoi), [40, 0, 100, 7, 0, 0, -1]);
});
