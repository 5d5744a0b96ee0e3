/**
 * npm run sim -- [options]     (node dist/sim/cli.js)
 *
 * Runs seeded schedules of the deterministic cluster simulator and prints
 * what ran, the faults injected and the violations found. A violation
 * prints its schedule seed, a shrunk schedule and its trace, and the
 * process exits 1. See docs/simulator.md.
 */
import { BUGS, findBug, type BugSpec } from './bugs';
import { ALL_FAULTS, type FaultClass, type LeaseRunResult, type LeaseSchedule, makeLeaseSchedule, runLeaseSchedule } from './lease-cluster';
import { runCoreSchedule } from './core-cluster';
import { runMany, scheduleSeed, shrinkLease, type Summary } from './runner';
import { runScale } from './scale';
import { partialResults, runParallel, type PartialResult } from './parallel';
import { availableParallelism } from 'node:os';

const HELP = `usage: npm run sim -- [options]

Deterministic cluster simulator: N hosts run the real lease code (delta and
paxos leases from src/leases) and the real daemon core (src/core) over
simulated disks, clocks and hosts. Every run is reproducible from its seed.

options:
  --seed S            base seed (default 1)
  --schedules N       number of schedules (default 200)
  --hosts H           hosts per schedule (default: 2-6, chosen per schedule)
  --faults LIST       fault classes, comma separated, or "all" / "none"
                      (default all: ${ALL_FAULTS.join(',')});
                      "late-write" (beyond the model, off in "all") lets a
                      timed-out write land after the host's newer writes
  --core-share F      fraction of schedules run at the core level (default 0.25)
  --dlm-share F       fraction of schedules run at the core level with the real dlm
                      manager on the DLM model (default 0)
  --idm-share F       fraction of schedules run at the core level with the real IDM
                      manager, the real ILM lockspace/raid-lock code and the drive
                      firmware model on emulated drives (default 0)
  --idm-dead-writer   with IDM schedules: machines also die right after writing VG
                      metadata holding the VG lock ex (finds the open finding 22)
  --inject-bug NAME   break one safety rule on purpose; the run must find a
                      violation: it prints it like any violation and exits 1
                      (exit 3: not caught). "all" is the self-check: exit 0
                      when every bug is caught. Names:
${BUGS.map((b) => `                        ${b.name.padEnd(28)}${b.description}`).join('\n')}
  --replay SEED       run one schedule by its own seed (printed on a violation)
                      and print its whole trace; with --level core for core schedules
  --lm test|sanlock|dlm|idm  with --replay --level core: the lock manager (dlm: the real
                      src/lm/dlm manager on the DLM model of sim/dlm-model.ts; sanlock: the real
                      src/lm/sanlock manager on a shared simulated LUN; idm: the real src/lm/idm
                      manager and ILM code on emulated drives, sim/idm-model.ts)
  --no-stop-race      with --lm sanlock: keep stop_vg away from in-flight lock requests
  --no-watchdog       with --lm sanlock: no external watchdog (the simulated hosts' wdmd)
  --keep-faults I,J   with --replay: keep only these planned faults (from a shrunk trace)
  --no-eio, --no-slow, --no-skew, --duration MS   with --replay: shrunk-schedule switches
  --trace             print every trace line while running
  --long              the long run: 1,000,000 schedules (overrides --schedules)
  --from I            run schedules I..N-1 only (resume a stopped run: a stopped
                      run prints the index to resume from)
  --progress SEC      progress line interval (default 30, --long 60): schedules done,
                      rate, ETA, violations so far. Violations print as found.
                      SIGINT/SIGTERM print the partial summary (exit 4, or 1 with violations)
  --scale             scale mode: one lockspace, up to --hosts hosts (default 2000)
                      and --lvs LV leases (default 10000); prints per-op costs
  --lvs N             LV leases for --scale
  --jobs J            worker processes (default 1; --long: one per core)
  --json              print the summary as JSON
  --help              this text
`;

