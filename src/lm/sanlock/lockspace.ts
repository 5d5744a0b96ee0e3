// One sanlock VG's lockspace in the daemon: our delta lease (host_id) on the
// VG's lvmlock LV and the resource leases of its locks.

import { E, R_NAME_GL, type Mode } from '../../core/constants';
import type {
  JoinOptions, LockOwner, LockResult, LockSlots, LockspaceEvents, LockspaceGlobalLock, LockspaceStats, DiskLock,
  LockspaceView, ManagedLockspace, PrepareResult, ResourceView,
} from '../types';
import type { Disk } from '../../io/disk';
import { assert } from '../../util/assert';
import * as L from '../../leases';
import { DELTA_DISK_MAGIC } from '../../leases/ondisk';
import { lockLvName } from '../lvm-names';
import { readDiskHolders } from './holders';
import { leaseRv, mapAcquireError } from './errors';
import {
  GL_LOCK_BEGIN, LV_LOCK_BEGIN, LV_UNUSED, MAX_HOST_ID, R_NAME_GL_DISABLED, R_NAME_INVALID_REMOVED, VG_LOCK_BEGIN,
  argsMajor, lvOffsetFromArgs, readSlot, type SlotState,
} from './layout';
import { WatchdogBinding } from './watchdog-binding';
import type { SanlockGlobalLock, SanlockLmDeps, SanlockLockManager } from './sanlock-lm';

/**
 * sanlock's name for another host's state (SANLK_HOST_*), which lvmlockd sends
 * as owner_state and lvm prints; upper case on the wire. (The lease layer's
 * Lockspace.hostState is a coarser lower-case summary without FAIL.)
 */
type SanlockHostState = 'UNKNOWN' | 'FREE' | 'LIVE' | 'FAIL' | 'DEAD';

function sanlockHostState(ls: L.Lockspace, hostId: number): SanlockHostState {
  const hs = ls.hostStatus(hostId);
  if (!hs || !hs.lastCheck) return 'UNKNOWN';
  if (!hs.timestamp) return 'FREE';
  const now = ls.clock.monotonicSeconds();
  const since = now - (hs.lastLive || hs.firstCheck);
  const io = hs.ioTimeout || ls.timeouts.ioTimeout;
  if (since > L.calcHostDeadSeconds(io, ls.timeouts.watchdogFireTimeout)) return 'DEAD';
  if (since > L.calcIdRenewalFailSeconds(io)) return 'FAIL';
  return 'LIVE';
}

export class SanlockLockspace implements ManagedLockspace, LockspaceGlobalLock, LockSlots {
  glEnabled = false;
  hostId: number;
  diskPath = '';
  disk: Disk | null = null;
  sectorSize = 0;
  alignSize = 0;
  /** Where find_free_lock found the last free slot (lvmlockd's ls->free_lock_offset). */
  freeLockOffset = 0;
  private leases: L.Lockspace | null = null;
  /**
   * The device reopened after lvm extended the lvmlock LV (a Disk caches its
   * size): LV leases in the new space are reached through it. Older handles
   * stay open until leave, held leases may still use them.
   */
  private grown: Disk | null = null;
  private readonly extraDisks: Disk[] = [];
  private readonly held = new Map<string, L.ResourceLease>();
  private failed = false;
  /** Our registration with the host watchdog while the delta lease is held. */
  private readonly watchdog: WatchdogBinding;
  /**
   * The lockspace continues our previous instance's delta lease: leases it
   * held under this generation may still be on disk until adopted or purged.
   */
  private orphansPossible = false;

  constructor(
    private readonly m: SanlockLockManager,
    private readonly view: LockspaceView,
    private readonly events: LockspaceEvents,
  ) {
    this.hostId = view.hostId;
    this.watchdog = new WatchdogBinding(() => this.name, m.deps);
  }

  get generation(): number { return this.leases?.generation ?? 0; }

