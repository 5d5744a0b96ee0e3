// One lockspace: its resources and a single worker loop that applies queued
// actions in order, as lvmlockd's per-lockspace thread does. Only this loop
// changes the lockspace's resources, so nothing here needs locking; the loop
// awaits the lock manager between steps and other lockspaces go on meanwhile.

import {
  AF, E, LOCK_RETRY_MS, R_NAME_GL, R_NAME_VG, VAL_BLK_VERSION, VBF_REMOVED,
  type LmType, type Mode, type ResourceType,
} from './constants';
import { assertHeldLocksMatchMode, newResource, type Action, type Lock, type Resource } from './model';
import { assert } from '../util/assert';
import type { LockManager, ManagedLockspace, ResourceView } from '../lm/types';
import { GuardedLockspace } from './guarded-lockspace';

export interface LockspaceHost {
  deliver(act: Action): void;
  debug(msg: string): void;
  error(msg: string): void;
  sleep(ms: number): Promise<void>;
  readonly testMode: boolean;
  /** More than one VG lockspace has the global lock enabled (lvmlockd's sanlock_gl_dup). */
  glInVgDup: boolean;
  glVgRemoved: boolean;
  otherVgsOfSameManager(ls: Lockspace): boolean;
  lockspaceDone(ls: Lockspace): void;
  /** Called after every loop pass so waiters (start_wait, stop_all) can re-check. */
  lockspaceChanged(): void;
}

export class Lockspace {
  name: string;
  readonly vgName: string;
  readonly vgUuid: string;
  vgArgs: string;
  readonly lmType: LmType;
  hostId: number;
  startClientId = 0;
  /** The VG's PVs from the newest start_vg (IDM). */
  pvs: string[] = [];
  createDone = false;
  createFail = false;
  threadWork = false;
  threadStop = false;
  threadDone = false;
  killVg = false;
  dropVgFlag = false;
  readonly actions: Action[] = [];
  /** In creation order (which is the order lvmlockd processes them in); change only through addResource/removeResource. */
  readonly resources: Resource[] = [];
  /**
   * resources by type and name (at most one each), so a lookup does not scan every held LV;
   * a map per type keyed by the name itself: no key string is built (and hashed) per lookup
   */
  private readonly resourceIndex: Readonly<Record<ResourceType, Map<string, Resource>>> = { gl: new Map(), vg: new Map(), lv: new Map() };
  /** creation order of each resource in `resources`, to process the ones with actions in that order */
  private readonly resourceSeq = new Map<Resource, number>();
  private nextResourceSeq = 0;
  /** every resource in `resources` with queued actions is here (it may hold some without) */
  private readonly withActions = new Set<Resource>();
  private readonly dispose: Resource[] = [];
  private wake: (() => void) | null = null;
  /** The queued request the loop is taking in (until it leaves the queue), for passFailed. */
  private intake: Action | null = null;
  /** The manager's lockspace, as the rest of the daemon sees it. */
  private readonly raw: ManagedLockspace;
  /** The same, as this loop calls it: a call that throws is a failed call (-ELMERR), logged. */
  private readonly lm: GuardedLockspace;
  private readonly manager: LockManager;

  constructor(
    fields: { name: string; vgName: string; vgUuid: string; vgArgs: string; lmType: LmType; hostId: number; manager: LockManager },
    lmFactory: (ls: Lockspace) => ManagedLockspace,
    private readonly host: LockspaceHost,
  ) {
    this.name = fields.name;
    this.vgName = fields.vgName;
    this.vgUuid = fields.vgUuid;
    this.vgArgs = fields.vgArgs;
    this.lmType = fields.lmType;
    this.hostId = fields.hostId;
    this.manager = fields.manager;
    this.addResource(newResource('vg', R_NAME_VG));
    this.raw = lmFactory(this);
    this.lm = new GuardedLockspace(this.raw, (call, e) => {
      this.host.error(`S ${this.name} lock manager ${call} failed: ${describeThrown(e)}`);
    });
  }

  /** This VG lockspace holds the enabled global lock (managers that keep the GL in a VG). */
  get glEnabled(): boolean { return this.raw.glInVg?.glEnabled ?? false; }
  get managed(): ManagedLockspace { return this.raw; }

  /** Queue an action and wake the loop. */
  enqueue(act: Action): void {
    this.actions.push(act);
    this.signal();
  }

