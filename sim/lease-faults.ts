/**
 * Faults of the lease-level cluster: the schedule's planned faults (host
 * crash and restart with or without adopt, daemon pause, storage path
 * failure of one host, total storage loss; drawn by makeLeaseSchedule) put
 * on the scheduler, and the external watchdog that resets a host whose
 * daemon stopped proving its renewals. Random I/O faults (EIO, slow I/O)
 * and clock skew come with the storage and the clocks (sim/kernel/).
 */
import type { LeaseCluster } from './lease-cluster';

/** Put every planned fault of the schedule on the scheduler. */
export function scheduleLeaseFaults(cl: LeaseCluster): void {
  const { sim, storage, stats } = cl;
  const log = (n: { id: number }, msg: string) => sim.log(`h${n.id} ${msg}`);
  for (const f of cl.s.plan) {
    sim.at(f.at, () => {
      if (cl.stopping) return;
      const n = cl.byHost(f.host);
      stats.faults++;
      switch (f.kind) {
        case 'crash':
          cl.crash(n, f.variant, f.durMs);
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
}

/**
 * The external watchdog, as sanlock + wdmd (not paused with the daemon): it
 * resets the machine watchdog_fire_timeout after the daemon stopped proving
 * its renewals, so a paused daemon cannot outlive its delta lease.
 */
export function startLeaseWatchdog(cl: LeaseCluster): void {
  const { sim, nodes, rng, stats, s } = cl;
  const watchdogTick = () => {
    for (const n of nodes) {
      if (!n.watchdogArmed || n.host.crashed || !n.ls) continue;
      // wdmd: expire = last_success + id_renewal_fail; the device fires watchdog_fire after the last pet.
      const fireLocalMs = (n.ls.lastSuccess + cl.idRenewalFailS + s.watchdogFire - 1) * 1000;
      if (n.host.clock.nowMs() >= fireLocalMs) {
        stats.watchdogResets++;
        sim.log(`h${n.id} watchdog fires (last renewal success at local ${n.ls.lastSuccess}s)`);
        cl.crash(n, n.ls ? 'adopt' : 'fresh', Math.round(rng.range(0.2, 1.5) * cl.hostDeadMs));
      }
    }
    if (!cl.stopping || nodes.some((n) => n.watchdogArmed)) sim.after(250, watchdogTick);
  };
  sim.after(250, watchdogTick);
}
