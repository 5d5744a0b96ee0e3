// Test mode (-T): answers as lvmlockd's test mode does for dlm and sanlock VGs,
// without any lock manager. Other hosts exist only as injected remote locks.

import { E, VAL_BLK_VERSION, type LmType } from '../../core/constants';
import type {
  GlobalLockState, InitLvRequest, InitVgRequest, LockManager, LockResult, LockspaceEvents, LockspaceView,
  ManagedLockspace, PrepareResult, ResourceView, ValueBlock,
} from '../types';

const ONE_MB = 1024 * 1024;
const LV_LOCK_BEGIN = 67;

export interface TestLmHooks {
  /** Existence check of the lvmlock LV device (sanlock start stats it). */
  deviceExists(path: string): boolean;
  log(line: string): void;
  /** lvmlockd's sanlock test mode waits 1 s before looking for the lvmlock
   *  device and 2 s in add_lockspace; commands can observe that timing. */
  sleep?(ms: number): Promise<void>;
}

export class TestLockManager implements LockManager {
  private testLvCount = 0;

  constructor(
    readonly type: Exclude<LmType, 'none' | 'idm'>,
    private readonly gl: GlobalLockState,
    private readonly hooks: TestLmHooks,
    private readonly defaultHostId: () => number,
  ) {}

  isRunning(): boolean {
    return this.type === 'dlm' ? this.gl.useDlm : this.gl.useSanlock;
  }

  async initVg(req: InitVgRequest): Promise<{ rv: number; vgArgs: string }> {
    if (this.type === 'dlm') return { rv: 0, vgArgs: '1.0.0:test' };
    if (!this.gl.sanlockGlLockspace) this.gl.sanlockGlLockspace = req.lsName;
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
    return new TestLockspace(this.type, view, this.gl, this.hooks, this.defaultHostId, () => this.testLvCount);
  }
}

class TestLockspace implements ManagedLockspace {
  private readonly valueBlocks = new Map<string, ValueBlock>();
  glEnabled = false;
  generation = 0;
  hostId: number;

  constructor(
    private readonly type: 'dlm' | 'sanlock',
    private readonly view: LockspaceView,
    private readonly gl: GlobalLockState,
    private readonly hooks: TestLmHooks,
    defaultHostId: () => number,
    private readonly lvCount: () => number,
  ) {
    this.hostId = view.hostId || (type === 'sanlock' ? defaultHostId() : 0);
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
    if (!this.gl.sanlockGlLockspace) {
      this.gl.sanlockGlLockspace = this.view.name;
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
    if (this.type === 'sanlock' && this.gl.sanlockGlLockspace === this.view.name) {
      this.gl.sanlockGlLockspace = '';
    }
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
  async freeLv(): Promise<number> { return 0; }
  async findFreeLock(): Promise<number> {
    void this.lvCount;
    return 0;
  }
  async refreshGlEnabled(): Promise<boolean> {
    this.glEnabled = true;
    return true;
  }
  async setGlEnabled(enable: boolean): Promise<number> {
    this.glEnabled = enable;
    if (enable) this.gl.sanlockGlLockspace = this.view.name;
    else if (this.gl.sanlockGlLockspace === this.view.name) this.gl.sanlockGlLockspace = '';
    return 0;
  }
  async exDisableGl(): Promise<number> { return 0; }
}

/** `1.0.0:lvmlock` → `lvmlock`; null when the args are unusable. */
export function lockLvName(vgArgs: string): string | null {
  const m = /^(\d+)\.(\d+)\.(\d+):([^:]+)/.exec(vgArgs);
  if (!m) return null;
  if (Number(m[1]) > 2) return null;
  return m[4]!;
}

/** device-mapper name of an LV: dashes in VG and LV names are doubled. */
export function dmName(vgName: string, lvName: string): string {
  return `${vgName.replace(/-/g, '--')}-${lvName.replace(/-/g, '--')}`;
}
