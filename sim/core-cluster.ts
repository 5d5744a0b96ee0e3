/**
 * Core-level cluster: N simulated hosts, each running the real daemon core
 * (LockdCore from src/core) behind fake CorePorts whose sleeps, deferred
 * jobs and clock come from the simulator, driven by lvm-like commands from
 * several clients per host (lock-start/stop, activation, lvcreate,
 * lvremove, vgremove, global lock, vg_update, client crashes, mutated
 * frames). Faults: daemon pause, daemon crash and restart, client
 * disconnects mid-command.
 *
 * The lock manager is pluggable (CoreLmFactory): the test-mode managers
 * (src/lm/test), or with `lm: 'sanlock'` the real sanlock manager
 * (src/lm/sanlock) of every host on one shared simulated LUN, where what the
 * hosts were told they hold is also checked across hosts. Every
 * ManagedLockspace the core creates is wrapped by a watcher that checks the
 * value blocks (LVB) a holder sees never go backwards.
 *
 * Invariants after every step, per host: the core's lock records are
 * consistent (never two ex, never ex with sh, counts agree), no two
 * clients were told ex on one LV (or ex while another holds sh), LVB
 * versions seen by a holder never go backwards, and every request is
 * answered (or its client is gone) within a bound.
 */
import { LockdCore, newGlobalLockChoice, type MutableGlobalLockChoice } from '../src/core/lockd';
import type { LmType } from '../src/core/constants';
import type { LockManager, LockspaceView, ManagedLockspace, ResourceView } from '../src/lm/types';
import { TestLockManager } from '../src/lm/test/test-lm';
import { ConfigMap, formatRequest, parseConfigTree, type WireValue } from '../src/protocol/config-tree';
import { SanlockLockManager } from '../src/lm/sanlock/sanlock-lm';
import { calcHostDeadSeconds } from '../src/leases/timeouts';
import { DlmLockManager } from '../src/lm/dlm/dlm-lm';
import { DlmClusterModel } from './dlm-model';
import { SimHost } from './kernel/host';
import { Rng } from './kernel/rng';
import { Scheduler, drain, fmtT } from './kernel/scheduler';
import { NO_DISK_FAULTS, SimStorage, crashWriteResolver } from './kernel/storage';
import type { Violation } from './lease-cluster';

export interface CoreRunResult {
  seed: number;
  violation: Violation | undefined;
  trace: string[];
  stats: { steps: number; simMs: number; faults: number; requests: number; replies: number; errors: number };
}

/** What a host's lock managers get from the simulator. */
export interface CoreHostContext {
  host: SimHost;
  gl: MutableGlobalLockChoice;
  hostId: number;
  log(line: string): void;
}

/** Builds the lock managers of one host (one daemon incarnation). */
export type CoreLmFactory = (ctx: CoreHostContext) => Partial<Record<LmType, LockManager>>;

/** Default: the test-mode managers (what `lvmlockd -T` runs). */
export const testLmFactory: CoreLmFactory = (ctx) => {
  const hooks = { deviceExists: () => true, log: (l: string) => ctx.log(l), sleep: (ms: number) => ctx.host.clock.sleep(ms) };
  return {
    sanlock: new TestLockManager('sanlock', ctx.gl, hooks, () => ctx.hostId),
    dlm: new TestLockManager('dlm', ctx.gl, hooks, () => ctx.hostId),
  };
};

/** Size of the simulated lvmlock LV: lockspace, GL, VG and 8 LV lease slots (1 MiB align, 512-byte sectors). */
const LVMLOCK_BYTES = (67 + 8) * 1024 * 1024;

/**
 * The real sanlock lock manager (src/lm/sanlock) of one host, on the shared
 * simulated LUN: every host opens the same SimStorage through its own SimDisk,
 * with its own clock and seeded random source. The dlm VG keeps the test manager.
 */
export function sanlockLmFactory(storage: SimStorage, rng: Rng, ioTimeout: number): CoreLmFactory {
  return (ctx) => {
    const hooks = { deviceExists: () => true, log: (l: string) => ctx.log(l), sleep: (ms: number) => ctx.host.clock.sleep(ms) };
    const sanlock = new SanlockLockManager({
      glChoice: ctx.gl,
      ioTimeout,
      defaultHostId: () => ctx.hostId,
      lockspaceCount: () => 0,
      debug: (l) => ctx.log(l),
      error: (l) => ctx.log(`ERROR ${l}`),
      sleep: (ms) => ctx.host.clock.sleep(ms),
      clock: ctx.host.clock,
      random: rng.fork(`lm-h${ctx.hostId}-${ctx.host.incarnation}`),
      openDisk: async () => storage.diskFor(ctx.host),
      blockSizes: () => ({ physical: 512, logical: 512 }),
      deviceExists: () => true,
      hostName: `simhost${ctx.hostId}.inc${ctx.host.incarnation}`,
    });
    return { sanlock, dlm: new TestLockManager('dlm', ctx.gl, hooks, () => ctx.hostId) };
  };
}

