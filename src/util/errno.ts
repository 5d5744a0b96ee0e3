// The one table of Linux errno values (asm-generic numbering, as on x86_64 and
// arm64) for the daemon, its lock managers and its tools. Replies to lvm carry
// these negated; lvmlockd's own result codes (-210 and beyond) and the subset
// of errno names the daemon logs are in core/constants.ts (`E`), built from
// this table. Pure data: no I/O.

export const Errno = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14,
  EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, EMFILE: 24, ENOSPC: 28, ERANGE: 34, ENOLCK: 37,
  ENOTEMPTY: 39, EUNATCH: 49, EXFULL: 54, ETIME: 62, EPROTO: 71, ELIBACC: 79, EMSGSIZE: 90,
  EPROTONOSUPPORT: 93, EADDRINUSE: 98, ECONNRESET: 104, ENOBUFS: 105, ETIMEDOUT: 110,
  ECONNREFUSED: 111, EALREADY: 114, ESTALE: 116, ECANCELED: 125,
} as const;

export type ErrnoName = keyof typeof Errno;

/**
 * A reverse lookup over the given names of the table: number → name. Each
 * caller names the errnos it prints, so that a value it did not name before
 * keeps the caller's own fallback text.
 */
export function errnoNames(names: readonly ErrnoName[]): ReadonlyMap<number, ErrnoName> {
  return new Map(names.map((n) => [Errno[n], n] as const));
}
