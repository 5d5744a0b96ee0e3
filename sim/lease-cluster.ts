/**
 * Lease-level cluster: N simulated hosts, each running the real delta lease
 * (host_id, renewal loop, liveness) and the real paxos resource leases
 * (ex/sh acquire, convert, release) from src/leases, on one simulated LUN.
 * A workload acquires, converts and releases leases; a fault plan crashes,
 * restarts (with and without adopt), pauses hosts, cuts a host's storage
 * path, loses the whole storage, delays and fails I/O. The invariant
 * checker runs after every scheduler step.
 *
 * Host model (what the sanlock lock manager inside the daemon,
 * src/lm/sanlock, provides): the daemon joins the lockspace, renews it, and when the
 * lockspace fails (renewals failing for id_renewal_fail_seconds, or the
 * host_id lost) its kill path drops every lease of that lockspace at once.
 * As with sanlock + wdmd, an external watchdog (not paused with the daemon)
 * resets the machine watchdog_fire_timeout after the daemon stopped proving
 * its renewals, so a paused daemon cannot outlive its delta lease. The
 * leases' users (the active LVs) are not paused with the daemon: they count
 * as holders until the kill path or a reset.
 *
 * This file holds the schedule (makeLeaseSchedule) and the cluster: its
 * hosts, the format of the LUN, crash and restart, and the run. The other
 * parts have files of their own: lease-workload.ts (the daemon model and
 * its random requests), lease-checker.ts (the invariants, after every
 * step), lease-faults.ts (the planned faults and the watchdog).
 */
import { initLockspace, type Lockspace } from '../src/leases/delta-lease';
import { decodeDblock, decodeLeader, decodeModeBlock } from '../src/leases/ondisk';
import { type LeaseMode, type ResourceLease, initResource } from '../src/leases/paxos-lease';
import { calcHostDeadSeconds } from '../src/leases/timeouts';
import type { BugSpec } from './bugs';
import { SimHost } from './kernel/host';
import { Rng } from './kernel/rng';
import { Scheduler, fmtT } from './kernel/scheduler';
import { NO_DISK_FAULTS, SimStorage, crashWriteResolver, type DiskFaultRates, type InflightWrite } from './kernel/storage';
import { LeaseChecker } from './lease-checker';
import { scheduleLeaseFaults, startLeaseWatchdog } from './lease-faults';
import { LeaseWorkload } from './lease-workload';

const MiB = 1 << 20;
export const SECTOR = 4096;
export const ALIGN = MiB; // 4096/1M: 250 host records per lockspace area
export const LS_NAME = 'lvm_simvg';

/** Fault classes; 'late-write' is beyond the model and not part of ALL_FAULTS. */
export type FaultClass = 'crash' | 'pause' | 'path' | 'storage' | 'eio' | 'slow' | 'skew' | 'late-write';
export const ALL_FAULTS: readonly FaultClass[] = ['crash', 'pause', 'path', 'storage', 'eio', 'slow', 'skew'];

export interface PlannedFault {
  at: number;
  kind: 'crash' | 'pause' | 'path' | 'storage';
  host: number;
  durMs: number;
  /** crash: restart adopting the old leases (same host name) or fresh; path/storage: eio or hang. */
  variant: string;
}

export interface LeaseSchedule {
  seed: number;
  hosts: number;
  resources: number;
  ioTimeout: number;
  watchdogFire: number;
  durationMs: number;
  rates: DiskFaultRates;
  skew: boolean;
  /** Upper bound of a host's pause between two requests (ms). */
  thinkMs: number;
  plan: PlannedFault[];
}

export interface Violation {
  rule: string;
  message: string;
  at: number;
}

export interface LeaseRunResult {
  schedule: LeaseSchedule;
  violation: Violation | undefined;
  trace: string[];
  stats: {
    steps: number;
    simMs: number;
    grants: number;
    faults: number;
    kills: number;
    watchdogResets: number;
    errors: number;
    ops: number;
  };
}

