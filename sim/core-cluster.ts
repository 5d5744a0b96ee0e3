/**
 * Core-level cluster: N simulated hosts, each running the real daemon core
 * (LockdCore from src/core) behind fake CorePorts whose sleeps, deferred
 * jobs and clock come from the simulator, driven by lvm-like commands from
 * several clients per host. Faults: daemon pause, daemon crash and restart,
 * client disconnects mid-command.
 *
 * The lock manager is pluggable (CoreLmFactory, core-lm.ts): the test-mode
 * managers (src/lm/test), with `lm: 'sanlock'` the real sanlock manager
 * (src/lm/sanlock) of every host on one shared simulated LUN, or with
 * `lm: 'dlm'` the real dlm manager (src/lm/dlm) on the DLM model, or with
 * `lm: 'idm'` the real IDM manager (src/lm/idm) of each host talking to the
 * real ILM lockspace and raid-lock code over emulated drives (idm-model.ts);
 * with a real manager what the hosts were told they hold is also checked
 * across hosts.
 *
 * This file is the cluster: its hosts, their daemons and ports, the clients'
 * side of the socket, crash and restart, and the run. The other parts have
 * files of their own: core-workload.ts (the lvm-like commands),
 * core-checker.ts (the invariants, after every step), core-faults.ts (the
 * fault plan and the watchdog), core-lm.ts (the lock managers).
 */
import { LockdCore, newGlobalLockChoice, type CorePorts, type MutableGlobalLockChoice } from '../src/core/lockd';
import { ConfigMap, formatRequest, parseConfigTree, type WireValue } from '../src/protocol/config-tree';
import { calcHostDeadSeconds } from '../src/leases/timeouts';
import { CoreChecker } from './core-checker';
import { planCoreFaults, planIdmFaults, startWatchdog } from './core-faults';
import { LVMLOCK_BYTES, dlmLmFactory, idmLmFactory, sanlockLmFactory, testLmFactory, type CoreLmFactory } from './core-lm';
import { CoreWorkload } from './core-workload';
import { DlmClusterModel } from './dlm-model';
import { IdmClusterModel } from './idm-model';
import { SimHost } from './kernel/host';
import { Rng } from './kernel/rng';
import { Scheduler, drain, fmtT } from './kernel/scheduler';
import { NO_DISK_FAULTS, SimStorage, crashWriteResolver, type InflightWrite } from './kernel/storage';
import type { Violation } from './lease-cluster';

export interface CoreRunResult {
  seed: number;
  violation: Violation | undefined;
  trace: string[];
  stats: { steps: number; simMs: number; faults: number; requests: number; replies: number; errors: number };
}

export interface CoreRunOptions {
  hosts?: number | undefined;
  factory?: CoreLmFactory;
  traceAll?: boolean;
  coreDebug?: boolean;
  lm?: 'test' | 'sanlock' | 'dlm' | 'idm';
  allowStopRace?: boolean;
  noWatchdog?: boolean;
  dlmBug?: { hideLostLvb?: boolean };
  /** --inject-bug for the IDM path: a firmware that breaks live holders, or no LVB timestamp "+1". */
  idmBug?: { breakLiveHolders?: boolean; noTimestampPlusOne?: boolean };
  /**
   * idm: let the workload kill a machine right after it wrote VG metadata holding
   * the VG lock ex. Off by default: hosts other than the one that breaks the dead
   * holder's mutex may then trust stale metadata (docs/simulator.md, finding 22, open).
   */
  idmDeadWriter?: boolean;
}

export type Fields = Array<readonly [string, WireValue]>;

export interface VgDef {
  name: string;
  lockType: 'sanlock' | 'dlm' | 'idm';
  /** idm: the VG's UUID and PVs (the lock's drives), and each LV's PVs (`path[N]` of lock_lv). */
  uuid?: string;
  pvs?: string[];
  lvPvs?: Map<string, string[]>;
  /** LVs activated with persistent locks (lvchange -a): host-wide, so clients' told state is not checked on them. */
  lvs: string[];
  /** LVs only locked transiently by running commands: what clients are told must never conflict. */
  tlvs: string[];
}

export interface Pending {
  client: Client;
  text: string;
  what: string;
  sent: number;
  /** The daemon's total paused time when the request was sent (a paused daemon cannot answer). */
  pausedAtSend: number;
  resolve: (r: ConfigMap | null) => void;
}

