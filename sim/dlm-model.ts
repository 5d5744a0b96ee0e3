/**
 * A model of the kernel DLM as lvmlockd's dlm manager sees it through libdlm,
 * for unit tests and the simulator: lockspaces joined per node, resources with
 * granted locks and a queue of waiting requests, NOQUEUE (EAGAIN instead of
 * waiting), lock value blocks read on grants and written on down-conversions
 * from EX, PERSISTENT locks left as orphans when their process dies (adopted
 * with LKF_ORPHAN, purged with dlm_ls_purge), and node failure: a dead node's
 * locks are released only when recovery completes (after fencing), requests
 * wait meanwhile, and LVB content is lost the ways the kernel loses it:
 * VALNOTVALID when an EX holder died or only NL copies survive a recovery,
 * and a zeroed LVB when the resource had no locks left (the kernel frees it).
 * Modelled on the kernel's documented behaviour, not its code.
 */
import {
  DLM_LSFL_NEWEXCL, DLM_LVB_LEN, DLMC, LKF, LKM, SBF,
  type CallResult, type DlmConfigfs, type DlmControl, type DlmKernel, type DlmLockspaceHandle, type LockBlock,
} from '../src/lm/dlm/kernel';

const EAGAIN = 11, ENOENT = 2, EEXIST = 17, EINVAL = 22, ENOTCONN = 107;

/** Modes granted together: NL with all, PR with PR, EX alone. */
function compatible(a: number, b: number): boolean {
  if (a === LKM.NL || b === LKM.NL) return true;
  return a === LKM.PR && b === LKM.PR;
}

class ModelLockBlock implements LockBlock {
  status = 0;
  lkid = 0;
  sbFlags = 0;
  readonly lvb = Buffer.alloc(DLM_LVB_LEN);
  freed = false;
  free(): void { this.freed = true; }
}

interface Lkb {
  id: number;
  nodeid: number;
  /** The process (daemon instance) holding it; null for an orphan. */
  proc: ModelProcess | null;
  grmode: number;
  persistent: boolean;
  block: ModelLockBlock | null;
}

interface Waiter { lkb: Lkb; mode: number; flags: number; block: ModelLockBlock; done: () => void }

interface Rsb {
  name: string;
  granted: Lkb[];
  waiting: Waiter[];
  lvb: Buffer;
  valNotValid: boolean;
}

interface ModelLockspace {
  name: string;
  members: Set<number>;
  resources: Map<string, Rsb>;
  /** Nodes that died and whose locks wait for recovery. */
  recovering: Set<number>;
  recoveryWaiters: Array<() => void>;
}

class Handle implements DlmLockspaceHandle {
  constructor(readonly name: string, readonly proc: ModelProcess) {}
}

export interface DlmModelOptions {
  clusterName?: string;
  /** How a result reaches the caller (default: a macrotask). The simulator passes its scheduler. */
  defer?(fn: () => void): void;
  log?(line: string): void;
  /** --inject-bug dlm-hide-lost-lvb: recovery keeps a dead writer's stale LVB and reports it as valid. */
  bugHideLostLvb?: boolean;
}

/** The cluster: every node's view of the DLM, and the faults. */
export class DlmClusterModel {
  readonly lockspaces = new Map<string, ModelLockspace>();
  readonly nodes = new Map<number, ModelNode>();
  private nextLkid = 1;
  clusterName: string;
  /** dlm_controld run requests (refresh_lv): command → per-node handler result. */
  runHandler: (nodeid: number, command: string) => number = () => 0;

  constructor(private readonly opts: DlmModelOptions = {}) {
    this.clusterName = opts.clusterName ?? 'cluster1';
  }

  node(nodeid: number): ModelNode {
    let n = this.nodes.get(nodeid);
    if (!n) { n = new ModelNode(this, nodeid); this.nodes.set(nodeid, n); }
    return n;
  }

  defer(fn: () => void): void {
    if (this.opts.defer) this.opts.defer(fn); else setImmediate(fn);
  }

  log(line: string): void { this.opts.log?.(line); }

  newLkid(): number { return this.nextLkid++; }

  rsb(ls: ModelLockspace, name: string): Rsb {
    let r = ls.resources.get(name);
    if (!r) { r = { name, granted: [], waiting: [], lvb: Buffer.alloc(DLM_LVB_LEN), valNotValid: false }; ls.resources.set(name, r); }
    return r;
  }

