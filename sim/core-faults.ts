/**
 * Faults of the core-level cluster: the seeded fault plan (daemon pause,
 * daemon crash and restart; with the sanlock manager also a storage path
 * failure of one host) and, with the sanlock manager, the external watchdog
 * that resets a host whose delta lease stopped being renewed. With the IDM
 * manager (planIdmFaults): drive loss (a minority or a majority of the
 * drives), one host's path to some drives failing, a slow drive, and a
 * host's wall clock stepping backwards. The workload adds its own: clients
 * that vanish mid-command, and (dlm, idm) a machine that dies right after it
 * wrote new VG metadata.
 */
import { calcHostDeadSeconds } from '../src/leases/timeouts';
import type { CoreCluster } from './core-cluster';
import type { SimIdmDrive } from './idm-model';
import type { Rng } from './kernel/rng';

/** Draw the fault plan and schedule it. */
export function planCoreFaults(cl: CoreCluster): void {
  const { sim, rng, hosts, stats, durationMs, hostDeadMs, sanlockMode } = cl;
  if (sanlockMode && rng.chance(0.5)) {
    const ch = rng.pick(hosts);
    const at = rng.range(0.2, 0.6) * durationMs;
    const dur = rng.range(0.2, 2) * hostDeadMs;
    const kind = rng.pick(['eio', 'hang'] as const);
    sim.at(at, () => {
      stats.faults++;
      sim.log(`h${ch.id} STORAGE PATH FAULT ${kind} for ${(dur / 1000).toFixed(1)}s`);
      ch.host.pathFault = kind;
      sim.after(dur, () => {
        ch.host.pathFault = 'none';
        sim.log(`h${ch.id} storage path restored`);
      });
    });
  }
  const nFaults = rng.intIn(0, 3);
  for (let i = 0; i < nFaults; i++) {
    const ch = rng.pick(hosts);
    const at = rng.range(0.1, 0.8) * durationMs;
    const kind = rng.pick(['pause', 'crash']);
    const dur = rng.range(1000, sanlockMode || cl.idmMode ? 2 * hostDeadMs : 60_000);
    sim.at(at, () => {
      stats.faults++;
      if (kind === 'pause') {
        sim.log(`h${ch.id} PAUSE daemon ${(dur / 1000).toFixed(1)}s`);
        ch.host.pause();
        sim.after(dur, () => ch.host.resume());
      } else if (!ch.host.crashed) {
        sim.log(`h${ch.id} CRASH daemon, restart in ${(dur / 1000).toFixed(1)}s`);
        cl.crashHost(ch, dur);
      }
    });
  }
}

/**
 * sanlock mode: every host's daemon gets an external watchdog, as sanlock's
 * wdmd: it resets the host watchdog_fire_timeout after the delta lease
 * stopped being renewed (the daemon must arm one).
 */
export function startWatchdog(cl: CoreCluster): void {
  const { sim, rng, hosts, ioTimeout } = cl;
  const watchdog = () => {
    for (const h of hosts) {
      if (h.host.crashed) continue;
      for (const ls of h.core.lockspaces) {
        const leases = (ls.managed as unknown as { leases?: { lastSuccess: number; state: string } | null }).leases;
        if (!leases || leases.state !== 'held' || ls.killVg) continue;
        if (h.host.clock.nowMs() >= (leases.lastSuccess + calcHostDeadSeconds(ioTimeout) - 1) * 1000) {
          sim.log(`h${h.id} watchdog fires (${ls.name} last renewal at local ${leases.lastSuccess}s)`);
          cl.crashHost(h, rng.range(5000, 30_000));
          break;
        }
      }
    }
    if (!cl.stopping) sim.after(250, watchdog);
  };
  sim.after(250, watchdog);
}

/** k distinct elements of xs, in a seeded order. */
function pickSome<T>(rng: Rng, xs: readonly T[], k: number): T[] {
  const pool = [...xs];
  const out: T[] = [];
  while (out.length < k && pool.length) out.push(pool.splice(rng.int(pool.length), 1)[0]!);
  return out;
}