/** Derive a schedule from a seed (all choices seeded). */
export function makeLeaseSchedule(seed: number, o: { hosts?: number; faults: readonly FaultClass[]; profile?: BugSpec['profile']; durationMs?: number }): LeaseSchedule {
  const rng = new Rng(seed).fork('schedule');
  // Without a requested profile, schedules mix all three (so correct code runs what the bug hunts run).
  const profile = o.profile ?? rng.pick(['mixed', 'mixed', 'contention', 'storage'] as const);
  const hosts = o.hosts ?? (profile === 'contention' ? rng.intIn(3, 6) : rng.intIn(2, 5));
  const resources = profile === 'contention' ? 1 : rng.intIn(1, 3);
  const thinkMs = profile === 'contention' ? rng.pick([300, 1500]) : rng.pick([1500, 5000]);
  const ioTimeout = rng.pick([1, 1, 2]);
  const watchdogFire = rng.pick([10, 10, 20]);
  const hostDeadMs = calcHostDeadSeconds(ioTimeout, watchdogFire) * 1000;
  const durationMs = o.durationMs ?? Math.round(rng.range(3, 5) * hostDeadMs);
  const f = new Set(o.faults);
  const rates: DiskFaultRates = {
    ...NO_DISK_FAULTS,
    latencyMax: profile === 'contention' ? rng.pick([20, 200, 400]) : rng.pick([0.5, 2, 20, 200]),
    eio: f.has('eio') ? rng.pick([0, 0.002, 0.01]) : 0,
    slow: f.has('slow') ? rng.pick([0, 0.002, 0.01]) : 0,
    slowMin: ioTimeout * 1000 + 1,
    slowMax: ioTimeout * 4000,
    lateWrites: f.has('late-write'),
  };
  const plan: PlannedFault[] = [];
  const kinds = (['crash', 'pause', 'path', 'storage'] as const).filter((k) => f.has(k));
  const nFaults = kinds.length === 0 ? 0 : profile === 'storage' ? rng.intIn(1, 4) : rng.intIn(0, 4);
  for (let i = 0; i < nFaults; i++) {
    let kind = rng.pick(kinds);
    if (profile === 'storage' && i === 0 && f.has('path')) kind = 'path';
    const at = Math.round(rng.range(0.15, 0.75) * durationMs);
    const host = rng.intIn(1, hosts);
    const long = rng.chance(0.6);
    const durMs = Math.round(long ? rng.range(1.1, 2.5) * hostDeadMs : rng.range(0.05, 0.8) * hostDeadMs);
    const variant = kind === 'crash' ? rng.pick(['adopt', 'fresh']) : kind === 'pause' ? 'stop' : rng.pick(['eio', 'hang']);
    plan.push({ at, kind, host, durMs, variant });
  }
  plan.sort((a, b) => a.at - b.at);
  return { seed, hosts, resources, ioTimeout, watchdogFire, durationMs, rates, skew: f.has('skew'), thinkMs, plan };
}

export interface PendingOp {
  node: Node;
  what: string;
  start: number;
  pausedAtStart: number;
}

export class Node {
  ls: Lockspace | undefined;
  /** Bumped whenever the node's lockspace membership ends (crash, kill path, leave). */
  epoch = 0;
  leases = new Map<number, ResourceLease>();
  /** What the host uses: resource index → mode. */
  belief = new Map<number, LeaseMode>();
  hostName: string;
  restarts = 0;
  watchdogArmed = false;
  /** Leases to re-acquire after a restart with adopt. */
  adopt: Array<[number, LeaseMode]> = [];
  /** Global time at which the last write of our delta record landed, and whether it was a release. */
  lastLanding = -Infinity;
  releasedOnDisk = false;
  constructor(readonly id: number, readonly host: SimHost) {
    this.hostName = `host${id}.sim`;
  }
}

/** One lease-level schedule's world: what the workload, the checker and the faults share. */
export class LeaseCluster {
  readonly sim = new Scheduler();
  /** The workload's stream (requests, think times, restarts after a kill path or a watchdog reset). */
  readonly rng: Rng;
  readonly storage: SimStorage;
  readonly hostDeadMs: number;
  readonly idRenewalFailS: number;
  /** A request pending longer than this (unpaused) is a `wait-forever`. */
  readonly opLimitMs: number;
  readonly stats = { steps: 0, simMs: 0, grants: 0, faults: 0, kills: 0, watchdogResets: 0, errors: 0, ops: 0 };
  readonly nodes: Node[] = [];
  /** Requests of the daemons not yet finished. */
  readonly pending = new Set<PendingOp>();
  readonly checker: LeaseChecker;
  readonly workload: LeaseWorkload;
  /** The run is over: faults heal, hosts leave cleanly. */
  stopping = false;
  private readonly crashRng: Rng;
  private readonly clockRng: Rng;
  private downFor = 0;
  private readonly crashWrite: (w: InflightWrite) => void;

  constructor(readonly s: LeaseSchedule, readonly bug: BugSpec | undefined, opts: { traceAll?: boolean }) {
    const sim = this.sim;
    sim.traceAll = !!opts.traceAll;
    const root = new Rng(s.seed);
    this.rng = root.fork('workload');
    const diskRng = root.fork('disk');
    this.crashRng = root.fork('crash');
    this.clockRng = root.fork('clock');
    this.storage = new SimStorage(sim, diskRng, ALIGN * (1 + s.resources), SECTOR);
    this.hostDeadMs = calcHostDeadSeconds(s.ioTimeout, s.watchdogFire) * 1000;
    this.idRenewalFailS = 8 * s.ioTimeout;
    this.opLimitMs = 6 * this.hostDeadMs;
    this.checker = new LeaseChecker(this);
    this.workload = new LeaseWorkload(this);
    this.crashWrite = crashWriteResolver(this.crashRng, this.storage.stats, SECTOR, () => sim.now, () => this.downFor);
  }

