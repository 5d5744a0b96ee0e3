// dlm VGs on the kernel DLM, as lvmlockd's lvmlockd-dlm.c: one DLM lockspace
// per VG (lvm_<vg>) plus lvm_global for the global lock; resources GLLK, VGLK
// and the LV uuids; sh is PR, ex is EX. Each resource holds an NL lock from its
// first use (so the LVB survives) and is converted up and back down to NL;
// PERSISTENT keeps granted locks as orphans if the daemon dies, so a restarted
// daemon (-A 1) can adopt them. The 8-byte val_blk (version, flags, r_version,
// little-endian) sits at the start of the 32-byte LVB of GLLK and VGLK.

import { E, MAX_ARGS, VAL_BLK_VERSION, VBF_REMOVED } from '../../core/constants';
import { Errno } from '../../util/errno';
import type {
  InitLvRequest, InitVgRequest, JoinOptions, LockManager, LockResult, LockspaceEvents, LockspaceView,
  ManagedLockspace, PrepareResult, ResourceView, ValueBlock,
} from '../types';
import {
  DLMC, DLM_LSFL_NEWEXCL, LKF, LKM, SBF,
  type CallResult, type DlmConfigfs, type DlmControl, type DlmKernel, type DlmLockspaceHandle, type LockBlock,
} from './kernel';

export const DLM_CLUSTER_NAME_PATH = '/sys/kernel/config/dlm/cluster/cluster_name';
export const DLM_LOCKSPACES_PATH = '/sys/kernel/config/dlm/cluster/spaces';
export const DLM_COMMS_PATH = '/sys/kernel/config/dlm/cluster/comms';

const VG_LOCK_ARGS_MAJOR = 1;
const ARGS_VERSION = '1.0.0';
/** From the errno table, not the daemon's result table E: a name added to E would change how results are logged. */
const { ECONNREFUSED } = Errno;
const REFRESH_CHECK_MS = 1000;
/** lvmlockd's LD_LK_* numbers, as its messages print modes. */
const LD_MODE = { sh: 2, ex: 3 } as const;

export interface DlmLmDeps {
  kernel: DlmKernel;
  control: DlmControl;
  configfs: DlmConfigfs;
  debug(line: string): void;
  error(line: string): void;
  sleep(ms: number): Promise<void>;
}

/** `/sys/kernel/config/dlm/cluster/cluster_name`, written by dlm_controld; null when absent. */
export function readClusterName(d: Pick<DlmLmDeps, 'configfs' | 'debug' | 'error'>): string | null {
  const text = d.configfs.readFile(DLM_CLUSTER_NAME_PATH);
  if (typeof text === 'number') {
    d.debug(`read_cluster_name: open error ${text}, check dlm_controld`);
    return null;
  }
  const s = text.slice(0, MAX_ARGS);
  const nl = s.indexOf('\n');
  return nl >= 0 ? s.slice(0, nl) : s;
}

/** The major of `<major>.<minor>.<patch>:...`, or null. */
function argsMajor(vgArgs: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)(:|$)/.exec(vgArgs);
  return m ? Number(m[1]) : null;
}

/** lvmlockd's last_string_from_args: what follows the last ':'; null without one. */
function clusterNameFromArgs(vgArgs: string): string | null {
  const i = vgArgs.lastIndexOf(':');
  return i < 0 ? null : vgArgs.slice(i + 1);
}

function dlmMode(mode: 'sh' | 'ex'): number {
  return mode === 'ex' ? LKM.EX : LKM.PR;
}

function isHandle(x: DlmLockspaceHandle | CallResult): x is DlmLockspaceHandle {
  return 'name' in x;
}

function decodeVb(b: Buffer): ValueBlock {
  return { version: b.readUInt16LE(0), flags: b.readUInt16LE(2), rVersion: b.readUInt32LE(4) };
}

function encodeVb(vb: ValueBlock, b: Buffer): void {
  b.writeUInt16LE(vb.version, 0);
  b.writeUInt16LE(vb.flags, 2);
  b.writeUInt32LE(vb.rVersion >>> 0, 4);
}

const hex = (n: number): string => n.toString(16);

export class DlmLockManager implements LockManager {
  readonly type = 'dlm' as const;
  readonly adoptsGlobalLockspace = true;
  readonly adoptsLocks = true;
  /** lvmlockd reads the kernel version once: 6.0.1 returns stale LVBs on NL->EX. */
  lvbBug = false;

  constructor(readonly deps: DlmLmDeps) {}

