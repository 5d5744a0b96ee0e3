// What the dlm lock manager needs from the kernel DLM (through libdlm) and from
// dlm_controld (through libdlmcontrol), as an interface: the daemon binds it to
// the real libraries (libdlm.ts), tests and the simulator to models. Every call
// that may wait for the cluster is async; the values and flags are libdlm's.

/** libdlm lock modes (LKM_*): lvmlockd uses NL, PR (sh) and EX (ex). */
export const LKM = { NL: 0, PR: 3, EX: 5 } as const;

/** libdlm lock flags (LKF_*) that lvmlockd uses. */
export const LKF = {
  NOQUEUE: 0x1,
  CONVERT: 0x4,
  VALBLK: 0x8,
  PERSISTENT: 0x80,
  EXPEDITE: 0x400,
  ORPHAN: 0x4000,
} as const;

/** dlm_lksb.sb_flags bits. */
export const SBF = { DEMOTED: 0x1, VALNOTVALID: 0x2, ALTMODE: 0x4 } as const;

/** dlm_new_lockspace flag: fail with EEXIST when the lockspace already exists here. */
export const DLM_LSFL_NEWEXCL = 0x8;
export const DLM_LVB_LEN = 32;

/** dlmc_run_start / dlmc_run_check flags and status bits. */
export const DLMC = {
  RUN_START_NODE_NONE: 0x1,
  RUN_CHECK_CLEAR: 0x1,
  RUN_STATUS_WAITING: 0x1,
  RUN_STATUS_DONE: 0x2,
  RUN_STATUS_FAILED: 0x4,
} as const;

/**
 * One lock's status block (struct dlm_lksb) and its lock value block. The
 * kernel keeps the block's address between calls, so it lives as long as the
 * lock: from the first (NL) request until the unlock.
 */
export interface LockBlock {
  /** sb_status after the last call: 0, or a positive errno (EAGAIN: not granted). */
  readonly status: number;
  /** The lock id (sb_lkid); 0 before the first request. */
  readonly lkid: number;
  /** sb_flags (SBF_*). */
  readonly sbFlags: number;
  /** The 32-byte LVB the kernel reads on VALBLK requests and writes on grants. */
  readonly lvb: Buffer;
  free(): void;
}

/** A C-style result: rv < 0 with the call's errno, or rv >= 0. */
export interface CallResult { rv: number; errno: number }

export interface DlmLockspaceHandle { readonly name: string }

export interface DlmKernel {
  /** dlm_kernel_version; null when the dlm control device cannot be opened. */
  kernelVersion(): Promise<{ major: number; minor: number; patch: number } | null>;
  newLockBlock(): LockBlock;
  /** dlm_new_lockspace(name, 0600, flags). */
  newLockspace(name: string, flags: number): Promise<DlmLockspaceHandle | CallResult>;
  /** dlm_open_lockspace: an existing lockspace (kept by the kernel after our previous instance). */
  openLockspace(name: string): Promise<DlmLockspaceHandle | CallResult>;
  /** dlm_release_lockspace(name, handle, force). */
  releaseLockspace(ls: DlmLockspaceHandle, force: boolean): Promise<CallResult>;
  /** dlm_ls_lock_wait; the result is in the block (status, lkid, flags, LVB). */
  lockWait(ls: DlmLockspaceHandle, mode: number, lk: LockBlock, flags: number, resName: string): Promise<CallResult>;
  /** dlm_ls_unlock_wait of the block's lock. */
  unlockWait(ls: DlmLockspaceHandle, lk: LockBlock, flags: number): Promise<CallResult>;
  /**
   * dlm_ls_lockx with LKF_ORPHAN: take over an orphan lock a previous daemon
   * left (errno ENOENT: none; EAGAIN: an orphan in another mode).
   */
  adoptOrphan(ls: DlmLockspaceHandle, mode: number, lk: LockBlock, flags: number, resName: string): Promise<CallResult>;
  /** dlm_ls_purge(ls, nodeid, pid): release the orphans of that node (pid 0: all). */
  purge(ls: DlmLockspaceHandle, nodeid: number, pid: number): Promise<CallResult>;
}

export interface DlmControl {
  /** dlmc_run_start: run a command on the other nodes' dlm_controld; returns the run's uuid. */
  runStart(command: string, nodeid: number, flags: number): Promise<{ rv: number; uuid: string }>;
  /** dlmc_run_check: status bits (DLMC.RUN_STATUS_*) of a started run. */
  runCheck(uuid: string, waitSec: number, flags: number): Promise<{ rv: number; status: number }>;
}

/** The configfs files dlm_controld writes (/sys/kernel/config/dlm/cluster/...). */
export interface DlmConfigfs {
  /** File contents, or an errno (negative) when it cannot be read. */
  readFile(path: string): string | number;
  /** Entry names, or an errno (negative) when the directory cannot be read. */
  readDir(path: string): string[] | number;
}
