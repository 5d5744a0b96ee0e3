/**
 * Runs the schedules of one run on several worker processes (one per core):
 * schedule i always gets the same seed (scheduleSeed(seed, i)), whichever
 * worker runs it, so results do not depend on the number of jobs.
 */
import { fork } from 'node:child_process';
import { findBug } from './bugs';
import type { FaultClass } from './lease-cluster';
import { runMany, type RunOptions, type Summary } from './runner';

export interface ParallelOptions {
  seed: number;
  schedules: number;
  hosts?: number;
  faults: readonly FaultClass[];
  bug?: string;
  coreShare: number;
  jobs: number;
  stopOnViolation?: boolean;
  progress?: (done: number, total: number) => void;
}

interface WorkerTask extends Omit<ParallelOptions, 'jobs' | 'progress'> {
  first: number;
  stride: number;
}

export async function runParallel(o: ParallelOptions): Promise<Summary> {
  const jobs = Math.max(1, Math.min(o.jobs, o.schedules));
  if (jobs === 1) {
    const bug = o.bug ? findBug(o.bug) : undefined;
    return runMany({ ...o, ...(bug ? { bug } : {}) } as RunOptions);
  }
  const t0 = process.hrtime.bigint();
  let done = 0;
  const parts = await Promise.all(
    Array.from({ length: jobs }, (_, j) =>
      new Promise<Summary>((resolve, reject) => {
        const child = fork(__filename, ['--sim-worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const task: WorkerTask = { seed: o.seed, schedules: o.schedules, faults: o.faults, coreShare: o.coreShare, first: j, stride: jobs,
          ...(o.hosts ? { hosts: o.hosts } : {}), ...(o.bug ? { bug: o.bug } : {}), ...(o.stopOnViolation ? { stopOnViolation: true } : {}) };
        let result: Summary | undefined;
        child.on('message', (m: { progress?: number; summary?: Summary }) => {
          if (m.progress) {
            done += m.progress;
            o.progress?.(done, o.schedules);
          }
          if (m.summary) result = m.summary;
        });
        child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`sim worker ${j} exited with ${code}`))));
        child.send(task);
      }),
    ),
  );
  const sum: Summary = { schedules: 0, leaseSchedules: 0, coreSchedules: 0, faultsInjected: 0, grants: 0, requests: 0, steps: 0, simSeconds: 0, wallMs: 0, violations: [] };
  for (const p of parts) {
    sum.schedules += p.schedules;
    sum.leaseSchedules += p.leaseSchedules;
    sum.coreSchedules += p.coreSchedules;
    sum.faultsInjected += p.faultsInjected;
    sum.grants += p.grants;
    sum.requests += p.requests;
    sum.steps += p.steps;
    sum.simSeconds += p.simSeconds;
    sum.violations.push(...p.violations);
  }
  sum.wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return sum;
}

if (require.main === module && process.argv.includes('--sim-worker')) {
  // The parent went away (killed, interrupted): stop instead of running on as an orphan.
  let finished = false;
  process.once('disconnect', () => {
    if (!finished) process.exit(1);
  });
  process.once('message', (t: WorkerTask) => {
    void (async () => {
      const bug = t.bug ? findBug(t.bug) : undefined;
      let last = 0;
      const sum = await runMany({
        seed: t.seed, schedules: t.schedules, faults: t.faults, coreShare: t.coreShare, first: t.first, stride: t.stride,
        ...(t.hosts ? { hosts: t.hosts } : {}), ...(bug ? { bug } : {}), ...(t.stopOnViolation ? { stopOnViolation: true } : {}),
        progress: (d) => {
          if (d - last >= 20) {
            process.send?.({ progress: d - last });
            last = d;
          }
        },
      });
      finished = true;
      process.send?.({ progress: sum.schedules - last, summary: { ...sum, firstFailure: undefined } });
      process.disconnect?.();
    })();
  });
}
