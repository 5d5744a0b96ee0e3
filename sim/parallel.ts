/**
 * Runs the schedules of one run on several worker processes (one per core).
 * Schedule i always gets the same seed (scheduleSeed(seed, i)), whichever
 * worker runs it, so results do not depend on the number of jobs.
 *
 * Work is handed out in blocks of consecutive schedules: a worker that
 * finishes a block gets the next one. The parent knows at any time which
 * blocks are complete, so a long run can report partial results (the
 * schedules done, the complete prefix 0..k-1 a later run can resume after
 * with `from`) when it is stopped or while it runs.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { findBug } from './bugs';
import type { FaultClass } from './lease-cluster';
import { runMany, type RunOptions, type Summary } from './runner';

export interface ParallelOptions {
  seed: number;
  /** Run schedules from..schedules-1 (default from 0). */
  schedules: number;
  from?: number;
  hosts?: number;
  faults: readonly FaultClass[];
  bug?: string;
  coreShare: number;
  /** Fraction of schedules run at the core level with the dlm manager on the DLM model. */
  dlmShare?: number;
  /** Fraction of schedules run at the core level with the IDM manager and ILM code on emulated drives. */
  idmShare?: number;
  idmDeadWriter?: boolean;
  jobs: number;
  stopOnViolation?: boolean;
  /** Schedules per block handed to a worker (default: about 8 blocks per worker, at most 500). */
  block?: number;
  /** Called whenever a block completes: schedules done so far and the partial summary. */
  progress?: (done: number, total: number, partial: PartialResult) => void;
  /** Called as soon as a worker reports a violation. */
  onViolation?: (v: Summary['violations'][number]) => void;
}

export interface PartialResult {
  /** Merged summary of the complete blocks (wallMs: since the start). */
  summary: Summary;
  /** Every schedule below this index is done (a later run may resume with from = prefix). */
  prefix: number;
}

interface WorkerTask {
  seed: number;
  hosts?: number;
  faults: readonly FaultClass[];
  bug?: string;
  coreShare: number;
  dlmShare?: number;
  idmShare?: number;
  idmDeadWriter?: boolean;
  stopOnViolation?: boolean;
}

type ToWorker = { task: WorkerTask } | { block: [number, number] } | { exit: true };
type FromWorker = { summary: Summary; block: [number, number] };

export function emptySummary(): Summary {
  return { schedules: 0, leaseSchedules: 0, coreSchedules: 0, faultsInjected: 0, grants: 0, requests: 0, steps: 0, simSeconds: 0, wallMs: 0, cpuMs: 0, violations: [] };
}

export function addSummary(sum: Summary, p: Summary): void {
  sum.schedules += p.schedules;
  sum.leaseSchedules += p.leaseSchedules;
  sum.coreSchedules += p.coreSchedules;
  sum.faultsInjected += p.faultsInjected;
  sum.grants += p.grants;
  sum.requests += p.requests;
  sum.steps += p.steps;
  sum.simSeconds += p.simSeconds;
  sum.cpuMs += p.cpuMs;
  sum.violations.push(...p.violations);
  if (p.alsoWithoutBug) sum.alsoWithoutBug = (sum.alsoWithoutBug ?? 0) + p.alsoWithoutBug;
}

/** Live runs, so that a signal handler can ask for their partial result. */
const live = new Set<() => PartialResult>();

/** Partial results of the runs in progress (for a SIGINT/SIGTERM handler). */
export function partialResults(): PartialResult[] {
  return [...live].map((f) => f());
}

