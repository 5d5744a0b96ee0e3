// A lock manager's lockspace as the core's lockspace loop calls it. A call
// that throws (a bug, or an error the manager did not turn into a result)
// counts as a failed call with lvmlockd's lock-manager error (-ELMERR) and is
// logged. lvmlockd's lm_* functions only ever return a result; an exception
// here would end the loop half-way: the request in hand and every queued one
// would get no answer, and the lockspace would never reach thread_done, which
// stop_all (lvmlockctl --stop-lockspaces) and freeing the lockspace wait for.

import { E } from './constants';
import type {
  JoinOptions, LockOptions, LockResult, LockSlots, LockspaceGlobalLock, ManagedLockspace, PrepareResult, ResourceView,
} from '../lm/types';

export type ReportThrow = (call: string, e: unknown) => void;

/** `fn`'s result, or `failed` (after report) when it throws or rejects. */
async function guard<T>(call: string, report: ReportThrow, failed: T, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    report(call, e);
    return failed;
  }
}

class GuardedGlobalLock implements LockspaceGlobalLock {
  constructor(private readonly gl: LockspaceGlobalLock, private readonly report: ReportThrow) {}
  get glEnabled(): boolean { return this.gl.glEnabled; }
  refreshGlEnabled(): Promise<boolean> {
    return guard('refresh_gl_enabled', this.report, this.gl.glEnabled, () => this.gl.refreshGlEnabled());
  }
  setGlEnabled(enable: boolean): Promise<number> {
    return guard(enable ? 'enable_gl' : 'disable_gl', this.report, -E.LMERR, () => this.gl.setGlEnabled(enable));
  }
  exDisableGl(): Promise<number> {
    return guard('ex_disable_gl', this.report, -E.LMERR, () => this.gl.exDisableGl());
  }
}

class GuardedLockSlots implements LockSlots {
  constructor(private readonly slots: LockSlots, private readonly report: ReportThrow) {}
  findFreeLock(lvSizeBytes: bigint): Promise<number> {
    return guard('find_free_lock', this.report, -E.LMERR, () => this.slots.findFreeLock(lvSizeBytes));
  }
  freeLv(res: ResourceView): Promise<number> {
    return guard('free_lv', this.report, -E.LMERR, () => this.slots.freeLv(res));
  }
}

/** The calls the lockspace loop makes; `raw` stays what the rest of the daemon sees. */
export class GuardedLockspace implements ManagedLockspace {
  readonly glInVg?: LockspaceGlobalLock;
  readonly lockSlots?: LockSlots;

  constructor(private readonly raw: ManagedLockspace, private readonly report: ReportThrow) {
    if (raw.glInVg) this.glInVg = new GuardedGlobalLock(raw.glInVg, report);
    if (raw.lockSlots) this.lockSlots = new GuardedLockSlots(raw.lockSlots, report);
  }

  get hostId(): number { return this.raw.hostId; }

  prepare(opts: { repair: boolean }): Promise<PrepareResult> {
    return guard('prepare', this.report, { rv: -E.LMERR }, () => this.raw.prepare(opts));
  }
  /**
   * A join that threw may have got part of the way (a lease acquired, its
   * renewal started): leave, so that nothing of it stays behind.
   */
  async join(opts: JoinOptions): Promise<number> {
    try {
      return await this.raw.join(opts);
    } catch (e) {
      this.report('add_lockspace', e);
      const rv = await this.leave({ freeVg: false });
      if (rv < 0) this.report('rem_lockspace after a failed add_lockspace', new Error(`result ${rv}`));
      return -E.LMERR;
    }
  }
  leave(opts: { freeVg: boolean }): Promise<number> {
    return guard('rem_lockspace', this.report, -E.LMERR, () => this.raw.leave(opts));
  }
  lock(res: ResourceView, mode: 'sh' | 'ex', opts: LockOptions): Promise<LockResult> {
    return guard(`lock ${res.name}`, this.report, { rv: -E.LMERR }, () => this.raw.lock(res, mode, opts));
  }
  convert(res: ResourceView, mode: 'sh' | 'ex', rVersion: number): Promise<number> {
    return guard(`convert ${res.name}`, this.report, -E.LMERR, () => this.raw.convert(res, mode, rVersion));
  }
  unlock(res: ResourceView, rVersion: number, opts: { freeVg: boolean }): Promise<number> {
    return guard(`unlock ${res.name}`, this.report, -E.LMERR, () => this.raw.unlock(res, rVersion, opts));
  }
  forget(resName: string): void {
    try {
      this.raw.forget(resName);
    } catch (e) {
      this.report(`forget ${resName}`, e);
    }
  }
  otherHosts(notify: boolean): Promise<{ rv: number; hostsUnknown: boolean }> {
    return guard('hosts', this.report, { rv: -E.LMERR, hostsUnknown: false }, () => this.raw.otherHosts(notify));
  }
}