  /** The node died (powered off): its locks stay until recoverNode after fencing. */
  failNode(nodeid: number): void {
    const n = this.node(nodeid);
    n.dead = true;
    for (const p of n.processes) p.dead = true;
    for (const ls of this.lockspaces.values()) {
      if (!ls.members.has(nodeid)) continue;
      ls.recovering.add(nodeid);
    }
    this.log(`dlm node ${nodeid} failed`);
  }

  /** Recovery after fencing: the dead node leaves every lockspace, its locks go, LVBs are recovered. */
  recoverNode(nodeid: number): void {
    for (const ls of this.lockspaces.values()) {
      if (!ls.recovering.delete(nodeid)) continue;
      ls.members.delete(nodeid);
      for (const r of ls.resources.values()) {
        const lost = r.granted.filter((l) => l.nodeid === nodeid);
        if (!lost.length) continue;
        r.granted = r.granted.filter((l) => l.nodeid !== nodeid);
        r.waiting = r.waiting.filter((w) => w.lkb.nodeid !== nodeid);
        if (lost.some((l) => l.grmode === LKM.EX)) {
          // The last writer died: its LVB updates may be lost.
          if (!this.opts.bugHideLostLvb) r.valNotValid = true;
        } else if (!r.granted.some((l) => l.grmode >= LKM.PR)) {
          // Only NL copies survive: the value is recovered from one but marked not valid.
          r.valNotValid = true;
        }
        this.freeIfUnused(r);
        this.grantWaiting(r);
      }
      if (ls.recovering.size === 0) {
        const ws = ls.recoveryWaiters.splice(0);
        for (const w of ws) this.defer(w);
      }
    }
    this.log(`dlm node ${nodeid} recovered`);
  }

  /** A resource without locks is freed by the kernel: its LVB is gone (zero when it is used again). */
  freeIfUnused(r: Rsb): void {
    if (r.granted.length || r.waiting.length) return;
    r.lvb.fill(0);
    r.valNotValid = false;
  }

  /** Runs fn when the lockspace is not in recovery (requests wait, as the kernel's). */
  whenRecovered(ls: ModelLockspace, fn: () => void): void {
    if (ls.recovering.size === 0) fn();
    else ls.recoveryWaiters.push(fn);
  }

  grantable(r: Rsb, lkb: Lkb, mode: number): boolean {
    return r.granted.every((g) => g === lkb || compatible(g.grmode, mode));
  }

  /** Applies a grant: mode and LVB (read on up-conversion, written on down-conversion from EX). */
  grant(r: Rsb, lkb: Lkb, mode: number, flags: number, block: ModelLockBlock): void {
    const from = lkb.grmode;
    lkb.grmode = mode;
    if (!r.granted.includes(lkb)) r.granted.push(lkb);
    if (flags & LKF.PERSISTENT) lkb.persistent = true;
    block.sbFlags = 0;
    if (flags & LKF.VALBLK) {
      if (from === LKM.EX && mode < LKM.EX) {
        block.lvb.copy(r.lvb);
        r.valNotValid = false;
      } else if (mode >= from || from < 0) {
        r.lvb.copy(block.lvb);
        if (r.valNotValid) block.sbFlags |= SBF.VALNOTVALID;
      }
    }
    block.status = 0;
    block.lkid = lkb.id;
  }

  grantWaiting(r: Rsb): void {
    for (const w of [...r.waiting]) {
      if (!this.grantable(r, w.lkb, w.mode)) break;
      r.waiting.splice(r.waiting.indexOf(w), 1);
      this.grant(r, w.lkb, w.mode, w.flags, w.block);
      this.defer(w.done);
    }
  }
}

export class ModelNode {
  dead = false;
  readonly processes: ModelProcess[] = [];
  constructor(readonly cluster: DlmClusterModel, readonly nodeid: number) {}

  /** A daemon instance on this node: its DlmKernel view. */
  process(): ModelProcess {
    const p = new ModelProcess(this);
    this.processes.push(p);
    return p;
  }

  /** dlm_controld's configfs for this node. */
  configfs(opts: { controld: () => boolean } = { controld: () => true }): DlmConfigfs {
    const c = this.cluster;
    const me = this.nodeid;
    const base = '/sys/kernel/config/dlm/cluster';
    return {
      readFile(path: string): string | number {
        if (!opts.controld()) return -ENOENT;
        if (path === `${base}/cluster_name`) return `${c.clusterName}\n`;
        const m = /^\/sys\/kernel\/config\/dlm\/cluster\/comms\/(\d+)\/(local|nodeid)$/.exec(path);
        if (m && c.nodes.has(Number(m[1]))) return m[2] === 'local' ? (Number(m[1]) === me ? '1\n' : '0\n') : `${m[1]}\n`;
        return -ENOENT;
      },
      readDir(path: string): string[] | number {
        if (!opts.controld()) return -ENOENT;
        if (path === `${base}/comms`) return [...c.nodes.keys()].map(String);
        const m = /^\/sys\/kernel\/config\/dlm\/cluster\/spaces\/([^/]+)\/nodes$/.exec(path);
        const ls = m ? c.lockspaces.get(m[1]!) : undefined;
        if (!ls || !ls.members.has(me)) return -ENOENT;
        return [...ls.members].map(String);
      },
    };
  }