  stats(): LockspaceStats {
    const ls = this.leases;
    if (!ls) return { renewalAgeSeconds: null, renewalLastMs: null, renewals: 0, renewalFailures: 0, hostsLive: 0, hostsDead: 0 };
    let hostsLive = 0;
    let hostsDead = 0;
    for (let id = 1; id <= MAX_HOST_ID; id++) {
      if (id === this.hostId || !ls.hostStatus(id)) continue;
      const s = sanlockHostState(ls, id);
      if (s === 'LIVE' || s === 'FAIL') hostsLive++;
      else if (s === 'DEAD') hostsDead++;
    }
    const r = ls.renewals;
    return {
      renewalAgeSeconds: ls.lastSuccess ? ls.clock.monotonicSeconds() - ls.lastSuccess : null,
      renewalLastMs: r.ok ? r.lastMs : null,
      renewals: r.ok, renewalFailures: r.failed, hostsLive, hostsDead, generation: ls.generation,
    };
  }
  async holders(): Promise<DiskLock[]> {
    const ls = this.leases;
    if (!ls || !this.disk) return [];
    return readDiskHolders({
      disk: this.disk, sectorSize: this.sectorSize, alignSize: this.alignSize, ioTimeoutS: this.m.ioTimeout,
      hostState: (id) => (id === this.hostId ? 'LIVE' : sanlockHostState(ls, id)),
    });
  }

  private get d(): SanlockLmDeps { return this.m.deps; }
  private get name(): string { return this.view.name; }
  private get gl(): SanlockGlobalLock { return this.m.glInVg; }
  /** The GL lease at align*65 of every sanlock VG lockspace. */
  get glInVg(): LockspaceGlobalLock { return this; }
  /** LV leases live in slots from align*67 on. */
  get lockSlots(): LockSlots { return this; }

  async prepare(_opts: { repair: boolean }): Promise<PrepareResult> {
    const d = this.d;
    const major = argsMajor(this.view.vgArgs);
    if (major === null || major > 1) {
      d.error(`check_args_version ${this.view.vgArgs} error`);
      return { rv: -E.ARGS };
    }
    const lockLv = lockLvName(this.view.vgArgs);
    if (lockLv === null) {
      d.error(`S ${this.name} prepare_lockspace_san lock_lv_name_from_args error ${this.view.vgArgs}`);
      return { rv: -E.ARGS };
    }
    const path = this.m.devicePath(this.view.vgName, lockLv);
    await d.sleep(1000); // lvmlockd: "device is not always ready for us here"
    if (!d.deviceExists(path)) {
      d.error(`S ${this.name} prepare_lockspace_san stat error 2 disk_path ${path}`);
      return { rv: -E.ARGS };
    }
    if (!this.hostId) this.hostId = d.defaultHostId();
    if (!this.hostId || this.hostId > MAX_HOST_ID) {
      d.error(`S ${this.name} prepare_lockspace_san invalid host_id ${this.hostId}`);
      return { rv: -E.HOSTID };
    }
    this.diskPath = path;
    try {
      this.disk = await d.openDisk(path);
    } catch (e) {
      d.error(`S ${this.name} prepare_lockspace_san cannot open ${path}: ${(e as Error).message}`);
      return { rv: -E.MANAGER };
    }
    try {
      const g = await L.readLeaseSizes(this.disk, 0, this.m.ioTimeout);
      if (g.magic !== DELTA_DISK_MAGIC) throw new L.LeaseError(L.SANLK.LEADER_MAGIC, 'no lockspace at offset 0');
      this.sectorSize = g.sectorSize;
      this.alignSize = g.alignSize;
    } catch (e) {
      d.error(`S ${this.name} prepare_lockspace_san cannot get sector/align sizes ${(e as Error).message}`);
      await this.closeDisk();
      return { rv: -E.MANAGER };
    }
    if (this.hostId > L.maxHostsFor(this.sectorSize, this.alignSize)) {
      d.error(`S ${this.name} prepare_lockspace_san host_id ${this.hostId} above max_hosts`);
      await this.closeDisk();
      return { rv: -E.HOSTID };
    }
    d.debug(`S ${this.name} prepare_lockspace_san sizes ${this.sectorSize} ${this.alignSize}`);
    const found = await this.glIsEnabled();
    if (found < 0) {
      d.error(`S ${this.name} prepare_lockspace_san gl_enabled error ${found}`);
      await this.closeDisk();
      return { rv: -E.ARGS };
    }
    this.glEnabled = found === 1;
    if (this.glEnabled) {
      if (d.glChoice.manager === 'dlm') d.error(`S ${this.name} prepare_lockspace_san gl_use_dlm is set`);
      else if (this.gl.glLockspace && this.gl.glLockspace !== this.name) {
        d.error(`S ${this.name} prepare_lockspace_san multiple sanlock global locks current ${this.gl.glLockspace}`);
      } else {
        this.gl.glLockspace = this.name;
        d.debug(`S ${this.name} prepare_lockspace_san use global lock ${this.name}`);
      }
    }
    d.debug(`S ${this.name} prepare_lockspace_san done`);
    return { rv: 0 };
  }