  /** Format the lockspace and the resource leases on a setup host without faults. */
  async format(): Promise<void> {
    const { sim, storage, s } = this;
    const setupHost = new SimHost(sim, 0, 0, 1);
    const setupDisk = storage.diskFor(setupHost, 'sim:setup');
    let formatted = false;
    void (async () => {
      await initLockspace(setupDisk, 0, LS_NAME, { sectorSize: SECTOR, alignSize: ALIGN, ioTimeout: s.ioTimeout });
      for (let r = 0; r < s.resources; r++) {
        await initResource(setupDisk, ALIGN * (1 + r), LS_NAME, `R${r}`, { sectorSize: SECTOR, alignSize: ALIGN, numHosts: Math.max(8, s.hosts) });
      }
      formatted = true;
    })();
    await sim.run(60_000, () => undefined, () => formatted);
    if (!formatted) throw new Error('format did not finish');
  }

  /** The schedule's hosts, each with its own clock (offset and drift with skew). */
  addNodes(): void {
    const { s, sim, clockRng } = this;
    for (let h = 1; h <= s.hosts; h++) {
      const offset = s.skew ? clockRng.range(0, 1e9) : 1_000_000;
      const rate = s.skew ? 1 + clockRng.range(-1e-4, 1e-4) : 1;
      this.nodes.push(new Node(h, new SimHost(sim, h, offset, rate)));
    }
  }

  byHost(h: number): Node {
    return this.nodes[h - 1]!;
  }

  /** Crash the host (restart with adopt: same host name, re-acquire its leases; fresh: a new host name) and restart it after downMs. */
  crash(n: Node, variant: string, downMs: number): void {
    const sim = this.sim;
    if (n.host.crashed) return;
    sim.log(`h${n.id} CRASH (restart in ${(downMs / 1000).toFixed(1)}s, ${variant})`);
    n.adopt = variant === 'adopt' ? [...n.belief] : [];
    if (variant !== 'adopt') n.hostName = `host${n.id}.sim.r${n.restarts + 1}`;
    n.belief.clear();
    n.leases.clear();
    n.ls = undefined;
    n.epoch++;
    n.watchdogArmed = false;
    for (const p of [...this.pending]) if (p.node === n) this.pending.delete(p);
    this.downFor = downMs;
    n.host.crash(this.crashWrite);
    sim.after(downMs, () => {
      n.host.restart();
      n.restarts++;
      sim.log(`h${n.id} restarts`);
      void this.workload.life(n, n.host.incarnation);
    });
  }
}

export async function runLeaseSchedule(s: LeaseSchedule, bug?: BugSpec, opts: { traceAll?: boolean; ioTrace?: boolean } = {}): Promise<LeaseRunResult> {
  const cl = new LeaseCluster(s, bug, opts);
  const { sim, storage, nodes, rng, checker, stats } = cl;
  await cl.format();
  storage.rates = s.rates;
  if (opts.ioTrace) storage.ioTrace = describeWrite;
  cl.addNodes();
  checker.observeStorage();
  scheduleLeaseFaults(cl);

  const t0 = sim.now;
  for (const n of nodes) n.host.at(t0 + Math.round(rng.range(0, 2000)), () => void cl.workload.life(n, n.host.incarnation));
  startLeaseWatchdog(cl);
  const end = t0 + s.durationMs;
  const check = () => checker.check();
  const stopped = () => checker.violation !== undefined;
  await sim.run(end, check, stopped);
  if (!checker.violation) {
    // Quiesce: heal every fault, let every request finish, leave cleanly.
    cl.stopping = true;
    storage.lost = 'none';
    storage.rates = { ...s.rates, eio: 0, slow: 0 };
    for (const n of nodes) {
      n.host.pathFault = 'none';
      n.host.resume();
    }
    await sim.run(end + cl.opLimitMs + 10 * cl.hostDeadMs, check, () => stopped() || (cl.pending.size === 0 && sim.pending() === 0));
    if (!checker.violation) checker.checkAllFinished();
  }
  stats.steps = sim.steps;
  stats.simMs = sim.now - t0;
  storage.dispose();
  return { schedule: s, violation: checker.violation, trace: sim.trace.map((l) => `${fmtT(l.t)} ${l.text}`), stats };
}

/** One line describing a landed lease write (for I/O traces). */
export function describeWrite(offset: number, data: Buffer): string {
  const area = Math.floor(offset / ALIGN);
  const sector = (offset % ALIGN) / SECTOR;
  try {
    if (area === 0) {
      const l = decodeLeader(data);
      return ` delta host_id ${sector + 1}: owner ${l.ownerId} gen ${l.ownerGeneration} ts ${l.timestamp}`;
    }
    if (sector === 0 && data.length === SECTOR) {
      const l = decodeLeader(data);
      return ` R${area - 1} leader: lver ${l.lver} owner ${l.ownerId}/${l.ownerGeneration} ts ${l.timestamp} write_id ${l.writeId}`;
    }
    if (sector >= 2 && data.length === SECTOR) {
      const d = decodeDblock(data, 0);
      const mb = decodeModeBlock(data, 128);
      return ` R${area - 1} dblock host_id ${sector - 1}: mbal ${d.mbal} bal ${d.bal} inp ${d.inp}/${d.inp2} lver ${d.lver} flags ${d.flags} mode ${mb.flags ? 'SH' : '-'}`;
    }
  } catch {
    /* fallthrough */
  }
  return ` R${area - 1} sector ${sector} (${data.length} bytes)`;
}
