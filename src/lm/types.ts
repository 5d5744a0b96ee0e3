// The lock-manager boundary. The core decides *what* to lock and in which order;
// a lock manager (test, sanlock, dlm, idm) only talks to its backend. Every call
// that may touch a disk, a kernel or a network is async; everything else is not.

import type { LmType, Mode, ResourceType } from '../core/constants';

/** The 8-byte lock value block lvmlockd keeps on GL and VG locks. */
export interface ValueBlock {
  version: number;   // 0x0101 once written
  flags: number;     // VBF_REMOVED
  rVersion: number;  // VG seqno or GL change counter
}

/** Who holds a lock that we could not get (sanlock can tell; dlm cannot). */
export interface LockOwner {
  hostId: number;
  generation: number;
  timestamp: number;
  state: string;
  name: string;
}

export interface LockResult {
  /** 0 or a negative errno / lvmlockd error. */
  rv: number;
  vb?: ValueBlock;
  /** The manager says a retry may succeed (sanlock shared-lease transients). */
  retry?: boolean;
  owner?: LockOwner;
}

/** What the manager is told about a resource. Owned by the core; read-only here. */
export interface ResourceView {
  readonly name: string;
  readonly type: ResourceType;
  /** The current lock mode held on this host (before the call). */
  readonly mode: Mode;
  readonly lvArgs: string;
  readonly useValueBlock: boolean;
  /** Test mode only: a lock injected as held by another host. */
  readonly testRemote: 'ex' | 'sh' | null;
}

export interface LockspaceView {
  readonly name: string;      // lvm_<vg> or lvm_global
  readonly vgName: string;
  readonly vgUuid: string;
  readonly vgArgs: string;
  readonly hostId: number;
}

/** Global-lock facts that managers and the core both read and write. */
export interface GlobalLockState {
  /** Lockspace that holds the enabled sanlock GL, '' if none known. */
  sanlockGlLockspace: string;
  useSanlock: boolean;
  useDlm: boolean;
  useIdm: boolean;
}

export interface JoinOptions { adoptOnly: boolean; adoptOk: boolean; nodelay: boolean }

export interface PrepareResult { rv: number; prevGeneration?: number }

/** One lockspace as the manager sees it; created by the core on start_vg. */
export interface ManagedLockspace {
  prepare(opts: { repair: boolean }): Promise<PrepareResult>;
  join(opts: JoinOptions): Promise<number>;
  leave(opts: { freeVg: boolean }): Promise<number>;
  lock(res: ResourceView, mode: 'sh' | 'ex', opts: { adoptOnly: boolean; adoptOk: boolean; repair: boolean }): Promise<LockResult>;
  convert(res: ResourceView, mode: 'sh' | 'ex', rVersion: number): Promise<number>;
  unlock(res: ResourceView, rVersion: number, opts: { freeVg: boolean }): Promise<number>;
  /** The core no longer tracks this resource; drop cached state. */
  forget(resName: string): void;
  /**
   * After the startup adoption: release the leases this host's previous
   * daemon instance held here that were not adopted (sanlock "orphans"), so
   * other hosts can take them. Returns how many were released, or < 0.
   */
  purgeOrphans(): Promise<number>;
  /** > 0: other hosts are in the lockspace; 0: none; < 0 error. */
  otherHosts(notify: boolean): Promise<{ rv: number; hostsUnknown: boolean }>;
  freeLv(res: ResourceView): Promise<number>;
  findFreeLock(lvSizeBytes: bigint): Promise<number>;
  /** sanlock: whether the GL lease in this lockspace is enabled. */
  readonly glEnabled: boolean;
  /** sanlock: re-read the GL lease state (used to clear duplicate-GL warnings). */
  refreshGlEnabled(): Promise<boolean>;
  setGlEnabled(enable: boolean): Promise<number>;
  exDisableGl(): Promise<number>;
  readonly generation: number;
  readonly hostId: number;
  /** Health figures for metrics, where the manager has them (sanlock: delta lease renewals, other hosts). */
  stats?(): LockspaceStats;
}

export interface LockspaceStats {
  /** Seconds since our last successful lease renewal; null before the first. */
  renewalAgeSeconds: number | null;
  /** Duration of the last successful renewal (its disk I/O), ms. */
  renewalLastMs: number | null;
  renewals: number;
  renewalFailures: number;
  /** Other hosts seen holding a host_id, by liveness. */
  hostsLive: number;
  hostsDead: number;
}

export interface InitVgRequest {
  lsName: string; vgName: string; flags: number; vgArgs: string; alignMb: number; otherArgs: string;
}
export interface InitLvRequest {
  lsName: string; vgName: string; lvUuid: string; vgArgs: string; prevArgs: string;
  /** The running lockspace, when the VG is started here. */
  lockspace: ManagedLockspace | null;
}

export interface LockManager {
  readonly type: LmType;
  /** A manager that is running here (dlm_controld, sanlock daemon or our own engine). */
  isRunning(): boolean;
  initVg(req: InitVgRequest): Promise<{ rv: number; vgArgs: string }>;
  initLv(req: InitLvRequest): Promise<{ rv: number; lvArgs: string }>;
  renameVg(lsName: string, vgName: string, vgArgs: string): Promise<number>;
  createLockspace(view: LockspaceView, events: LockspaceEvents): ManagedLockspace;
}

/** What a manager reports about a joined lockspace on its own initiative. */
export interface LockspaceEvents {
  /**
   * The manager can no longer keep this host's locks valid (sanlock: the delta
   * lease could not be renewed in time). Other hosts may be granted our leases
   * once they expire, so the host must stop using the VG now.
   */
  failed(reason: string): void;
}
