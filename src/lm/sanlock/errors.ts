// Lease-engine errors → lvmlockd's results, as the C lvmlockd maps sanlock's,
// with one deliberate difference: lease I/O errors give -ELOCKIO, which
// lm_lock_sanlock of 2.03.16 computes and then discards (it returns -ELMERR
// for every error past its specific checks). lvm's commands have handling
// for ELOCKIO; see docs/upstream-tests.md, "What the C daemon does".

import { E } from '../../core/constants';
import * as L from '../../leases';

/** Map a lease-engine error of an acquire/convert to lvmlockd's result (2.03.16 commands). */
export function mapAcquireError(e: unknown, mode: 'sh' | 'ex'): { rv: number; retry: boolean } {
  if (!(e instanceof L.LeaseError)) return { rv: -E.LMERR, retry: false };
  switch (e.rv) {
    case L.SANLK.EAGAIN: // live SH holders block EX
      return { rv: -E.AGAIN, retry: false };
    case L.SANLK.ACQUIRE_IDLIVE:
    case L.SANLK.ACQUIRE_OWNED:
    case L.SANLK.ACQUIRE_OTHER:
      return { rv: -E.AGAIN, retry: mode === 'sh' };
    case L.SANLK.ACQUIRE_SHRETRY:
      return { rv: -E.AGAIN, retry: true };
    case L.SANLK.ACQUIRE_OWNED_RETRY:
    case L.SANLK.DBLOCK_LVER:
    case L.SANLK.DBLOCK_MBAL:
      return { rv: -E.AGAIN, retry: false };
    // lvmlockd 2.03.16 reports a sanlock i/o timeout as -EAGAIN ("locked by other host");
    // -EIOTIMEOUT exists only in newer lvm, whose commands 2.03.16 cannot decode.
    case L.SANLK.AIO_TIMEOUT:
      return { rv: -E.AGAIN, retry: false };
    case L.SANLK.EIO:
    case L.SANLK.LEADER_READ:
    case L.SANLK.LEADER_WRITE:
    case L.SANLK.DBLOCK_READ:
    case L.SANLK.DBLOCK_WRITE:
      return { rv: -E.LOCKIO, retry: false };
    default:
      return { rv: -E.LMERR, retry: false };
  }
}

/** A lease-engine error's sanlock result, -ELMERR for anything else. */
export function leaseRv(e: unknown): number {
  if (e instanceof L.LeaseError) return e.rv;
  return -E.LMERR;
}