  /** dlm_controld runs when it has written the cluster name to configfs. */
  isRunning(): boolean {
    return readClusterName({ ...this.deps, debug: () => undefined }) !== null;
  }

  async initVg(req: InitVgRequest): Promise<{ rv: number; vgArgs: string }> {
    const d = this.deps;
    const cluster = readClusterName(d);
    if (cluster === null) return { rv: -E.MANAGER, vgArgs: '' };
    if (cluster.length + ARGS_VERSION.length + 2 > MAX_ARGS) {
      d.error('init_vg_dlm args too long');
      return { rv: -E.ARGS, vgArgs: '' };
    }
    const vgArgs = `${ARGS_VERSION}:${cluster}`;
    d.debug(`init_vg_dlm done ${req.lsName} vg_args ${vgArgs}`);
    return { rv: 0, vgArgs };
  }

  /** dlm LV locks need no lock_args. */
  async initLv(_req: InitLvRequest): Promise<{ rv: number; lvArgs: string }> {
    return { rv: 0, lvArgs: '' };
  }

  /** Nothing carries the VG name but the lockspace name, which the next start uses. */
  async renameVg(): Promise<number> { return 0; }

  createLockspace(view: LockspaceView, _events: LockspaceEvents): DlmLockspace {
    return new DlmLockspace(this, view);
  }

  /**
   * refresh_lv: `lvchange --refresh` of the LV on the other nodes through
   * dlm_controld's run API, polled until every node answered (lvmlockd's
   * lm_refresh_lv_start_dlm / lm_refresh_lv_check_dlm).
   */
  async refreshLv(req: { lvUuid: string; path: string }): Promise<number> {
    const d = this.deps;
    const names = vgLvFromPath(req.path);
    if (!names) return -E.INVAL;
    const command = `lvm lvchange --refresh --partial --nolocking ${names.vg}/${names.lv}`;
    let start: { rv: number; uuid: string };
    try {
      start = await d.control.runStart(command, 0, DLMC.RUN_START_NODE_NONE);
    } catch (e) {
      d.error(`refresh_lv run_start: ${(e as Error).message}`);
      return -E.MANAGER;
    }
    if (start.rv < 0) {
      d.debug(`refresh_lv run_start error ${start.rv}`);
      return start.rv;
    }
    d.debug(`refresh_lv run_start ${start.uuid}`);
    for (;;) {
      d.debug('work delayed refresh_lv');
      const check = await d.control.runCheck(start.uuid, 0, DLMC.RUN_CHECK_CLEAR);
      if (check.rv < 0) {
        d.debug(`refresh_lv check error ${check.rv}`);
        return check.rv;
      }
      d.debug(`refresh_lv check ${start.uuid} status ${hex(check.status)}`);
      if (check.status & DLMC.RUN_STATUS_DONE) return check.status & DLMC.RUN_STATUS_FAILED ? -1 : 0;
      await d.sleep(REFRESH_CHECK_MS);
    }
  }
}

/** `/dev/<vg>/<lv>` → names, as lvmlockd splits the path it is given. */
export function vgLvFromPath(path: string): { vg: string; lv: string } | null {
  const m = /^\/?[^/]+\/+([^/]+)\/+(.+)$/.exec(path);
  return m ? { vg: m[1]!, lv: m[2]! } : null;
}

/** Per resource: the lock's status block and the val_blk as last read or written (lvmlockd's rd_dlm). */
interface DlmResource { lk: LockBlock; vb: ValueBlock | null }