  /** 1 when the GL lease at align*65 is named GLLK, 0 for _GLLK_disabled, < 0 on error. */
  private async glIsEnabled(): Promise<number> {
    if (!this.disk) return -E.INVAL;
    let slot: SlotState;
    try {
      slot = await readSlot(this.disk, this.alignSize * GL_LOCK_BEGIN, this.sectorSize, this.m.ioTimeout);
    } catch (e) {
      this.d.error(`gl_is_enabled read_resource align_size ${this.alignSize} error ${(e as Error).message}`);
      return leaseRv(e);
    }
    if (slot.kind === 'lease' && slot.name === R_NAME_GL_DISABLED) return 0;
    if (slot.kind === 'lease' && slot.name === R_NAME_GL) return 1;
    this.d.error(`gl_is_enabled invalid gl name ${slot.kind === 'lease' ? slot.name : '(none)'}`);
    return -1;
  }

  async join(opts: JoinOptions): Promise<number> {
    const d = this.d;
    if (!this.disk) return -E.MANAGER;
    if (opts.adoptOnly || opts.adoptOk) {
      const resumed = await this.resume();
      if (typeof resumed === 'number') {
        await this.closeDisk();
        return resumed;
      }
      if (resumed.ok) return 0;
      if (opts.adoptOnly) {
        d.error(`S ${this.name} add_lockspace_san adopt_only: no lockspace to adopt: ${resumed.reason}`);
        // As if never started (lvmlockd adopts only lockspaces it finds): no GL claim either.
        if (this.gl.glLockspace === this.name) this.gl.glLockspace = '';
        await this.closeDisk();
        return -E.ADOPT_NONE;
      }
      d.debug(`S ${this.name} add_lockspace_san adopt: nothing to adopt (${resumed.reason}), joining`);
    }
    const ls = this.newLeases(this.m.hostName);
    if (d.watchdog) {
      const wdRv = await this.watchdog.connect(ls, d.watchdog, this.hostId);
      if (wdRv < 0) {
        await this.closeDisk();
        return wdRv;
      }
    }
    d.debug(`S ${this.name} add_lockspace_san host_id ${this.hostId} io_timeout ${this.m.ioTimeout}${opts.nodelay ? ' nodelay' : ''}`);
    try {
      await ls.acquire({ nodelay: opts.nodelay });
    } catch (e) {
      d.error(`S ${this.name} add_lockspace_san add_lockspace error ${(e as Error).message}`);
      if (this.watchdog.connected) await this.watchdog.drop(false);
      await this.closeDisk();
      return leaseRv(e);
    }
    this.joined(ls);
    d.debug(`S ${this.name} add_lockspace_san done generation ${ls.generation}`);
    return 0;
  }

  private newLeases(hostName: string): L.Lockspace {
    const d = this.d;
    assert(this.disk, () => `S ${this.name} delta lease without an open lvmlock device`);
    const ls: L.Lockspace = new L.Lockspace({
      disk: this.disk, offset: 0, name: this.name, hostId: this.hostId,
      clock: d.clock, random: d.random, hostName, ioTimeout: this.m.ioTimeout,
      sectorSize: this.sectorSize, alignSize: this.alignSize,
      onFail: (err) => {
        this.failed = true;
        d.error(`S ${this.name} lockspace lease renewal failed: ${err.message}`);
        this.events.failed(`delta lease for host_id ${this.hostId} lost: ${err.message}`);
      },
      onRenewed: (lastSuccess) => this.watchdog.feed(ls, lastSuccess),
    });
    return ls;
  }

