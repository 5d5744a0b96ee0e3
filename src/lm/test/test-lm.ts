// Test mode (-T): answers as lvmlockd's test mode does for dlm and sanlock VGs,
// without any lock manager. Other hosts exist only as injected remote locks.

import { E, VAL_BLK_VERSION, type LmType } from '../../core/constants';
import type {
  GlobalLockChoice, InitLvRequest, InitVgRequest, LockManager, LockResult, LockSlots, LockspaceEvents,
  LockspaceGlobalLock, LockspaceView, ManagedLockspace, ManagerGlobalLock, PrepareResult, ResourceView, ValueBlock,
} from '../types';
import { lockLvName, dmName } from '../lvm-names';
import { LV_LOCK_BEGIN, ONE_MB } from '../sanlock/layout';

export interface TestLmHooks {
  /** Existence check of the lvmlock LV device (sanlock start stats it). */
  deviceExists(path: string): boolean;
  log(line: string): void;
  /** lvmlockd's sanlock test mode waits 1 s before looking for the lvmlock
   *  device and 2 s in add_lockspace; commands can observe that timing. */
  sleep?(ms: number): Promise<void>;
}

/** The sanlock side of test mode keeps the global lock in a VG lockspace, as sanlock does. */
class TestGlobalLockInVg implements ManagerGlobalLock {
  glLockspace = '';
  setGlLockspace(name: string): void { this.glLockspace = name; }
}

export class TestLockManager implements LockManager {
  private testLvCount = 0;
  readonly glInVg?: TestGlobalLockInVg;
  readonly lockspaceNameLength?: number;
  readonly adoptsGlobalLockspace?: boolean;
  readonly adoptsLocks?: boolean;
  readonly setsLockArgs?: boolean;
  readonly refreshLv?: () => Promise<number>;

  constructor(
    readonly type: Exclude<LmType, 'none' | 'idm'>,
    private readonly glChoice: GlobalLockChoice,
    private readonly hooks: TestLmHooks,
    private readonly defaultHostId: () => number,
  ) {
    if (type === 'sanlock') {
      this.glInVg = new TestGlobalLockInVg();
      this.lockspaceNameLength = 48;
      this.adoptsLocks = true;
      this.setsLockArgs = true;
    } else {
      this.adoptsGlobalLockspace = true;
      // lvmlockd's test mode answers refresh_lv without running anything.
      this.refreshLv = async () => 0;
    }
  }

  /** Test mode has no manager to look for: the one chosen for the global lock counts as running. */
  isRunning(): boolean {
    return this.glChoice.manager === this.type;
  }

  async initVg(req: InitVgRequest): Promise<{ rv: number; vgArgs: string }> {
    if (!this.glInVg) return { rv: 0, vgArgs: '1.0.0:test' };
    if (!this.glInVg.glLockspace) this.glInVg.glLockspace = req.lsName;
    return { rv: 0, vgArgs: `1.0.0:${req.vgArgs}` };
  }

  async initLv(_req: InitLvRequest): Promise<{ rv: number; lvArgs: string }> {
    if (this.type === 'dlm') return { rv: 0, lvArgs: '' };
    const offset = ONE_MB * LV_LOCK_BEGIN + ONE_MB * this.testLvCount;
    this.testLvCount++;
    return { rv: 0, lvArgs: `1.0.0:${offset}` };
  }

  async renameVg(): Promise<number> { return 0; }

  createLockspace(view: LockspaceView, _events: LockspaceEvents): ManagedLockspace {
    return new TestLockspace(this.type, view, this.glInVg, this.hooks, this.defaultHostId);
  }
}

class TestLockspace implements ManagedLockspace {
  private readonly valueBlocks = new Map<string, ValueBlock>();
  hostId: number;
  readonly glInVg?: TestLockspaceGl;
  /** lvmlockd's test mode answers find_free_lock and free_lv with success for both types. */
  readonly lockSlots: LockSlots = { findFreeLock: async () => 0, freeLv: async () => 0 };