export interface Client {
  id: number;
  host: CoreHost;
  pending: Pending | undefined;
  /** LV locks this client was told it holds (transient), uuid → mode. */
  told: Map<string, 'sh' | 'ex'>;
  gone: boolean;
}

export class CoreHost {
  core!: LockdCore;
  gl!: MutableGlobalLockChoice;
  clients = new Map<number, Client>();
  started = new Set<string>();
  /** dlm mode: the VG metadata version this host's commands work from (reread on invalidation, or written). */
  vgCache = new Map<string, number>();
  constructor(readonly id: number, readonly host: SimHost) {}
}

/** One core-level schedule's world: what the workload, the checker and the faults share. */
export class CoreCluster {
  readonly sim = new Scheduler();
  readonly root: Rng;
  /** The workload's stream: the schedule's shape, the commands, the fault plan. */
  readonly rng: Rng;
  readonly sanlockMode: boolean;
  /** dlm: the real dlm manager on the DLM model; a host crash is a node failure that dlm_controld fences, and the node's locks go only when recovery completes. */
  readonly dlmMode: boolean;
  /** What hosts were told they hold is checked across hosts (real lock managers only). */
  readonly crossMode: boolean;
  /** The stop_vg race (docs/simulator.md, finding 5) is fixed in the core: race freely unless told not to. */
  readonly allowStopRace: boolean;
  readonly coreDebug: boolean;
  readonly ioTimeout = 1;
  readonly storage: SimStorage | undefined;
  readonly dlmRng: Rng | undefined;
  readonly dlmModel: DlmClusterModel | undefined;
  /** idm: the real IDM manager, the real ILM lockspace/raid-lock code and the firmware model on emulated drives. */
  readonly idmMode: boolean;
  readonly idmModel: IdmClusterModel | undefined;
  /** idm: the dead-writer fault of the dlm mode is on (CoreRunOptions.idmDeadWriter). */
  readonly idmDeadWriter: boolean;
  private readonly factory: CoreLmFactory;
  /** host_dead with io_timeout 1 and sanlock's watchdog_fire_timeout 60: 68 s. */
  readonly hostDeadMs: number;
  readonly durationMs: number;
  readonly vgs: VgDef[];
  readonly stats = { steps: 0, simMs: 0, faults: 0, requests: 0, replies: 0, errors: 0 };
  /** Requests sent and not yet answered (or given up: client gone, daemon crashed). */
  readonly pendingAll = new Set<Pending>();
  /** VG metadata seqno: on disk, so shared by every host. */
  readonly vgVersion = new Map<string, number>();
  readonly hosts: CoreHost[] = [];
  readonly checker: CoreChecker;
  readonly workload: CoreWorkload;
  /** The run is over: clients finish their commands and stop. */
  stopping = false;
  /** Client loops still running. */
  activeLoops = 0;
  private nextClient = 1;
  private readonly crashWrite: (w: InflightWrite) => void;

