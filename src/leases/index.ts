/**
 * Native sanlock-format leases. See docs/leases.md.
 *
 * The daemon's sanlock lock manager uses:
 *   initLockspace / initResource            format lease areas (byte-identical to sanlock)
 *   Lockspace                               host_id: acquire, renewal loop, release, hostLive()
 *   acquireResource / releaseResource / convertResource   ex/sh resource leases
 *   readResourceOwners / requestResource    holders, and asking a holder to give up
 *   findFreeLeaseSlot                       lvmlockd's free LV lease slot scan
 */
export * from './errors';
export * from './sizes';
export * from './timeouts';
export { LeaseBugHooks } from './hooks';
export { Random, SeededRandom } from './random';
export {
  AcquireHostIdOptions,
  HostStatus,
  InitLockspaceOptions,
  Lockspace,
  LockspaceOptions,
  LockspaceState,
  ResumeOutcome,
  initLockspace,
  readDeltaLeader,
  readLeaseSizes,
} from './delta-lease';
export {
  AcquireOptions,
  InitResourceOptions,
  LeaseMode,
  PaxosHost,
  ResourceLease,
  ResourceRef,
  acquireResource,
  convertResource,
  directHost,
  initResource,
  paxosHostFor,
  readRequest,
  readResourceLeader,
  readOwnHold,
  readResourceOwners,
  releaseResource,
  releaseResourceDirect,
  requestResource,
  requestWantsRelease,
} from './paxos-lease';
export { GL_LOCK_BEGIN, LV_LOCK_BEGIN, LV_UNUSED_NAME, VG_LOCK_BEGIN, directDump, findFreeLeaseSlot, formatLeader } from './direct';
export { LeaderRecord, PaxosDblock, ModeBlock, RequestRecord, REQ_FORCE, REQ_GRACEFUL, nameString } from './ondisk';