  /** dlm_controld's run API from this node. */
  control(): DlmControl {
    const c = this.cluster;
    const me = this.nodeid;
    const runs = new Map<string, number>();
    let n = 0;
    return {
      async runStart(command: string, _nodeid: number, flags: number): Promise<{ rv: number; uuid: string }> {
        const uuid = `run-${me}-${++n}`;
        let status = DLMC.RUN_STATUS_DONE;
        for (const other of c.nodes.values()) {
          if (other.dead || ((flags & DLMC.RUN_START_NODE_NONE) && other.nodeid === me)) continue;
          if (c.runHandler(other.nodeid, command) !== 0) status |= DLMC.RUN_STATUS_FAILED;
        }
        runs.set(uuid, status);
        return { rv: 0, uuid };
      },
      async runCheck(uuid: string): Promise<{ rv: number; status: number }> {
        const s = runs.get(uuid);
        if (s === undefined) return { rv: -ENOENT, status: 0 };
        runs.delete(uuid);
        return { rv: 0, status: s };
      },
    };
  }
}

export class ModelProcess implements DlmKernel {
  dead = false;
  readonly handles = new Set<Handle>();
  constructor(readonly node: ModelNode) {}

  private get c(): DlmClusterModel { return this.node.cluster; }

  /** A dead process (killed daemon, node off) never sees a completion. */
  private later<T>(fn: () => T): Promise<T> {
    return new Promise((resolve) => this.c.defer(() => { if (!this.dead) resolve(fn()); }));
  }

  /** The daemon died (SIGKILL): its device handles close; PERSISTENT locks stay as orphans. */
  crash(): void {
    this.dead = true;
    for (const h of this.handles) {
      const ls = this.c.lockspaces.get(h.name);
      if (!ls) continue;
      for (const r of ls.resources.values()) {
        for (const l of [...r.granted]) {
          if (l.proc !== this) continue;
          if (l.persistent && l.grmode !== LKM.NL) { l.proc = null; l.block = null; continue; }
          r.granted.splice(r.granted.indexOf(l), 1);
        }
        r.waiting = r.waiting.filter((w) => w.lkb.proc !== this);
        this.c.freeIfUnused(r);
        this.c.grantWaiting(r);
      }
    }
    this.handles.clear();
  }

  async kernelVersion(): Promise<{ major: number; minor: number; patch: number } | null> {
    return this.later(() => ({ major: 6, minor: 2, patch: 0 }));
  }

  newLockBlock(): LockBlock { return new ModelLockBlock(); }

  newLockspace(name: string, flags: number): Promise<DlmLockspaceHandle | CallResult> {
    return this.later(() => {
      const me = this.node.nodeid;
      let ls = this.c.lockspaces.get(name);
      if (ls?.members.has(me)) {
        if (flags & DLM_LSFL_NEWEXCL) return { rv: -1, errno: EEXIST };
      } else {
        if (!ls) {
          ls = { name, members: new Set(), resources: new Map(), recovering: new Set(), recoveryWaiters: [] };
          this.c.lockspaces.set(name, ls);
        }
        ls.members.add(me);
      }
      const h = new Handle(name, this);
      this.handles.add(h);
      return h;
    });
  }

  openLockspace(name: string): Promise<DlmLockspaceHandle | CallResult> {
    return this.later(() => {
      const ls = this.c.lockspaces.get(name);
      if (!ls || !ls.members.has(this.node.nodeid)) return { rv: -1, errno: ENOENT };
      const h = new Handle(name, this);
      this.handles.add(h);
      return h;
    });
  }