  constructor(readonly seed: number, o: CoreRunOptions) {
    const sim = this.sim;
    this.allowStopRace = o.allowStopRace ?? true;
    this.coreDebug = !!o.coreDebug;
    sim.traceAll = !!o.traceAll;
    const root = (this.root = new Rng(seed));
    const rng = (this.rng = root.fork('core-workload'));
    const sanlockMode = (this.sanlockMode = o.lm === 'sanlock');
    const dlmMode = (this.dlmMode = o.lm === 'dlm');
    const idmMode = (this.idmMode = o.lm === 'idm');
    this.idmDeadWriter = idmMode && !!o.idmDeadWriter;
    this.crossMode = sanlockMode || dlmMode || idmMode;
    const nHosts = o.hosts ?? (sanlockMode || dlmMode || idmMode ? rng.intIn(2, 3) : rng.intIn(1, 3));
    const storage = (this.storage = sanlockMode ? new SimStorage(sim, root.fork('disk'), LVMLOCK_BYTES, 512) : undefined);
    if (storage) storage.rates = { ...NO_DISK_FAULTS, latencyMax: rng.pick([0.5, 5, 50]) };
    const dlmRng = (this.dlmRng = dlmMode ? root.fork('dlm') : undefined);
    const dlmModel = (this.dlmModel = dlmMode
      ? new DlmClusterModel({
        clusterName: 'test', defer: (fn) => sim.after(dlmRng!.range(0, 3), fn), log: (l) => sim.log(l),
        ...(o.dlmBug?.hideLostLvb ? { bugHideLostLvb: true } : {}),
      })
      : undefined);
    const idmRng = idmMode ? root.fork('idm') : undefined;
    const idmModel = (this.idmModel = idmRng
      ? new IdmClusterModel({
        sim, rng: idmRng, drives: idmRng.pick([1, 2, 3, 3, 3, 5]), log: (l) => sim.log(l), verbose: !!o.coreDebug,
        onException: (where, e) => this.checker.fail('ilm-exception', `${where}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`.slice(0, 400)),
        ...(o.idmBug?.breakLiveHolders ? { bugBreakLiveHolders: true } : {}),
      })
      : undefined);
    this.factory = o.factory ?? (storage ? sanlockLmFactory(storage, root.fork('lm'), this.ioTimeout)
      : dlmModel ? dlmLmFactory(dlmModel)
        : idmModel ? idmLmFactory(idmModel, root.fork('idm-ilm'), (h, path, args) => this.idmKillPath(h, path, args),
          o.idmBug?.noTimestampPlusOne ? { noTimestampPlusOne: true } : undefined, o.coreDebug ? (l) => sim.log(l) : undefined)
          : testLmFactory);
    this.hostDeadMs = calcHostDeadSeconds(this.ioTimeout) * 1000;
    // idm: long enough for a host's mutexes to time out (60 s) and be broken, and for the kill path (50 s).
    this.durationMs = Math.round(sanlockMode ? rng.range(2, 3) * this.hostDeadMs : idmMode ? rng.range(180_000, 300_000) : rng.range(60_000, 180_000));
    this.vgs = dlmMode
      ? [{ name: 'vgb', lockType: 'dlm', lvs: ['lvuuid-b0', 'lvuuid-b2'], tlvs: ['lvuuid-b1', 'lvuuid-b3'] }]
      : idmModel ? [idmVg(idmModel, idmRng!)]
      : [
        { name: 'vga', lockType: 'sanlock', lvs: ['lvuuid-a0', 'lvuuid-a1'], tlvs: ['lvuuid-a2', 'lvuuid-a3'] },
        { name: 'vgb', lockType: 'dlm', lvs: ['lvuuid-b0'], tlvs: ['lvuuid-b1'] },
      ];
    this.checker = new CoreChecker(this);
    this.workload = new CoreWorkload(this);
    for (let h = 1; h <= nHosts; h++) this.hosts.push(new CoreHost(h, new SimHost(sim, h, rng.range(0, 1e8), 1)));
    this.crashWrite = storage ? crashWriteResolver(root.fork('crash'), storage.stats, 512, () => sim.now, () => 1000) : () => undefined;
  }

  /** Lock types whose LV locks are checked across hosts. */
  crossVg(vg: VgDef): boolean {
    return (this.sanlockMode && vg.lockType === 'sanlock') || (this.dlmMode && vg.lockType === 'dlm') || (this.idmMode && vg.lockType === 'idm');
  }

