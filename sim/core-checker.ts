/**
 * The invariant checker of the core-level cluster, run after every
 * scheduler step (and at the points of the workload where a reply must
 * hold). Per host: the core's lock records are consistent (never two ex,
 * never ex with sh, counts agree), no two clients were told ex on one LV (or
 * ex while another holds sh), LVB versions seen by a holder never go
 * backwards (LvbWatch), and every request is answered (or its client is
 * gone) within a bound. With a real lock manager (sanlock, dlm), what each
 * host was told it holds must never be ex on two hosts or ex with sh, and
 * with dlm and idm a host granted the VG lock without an invalidation must
 * have the newest announced VG metadata (`stale-vg-metadata`).
 *
 * The checker keeps its own model of what hosts were told (`uses`, from the
 * replies the workload sees); it only reads the cluster.
 */
import type { LmType } from '../src/core/constants';
import type { LockManager, LockspaceEvents, LockspaceView, ManagedLockspace, ResourceView } from '../src/lm/types';
import type { Client, CoreCluster, CoreHost, VgDef } from './core-cluster';
import type { Violation } from './lease-cluster';

/** Watches a ManagedLockspace: value-block versions seen by a holder must not go backwards. */
export class LvbWatch {
  private readonly seen = new Map<string, number>();
  constructor(private readonly where: string, private readonly fail: (rule: string, msg: string) => void) {}
  wrap(ls: ManagedLockspace): ManagedLockspace {
    const self = this;
    return new Proxy(ls, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv) as unknown;
        if (prop === 'lock' && typeof v === 'function') {
          return async (res: ResourceView, mode: 'sh' | 'ex', o: { adoptOnly: boolean; adoptOk: boolean; repair: boolean }) => {
            const r = await (v as ManagedLockspace['lock']).call(target, res, mode, o);
            if (r.rv === 0 && r.vb) self.saw(res.name, r.vb.rVersion, 'lock');
            return r;
          };
        }
        if ((prop === 'unlock' || prop === 'convert') && typeof v === 'function') {
          return async (res: ResourceView, a: unknown, b: unknown) => {
            const rVersion = prop === 'unlock' ? (a as number) : (b as number);
            if (res.useValueBlock && res.mode === 'ex' && rVersion) self.saw(res.name, rVersion, prop);
            return (v as (...x: unknown[]) => Promise<number>).call(target, res, a, b);
          };
        }
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
  private saw(name: string, version: number, how: string): void {
    const prev = this.seen.get(name) ?? 0;
    if (version && version < prev) this.fail('lvb-backwards', `${this.where} ${name}: ${how} saw r_version ${version} after ${prev}`);
    if (version > prev) this.seen.set(name, version);
  }
}

export class CoreChecker {
  violation: Violation | undefined;
  /** Real lock managers: what each host uses (told by replies), `vg/lv` or `vg/lv|c<client>` → mode. */
  private readonly uses = new Map<number, Map<string, 'sh' | 'ex'>>();
  /** VGs whose kill path fired on a host (its LVs are deactivated). */
  private readonly killed = new Map<number, Set<string>>();
  /**
   * dlm mode: the newest VG version other hosts must notice. A version counts
   * once lvmlockd accepted its vg_update, or when its writer's node died holding
   * the VG lock ex (then only the DLM's LVB-loss report can tell the others).
   * A vg_update refused because a stop raced the command is lvmlockd's own gap
   * (C's too), not checked here.
   */
  private readonly vgAnnounced = new Map<string, number>();
  // Scratch maps of the allocation-free counting passes.
  private readonly toldCount = new Map<string, number>();
  private readonly mineScratch = new Map<string, 'sh' | 'ex'>();
  private readonly perScratch = new Map<string, number>();

  constructor(private readonly cl: CoreCluster) {}

  /** Record the first violation (later ones are ignored) and trace it. */
  fail(rule: string, message: string): void {
    if (this.violation) return;
    this.violation = { rule, message, at: this.cl.sim.now };
    this.cl.sim.log(`VIOLATION ${rule}: ${message}`);
  }

  /**
   * Wrap every ManagedLockspace a host's managers create in an LvbWatch. The
   * DLM loses LVB content when a node dies (VALNOTVALID, or recovered from NL
   * copies) and the count starts again, lower: lvmlockd then invalidates.
   * There the rule is the stale-vg-metadata check (vgLockGranted) instead.
   */
  watchManagers(ch: CoreHost, managers: Partial<Record<LmType, LockManager>>): void {
    for (const m of Object.values(managers)) {
      if (!m || (this.cl.dlmMode && m.type === 'dlm')) continue;
      const create = m.createLockspace.bind(m);
      m.createLockspace = (view: LockspaceView, events: LockspaceEvents) =>
        new LvbWatch(`host ${ch.id} ${view.name}`, (r, msg) => this.fail(r, msg)).wrap(create(view, events));
    }
  }

