/**
 * The workload of the core-level cluster: two to four clients per host run
 * lvm-like commands against their host's daemon (lock-start/stop,
 * activation, lvcreate, lvremove, vgremove, global lock, vg_update, info,
 * mutated frames), and vanish mid-command now and then. With the sanlock
 * manager, host 1 first creates the shared VG and its LV leases (vgcreate,
 * lvcreate). With the IDM manager, start_vg names the VG's PVs and lock_lv the
 * LV's (`path[N]`): the drives of each lock. What clients are told is handed
 * to the checker as it arrives.
 */
import { formatRequest, type ConfigMap } from '../src/protocol/config-tree';
import type { Client, CoreCluster, CoreHost, Fields, VgDef } from './core-cluster';
import type { Rng } from './kernel/rng';

/** The result of a reply (op_result, or result), NaN when there is none. */
export const result = (r: ConfigMap | null): number => (r ? Number(r.int('op_result') ?? r.int('result') ?? NaN) : NaN);

export class CoreWorkload {
  /** sanlock mode: lv_lock_args of each LV from init_lv. */
  private readonly lvArgs = new Map<string, string>();
  /** host/vg/lv of activations in progress (see command()). */
  private readonly activating = new Set<string>();
  /** sanlock mode: the shared VG and its LV leases exist. */
  setupDone = false;

  constructor(private readonly cl: CoreCluster) {}

  private log(c: Client, msg: string): void {
    this.cl.sim.log(`h${c.host.id} c${c.id} ${msg}`);
  }

  // ---- requests

