/**
 * The workload of the lease-level cluster, run by the daemon model of each
 * host (what the sanlock lock manager inside the daemon, src/lm/sanlock,
 * does): join the lockspace (real delta lease), keep it renewed, then
 * acquire, convert and release resource leases (real paxos leases) at
 * random, with ownerNowait as lvmlockd does. When the lockspace fails
 * (renewals failing for id_renewal_fail_seconds, or the host_id lost) its
 * kill path drops every lease of that lockspace at once and rejoins later.
 * After a restart with adopt, the host re-acquires the leases it held.
 */
import { Lockspace } from '../src/leases/delta-lease';
import { LeaseError } from '../src/leases/errors';
import { type LeaseMode, acquireResource, convertResource, paxosHostFor, releaseResource } from '../src/leases/paxos-lease';
import { ALIGN, LS_NAME, SECTOR, type LeaseCluster, type Node, type PendingOp } from './lease-cluster';

export class LeaseWorkload {
  constructor(private readonly cl: LeaseCluster) {}

  private log(n: Node, msg: string): void {
    this.cl.sim.log(`h${n.id} ${msg}`);
  }

  // ---- kill path

  private dropAll(n: Node, why: string): void {
    if (n.belief.size || n.leases.size) this.log(n, `kill path (${why}): drops ${[...n.belief].map(([r, m]) => `R${r}:${m}`).join(' ') || 'nothing in use'}`);
    n.belief.clear();
    n.leases.clear();
  }
  private onLockspaceFail(n: Node, ls: Lockspace, err: Error): void {
    const cl = this.cl;
    if (n.ls !== ls) return;
    this.log(n, `lockspace failed: ${err.message.slice(0, 120)}`);
    if (cl.bug?.noKillPath) return; // injected bug: the daemon keeps using its leases
    cl.stats.kills++;
    n.epoch++;
    n.ls = undefined;
    n.watchdogArmed = false;
    this.dropAll(n, 'lockspace failed');
    // lvmlockd would need a new lock-start; rejoin later.
    n.host.at(cl.sim.now + Math.round(cl.rng.range(1, 3) * cl.hostDeadMs), () => void this.life(n, n.host.incarnation));
  }

  // ---- the daemon of one host

  /** A request of the daemon, pending until p settles (the checker bounds how long). */
  private async track<T>(n: Node, what: string, p: Promise<T>): Promise<T> {
    const cl = this.cl;
    const op: PendingOp = { node: n, what, start: cl.sim.now, pausedAtStart: n.host.pausedMs };
    cl.pending.add(op);
    cl.stats.ops++;
    try {
      return await p;
    } finally {
      cl.pending.delete(op);
    }
  }

  private sleep(n: Node, ms: number): Promise<void> {
    return n.host.clock.sleep(ms);
  }

  private async join(n: Node, inc: number): Promise<Lockspace | undefined> {
    const cl = this.cl;
    const s = cl.s;
    for (let attempt = 0; !cl.stopping; attempt++) {
      const ls: Lockspace = new Lockspace({
        disk: cl.storage.diskFor(n.host),
        offset: 0,
        name: LS_NAME,
        hostId: n.id,
        clock: n.host.clock,
        random: cl.rng.fork(`h${n.id}.${inc}.${attempt}`),
        hostName: n.hostName,
        ioTimeout: s.ioTimeout,
        watchdogFireTimeout: s.watchdogFire,
        sectorSize: SECTOR,
        alignSize: ALIGN,
        ...(cl.bug?.hooks ? { hooks: cl.bug.hooks } : {}),
        onFail: (e) => this.onLockspaceFail(n, ls, e),
      });
      try {
        const gen = await this.track(n, 'join', ls.acquire());
        this.log(n, `joined lockspace generation ${gen}`);
        return ls;
      } catch (e) {
        this.log(n, `join failed: ${errText(e)}`);
        await this.sleep(n, cl.rng.range(1000, 5000));
      }
    }
    return undefined;
  }

  /** One membership of the lockspace: join, then acquire, convert and release until it ends. */
  async life(n: Node, inc: number): Promise<void> {
    const cl = this.cl;
    const { s, rng, stats } = cl;
    if (n.host.incarnation !== inc || n.host.crashed || cl.stopping) return;
    const ls = await this.join(n, inc);
    if (!ls || n.host.incarnation !== inc) return;
    n.ls = ls;
    const epoch = ++n.epoch;
    ls.startRenewal();
    if (!cl.bug?.noKillPath) n.watchdogArmed = true;
    const px = paxosHostFor(ls);
    const ref = (r: number) => ({ disk: ls.disk, offset: ALIGN * (1 + r), lockspace: LS_NAME, resource: `R${r}`, sectorSize: SECTOR, alignSize: ALIGN });
    const alive = () => n.epoch === epoch && n.host.incarnation === inc && !n.host.crashed;

    const acquire = async (r: number, mode: LeaseMode, why: string) => {
      try {
        const lease = await this.track(n, `acquire R${r} ${mode}`, acquireResource(px, ref(r), { mode, ownerNowait: true }));
        if (!alive()) return;
        n.leases.set(r, lease);
        n.belief.set(r, mode);
        stats.grants++;
        this.log(n, `granted R${r} ${mode} lver ${lease.lver}${why}`);
      } catch (e) {
        stats.errors++;
        if (alive()) this.log(n, `acquire R${r} ${mode}${why}: ${errText(e)}`);
      }
    };

    for (const [r, mode] of n.adopt.splice(0)) await acquire(r, mode, ' (adopt)');

    while (alive() && !cl.stopping) {
      const held = [...n.leases.keys()];
      const x = rng.next();
      if (held.length && x < 0.35) {
        const r = rng.pick(held);
        const lease = n.leases.get(r)!;
        n.belief.delete(r); // stop using before releasing
        n.leases.delete(r);
        this.log(n, `release R${r} ${lease.mode}`);
        try {
          await this.track(n, `release R${r}`, releaseResource(px, lease));
        } catch (e) {
          stats.errors++;
          if (alive()) this.log(n, `release R${r}: ${errText(e)}`);
        }
      } else if (held.length && x < 0.5) {
        const r = rng.pick(held);
        const lease = n.leases.get(r)!;
        const to: LeaseMode = lease.mode === 'ex' ? 'sh' : 'ex';
        if (to === 'sh') n.belief.set(r, 'sh');
        try {
          await this.track(n, `convert R${r} ${to}`, convertResource(px, lease, to, { ownerNowait: true }));
          if (alive() && n.leases.get(r) === lease) {
            n.belief.set(r, lease.mode);
            this.log(n, `converted R${r} to ${lease.mode} lver ${lease.lver}`);
          }
        } catch (e) {
          stats.errors++;
          if (alive() && n.leases.get(r) === lease) {
            this.log(n, `convert R${r} ${to}: ${errText(e)}`);
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
      await this.sleep(n, rng.range(0, s.thinkMs));
    }
    if (alive() && cl.stopping) {
      // Clean leave: release everything, then the host_id.
      for (const [r, lease] of [...n.leases]) {
        n.belief.delete(r);
        n.leases.delete(r);
        await this.track(n, `release R${r}`, releaseResource(px, lease)).catch(() => undefined);
      }
      n.watchdogArmed = false;
      await this.track(n, 'leave', ls.release()).catch(() => undefined);
      if (n.ls === ls) n.ls = undefined;
    }
  }
}

function errText(e: unknown): string {
  if (e instanceof LeaseError) return `${e.code ?? e.rv} ${e.message.slice(0, 140)}`;
  return e instanceof Error ? e.message.slice(0, 140) : String(e);
}