  /** A new daemon incarnation on a host: its lock managers, its core, its ports. */
  boot(ch: CoreHost): void {
    const { sim, checker, stats, pendingAll } = this;
    ch.gl = newGlobalLockChoice();
    const managers = this.factory({ host: ch.host, gl: ch.gl, hostId: ch.id, log: (l) => void l });
    checker.watchManagers(ch, managers);
    const ports: CorePorts = {
      send: (id: number, text: string): boolean => {
        const c = ch.clients.get(id);
        if (!c || c.gone || ch.host.crashed) return false;
        const p = c.pending;
        if (!p) {
          checker.fail('extra-reply', `host ${ch.id} client ${id} got a reply with no request outstanding: ${text.slice(0, 120)}`);
          return true;
        }
        c.pending = undefined;
        pendingAll.delete(p);
        stats.replies++;
        const parsed = parseConfigTree(text);
        if (!parsed.ok) {
          checker.fail('bad-reply', `host ${ch.id} sent an unparsable reply: ${text.slice(0, 120)}`);
          p.resolve(null);
        } else p.resolve(new ConfigMap(parsed.entries));
        return true;
      },
      sendDump: async (text: string): Promise<number> => Buffer.byteLength(text),
      dumpLog: (): string => '',
      debug: (l: string): void => {
        // The daemon invalidated the VG: its commands reread the metadata, at the version on disk.
        const inv = this.dlmMode || this.idmMode ? /^lvm_(.+):VGLK res_lock invalidate vg state/.exec(l) : null;
        if (inv) ch.vgCache.set(inv[1]!, this.vgVersion.get(inv[1]!) ?? 1);
        if (this.coreDebug) sim.log(`h${ch.id} D ${l}`);
      },
      error: (l: string): void => {
        if (/lockspace loop failed|work .* failed/.test(l)) checker.fail('core-exception', `host ${ch.id}: ${l.slice(0, 300)}`);
      },
      sleep: (ms: number): Promise<void> => ch.host.clock.sleep(ms),
      defer: (fn: () => void): void => ch.host.at(sim.now, fn),
      nowMs: (): number => ch.host.clock.nowMs(),
      quit: (): void => undefined,
      locksChanged: (): void => undefined,
      killVg: (vg: string): void => {
        sim.log(`h${ch.id} KILL PATH: lock manager failed, VG ${vg} killed (its LVs are deactivated)`);
        checker.vgKilled(ch.id, vg);
      },
    };
    ch.core = new LockdCore(ports, { testMode: true, glType: null, managers, glChoice: ch.gl });
    ch.vgCache.clear();
    ch.started.clear();
    ch.clients.clear();
  }

  // ---- the clients' side of the daemon's socket

  connect(ch: CoreHost): Client {
    const c: Client = { id: 0, host: ch, pending: undefined, told: new Map(), gone: false };
    c.id = ch.core.addClient(1000 + this.nextClient++, 10, 2);
    ch.clients.set(c.id, c);
    return c;
  }
  disconnect(c: Client): void {
    if (c.gone) return;
    c.gone = true;
    c.told.clear();
    if (c.pending) {
      this.pendingAll.delete(c.pending);
      c.pending.resolve(null);
      c.pending = undefined;
    }
    if (!c.host.host.crashed) c.host.core.removeClient(c.id);
    c.host.clients.delete(c.id);
    this.checker.clientGone(c);
  }

  /** Send one request; resolves with the reply, or null (client gone, daemon crashed). */
  rpc(c: Client, fields: Fields | string, what: string): Promise<ConfigMap | null> {
    return new Promise((resolve) => {
      if (c.gone || c.host.host.crashed) return resolve(null);
      const sim = this.sim;
      const text = typeof fields === 'string' ? fields : formatRequest(fields);
      const p: Pending = { client: c, text, what, sent: sim.now, pausedAtSend: c.host.host.pausedMs, resolve };
      c.pending = p;
      this.pendingAll.add(p);
      this.stats.requests++;
      const inc = c.host.host.incarnation;
      c.host.host.at(sim.now, () => {
        if (c.gone || c.host.host.incarnation !== inc) return;
        c.host.core.request(c.id, text);
      });
    });
  }

  // ---- daemon crash and restart

  /** Kill the host's daemon (its clients go with it) and restart it after downMs. */
  crashHost(ch: CoreHost, downMs: number): void {
    if (ch.host.crashed) return;
    const { sim, dlmModel } = this;
    for (const c of [...ch.clients.values()]) {
      c.gone = true;
      if (c.pending) {
        this.pendingAll.delete(c.pending);
        c.pending.resolve(null);
      }
    }
    ch.clients.clear();
    this.checker.hostDown(ch.id);
    ch.host.crash(this.crashWrite);
    // idm: the machine is off, its ILM with it; its mutexes stay on the drives until they time out.
    this.idmModel?.machineCrashed(ch.id);
    if (dlmModel) {
      // The node is off: dlm_controld on the others fences it, then the DLM recovers.
      dlmModel.failNode(ch.id);
      sim.after(this.dlmRng!.range(0.2, 0.9) * downMs, () => dlmModel.recoverNode(ch.id));
    }
    sim.after(downMs, () => {
      ch.host.restart();
      sim.log(`h${ch.id} daemon restarts`);
      this.startHost(ch);
    });
  }