export async function runParallel(o: ParallelOptions): Promise<Summary> {
  const from = Math.max(0, Math.floor(o.from ?? 0));
  const total = Math.max(0, o.schedules - from);
  const jobs = Math.max(1, Math.min(o.jobs, total));
  const t0 = process.hrtime.bigint();
  const blockSize = Math.max(1, Math.floor(o.block ?? Math.min(500, Math.ceil(total / (jobs * 8)))));
  const nBlocks = Math.ceil(total / blockSize);
  const results: Array<Summary | undefined> = new Array(nBlocks).fill(undefined);
  let next = 0;
  let stop = false;
  const merged = (): PartialResult => {
    const sum = emptySummary();
    let prefix = from;
    let contiguous = true;
    for (let b = 0; b < nBlocks; b++) {
      const r = results[b];
      if (!r) {
        contiguous = false;
        continue;
      }
      addSummary(sum, r);
      if (contiguous) prefix = Math.min(o.schedules, from + (b + 1) * blockSize);
    }
    sum.wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    return { summary: sum, prefix };
  };
  const blockRange = (b: number): [number, number] => [from + b * blockSize, Math.min(o.schedules, from + (b + 1) * blockSize)];
  const finish = (b: number, s: Summary) => {
    results[b] = s;
    for (const v of s.violations) o.onViolation?.(v);
    if (o.stopOnViolation && s.violations.length) stop = true;
    if (o.progress) {
      const m = merged();
      o.progress(m.summary.schedules, total, m);
    }
  };

  live.add(merged);
  try {
    if (jobs === 1) {
      const bug = o.bug ? findBug(o.bug) : undefined;
      while (!stop && next < nBlocks) {
        const b = next++;
        const [first, end] = blockRange(b);
        const opts: RunOptions = {
          seed: o.seed, schedules: end, first, stride: 1, faults: o.faults, coreShare: o.coreShare,
          ...(o.dlmShare ? { dlmShare: o.dlmShare } : {}), ...(o.idmShare ? { idmShare: o.idmShare } : {}), ...(o.idmDeadWriter ? { idmDeadWriter: true } : {}),
          ...(o.hosts ? { hosts: o.hosts } : {}), ...(bug ? { bug } : {}), ...(o.stopOnViolation ? { stopOnViolation: true } : {}),
        };
        const s = await runMany(opts);
        // Keep the in-process first failure (with its trace) for the caller.
        finish(b, s);
      }
      const m = merged().summary;
      const ff = results.find((r) => r?.firstFailure)?.firstFailure;
      return ff ? { ...m, firstFailure: ff } : m;
    }

    const task: WorkerTask = {
      seed: o.seed, faults: o.faults, coreShare: o.coreShare, ...(o.dlmShare ? { dlmShare: o.dlmShare } : {}), ...(o.idmShare ? { idmShare: o.idmShare } : {}), ...(o.idmDeadWriter ? { idmDeadWriter: true } : {}),
      ...(o.hosts ? { hosts: o.hosts } : {}), ...(o.bug ? { bug: o.bug } : {}), ...(o.stopOnViolation ? { stopOnViolation: true } : {}),
    };
    const children: ChildProcess[] = [];
    try {
      await Promise.all(
        Array.from({ length: jobs }, (_, j) =>
          new Promise<void>((resolve, reject) => {
            // One V8 thread per worker: on a machine with one worker per core, background
            // compiler and GC threads only compete with the other workers.
            const child = fork(__filename, ['--sim-worker'], {
              stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
              execArgv: [...process.execArgv.filter((a) => !a.startsWith('--test')), '--single-threaded'],
            });
            children.push(child);
            let current = -1;
            const send = (m: ToWorker) => child.send(m);
            const giveNext = () => {
              if (stop || next >= nBlocks) {
                current = -1;
                send({ exit: true });
                return;
              }
              current = next++;
              send({ block: blockRange(current) });
            };
            child.on('message', (m: FromWorker) => {
              if (current >= 0) finish(current, m.summary);
              giveNext();
            });
            child.on('exit', (code) => {
              if (current >= 0) reject(new Error(`sim worker ${j} exited with ${code} during schedules ${blockRange(current).join('..')}`));
              else resolve();
            });
            send({ task });
            giveNext();
          }),
        ),
      );
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill();
    }
    return merged().summary;
  } finally {
    live.delete(merged);
  }
}

if (require.main === module && process.argv.includes('--sim-worker')) {
  // The parent went away (killed, interrupted): stop instead of running on as an orphan.
  let exiting = false;
  process.once('disconnect', () => {
    if (!exiting) process.exit(1);
  });
  let task: WorkerTask | undefined;
  let queue = Promise.resolve();
  process.on('message', (m: ToWorker) => {
    if ('task' in m) {
      task = m.task;
      return;
    }
    if ('exit' in m) {
      exiting = true;
      queue = queue.then(() => process.disconnect?.());
      return;
    }
    const [first, end] = m.block;
    queue = queue.then(async () => {
      const t = task!;
      const bug = t.bug ? findBug(t.bug) : undefined;
      const sum = await runMany({
        seed: t.seed, schedules: end, first, stride: 1, faults: t.faults, coreShare: t.coreShare,
        ...(t.dlmShare ? { dlmShare: t.dlmShare } : {}), ...(t.idmShare ? { idmShare: t.idmShare } : {}), ...(t.idmDeadWriter ? { idmDeadWriter: true } : {}),
        ...(t.hosts ? { hosts: t.hosts } : {}), ...(bug ? { bug } : {}), ...(t.stopOnViolation ? { stopOnViolation: true } : {}),
      });
      const reply: FromWorker = { summary: { ...sum, firstFailure: undefined }, block: [first, end] };
      process.send?.(reply);
    });
  });
}
