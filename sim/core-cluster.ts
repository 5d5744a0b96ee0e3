import type { Violation } from './lease-cluster';
export interface CoreRunResult { seed: number; violation: Violation | undefined; trace: string[]; stats: { steps: number; simMs: number; faults: number; requests: number } }
export async function runCoreSchedule(seed: number, _o: { hosts?: number | undefined }): Promise<CoreRunResult> {
  return { seed, violation: undefined, trace: [], stats: { steps: 0, simMs: 0, faults: 0, requests: 0 } };
}