  private joined(ls: L.Lockspace): void {
    // Arm before any lease can be granted in this lockspace.
    const expire = this.watchdog.feed(ls, ls.lastSuccess);
    if (expire !== null) this.d.debug(`S ${this.name} watchdog armed: expire ${expire}`);
    this.leases = ls;
    ls.startRenewal();
    this.d.adoptNames?.set(this.name, { hostId: this.hostId, hostName: ls.hostName });
  }

  /**
   * Continue the delta lease of our previous daemon instance (adoption). Its
   * generation is kept, so the leases it held stay ours ("orphans" until
   * adopted) with no moment in which other hosts could take them. Allowed
   * only while no other host can have counted that instance dead: its last
   * renewal must be less than host_dead - 4 * io_timeout ago (a margin for the
   * other hosts' renewal period and i/o).
   */
  private async resume(): Promise<{ ok: true } | { ok: false; reason: string } | number> {
    const d = this.d;
    const prev = d.adoptNames?.get(this.name);
    if (!prev) return { ok: false, reason: 'no host name of a previous instance recorded' };
    if (prev.hostId !== this.hostId) return { ok: false, reason: `the previous instance used host_id ${prev.hostId}, not ${this.hostId}` };
    const ls = this.newLeases(prev.hostName);
    const io = this.m.ioTimeout;
    const maxAge = L.calcHostDeadSeconds(io, ls.timeouts.watchdogFireTimeout) - 4 * io;
    if (d.watchdog) {
      const wdRv = await this.watchdog.connect(ls, d.watchdog, this.hostId);
      if (wdRv < 0) return wdRv;
    }
    let out: L.ResumeOutcome;
    try {
      out = await ls.resume(maxAge);
    } catch (e) {
      d.error(`S ${this.name} add_lockspace_san adopt resume error ${(e as Error).message}`);
      if (this.watchdog.connected) await this.watchdog.drop(false);
      return leaseRv(e);
    }
    if (!out.resumed) {
      if (this.watchdog.connected) await this.watchdog.drop(false);
      return { ok: false, reason: out.reason };
    }
    this.orphansPossible = true;
    this.joined(ls);
    d.debug(`S ${this.name} add_lockspace_san adopt found ls host_id ${this.hostId} generation ${out.generation} (last renewal ${out.age} s ago)`);
    return { ok: true };
  }

  async leave(opts: { freeVg: boolean }): Promise<number> {
    const d = this.d;
    const ls = this.leases;
    if (ls) {
      // Leases the core did not release (it unlocks everything first): release them now.
      for (const [name, lease] of this.held) {
        await L.releaseResource(L.paxosHostFor(ls), lease).catch((e: Error) => d.error(`S ${this.name} R ${name} release at leave: ${e.message}`));
      }
      this.held.clear();
      await ls.stopRenewal();
      if (!this.failed) {
        try {
          await ls.release();
        } catch (e) {
          d.error(`S ${this.name} rem_lockspace_san error ${(e as Error).message}`);
        }
      }
      this.leases = null;
      this.orphansPossible = false;
      this.d.adoptNames?.delete(this.name);
      // Every lease is released (or, after a failure, the kill path has completed).
      if (this.watchdog.connected) await this.watchdog.drop(true);
    }
    if (opts.freeVg && this.disk) {
      // Destroy the delta leases: any host still using them fails at once.
      try {
        await L.initLockspace(this.disk, 0, LV_UNUSED, { sectorSize: this.sectorSize, alignSize: this.alignSize, ioTimeout: this.m.ioTimeout });
      } catch (e) {
        d.error(`S ${this.name} rem_lockspace free_vg write_lockspace error ${(e as Error).message}`);
      }
    }
    await this.closeDisk();
    if (this.gl.glLockspace === this.name) this.gl.glLockspace = '';
    return 0;
  }

  private async closeDisk(): Promise<void> {
    const disks = [this.disk, ...this.extraDisks.splice(0)];
    this.disk = null;
    this.grown = null;
    for (const disk of disks) if (disk) await disk.close().catch(() => undefined);
  }

  /** The newest handle on the lvmlock device (for resource leases). */
  private resDisk(): Disk {
    const disk = this.grown ?? this.disk;
    assert(disk, () => `S ${this.name} resource lease without an open lvmlock device`);
    return disk;
  }