export class DlmLockspace implements ManagedLockspace {
  readonly hostId = 0;
  private dh: DlmLockspaceHandle | null = null;
  private readonly resources = new Map<string, DlmResource>();
  /** One libdlm call at a time per lockspace: *_wait calls read completions from the lockspace device. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly m: DlmLockManager, private readonly view: LockspaceView) {}

  private get d(): DlmLmDeps { return this.m.deps; }
  private get name(): string { return this.view.name; }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async prepare(_opts: { repair: boolean }): Promise<PrepareResult> {
    const d = this.d;
    const cluster = readClusterName(d);
    if (cluster === null) return { rv: -E.MANAGER };
    const v = await d.kernel.kernelVersion();
    if (!v) {
      d.error('prepare_lockspace_dlm kernel_version not detected -1');
      this.m.lvbBug = true;
    } else if (v.major === 6 && v.minor === 0 && v.patch === 1) {
      d.debug(`dlm kernel version ${v.major}.${v.minor}.${v.patch} has lvb bug`);
      this.m.lvbBug = true;
    }
    const vgArgs = this.view.vgArgs;
    if (!vgArgs) return { rv: 0 }; // the global lockspace has no args
    const major = argsMajor(vgArgs);
    if (major === null) {
      d.error(`check_args_version ${vgArgs} error -1`);
      return { rv: -E.ARGS };
    }
    if (major > VG_LOCK_ARGS_MAJOR) {
      d.error(`check_args_version ${vgArgs} major ${major} ${VG_LOCK_ARGS_MAJOR}`);
      return { rv: -E.ARGS };
    }
    const argCluster = clusterNameFromArgs(vgArgs);
    if (argCluster === null) {
      d.error(`prepare_lockspace_dlm ${this.name} no cluster name from args ${vgArgs}`);
      return { rv: -E.ARGS };
    }
    if (argCluster !== cluster) {
      d.error(`prepare_lockspace_dlm ${this.name} mismatching cluster names sys ${cluster} arg ${argCluster}`);
      return { rv: -E.ARGS };
    }
    return { rv: 0 };
  }

  async join(opts: JoinOptions): Promise<number> {
    const d = this.d;
    const k = d.kernel;
    let got: DlmLockspaceHandle | CallResult;
    if (opts.adoptOnly || opts.adoptOk) {
      got = await k.openLockspace(this.name);
      if (!isHandle(got) && opts.adoptOk) got = await k.newLockspace(this.name, DLM_LSFL_NEWEXCL);
      if (!isHandle(got)) {
        d.error(`add_lockspace_dlm adopt_only ${+opts.adoptOnly} adopt_ok ${+opts.adoptOk} ${this.name} error`);
        // Nothing of a previous instance to continue: the VG was not started here.
        if (opts.adoptOnly && !opts.adoptOk && got.errno === E.NOENT) return -E.ADOPT_NONE;
        return -1;
      }
    } else {
      got = await k.newLockspace(this.name, DLM_LSFL_NEWEXCL);
      if (!isHandle(got)) {
        d.error(`add_lockspace_dlm ${this.name} error`);
        return -1;
      }
    }
    this.dh = got;
    return 0;
  }

  async leave(_opts: { freeVg: boolean }): Promise<number> {
    return this.serial(async () => {
      const dh = this.dh;
      if (!dh) return 0;
      const r = await this.d.kernel.releaseLockspace(dh, true);
      if (r.rv < 0) {
        this.d.error(`rem_lockspace_dlm error ${r.rv}`);
        return r.rv;
      }
      this.dh = null;
      for (const res of this.resources.values()) res.lk.free();
      this.resources.clear();
      return 0;
    });
  }

  lock(res: ResourceView, mode: 'sh' | 'ex', opts: { adoptOnly: boolean; adoptOk: boolean; repair: boolean }): Promise<LockResult> {
    return this.serial(() => this.lockNow(res, mode, opts));
  }

  private async lockNow(res: ResourceView, mode: 'sh' | 'ex', opts: { adoptOnly: boolean; adoptOk: boolean }): Promise<LockResult> {
    const d = this.d;
    const tag = `${this.name}:${res.name}`;
    const dh = this.dh;
    if (!dh) return { rv: -E.NOLS };
    if (opts.adoptOk) {
      d.debug(`${tag} lock_dlm adopt_ok not supported`);
      return { rv: -1 };
    }
    if (opts.adoptOnly) {
      d.debug(`${tag} lock_dlm adopt_only`);
      return this.adopt(dh, res, mode);
    }
    let r = this.resources.get(res.name);
    if (!r) {
      // A new resource: an NL lock first, so the lock (and its LVB) persists between uses.
      r = { lk: d.kernel.newLockBlock(), vb: res.useValueBlock ? { version: 0, flags: 0, rVersion: 0 } : null };
      const nl = await d.kernel.lockWait(dh, LKM.NL, r.lk, (r.vb ? LKF.VALBLK : 0) | LKF.EXPEDITE, res.name);
      if (nl.rv < 0) {
        d.error(`${tag} add_resource_dlm lock error ${nl.rv}`);
        r.lk.free();
        return { rv: nl.rv };
      }
      this.resources.set(res.name, r);
    }
    const flags = LKF.CONVERT | LKF.NOQUEUE | LKF.PERSISTENT | (r.vb ? LKF.VALBLK : 0);
    const dm = dlmMode(mode);
    d.debug(`${tag} lock_dlm`);
    let out: CallResult | null = null;
    if (this.m.lvbBug && mode === 'ex') {
      // NL->EX does not return the latest LVB on that kernel: go through PR.
      out = await d.kernel.lockWait(dh, LKM.PR, r.lk, flags, res.name);
      if (out.rv < 0) d.debug(`${tag} lock_dlm acquire mode PR for ${dm} rv ${out.rv}`);
      else out = null;
    }
    if (!out) out = await d.kernel.lockWait(dh, dm, r.lk, flags, res.name);
    if (out.rv < 0 && out.errno === E.AGAIN) {
      d.debug(`${tag} lock_dlm acquire mode ${dm} rv EAGAIN`);
      return { rv: -E.AGAIN };
    }
    if (out.rv < 0) {
      d.error(`${tag} lock_dlm acquire error ${out.rv} errno ${out.errno}`);
      return { rv: -E.LMERR };
    }
    if (!r.vb) return { rv: 0 };
    if (r.lk.sbFlags & SBF.VALNOTVALID) {
      // The kernel lost the LVB (the last writer died): nothing in it can be trusted.
      d.debug(`${tag} lock_dlm VALNOTVALID`);
      r.vb = { version: 0, flags: 0, rVersion: 0 };
      return { rv: 0, vb: { version: 0, flags: 0, rVersion: 0 }, vbLost: true };
    }
    const vb = decodeVb(r.lk.lvb);
    r.vb = { ...vb };
    return { rv: 0, vb };
  }

  /** lvmlockd's lm_adopt_dlm: take over an orphan lock in the recorded mode. */
  private async adopt(dh: DlmLockspaceHandle, res: ResourceView, mode: 'sh' | 'ex'): Promise<LockResult> {
    const d = this.d;
    const tag = `${this.name}:${res.name}`;
    const old = this.resources.get(res.name);
    const r: DlmResource = old ?? { lk: d.kernel.newLockBlock(), vb: res.useValueBlock ? { version: 0, flags: 0, rVersion: 0 } : null };
    const flags = LKF.PERSISTENT | LKF.ORPHAN | (r.vb ? LKF.VALBLK : 0);
    const dm = dlmMode(mode);
    d.debug(`${tag} adopt_dlm`);
    const out = await d.kernel.adoptOrphan(dh, dm, r.lk, flags, res.name);
    let rv: number;
    if (out.rv >= 0) {
      this.resources.set(res.name, r);
      // As lvmlockd, the LVB is not read when adopting: the value block is reported empty.
      return { rv: 0, vb: { version: 0, flags: 0, rVersion: 0 } };
    } else if (out.errno === E.AGAIN) {
      d.debug(`${tag} adopt_dlm adopt mode ${LD_MODE[mode]} try other mode`);
      rv = -E.ADOPT_RETRY;
    } else if (out.errno === E.NOENT) {
      d.debug(`${tag} adopt_dlm adopt mode ${LD_MODE[mode]} no lock`);
      rv = -E.ADOPT_NONE;
    } else {
      d.debug(`${tag} adopt_dlm mode ${dm} flags ${hex(flags)} error ${out.rv} errno ${out.errno}`);
      rv = out.rv;
    }
    await this.removeResource(res.name, r);
    return { rv };
  }