  /**
   * idm: the ILM's failure action ran "lvmlockctl --kill VG": the admin's
   * lvmlockctl_kill_command deactivates the VG's LVs at once (the checker stops
   * counting them as used), then lvmlockctl sends kill_vg and drop_vg to lvmlockd.
   */
  idmKillPath(hostId: number, path: string, args: string): void {
    const ch = this.hosts[hostId - 1];
    this.sim.log(`h${hostId} KILL PATH: the ILM runs "${path} ${args}"`);
    const vg = /--kill\s+(\S+)/.exec(args)?.[1];
    if (!ch || ch.host.crashed || !vg) return;
    this.checker.vgKilled(ch.id, vg);
    void this.workload.lvmlockctlKill(ch, vg);
  }

  /** Boot the host's daemon and start its clients. */
  startHost(ch: CoreHost): void {
    this.boot(ch);
    this.checker.hostStarted(ch.id);
    const inc = ch.host.incarnation;
    const n = this.rng.intIn(2, 4);
    for (let i = 0; i < n; i++) ch.host.at(this.sim.now + this.rng.range(0, 500), () => void this.workload.clientLoop(ch, inc));
  }
}

export async function runCoreSchedule(seed: number, o: CoreRunOptions = {}): Promise<CoreRunResult> {
  const cl = new CoreCluster(seed, o);
  const { sim, hosts, rng, checker } = cl;
  const stopped = () => checker.violation !== undefined;
  if (cl.sanlockMode) {
    // vgcreate --shared on host 1 (CoreWorkload.createSharedVg) before the other hosts start.
    cl.vgs.splice(1);
    const ch = hosts[0]!;
    cl.boot(ch);
    void cl.workload.createSharedVg(ch);
    await sim.run(600_000, () => undefined, () => cl.workload.setupDone || stopped());
    if (!cl.workload.setupDone) checker.fail('setup', 'setup did not finish');
    if (!o.noWatchdog) startWatchdog(cl);
  }
  for (const ch of hosts) {
    if (cl.sanlockMode && ch === hosts[0]) {
      const inc = ch.host.incarnation;
      for (let i = 0; i < rng.intIn(2, 3); i++) ch.host.at(sim.now + rng.range(0, 500), () => void cl.workload.clientLoop(ch, inc));
    } else cl.startHost(ch);
  }
  planCoreFaults(cl);
  if (cl.idmMode) planIdmFaults(cl);

  const check = () => checker.check();
  await sim.run(cl.durationMs, check, stopped);
  if (!checker.violation) {
    cl.stopping = true;
    for (const ch of hosts) ch.host.resume();
    await drain();
    await sim.run(cl.durationMs + 300_000, check, () => stopped() || (cl.pendingAll.size === 0 && cl.activeLoops === 0));
    if (!checker.violation) checker.checkAllAnswered();
  }
  const stats = cl.stats;
  stats.steps = sim.steps;
  stats.simMs = sim.now;
  cl.storage?.dispose();
  return { seed, violation: checker.violation, trace: sim.trace.map((l) => `${fmtT(l.t)} ${l.text}`), stats };
}

/** The UUID of the simulated IDM VG and its LVs' (32 characters without the dashes, as lvm makes them). */
const IDM_VG_UUID = 'IdmSim-0000-0000-0000-0000-0000-00vgi0';
const idmLvUuid = (n: number): string => `IdmSim-0000-0000-0000-0000-0000-lvuui${n}`;

/** idm: one VG on every drive; each LV on a random non-empty subset of them (its PVs). */
function idmVg(m: IdmClusterModel, rng: Rng): VgDef {
  const pvs = m.drives.map((d) => d.path);
  const lvPvs = new Map<string, string[]>();
  const lvs = [idmLvUuid(0), idmLvUuid(2)];
  const tlvs = [idmLvUuid(1), idmLvUuid(3)];
  for (const lv of [...lvs, ...tlvs]) {
    const sub = pvs.filter(() => rng.chance(0.6));
    lvPvs.set(lv, sub.length ? sub : [rng.pick(pvs)]);
  }
  return { name: 'vgi', lockType: 'idm', uuid: IDM_VG_UUID, pvs, lvPvs, lvs, tlvs };
}
