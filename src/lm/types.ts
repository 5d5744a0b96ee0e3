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
  /**
   * The lock manager lost the value block's content (dlm: DLM_SBF_VALNOTVALID,
   * the last writer died): whatever `vb` says, what it protects must be reread.
   */
  vbLost?: boolean;
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
  /**
   * The VG's PVs as the lvm command listed them with start_vg (IDM: the drives
   * of the VG lock). Owned by the core; a later start_vg replaces it.
   */
  readonly pvs?: readonly string[];
}

/**
 * Which lock manager serves the global lock (lvmlockd's gl_use_dlm /
 * gl_use_sanlock / gl_use_idm). The core decides and writes it; managers may
 * only read it.
 */
export interface GlobalLockChoice {
  readonly manager: LmType | null;
}

export interface LockOptions {
  adoptOnly: boolean;
  adoptOk: boolean;
  repair: boolean;
  /** The PVs the LV is on, as the lvm command listed them (IDM: the drives of the LV lock). */
  pvs?: readonly string[];
}

export interface JoinOptions { adoptOnly: boolean; adoptOk: boolean; nodelay: boolean }

export interface PrepareResult { rv: number; prevGeneration?: number }

/** One lockspace as the manager sees it; created by the core on start_vg. */
export interface ManagedLockspace {
  prepare(opts: { repair: boolean }): Promise<PrepareResult>;
  join(opts: JoinOptions): Promise<number>;
  leave(opts: { freeVg: boolean }): Promise<number>;
  lock(res: ResourceView, mode: 'sh' | 'ex', opts: LockOptions): Promise<LockResult>;
  convert(res: ResourceView, mode: 'sh' | 'ex', rVersion: number): Promise<number>;
  unlock(res: ResourceView, rVersion: number, opts: { freeVg: boolean }): Promise<number>;
  /** The core no longer tracks this resource; drop cached state. */
  forget(resName: string): void;
  /** > 0: other hosts are in the lockspace; 0: none; < 0 error. */
  otherHosts(notify: boolean): Promise<{ rv: number; hostsUnknown: boolean }>;
  readonly hostId: number;
  /** Present when this manager keeps the global lock inside VG lockspaces (sanlock). */
  readonly glInVg?: LockspaceGlobalLock;
  /** Present when each LV lock occupies an on-disk slot (sanlock leases). */
  readonly lockSlots?: LockSlots;
  /**
   * After the startup adoption: release the locks this host's previous daemon
   * instance held here that were not adopted ("orphans"), so other hosts can
   * take them. Returns how many were released, or < 0. Absent: nothing to do.
   */
  purgeOrphans?(): Promise<number>;
  /** Health figures for metrics, where the manager has them (sanlock: delta lease renewals, other hosts). */
  stats?(): LockspaceStats;
  /** Every lock held in the lockspace by any host, as the lock manager's storage shows it (sanlock: the lease area). */
  holders?(): Promise<DiskLock[]>;
}

export interface DiskHolder {
  hostId: number;
  generation: number;
  /** The name the host gave its delta lease ('' when unknown). */
  hostName: string;
  /** Its delta lease as this host's renewals judge it: LIVE, FAIL, DEAD, FREE or UNKNOWN. */
  state: string;
}

export interface DiskLock {
  /** GLLK, VGLK, or the LV's uuid. */
  resource: string;
  type: 'gl' | 'vg' | 'lv';
  mode: 'ex' | 'sh';
  /** The lease version (sanlock lver). */
  lver: number;
  holders: DiskHolder[];
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
  /** Our generation in the lockspace (sanlock: of our delta lease), when there is one. */
  generation?: number;
}

/** A VG lockspace that may hold the (enabled or disabled) global lock. */
export interface LockspaceGlobalLock {
  /** Whether the global lock in this lockspace is enabled. */
  readonly glEnabled: boolean;
  /** Re-read the global lock state (a search, or clearing duplicate-GL warnings). */
  refreshGlEnabled(): Promise<boolean>;
  setGlEnabled(enable: boolean): Promise<number>;
  exDisableGl(): Promise<number>;
}

/** LV locks kept in slots of an on-disk lock area. */
export interface LockSlots {
  /** Find (and remember) a free slot for a new LV lock. */
  findFreeLock(lvSizeBytes: bigint): Promise<number>;
  /** Give the slot of a removed LV back. */
  freeLv(res: ResourceView): Promise<number>;
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
  /** rename_final: the VG was renamed; the manager updates what carries the name. */
  renameVg(lsName: string, vgName: string, vgArgs: string): Promise<number>;
  createLockspace(view: LockspaceView, events: LockspaceEvents): ManagedLockspace;
  /**
   * How many leading characters of a lockspace name the manager keeps (sanlock
   * truncates to 48); two VGs whose names agree that far would share a
   * lockspace. Absent: the whole name.
   */
  readonly lockspaceNameLength?: number;
  /**
   * Present when the global lock lives in one of this manager's VG lockspaces
   * (sanlock). Absent: the manager's global lock has a lockspace of its own
   * (lvm_global), started with the first VG and stopped with the last.
   */
  readonly glInVg?: ManagerGlobalLock;
  /** The manager's own global lockspace is always joined with adopt_ok (dlm: it may outlive a daemon). */
  readonly adoptsGlobalLockspace?: boolean;
  /** The manager can continue lockspaces and adopt the LV locks a previous daemon instance recorded. */
  readonly adoptsLocks?: boolean;
  /**
   * The manager runs inside the daemon (our sanlock lease engine), so it is
   * always "running": it counts as running only when no external lock manager
   * (dlm_controld, sanlock daemon) runs, where lvmlockd would see just that one.
   */
  readonly embedded?: boolean;
  /** vgchange --setlockargs is possible for this manager's VGs. */
  readonly setsLockArgs?: boolean;
  /**
   * refresh_lv: make the other hosts reload the LV's device (lvchange --refresh)
   * after it grew while active there, and wait for their result. Absent: the
   * manager cannot run commands on other hosts (-EPROTONOSUPPORT).
   */
  refreshLv?(req: { lvUuid: string; path: string }): Promise<number>;
}

/** The manager-wide side of a global lock kept inside VG lockspaces. */
export interface ManagerGlobalLock {
  /** The lockspace that holds the enabled global lock, '' when none is known. */
  readonly glLockspace: string;
  /** A global-lock search found the enabled lock in this lockspace. */
  setGlLockspace(name: string): void;
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
