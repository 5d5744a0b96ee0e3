// The host watchdog behind a sanlock lockspace, as the sanlock daemon arms it
// through wdmd: before a lockspace may grant leases, the watchdog is told that
// our delta lease is good until last_success + id_renewal_fail_seconds; every
// renewal moves that forward. If renewals stop and the lockspace is not left
// cleanly (all leases released), the watchdog resets the host within
// watchdog_fire_timeout of that time, which is before host_dead, when other
// hosts may take our leases.

import type { Timeouts } from '../../leases/timeouts';

/** One lockspace's registration with the watchdog. */
export interface WatchdogConnection {
  /** Seconds between the watchdog daemon's checks of its clients. */
  readonly testInterval: number;
  /** Seconds the device runs after its last keepalive before it resets the host. */
  readonly fireTimeout: number;
  /** Our delta lease is good until `expire` (monotonic seconds); errors are logged. */
  testLive(renewal: number, expire: number): void;
  /** The lockspace was left cleanly, or its kill path completed: never reset for it. */
  disarm(): Promise<void>;
  /** Close without having armed (the join failed). */
  close(): Promise<void>;
}

export interface WatchdogProvider {
  /** What the daemon runs with, for logs and errors. */
  readonly describe: string;
  /** Why connect() returns null, for the warning logged then. */
  readonly absentReason: string;
  /**
   * Register one lockspace. Null: no watchdog in use (disabled, or `auto`
   * without a watchdog daemon). Throws when a watchdog must be used and cannot.
   */
  connect(name: string, fireTimeout: number): Promise<WatchdogConnection | null>;
}

/**
 * Why these timeouts cannot work with this watchdog, or null. wdmd counts a
 * client failed one test interval before its expire time, so each renewal
 * must land more than a test interval before the previous one expires;
 * otherwise the host is reset while its lease is healthy.
 */
export function watchdogTimeoutProblem(t: Timeouts, wd: Pick<WatchdogConnection, 'testInterval' | 'fireTimeout'>): string | null {
  if (wd.fireTimeout !== t.watchdogFireTimeout) {
    return `the watchdog fires after ${wd.fireTimeout} s, the lockspace needs ${t.watchdogFireTimeout} s (as every host of the lockspace assumes)`;
  }
  const margin = t.idRenewalFailSeconds - t.idRenewalSeconds;
  if (margin <= wd.testInterval) {
    const marginPerIo = margin / t.ioTimeout; // both timeouts are multiples of io_timeout
    return `io_timeout ${t.ioTimeout} s is too small for the watchdog: renewals every ${t.idRenewalSeconds} s expire after ${t.idRenewalFailSeconds} s, ` +
      `and the watchdog counts a lease failed ${wd.testInterval} s before it expires (use -o ${Math.floor(wd.testInterval / marginPerIo) + 1} or more)`;
  }
  return null;
}

/** The expire time the watchdog is given after a renewal at `lastSuccess`. */
export function watchdogExpire(t: Timeouts, lastSuccess: number): number {
  return lastSuccess + t.idRenewalFailSeconds;
}