  constructor(
    private readonly type: 'dlm' | 'sanlock',
    private readonly view: LockspaceView,
    private readonly gl: TestGlobalLockInVg | undefined,
    private readonly hooks: TestLmHooks,
    defaultHostId: () => number,
  ) {
    this.hostId = view.hostId || (type === 'sanlock' ? defaultHostId() : 0);
    if (gl) this.glInVg = new TestLockspaceGl(gl, view.name);
  }

  async prepare(): Promise<PrepareResult> {
    if (this.type === 'dlm') return { rv: 0 };
    const lockLv = lockLvName(this.view.vgArgs);
    if (lockLv === null) return { rv: -E.ARGS };
    const path = `/dev/mapper/${dmName(this.view.vgName, lockLv)}`;
    await this.hooks.sleep?.(1000);
    if (!this.hooks.deviceExists(path)) {
      this.hooks.log(`S ${this.view.name} prepare_lockspace_san stat error 2 disk_path ${path}`);
      return { rv: -E.ARGS };
    }
    if (!this.hostId || this.hostId > 2000) {
      this.hooks.log(`S ${this.view.name} prepare_lockspace_san invalid host_id ${this.hostId}`);
      return { rv: -E.HOSTID };
    }
    if (this.gl && !this.gl.glLockspace) {
      this.gl.glLockspace = this.view.name;
      this.hooks.log(`S ${this.view.name} prepare_lockspace_san use global lock`);
    }
    // lvmlockd's test mode reads no GL lease at start; only a GL search marks it enabled.
    return { rv: 0 };
  }

  async join(): Promise<number> {
    if (this.type === 'sanlock') await this.hooks.sleep?.(2000);
    return 0;
  }
  async leave(): Promise<number> {
    if (this.gl && this.gl.glLockspace === this.view.name) this.gl.glLockspace = '';
    return 0;
  }

  // Adopt requests succeed like any other (lvmlockd's test mode does not look at them).
  async lock(res: ResourceView, mode: 'sh' | 'ex'): Promise<LockResult> {
    const vb = this.valueBlocks.get(res.name);
    const result: LockResult = { rv: 0 };
    if (res.useValueBlock) result.vb = vb ? { ...vb } : { version: 0, flags: 0, rVersion: 0 };
    if (res.testRemote === null) return result;
    if (mode === 'sh' && res.testRemote === 'sh') return result;
    return { rv: -E.AGAIN };
  }

  /** Test mode keeps no leases, so nothing is left over from a previous daemon. */
  async purgeOrphans(): Promise<number> { return 0; }

  async convert(res: ResourceView, _mode: 'sh' | 'ex', rVersion: number): Promise<number> {
    this.writeValueBlock(res, rVersion);
    return 0;
  }

  async unlock(res: ResourceView, rVersion: number): Promise<number> {
    this.writeValueBlock(res, rVersion);
    return 0;
  }

  private writeValueBlock(res: ResourceView, rVersion: number): void {
    if (!res.useValueBlock || !rVersion || res.mode !== 'ex') return;
    const vb = this.valueBlocks.get(res.name) ?? { version: 0, flags: 0, rVersion: 0 };
    if (!vb.version) vb.version = VAL_BLK_VERSION;
    vb.rVersion = rVersion;
    this.valueBlocks.set(res.name, vb);
  }

  forget(): void {
    // Value blocks outlive the core's resource records, as a real LVB would.
  }

  async otherHosts(): Promise<{ rv: number; hostsUnknown: boolean }> {
    return { rv: 0, hostsUnknown: false };
  }
}

/** Test mode's global lock in a sanlock VG: no lease, only the enabled flag. */
class TestLockspaceGl implements LockspaceGlobalLock {
  glEnabled = false;
  constructor(private readonly gl: TestGlobalLockInVg, private readonly lsName: string) {}

  async refreshGlEnabled(): Promise<boolean> {
    this.glEnabled = true;
    return true;
  }
  async setGlEnabled(enable: boolean): Promise<number> {
    this.glEnabled = enable;
    if (enable) this.gl.glLockspace = this.lsName;
    else if (this.gl.glLockspace === this.lsName) this.gl.glLockspace = '';
    return 0;
  }
  async exDisableGl(): Promise<number> { return 0; }
}
