/**
 * `--inject-bug` names. Each breaks one safety rule on purpose; the quick run
 * must report a violation for every one of them (proof that the checker can
 * fail). Lease bugs are passed to the real lease code through the explicit
 * LeaseBugHooks object (src/leases/hooks.ts); the host-model bug breaks the
 * simulated daemon's kill path, and the DLM-model bug the recovery of the DLM
 * model (sim/dlm-model.ts). The IDM bugs break the emulated drives' firmware
 * (an instance of src/idm/firmware.ts, patched in sim/idm-model.ts) or the IDM
 * manager through the explicit IdmBugHooks object (src/lm/idm/idm-session.ts).
 * Production code never sees any of this.
 */
import type { LeaseBugHooks } from '../src/leases/hooks';

export interface BugSpec {
  name: string;
  description: string;
  /** Hooks passed to the real lease code. */
  hooks?: LeaseBugHooks;
  /** Host-model bug: the daemon ignores a failed lockspace (no kill path, watchdog not armed). */
  noKillPath?: boolean;
  /**
   * DLM-model bug, run at the core level with the real dlm manager: recovery keeps
   * a dead writer's stale LVB and reports it valid (no VALNOTVALID).
   */
  dlmHideLostLvb?: boolean;
  /** IDM bugs, run at the core level with the real IDM manager, ILM code and firmware model. */
  idm?: { breakLiveHolders?: boolean; noTimestampPlusOne?: boolean };
  /** Which fault profile finds it fastest (the quick run uses it); 'dlm', 'idm': core-level schedules with that manager. */
  profile: 'contention' | 'storage' | 'mixed' | 'dlm' | 'idm';
}

export const BUGS: readonly BugSpec[] = [
  {
    name: 'skip-paxos-read-phase',
    description: 'ballot phase 1 ignores the other hosts\' dblocks (no mbal abort, no adoption of an accepted value)',
    hooks: { skipPaxosReadPhase: true },
    profile: 'contention',
  },
  {
    name: 'ignore-owner-liveness',
    description: 'acquire treats a lease held by another host as free without checking the owner\'s delta lease',
    hooks: { ignoreOwnerLiveness: true },
    profile: 'contention',
  },
  {
    name: 'renew-without-timeout-check',
    description: 'the delta renewal loop counts a failed or timed-out renewal as a success (no id_renewal_fail expiry)',
    hooks: { renewWithoutTimeoutCheck: true },
    profile: 'storage',
  },
  {
    name: 'grant-without-ballot',
    description: 'acquire of a free lease writes the leader naming us without running Disk Paxos',
    hooks: { grantWithoutBallot: true },
    profile: 'contention',
  },
  {
    name: 'ignore-shared-holders',
    description: 'ex acquire and sh->ex convert ignore live SH holders',
    hooks: { ignoreSharedHolders: true },
    profile: 'contention',
  },
  {
    name: 'no-kill-path',
    description: 'the daemon ignores a failed lockspace: keeps its leases, no kill path, watchdog never armed',
    noKillPath: true,
    profile: 'storage',
  },
  {
    name: 'dlm-hide-lost-lvb',
    description: 'DLM recovery after a node that held the VG lock ex died keeps the stale LVB and reports it valid (no VALNOTVALID)',
    dlmHideLostLvb: true,
    profile: 'dlm',
  },
  {
    name: 'idm-break-live-holder',
    description: 'the IDM drive firmware lets BREAK take a mutex whose holders are still alive (not timed out)',
    idm: { breakLiveHolders: true },
    profile: 'idm',
  },
  {
    name: 'idm-no-timestamp-plus-one',
    description: 'lvmlockd writes its wall clock as the IDM LVB timestamp even when that is not past the last one (no "+1")',
    idm: { noTimestampPlusOne: true },
    profile: 'idm',
  },
];

export function findBug(name: string): BugSpec | undefined {
  return BUGS.find((b) => b.name === name);
}