const IDM_TIMEOUT_MS = 60_000;

/**
 * idm: the drive and clock faults, from a stream of their own ('idm-faults'),
 * so that the other streams of a schedule are the same with or without them.
 * Hosts' wall clocks start within 50 ms of each other (NTP).
 */
export function planIdmFaults(cl: CoreCluster): void {
  const m = cl.idmModel!;
  const rng = cl.root.fork('idm-faults');
  const { sim, stats, hosts, durationMs } = cl;
  const n = m.drives.length;
  const names = (ds: readonly SimIdmDrive[]) => ds.map((d) => d.path.slice(5)).join(',');
  for (const ch of hosts) m.setWallOffset(ch.id, BigInt(Math.round(rng.range(-50_000, 50_000))));
  if (rng.chance(0.5)) {
    // Drive loss for every host: a minority (the locks go on) or a majority (lock errors, then the kill path).
    const majority = rng.chance(0.35);
    const lost = pickSome(rng, m.drives, majority ? Math.floor(n / 2) + 1 : Math.max(1, Math.floor((n - 1) / 2)));
    const kind = rng.pick(['eio', 'hang'] as const);
    const at = rng.range(0.1, 0.7) * durationMs;
    const dur = rng.range(0.1, 2) * IDM_TIMEOUT_MS;
    sim.at(at, () => {
      stats.faults++;
      sim.log(`DRIVE LOSS ${kind} of ${names(lost)} (${lost.length} of ${n}) for ${(dur / 1000).toFixed(1)}s`);
      for (const d of lost) d.fault = kind;
      sim.after(dur, () => {
        for (const d of lost) d.fault = 'none';
        sim.log(`drives ${names(lost)} back`);
      });
    });
  }
  if (rng.chance(0.4)) {
    // One host's path to some drives fails (a fabric failure): the others still reach them.
    const ch = rng.pick(hosts);
    const cut = pickSome(rng, m.drives, rng.intIn(1, n));
    const kind = rng.pick(['eio', 'hang'] as const);
    const at = rng.range(0.1, 0.7) * durationMs;
    const dur = rng.range(0.1, 2) * IDM_TIMEOUT_MS;
    sim.at(at, () => {
      stats.faults++;
      sim.log(`h${ch.id} DRIVE PATH FAULT ${kind} to ${names(cut)} for ${(dur / 1000).toFixed(1)}s`);
      for (const d of cut) d.cutOff.set(ch.id, kind);
      sim.after(dur, () => {
        for (const d of cut) d.cutOff.delete(ch.id);
        sim.log(`h${ch.id} drive path to ${names(cut)} restored`);
      });
    });
  }
  if (rng.chance(0.4)) {
    // A slow drive: each command takes up to 1.5 × slowMs; beyond 15 s SG_IO times out.
    const d = rng.pick(m.drives);
    const slowMs = rng.range(200, 14_000);
    const at = rng.range(0.1, 0.7) * durationMs;
    const dur = rng.range(5_000, 90_000);
    sim.at(at, () => {
      stats.faults++;
      sim.log(`SLOW DRIVE ${names([d])}: +${(slowMs / 1000).toFixed(1)}s per command for ${(dur / 1000).toFixed(1)}s`);
      d.slowMs = slowMs;
      sim.after(dur, () => {
        d.slowMs = 0;
        sim.log(`drive ${names([d])} fast again`);
      });
    });
  }
  if (rng.chance(0.5)) {
    // A host's wall clock steps backwards (1 ms to about 2 h): the LVB timestamp's "+1" rule.
    const ch = rng.pick(hosts);
    const stepMs = 10 ** rng.range(0, 6.9);
    const at = rng.range(0.05, 0.8) * durationMs;
    sim.at(at, () => {
      stats.faults++;
      sim.log(`h${ch.id} WALL CLOCK steps back ${(stepMs / 1000).toFixed(3)}s`);
      m.setWallOffset(ch.id, m.wallOffset(ch.id) - BigInt(Math.round(stepMs * 1000)));
    });
  }
}