  // ---- the checker's model of what hosts use (real lock managers only)

  /** Record what a host uses after a reply, and drop it when an unlock is sent. */
  use(c: Client, key: string, mode: 'sh' | 'ex' | 'un'): void {
    if (!this.cl.crossMode) return;
    const u = this.uses.get(c.host.id) ?? new Map<string, 'sh' | 'ex'>();
    this.uses.set(c.host.id, u);
    if (mode === 'un') u.delete(key);
    else if (!this.killed.get(c.host.id)?.has(key.split('/')[0]!)) u.set(key, mode);
  }
  /** The mode a host uses `vg/lv` in (persistent activations). */
  usedMode(hostId: number, key: string): 'sh' | 'ex' | undefined {
    return this.uses.get(hostId)?.get(key);
  }
  /** The VG's kill path fired on a host: its LVs are deactivated. */
  vgKilled(hostId: number, vg: string): void {
    const k = this.killed.get(hostId) ?? new Set<string>();
    k.add(vg);
    this.killed.set(hostId, k);
    const u = this.uses.get(hostId);
    if (u) for (const key of [...u.keys()]) if (key.startsWith(`${vg}/`)) u.delete(key);
  }
  /**
   * idm: lvmlockctl --drop removed the killed VG's lockspace: its LVs were
   * deactivated, so what the host uses of it from now on comes from a new start.
   */
  vgDropped(hostId: number, vg: string): void {
    this.killed.get(hostId)?.delete(vg);
  }
  /** A client disconnected: its transient locks are gone. */
  clientGone(c: Client): void {
    const u = this.uses.get(c.host.id);
    if (u) for (const key of [...u.keys()]) if (key.endsWith(`|c${c.id}`)) u.delete(key);
  }
  /** The host's daemon crashed: nothing it held is in use. */
  hostDown(hostId: number): void {
    this.uses.delete(hostId);
  }
  /** A new daemon incarnation starts with nothing killed and nothing in use. */
  hostStarted(hostId: number): void {
    this.killed.delete(hostId);
    this.uses.delete(hostId);
  }

  // ---- dlm mode: stale VG metadata

  /** A VG version other hosts must notice from now on (see vgAnnounced). */
  announce(vg: string, version: number): void {
    this.vgAnnounced.set(vg, version);
  }
  /** A vg_update of `version` was accepted. */
  updateAccepted(vg: string, version: number): void {
    this.vgAnnounced.set(vg, Math.max(version, this.vgAnnounced.get(vg) ?? 1));
  }
  /**
   * A VG lock granted without an invalidation must find this host's metadata
   * current. The VG version travels in the VG lock's LVB; when the DLM lost it
   * (the writer died), the manager must make the core invalidate.
   */
  vgLockGranted(ch: CoreHost, vg: VgDef, mode: 'sh' | 'ex'): void {
    const truth = this.vgAnnounced.get(vg.name) ?? 1;
    if ((ch.vgCache.get(vg.name) ?? 0) < truth) {
      this.fail('stale-vg-metadata', `host ${ch.id} got lock_vg ${mode} ${vg.name} without invalidation while its metadata is version ${ch.vgCache.get(vg.name) ?? 'none'} and the VG is at ${truth}`);
    }
  }

  // ---- after every step
  // A counting pass without allocations finds that nothing conflicts; only a
  // conflict runs the passes that build the message.

  private toldConflict(ch: CoreHost): boolean {
    const toldCount = this.toldCount;
    toldCount.clear();
    for (const c of ch.clients.values()) {
      if (c.gone) continue;
      for (const [lv, m] of c.told) {
        const n = (toldCount.get(lv) ?? 0) + (m === 'ex' ? 0x10001 : 1); // ex count << 16 | holders
        if (n >> 16 > 1 || (n >> 16 && (n & 0xffff) > 1)) return true;
        toldCount.set(lv, n);
      }
    }
    return false;
  }
  /** No two clients of a host were told ex on one transiently locked LV (or ex and sh). */
  checkTold(ch: CoreHost): void {
    if (!this.toldConflict(ch)) return;
    const per = new Map<string, Array<'sh' | 'ex'>>();
    for (const c of ch.clients.values()) {
      if (c.gone) continue;
      for (const [lv, m] of c.told) per.set(lv, [...(per.get(lv) ?? []), m]);
    }
    for (const [lv, modes] of per) {
      const ex = modes.filter((m) => m === 'ex').length;
      if (ex > 1 || (ex && modes.length > 1)) this.fail('told-conflict', `host ${ch.id} clients were told ${modes.join('+')} on ${lv}`);
    }
  }