  convert(res: ResourceView, mode: 'sh' | 'ex', rVersion: number): Promise<number> {
    return this.serial(async () => {
      const d = this.d;
      const tag = `${this.name}:${res.name}`;
      const r = this.resources.get(res.name);
      if (!this.dh || !r) return -E.NOENT;
      d.debug(`${tag} convert_dlm`);
      let flags = LKF.CONVERT | LKF.NOQUEUE | LKF.PERSISTENT;
      if (r.vb && rVersion && res.mode === 'ex') {
        if (!r.vb.version) r.vb.version = VAL_BLK_VERSION;
        r.vb.rVersion = rVersion;
        encodeVb(r.vb, r.lk.lvb);
        d.debug(`${tag} convert_dlm set r_version ${rVersion}`);
        flags |= LKF.VALBLK;
      }
      const dm = dlmMode(mode);
      const out = await d.kernel.lockWait(this.dh, dm, r.lk, flags, res.name);
      if (out.rv < 0 && out.errno === E.AGAIN) {
        d.error(`${tag} convert_dlm mode ${dm} rv EAGAIN`);
        return -E.AGAIN;
      }
      if (out.rv < 0) {
        d.error(`${tag} convert_dlm error ${out.rv}`);
        return -E.LMERR;
      }
      return 0;
    });
  }

