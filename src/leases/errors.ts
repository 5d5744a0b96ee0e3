import { Errno } from '../util/errno';

/**
 * Lease errors carry sanlock's numeric result code (rv) so callers — and the
 * lvmlockd layer that maps them to -EAGAIN etc. — can treat them the same
 * way as errors from the C daemon.
 */
export const SANLK = {
  OK: 1,
  ERROR: -201,
  AIO_TIMEOUT: -202,
  /** The watchdog (wdmd) could not be used for a lockspace. */
  WD_ERROR: -203,
  DBLOCK_READ: -210,
  DBLOCK_WRITE: -211,
  DBLOCK_LVER: -212,
  DBLOCK_MBAL: -213,
  DBLOCK_CHECKSUM: -214,
  LEADER_READ: -220,
  LEADER_WRITE: -221,
  LEADER_DIFF: -222,
  LEADER_MAGIC: -223,
  LEADER_VERSION: -224,
  LEADER_SECTORSIZE: -225,
  LEADER_LOCKSPACE: -226,
  LEADER_RESOURCE: -227,
  LEADER_NUMHOSTS: -228,
  LEADER_CHECKSUM: -229,
  ADDLS_SIZES: -230,
  ADDLS_INVALID_HOSTID: -231,
  ACQUIRE_LVER: -240,
  ACQUIRE_LOCKSPACE: -241,
  ACQUIRE_IDDISK: -242,
  ACQUIRE_IDLIVE: -243,
  ACQUIRE_OWNED: -244,
  ACQUIRE_OTHER: -245,
  ACQUIRE_SHRETRY: -246,
  ACQUIRE_OWNED_RETRY: -247,
  RELEASE_LVER: -250,
  RELEASE_OWNER: -251,
  RENEW_OWNER: -260,
  RENEW_DIFF: -261,
  HOSTID_BUSY: -262,
  REQUEST_MAGIC: -270,
  REQUEST_VERSION: -271,
  REQUEST_OLD: -272,
  REQUEST_LVER: -273,
  /** Linux errno values sanlock also returns (negated). */
  EAGAIN: -Errno.EAGAIN,
  EINVAL: -Errno.EINVAL,
  ENODEV: -Errno.ENODEV,
  EIO: -Errno.EIO,
  ETIMEDOUT: -Errno.ETIMEDOUT,
} as const;

export type SanlkCode = keyof typeof SANLK;

const NAMES = new Map<number, SanlkCode>();
for (const [k, v] of Object.entries(SANLK)) if (!NAMES.has(v)) NAMES.set(v, k as SanlkCode);

export function rvName(rv: number): string {
  const n = NAMES.get(rv);
  return n ? (rv < 0 && rv > -200 ? n : `SANLK_${n}`) : `rv ${rv}`;
}

/** Who holds a lease, as far as the leader record tells. */
export interface HolderInfo {
  hostId: number;
  generation: number;
  timestamp: number;
  lver: number;
  /** SH holders (host_id, generation) seen in mode blocks, when known. */
  sharedHolders?: Array<{ hostId: number; generation: number }>;
}

/**
 * The lease layer's errors, in the manner of undici's: a class per kind, each
 * with a `code` to branch on and the lower error as `cause` where one led to it.
 * LeaseError: a lease operation failed with sanlock's result `rv` (`code` is its
 * name); SizeError: a lease area's size or alignment is unusable. Disk errors
 * are io/disk.ts's DiskError (code: the errno name).
 */
export class LeaseError extends Error {
  readonly rv: number;
  readonly code: string;
  readonly holder: HolderInfo | undefined;
  constructor(rv: number, message: string, holder?: HolderInfo, options?: { cause?: unknown }) {
    super(`${message} (${rvName(rv)} ${rv})`, options);
    this.name = 'LeaseError';
    this.rv = rv;
    this.code = rvName(rv);
    this.holder = holder;
  }
}

export class SizeError extends Error {
  readonly code = 'ERR_LEASE_SIZE';
  constructor(message: string) {
    super(message);
    this.name = 'SizeError';
  }
}

export function isLeaseError(e: unknown, rv?: number): e is LeaseError {
  return e instanceof LeaseError && (rv === undefined || e.rv === rv);
}