  releaseLockspace(h: DlmLockspaceHandle, _force: boolean): Promise<CallResult> {
    return this.later(() => {
      const me = this.node.nodeid;
      const ls = this.c.lockspaces.get(h.name);
      this.handles.delete(h as Handle);
      if (!ls) return { rv: -1, errno: ENOENT };
      ls.members.delete(me);
      for (const r of ls.resources.values()) {
        r.granted = r.granted.filter((l) => l.nodeid !== me);
        r.waiting = r.waiting.filter((w) => w.lkb.nodeid !== me);
        this.c.freeIfUnused(r);
        this.c.grantWaiting(r);
      }
      if (ls.members.size === 0) this.c.lockspaces.delete(h.name);
      return { rv: 0, errno: 0 };
    });
  }

  private space(h: DlmLockspaceHandle): { ls: ModelLockspace } | CallResult {
    const ls = this.c.lockspaces.get(h.name);
    if (this.dead || !this.handles.has(h as Handle) || !ls) return { rv: -1, errno: ENOTCONN };
    return { ls };
  }

  lockWait(h: DlmLockspaceHandle, mode: number, lk: LockBlock, flags: number, resName: string): Promise<CallResult> {
    return new Promise((resolve) => this.c.defer(() => {
      if (this.dead) return;
      const s = this.space(h);
      if ('rv' in s) { resolve(s); return; }
      const block = lk as ModelLockBlock;
      this.c.whenRecovered(s.ls, () => {
        if (this.dead) return;
        const r = this.c.rsb(s.ls, resName);
        let lkb: Lkb | undefined;
        if (flags & LKF.CONVERT) {
          lkb = r.granted.find((l) => l.id === block.lkid && l.proc === this);
          if (!lkb) { block.status = EINVAL; resolve({ rv: -1, errno: EINVAL }); return; }
        } else {
          lkb = { id: this.c.newLkid(), nodeid: this.node.nodeid, proc: this, grmode: -1, persistent: false, block };
        }
        if (this.c.grantable(r, lkb, mode) && (r.waiting.length === 0 || (flags & LKF.CONVERT))) {
          this.c.grant(r, lkb, mode, flags, block);
          resolve({ rv: 0, errno: 0 });
          return;
        }
        if (flags & LKF.NOQUEUE) {
          block.status = EAGAIN;
          resolve({ rv: -1, errno: EAGAIN });
          return;
        }
        r.waiting.push({ lkb, mode, flags, block, done: () => { if (!this.dead) resolve({ rv: 0, errno: 0 }); } });
      });
    }));
  }

  unlockWait(h: DlmLockspaceHandle, lk: LockBlock, _flags: number): Promise<CallResult> {
    return this.later(() => {
      const s = this.space(h);
      if ('rv' in s) return s;
      const block = lk as ModelLockBlock;
      for (const r of s.ls.resources.values()) {
        const i = r.granted.findIndex((l) => l.id === block.lkid && l.proc === this);
        if (i < 0) continue;
        r.granted.splice(i, 1);
        this.c.freeIfUnused(r);
        this.c.grantWaiting(r);
        return { rv: 0, errno: 0 };
      }
      return { rv: -1, errno: ENOENT };
    });
  }

  adoptOrphan(h: DlmLockspaceHandle, mode: number, lk: LockBlock, _flags: number, resName: string): Promise<CallResult> {
    return this.later(() => {
      const s = this.space(h);
      if ('rv' in s) return s;
      const r = s.ls.resources.get(resName);
      const orphan = r?.granted.find((l) => l.proc === null && l.nodeid === this.node.nodeid);
      if (!orphan) return { rv: -1, errno: ENOENT };
      if (orphan.grmode !== mode) return { rv: -1, errno: EAGAIN };
      const block = lk as ModelLockBlock;
      orphan.proc = this;
      orphan.block = block;
      block.lkid = orphan.id;
      return { rv: orphan.id, errno: 0 };
    });
  }

  purge(h: DlmLockspaceHandle, nodeid: number, _pid: number): Promise<CallResult> {
    return this.later(() => {
      const s = this.space(h);
      if ('rv' in s) return s;
      for (const r of s.ls.resources.values()) {
        r.granted = r.granted.filter((l) => !(l.proc === null && l.nodeid === nodeid));
        this.c.freeIfUnused(r);
        this.c.grantWaiting(r);
      }
      return { rv: 0, errno: 0 };
    });
  }
}

/** What a node holds, for checks: resource → granted modes by node. */
export function grantedModes(c: DlmClusterModel, lsName: string, resName: string): Array<{ nodeid: number; mode: number; orphan: boolean }> {
  const r = c.lockspaces.get(lsName)?.resources.get(resName);
  return (r?.granted ?? []).map((l) => ({ nodeid: l.nodeid, mode: l.grmode, orphan: l.proc === null }));
}