  unlock(res: ResourceView, rVersion: number, opts: { freeVg: boolean }): Promise<number> {
    return this.serial(async () => {
      const d = this.d;
      const tag = `${this.name}:${res.name}`;
      const r = this.resources.get(res.name);
      if (!this.dh || !r) return 0;
      // Back to NL, not unlocked: no PERSISTENT, an orphan NL lock would protect nothing.
      let flags = LKF.CONVERT;
      if (r.vb && res.mode === 'ex') {
        const prev = { ...r.vb };
        const next = { ...r.vb };
        let changed = false;
        if (!prev.version) { next.version = VAL_BLK_VERSION; changed = true; }
        if (opts.freeVg && res.type === 'vg') { next.flags = VBF_REMOVED; changed = true; }
        if (rVersion) { next.rVersion = rVersion; changed = true; }
        if (changed) {
          r.vb = next;
          encodeVb(next, r.lk.lvb);
          d.debug(`${tag} unlock_dlm vb old ${hex(prev.version)} ${hex(prev.flags)} ${prev.rVersion} new ${hex(next.version)} ${hex(next.flags)} ${next.rVersion}`);
        } else {
          d.debug(`${tag} unlock_dlm vb unchanged`);
        }
        flags |= LKF.VALBLK;
      } else {
        d.debug(`${tag} unlock_dlm`);
      }
      const out = await d.kernel.lockWait(this.dh, LKM.NL, r.lk, flags, res.name);
      if (out.rv < 0) {
        d.error(`${tag} unlock_dlm error ${out.rv}`);
        return -E.LMERR;
      }
      return 0;
    });
  }

  /** The core dropped the resource: release its NL lock (lvmlockd's lm_rem_resource_dlm). */
  forget(resName: string): void {
    const r = this.resources.get(resName);
    if (!r) return;
    this.resources.delete(resName);
    void this.serial(() => this.removeResource(resName, r));
  }

  private async removeResource(resName: string, r: DlmResource): Promise<void> {
    if (this.dh && r.lk.lkid) {
      const out = await this.d.kernel.unlockWait(this.dh, r.lk, 0);
      if (out.rv < 0) this.d.error(`${this.name}:${resName} rem_resource_dlm unlock error ${out.rv}`);
    }
    if (this.resources.get(resName) === r) this.resources.delete(resName);
    r.lk.free();
  }

  /** Other nodes in the lockspace, from dlm_controld's configfs members (lvmlockd's lm_hosts_dlm). */
  async otherHosts(_notify: boolean): Promise<{ rv: number; hostsUnknown: boolean }> {
    const path = `${DLM_LOCKSPACES_PATH}/${this.name}/nodes`;
    const nodes = this.d.configfs.readDir(path);
    if (typeof nodes === 'number') return { rv: -ECONNREFUSED, hostsUnknown: false };
    const count = nodes.filter((n) => !n.startsWith('.')).length;
    if (!count) {
      this.d.error(`lm_hosts_dlm found no nodes in ${path}`);
      return { rv: 0, hostsUnknown: false };
    }
    return { rv: count - 1, hostsUnknown: false };
  }

  /** After adoption: drop the orphans of our node that were not adopted (lvmlockd's lm_purge_locks_dlm). */
  purgeOrphans(): Promise<number> {
    return this.serial(async () => {
      const d = this.d;
      if (!this.dh) {
        d.error(`purge_locks_dlm ${this.name} no dlm_handle_t error`);
        return -1;
      }
      const nodeid = localNodeid(d.configfs);
      if (nodeid < 0) {
        d.error('failed to get local nodeid');
        return -1;
      }
      d.debug(`ls: ${this.name} purge locks`);
      const out = await d.kernel.purge(this.dh, nodeid, 0);
      if (out.rv < 0) {
        d.error(`purge_locks_dlm ${this.name} error`);
        return -1;
      }
      return 0;
    });
  }

  /** For tests and lvmlockctl-style dumps: the modes the kernel granted us, by resource. */
  heldResources(): string[] { return [...this.resources.keys()]; }
}

/** Our node id: the comms entry whose `local` is 1 (lvmlockd's get_local_nodeid). */
export function localNodeid(fs: DlmConfigfs): number {
  const entries = fs.readDir(DLM_COMMS_PATH);
  if (typeof entries === 'number') return -ECONNREFUSED;
  for (const e of entries) {
    if (e.startsWith('.')) continue;
    const local = fs.readFile(`${DLM_COMMS_PATH}/${e}/local`);
    if (typeof local === 'number' || parseInt(local, 10) !== 1) continue;
    const id = fs.readFile(`${DLM_COMMS_PATH}/${e}/nodeid`);
    if (typeof id === 'number') continue;
    const n = parseInt(id, 10);
    if (Number.isInteger(n)) return n;
  }
  return -1;
}