interface Args {
  [k: string]: string | boolean | undefined;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (!x.startsWith('--')) throw new Error(`unexpected argument "${x}"`);
    const eq = x.indexOf('=');
    if (eq > 0) {
      a[x.slice(2, eq)] = x.slice(eq + 1);
      continue;
    }
    const k = x.slice(2);
    const next = argv[i + 1];
    if (['help', 'trace', 'long', 'scale', 'json', 'no-eio', 'no-slow', 'no-skew', 'no-stop-race', 'no-watchdog', 'idm-dead-writer'].includes(k)) a[k] = true;
    else if (next === undefined || next.startsWith('--')) throw new Error(`--${k} needs a value`);
    else {
      a[k] = next;
      i++;
    }
  }
  return a;
}

function num(a: Args, k: string, d: number): number {
  const v = a[k];
  if (v === undefined) return d;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${k}: not a number: ${String(v)}`);
  return n;
}

function faultList(v: string | boolean | undefined): FaultClass[] {
  if (v === undefined || v === 'all') return [...ALL_FAULTS];
  if (v === 'none' || v === '') return [];
  const out: FaultClass[] = [];
  for (const f of String(v).split(',')) {
    const name = f.trim() as FaultClass;
    if (name === ('all' as FaultClass)) out.push(...ALL_FAULTS);
    else if (!ALL_FAULTS.includes(name) && name !== 'late-write') throw new Error(`unknown fault class "${name}" (known: ${ALL_FAULTS.join(', ')}, late-write)`);
    else out.push(name);
  }
  return out;
}

function fmtDuration(secs: number): string {
  const s = Math.round(secs);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function printSummary(s: Summary, label: string): void {
  const rate = s.schedules / (s.wallMs / 1000);
  console.log(`${label}: ${s.schedules} schedules (${s.leaseSchedules} lease-level, ${s.coreSchedules} core-level) in ${(s.wallMs / 1000).toFixed(1)} s (${rate.toFixed(1)} schedules/s)`);
  console.log(`  faults injected: ${s.faultsInjected}; lease grants: ${s.grants}; requests: ${s.requests}; scheduler steps: ${s.steps}; simulated time: ${(s.simSeconds / 3600).toFixed(2)} h`);
  console.log(`  CPU: ${(s.cpuMs / 1000).toFixed(1)} s, ${(s.cpuMs / 1000 / Math.max(1, s.schedules)).toFixed(4)} CPU-s/schedule`);
  console.log(`  violations: ${s.violations.length}`);
  for (const v of s.violations.slice(0, 10)) console.log(`    schedule seed ${v.seed} (${v.level}): ${v.rule}: ${v.message}`);
}

export function applyReplaySwitches(s: LeaseSchedule, a: Args): LeaseSchedule {
  let out = { ...s };
  if (typeof a['keep-faults'] === 'string') {
    const keep = new Set(a['keep-faults'] === '' || a['keep-faults'] === 'none' ? [] : a['keep-faults'].split(',').map(Number));
    out.plan = s.plan.filter((_, i) => keep.has(i));
  }
  if (a['no-eio']) out.rates = { ...out.rates, eio: 0 };
  if (a['no-slow']) out.rates = { ...out.rates, slow: 0 };
  if (a['no-skew']) out.skew = false;
  if (a.duration !== undefined) out.durationMs = num(a, 'duration', s.durationMs);
  if (a.hosts !== undefined) {
    const h = num(a, 'hosts', s.hosts);
    out = { ...out, hosts: h, plan: out.plan.filter((f) => f.host <= h) };
  }
  return out;
}

/** The replay command line for a (possibly shrunk) lease schedule. */
function replayCommand(orig: LeaseSchedule, shrunk: LeaseSchedule, bug: BugSpec | undefined, faults: FaultClass[]): string {
  const parts = ['npm run sim --', `--replay ${shrunk.seed}`];
  if (faults.length !== ALL_FAULTS.length || faults.some((f) => !ALL_FAULTS.includes(f))) parts.push(`--faults ${faults.join(',') || 'none'}`);
  if (bug) parts.push(`--inject-bug ${bug.name}`);
  const keep = shrunk.plan.map((f) => orig.plan.indexOf(f)).filter((i) => i >= 0);
  if (keep.length !== orig.plan.length) parts.push(`--keep-faults ${keep.join(',') || 'none'}`);
  if (!shrunk.rates.eio && orig.rates.eio) parts.push('--no-eio');
  if (!shrunk.rates.slow && orig.rates.slow) parts.push('--no-slow');
  if (!shrunk.skew && orig.skew) parts.push('--no-skew');
  if (shrunk.durationMs !== orig.durationMs) parts.push(`--duration ${shrunk.durationMs}`);
  if (shrunk.hosts !== orig.hosts) parts.push(`--hosts ${shrunk.hosts}`);
  return parts.join(' ');
}

/** The lines of a trace that tell the story of a violation: faults, the hosts and resources involved. */
export function minimalTrace(r: LeaseRunResult, max = 60): string[] {
  const v = r.violation;
  const lines = r.trace;
  if (!v) return lines.slice(-max);
  const hosts = new Set((v.message.match(/hosts? ([\d,]+)/g) ?? []).flatMap((m) => m.replace(/hosts? /, '').split(',')));
  for (const m of v.message.matchAll(/by (?:host )?(\d+)/g)) hosts.add(m[1]!);
  const res = new Set(v.message.match(/R\d+/g) ?? []);
  const keep = lines.filter((l) => {
    if (/VIOLATION|CRASH|PAUSE|STORAGE|resume|restored|restarts|watchdog|lockspace failed|kill path/.test(l)) return true;
    const h = /\bh(\d+) /.exec(l)?.[1];
    const rr = l.match(/R\d+/g) ?? [];
    if (h && !hosts.has(h)) return false;
    if (rr.length && res.size && !rr.some((x) => res.has(x))) return false;
    return !/IDLIVE|owner is alive/.test(l);
  });
  return keep.slice(-max);
}

async function checkBug(bug: BugSpec, a: Args, faults: FaultClass[], seed: number, max: number, details: boolean): Promise<boolean> {
  const t0 = process.hrtime.bigint();
  const sum = await runMany({ seed, schedules: max, faults, bug, coreShare: 0, stopOnViolation: true, ...(a.hosts ? { hosts: num(a, 'hosts', 3) } : {}) });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const v = sum.violations[0];
  const also = sum.alsoWithoutBug ? ` (${sum.alsoWithoutBug} schedule(s) not counted: they break a rule without the bug too)` : '';
  if (v) console.log(`inject-bug ${bug.name}: CAUGHT after ${sum.schedules} schedule(s), ${(ms / 1000).toFixed(1)} s — ${v.rule}: ${v.message} (schedule seed ${v.seed})${also}`);
  else console.log(`inject-bug ${bug.name}: NOT caught in ${sum.schedules} schedules${also}`);
  if (v && details && sum.firstFailure?.level === 'lease') {
    const r = sum.firstFailure.result as LeaseRunResult;
    const shrunk = await shrinkLease(r, bug);
    console.log(`\nVIOLATION in schedule seed ${v.seed} (lease level, bug ${bug.name}): ${v.rule}: ${v.message}`);
    console.log(`replay: ${replayCommand(r.schedule, shrunk.schedule, bug, faults)}`);
    console.log('trace (faults and the hosts/resources involved):');
    console.log(minimalTrace(shrunk).join('\n'));
  } else if (v && details && sum.firstFailure?.level === 'core') {
    console.log(`\nVIOLATION in schedule seed ${v.seed} (core level${v.lm ? `, ${v.lm} manager` : ''}, bug ${bug.name}): ${v.rule}: ${v.message}`);
    console.log(`replay: npm run sim -- --replay ${v.seed} --level core${v.lm ? ` --lm ${v.lm}` : ''} --inject-bug ${bug.name}`);
    console.log(sum.firstFailure.result.trace.filter((l) => !/ D /.test(l)).slice(-40).join('\n'));
  }
  return !!v;
}

export async function main(argv: string[]): Promise<number> {
  let a: Args;
  try {
    a = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`sim: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const seed = num(a, 'seed', 1) >>> 0;
  const faults = faultList(a.faults);

  if (a.scale) {
    await runScale({ hosts: num(a, 'hosts', 2000), lvs: num(a, 'lvs', 10000), seed, json: !!a.json });
    return 0;
  }

  if (a['inject-bug'] !== undefined) {
    const name = String(a['inject-bug']);
    const bugs = name === 'all' ? [...BUGS] : [findBug(name)];
    if (bugs.some((b) => !b)) {
      process.stderr.write(`sim: unknown bug "${name}"; known: ${BUGS.map((b) => b.name).join(', ')}\n`);
      return 2;
    }
    if (a.replay === undefined) {
      // One bug: a normal run that must find a violation (printed with its seed and trace; exit 1),
      // exit 3 when it is not caught. "all": the self-check, exit 0 only when every bug is caught.
      let all = true;
      for (const b of bugs) all = (await checkBug(b!, a, faults, seed, num(a, 'schedules', 200), name !== 'all')) && all;
      if (name === 'all') return all ? 0 : 1;
      return all ? 1 : 3;
    }
  }
  const bug = a['inject-bug'] !== undefined ? findBug(String(a['inject-bug'])) : undefined;

  if (a.replay !== undefined) {
    const s0 = num(a, 'replay', 0) >>> 0;
    if (a.level === 'core') {
      const r = await runCoreSchedule(s0, {
        hosts: a.hosts ? num(a, 'hosts', 3) : undefined, traceAll: !!a.trace, coreDebug: true,
        lm: a.lm === 'sanlock' ? 'sanlock' : a.lm === 'dlm' ? 'dlm' : a.lm === 'idm' ? 'idm' : 'test', allowStopRace: !a['no-stop-race'], noWatchdog: !!a['no-watchdog'],
        ...(bug?.dlmHideLostLvb ? { dlmBug: { hideLostLvb: true } } : {}),
        ...(bug?.idm ? { idmBug: bug.idm } : {}),
        ...(a['idm-dead-writer'] ? { idmDeadWriter: true } : {}),
      });
      if (!a.trace) console.log(r.trace.join('\n'));
      console.log(r.violation ? `VIOLATION ${r.violation.rule}: ${r.violation.message}` : 'no violation');
      return r.violation ? 1 : 0;
    }
    const s = applyReplaySwitches(makeLeaseSchedule(s0, { faults, ...(bug ? { profile: bug.profile } : {}) }), a);
    console.log(`schedule ${JSON.stringify(s)}`);
    const r = await runLeaseSchedule(s, bug, { traceAll: !!a.trace, ioTrace: true });
    if (!a.trace) console.log(r.trace.join('\n'));
    console.log(r.violation ? `VIOLATION ${r.violation.rule}: ${r.violation.message}` : 'no violation');
    return r.violation ? 1 : 0;
  }

  const schedules = a.long ? 1_000_000 : num(a, 'schedules', 200);
  const hosts = a.hosts !== undefined ? num(a, 'hosts', 3) : undefined;
  if (hosts !== undefined && (!Number.isInteger(hosts) || hosts < 1 || hosts > 250)) {
    process.stderr.write('sim: --hosts must be 1..250 for schedules (the 4096/1M lockspace layout); use --scale for up to 2000\n');
    return 2;
  }
  const from = num(a, 'from', 0);
  if (!Number.isInteger(from) || from < 0 || from >= schedules) {
    process.stderr.write(`sim: --from must be an integer in 0..${schedules - 1}\n`);
    return 2;
  }
  const jobs = num(a, 'jobs', a.long ? availableParallelism() : 1);
  const every = num(a, 'progress', a.long ? 60 : 30);
  const label = `sim seed ${seed}${from ? ` schedules ${from}..${schedules - 1}` : ''}`;
  let lastPrint = process.hrtime.bigint();
  const progressLine = (p: PartialResult, total: number): string => {
    const s = p.summary;
    const secs = s.wallMs / 1000;
    const rate = s.schedules / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (total - s.schedules) / rate : Infinity;
    return (
      `sim: ${s.schedules}/${total} schedules (all below ${p.prefix} done), ${fmtDuration(secs)} elapsed, ${rate.toFixed(1)} schedules/s, ` +
      `ETA ${Number.isFinite(eta) ? fmtDuration(eta) : '?'} (${new Date(Date.now() + (Number.isFinite(eta) ? eta * 1000 : 0)).toISOString().slice(0, 16)}Z); ` +
      `violations ${s.violations.length}; faults ${s.faultsInjected}; ${(s.simSeconds / 3600).toFixed(0)} simulated h; ` +
      `${(s.cpuMs / 1000 / Math.max(1, s.schedules)).toFixed(4)} CPU-s/schedule`
    );
  };
  // A stopped run (Ctrl-C, kill) still reports what it did, and how to resume.
  const onSignal = (sig: NodeJS.Signals) => {
    for (const p of partialResults()) {
      process.stderr.write(`${progressLine(p, schedules - from)}\n`);
      printSummary(p.summary, `${label} (stopped by ${sig}: partial)`);
      console.log(`  complete: schedules ${from}..${p.prefix - 1}; resume with --from ${p.prefix}`);
    }
    process.exit(violationsSeen ? 1 : 4);
  };
  let violationsSeen = 0;
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const sum = await runParallel({
    seed, schedules, from, faults, coreShare: num(a, 'core-share', 0.25), dlmShare: num(a, 'dlm-share', 0), idmShare: num(a, 'idm-share', 0), ...(a['idm-dead-writer'] ? { idmDeadWriter: true } : {}), ...(hosts ? { hosts } : {}),
    jobs,
    progress: (_done, total, p) => {
      const now = process.hrtime.bigint();
      if (now - lastPrint > BigInt(Math.round(every * 1e9))) {
        lastPrint = now;
        process.stderr.write(`${progressLine(p, total)}\n`);
      }
    },
    onViolation: (v) => {
      violationsSeen++;
      process.stderr.write(`sim: VIOLATION schedule seed ${v.seed} (${v.level} level): ${v.rule}: ${v.message} — replay: npm run sim -- --replay ${v.seed}${v.level === 'core' ? ` --level core${v.lm ? ` --lm ${v.lm}` : ''}` : ''}\n`);
    },
  });
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  if (a.json) console.log(JSON.stringify({ ...sum, firstFailure: undefined }));
  else printSummary(sum, label);
  if (sum.violations.length) {
    const v0 = sum.violations[0]!;
    const f = sum.firstFailure ?? {
      level: v0.level,
      seed: v0.seed,
      result: v0.level === 'core' ? await runCoreSchedule(v0.seed, { hosts, lm: v0.lm ?? 'test' }) : await runLeaseSchedule(makeLeaseSchedule(v0.seed, { ...(hosts ? { hosts } : {}), faults }), undefined),
    };
    console.log(`\nVIOLATION in schedule seed ${f.seed} (${f.level} level): ${sum.violations[0]!.rule}: ${sum.violations[0]!.message}`);
    if (f.level === 'lease') {
      const r = f.result as LeaseRunResult;
      const shrunk = await shrinkLease(r);
      console.log(`shrunk schedule: ${JSON.stringify(shrunk.schedule)}`);
      console.log(`replay: ${replayCommand(r.schedule, shrunk.schedule, undefined, faults)}`);
      console.log('trace (faults and the hosts/resources involved):');
      console.log(minimalTrace(shrunk).join('\n'));
    } else {
      console.log(`replay: npm run sim -- --replay ${f.seed} --level core${v0.lm ? ` --lm ${v0.lm}` : ''}`);
      console.log(f.result.trace.slice(-60).join('\n'));
    }
    return 1;
  }
  return 0;
}

export { scheduleSeed };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Let stdout drain (a replay prints long traces into pipes) before exiting.
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`sim: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
      process.exit(2);
    },
  );
}