/**
 * The real dlm lock manager (src/lm/dlm) of one host on the DLM model
 * (sim/dlm-model.ts): each daemon incarnation is a new process on its node.
 * The sanlock VG keeps the test manager.
 */
export function dlmLmFactory(model: DlmClusterModel): CoreLmFactory {
  return (ctx) => {
    const hooks = { deviceExists: () => true, log: (l: string) => ctx.log(l), sleep: (ms: number) => ctx.host.clock.sleep(ms) };
    const node = model.node(ctx.hostId);
    node.dead = false;
    const proc = node.process();
    const dlm = new DlmLockManager({
      kernel: proc, control: node.control(), configfs: node.configfs(),
      debug: (l) => ctx.log(l), error: (l) => ctx.log(`ERROR ${l}`), sleep: (ms) => ctx.host.clock.sleep(ms),
    });
    return { sanlock: new TestLockManager('sanlock', ctx.gl, hooks, () => ctx.hostId), dlm };
  };
}

type Fields = Array<readonly [string, WireValue]>;

interface VgDef {
  name: string;
  lockType: 'sanlock' | 'dlm';
  /** LVs activated with persistent locks (lvchange -a): host-wide, so clients' told state is not checked on them. */
  lvs: string[];
  /** LVs only locked transiently by running commands: what clients are told must never conflict. */
  tlvs: string[];
}

