/**
 * Faults of the core-level cluster: the seeded fault plan (daemon pause,
 * daemon crash and restart; with the sanlock manager also a storage path
 * failure of one host) and, with the sanlock manager, the external watchdog
 * that resets a host whose delta lease stopped being renewed. The workload
 * adds its own: clients that vanish mid-command, and (dlm) a node that dies
 * right after it wrote new VG metadata.
 */
import { calcHostDeadSeconds } from '../src/leases/timeouts';
import type { CoreCluster } from './core-cluster';

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
    const dur = rng.range(1000, sanlockMode ? 2 * hostDeadMs : 60_000);
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