  private crossConflict(): boolean {
    const perScratch = this.perScratch;
    const mineScratch = this.mineScratch;
    perScratch.clear();
    for (const ch of this.cl.hosts) {
      if (ch.host.crashed) continue;
      const u = this.uses.get(ch.id);
      if (!u || u.size === 0) continue;
      mineScratch.clear();
      for (const [k, m] of u) {
        const bar = k.indexOf('|');
        const key = bar < 0 ? k : k.slice(0, bar);
        if (m === 'ex' || !mineScratch.has(key)) mineScratch.set(key, m);
      }
      for (const [key, m] of mineScratch) {
        const n = (perScratch.get(key) ?? 0) + (m === 'ex' ? 0x10001 : 1);
        if (n >> 16 > 1 || (n >> 16 && (n & 0xffff) > 1)) return true;
        perScratch.set(key, n);
      }
    }
    return false;
  }
  private crossHostCheck(): void {
    if (!this.crossConflict()) return;
    const per = new Map<string, Array<[number, 'sh' | 'ex']>>();
    for (const ch of this.cl.hosts) {
      if (ch.host.crashed) continue;
      // One entry per host and LV: the strongest mode any of its users holds (persistent or transient).
      const mine = new Map<string, 'sh' | 'ex'>();
      for (const [k, m] of this.uses.get(ch.id) ?? []) {
        const key = k.split('|')[0]!;
        if (m === 'ex' || !mine.has(key)) mine.set(key, m);
      }
      for (const [key, m] of mine) per.set(key, [...(per.get(key) ?? []), [ch.id, m]]);
    }
    for (const [key, hs] of per) {
      const ex = hs.filter(([, m]) => m === 'ex');
      if (ex.length > 1) return this.fail('two-ex', `${key} active ex on hosts ${ex.map(([h]) => h).join(',')}`);
      if (ex.length && hs.length > 1) return this.fail('ex-with-sh', `${key} active ex on host ${ex[0]![0]} and sh on ${hs.filter(([, m]) => m === 'sh').map(([h]) => h).join(',')}`);
    }
  }

  /** Every invariant, after every scheduler step. */
  check(): void {
    const cl = this.cl;
    if (this.violation) return;
    if (cl.crossMode) this.crossHostCheck();
    if (this.violation) return;
    for (const ch of cl.hosts) {
      if (ch.host.crashed) continue;
      for (const ls of ch.core.lockspaces) {
        for (const r of ls.resources) {
          let ex = 0;
          let sh = 0;
          for (const l of r.locks) {
            if (l.mode === 'ex') ex++;
            else if (l.mode === 'sh') sh++;
          }
          if (ex > 1) return this.fail('two-ex', `host ${ch.id} ${ls.name} ${r.name}: ${ex} ex locks`);
          if (ex && sh) return this.fail('ex-with-sh', `host ${ch.id} ${ls.name} ${r.name}: ex with ${sh} sh`);
          // r.mode and r.locks are updated on both sides of an awaited lock-manager call, so with a
          // manager that takes time (sanlock on a disk) they may differ while the call is in flight.
          if (cl.crossMode) continue;
          if (r.locks.length === 0 && r.mode !== 'un') return this.fail('records', `host ${ch.id} ${r.name}: mode ${r.mode} without locks`);
          if (r.locks.length && r.mode !== (ex ? 'ex' : 'sh')) return this.fail('records', `host ${ch.id} ${r.name}: mode ${r.mode} vs locks`);
        }
      }
      this.checkTold(ch);
    }
    for (const p of cl.pendingAll) {
      const h = p.client.host.host;
      if (h.paused) continue;
      // Unpaused time: a daemon stopped (SIGSTOP) for minutes answers after it resumes.
      const waited = cl.sim.now - p.sent - (h.pausedMs - p.pausedAtSend);
      if (waited > 120_000) return this.fail('wait-forever', `host ${p.client.host.id} client ${p.client.id} ${p.what} unanswered for ${(waited / 1000).toFixed(0)} s (daemon not paused)`);
    }
  }

  /** The run is over and every fault healed: no request may still be waiting. */
  checkAllAnswered(): void {
    const cl = this.cl;
    for (const p of cl.pendingAll) {
      this.fail('wait-forever', `host ${p.client.host.id} client ${p.client.id} ${p.what} sent at ${(p.sent / 1000).toFixed(3)} s never answered (now ${(cl.sim.now / 1000).toFixed(3)} s, ${cl.sim.pending()} events queued, paused ${p.client.host.host.paused}, client gone ${p.client.gone})`);
    }
  }
}
