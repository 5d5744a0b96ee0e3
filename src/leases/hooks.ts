/**
 * Deliberate safety bugs, for the simulator's self-check only
 * (`npm run sim -- --inject-bug NAME`, see docs/simulator.md).
 *
 * A hooks object is passed explicitly to a Lockspace (LockspaceOptions.hooks)
 * and reaches the paxos code through PaxosHost.hooks. It is never global
 * state: production code passes no hooks, and with no hooks (or with every
 * field unset) the lease code behaves exactly as documented. Each field
 * breaks one safety rule that the simulator's invariant checker must then
 * catch, which proves the checker can fail.
 */
export interface LeaseBugHooks {
  /** Ballot phase 1: ignore the other hosts' dblocks (no abort on a higher mbal, no adoption of an accepted value). */
  skipPaxosReadPhase?: boolean;
  /** Treat a leader held by another host as free, without judging the owner's liveness from its delta lease. */
  ignoreOwnerLiveness?: boolean;
  /** Delta renewal loop: count a renewal whose I/O failed or timed out as a success (no id_renewal_fail expiry). */
  renewWithoutTimeoutCheck?: boolean;
  /** Acquire of a free lease: write the leader naming us directly, without running a ballot. */
  grantWithoutBallot?: boolean;
  /** EX acquire and sh→ex convert: ignore live SH holders. */
  ignoreSharedHolders?: boolean;
}