/** Watches a ManagedLockspace: value-block versions seen by a holder must not go backwards. */
class LvbWatch {
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

interface Pending {
  client: Client;
  text: string;
  what: string;
  sent: number;
  /** The daemon's total paused time when the request was sent (a paused daemon cannot answer). */
  pausedAtSend: number;
  resolve: (r: ConfigMap | null) => void;
}

interface Client {
  id: number;
  host: CoreHost;
  pending: Pending | undefined;
  /** LV locks this client was told it holds (transient), uuid → mode. */
  told: Map<string, 'sh' | 'ex'>;
  gone: boolean;
}

class CoreHost {
  core!: LockdCore;
  gl!: MutableGlobalLockChoice;
  clients = new Map<number, Client>();
  started = new Set<string>();
  /** dlm mode: the VG metadata version this host's commands work from (reread on invalidation, or written). */
  vgCache = new Map<string, number>();
  constructor(readonly id: number, readonly host: SimHost) {}
}

export async function runCoreSchedule(
  seed: number,
  o: {
    hosts?: number | undefined; factory?: CoreLmFactory; traceAll?: boolean; coreDebug?: boolean; lm?: 'test' | 'sanlock' | 'dlm';
    allowStopRace?: boolean; noWatchdog?: boolean; dlmBug?: { hideLostLvb?: boolean };
  } = {},
): Promise<CoreRunResult> {
  // The stop_vg race (docs/simulator.md, finding 5) is fixed in the core: race freely unless told not to.
  const allowStopRace = o.allowStopRace ?? true;
  const coreDebug = !!o.coreDebug;
  const sim = new Scheduler();
  sim.traceAll = !!o.traceAll;
  const root = new Rng(seed);
  const rng = root.fork('core-workload');
  const sanlockMode = o.lm === 'sanlock';
  // dlm: the real dlm manager on the DLM model; a host crash is a node failure that
  // dlm_controld fences, and the node's locks go only when recovery completes.
  const dlmMode = o.lm === 'dlm';
  /** What hosts were told they hold is checked across hosts (real lock managers only). */
  const crossMode = sanlockMode || dlmMode;
  const nHosts = o.hosts ?? (sanlockMode || dlmMode ? rng.intIn(2, 3) : rng.intIn(1, 3));
  const ioTimeout = 1;
  const storage = sanlockMode ? new SimStorage(sim, root.fork('disk'), LVMLOCK_BYTES, 512) : undefined;
  if (storage) storage.rates = { ...NO_DISK_FAULTS, latencyMax: rng.pick([0.5, 5, 50]) };
  const dlmRng = dlmMode ? root.fork('dlm') : undefined;
  const dlmModel = dlmMode
    ? new DlmClusterModel({
      clusterName: 'test', defer: (fn) => sim.after(dlmRng!.range(0, 3), fn), log: (l) => sim.log(l),
      ...(o.dlmBug?.hideLostLvb ? { bugHideLostLvb: true } : {}),
    })
    : undefined;
  const factory = o.factory ?? (storage ? sanlockLmFactory(storage, root.fork('lm'), ioTimeout)
    : dlmModel ? dlmLmFactory(dlmModel) : testLmFactory);
  // host_dead with io_timeout 1 and sanlock's watchdog_fire_timeout 60: 68 s.
  const hostDeadMs = calcHostDeadSeconds(ioTimeout) * 1000;
  const durationMs = Math.round(sanlockMode ? rng.range(2, 3) * hostDeadMs : rng.range(60_000, 180_000));
  /** sanlock mode: lv_lock_args of each LV from init_lv; what each host uses (told by replies). */
  const lvArgs = new Map<string, string>();
  const uses = new Map<number, Map<string, 'sh' | 'ex'>>();
  const killed = new Map<number, Set<string>>();
  const vgs: VgDef[] = [
    { name: 'vga', lockType: 'sanlock', lvs: ['lvuuid-a0', 'lvuuid-a1'], tlvs: ['lvuuid-a2', 'lvuuid-a3'] },
    { name: 'vgb', lockType: 'dlm', lvs: ['lvuuid-b0'], tlvs: ['lvuuid-b1'] },
  ];
  if (dlmMode) vgs.splice(0, vgs.length, { name: 'vgb', lockType: 'dlm', lvs: ['lvuuid-b0', 'lvuuid-b2'], tlvs: ['lvuuid-b1', 'lvuuid-b3'] });
  /** Lock types whose LV locks are checked across hosts. */
  const crossVg = (vg: VgDef): boolean => (sanlockMode && vg.lockType === 'sanlock') || (dlmMode && vg.lockType === 'dlm');
  const stats = { steps: 0, simMs: 0, faults: 0, requests: 0, replies: 0, errors: 0 };
  let violation: Violation | undefined;
  const fail = (rule: string, message: string) => {
    if (violation) return;
    violation = { rule, message, at: sim.now };
    sim.log(`VIOLATION ${rule}: ${message}`);
  };
  const pendingAll = new Set<Pending>();
  const vgVersion = new Map<string, number>();
  /**
   * dlm mode: the newest VG version other hosts must notice. A version counts
   * once lvmlockd accepted its vg_update, or when its writer's node died holding
   * the VG lock ex (then only the DLM's LVB-loss report can tell the others).
   * A vg_update refused because a stop raced the command is lvmlockd's own gap
   * (C's too), not checked here.
   */
  const vgAnnounced = new Map<string, number>();
  /** host/vg/lv of activations in progress (see command()). */
  const activating = new Set<string>();

  const hosts: CoreHost[] = [];
  for (let h = 1; h <= nHosts; h++) hosts.push(new CoreHost(h, new SimHost(sim, h, rng.range(0, 1e8), 1)));

  let nextClient = 1;
  const boot = (ch: CoreHost) => {
    ch.gl = newGlobalLockChoice();
    const managers = factory({ host: ch.host, gl: ch.gl, hostId: ch.id, log: (l) => void l });
    for (const m of Object.values(managers)) {
      // The DLM loses LVB content when a node dies (VALNOTVALID, or recovered from
      // NL copies) and the count starts again, lower: lvmlockd then invalidates.
      // There the rule is the stale-vg-metadata check (lockVg) instead.
      if (!m || (dlmMode && m.type === 'dlm')) continue;
      const create = m.createLockspace.bind(m) as (...args: unknown[]) => ManagedLockspace;
      // Wrap whatever the manager returns; pass every argument through (the signature is still growing).
      (m as { createLockspace: unknown }).createLockspace = (view: LockspaceView, ...rest: unknown[]) =>
        new LvbWatch(`host ${ch.id} ${view.name}`, fail).wrap(create(view, ...rest));
    }
    // Not annotated as CorePorts: the port list is still growing (same approach as test/helpers/core-harness.ts).
    const ports = {
      send: (id: number, text: string): boolean => {
        const c = ch.clients.get(id);
        if (!c || c.gone || ch.host.crashed) return false;
        const p = c.pending;
        if (!p) {
          fail('extra-reply', `host ${ch.id} client ${id} got a reply with no request outstanding: ${text.slice(0, 120)}`);
          return true;
        }
        c.pending = undefined;
        pendingAll.delete(p);
        stats.replies++;
        const parsed = parseConfigTree(text);
        if (!parsed.ok) {
          fail('bad-reply', `host ${ch.id} sent an unparsable reply: ${text.slice(0, 120)}`);
          p.resolve(null);
        } else p.resolve(new ConfigMap(parsed.entries));
        return true;
      },
      sendDump: async (text: string): Promise<number> => Buffer.byteLength(text),
      dumpLog: (): string => '',
      debug: (l: string): void => {
        // The daemon invalidated the VG: its commands reread the metadata, at the version on disk.
        const inv = dlmMode ? /^lvm_(.+):VGLK res_lock invalidate vg state/.exec(l) : null;
        if (inv) ch.vgCache.set(inv[1]!, vgVersion.get(inv[1]!) ?? 1);
        if (coreDebug) sim.log(`h${ch.id} D ${l}`);
      },
      error: (l: string): void => {
        if (/lockspace loop failed|work .* failed/.test(l)) fail('core-exception', `host ${ch.id}: ${l.slice(0, 300)}`);
      },
      sleep: (ms: number): Promise<void> => ch.host.clock.sleep(ms),
      defer: (fn: () => void): void => ch.host.at(sim.now, fn),
      nowMs: (): number => ch.host.clock.nowMs(),
      quit: (): void => undefined,
      locksChanged: (): void => undefined,
      killVg: (vg: string): void => {
        sim.log(`h${ch.id} KILL PATH: lock manager failed, VG ${vg} killed (its LVs are deactivated)`);
        const k = killed.get(ch.id) ?? new Set<string>();
        k.add(vg);
        killed.set(ch.id, k);
        const u = uses.get(ch.id);
        if (u) for (const key of [...u.keys()]) if (key.startsWith(`${vg}/`)) u.delete(key);
      },
    };
    ch.core = new LockdCore(ports, { testMode: true, glType: null, managers, glChoice: ch.gl });
    ch.vgCache.clear();
    ch.started.clear();
    ch.clients.clear();
  };

  const connect = (ch: CoreHost): Client => {
    const c: Client = { id: 0, host: ch, pending: undefined, told: new Map(), gone: false };
    c.id = ch.core.addClient(1000 + nextClient++, 10, 2);
    ch.clients.set(c.id, c);
    return c;
  };
  const disconnect = (c: Client) => {
    if (c.gone) return;
    c.gone = true;
    c.told.clear();
    if (c.pending) {
      pendingAll.delete(c.pending);
      c.pending.resolve(null);
      c.pending = undefined;
    }
    if (!c.host.host.crashed) c.host.core.removeClient(c.id);
    c.host.clients.delete(c.id);
    const u = uses.get(c.host.id);
    if (u) for (const key of [...u.keys()]) if (key.endsWith(`|c${c.id}`)) u.delete(key);
  };

  /** Send one request; resolves with the reply, or null (client gone, daemon crashed). */
  const rpc = (c: Client, fields: Fields | string, what: string): Promise<ConfigMap | null> =>
    new Promise((resolve) => {
      if (c.gone || c.host.host.crashed) return resolve(null);
      const text = typeof fields === 'string' ? fields : formatRequest(fields);
      const p: Pending = { client: c, text, what, sent: sim.now, pausedAtSend: c.host.host.pausedMs, resolve };
      c.pending = p;
      pendingAll.add(p);
      stats.requests++;
      const inc = c.host.host.incarnation;
      c.host.host.at(sim.now, () => {
        if (c.gone || c.host.host.incarnation !== inc) return;
        c.host.core.request(c.id, text);
      });
    });

  const log = (c: Client, msg: string) => sim.log(`h${c.host.id} c${c.id} ${msg}`);
  const result = (r: ConfigMap | null): number => (r ? Number(r.int('op_result') ?? r.int('result') ?? NaN) : NaN);

  const base = (req: string, vg: VgDef | null, extra: Fields = []): Fields => [
    ['request', req], ['cmd', 'lvm'], ['pid', 1], ...(vg ? ([['vg_name', vg.name]] as Fields) : []), ['opts', 'none'], ...extra,
  ];
  const startVg = (vg: VgDef, hostId: number): Fields => [
    ['request', 'start_vg'], ['pid', 1], ['vg_name', vg.name], ['vg_lock_type', vg.lockType],
    ['vg_lock_args', vg.lockType === 'sanlock' ? '1.0.0:lvmlock' : '1.0.0:test'], ['vg_uuid', `uuid-${vg.name}`],
    ['version', 1], ['host_id', vg.lockType === 'sanlock' ? hostId : 0], ['opts', 'none'],
  ];
  const lockLv = (vg: VgDef, lv: string, mode: string, opts = 'none'): Fields => [
    ['request', 'lock_lv'], ['cmd', 'lvm'], ['pid', 1], ['vg_name', vg.name], ['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv],
    ['mode', mode], ['opts', opts], ['lv_lock_args', vg.lockType === 'sanlock' ? lvArgs.get(lv) ?? '1.0.0:70254592' : 'none'],
  ];
  /** sanlock mode: record what a host uses after a reply, and drop it when an unlock is sent. */
  const use = (c: Client, key: string, mode: 'sh' | 'ex' | 'un') => {
    if (!crossMode) return;
    const u = uses.get(c.host.id) ?? new Map<string, 'sh' | 'ex'>();
    uses.set(c.host.id, u);
    if (mode === 'un') u.delete(key);
    else if (!killed.get(c.host.id)?.has(key.split('/')[0]!)) u.set(key, mode);
  };

  /**
   * dlm mode: a VG lock granted without an invalidation must find this host's
   * metadata current. The VG version travels in the VG lock's LVB; when the DLM
   * lost it (the writer died), the manager must make the core invalidate.
   */
  const lockVg = (c: Client, vg: VgDef, mode: 'sh' | 'ex' | 'un'): Promise<ConfigMap | null> => {
    const ch = c.host;
    const p = rpc(c, base('lock_vg', vg, [['mode', mode]]), `lock_vg ${mode}`);
    // Other modes get the bare promise: no extra tick, so their schedules replay as before.
    if (!dlmMode || mode === 'un') return p;
    return p.then((r) => {
      if (result(r) !== 0 || ch.host.crashed) return r;
      const truth = vgAnnounced.get(vg.name) ?? 1;
      if ((ch.vgCache.get(vg.name) ?? 0) < truth) {
        fail('stale-vg-metadata', `host ${ch.id} got lock_vg ${mode} ${vg.name} without invalidation while its metadata is version ${ch.vgCache.get(vg.name) ?? 'none'} and the VG is at ${truth}`);
      }
      return r;
    });
  };

  const expectOne = (c: Client, r: ConfigMap | null, what: string, ok: number[]) => {
    const rv = result(r);
    if (r && !ok.includes(rv)) {
      stats.errors++;
    }
    log(c, `${what} -> ${r ? rv : 'no reply'}`);
    return rv;
  };

  /** One lvm-like command on a client. */
  const command = async (c: Client): Promise<void> => {
    const ch = c.host;
    const vg = rng.pick(vgs);
    const x = rng.next();
    if (x < 0.12) {
      const r = await rpc(c, startVg(vg, ch.id), `start_vg ${vg.name}`);
      expectOne(c, r, `vgchange --lock-start ${vg.name}`, [0]);
      const w = await rpc(c, [['request', 'start_wait'], ['pid', 1]], 'start_wait');
      expectOne(c, w, 'start_wait', [0]);
    } else if (x < 0.42) {
      // lvchange -a{e,s}y: GL sh, VG sh, LV lock (persistent), VG un, GL un
      const lv = rng.pick(vg.lvs);
      // Activation state is host-wide: lvm does not serialize two lvchange of one LV on one
      // host, and racing -an with -ay leaves an active LV unlocked whatever the daemon does.
      // The workload, like an admin, does not race them.
      const busyKey = `${ch.id}/${vg.name}/${lv}`;
      if (activating.has(busyKey)) return;
      activating.add(busyKey);
      try {
        const mode = rng.chance(0.6) ? 'ex' : 'sh';
        await rpc(c, base('lock_gl', null, [['mode', 'sh'], ['vg_lock_type', 'none']]), 'lock_gl sh');
        await lockVg(c, vg, 'sh');
        // -asy on an LV this host has active ex asks to share it: from the moment the
        // request is sent other hosts may activate it shared (the convert's SH mode block
        // can land before the reply), as the lease level counts an ex->sh convert.
        const key = `${vg.name}/${lv}`;
        if (mode === 'sh' && uses.get(ch.id)?.get(key) === 'ex') use(c, key, 'sh');
        const r = await rpc(c, lockLv(vg, lv, mode, 'persistent'), `lock_lv ${mode}`);
        const arv = expectOne(c, r, `lvchange -a${mode[0]}y ${vg.name}/${lv}`, [0]);
        if (arv === 0 && crossVg(vg)) use(c, key, mode as 'sh' | 'ex');
        await rpc(c, base('lock_vg', vg, [['mode', 'un']]), 'lock_vg un');
        await rpc(c, base('lock_gl', null, [['mode', 'un'], ['vg_lock_type', 'none']]), 'lock_gl un');
      } finally {
        activating.delete(busyKey);
      }
    } else if (x < 0.55) {
      const lv = rng.pick(vg.lvs);
      const busyKey = `${ch.id}/${vg.name}/${lv}`;
      if (activating.has(busyKey)) return;
      activating.add(busyKey);
      try {
        if (crossVg(vg)) use(c, `${vg.name}/${lv}`, 'un'); // deactivated before the unlock is sent
        const r = await rpc(c, lockLv(vg, lv, 'un', 'persistent'), 'lock_lv un');
        expectOne(c, r, `lvchange -an ${vg.name}/${lv}`, [0]);
      } finally {
        activating.delete(busyKey);
      }
    } else if (x < 0.7) {
      // a transient LV lock held for a while by a running command (told state is checked)
      const lv = rng.pick(vg.tlvs);
      const mode = rng.chance(0.5) ? 'ex' : 'sh';
      const r = await rpc(c, lockLv(vg, lv, mode), `lock_lv ${mode} transient`);
      const rv = expectOne(c, r, `transient lock_lv ${mode} ${vg.name}/${lv}`, [0]);
      if (rv === 0 && !c.gone) {
        c.told.set(lv, mode);
        if (crossVg(vg)) use(c, `${vg.name}/${lv}|c${c.id}`, mode);
      }
      checkTold(ch);
      await ch.host.clock.sleep(rng.range(0, 5000));
      if (c.gone) return;
      if (crossVg(vg)) use(c, `${vg.name}/${lv}|c${c.id}`, 'un');
      const u = await rpc(c, lockLv(vg, lv, 'un'), 'lock_lv un transient');
      if (result(u) === 0 || result(u) === -2) c.told.delete(lv);
    } else if (x < 0.8) {
      // lvcreate / lvremove / vgremove-like VG ex sequence with a metadata update
      await rpc(c, base('lock_gl', null, [['mode', 'sh'], ['vg_lock_type', 'none']]), 'lock_gl sh');
      const r = await lockVg(c, vg, 'ex');
      const rv = expectOne(c, r, `lock_vg ex ${vg.name}`, [0]);
      if (rv === 0) {
        const kind = sanlockMode ? 'vgremove-probe' : rng.pick(['lvcreate', 'lvremove', 'vgremove-probe']);
        const lv = rng.pick(vg.lvs);
        if (kind === 'lvcreate') {
          await rpc(c, base('init_lv', vg, [['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv], ['vg_lock_type', vg.lockType], ['vg_lock_args', '1.0.0:lvmlock']]), 'init_lv');
        } else if (kind === 'lvremove') {
          const l = await rpc(c, lockLv(vg, lv, 'ex'), 'lock_lv ex (lvremove)');
          if (result(l) === 0) {
            await rpc(c, base('free_lv', vg, [['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv], ['lv_lock_args', '1.0.0:70254592']]), 'free_lv');
            await rpc(c, lockLv(vg, lv, 'un'), 'lock_lv un (lvremove)');
          }
        } else {
          await rpc(c, base('busy_vg', vg), 'busy_vg');
        }
        // VG metadata seqno: on disk, so shared by every host.
        const v = (vgVersion.get(vg.name) ?? 1) + 1;
        vgVersion.set(vg.name, v);
        ch.vgCache.set(vg.name, v);
        if (dlmMode && !stopping && rng.chance(0.08)) {
          // The node dies after writing the metadata, holding the VG lock ex: the new
          // version never reaches the LVB, and the others must not trust the old one.
          sim.log(`h${ch.id} CRASH node after writing VG metadata ${v}, holding the VG lock ex`);
          vgAnnounced.set(vg.name, v);
          stats.faults++;
          crashHost(ch, rng.range(5000, 30_000));
          return;
        }
        const upd = await rpc(c, [['request', 'vg_update'], ['pid', 1], ['vg_name', vg.name], ['version', v]], `vg_update ${v}`);
        if (dlmMode && result(upd) === 0) vgAnnounced.set(vg.name, Math.max(v, vgAnnounced.get(vg.name) ?? 1));
        await rpc(c, base('lock_vg', vg, [['mode', 'un']]), 'lock_vg un');
      }
      await rpc(c, base('lock_gl', null, [['mode', 'un'], ['vg_lock_type', 'none']]), 'lock_gl un');
    } else if (x < 0.86) {
      const r = await rpc(c, base('lock_gl', null, [['mode', 'ex'], ['vg_lock_type', 'none']]), 'lock_gl ex');
      expectOne(c, r, 'lock_gl ex', [0]);
      await ch.host.clock.sleep(rng.range(0, 1000));
      await rpc(c, base('lock_gl', null, [['mode', 'un'], ['vg_lock_type', 'none']]), 'lock_gl un');
    } else if (x < 0.9) {
      // The race of docs/simulator.md finding 5: a lock request retrying in the lockspace when
      // stop_vg is accepted was granted, answered 0, then cleared by the stop (fixed in the core).
      // allowStopRace: false keeps stop_vg away from in-flight commands.
      if (sanlockMode && !allowStopRace && [...ch.clients.values()].some((x) => x !== c && x.pending)) return;
      const r = await rpc(c, base('stop_vg', vg), `stop_vg ${vg.name}`);
      expectOne(c, r, `vgchange --lock-stop ${vg.name}`, [0]);
    } else if (x < 0.95) {
      // A mutated or garbage frame: answered with an error (op_result, or response "failed").
      const good = formatRequest(lockLv(vg, rng.pick(vg.lvs), 'ex'));
      const bad = mutate(rng, good);
      const r = await rpc(c, bad, 'mutated frame');
      log(c, `mutated frame ${JSON.stringify(bad.slice(0, 60))} -> ${r ? (r.str('response') === 'failed' ? 'failed' : result(r)) : 'no reply'}`);
      const rv = result(r);
      if (rv === 0) {
        // A mutation can still be a valid request (it may hold a lock now): the client exits,
        // and the daemon must release whatever it holds.
        log(c, 'client with a mutated request exits');
        disconnect(c);
      }
    } else {
      const r = await rpc(c, [['request', 'info'], ['pid', 1]], 'info');
      if (r && r.int('dump_len') === undefined) fail('bad-reply', `host ${ch.id} info reply without dump_len`);
    }
  };

  // The checks run after every step: a counting pass without allocations finds that
  // nothing conflicts; only a conflict runs the passes that build the message.
  const toldCount = new Map<string, number>();
  const toldConflict = (ch: CoreHost): boolean => {
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
  };
  const checkTold = (ch: CoreHost) => {
    if (!toldConflict(ch)) return;
    const per = new Map<string, Array<'sh' | 'ex'>>();
    for (const c of ch.clients.values()) {
      if (c.gone) continue;
      for (const [lv, m] of c.told) per.set(lv, [...(per.get(lv) ?? []), m]);
    }
    for (const [lv, modes] of per) {
      const ex = modes.filter((m) => m === 'ex').length;
      if (ex > 1 || (ex && modes.length > 1)) fail('told-conflict', `host ${ch.id} clients were told ${modes.join('+')} on ${lv}`);
    }
  };

  const mineScratch = new Map<string, 'sh' | 'ex'>();
  const perScratch = new Map<string, number>();
  const crossConflict = (): boolean => {
    perScratch.clear();
    for (const ch of hosts) {
      if (ch.host.crashed) continue;
      const u = uses.get(ch.id);
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
  };
  const crossHostCheck = () => {
    if (!crossConflict()) return;
    const per = new Map<string, Array<[number, 'sh' | 'ex']>>();
    for (const ch of hosts) {
      if (ch.host.crashed) continue;
      // One entry per host and LV: the strongest mode any of its users holds (persistent or transient).
      const mine = new Map<string, 'sh' | 'ex'>();
      for (const [k, m] of uses.get(ch.id) ?? []) {
        const key = k.split('|')[0]!;
        if (m === 'ex' || !mine.has(key)) mine.set(key, m);
      }
      for (const [key, m] of mine) per.set(key, [...(per.get(key) ?? []), [ch.id, m]]);
    }
    for (const [key, hs] of per) {
      const ex = hs.filter(([, m]) => m === 'ex');
      if (ex.length > 1) return fail('two-ex', `${key} active ex on hosts ${ex.map(([h]) => h).join(',')}`);
      if (ex.length && hs.length > 1) return fail('ex-with-sh', `${key} active ex on host ${ex[0]![0]} and sh on ${hs.filter(([, m]) => m === 'sh').map(([h]) => h).join(',')}`);
    }
  };
  const check = () => {
    if (violation) return;
    if (crossMode) crossHostCheck();
    if (violation) return;
    for (const ch of hosts) {
      if (ch.host.crashed) continue;
      for (const ls of ch.core.lockspaces) {
        for (const r of ls.resources) {
          let ex = 0;
          let sh = 0;
          for (const l of r.locks) {
            if (l.mode === 'ex') ex++;
            else if (l.mode === 'sh') sh++;
          }
          if (ex > 1) return fail('two-ex', `host ${ch.id} ${ls.name} ${r.name}: ${ex} ex locks`);
          if (ex && sh) return fail('ex-with-sh', `host ${ch.id} ${ls.name} ${r.name}: ex with ${sh} sh`);
          // r.mode and r.locks are updated on both sides of an awaited lock-manager call, so with a
          // manager that takes time (sanlock on a disk) they may differ while the call is in flight.
          if (crossMode) continue;
          if (r.locks.length === 0 && r.mode !== 'un') return fail('records', `host ${ch.id} ${r.name}: mode ${r.mode} without locks`);
          if (r.locks.length && r.mode !== (ex ? 'ex' : 'sh')) return fail('records', `host ${ch.id} ${r.name}: mode ${r.mode} vs locks`);
        }
      }
      checkTold(ch);
    }
    for (const p of pendingAll) {
      const h = p.client.host.host;
      if (h.paused) continue;
      // Unpaused time: a daemon stopped (SIGSTOP) for minutes answers after it resumes.
      const waited = sim.now - p.sent - (h.pausedMs - p.pausedAtSend);
      if (waited > 120_000) return fail('wait-forever', `host ${p.client.host.id} client ${p.client.id} ${p.what} unanswered for ${(waited / 1000).toFixed(0)} s (daemon not paused)`);
    }
  };

  let stopping = false;
  const crashWrite = storage ? crashWriteResolver(root.fork('crash'), storage.stats, 512, () => sim.now, () => 1000) : () => undefined;
  function crashHost(ch: CoreHost, downMs: number): void {
    if (ch.host.crashed) return;
    for (const c of [...ch.clients.values()]) {
      c.gone = true;
      if (c.pending) {
        pendingAll.delete(c.pending);
        c.pending.resolve(null);
      }
    }
    ch.clients.clear();
    uses.delete(ch.id);
    ch.host.crash(crashWrite);
    if (dlmModel) {
      // The node is off: dlm_controld on the others fences it, then the DLM recovers.
      dlmModel.failNode(ch.id);
      sim.after(dlmRng!.range(0.2, 0.9) * downMs, () => dlmModel.recoverNode(ch.id));
    }
    sim.after(downMs, () => {
      ch.host.restart();
      sim.log(`h${ch.id} daemon restarts`);
      startHost(ch);
    });
  }
  let activeLoops = 0;
  const clientLoop = async (ch: CoreHost, inc: number) => {
    activeLoops++;
    try {
      await clientLoopBody(ch, inc);
    } finally {
      activeLoops--;
    }
  };
  const clientLoopBody = async (ch: CoreHost, inc: number) => {
    let c = connect(ch);
    while (!stopping && ch.host.incarnation === inc && !ch.host.crashed) {
      await command(c);
      if (ch.host.incarnation !== inc || ch.host.crashed) return;
      if (c.gone || rng.chance(0.05)) {
        // the command was killed / the client vanished mid-way
        if (!c.gone) log(c, 'client disconnects');
        disconnect(c);
        c = connect(ch);
      }
      await ch.host.clock.sleep(rng.range(0, sanlockMode ? 6000 : 2000));
    }
    disconnect(c);
  };

  const startHost = (ch: CoreHost) => {
    boot(ch);
    killed.delete(ch.id);
    uses.delete(ch.id);
    const inc = ch.host.incarnation;
    const n = rng.intIn(2, 4);
    for (let i = 0; i < n; i++) ch.host.at(sim.now + rng.range(0, 500), () => void clientLoop(ch, inc));
  };
  if (sanlockMode) {
    // vgcreate --shared on host 1: init_vg, then start it there and create the LV leases (init_lv).
    vgs.splice(1);
    const ch = hosts[0]!;
    boot(ch);
    let ready = false;
    void (async () => {
      const c = connect(ch);
      const vg = vgs[0]!;
      const r = await rpc(c, [['request', 'init_vg'], ['pid', 1], ['vg_name', vg.name], ['vg_lock_type', 'sanlock'], ['vg_lock_args', 'lvmlock'], ['opts', 'none']], 'init_vg');
      if (result(r) !== 0) fail('setup', `init_vg failed: ${result(r)}`);
      await rpc(c, startVg(vg, ch.id), 'start_vg');
      await rpc(c, [['request', 'start_wait'], ['pid', 1]], 'start_wait');
      for (const lv of [...vg.lvs, ...vg.tlvs]) {
        const l = await rpc(c, base('init_lv', vg, [['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv], ['vg_lock_type', 'sanlock'], ['vg_lock_args', '1.0.0:lvmlock']]), 'init_lv');
        const args = l?.str('lv_lock_args');
        if (result(l) !== 0 || !args) fail('setup', `init_lv ${lv} failed: ${result(l)}`);
        else lvArgs.set(lv, args);
      }
      disconnect(c);
      ready = true;
    })();
    await sim.run(600_000, () => undefined, () => ready || violation !== undefined);
    if (!ready) fail('setup', 'setup did not finish');
    // Every host's daemon gets an external watchdog, as sanlock's wdmd: it resets the host
    // watchdog_fire_timeout after the delta lease stopped being renewed (the daemon must arm one).
    const watchdog = () => {
      for (const h of hosts) {
        if (h.host.crashed) continue;
        for (const ls of h.core.lockspaces) {
          const leases = (ls.managed as unknown as { leases?: { lastSuccess: number; state: string } | null }).leases;
          if (!leases || leases.state !== 'held' || ls.killVg) continue;
          if (h.host.clock.nowMs() >= (leases.lastSuccess + calcHostDeadSeconds(ioTimeout) - 1) * 1000) {
            sim.log(`h${h.id} watchdog fires (${ls.name} last renewal at local ${leases.lastSuccess}s)`);
            crashHost(h, rng.range(5000, 30_000));
            break;
          }
        }
      }
      if (!stopping) sim.after(250, watchdog);
    };
    if (!o.noWatchdog) sim.after(250, watchdog);
  }
  for (const ch of hosts) {
    if (sanlockMode && ch === hosts[0]) {
      const inc = ch.host.incarnation;
      for (let i = 0; i < rng.intIn(2, 3); i++) ch.host.at(sim.now + rng.range(0, 500), () => void clientLoop(ch, inc));
    } else startHost(ch);
  }

  // Faults: daemon pause, daemon crash + restart (sanlock mode: also storage path failures).
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
        crashHost(ch, dur);
      }
    });
  }

  await sim.run(durationMs, check, () => violation !== undefined);
  if (!violation) {
    stopping = true;
    for (const ch of hosts) ch.host.resume();
    await drain();
    await sim.run(durationMs + 300_000, check, () => violation !== undefined || (pendingAll.size === 0 && activeLoops === 0));
    if (!violation) {
      for (const p of pendingAll) {
        fail('wait-forever', `host ${p.client.host.id} client ${p.client.id} ${p.what} sent at ${(p.sent / 1000).toFixed(3)} s never answered (now ${(sim.now / 1000).toFixed(3)} s, ${sim.pending()} events queued, paused ${p.client.host.host.paused}, client gone ${p.client.gone})`);
      }
    }
  }
  stats.steps = sim.steps;
  stats.simMs = sim.now;
  storage?.dispose();
  return { seed, violation, trace: sim.trace.map((l) => `${fmtT(l.t)} ${l.text}`), stats };
}

/** Mutate a valid request frame: flip, drop, duplicate or insert bytes, or swap a value. */
export function mutate(rng: Rng, text: string): string {
  const k = rng.int(6);
  const i = rng.int(Math.max(1, text.length));
  switch (k) {
    case 0:
      return text.slice(0, i) + String.fromCharCode(rng.int(128)) + text.slice(i + 1);
    case 1:
      return text.slice(0, i) + text.slice(i + 1 + rng.int(8));
    case 2:
      return text.slice(0, i) + text.slice(i, i + rng.int(20)) + text.slice(i);
    case 3:
      return text.replace(/mode="[a-z]*"/, `mode="${rng.pick(['', 'xx', 'EX', 'un', 'sh '])}"`);
    case 4:
      return text.replace(/request="[a-z_]*"/, `request="${rng.pick(['lock_xx', '', 'quit', 'hello', 'lock_vg'])}"`);
    default:
      return text.replace(/vg_name="[^"]*"/, `vg_name="${rng.pick(['', 'a'.repeat(80), 'v g', 'vga\\"', '../x'])}"`);
  }
}
