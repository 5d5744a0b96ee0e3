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
 */
import { Lockspace, initLockspace } from '../src/leases/delta-lease';
import { LeaseError } from '../src/leases/errors';
import { decodeDblock, decodeLeader, decodeModeBlock } from '../src/leases/ondisk';
import {
  type LeaseMode,
  type ResourceLease,
  acquireResource,
  convertResource,
  initResource,
  paxosHostFor,
  releaseResource,
} from '../src/leases/paxos-lease';
import { calcHostDeadSeconds } from '../src/leases/timeouts';
import type { BugSpec } from './bugs';
import { SimHost } from './kernel/host';
import { Rng } from './kernel/rng';
import { Scheduler, fmtT } from './kernel/scheduler';
import { NO_DISK_FAULTS, SimStorage, crashWriteResolver, type DiskFaultRates } from './kernel/storage';

const MiB = 1 << 20;
const SECTOR = 4096;
const ALIGN = MiB; // 4096/1M: 250 host records per lockspace area
const LS_NAME = 'lvm_simvg';

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

interface PendingOp {
  node: Node;
  what: string;
  start: number;
  pausedAtStart: number;
}

class Node {
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

export async function runLeaseSchedule(s: LeaseSchedule, bug?: BugSpec, opts: { traceAll?: boolean; ioTrace?: boolean } = {}): Promise<LeaseRunResult> {
  const sim = new Scheduler();
  sim.traceAll = !!opts.traceAll;
  const root = new Rng(s.seed);
  const rng = root.fork('workload');
  const diskRng = root.fork('disk');
  const crashRng = root.fork('crash');
  const clockRng = root.fork('clock');
  const storage = new SimStorage(sim, diskRng, ALIGN * (1 + s.resources), SECTOR);
  const hostDeadMs = calcHostDeadSeconds(s.ioTimeout, s.watchdogFire) * 1000;
  const idRenewalFailS = 8 * s.ioTimeout;
  const stats = { steps: 0, simMs: 0, grants: 0, faults: 0, kills: 0, watchdogResets: 0, errors: 0, ops: 0 };

  // Format on a setup host without faults.
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
  storage.rates = s.rates;
  if (opts.ioTrace) storage.ioTrace = describeWrite;

  const nodes: Node[] = [];
  for (let h = 1; h <= s.hosts; h++) {
    const offset = s.skew ? clockRng.range(0, 1e9) : 1_000_000;
    const rate = s.skew ? 1 + clockRng.range(-1e-4, 1e-4) : 1;
    nodes.push(new Node(h, new SimHost(sim, h, offset, rate)));
  }
  const byHost = (h: number) => nodes[h - 1]!;

  storage.onLanded = (host, offset, data) => {
    if (host.id === 0 || offset >= ALIGN) return;
    const n = byHost(host.id);
    if (offset !== (host.id - 1) * SECTOR) return;
    const rec = decodeLeader(data);
    n.lastLanding = sim.now;
    n.releasedOnDisk = rec.timestamp === 0;
  };

  let violation: Violation | undefined;
  const fail = (rule: string, message: string) => {
    if (violation) return;
    violation = { rule, message, at: sim.now };
    sim.log(`VIOLATION ${rule}: ${message}`);
  };
  const pending = new Set<PendingOp>();
  let stopping = false;
  const opLimitMs = 6 * hostDeadMs;

  const log = (n: Node, msg: string) => sim.log(`h${n.id} ${msg}`);

  // ---- kill path and watchdog
  const dropAll = (n: Node, why: string) => {
    if (n.belief.size || n.leases.size) log(n, `kill path (${why}): drops ${[...n.belief].map(([r, m]) => `R${r}:${m}`).join(' ') || 'nothing in use'}`);
    n.belief.clear();
    n.leases.clear();
  };
  const onLockspaceFail = (n: Node, ls: Lockspace, err: Error) => {
    if (n.ls !== ls) return;
    log(n, `lockspace failed: ${err.message.slice(0, 120)}`);
    if (bug?.noKillPath) return; // injected bug: the daemon keeps using its leases
    stats.kills++;
    n.epoch++;
    n.ls = undefined;
    n.watchdogArmed = false;
    dropAll(n, 'lockspace failed');
    // lvmlockd would need a new lock-start; rejoin later.
    n.host.at(sim.now + Math.round(rng.range(1, 3) * hostDeadMs), () => void life(n, n.host.incarnation));
  };
  const watchdogTick = () => {
    for (const n of nodes) {
      if (!n.watchdogArmed || n.host.crashed || !n.ls) continue;
      // wdmd: expire = last_success + id_renewal_fail; the device fires watchdog_fire after the last pet.
      const fireLocalMs = (n.ls.lastSuccess + idRenewalFailS + s.watchdogFire - 1) * 1000;
      if (n.host.clock.nowMs() >= fireLocalMs) {
        stats.watchdogResets++;
        log(n, `watchdog fires (last renewal success at local ${n.ls.lastSuccess}s)`);
        crash(n, n.ls ? 'adopt' : 'fresh', Math.round(rng.range(0.2, 1.5) * hostDeadMs));
      }
    }
    if (!stopping || nodes.some((n) => n.watchdogArmed)) sim.after(250, watchdogTick);
  };

  let downFor = 0;
  const crashWrite = crashWriteResolver(crashRng, storage.stats, SECTOR, () => sim.now, () => downFor);
  const crash = (n: Node, variant: string, downMs: number) => {
    if (n.host.crashed) return;
    log(n, `CRASH (restart in ${(downMs / 1000).toFixed(1)}s, ${variant})`);
    n.adopt = variant === 'adopt' ? [...n.belief] : [];
    if (variant !== 'adopt') n.hostName = `host${n.id}.sim.r${n.restarts + 1}`;
    n.belief.clear();
    n.leases.clear();
    n.ls = undefined;
    n.epoch++;
    n.watchdogArmed = false;
    for (const p of [...pending]) if (p.node === n) pending.delete(p);
    downFor = downMs;
    n.host.crash(crashWrite);
    sim.after(downMs, () => {
      n.host.restart();
      n.restarts++;
      log(n, 'restarts');
      void life(n, n.host.incarnation);
    });
  };

  // ---- the daemon of one host
  const track = async <T>(n: Node, what: string, p: Promise<T>): Promise<T> => {
    const op: PendingOp = { node: n, what, start: sim.now, pausedAtStart: n.host.pausedMs };
    pending.add(op);
    stats.ops++;
    try {
      return await p;
    } finally {
      pending.delete(op);
    }
  };

  const sleep = (n: Node, ms: number) => n.host.clock.sleep(ms);

  async function join(n: Node, inc: number): Promise<Lockspace | undefined> {
    for (let attempt = 0; !stopping; attempt++) {
      const ls = new Lockspace({
        disk: storage.diskFor(n.host),
        offset: 0,
        name: LS_NAME,
        hostId: n.id,
        clock: n.host.clock,
        random: rng.fork(`h${n.id}.${inc}.${attempt}`),
        hostName: n.hostName,
        ioTimeout: s.ioTimeout,
        watchdogFireTimeout: s.watchdogFire,
        sectorSize: SECTOR,
        alignSize: ALIGN,
        ...(bug?.hooks ? { hooks: bug.hooks } : {}),
        onFail: (e) => onLockspaceFail(n, ls, e),
      });
      try {
        const gen = await track(n, 'join', ls.acquire());
        log(n, `joined lockspace generation ${gen}`);
        return ls;
      } catch (e) {
        log(n, `join failed: ${errText(e)}`);
        await sleep(n, rng.range(1000, 5000));
      }
    }
    return undefined;
  }

  async function life(n: Node, inc: number): Promise<void> {
    if (n.host.incarnation !== inc || n.host.crashed || stopping) return;
    const ls = await join(n, inc);
    if (!ls || n.host.incarnation !== inc) return;
    n.ls = ls;
    const epoch = ++n.epoch;
    ls.startRenewal();
    if (!bug?.noKillPath) n.watchdogArmed = true;
    const px = paxosHostFor(ls);
    const ref = (r: number) => ({ disk: ls.disk, offset: ALIGN * (1 + r), lockspace: LS_NAME, resource: `R${r}`, sectorSize: SECTOR, alignSize: ALIGN });
    const alive = () => n.epoch === epoch && n.host.incarnation === inc && !n.host.crashed;

    const acquire = async (r: number, mode: LeaseMode, why: string) => {
      try {
        const lease = await track(n, `acquire R${r} ${mode}`, acquireResource(px, ref(r), { mode, ownerNowait: true }));
        if (!alive()) return;
        n.leases.set(r, lease);
        n.belief.set(r, mode);
        stats.grants++;
        log(n, `granted R${r} ${mode} lver ${lease.lver}${why}`);
      } catch (e) {
        stats.errors++;
        if (alive()) log(n, `acquire R${r} ${mode}${why}: ${errText(e)}`);
      }
    };

    for (const [r, mode] of n.adopt.splice(0)) await acquire(r, mode, ' (adopt)');

    while (alive() && !stopping) {
      const held = [...n.leases.keys()];
      const x = rng.next();
      if (held.length && x < 0.35) {
        const r = rng.pick(held);
        const lease = n.leases.get(r)!;
        n.belief.delete(r); // stop using before releasing
        n.leases.delete(r);
        log(n, `release R${r} ${lease.mode}`);
        try {
          await track(n, `release R${r}`, releaseResource(px, lease));
        } catch (e) {
          stats.errors++;
          if (alive()) log(n, `release R${r}: ${errText(e)}`);
        }
      } else if (held.length && x < 0.5) {
        const r = rng.pick(held);
        const lease = n.leases.get(r)!;
        const to: LeaseMode = lease.mode === 'ex' ? 'sh' : 'ex';
        if (to === 'sh') n.belief.set(r, 'sh');
        try {
          await track(n, `convert R${r} ${to}`, convertResource(px, lease, to, { ownerNowait: true }));
          if (alive() && n.leases.get(r) === lease) {
            n.belief.set(r, lease.mode);
            log(n, `converted R${r} to ${lease.mode} lver ${lease.lver}`);
          }
        } catch (e) {
          stats.errors++;
          if (alive() && n.leases.get(r) === lease) {
            log(n, `convert R${r} ${to}: ${errText(e)}`);
            if (to === 'ex' && !(e instanceof LeaseError && e.rv === -11)) {
              // Unknown state after an I/O failure mid-convert: stop using it and let it go.
              n.belief.delete(r);
              n.leases.delete(r);
            }
          }
        }
      } else {
        const free = [...Array(s.resources).keys()].filter((r) => !n.leases.has(r));
        if (free.length) await acquire(rng.pick(free), rng.chance(0.6) ? 'ex' : 'sh', '');
      }
      if (!alive()) return;
      await sleep(n, rng.range(0, s.thinkMs));
    }
    if (alive() && stopping) {
      // Clean leave: release everything, then the host_id.
      for (const [r, lease] of [...n.leases]) {
        n.belief.delete(r);
        n.leases.delete(r);
        await track(n, `release R${r}`, releaseResource(px, lease)).catch(() => undefined);
      }
      n.watchdogArmed = false;
      await track(n, 'leave', ls.release()).catch(() => undefined);
      if (n.ls === ls) n.ls = undefined;
    }
  }

  // ---- invariant checker (after every step)
  const check = () => {
    if (violation) return;
    for (let r = 0; r < s.resources; r++) {
      const ex: number[] = [];
      const sh: number[] = [];
      for (const n of nodes) {
        if (n.host.crashed) continue;
        const m = n.belief.get(r);
        if (m === 'ex') ex.push(n.id);
        else if (m === 'sh') sh.push(n.id);
      }
      if (ex.length > 1) return fail('two-ex', `R${r} held ex by hosts ${ex.join(',')}`);
      if (ex.length && sh.length) return fail('ex-with-sh', `R${r} held ex by host ${ex[0]} and sh by ${sh.join(',')}`);
    }
    for (const n of nodes) {
      if (n.host.crashed || n.belief.size === 0) continue;
      if (n.releasedOnDisk) return fail('use-after-release', `host ${n.id} uses leases after its host_id release landed`);
      const since = sim.now - n.lastLanding;
      if (since > hostDeadMs) {
        return fail(
          'kill-path-late',
          `host ${n.id} still uses ${[...n.belief].map(([r, m]) => `R${r}:${m}`).join(' ')} ${(since / 1000).toFixed(1)}s after its last delta renewal landed (> host_dead ${hostDeadMs / 1000}s: others may be granted them)`,
        );
      }
    }
    for (const p of pending) {
      if (p.node.host.paused || p.node.host.crashed) continue;
      const waited = sim.now - p.start - (p.node.host.pausedMs - p.pausedAtStart);
      if (waited > opLimitMs) return fail('wait-forever', `host ${p.node.id} ${p.what} pending for ${(waited / 1000).toFixed(1)}s`);
    }
  };

  // ---- faults
  for (const f of s.plan) {
    sim.at(f.at, () => {
      if (stopping) return;
      const n = byHost(f.host);
      stats.faults++;
      switch (f.kind) {
        case 'crash':
          crash(n, f.variant, f.durMs);
          break;
        case 'pause':
          if (n.host.crashed) break;
          log(n, `PAUSE daemon for ${(f.durMs / 1000).toFixed(1)}s`);
          n.host.pause();
          sim.after(f.durMs, () => {
            if (n.host.paused) log(n, 'resume');
            n.host.resume();
          });
          break;
        case 'path':
          log(n, `STORAGE PATH FAULT ${f.variant} for ${(f.durMs / 1000).toFixed(1)}s`);
          n.host.pathFault = f.variant as 'eio' | 'hang';
          sim.after(f.durMs, () => {
            log(n, 'storage path restored');
            n.host.pathFault = 'none';
          });
          break;
        case 'storage':
          sim.log(`TOTAL STORAGE LOSS ${f.variant} for ${(f.durMs / 1000).toFixed(1)}s`);
          storage.lost = f.variant as 'eio' | 'hang';
          sim.after(f.durMs, () => {
            sim.log('storage restored');
            storage.lost = 'none';
          });
          break;
      }
    });
  }

  const t0 = sim.now;
  for (const n of nodes) n.host.at(t0 + Math.round(rng.range(0, 2000)), () => void life(n, n.host.incarnation));
  sim.after(250, watchdogTick);
  const end = t0 + s.durationMs;
  await sim.run(end, check, () => violation !== undefined);
  if (!violation) {
    // Quiesce: heal every fault, let every request finish, leave cleanly.
    stopping = true;
    storage.lost = 'none';
    storage.rates = { ...s.rates, eio: 0, slow: 0 };
    for (const n of nodes) {
      n.host.pathFault = 'none';
      n.host.resume();
    }
    await sim.run(end + opLimitMs + 10 * hostDeadMs, check, () => violation !== undefined || (pending.size === 0 && sim.pending() === 0));
    if (!violation) {
      for (const p of pending) {
        if (!p.node.host.crashed) fail('wait-forever', `host ${p.node.id} ${p.what} never finished`);
      }
    }
  }
  stats.steps = sim.steps;
  stats.simMs = sim.now - t0;
  storage.dispose();
  return { schedule: s, violation, trace: sim.trace.map((l) => `${fmtT(l.t)} ${l.text}`), stats };
}

function errText(e: unknown): string {
  if (e instanceof LeaseError) return `${e.code ?? e.rv} ${e.message.slice(0, 140)}`;
  return e instanceof Error ? e.message.slice(0, 140) : String(e);
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
