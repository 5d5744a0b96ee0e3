// npm run test:upstream -- [--flavour NAME] [--only GLOB] [--daemon ours|c|both] [--jobs N] [--shard-by item|flavour] [--from N] [--stop-at T]
//
// LVM2's own test suite (the lvm2 source package matching the guest's lvm2)
// in VMs of the VM tier, each test with the C lvmlockd and with ours; one
// `RESULT <flavour> <test> c=<v> ours=<v>` line per test (v: pass, fail,
// skip, or - when not run). Exit 1 when a test passes with C and not with
// ours, or when the run could not be made. Tests left out because the time
// budget (--stop-at; in CI, LVMLOCKD_CI_STOP_AT) ran out are named loudly and
// do not fail the run: the budget is there so that a slow CI machine ends
// with the results it has instead of a timeout that reports nothing.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureImage } from '../vm/lib/image';
import { qemuUnavailable } from '../vm/lib/vm';
import { FLAVOURS, parseArgs, parseStopAt, planItems, shard, shardByFlavour, Daemon, Item } from './plan';
import { buildSuiteLocked, ensureSuite, lvm2VersionFromManifest, upstreamCacheRoot } from './source';
import { runShard, RunContext, TestRun } from './run';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--build-suite-locked') {
    buildSuiteLocked(argv[1]!, (s) => console.error(`upstream: ${s}`));
    return 0;
  }
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    if ('help' in parsed) { process.stdout.write(parsed.help); return 0; }
    process.stderr.write(`test:upstream: ${parsed.error}\n`);
    return 2;
  }
  const o = parsed.options;
  const log = (s: string): void => { console.error(`upstream: ${s}`); };
  const envStop = process.env['LVMLOCKD_CI_STOP_AT'];
  if (o.ci && o.stopAtMs === null && envStop) {
    const n = parseStopAt(envStop);
    if (typeof n === 'string') { process.stderr.write(`test:upstream: LVMLOCKD_CI_STOP_AT: ${n}\n`); return 2; }
    o.stopAtMs = n;
  }
  if (o.stopAtMs !== null) log(`no test starts after ${new Date(o.stopAtMs).toISOString()} (--stop-at)`);
  const why = qemuUnavailable();
  if (why) {
    process.stderr.write(`\n*** test:upstream NOT RUN: the VM tier cannot start here: ${why} ***\n\n`);
    return o.ci ? 0 : 1;
  }
  for (const f of FLAVOURS) {
    if (o.flavours.includes(f.name) && f.notRun) log(`flavour ${f.name} NOT RUN: ${f.notRun}`);
  }
  const image = await ensureImage(log);
  const version = lvm2VersionFromManifest(image.manifest);
  if (!version) throw new Error('the guest image manifest names no lvm2 version');
  const suite = ensureSuite(version, log);
  const items = planItems(suite.tests, o);
  if (o.list) {
    for (const it of items) console.log(`${it.index}\t${it.flavour.name}\t${it.test}`);
    return 0;
  }
  if (items.length === 0) { log('no test selected'); return 1; }
  const shards = (o.shardBy === 'flavour' ? shardByFlavour : shard)(items, o.jobs, o.from);
  const runDir = path.join(upstreamCacheRoot(), 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  fs.mkdirSync(runDir, { recursive: true });
  const results = fs.createWriteStream(path.join(runDir, 'results.txt'));
  const t0 = Date.now();
  log(`lvm2 ${version}: ${items.length} items, running ${items.length - Math.min(o.from, items.length)} from ${o.from} on ${shards.length} VM(s), daemons ${o.daemons.join('+')}; logs in ${runDir}`);
  results.write(`# ${new Date().toISOString()} lvm2 ${version} ${argv.join(' ')}\n`);
  const ctx: RunContext = {
    suite, options: o, runDir, log,
    emit: (line) => { console.log(line); results.write(line + '\n'); },
    timeUp: () => (o.stopAtMs !== null && Date.now() >= o.stopAtMs
      ? `time budget spent (--stop-at ${new Date(o.stopAtMs).toISOString()})` : null),
  };
  const done: Array<{ item: Item; runs: Partial<Record<'c' | 'ours', TestRun>> }> = [];
  const outOfTime: Array<{ item: Item; daemons: Daemon[] }> = [];
  const failures: string[] = [];
  await Promise.all(shards.map(async (s, k) => {
    try {
      const r = await runShard(ctx, k + 1, s);
      done.push(...r.results);
      outOfTime.push(...r.outOfTime);
    } catch (e) {
      failures.push(`shard ${k + 1}: ${(e as Error).stack ?? e}`);
    }
  }));
  const finished = new Set(done.map((d) => d.item.index));
  const firstMissing = items.find((it) => it.index >= o.from && !finished.has(it.index));
  const tally = (d: 'c' | 'ours'): string => {
    const n = { pass: 0, fail: 0, skip: 0 };
    for (const x of done) { const v = x.runs[d]?.verdict; if (v && v !== '-') n[v]++; }
    return `${d}: ${n.pass} pass, ${n.fail} fail, ${n.skip} skip`;
  };
  const regressions = done.filter((x) => x.runs.c?.verdict === 'pass' && x.runs.ours && x.runs.ours.verdict !== 'pass');
  const summary = [
    `SUMMARY ${done.length} tests in ${((Date.now() - t0) / 60_000).toFixed(1)} min; ${o.daemons.map(tally).join('; ')}`,
    `SUMMARY passed with C, not with ours: ${regressions.length ? regressions.map((x) => `${x.item.flavour.name}/${x.item.test}`).join(' ') : 'none'}`,
  ];
  if (outOfTime.length) {
    summary.push(`SUMMARY NOT RUN (time budget spent): ${outOfTime.map((x) => `${x.item.flavour.name}/${x.item.test}[${x.daemons.join('+')}]`).join(' ')}`);
  }
  for (const l of summary) ctx.emit(l);
  if (outOfTime.length) {
    process.stderr.write(`\n*** test:upstream: ${outOfTime.length} test run(s) NOT RUN: the time budget (--stop-at) was spent; see the SUMMARY line ***\n\n`);
  }
  for (const f of failures) log(`ERROR ${f}`);
  if (firstMissing) log(`not finished: resume with --from ${firstMissing.index}`);
  await new Promise<void>((r) => results.end(() => r()));
  log(`results in ${path.join(runDir, 'results.txt')}`);
  return failures.length || regressions.length || firstMissing ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; setImmediate(() => process.exit(code)); },
  (e: unknown) => { process.stderr.write(`test:upstream: ${(e as Error).stack ?? e}\n`); process.exit(1); },
);
