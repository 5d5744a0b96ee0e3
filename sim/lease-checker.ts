/**
 * The invariant checker of the lease-level cluster, run after every
 * scheduler step: no two hosts use a resource ex, or ex while another uses
 * it sh (`two-ex`, `ex-with-sh`); a host stops using its leases within
 * host_dead of its last delta-lease write that landed (`kill-path-late`),
 * and after its host_id release landed (`use-after-release`); every request
 * finishes within a bound of unpaused time, and once the faults healed
 * (`wait-forever`). It learns when delta-lease writes land from the storage
 * (observeStorage); it only reads the cluster.
 */
import { decodeLeader } from '../src/leases/ondisk';
import { ALIGN, SECTOR, type LeaseCluster, type Violation } from './lease-cluster';

export class LeaseChecker {
  violation: Violation | undefined;

  constructor(private readonly cl: LeaseCluster) {}

  /** Record the first violation (later ones are ignored) and trace it. */
  fail(rule: string, message: string): void {
    if (this.violation) return;
    this.violation = { rule, message, at: this.cl.sim.now };
    this.cl.sim.log(`VIOLATION ${rule}: ${message}`);
  }

  /** Note when each host's delta record write lands, and whether it was a release (timestamp 0). */
  observeStorage(): void {
    const cl = this.cl;
    cl.storage.onLanded = (host, offset, data) => {
      if (host.id === 0 || offset >= ALIGN) return;
      const n = cl.byHost(host.id);
      if (offset !== (host.id - 1) * SECTOR) return;
      const rec = decodeLeader(data);
      n.lastLanding = cl.sim.now;
      n.releasedOnDisk = rec.timestamp === 0;
    };
  }

  /** Every invariant, after every scheduler step. */
  check(): void {
    const { s, sim, nodes, hostDeadMs } = this.cl;
    if (this.violation) return;
    for (let r = 0; r < s.resources; r++) {
      const ex: number[] = [];
      const sh: number[] = [];
      for (const n of nodes) {
        if (n.host.crashed) continue;
        const m = n.belief.get(r);
        if (m === 'ex') ex.push(n.id);
        else if (m === 'sh') sh.push(n.id);
      }
      if (ex.length > 1) return this.fail('two-ex', `R${r} held ex by hosts ${ex.join(',')}`);
      if (ex.length && sh.length) return this.fail('ex-with-sh', `R${r} held ex by host ${ex[0]} and sh by ${sh.join(',')}`);
    }
    for (const n of nodes) {
      if (n.host.crashed || n.belief.size === 0) continue;
      if (n.releasedOnDisk) return this.fail('use-after-release', `host ${n.id} uses leases after its host_id release landed`);
      const since = sim.now - n.lastLanding;
      if (since > hostDeadMs) {
        return this.fail(
          'kill-path-late',
          `host ${n.id} still uses ${[...n.belief].map(([r, m]) => `R${r}:${m}`).join(' ')} ${(since / 1000).toFixed(1)}s after its last delta renewal landed (> host_dead ${hostDeadMs / 1000}s: others may be granted them)`,
        );
      }
    }
    for (const p of this.cl.pending) {
      if (p.node.host.paused || p.node.host.crashed) continue;
      const waited = sim.now - p.start - (p.node.host.pausedMs - p.pausedAtStart);
      if (waited > this.cl.opLimitMs) return this.fail('wait-forever', `host ${p.node.id} ${p.what} pending for ${(waited / 1000).toFixed(1)}s`);
    }
  }

  /** The run is over and every fault healed: every request of a live host finished. */
  checkAllFinished(): void {
    for (const p of this.cl.pending) {
      if (!p.node.host.crashed) this.fail('wait-forever', `host ${p.node.id} ${p.what} never finished`);
    }
  }
}
