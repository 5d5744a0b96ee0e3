/**
 * Runs many schedules, collects figures, and shrinks a failing schedule to
 * a minimal one (fewer planned faults, fault classes switched off, shorter
 * run) that still breaks the same rule.
 */
import { BUGS, type BugSpec } from './bugs';
import { ALL_FAULTS, type FaultClass, type LeaseRunResult, type LeaseSchedule, makeLeaseSchedule, runLeaseSchedule } from './lease-cluster';
import { runCoreSchedule, type CoreRunResult } from './core-cluster';

/** Seed of schedule i of a run (a fixed mix, so any schedule replays alone from its own seed). */
export function scheduleSeed(seed: number, i: number): number {
  let h = (seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Whether a core-level schedule runs the sanlock lock manager (a fixed share of seeds, 10% by default). */
export function coreUsesSanlock(seed: number, share = 0.1): boolean {
  return ((seed >>> 10) % 1000) / 1000 < share;
}

/** Whether a schedule runs at the core level with the dlm lock manager on the DLM model (`share` of seeds). */
export function coreUsesDlm(seed: number, share: number): boolean {
  return share > 0 && ((seed >>> 20) % 1000) / 1000 < share;
}

/** Whether a schedule runs at the core level with the IDM manager, ILM and emulated drives (`share` of seeds). */
export function coreUsesIdm(seed: number, share: number): boolean {
  return share > 0 && ((seed >>> 15) % 1000) / 1000 < share;
}

export interface RunOptions {
  seed: number;
  schedules: number;
  hosts?: number;
  faults: readonly FaultClass[];
  bug?: BugSpec;
  /** Fraction of schedules run at the core level (LockdCore per host); the rest at the lease level. */
  coreShare: number;
  /** Of the core-level schedules, the fraction run with the real sanlock lock manager on a shared simulated LUN. */
  sanlockShare?: number;
  /** Fraction of all schedules run at the core level with the real dlm lock manager on the DLM model (default 0). */
  dlmShare?: number;
  /** Fraction of all schedules run at the core level with the real IDM manager and ILM code on emulated drives (default 0). */
  idmShare?: number;
  /** idm: the dead-writer fault (CoreRunOptions.idmDeadWriter; finding 22, open). */
  idmDeadWriter?: boolean;
  progress?: (done: number, total: number) => void;
  stopOnViolation?: boolean;
  /** Run schedules first, first+stride, … (parallel workers); default 0 and 1. */
  first?: number;
  stride?: number;
}

export interface Summary {
  schedules: number;
  leaseSchedules: number;
  coreSchedules: number;
  faultsInjected: number;
  grants: number;
  requests: number;
  steps: number;
  simSeconds: number;
  wallMs: number;
  /** CPU time (user + system) of the processes that ran the schedules. */
  cpuMs: number;
  /** lm: the core level's lock manager, when not the test managers (for the replay command). */
  violations: Array<{ seed: number; level: 'lease' | 'core'; lm?: 'sanlock' | 'dlm' | 'idm'; rule: string; message: string }>;
  firstFailure?: { level: 'lease' | 'core'; seed: number; result: LeaseRunResult | CoreRunResult };
  /** --inject-bug on the IDM path: violations not counted because the schedule breaks a rule without the bug too. */
  alsoWithoutBug?: number;
}

/**
 * Run fn with the real clock and Math.random poisoned: a schedule that reads
 * them would not replay from its seed. (Only in the simulator's process.)
 */
export async function deterministic<T>(fn: () => Promise<T>): Promise<T> {
  const saved = { random: Math.random, now: Date.now, setTimeout: globalThis.setTimeout };
  let called = '';
  const poison = (what: string) => () => {
    called ||= what;
    throw new Error(`${what} called during a simulation run (not reproducible from the seed)`);
  };
  Math.random = poison('Math.random');
  Date.now = poison('Date.now');
  globalThis.setTimeout = poison('setTimeout') as unknown as typeof setTimeout;
  try {
    const r = await fn();
    // Loud even when the lease or core code caught the exception.
    if (called) throw new Error(`${called} was called during a simulation run: it would not replay from its seed`);
    return r;
  } finally {
    Math.random = saved.random;
    Date.now = saved.now;
    globalThis.setTimeout = saved.setTimeout;
  }
}

export async function runMany(o: RunOptions): Promise<Summary> {
  const sum: Summary = {
    schedules: 0, leaseSchedules: 0, coreSchedules: 0, faultsInjected: 0, grants: 0, requests: 0, steps: 0, simSeconds: 0, wallMs: 0, cpuMs: 0, violations: [],
  };
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let n = 0;
  // Errors are part of normal operation (a busy lease, an injected EIO): capturing their
  // stacks cost more than running the lease code. A replay (--replay) keeps full stacks.
  const stackLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    for (let i = o.first ?? 0; i < o.schedules; i += o.stride ?? 1) {
      const seed = scheduleSeed(o.seed, i);
      const dlm = o.bug ? o.bug.profile === 'dlm' : coreUsesDlm(seed, o.dlmShare ?? 0);
      const idm = !dlm && (o.bug ? o.bug.profile === 'idm' : coreUsesIdm(seed, o.idmShare ?? 0));
      const core = dlm || idm || (!o.bug && o.coreShare > 0 && (seed % 1000) / 1000 < o.coreShare);
      if (core) {
        const sanlock = !dlm && !idm && coreUsesSanlock(seed, o.sanlockShare);
        const r = await deterministic(() => runCoreSchedule(seed, {
          hosts: o.hosts, lm: dlm ? 'dlm' : idm ? 'idm' : sanlock ? 'sanlock' : 'test',
          ...(o.bug?.dlmHideLostLvb ? { dlmBug: { hideLostLvb: true } } : {}),
          ...(o.bug?.idm ? { idmBug: o.bug.idm } : {}),
          ...(idm && o.idmDeadWriter ? { idmDeadWriter: true } : {}),
        }));
        sum.coreSchedules++;
        sum.faultsInjected += r.stats.faults;
        sum.requests += r.stats.requests;
        sum.steps += r.stats.steps;
        sum.simSeconds += r.stats.simMs / 1000;
        if (r.violation && idm && o.bug) {
          // The IDM path has open findings (docs/simulator.md, 22): a bug counts as caught only
          // where the same schedule without it keeps every rule.
          const clean = await deterministic(() => runCoreSchedule(seed, { hosts: o.hosts, lm: 'idm', ...(o.idmDeadWriter ? { idmDeadWriter: true } : {}) }));
          if (clean.violation) {
            sum.alsoWithoutBug = (sum.alsoWithoutBug ?? 0) + 1;
            r.violation = undefined;
          }
        }
        if (r.violation) {
          sum.violations.push({ seed, level: 'core', ...(dlm ? { lm: 'dlm' as const } : idm ? { lm: 'idm' as const } : sanlock ? { lm: 'sanlock' as const } : {}), rule: r.violation.rule, message: r.violation.message });
          if (!sum.firstFailure) sum.firstFailure = { level: 'core', seed, result: r };
        }
      } else {
        const s = makeLeaseSchedule(seed, { ...(o.hosts ? { hosts: o.hosts } : {}), faults: o.faults, ...(o.bug ? { profile: o.bug.profile } : {}) });
        const r = await deterministic(() => runLeaseSchedule(s, o.bug));
        sum.leaseSchedules++;
        sum.faultsInjected += r.stats.faults;
        sum.grants += r.stats.grants;
        sum.requests += r.stats.ops;
        sum.steps += r.stats.steps;
        sum.simSeconds += r.stats.simMs / 1000;
        if (r.violation) {
          sum.violations.push({ seed, level: 'lease', rule: r.violation.rule, message: r.violation.message });
          if (!sum.firstFailure) sum.firstFailure = { level: 'lease', seed, result: r };
        }
      }
      sum.schedules++;
      o.progress?.(++n, o.schedules);
      if (o.stopOnViolation && sum.violations.length) break;
    }
  } finally {
    Error.stackTraceLimit = stackLimit;
  }
  sum.wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  sum.cpuMs = (cpu.user + cpu.system) / 1000;
  return sum;
}

/**
 * Shrink a failing lease schedule: drop planned faults one by one, switch
 * off random I/O faults and clock skew, cut the run just after the
 * violation, and keep every change that still breaks the same rule.
 */
export async function shrinkLease(r: LeaseRunResult, bug?: BugSpec, budget = 40): Promise<LeaseRunResult> {
  const rule = r.violation!.rule;
  let best = r;
  let tries = 0;
  const attempt = async (s: LeaseSchedule): Promise<boolean> => {
    if (tries++ >= budget) return false;
    const x = await runLeaseSchedule(s, bug);
    if (x.violation?.rule === rule) {
      best = x;
      return true;
    }
    return false;
  };
  // Shorter run: stop soon after the violation.
  {
    const cut = Math.max(1000, Math.ceil(best.stats.simMs / 1000) * 1000 + 1000);
    if (cut < best.schedule.durationMs) await attempt({ ...best.schedule, durationMs: cut, plan: best.schedule.plan.filter((f) => f.at < cut) });
  }
  for (let i = best.schedule.plan.length - 1; i >= 0; i--) {
    const plan = best.schedule.plan.filter((_, j) => j !== i);
    await attempt({ ...best.schedule, plan });
  }
  if (best.schedule.rates.eio) await attempt({ ...best.schedule, rates: { ...best.schedule.rates, eio: 0 } });
  if (best.schedule.rates.slow) await attempt({ ...best.schedule, rates: { ...best.schedule.rates, slow: 0 } });
  if (best.schedule.skew) await attempt({ ...best.schedule, skew: false });
  if (best.schedule.hosts > 2) {
    for (let h = 2; h < best.schedule.hosts; h++) {
      if (await attempt({ ...best.schedule, hosts: h, plan: best.schedule.plan.filter((f) => f.host <= h) })) break;
    }
  }
  return best;
}

export { ALL_FAULTS, BUGS };