  signal(): void {
    this.threadWork = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** True when any LV lock (or any lock at all) is held. */
  hasLocks(kind: 'lv' | 'any'): boolean {
    return this.resources.some((r) => (kind === 'any' || r.type === 'lv') && r.locks.length > 0);
  }

  private waitForWork(): Promise<void> {
    if (this.threadWork) return Promise.resolve();
    return new Promise((resolve) => { this.wake = resolve; });
  }

  /** The lockspace "thread": join, serve actions, leave. */
  async run(startAct: Action | null): Promise<void> {
    const h = this.host;
    const waitFlag = !!startAct && (startAct.flags & AF.WAIT) !== 0;
    const adoptOnly = !!startAct && (startAct.flags & AF.ADOPT_ONLY) !== 0;
    let adoptOk = !!startAct && (startAct.flags & AF.ADOPT) !== 0;
    const nodelay = !!startAct && (startAct.flags & AF.NODELAY) !== 0;
    const repair = !!startAct && (startAct.flags & AF.REPAIR) !== 0;
    if (this.vgName === '' && this.manager.adoptsGlobalLockspace) adoptOk = true;
    h.debug(`S ${this.name} lm_add_lockspace ${this.lmType} act ${startAct ? 1 : 0} wait ${waitFlag ? 1 : 0} adopt_only ${adoptOnly ? 1 : 0} adopt_ok ${adoptOk ? 1 : 0}`);

    let addAct = startAct;
    const prep = await this.lm.prepare({ repair });
    let error = prep.rv;
    if (addAct) {
      addAct.lmResult = prep.rv;
      if (prep.prevGeneration) addAct.prevGeneration = prep.prevGeneration;
    }
    if (addAct && (!waitFlag || error)) {
      addAct.result = error;
      h.deliver(addAct);
      addAct = null;
    }
    if (!error) {
      error = await this.lm.join({ adoptOnly, adoptOk, nodelay });
      h.debug(`S ${this.name} lm_add_lockspace done ${error}`);
      const glLs = this.manager.glInVg?.glLockspace;
      if (this.glEnabled && glLs && glLs !== this.name) h.glInVgDup = true;
      if (addAct) {
        addAct.lmResult = error;
        addAct.result = error;
        h.deliver(addAct);
      }
    }
    if (error) {
      this.threadStop = true;
      this.createFail = true;
    } else {
      this.createDone = true;
    }
    h.lockspaceChanged();

    let freeVg = false;
    let dropVg = false;
    if (!error) {
      for (;;) {
        let outcome = { freeVg: false, dropVg: false };
        try {
          outcome = await this.serve();
        } catch (e) {
          await this.passFailed(e);
          if (!this.threadStop) continue;
        }
        freeVg = outcome.freeVg;
        dropVg = outcome.dropVg;
        let stopped: boolean;
        try {
          stopped = await this.leave(freeVg, dropVg);
        } catch (e) {
          h.error(`S ${this.name} stopping failed: ${describeThrown(e)}; leaving the lockspace`);
          const rv = await this.lm.leave({ freeVg });
          h.debug(rv < 0 ? `S ${this.name} rem_lockspace error ${rv}` : `S ${this.name} rem_lockspace done`);
          stopped = true;
        }
        if (stopped) break;
      }
    }
    this.finish(freeVg);
  }

  /**
   * A pass of the loop failed in the core itself (a bug of ours: a broken
   * invariant; lock-manager calls cannot throw here). lvmlockd's thread never
   * fails this way; a loop that ended here would leave the lockspace neither
   * serving nor stopping: its requests unanswered, and stop_all (lvmlockctl
   * --stop-lockspaces) waiting for its thread_done forever. The requests of
   * the pass are answered -ECANCELED and the loop goes on, so a stop can still
   * leave; the locks held stay held until then, as for any stop.
   */
  private async passFailed(e: unknown): Promise<void> {
    const h = this.host;
    h.error(`S ${this.name} lockspace loop failed: ${describeThrown(e)}; the requests in progress are cancelled`);
    for (const r of this.resources) {
      for (const act of r.actions.splice(0)) {
        act.result = -E.CANCELED;
        h.deliver(act);
      }
      this.withActions.delete(r);
    }
    // A request that failed while still queued is taken off, else it would fail
    // again on every pass. A stop (accepted already: threadStop is set) stays
    // queued for leave() to answer.
    const next = this.intake;
    this.intake = null;
    if (next && this.actions[0] === next && next.op !== 'stop') {
      this.actions.shift();
      next.result = -E.CANCELED;
      h.deliver(next);
    }
    this.threadWork = this.actions.length > 0;
    h.lockspaceChanged();
    // Never a busy loop, whatever keeps failing.
    await h.sleep(LOCK_RETRY_MS);
  }

  /** Serve actions until asked to stop. */
  private async serve(): Promise<{ freeVg: boolean; dropVg: boolean }> {
    const h = this.host;
    for (;;) {
      while (!this.threadWork) {
        if (this.threadStop) return { freeVg: false, dropVg: false };
        await this.waitForWork();
      }
      const closes: Action[] = [];
      for (;;) {
        const act = this.actions[0];
        this.intake = act ?? null;
        if (!act) { this.threadWork = false; break; }
        h.debug(`S ${this.name} ls actions entry: ${act.op}`);
        if (act.op === 'kill_vg') {
          h.debug(`S ${this.name} kill_vg`);
          this.killVg = true;
          this.actions.shift();
          act.result = 0;
          h.deliver(act);
          continue;
        }
        if (this.killVg && !allowedDuringKill(act)) {
          h.debug(`S ${this.name} disallow op ${act.op} after kill_vg`);
          this.actions.shift();
          act.result = -E.VGKILLED;
          h.deliver(act);
          continue;
        }
        if (act.op === 'drop_vg') {
          if (!this.killVg && this.refusedForHeldLvLocks(act)) continue;
          if (!this.killVg) h.debug(`S ${this.name} received drop without kill`);
          h.debug(`S ${this.name} drop_vg`);
          this.threadWork = false;
          this.threadStop = true;
          this.dropVgFlag = true;
          return { freeVg: false, dropVg: true };
        }
        if (act.op === 'stop') { this.threadWork = false; break; }
        if (act.op === 'free' && act.rt === 'vg') {
          if (this.refusedForHeldLvLocks(act)) continue;
          if (await this.refusedForOtherHosts(act)) continue;
          this.threadWork = false;
          this.threadStop = true;
          return { freeVg: true, dropVg: false };
        }
        if (act.op === 'busy') {
          h.debug(`S ${this.name} checking if lockspace is busy`);
          const hosts = await this.lm.otherHosts(false);
          act.result = hosts.rv < 0 ? hosts.rv : hosts.rv ? -E.BUSY : 0;
          if (hosts.hostsUnknown) act.flags |= AF.HOSTS_UNKNOWN;
          this.actions.shift();
          h.deliver(act);
          continue;
        }
        if (act.op === 'rename_before' || act.op === 'setlockargs_before') {
          if (act.op === 'setlockargs_before') {
            if (!this.manager.setsLockArgs) {
              this.actions.shift();
              act.result = -E.PROTONOSUPPORT;
              h.deliver(act);
              continue;
            }
            if (this.hasLocks('lv')) {
              this.actions.shift();
              act.result = -E.NOTEMPTY;
              h.deliver(act);
              continue;
            }
          }
          if (this.refusedForHeldLvLocks(act)) continue;
          if (await this.refusedForOtherHosts(act)) continue;
          this.threadWork = false;
          this.threadStop = true;
          break;
        }
        if (act.op === 'query_lock') {
          // lvmlockd creates the resource to answer (and frees it in the same pass): an LV
          // nobody locks is reported as mode "un" with result 0, not -ENOENT.
          const r = this.findResource(act, true);
          act.result = 0;
          act.mode = r ? r.mode : 'un';
          this.actions.shift();
          h.deliver(act);
          continue;
        }
        if (act.op === 'set_remote_lv_lock') {
          this.actions.shift();
          if (!h.testMode) act.result = -E.PERM;
          else this.setRemoteLvLock(act);
          h.deliver(act);
          continue;
        }
        if (act.op === 'find_free_lock') {
          h.debug(`S ${this.name} find free lock`);
          this.actions.shift();
          act.result = this.lm.lockSlots ? await this.lm.lockSlots.findFreeLock(act.lvSizeBytes) : 0;
          h.deliver(act);
          continue;
        }
        if (act.op === 'free' && act.rt === 'lv') {
          this.actions.shift();
          if ((this.resourceIndex.lv.get(act.lvUuid)?.locks.length ?? 0) > 0) {
            // lvremove unlocks before free_lv; freeing a held lease would let another host take it.
            h.error(`${this.name}:${act.lvUuid} free_lv refused: the LV lock is held`);
            act.result = -E.BUSY;
            h.deliver(act);
            continue;
          }
          const i = this.dispose.findIndex((r) => r.type === 'lv' && r.name === act.lvUuid);
          let r: Resource;
          if (i >= 0) {
            r = this.dispose.splice(i, 1)[0]!;
            h.debug(`${this.name}:${r.name} free_lv from dispose for ${act.clientId}`);
          } else {
            h.debug(`${this.name}:${act.lvUuid} free_lv lock_args ${act.lvArgs} not found on dispose list`);
            r = newResource('lv', act.lvUuid);
            r.lvArgs = act.lvArgs;
          }
          act.result = this.lm.lockSlots ? await this.lm.lockSlots.freeLv(view(r)) : 0;
          this.forgetDisposed(r);
          h.deliver(act);
          continue;
        }
        this.actions.shift();
        if (act.op === 'close') {
          for (let i = this.dispose.length - 1; i >= 0; i--) {
            const r = this.dispose[i]!;
            if (r.disposeClientId === act.clientId) {
              h.debug(`${this.name}:${r.name} free_resource from dispose for ${act.clientId}`);
              this.dispose.splice(i, 1);
              this.forgetDisposed(r);
            }
          }
          closes.push(act);
          continue;
        }
        const nocreate = act.op === 'free' || (act.op === 'lock' && act.mode === 'un');
        const r = this.findResource(act, nocreate);
        if (!r) {
          act.result = -E.NOENT;
          h.deliver(act);
          continue;
        }
        r.actions.push(act);
        this.withActions.add(r);
        h.debug(`${this.name}:${r.name} action ${act.op} ${act.mode}`);
      }

      this.intake = null;
      if (this.threadStop) this.refuseLockRequests();
      let retry = false;
      for (const r of closes.length ? [...this.resources] : this.resourcesWithActions()) {
        if (r.actions.length === 0 && closes.length === 0) continue;  // nothing can change
        if (await this.processResource(r, closes)) retry = true;
      }
      for (const r of this.withActions) if (r.actions.length === 0) this.withActions.delete(r);
      h.lockspaceChanged();
      if (retry) {
        this.threadWork = true;
        await h.sleep(LOCK_RETRY_MS);
      }
      if (this.threadStop && !this.threadWork) return { freeVg: false, dropVg: false };
    }
  }

  /**
   * Once a stop is accepted, queued lock requests (e.g. one waiting to retry
   * after -EAGAIN) must not be granted: the lock would be cleared by the stop
   * right after the command was told it holds it, and another host could take
   * it while this one uses the LV. (lvmlockd 2.03.16 grants it, then clears it.)
   */
  private refuseLockRequests(): void {
    for (const r of this.resources) {
      for (const act of r.actions.slice()) {
        if (act.op !== 'lock' || (act.mode !== 'sh' && act.mode !== 'ex')) continue;
        this.host.debug(`${this.name}:${r.name} refuse lock ${act.mode} cl ${act.clientId}: lockspace stopping`);
        r.actions.splice(r.actions.indexOf(act), 1);
        act.result = -E.STALE;
        this.host.deliver(act);
      }
    }
  }

  /**
   * free_vg, drop_vg (without kill_vg) and rename_vg_before leave the lockspace,
   * which releases every lock in it: refused with -EBUSY while this host holds
   * LV locks there (as stop_vg is), unless the request says "force". lvm sends
   * them only once its LVs are inactive and unlocked, so this catches a stray
   * request, which on a real lock manager would let another host take an LV
   * that is active here. (lvmlockd 2.03.16 drops the locks.) After kill_vg the
   * drop is the end of the kill procedure and goes ahead.
   */
  private refusedForHeldLvLocks(act: Action): boolean {
    if ((act.flags & AF.FORCE) || !this.hasLocks('lv')) return false;
    const held = this.resources.filter((r) => r.type === 'lv' && r.locks.length > 0).length;
    this.host.error(`S ${this.name} ${act.op}${act.rt ? '_' + act.rt : ''} refused: this host holds ${held} LV lock${held === 1 ? '' : 's'} in the lockspace`);
    this.actions.shift();
    act.result = -E.BUSY;
    this.host.deliver(act);
    return true;
  }

  /** vgremove, rename and setlockargs need this host alone in the lockspace. */
  private async refusedForOtherHosts(act: Action): Promise<boolean> {
    const h = this.host;
    h.debug(`S ${this.name} checking for lockspace hosts`);
    const hosts = await this.lm.otherHosts(true);
    if (!hosts.rv) return false;
    h.error(`S ${this.name} lockspace hosts ${hosts.rv}`);
    this.actions.shift();
    act.result = hosts.rv < 0 ? hosts.rv : -E.BUSY;
    if (hosts.hostsUnknown) act.flags |= AF.HOSTS_UNKNOWN;
    h.deliver(act);
    return true;
  }

  /** Leave the lock manager; false when a stop was refused (EBUSY) and serving resumes. */
  private async leave(freeVg: boolean, dropVg: boolean): Promise<boolean> {
    const h = this.host;
    h.debug(`S ${this.name} stopping`);
    h.debug(`S ${this.name} clearing locks`);
    await this.clearLocks(freeVg, dropVg);
    if (freeVg) {
      const hosts = await this.lm.otherHosts(true);
      if (hosts.rv) h.error(`S ${this.name} other lockspace hosts ${hosts.rv}`);
    }
    const rv = await this.lm.leave({ freeVg });
    if (rv === -E.BUSY) {
      const i = this.actions.findIndex((a) => a.op === 'stop');
      if (i >= 0) {
        const act = this.actions.splice(i, 1)[0]!;
        h.debug(`S ${this.name} rem_lockspace for stop error ${rv}`);
        act.result = -E.BUSY;
        this.threadStop = false;
        h.deliver(act);
        return false;
      }
    }
    h.debug(rv < 0 ? `S ${this.name} rem_lockspace error ${rv}` : `S ${this.name} rem_lockspace done`);
    return true;
  }

  private finish(freeVg: boolean): void {
    const h = this.host;
    let freeAct: Action | null = null;
    const results: Action[] = [];
    for (const act of this.actions.splice(0)) {
      if (act.op === 'free') { freeAct = act; act.result = 0; }
      else if (act.op === 'stop' || act.op === 'drop_vg' || act.op === 'rename_before' || act.op === 'setlockargs_before') act.result = 0;
      else act.result = -E.NOLS;
      results.push(act);
    }
    if (freeVg && this.glEnabled && freeAct && h.otherVgsOfSameManager(this)) {
      freeAct.flags |= AF.WARN_GL_REMOVED;
      h.glVgRemoved = true;
    }
    for (const act of results) h.deliver(act);
    this.threadDone = true;
    this.name = 'REM:' + this.name;
    h.lockspaceDone(this);
  }

  private findResource(act: Action, nocreate: boolean): Resource | null {
    const rt = act.rt;
    if (!rt) return null;
    const name = rt === 'gl' ? R_NAME_GL : rt === 'vg' ? R_NAME_VG : act.lvUuid;
    const found = this.resourceIndex[rt].get(name);
    if (found || nocreate) return found ?? null;
    const r = newResource(rt, name);
    this.addResource(r);
    return r;
  }

  private addResource(r: Resource): void {
    const byName = this.resourceIndex[r.type];
    assert(!byName.has(r.name), () => `${this.name}: a second resource ${r.type} ${r.name}`);
    this.resources.push(r);
    byName.set(r.name, r);
    this.resourceSeq.set(r, this.nextResourceSeq++);
  }

  private removeResource(r: Resource): void {
    const i = this.resources.indexOf(r);
    if (i < 0) return;
    this.resources.splice(i, 1);
    this.resourceIndex[r.type].delete(r.name);
    this.resourceSeq.delete(r);
    this.withActions.delete(r);
  }

  /** The resources with queued actions, in the order of `resources`. */
  private resourcesWithActions(): Resource[] {
    const list: Resource[] = [];
    for (const r of this.withActions) {
      if (r.actions.length > 0 && this.resourceSeq.has(r)) list.push(r);
    }
    if (list.length > 1) list.sort((a, b) => this.resourceSeq.get(a)! - this.resourceSeq.get(b)!);
    return list;
  }

  private setRemoteLvLock(act: Action): void {
    const r = this.findResource(act, false);
    assert(r, () => `set_remote_lv_lock without a resource type (op ${act.op})`);
    r.testRemote = act.mode === 'ex' ? 'ex' : act.mode === 'sh' ? 'sh' : null;
    const i = r.locks.findIndex((l) => l.persistent);
    if (i >= 0) {
      this.host.debug(`S ${this.name} set_remote_lv_lock ${r.name} drop persistent ${r.locks[i]!.mode}`);
      r.locks.splice(i, 1);
      if (r.locks.length === 0) r.mode = 'un';
    }
    this.host.debug(`S ${this.name} set_remote_lv_lock ${r.name} ${act.mode}`);
    act.result = 0;
  }

  // ---- resource processing (lvmlockd's res_process and helpers) ----

  /** Returns true when a lock request should be retried after a delay. */
  private async processResource(r: Resource, closes: Action[]): Promise<boolean> {
    const h = this.host;
    let unlockByClientId = 0;
    let retry = false;
    const take = (act: Action): void => { r.actions.splice(r.actions.indexOf(act), 1); };
    const finish = (act: Action, result: number): void => {
      act.result = result;
      take(act);
      h.deliver(act);
    };

    for (const act of r.actions.slice()) {
      if (act.op === 'update') finish(act, this.resUpdate(r, act));
    }

    for (const act of r.actions.slice()) {
      if (act.op === 'lock' && (act.mode === 'iv' || act.mode === 'nl')) {
        finish(act, -E.INVAL);
      } else if (act.op === 'lock' && act.mode === 'un') {
        let rv = await this.resUnlock(r, act);
        if (rv === -E.NOENT && (act.flags & AF.UNLOCK_CANCEL)) rv = this.resCancel(r, act);
        if (!rv && r.mode === 'un') unlockByClientId = act.clientId;
        finish(act, rv);
      }
    }

    for (const close of closes) {
      await this.resUnlock(r, close);
      this.resCancel(r, close);
    }

    for (const act of r.actions.slice()) {
      if (act.op === 'enable' || act.op === 'disable') {
        const rv = await this.resAble(r, act);
        finish(act, rv);
        if (!rv && act.op === 'disable') {
          h.debug(`${this.name}:${r.name} free disabled`);
          this.freeResource(r);
          return retry;
        }
      }
    }

    // Requests that existing locks already answer.
    for (const act of r.actions.slice()) {
      if (act.flags & AF.PERSISTENT) continue;
      const lk = findClientLock(r, act.clientId);
      if (lk && lk.mode === act.mode) { r.lastClientId = act.clientId; finish(act, -E.ALREADY); }
    }
    for (const act of r.actions.slice()) {
      if (!(act.flags & AF.PERSISTENT)) continue;
      const lk = findPersistentLock(r);
      if (lk && lk.mode === act.mode) { r.lastClientId = act.clientId; finish(act, -E.ALREADY); }
    }
    for (const act of r.actions.slice()) {
      if (act.op !== 'lock' || (act.flags & AF.PERSISTENT)) continue;
      const lk = findPersistentLock(r);
      if (!lk) continue;
      r.lastClientId = act.clientId;
      if (lk.mode === 'ex' || (lk.mode === 'sh' && act.mode === 'sh')) {
        finish(act, 0);
      } else {
        h.debug(`res_process ${r.name} existing persistent lock new transient`);
        act.flags |= AF.SH_EXISTS;
        finish(act, -E.EXIST);
      }
    }
    for (const act of r.actions.slice()) {
      if (!(act.flags & AF.PERSISTENT)) continue;
      const lk = findClientLock(r, act.clientId);
      if (!lk) continue;
      r.lastClientId = act.clientId;
      if (lk.mode !== act.mode) {
        h.debug(`res_process ${r.name} existing transient lock new persistent`);
        finish(act, -E.EXIST);
      } else {
        h.debug(`res_process ${r.name} change transient to persistent`);
        lk.persistent = true;
        lk.clientId = 0;
        finish(act, 0);
      }
    }
    for (const act of r.actions.slice()) {
      if (act.op !== 'lock') continue;
      const lk = act.flags & AF.PERSISTENT ? findPersistentLock(r) : findClientLock(r, act.clientId);
      if (!lk || lk.mode === act.mode) continue;
      finish(act, await this.resConvert(r, lk, act));
    }

    if (r.testRemote) {
      for (const act of r.actions.slice()) {
        if (act.op !== 'lock') continue;
        if (act.mode === 'sh' && r.testRemote === 'sh') continue;
        finish(act, -E.AGAIN);
      }
    }

    if (r.mode === 'ex') return retry;

    for (const act of r.actions.slice()) {
      if (act.op === 'lock' && act.mode === 'ex') break;
      if (act.op === 'lock' && act.mode === 'sh') {
        const out = await this.resLock(r, act);
        if (this.lockOutcome(r, act, out, finish)) retry = true;
      }
    }

    if (r.mode === 'sh') return retry;

    const exAct = r.actions.find((a) => a.op === 'lock' && a.mode === 'ex');
    if (exAct) {
      const out = await this.resLock(r, exAct);
      if (this.lockOutcome(r, exAct, out, finish)) retry = true;
      else if (out.rv < 0 && r.mode === 'un' && r.actions.some((a) => a.op === 'lock' && (a.mode === 'sh' || a.mode === 'ex'))) {
        // A pass asks the manager for one ex request. This one failed and was answered
        // (an LV conflict, retries used up, IDM's -ELOCKIO): the resource is unlocked, and
        // the lock requests queued behind it would wait for some other request to reach
        // the lockspace, maybe forever (lvmlockd 2.03 the same). Run another pass.
        h.debug(`${this.name}:${r.name} res_lock ex failed, ${r.actions.length} queued: another pass`);
        retry = true;
      }
    }

    if (r.type === 'lv' && r.mode === 'un' && r.actions.length === 0 && r.locks.length === 0) {
      if (r.testRemote) {
        h.debug(`${this.name}:${r.name} skip dispose test_remote`);
        return retry;
      }
      if (!unlockByClientId) {
        this.freeResource(r);
        return retry;
      }
      h.debug(`${this.name}:${r.name} will dispose for ${unlockByClientId}`);
      this.removeResource(r);
      r.disposeClientId = unlockByClientId;
      // free_lv takes the newest record; an older one for the same LV and client is dead weight.
      // (the client id first: a number compare rules out the other clients' records before a name compare)
      const stale = this.dispose.findIndex((d) => d.disposeClientId === unlockByClientId && d.name === r.name);
      if (stale >= 0) this.dispose.splice(stale, 1);
      this.dispose.unshift(r);
    }
    return retry;
  }

  /** Applies a lock result; true when the request stays queued for a retry. */
  private lockOutcome(
    r: Resource, act: Action, out: { rv: number; retry: boolean },
    finish: (act: Action, rv: number) => void,
  ): boolean {
    if (out.rv === -E.AGAIN && act.retries <= act.maxRetries && (out.retry || r.type !== 'lv')) {
      this.host.debug(`${this.name}:${r.name} res_lock EAGAIN retry`);
      act.retries++;
      return true;
    }
    finish(act, out.rv);
    return false;
  }

  /**
   * A disposed record is gone: the manager may drop the lock state of that
   * name, unless a live record of the same LV uses it (a manager keeps one
   * lock per resource name; the dlm's would be released under the live one).
   */
  private forgetDisposed(r: Resource): void {
    if (this.resourceIndex[r.type].has(r.name)) return;
    this.lm.forget(r.name);
  }

  private freeResource(r: Resource): void {
    for (const act of r.actions.splice(0)) {
      this.host.error(`${this.name}:${r.name} res_process r_free cancel ${act.op} client ${act.clientId}`);
      act.result = -E.CANCELED;
      this.host.deliver(act);
    }
    this.host.debug(`${this.name}:${r.name} res_process free_resource`);
    this.lm.forget(r.name);
    this.removeResource(r);
  }

  private async resLock(r: Resource, act: Action): Promise<{ rv: number; retry: boolean }> {
    const h = this.host;
    // processResource grants nothing on an ex resource, and an ex request only on an unheld one.
    assert(r.mode !== 'ex', () => `${this.name}:${r.name} lock ${act.mode} requested on a resource held ex`);
    assert(act.mode === 'sh' || r.mode === 'un', () => `${this.name}:${r.name} lock ex requested on a resource held ${r.mode}`);
    r.lastClientId = act.clientId;
    h.debug(r.type === 'lv'
      ? `${this.name}:${r.name} res_lock ${act.mode} cl ${act.clientId} (${act.lvName})`
      : `${this.name}:${r.name} res_lock ${act.mode} cl ${act.clientId}`);
    let rv = 0;
    if (!(r.mode === 'sh' && act.mode === 'sh')) {
      if (r.type === 'lv' && act.lvArgs) r.lvArgs = act.lvArgs;
      const res = await this.lm.lock(view(r), act.mode as 'sh' | 'ex', {
        adoptOnly: (act.flags & AF.ADOPT_ONLY) !== 0,
        adoptOk: (act.flags & AF.ADOPT) !== 0,
        repair: (act.flags & AF.REPAIR) !== 0,
        pvs: act.pvs,
      });
      act.lmResult = res.rv;
      rv = res.rv;
      if (rv < 0) {
        h.debug(`${this.name}:${r.name} res_lock rv ${rv}`);
        if (rv === -E.AGAIN && res.owner) act.owner = res.owner;
        return { rv, retry: !!res.retry };
      }
      if (this.threadStop && r.locks.length === 0) {
        // A stop was accepted while the lock manager worked on this request: the
        // stop clears every lock right after, so a grant would tell the command it
        // holds a lock that another host can take a moment later. Give it back.
        h.debug(`${this.name}:${r.name} res_lock ${act.mode} cl ${act.clientId} granted after stop accepted: released, -ESTALE`);
        const urv = await this.lm.unlock(view(r), 0, { freeVg: false });
        if (urv < 0) h.error(`${this.name}:${r.name} release after stop accepted rv ${urv}`);
        act.lmResult = -E.STALE;
        return { rv: -E.STALE, retry: false };
      }
      if (h.glInVgDup && this.glEnabled) act.flags |= AF.DUP_GL_LS;
      if (r.useValueBlock) rv = this.checkValueBlock(r, res.vb ?? { version: 0, flags: 0, rVersion: 0 }, !!res.vbLost);
      r.mode = act.mode;
    }
    if (r.mode === 'sh') r.shCount++;
    const lk: Lock = { mode: act.mode, version: 0, persistent: false, clientId: act.clientId };
    if (act.flags & AF.PERSISTENT) { lk.persistent = true; lk.clientId = 0; }
    if (r.type === 'lv') act.flags |= AF.LV_LOCK;
    r.locks.push(lk);
    assertHeldLocksMatchMode(r);
    return { rv, retry: false };
  }

  /**
   * Compares the LVB with what we knew; logs invalidation. Returns 0, -EINVAL or -EREMOVED.
   * `lost`: the manager says the LVB content was lost. lvmlockd 2.03.16 reads that as an
   * empty LVB, which it takes for "unchanged" while all versions were zero (version_zero_valid),
   * though the writer that died may have changed the VG: always invalidate then.
   */
  private checkValueBlock(r: Resource, vb: { version: number; flags: number; rVersion: number }, lost = false): number {
    const h = this.host;
    const tag = `${this.name}:${r.name}`;
    let invalidate = false;
    let newVersion = 0;
    let rv = 0;
    if (vb.version && (vb.version & 0xff00) > (VAL_BLK_VERSION & 0xff00)) {
      h.error(`${tag} res_lock invalid val_blk version ${vb.version.toString(16)} flags ${vb.flags.toString(16)} r_version ${vb.rVersion}`);
      invalidate = true;
      rv = -E.INVAL;
    } else if (vb.rVersion && vb.rVersion === r.version) {
      // unchanged
    } else if (r.version && vb.rVersion && vb.rVersion > r.version) {
      h.debug(`${tag} res_lock got version ${vb.rVersion} our ${r.version}`);
      r.version = vb.rVersion;
      newVersion = vb.rVersion;
      r.versionZeroValid = false;
      invalidate = true;
    } else if (r.versionZeroValid && !vb.rVersion) {
      // still zero
    } else if (r.versionZeroValid && vb.rVersion) {
      newVersion = r.version && r.version >= vb.rVersion ? 0 : vb.rVersion;
      h.debug(`${tag} res_lock version_zero_valid got version ${vb.rVersion} our ${r.version}`);
      r.version = vb.rVersion;
      r.versionZeroValid = false;
      invalidate = true;
    } else if (!r.version && vb.rVersion) {
      h.debug(`${tag} res_lock initial version ${vb.rVersion}`);
      r.version = vb.rVersion;
      newVersion = vb.rVersion;
      r.versionZeroValid = false;
      invalidate = true;
    } else if (!r.version && !vb.rVersion) {
      h.debug(`${tag} res_lock all versions zero`);
      if (!r.versionZeroValid) invalidate = true;
      r.versionZeroValid = true;
    } else if (r.version && !vb.rVersion) {
      h.debug(`${tag} res_lock our version ${r.version} got vb ${vb.version.toString(16)} ${vb.flags.toString(16)} ${vb.rVersion}`);
      r.versionZeroValid = true;
      invalidate = true;
    } else if (r.version && vb.rVersion && vb.rVersion < r.version) {
      h.debug(`${tag} res_lock got version ${vb.rVersion} less than our version ${r.version}`);
      r.version = vb.rVersion;
      r.versionZeroValid = false;
      invalidate = true;
    }
    if (lost) {
      h.debug(`${tag} res_lock lvb content lost our version ${r.version}`);
      r.versionZeroValid = false;
      invalidate = true;
    }
    if (vb.version && vb.rVersion && (vb.flags & VBF_REMOVED)) {
      h.debug(`${tag} res_lock vb flag REMOVED`);
      rv = -E.REMOVED;
    }
    if (invalidate && r.type === 'vg') h.debug(`${tag} res_lock invalidate vg state version ${newVersion}`);
    if (invalidate && r.type === 'gl') h.debug(`${tag} res_lock invalidate global state`);
    return rv;
  }

  /** The version to write into the LVB when an ex lock is released or converted. */
  private releaseVersion(r: Resource, lk: Lock, verb: string): number {
    if (r.type === 'gl' && r.mode === 'ex') {
      r.version++;
      lk.version = r.version;
      r.versionZeroValid = false;
      this.host.debug(`${this.name}:${r.name} ${verb} r_version inc ${r.version}`);
      return r.version;
    }
    if (r.type === 'vg' && r.mode === 'ex' && lk.version > r.version) {
      r.version = lk.version;
      r.versionZeroValid = false;
      this.host.debug(`${this.name}:${r.name} ${verb} r_version new ${r.version}`);
      return r.version;
    }
    return 0;
  }

  private async resConvert(r: Resource, lk: Lock, act: Action): Promise<number> {
    r.lastClientId = act.clientId;
    this.host.debug(`${this.name}:${r.name} res_convert ${act.mode} cl ${act.clientId}`);
    if (act.mode === 'ex' && lk.mode === 'sh' && r.shCount > 1) return -E.AGAIN;
    const rVersion = this.releaseVersion(r, lk, 'res_convert');
    const rv = await this.lm.convert(view(r), act.mode as 'sh' | 'ex', rVersion);
    act.lmResult = rv;
    this.host.debug(`${this.name}:${r.name} res_convert rv ${rv}`);
    if (rv < 0) return rv;
    if (lk.mode === 'ex' && act.mode === 'sh') r.shCount = 1;
    else if (lk.mode === 'sh' && act.mode === 'ex') r.shCount = 0;
    else {
      this.host.error(`${this.name}:${r.name} res_convert invalid modes ${lk.mode} ${act.mode}`);
      return -1;
    }
    r.mode = act.mode;
    lk.mode = act.mode;
    assertHeldLocksMatchMode(r);
    return 0;
  }

  private resCancel(r: Resource, act: Action): number {
    const persistent = (act.flags & AF.PERSISTENT) !== 0;
    // As lvmlockd, the first matching action in list order, which may be the unlock asking
    // (it is still listed): then it only takes the -ECANCELED result, answered once by the
    // caller. Other queued unlocks are never cancelled (they would be answered twice).
    const cact = r.actions.find((a) => a === act || (a.op === 'lock' && a.mode !== 'un' &&
      (persistent ? (a.flags & AF.PERSISTENT) !== 0 : a.clientId === act.clientId)));
    if (!cact) return -E.NOENT;
    this.host.debug(`${this.name}:${r.name} res_cancel cl ${cact.clientId}`);
    if (cact === act) return -E.CANCELED;
    r.actions.splice(r.actions.indexOf(cact), 1);
    cact.result = -E.CANCELED;
    this.host.deliver(cact);
    return -E.CANCELED;
  }

  private async resUnlock(r: Resource, act: Action): Promise<number> {
    const h = this.host;
    const tag = `${this.name}:${r.name}`;
    const persistent = (act.flags & AF.PERSISTENT) !== 0;
    const lk = persistent ? findPersistentLock(r) : findClientLock(r, act.clientId);
    if (!lk) {
      if (act.op !== 'close') {
        const other = persistent ? findClientLock(r, act.clientId) : findPersistentLock(r);
        const why = other ? (persistent ? 'found transient' : 'found persistent') : 'no lock';
        h.debug(`${tag} res_unlock cl ${act.clientId} ENOENT (${why})`);
      }
      return -E.NOENT;
    }
    if ((act.flags & AF.LV_UNLOCK) && r.lastClientId !== act.clientId) {
      h.debug(`${tag} res_unlock cl ${act.clientId} for failed client ignored, last client ${r.lastClientId}`);
      return -E.NOENT;
    }
    r.lastClientId = act.clientId;
    if (act.op === 'close') h.debug(`${tag} res_unlock cl ${act.clientId} from close`);
    else if (r.type === 'lv') h.debug(`${tag} res_unlock cl ${act.clientId} (${act.lvName})`);
    else h.debug(`${tag} res_unlock cl ${act.clientId}`);

    let release = true;
    if (lk.mode === 'sh') {
      r.shCount--;
      if (r.shCount > 0) {
        h.debug(`${tag} res_unlock sh_count ${r.shCount}`);
        release = false;
      }
    }
    if (release) {
      const rVersion = this.releaseVersion(r, lk, 'res_unlock');
      const rv = await this.lm.unlock(view(r), rVersion, { freeVg: false });
      act.lmResult = rv;
      if (rv < 0) {
        h.error(`${tag} res_unlock lm error ${rv}`);
        return rv;
      }
    }
    r.locks.splice(r.locks.indexOf(lk), 1);
    if (r.locks.length === 0) r.mode = 'un';
    return 0;
  }

  private resUpdate(r: Resource, act: Action): number {
    const h = this.host;
    const tag = `${this.name}:${r.name}`;
    const lk = findClientLock(r, act.clientId);
    if (!lk) {
      h.error(`${tag} res_update cl ${act.clientId} lock not found`);
      return -E.NOENT;
    }
    if (r.mode !== 'ex') {
      h.error(`${tag} res_update cl ${act.clientId} version on non-ex lock`);
      return -E.INVAL;
    }
    if (act.flags & AF.NEXT_VERSION) {
      lk.version = r.version + 1;
    } else {
      if (r.version >= act.version) {
        h.error(`${tag} res_update cl ${act.clientId} old version ${r.version} new version ${act.version} too small`);
      }
      lk.version = act.version;
    }
    h.debug(`${tag} res_update cl ${act.clientId} lk version to ${lk.version}`);
    return 0;
  }

  private async resAble(r: Resource, act: Action): Promise<number> {
    const h = this.host;
    const managerGl = this.manager.glInVg;
    const gl = this.lm.glInVg;
    // lvmlockd's words: sanlock is the manager that keeps the global lock in a VG.
    if (!managerGl || !gl) { h.error('enable/disable only applies to sanlock'); return -E.INVAL; }
    if (r.type !== 'gl') { h.error('enable/disable only applies to global lock'); return -E.INVAL; }
    if (r.mode !== 'un') { h.error('enable/disable only allowed on unlocked resource'); return -E.INVAL; }
    if (act.op === 'enable' && managerGl.glLockspace) {
      h.error(`disable global lock in ${managerGl.glLockspace} before enable in ${this.name}`);
      return -E.INVAL;
    }
    if (act.op === 'disable' && (act.flags & AF.EX_DISABLE)) return gl.exDisableGl();
    const rv = await gl.setGlEnabled(act.op === 'enable');
    if (!rv && act.op === 'enable') h.glVgRemoved = false;
    return rv;
  }

  /** Release everything before leaving (stop, free, drop). */
  private async clearLocks(freeVg: boolean, dropVg: boolean): Promise<void> {
    const h = this.host;
    for (const r of this.dispose.splice(0)) {
      h.debug(`${this.name}:${r.name} clear_locks dispose free_resource`);
      this.forgetDisposed(r);
    }
    for (const r of [...this.resources]) {
      let lkVersion = 0;
      for (const lk of r.locks) {
        if (lk.persistent && !dropVg) h.error(`${this.name}:${r.name} clear lock persistent`);
        else h.debug(`${this.name}:${r.name} clear lock mode ${lk.mode} client ${lk.clientId}`);
        if (lk.version > lkVersion) lkVersion = lk.version;
      }
      r.locks = [];
      if (r.mode !== 'un') {
        let rVersion = 0;
        if (r.type === 'gl' && r.mode === 'ex') {
          rVersion = ++r.version;
          h.debug(`${this.name}:${r.name} clear_locks r_version inc ${rVersion}`);
        } else if (r.type === 'vg' && r.mode === 'ex' && lkVersion > r.version) {
          r.version = lkVersion;
          rVersion = lkVersion;
          h.debug(`${this.name}:${r.name} clear_locks r_version new ${rVersion}`);
        }
        const rv = await this.lm.unlock(view(r), rVersion, { freeVg });
        if (rv < 0) h.error(`${this.name}:${r.name} clear_locks free ${freeVg ? 1 : 0} drop ${dropVg ? 1 : 0} lm unlock error ${rv}`);
      }
      // Requests still queued on the resource are answered whatever its mode: lvmlockd
      // 2.03 answers them only on a held resource and frees the others' unanswered, so
      // e.g. an unlock queued on an unheld VG lock when drop_vg is taken waits forever
      // (simulator finding 27).
      for (const act of r.actions.splice(0)) {
        h.error(`${this.name}:${r.name} clear_locks cancel ${act.op} client ${act.clientId}`);
        act.result = -E.CANCELED;
        h.deliver(act);
      }
      h.debug(`${this.name}:${r.name} clear_locks free_resource`);
      this.lm.forget(r.name);
      this.removeResource(r);
    }
  }
}

/** An exception's message (with its stack's first frame: where a bug threw), for one log line. */
function describeThrown(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const at = e.stack?.split('\n').find((l) => /^\s+at /.test(l))?.trim();
  return at ? `${e.message} (${at})` : e.message;
}

/** Client ids start at 1, so a persistent lock (client 0) never matches. */
function findClientLock(r: Resource, clientId: number): Lock | undefined {
  return r.locks.find((l) => l.clientId === clientId);
}

function findPersistentLock(r: Resource): Lock | undefined {
  return r.locks.find((l) => l.persistent);
}

function allowedDuringKill(act: Action): boolean {
  if (act.op === 'lock' && act.mode === 'un') return true;
  switch (act.op) {
    case 'lock': case 'enable': case 'disable': case 'update': case 'rename_before':
    case 'rename_final': case 'query_lock': case 'find_free_lock':
      return false;
    default:
      return true;
  }
}

function view(r: Resource): ResourceView {
  return {
    name: r.name, type: r.type, mode: r.mode as Mode, lvArgs: r.lvArgs,
    useValueBlock: r.useValueBlock, testRemote: r.testRemote,
  };
}