  /** Reopen the device when it may have grown (lvextend of lvmlock); returns the newest handle. */
  async refreshDisk(): Promise<Disk> {
    const cur = this.resDisk();
    let nd: Disk;
    try {
      nd = await this.d.openDisk(this.diskPath);
    } catch {
      return cur;
    }
    if ((await nd.size()) > (await cur.size())) {
      this.d.debug(`S ${this.name} lvmlock device grew to ${await nd.size()} bytes`);
      this.extraDisks.push(nd);
      this.grown = nd;
      return nd;
    }
    await nd.close().catch(() => undefined);
    return cur;
  }

  private resourceOffset(res: ResourceView): number | { rv: number } {
    if (res.type === 'gl') return GL_LOCK_BEGIN * this.alignSize;
    if (res.type === 'vg') return VG_LOCK_BEGIN * this.alignSize;
    const major = argsMajor(res.lvArgs);
    if (major === null || major > 1) {
      this.d.error(`S ${this.name} R ${res.name} lock_san wrong lv_args version ${res.lvArgs}`);
      return { rv: -E.ARGS };
    }
    const off = lvOffsetFromArgs(res.lvArgs);
    if (off === null) {
      this.d.error(`S ${this.name} R ${res.name} lock_san lv_offset_from_args error ${res.lvArgs}`);
      return { rv: -E.ARGS };
    }
    return off;
  }

  private ref(res: ResourceView, offset: number): L.ResourceRef {
    return { disk: this.resDisk(), offset, lockspace: this.name, resource: res.name, sectorSize: this.sectorSize, alignSize: this.alignSize };
  }

  async lock(res: ResourceView, mode: 'sh' | 'ex', opts: { adoptOnly: boolean; adoptOk: boolean; repair: boolean }): Promise<LockResult> {
    const d = this.d;
    const ls = this.leases;
    if (!ls || !this.disk || this.failed) return { rv: -E.LOCKIO };
    const off = this.resourceOffset(res);
    if (typeof off !== 'number') return off;
    d.debug(`S ${this.name} R ${res.name} lock_san ${mode} at ${this.diskPath}:${off}`);
    if (res.type === 'lv' && off + this.alignSize > await this.resDisk().size() && off + this.alignSize > await (await this.refreshDisk()).size()) {
      // The lease lies in space the lvmlock LV gained by an extend we have not seen: the command refreshes and retries.
      d.debug(`S ${this.name} R ${res.name} lock_san acquire offset ${off} rv EMSGSIZE`);
      return { rv: -E.MSGSIZE };
    }
    const adopting = opts.adoptOnly || opts.adoptOk;
    const orphan = this.orphansPossible && !this.held.has(res.name) ? await this.orphanMode(res, off) : null;
    if (typeof orphan === 'number') return { rv: orphan };
    if (adopting) {
      if (orphan && orphan !== mode) {
        d.debug(`S ${this.name} R ${res.name} lock_san adopt mode ${mode} try other mode`);
        return { rv: -E.ADOPT_RETRY };
      }
      if (!orphan && opts.adoptOnly) {
        d.debug(`S ${this.name} R ${res.name} lock_san adopt_only mode ${mode} no orphan found`);
        return { rv: -E.ADOPT_NONE };
      }
      if (orphan) d.debug(`S ${this.name} R ${res.name} lock_san adopt orphan ${orphan}`);
    } else if (orphan) {
      // As newer lvmlockd: an orphan must be adopted (or purged) first.
      d.error(`S ${this.name} R ${res.name} lock_san orphan lock ${orphan} needs to be adopted`);
      return { rv: -E.ORPHAN };
    }
    // While another lockspace also claims the GL (duplicate GLs), re-check whether
    // ours was disabled meanwhile (lvmlockd does this while sanlock_gl_dup is set).
    if ((res.type === 'gl' || res.type === 'vg') && this.glEnabled && this.gl.glLockspace && this.gl.glLockspace !== this.name) {
      this.glEnabled = (await this.glIsEnabled()) === 1;
    }
    const prev = this.held.get(res.name);
    if (prev) {
      // Should not happen (the core locks only unlocked resources); drop the stale lease.
      this.held.delete(res.name);
      await L.releaseResource(L.paxosHostFor(ls), prev).catch(() => undefined);
    }
    try {
      const lease = await L.acquireResource(L.paxosHostFor(ls), this.ref(res, off), { mode, ownerNowait: true });
      this.held.set(res.name, lease);
    } catch (e) {
      const mapped = mapAcquireError(e, mode);
      if (e instanceof L.LeaseError && e.rv === L.SANLK.LEADER_RESOURCE && res.type === 'gl') {
        const en = await this.glIsEnabled();
        if (en === 0) {
          this.glEnabled = false;
          d.error(`S ${this.name} R ${res.name} lock_san gl has been disabled`);
          if (this.gl.glLockspace === this.name) this.gl.glLockspace = '';
          return { rv: -E.UNATCH };
        }
      }
      if (mapped.rv === -E.AGAIN) {
        const result: LockResult = { rv: -E.AGAIN, retry: mapped.retry };
        const owner = await this.ownerOf(e);
        if (owner) result.owner = owner;
        d.debug(`S ${this.name} R ${res.name} lock_san acquire mode ${mode} rv ${(e as L.LeaseError).rv}${owner ? ` owner ${owner.hostId} ${owner.generation} ${owner.timestamp} ${owner.state} ${owner.name}` : ''}`);
        return result;
      }
      d.error(`S ${this.name} R ${res.name} lock_san acquire error ${(e as Error).message}`);
      return { rv: mapped.rv };
    }
    const result: LockResult = { rv: 0 };
    // lvmlockd does not use sanlock LVBs (LVMLOCKD_USE_SANLOCK_LVB 0): versions read as zero.
    if (res.useValueBlock) result.vb = { version: 0, flags: 0, rVersion: 0 };
    return result;
  }

