/**
 * Every lease timeout derives from io_timeout, exactly as sanlock's
 * timeouts.c does, plus watchdog_fire_timeout (60 s in sanlock; all hosts
 * sharing a lockspace must use the same value).
 */
export const DEFAULT_IO_TIMEOUT = 10;
export const DEFAULT_WATCHDOG_FIRE_TIMEOUT = 60;
/** I/O timeout (seconds) of the writes that format a lease area (sanlock: write_init_io_timeout). */
export const WRITE_INIT_IO_TIMEOUT = 60;

/** Every field is in seconds. */
export interface Timeouts {
  ioTimeout: number;
  watchdogFireTimeout: number;
  idRenewalSeconds: number;
  idRenewalWarnSeconds: number;
  idRenewalFailSeconds: number;
  hostDeadSeconds: number;
  deltaLargeDelay: number;
  deltaShortDelay: number;
  deltaAcquireHeldMin: number;
  deltaAcquireHeldMax: number;
  deltaAcquireFreeMin: number;
  deltaAcquireFreeMax: number;
  deltaRenewMax: number;
  paxosAcquireHeldMin: number;
  paxosAcquireHeldMax: number;
  paxosAcquireFreeMin: number;
  paxosAcquireFreeMax: number;
  setBitmapSeconds: number;
  requestFinishSeconds: number;
}

export function calcHostDeadSeconds(io: number, watchdogFire = DEFAULT_WATCHDOG_FIRE_TIMEOUT): number {
  return 8 * io + watchdogFire;
}
export function calcIdRenewalSeconds(io: number): number {
  return 2 * io;
}
export function calcIdRenewalFailSeconds(io: number): number {
  return 8 * io;
}
export function calcIdRenewalWarnSeconds(io: number): number {
  return 6 * io;
}
/** How long a delta acquire waits on a record another instance may hold (before max with host_dead). */
export function calcDeltaLargeDelaySeconds(io: number): number {
  return calcIdRenewalSeconds(io) + 6 * io;
}
export function calcSetBitmapSeconds(io: number, override = 0): number {
  return override > 0 ? override : 6 * io;
}

export function deriveTimeouts(
  ioTimeout = DEFAULT_IO_TIMEOUT,
  watchdogFireTimeout = DEFAULT_WATCHDOG_FIRE_TIMEOUT,
  setBitmapOverride = 0,
): Timeouts {
  if (!Number.isInteger(ioTimeout) || ioTimeout <= 0 || ioTimeout > 255) {
    throw new RangeError(`io_timeout must be an integer 1..255 seconds, got ${ioTimeout}`);
  }
  const io = ioTimeout;
  const idRenewalSeconds = calcIdRenewalSeconds(io);
  const idRenewalFailSeconds = calcIdRenewalFailSeconds(io);
  const hostDeadSeconds = calcHostDeadSeconds(io, watchdogFireTimeout);
  const deltaLargeDelay = calcDeltaLargeDelaySeconds(io);
  const deltaShortDelay = 2 * io;
  const maxDelay = Math.max(hostDeadSeconds, deltaLargeDelay);
  return {
    ioTimeout: io,
    watchdogFireTimeout,
    idRenewalSeconds,
    idRenewalWarnSeconds: calcIdRenewalWarnSeconds(io),
    idRenewalFailSeconds,
    hostDeadSeconds,
    deltaLargeDelay,
    deltaShortDelay,
    deltaAcquireHeldMin: maxDelay,
    deltaAcquireHeldMax: maxDelay + deltaShortDelay + 4 * io,
    deltaAcquireFreeMin: deltaShortDelay,
    deltaAcquireFreeMax: deltaShortDelay + 3 * io,
    deltaRenewMax: 2 * io,
    paxosAcquireHeldMin: hostDeadSeconds,
    paxosAcquireHeldMax: hostDeadSeconds + 7 * io,
    paxosAcquireFreeMin: 0,
    paxosAcquireFreeMax: 6 * io,
    setBitmapSeconds: calcSetBitmapSeconds(io, setBitmapOverride),
    requestFinishSeconds: 3 * idRenewalSeconds,
  };
}
