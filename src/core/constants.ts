// Numbers and names shared with LVM2 on the wire. Values must match lvmlockd's
// (op numbers are echoed in replies; errno values are what commands test for).

import { Errno } from '../util/errno';

export const Op = {
  hello: 1, quit: 2, init: 3, free: 4, start: 5, stop: 6, lock: 7, update: 8, close: 9,
  enable: 10, disable: 11, start_wait: 12, stop_all: 13, dump_info: 14, dump_log: 15,
  rename_before: 16, rename_final: 17, running_lm: 18, find_free_lock: 19, kill_vg: 20,
  drop_vg: 21, busy: 22, query_lock: 23, refresh_lv: 24, vg_status: 25, fence: 26,
  fence_result: 27, setlockargs_before: 28, setlockargs_final: 29, set_remote_lv_lock: 30,
  // Ours, not C's (numbered far above its LD_OP_*): text for `lvmlockctl --metrics`/`--holders`,
  // sent on the dump socket as `info` is. A C daemon refuses these requests as unknown.
  dump_metrics: 100, dump_holders: 101,
} as const;
// The op names are lvmlockd's own (op_str): the debug log and `info` print them as they are.
export type OpName = keyof typeof Op;

export type ResourceType = 'gl' | 'vg' | 'lv';
export type Mode = 'un' | 'nl' | 'sh' | 'ex' | 'iv';
export type LmType = 'none' | 'dlm' | 'sanlock' | 'idm';
export const LM_NUMBER: Record<LmType, number> = { none: 0, dlm: 2, sanlock: 3, idm: 4 };
/** The lock managers, in the order lvmlockd lists them in its messages. */
export const LM_TYPES: readonly Exclude<LmType, 'none'>[] = ['sanlock', 'dlm', 'idm'];
/** lvmlockd's preference when several running managers could serve the global lock. */
export const GL_PREFERENCE: readonly Exclude<LmType, 'none'>[] = ['dlm', 'sanlock', 'idm'];

/**
 * Request name → operation and resource type, as lvm commands and lvmlockctl
 * spell them. A Map: a client's name must not find what every object inherits
 * (`constructor`, `toString`, `__proto__`).
 */
export const REQUESTS: ReadonlyMap<string, { op: OpName; rt?: ResourceType }> = new Map(Object.entries({
  hello: { op: 'hello' },
  quit: { op: 'quit' },
  info: { op: 'dump_info' },
  dump: { op: 'dump_log' },
  metrics: { op: 'dump_metrics' },
  holders: { op: 'dump_holders', rt: 'vg' },
  init_vg: { op: 'init', rt: 'vg' },
  init_lv: { op: 'init', rt: 'lv' },
  free_vg: { op: 'free', rt: 'vg' },
  busy_vg: { op: 'busy', rt: 'vg' },
  free_lv: { op: 'free', rt: 'lv' },
  start_vg: { op: 'start', rt: 'vg' },
  stop_vg: { op: 'stop', rt: 'vg' },
  start_wait: { op: 'start_wait' },
  vg_status: { op: 'vg_status', rt: 'vg' },
  stop_all: { op: 'stop_all' },
  lock_gl: { op: 'lock', rt: 'gl' },
  lock_vg: { op: 'lock', rt: 'vg' },
  lock_lv: { op: 'lock', rt: 'lv' },
  vg_update: { op: 'update', rt: 'vg' },
  enable_gl: { op: 'enable', rt: 'gl' },
  disable_gl: { op: 'disable', rt: 'gl' },
  rename_vg_before: { op: 'rename_before', rt: 'vg' },
  rename_vg_final: { op: 'rename_final', rt: 'vg' },
  running_lm: { op: 'running_lm' },
  query_lock_vg: { op: 'query_lock', rt: 'vg' },
  query_lock_lv: { op: 'query_lock', rt: 'lv' },
  set_remote_lv_lock: { op: 'set_remote_lv_lock', rt: 'lv' },
  find_free_lock: { op: 'find_free_lock', rt: 'vg' },
  kill_vg: { op: 'kill_vg', rt: 'vg' },
  drop_vg: { op: 'drop_vg', rt: 'vg' },
  refresh_lv: { op: 'refresh_lv', rt: 'lv' },
  setlockargs_vg_before: { op: 'setlockargs_before', rt: 'vg' },
  setlockargs_vg_final: { op: 'setlockargs_final', rt: 'vg' },
}));

/**
 * The results the daemon replies with (negated): the Linux errno values it
 * uses, from the one errno table, and lvmlockd's own codes. The logged result
 * names (errnoName) are derived from this table, so an entry added here
 * changes the debug log and the metrics: add errno values to util/errno.ts.
 */