  /** The mode in which our previous instance still holds this lease on disk, null if none; < 0 on error. */
  private async orphanMode(res: ResourceView, off: number): Promise<'sh' | 'ex' | null | number> {
    try {
      return (await L.readOwnHold(L.paxosHostFor(this.leases!), this.ref(res, off))).hold;
    } catch (e) {
      this.d.error(`S ${this.name} R ${res.name} lock_san orphan check error ${(e as Error).message}`);
      return mapAcquireError(e, 'ex').rv;
    }
  }

  async purgeOrphans(): Promise<number> {
    const d = this.d;
    const ls = this.leases;
    if (!ls || !this.disk || !this.orphansPossible) return 0;
    const host = L.paxosHostFor(ls);
    const disk = await this.refreshDisk();
    const size = await disk.size();
    let count = 0;
    let rv = 0;
    for (let off = this.alignSize * GL_LOCK_BEGIN; off + this.alignSize <= size; off += this.alignSize) {
      let slot: SlotState;
      try {
        slot = await readSlot(disk, off, this.sectorSize, this.m.ioTimeout);
      } catch (e) {
        d.error(`S ${this.name} purge_orphans read error ${(e as Error).message} offset ${off}`);
        rv = leaseRv(e);
        continue;
      }
      if (slot.kind !== 'lease' || slot.lockspace !== this.name || this.held.has(slot.name)) continue;
      const ref: L.ResourceRef = { disk, offset: off, lockspace: this.name, resource: slot.name, sectorSize: this.sectorSize, alignSize: this.alignSize };
      try {
        const { hold } = await L.readOwnHold(host, ref);
        if (!hold) continue;
        // Take it over in the mode held, then release it like any lease of ours.
        const lease = await L.acquireResource(host, ref, { mode: hold, ownerNowait: true });
        await L.releaseResource(host, lease);
        d.debug(`S ${this.name} R ${slot.name} purge_orphans released orphan ${hold} at ${off}`);
        count++;
      } catch (e) {
        d.error(`S ${this.name} R ${slot.name} purge_orphans error ${(e as Error).message} offset ${off}`);
        rv = leaseRv(e);
      }
    }
    this.orphansPossible = false;
    return rv < 0 ? rv : count;
  }

  private async ownerOf(e: unknown): Promise<LockOwner | null> {
    const ls = this.leases;
    if (!(e instanceof L.LeaseError) || !e.holder || !e.holder.hostId || !ls) return null;
    const h = e.holder;
    let name = '';
    let timestamp = h.timestamp;
    try {
      const l = await ls.readHostLeader(h.hostId);
      name = L.nameString(l.resourceName);
      if (l.ownerGeneration === h.generation) timestamp = l.timestamp;
    } catch { /* name unknown */ }
    return { hostId: h.hostId, generation: h.generation, timestamp, state: sanlockHostState(ls, h.hostId), name };
  }

