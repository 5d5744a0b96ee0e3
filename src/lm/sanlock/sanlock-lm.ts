// The sanlock lock manager: lvmlockd's sanlock VGs on our own lease engine
// (src/leases), with no sanlock daemon. The hidden "lvmlock" LV of a VG holds
//   offset 0               the lockspace (one delta lease per host_id)
//   align * 65             the global lock lease (GLLK, or _GLLK_disabled)
//   align * 66             the VG lock lease (VGLK)
//   align * 67 ...         one lease per LV (named by LV uuid, "#unused" when free)
// The on-disk format is sanlock's, so hosts running the C lvmlockd with the
// sanlock daemon can share the same VG with hosts running this daemon.
//
// The parts: layout.ts (the LV's slots, lock_args), errors.ts (lease errors →
// lvmlockd results), init.ts (init_vg, init_lv, rename_vg), lockspace.ts (one
// VG's lockspace), watchdog-binding.ts (its host watchdog registration).

import type {
  GlobalLockChoice, InitLvRequest, InitVgRequest, LockManager, LockspaceEvents, LockspaceView, ManagerGlobalLock,
} from '../types';
import type { Disk } from '../../io/disk';
import type { Clock } from '../../io/clock';
import * as L from '../../leases';
import { dmName } from '../lvm-names';
import type { WatchdogProvider } from './watchdog';
import { initLv, initVg, renameVg } from './init';
import { SanlockLockspace } from './lockspace';

export {
  R_NAME_GL_DISABLED, R_NAME_INVALID_REMOVED, LV_UNUSED, GL_LOCK_BEGIN, VG_LOCK_BEGIN, LV_LOCK_BEGIN,
  sizesForDevice, lvOffsetFromArgs,
} from './layout';
export { mapAcquireError } from './errors';
export { SanlockLockspace } from './lockspace';

export interface SanlockLmDeps {
  /** The daemon's choice of global-lock manager (read only). */
  glChoice: GlobalLockChoice;
  /** -o: sanlock io_timeout in seconds (0 = 10, sanlock's default). */
  ioTimeout: number;
  /** --host-id, else --host-id-file (read when a lockspace starts). */
  defaultHostId(): number;
  /** The number of lockspaces the core has (lockspaces_empty() in init_vg). */
  lockspaceCount(): number;
  debug(line: string): void;
  error(line: string): void;
  sleep(ms: number): Promise<void>;
  clock: Clock;
  random: L.Random;
  openDisk(path: string): Promise<Disk>;
  /** Directory of the lvmlock LV device nodes (/dev/mapper). */
  mapperDir?: string;
  /** Block sizes of a device node (the daemon: sysfs queue/{physical,logical}_block_size). */
  blockSizes(path: string): { physical: number; logical: number };
  /** stat() of the lvmlock device before a lockspace starts (the daemon: the file exists). */
  deviceExists(path: string): boolean;
  /** This daemon's sanlock host name (the daemon: "<uuid>.<nodename>"), the same for every lockspace. */
  hostName: string;
  /**
   * With --adopt 1: the host name each joined lockspace's delta lease carries,
   * kept across daemon restarts. A restarted daemon continues (adopts) a
   * lockspace only when its delta lease still carries the recorded name.
   */
  adoptNames?: AdoptNameStore;
  /**
   * The host watchdog armed for every joined lockspace (the daemon: wdmd).
   * Without one, nothing resets a hung host before others take its leases.
   */
  watchdog?: WatchdogProvider;
}

/** Our delta lease in a joined lockspace: its host_id and the host name it carries. */
export interface AdoptName { hostId: number; hostName: string }

/** Lockspace name → our delta lease there (src/daemon/adopt-state.ts keeps it in a file). */
export interface AdoptNameStore {
  get(lsName: string): AdoptName | undefined;
  set(lsName: string, rec: AdoptName): void;
  delete(lsName: string): void;
}

/** sanlock keeps the global lock in one VG's lockspace (enabled there, disabled in the others). */
export class SanlockGlobalLock implements ManagerGlobalLock {
  /** The lockspace holding the enabled GL lease, '' when none is known. */
  glLockspace = '';
  setGlLockspace(name: string): void { this.glLockspace = name; }
}

export class SanlockLockManager implements LockManager {
  readonly type = 'sanlock' as const;
  readonly hostName: string;
  readonly glInVg = new SanlockGlobalLock();
  /** sanlock lockspace names are at most 48 characters. */
  readonly lockspaceNameLength = 48;
  readonly adoptsLocks = true;
  readonly setsLockArgs = true;
  /** Our lease engine needs no sanlock daemon. */
  readonly embedded = true;

  constructor(private readonly d: SanlockLmDeps) {
    this.hostName = d.hostName;
  }

  get ioTimeout(): number { return this.d.ioTimeout > 0 ? this.d.ioTimeout : L.DEFAULT_IO_TIMEOUT; }
  get deps(): SanlockLmDeps { return this.d; }

  /** Our lease engine is part of the daemon: always running. */
  isRunning(): boolean { return true; }

  devicePath(vgName: string, lockLv: string): string {
    return `${this.d.mapperDir ?? '/dev/mapper'}/${dmName(vgName, lockLv)}`;
  }

  initVg(req: InitVgRequest): Promise<{ rv: number; vgArgs: string }> {
    return initVg(this, req);
  }

  initLv(req: InitLvRequest): Promise<{ rv: number; lvArgs: string }> {
    return initLv(this, req);
  }

  renameVg(lsName: string, vgName: string, vgArgs: string): Promise<number> {
    return renameVg(this, lsName, vgName, vgArgs);
  }

  createLockspace(view: LockspaceView, events: LockspaceEvents): SanlockLockspace {
    return new SanlockLockspace(this, view, events);
  }
}