export const E = {
  PERM: Errno.EPERM, NOENT: Errno.ENOENT, IO: Errno.EIO, AGAIN: Errno.EAGAIN, NOMEM: Errno.ENOMEM,
  FAULT: Errno.EFAULT, BUSY: Errno.EBUSY, EXIST: Errno.EEXIST, INVAL: Errno.EINVAL, NOSPC: Errno.ENOSPC,
  NOLCK: Errno.ENOLCK, NOTEMPTY: Errno.ENOTEMPTY, UNATCH: Errno.EUNATCH, XFULL: Errno.EXFULL,
  TIME: Errno.ETIME, MSGSIZE: Errno.EMSGSIZE, PROTONOSUPPORT: Errno.EPROTONOSUPPORT,
  ALREADY: Errno.EALREADY, STALE: Errno.ESTALE, CANCELED: Errno.ECANCELED,
  NOLS: 210, STARTING: 211, ARGS: 212, HOSTID: 213, MANAGER: 214, PREPARE: 215, LOCKD: 216,
  VGKILLED: 217, LOCKIO: 218, REMOVED: 219, DEVOPEN: 220, LMERR: 221, ORPHAN: 222,
  ADOPT_NONE: 223, ADOPT_RETRY: 224, IOTIMEOUT: 225, LOCKREPAIR: 226,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(E).map(([k, v]) => [v, 'E' + k]),
);
export function errnoName(rv: number): string {
  return ERRNO_NAMES[Math.abs(rv)] ?? String(rv);
}

/** Action flags (lvmlockd's LD_AF_*); shown in `info` output as hex. */
export const AF = {
  PERSISTENT: 0x1, NO_CLIENT: 0x2, UNLOCK_CANCEL: 0x4, NEXT_VERSION: 0x8, WAIT: 0x10,
  FORCE: 0x20, EX_DISABLE: 0x40, ENABLE: 0x80, DISABLE: 0x100, SEARCH_LS: 0x200,
  WAIT_STARTING: 0x1000, DUP_GL_LS: 0x2000, ADOPT: 0x10000, WARN_GL_REMOVED: 0x20000,
  LV_LOCK: 0x40000, LV_UNLOCK: 0x80000, SH_EXISTS: 0x100000, ADOPT_ONLY: 0x200000,
  NODELAY: 0x400000, REPAIR: 0x800000, NO_TIMEOUT: 0x1000000, HOSTS_UNKNOWN: 0x2000000,
} as const;

export const LOCK_PERSISTENT_FLAG = 0x1;
export const MAX_NAME = 64;
export const MAX_ARGS = 64;
export const DEFAULT_MAX_RETRIES = 4;
export const LOCK_RETRY_MS = 1000;
export const INTERNAL_CLIENT_ID = 0xffffffff;
export const LS_PREFIX = 'lvm_';
/** The global lock's own lockspace, for managers that do not keep it in a VG (dlm, idm). */
export const GL_LOCKSPACE = 'lvm_global';
export const R_NAME_GL = 'GLLK';
export const R_NAME_VG = 'VGLK';
export const VAL_BLK_VERSION = 0x0101;
export const VBF_REMOVED = 0x0001;

const OPTS_WORDS: ReadonlyArray<readonly [string, number]> = [
  ['persistent', AF.PERSISTENT], ['unlock_cancel', AF.UNLOCK_CANCEL],
  ['next_version', AF.NEXT_VERSION], ['wait', AF.WAIT], ['force', AF.FORCE],
  ['ex_disable', AF.EX_DISABLE], ['enable', AF.ENABLE], ['disable', AF.DISABLE],
  ['nodelay', AF.NODELAY], ['repair', AF.REPAIR],
];

/** Parses the `opts` words by substring, as lvmlockd does. */
export function parseOpts(str: string | undefined): number {
  // "none", what lvm sends most, holds none of the words
  if (!str || str === 'none') return 0;
  let flags = 0;
  for (const [w, f] of OPTS_WORDS) if (str.includes(w)) flags |= f;
  if (str.includes('adopt_only')) flags |= AF.ADOPT_ONLY;
  else if (str.includes('adopt')) flags |= AF.ADOPT;
  return flags;
}

// parseMode and parseLmType answer with their own literals, not the request's
// string of the same text: literals are interned, so the many later compares
// and keyed lookups of a mode or type are pointer compares.
export function parseMode(str: string | undefined): Mode {
  return str === 'ex' ? 'ex' : str === 'un' ? 'un' : str === 'sh' ? 'sh' : str === 'nl' ? 'nl' : 'iv';
}

/** `none`/absent → 'none'; an unknown name → null (lvmlockd's -2). */
export function parseLmType(str: string | undefined): LmType | null {
  if (str === undefined || str === 'none') return 'none';
  if (str === 'sanlock') return 'sanlock';
  if (str === 'dlm') return 'dlm';
  if (str === 'idm') return 'idm';
  return null;
}