  async convert(res: ResourceView, mode: 'sh' | 'ex', _rVersion: number): Promise<number> {
    const ls = this.leases;
    const lease = this.held.get(res.name);
    this.d.debug(`S ${this.name} R ${res.name} convert_san ${res.mode} to ${mode}`);
    if (!ls || !lease || this.failed) return -E.LMERR;
    try {
      await L.convertResource(L.paxosHostFor(ls), lease, mode, { ownerNowait: true });
      return 0;
    } catch (e) {
      if (mode === 'sh' && lease.mode === 'sh') {
        // ex -> sh failed part way: whatever landed, we hold at least sh (our
        // SHARED mode block, or the ex leader that covers it) and no longer
        // claim ex. Reporting failure here would leave lvm using the LV as
        // ex while other hosts may already take sh.
        this.d.error(`S ${this.name} R ${res.name} convert_san ex to sh incomplete, holding sh: ${(e as Error).message}`);
        return 0;
      }
      const mapped = mapAcquireError(e, mode);
      if (mapped.rv === -E.AGAIN) {
        this.d.debug(`S ${this.name} R ${res.name} convert_san error ${(e as Error).message}`);
        return -E.AGAIN;
      }
      this.d.error(`S ${this.name} R ${res.name} convert_san convert error ${(e as Error).message}`);
      return -E.LMERR;
    }
  }

  async unlock(res: ResourceView, rVersion: number, opts: { freeVg: boolean }): Promise<number> {
    const ls = this.leases;
    const lease = this.held.get(res.name);
    this.d.debug(`S ${this.name} R ${res.name} unlock_san ${res.mode as Mode} r_version ${rVersion} flags ${opts.freeVg ? 1 : 0}`);
    this.held.delete(res.name);
    if (!ls || !lease) return 0;
    if (opts.freeVg && (res.type === 'gl' || res.type === 'vg')) {
      // vgremove: release-rename GL and VG leases so nobody can take them again.
      this.d.debug(`S ${this.name} R ${res.name} release rename`);
      try {
        await L.releaseResource(L.paxosHostFor(ls), lease, { rename: R_NAME_INVALID_REMOVED });
        return 0;
      } catch (e) {
        this.d.error(`S ${this.name} R ${res.name} unlock_san release rename error ${(e as Error).message}`);
        return -E.LMERR;
      }
    }
    try {
      await L.releaseResource(L.paxosHostFor(ls), lease);
    } catch (e) {
      // As lvmlockd: never keep the lock in the core because the release i/o failed.
      this.d.error(`S ${this.name} R ${res.name} unlock_san release error ${(e as Error).message}`);
    }
    return 0;
  }

  forget(_resName: string): void { /* leases are dropped at unlock */ }

  async otherHosts(_notify: boolean): Promise<{ rv: number; hostsUnknown: boolean }> {
    const ls = this.leases;
    if (!ls || !this.disk) return { rv: 0, hostsUnknown: false };
    try {
      // A fresh look at every delta lease, as a renewal would take.
      const g = ls.geometry;
      assert(g, () => `S ${this.name} joined lockspace without lease geometry`);
      const area = await this.disk.read(0, this.alignSize, { timeoutMs: this.m.ioTimeout * 1000, label: 'get_hosts' });
      ls.observeArea(area, g);
      let others = 0;
      for (let id = 1; id <= g.maxHosts; id++) {
        if (id === this.hostId) continue;
        const st = sanlockHostState(ls, id);
        if (st === 'LIVE') {
          this.d.debug(`S ${this.name} hosts_san host_id ${id} gen ${ls.hostStatus(id)!.ownerGeneration} LIVE`);
          others++;
        }
      }
      return { rv: others, hostsUnknown: false };
    } catch (e) {
      this.d.error(`S ${this.name} hosts_san get_hosts error ${(e as Error).message}`);
      return { rv: 0, hostsUnknown: false };
    }
  }