  private base(req: string, vg: VgDef | null, extra: Fields = []): Fields {
    return [['request', req], ['cmd', 'lvm'], ['pid', 1], ...(vg ? ([['vg_name', vg.name]] as Fields) : []), ['opts', 'none'], ...extra];
  }
  private startVg(vg: VgDef, hostId: number): Fields {
    if (vg.lockType === 'idm') {
      return [
        ['request', 'start_vg'], ['pid', 1], ['vg_name', vg.name], ['vg_lock_type', 'idm'], ['vg_lock_args', '1.0.0'],
        ['vg_uuid', vg.uuid!], ['version', 1], ['host_id', 0], ['opts', 'none'], ...pathFields(vg.pvs!),
      ];
    }
    return [
      ['request', 'start_vg'], ['pid', 1], ['vg_name', vg.name], ['vg_lock_type', vg.lockType],
      ['vg_lock_args', vg.lockType === 'sanlock' ? '1.0.0:lvmlock' : '1.0.0:test'], ['vg_uuid', `uuid-${vg.name}`],
      ['version', 1], ['host_id', vg.lockType === 'sanlock' ? hostId : 0], ['opts', 'none'],
    ];
  }
  private lockLv(vg: VgDef, lv: string, mode: string, opts = 'none'): Fields {
    if (vg.lockType === 'idm') {
      return [
        ['request', 'lock_lv'], ['cmd', 'lvm'], ['pid', 1], ['vg_name', vg.name], ['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv],
        ['mode', mode], ['opts', opts], ['lv_lock_args', 'none'], ...pathFields(vg.lvPvs!.get(lv)!),
      ];
    }
    return [
      ['request', 'lock_lv'], ['cmd', 'lvm'], ['pid', 1], ['vg_name', vg.name], ['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv],
      ['mode', mode], ['opts', opts], ['lv_lock_args', vg.lockType === 'sanlock' ? this.lvArgs.get(lv) ?? '1.0.0:70254592' : 'none'],
    ];
  }

  /** lock_vg; in dlm mode a grant is checked for stale VG metadata (CoreChecker.vgLockGranted). */
  private lockVg(c: Client, vg: VgDef, mode: 'sh' | 'ex' | 'un'): Promise<ConfigMap | null> {
    const ch = c.host;
    const p = this.cl.rpc(c, this.base('lock_vg', vg, [['mode', mode]]), `lock_vg ${mode}`);
    // Other modes get the bare promise: no extra tick, so their schedules replay as before.
    if (!(this.cl.dlmMode || this.cl.idmMode) || mode === 'un') return p;
    return p.then((r) => {
      if (result(r) !== 0 || ch.host.crashed) return r;
      this.cl.checker.vgLockGranted(ch, vg, mode);
      return r;
    });
  }

  private expectOne(c: Client, r: ConfigMap | null, what: string, ok: number[]): number {
    const rv = result(r);
    if (r && !ok.includes(rv)) {
      this.cl.stats.errors++;
    }
    this.log(c, `${what} -> ${r ? rv : 'no reply'}`);
    return rv;
  }

  // ---- commands

  /** One lvm-like command on a client. */
  async command(c: Client): Promise<void> {
    const cl = this.cl;
    const rng = cl.rng;
    const checker = cl.checker;
    const ch = c.host;
    const vg = rng.pick(cl.vgs);
    const x = rng.next();
    if (x < 0.12) {
      const r = await cl.rpc(c, this.startVg(vg, ch.id), `start_vg ${vg.name}`);
      this.expectOne(c, r, `vgchange --lock-start ${vg.name}`, [0]);
      const w = await cl.rpc(c, [['request', 'start_wait'], ['pid', 1]], 'start_wait');
      this.expectOne(c, w, 'start_wait', [0]);
    } else if (x < 0.42) {
      // lvchange -a{e,s}y: GL sh, VG sh, LV lock (persistent), VG un, GL un
      const lv = rng.pick(vg.lvs);
      // Activation state is host-wide: lvm does not serialize two lvchange of one LV on one
      // host, and racing -an with -ay leaves an active LV unlocked whatever the daemon does.
      // The workload, like an admin, does not race them.
      const busyKey = `${ch.id}/${vg.name}/${lv}`;
      if (this.activating.has(busyKey)) return;
      this.activating.add(busyKey);
      try {
        const mode = rng.chance(0.6) ? 'ex' : 'sh';
        await cl.rpc(c, this.base('lock_gl', null, [['mode', 'sh'], ['vg_lock_type', 'none']]), 'lock_gl sh');
        await this.lockVg(c, vg, 'sh');
        // -asy on an LV this host has active ex asks to share it: from the moment the
        // request is sent other hosts may activate it shared (the convert's SH mode block
        // can land before the reply), as the lease level counts an ex->sh convert.
        const key = `${vg.name}/${lv}`;
        if (mode === 'sh' && checker.usedMode(ch.id, key) === 'ex') checker.use(c, key, 'sh');
        const r = await cl.rpc(c, this.lockLv(vg, lv, mode, 'persistent'), `lock_lv ${mode}`);
        const arv = this.expectOne(c, r, `lvchange -a${mode[0]}y ${vg.name}/${lv}`, [0]);
        if (arv === 0 && cl.crossVg(vg)) checker.use(c, key, mode as 'sh' | 'ex');
        await cl.rpc(c, this.base('lock_vg', vg, [['mode', 'un']]), 'lock_vg un');
        await cl.rpc(c, this.base('lock_gl', null, [['mode', 'un'], ['vg_lock_type', 'none']]), 'lock_gl un');
      } finally {
        this.activating.delete(busyKey);
      }
    } else if (x < 0.55) {
      const lv = rng.pick(vg.lvs);
      const busyKey = `${ch.id}/${vg.name}/${lv}`;
      if (this.activating.has(busyKey)) return;
      this.activating.add(busyKey);
      try {
        if (cl.crossVg(vg)) checker.use(c, `${vg.name}/${lv}`, 'un'); // deactivated before the unlock is sent
        const r = await cl.rpc(c, this.lockLv(vg, lv, 'un', 'persistent'), 'lock_lv un');
        this.expectOne(c, r, `lvchange -an ${vg.name}/${lv}`, [0]);
      } finally {
        this.activating.delete(busyKey);
      }
    } else if (x < 0.7) {
      // a transient LV lock held for a while by a running command (told state is checked)
      const lv = rng.pick(vg.tlvs);
      const mode = rng.chance(0.5) ? 'ex' : 'sh';
      const r = await cl.rpc(c, this.lockLv(vg, lv, mode), `lock_lv ${mode} transient`);
      const rv = this.expectOne(c, r, `transient lock_lv ${mode} ${vg.name}/${lv}`, [0]);
      if (rv === 0 && !c.gone) {
        c.told.set(lv, mode);
        if (cl.crossVg(vg)) checker.use(c, `${vg.name}/${lv}|c${c.id}`, mode);
      }
      checker.checkTold(ch);
      await ch.host.clock.sleep(rng.range(0, 5000));
      if (c.gone) return;
      if (cl.crossVg(vg)) checker.use(c, `${vg.name}/${lv}|c${c.id}`, 'un');
      const u = await cl.rpc(c, this.lockLv(vg, lv, 'un'), 'lock_lv un transient');
      // -ESTALE (-116: the lockspace is being stopped, its locks cleared) and -ENOLS (-210:
      // it is gone) also mean the lock is no longer held (finding 28, a checker artefact).
      if ([0, -2, -116, -210].includes(result(u))) c.told.delete(lv);
    } else if (x < 0.8) {
      // lvcreate / lvremove / vgremove-like VG ex sequence with a metadata update
      await cl.rpc(c, this.base('lock_gl', null, [['mode', 'sh'], ['vg_lock_type', 'none']]), 'lock_gl sh');
      const r = await this.lockVg(c, vg, 'ex');
      const rv = this.expectOne(c, r, `lock_vg ex ${vg.name}`, [0]);
      if (rv === 0) {
        const kind = cl.sanlockMode ? 'vgremove-probe' : rng.pick(['lvcreate', 'lvremove', 'vgremove-probe']);
        const lv = rng.pick(vg.lvs);
        if (kind === 'lvcreate') {
          await cl.rpc(c, this.base('init_lv', vg, [['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv], ['vg_lock_type', vg.lockType], ['vg_lock_args', '1.0.0:lvmlock']]), 'init_lv');
        } else if (kind === 'lvremove') {
          const l = await cl.rpc(c, this.lockLv(vg, lv, 'ex'), 'lock_lv ex (lvremove)');
          if (result(l) === 0) {
            await cl.rpc(c, this.base('free_lv', vg, [['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv], ['lv_lock_args', '1.0.0:70254592']]), 'free_lv');
            await cl.rpc(c, this.lockLv(vg, lv, 'un'), 'lock_lv un (lvremove)');
          }
        } else {
          await cl.rpc(c, this.base('busy_vg', vg), 'busy_vg');
        }
        // VG metadata seqno: on disk, so shared by every host.
        const v = (cl.vgVersion.get(vg.name) ?? 1) + 1;
        cl.vgVersion.set(vg.name, v);
        ch.vgCache.set(vg.name, v);
        if ((cl.dlmMode || cl.idmDeadWriter) && !cl.stopping && rng.chance(0.08)) {
          // The node dies after writing the metadata, holding the VG lock ex: the new
          // version never reaches the LVB, and the others must not trust the old one.
          cl.sim.log(`h${ch.id} CRASH node after writing VG metadata ${v}, holding the VG lock ex`);
          checker.announce(vg.name, v);
          cl.stats.faults++;
          cl.crashHost(ch, rng.range(5000, 30_000));
          return;
        }
        const upd = await cl.rpc(c, [['request', 'vg_update'], ['pid', 1], ['vg_name', vg.name], ['version', v]], `vg_update ${v}`);
        if ((cl.dlmMode || cl.idmMode) && result(upd) === 0) checker.updateAccepted(vg.name, v);
        await cl.rpc(c, this.base('lock_vg', vg, [['mode', 'un']]), 'lock_vg un');
      }
      await cl.rpc(c, this.base('lock_gl', null, [['mode', 'un'], ['vg_lock_type', 'none']]), 'lock_gl un');
    } else if (x < 0.86) {
      const r = await cl.rpc(c, this.base('lock_gl', null, [['mode', 'ex'], ['vg_lock_type', 'none']]), 'lock_gl ex');
      this.expectOne(c, r, 'lock_gl ex', [0]);
      await ch.host.clock.sleep(rng.range(0, 1000));
      await cl.rpc(c, this.base('lock_gl', null, [['mode', 'un'], ['vg_lock_type', 'none']]), 'lock_gl un');
    } else if (x < 0.9) {
      // The race of docs/simulator.md finding 5: a lock request retrying in the lockspace when
      // stop_vg is accepted was granted, answered 0, then cleared by the stop (fixed in the core).
      // allowStopRace: false keeps stop_vg away from in-flight commands.
      if (cl.sanlockMode && !cl.allowStopRace && [...ch.clients.values()].some((x) => x !== c && x.pending)) return;
      const r = await cl.rpc(c, this.base('stop_vg', vg), `stop_vg ${vg.name}`);
      this.expectOne(c, r, `vgchange --lock-stop ${vg.name}`, [0]);
    } else if (x < 0.95) {
      // A mutated or garbage frame: answered with an error (op_result, or response "failed").
      const good = formatRequest(this.lockLv(vg, rng.pick(vg.lvs), 'ex'));
      const bad = mutate(rng, good);
      const r = await cl.rpc(c, bad, 'mutated frame');
      this.log(c, `mutated frame ${JSON.stringify(bad.slice(0, 60))} -> ${r ? (r.str('response') === 'failed' ? 'failed' : result(r)) : 'no reply'}`);
      const rv = result(r);
      if (rv === 0) {
        // A mutation can still be a valid request (it may hold a lock now): the client exits,
        // and the daemon must release whatever it holds.
        this.log(c, 'client with a mutated request exits');
        cl.disconnect(c);
      }
    } else {
      const r = await cl.rpc(c, [['request', 'info'], ['pid', 1]], 'info');
      if (r && r.int('dump_len') === undefined) checker.fail('bad-reply', `host ${ch.id} info reply without dump_len`);
    }
  }

  /** A client of one daemon incarnation: commands until the run stops or the daemon goes. */
  async clientLoop(ch: CoreHost, inc: number): Promise<void> {
    this.cl.activeLoops++;
    try {
      await this.clientLoopBody(ch, inc);
    } finally {
      this.cl.activeLoops--;
    }
  }
  private async clientLoopBody(ch: CoreHost, inc: number): Promise<void> {
    const cl = this.cl;
    let c = cl.connect(ch);
    while (!cl.stopping && ch.host.incarnation === inc && !ch.host.crashed) {
      await this.command(c);
      if (ch.host.incarnation !== inc || ch.host.crashed) return;
      if (c.gone || cl.rng.chance(0.05)) {
        // the command was killed / the client vanished mid-way
        if (!c.gone) this.log(c, 'client disconnects');
        cl.disconnect(c);
        c = cl.connect(ch);
      }
      await ch.host.clock.sleep(cl.rng.range(0, cl.sanlockMode ? 6000 : 2000));
    }
    cl.disconnect(c);
  }

  /**
   * idm: what "lvmlockctl --kill VG" does after the ILM's failure action, then
   * the admin's "lvmlockctl --drop VG" once the LVs are deactivated.
   */
  async lvmlockctlKill(ch: CoreHost, vg: string): Promise<void> {
    const cl = this.cl;
    if (ch.host.crashed) return;
    const c = cl.connect(ch);
    const k = await cl.rpc(c, [['request', 'kill_vg'], ['cmd', 'lvmlockctl'], ['pid', 1], ['vg_name', vg]], 'kill_vg');
    this.log(c, `lvmlockctl --kill ${vg} -> ${k ? result(k) : 'no reply'}`);
    if (k && !c.gone) {
      const d = await cl.rpc(c, [['request', 'drop_vg'], ['cmd', 'lvmlockctl'], ['pid', 1], ['vg_name', vg]], 'drop_vg');
      this.log(c, `lvmlockctl --drop ${vg} -> ${d ? result(d) : 'no reply'}`);
      if (result(d) === 0) cl.checker.vgDropped(ch.id, vg);
    }
    cl.disconnect(c);
  }

  /** sanlock mode: vgcreate --shared on host 1: init_vg, then start it there and create the LV leases (init_lv). */
  async createSharedVg(ch: CoreHost): Promise<void> {
    const cl = this.cl;
    const c = cl.connect(ch);
    const vg = cl.vgs[0]!;
    const r = await cl.rpc(c, [['request', 'init_vg'], ['pid', 1], ['vg_name', vg.name], ['vg_lock_type', 'sanlock'], ['vg_lock_args', 'lvmlock'], ['opts', 'none']], 'init_vg');
    if (result(r) !== 0) cl.checker.fail('setup', `init_vg failed: ${result(r)}`);
    await cl.rpc(c, this.startVg(vg, ch.id), 'start_vg');
    await cl.rpc(c, [['request', 'start_wait'], ['pid', 1]], 'start_wait');
    for (const lv of [...vg.lvs, ...vg.tlvs]) {
      const l = await cl.rpc(c, this.base('init_lv', vg, [['lv_name', `lv${lv.slice(-2)}`], ['lv_uuid', lv], ['vg_lock_type', 'sanlock'], ['vg_lock_args', '1.0.0:lvmlock']]), 'init_lv');
      const args = l?.str('lv_lock_args');
      if (result(l) !== 0 || !args) cl.checker.fail('setup', `init_lv ${lv} failed: ${result(l)}`);
      else this.lvArgs.set(lv, args);
    }
    cl.disconnect(c);
    this.setupDone = true;
  }
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

/** lvm's PV list of a lock request: path_num and path[N]. */
function pathFields(paths: readonly string[]): Fields {
  return [['path_num', paths.length], ...paths.map((p, i) => [`path[${i}]`, p] as const)];
}
