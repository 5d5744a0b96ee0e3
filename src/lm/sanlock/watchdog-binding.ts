// One sanlock lockspace's registration with the host watchdog (the daemon:
// wdmd): connected before the delta lease is acquired, fed on every renewal,
// disarmed once every lease of the lockspace is given up.

import type * as L from '../../leases';
import { SANLK } from '../../leases/errors';
import { watchdogExpire, watchdogTimeoutProblem, type WatchdogConnection, type WatchdogProvider } from './watchdog';

export class WatchdogBinding {
  private wd: WatchdogConnection | null = null;

  constructor(
    /** The lockspace's name, for the log lines. */
    private readonly name: () => string,
    private readonly log: { debug(line: string): void; error(line: string): void },
  ) {}

  /** Registered with a watchdog (drop() has something to do). */
  get connected(): boolean { return this.wd !== null; }

  /**
   * Register with the host watchdog before the delta lease is acquired (fail
   * fast, touch no disk), as sanlock's add_lockspace does. 0, or < 0 when a
   * required watchdog cannot be used or does not fit the timeouts.
   */
  async connect(ls: L.Lockspace, watchdog: WatchdogProvider, hostId: number): Promise<number> {
    const d = this.log;
    const name = this.name();
    let wd: WatchdogConnection | null;
    try {
      wd = await watchdog.connect(`lvmlockd_${name}:${hostId}`, ls.timeouts.watchdogFireTimeout);
    } catch (e) {
      d.error(`S ${name} add_lockspace_san watchdog ${watchdog.describe}: ${(e as Error).message}`);
      return SANLK.WD_ERROR;
    }
    if (!wd) {
      d.error(`S ${name} add_lockspace_san WARNING: no watchdog (${watchdog.absentReason}); ` +
        'if this daemon hangs, other hosts may take its leases while its LVs are in use');
      return 0;
    }
    const problem = watchdogTimeoutProblem(ls.timeouts, wd);
    if (problem) {
      d.error(`S ${name} add_lockspace_san watchdog: ${problem}`);
      await wd.close();
      return SANLK.WD_ERROR;
    }
    this.wd = wd;
    return 0;
  }

  /**
   * Unregister from the watchdog: `armed` after the lockspace was in use and
   * all its leases are given up (clean leave, or the kill path completed);
   * otherwise only close the connection of a join that failed. Callers test
   * `connected` first so that without a watchdog no await is added to join and
   * leave: the simulator, which passes none, then replays its schedules
   * exactly as before.
   */
  async drop(armed: boolean): Promise<void> {
    const wd = this.wd;
    this.wd = null;
    if (!wd) return;
    if (armed) {
      this.log.debug(`S ${this.name()} watchdog disarmed`);
      await wd.disarm();
    } else {
      await wd.close();
    }
  }

  /** Tell the watchdog our delta lease is good until a renewal at `lastSuccess` expires. */
  feed(ls: L.Lockspace, lastSuccess: number): number | null {
    if (!this.wd) return null;
    const expire = watchdogExpire(ls.timeouts, lastSuccess);
    this.wd.testLive(lastSuccess, expire);
    return expire;
  }
}