  async freeLv(res: ResourceView): Promise<number> {
    this.d.debug(`S ${this.name} R ${res.name} free_lv_san`);
    if (!this.disk) return -E.LMERR;
    const off = lvOffsetFromArgs(res.lvArgs);
    if (off === null) return -E.ARGS;
    for (const [name, lease] of this.held) {
      // lvremove frees an unlocked LV's lease; overwriting one this host holds would let another host take it.
      if (lease.ref.offset !== off) continue;
      this.d.error(`S ${this.name} R ${res.name} free_lv_san refused: offset ${off} is the lease of ${name}, held here`);
      return -E.BUSY;
    }
    try {
      await L.initResource(this.resDisk(), off, this.name, LV_UNUSED, { sectorSize: this.sectorSize, alignSize: this.alignSize });
      return 0;
    } catch (e) {
      this.d.error(`S ${this.name} R ${res.name} free_lv_san write error ${(e as Error).message}`);
      return leaseRv(e);
    }
  }

  async findFreeLock(_lvSizeBytes: bigint): Promise<number> {
    if (!this.disk) return -E.LMERR;
    const disk = await this.refreshDisk();
    const align = this.alignSize;
    const size = await disk.size();
    const first = align * LV_LOCK_BEGIN;
    let off = this.freeLockOffset || first;
    const start = off;
    let round = false;
    for (;;) {
      if (round && off >= start) {
        this.d.debug(`S ${this.name} find_free_lock_san read back to start offset ${off}`);
        return -E.MSGSIZE;
      }
      if (off + align > size) {
        this.d.debug(`S ${this.name} find_free_lock_san read limit offset ${off}`);
        // The next search (after lvmlock is extended) starts where the space ended.
        this.freeLockOffset = off;
        if (round) return -E.MSGSIZE;
        off = first;
        round = true;
        continue;
      }
      let slot: SlotState;
      try {
        slot = await readSlot(disk, off, this.sectorSize, this.m.ioTimeout);
      } catch (e) {
        this.d.error(`S ${this.name} find_free_lock_san read error ${(e as Error).message} offset ${off}`);
        return leaseRv(e);
      }
      if (slot.kind === 'empty' || (slot.kind === 'lease' && slot.name === LV_UNUSED)) {
        this.d.debug(`S ${this.name} find_free_lock_san found ${slot.kind === 'empty' ? 'empty' : 'unused'} area at ${off}`);
        this.freeLockOffset = off;
        return 0;
      }
      off += align;
    }
  }

  async refreshGlEnabled(): Promise<boolean> {
    const rv = await this.glIsEnabled();
    this.glEnabled = rv === 1;
    return this.glEnabled;
  }

  async setGlEnabled(enable: boolean): Promise<number> {
    if (!this.disk) return -E.LMERR;
    const name = enable ? R_NAME_GL : R_NAME_GL_DISABLED;
    try {
      await L.initResource(this.disk, this.alignSize * GL_LOCK_BEGIN, this.name, name, { sectorSize: this.sectorSize, alignSize: this.alignSize });
    } catch (e) {
      this.d.error(`S ${this.name} able_gl ${enable ? 1 : 0} write_resource gl error ${(e as Error).message}`);
      return leaseRv(e);
    }
    this.d.debug(`S ${this.name} able_gl ${name}`);
    this.glEnabled = enable;
    if (enable) this.gl.glLockspace = this.name;
    else if (this.gl.glLockspace === this.name) this.gl.glLockspace = '';
    return 0;
  }

  async exDisableGl(): Promise<number> {
    const ls = this.leases;
    if (!ls || !this.disk) return -E.LMERR;
    const ref: L.ResourceRef = {
      disk: this.disk, offset: this.alignSize * GL_LOCK_BEGIN, lockspace: this.name, resource: R_NAME_GL,
      sectorSize: this.sectorSize, alignSize: this.alignSize,
    };
    try {
      const lease = await L.acquireResource(L.paxosHostFor(ls), ref, { mode: 'ex', ownerNowait: true });
      await L.releaseResource(L.paxosHostFor(ls), lease, { rename: R_NAME_GL_DISABLED });
    } catch (e) {
      this.d.error(`S ${this.name} ex_disable_gl_san error ${(e as Error).message}`);
      return leaseRv(e);
    }
    this.glEnabled = false;
    if (this.gl.glLockspace === this.name) this.gl.glLockspace = '';
    return 0;
  }
}
