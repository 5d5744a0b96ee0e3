// What lvmlockd does for one IDM lockspace (lvm2: lvmlockd-idm.c, lm_*_idm,
// with the 2026 convert fix): one ILM connection, the kill path handed to the
// ILM at start, lock/convert/unlock with 60 s drive timeouts, and the value
// block kept as a microsecond timestamp in the lock's LVB (lvb-timestamp.ts).
// Independent of the core's lock-manager interface; the manager adapts it.

import { E, VAL_BLK_VERSION, type ResourceType } from '../../core/constants';
import { IdmMode, DRIVE_MAX } from '../../ilm/protocol';
import type { ValueBlock } from '../types';
import { idmLockId } from './lock-id';
import { decodeTimestamp, encodeTimestamp, nextTimestamp } from './lvb-timestamp';

/** IDM_TIMEOUT: the membership countdown every lock asks the drives for. */
export const IDM_TIMEOUT_MS = 60_000;
export const GL_LOCKSPACE_IDM = 'lvm_global';

/** The ILM calls lvmlockd makes (IlmClient implements them). */
export interface IlmConnection {
  readonly alive: boolean;
  disconnect(): Promise<number>;
  close(): void;
  setKillPath(path: string, args: string): Promise<number>;
  lock(lockId: Buffer, mode: typeof IdmMode.EXCLUSIVE | typeof IdmMode.SHAREABLE, drives: string[], timeoutMs: number): Promise<number>;
  unlock(lockId: Buffer): Promise<number>;
  convert(lockId: Buffer, mode: number): Promise<number>;
  writeLvb(lockId: Buffer, lvb: Buffer): Promise<number>;
  readLvb(lockId: Buffer): Promise<{ rv: number; lvb: Buffer }>;
  hostCount(lockId: Buffer, drives: string[]): Promise<{ rv: number; count: number; self: number }>;
}

export interface IdmSessionDeps {
  lsName: string;
  vgName: string;
  vgUuid: string;
  connect(): Promise<{ rv: number; client?: IlmConnection }>;
  /** lvmlockctl path handed to the ILM as the kill path (C: LVM_PATH + "lockctl"). */
  killPath: string;
  /** CLOCK_REALTIME in microseconds. */
  utcUs(): bigint;
  /** The drive countdown of every lock; IDM_TIMEOUT_MS unless a test shortens it. */
  lockTimeoutMs?: number;
  /** The drives of the global lock; null when none can be found (start fails -EIO). */
  glDrives(): string[] | null;
  debug(line: string): void;
  error(line: string): void;
  /** Deliberate bugs for the simulator (sim/bugs.ts); production passes none. */
  hooks?: IdmBugHooks;
}

/** What the simulator's --inject-bug may break here. Absent: the code as it is. */
export interface IdmBugHooks {
  /** Write the wall clock as the LVB timestamp even when it is not past the last one (no "+1"). */
  noTimestampPlusOne?: boolean;
}

export interface IdmResource {
  name: string;
  type: ResourceType;
  /** Mode held on this host before the call. */
  mode: 'un' | 'sh' | 'ex';
}

interface ResourceData {
  lockId: Buffer;
  drives: string[];
  /** The timestamp last read from or written to the LVB. */
  vbTimestamp: bigint;
  /** GL and VG resources only: this host's val_blk, trusted while the timestamp is ours. */
  vb: ValueBlock | null;
}

function idmMode(mode: 'sh' | 'ex'): typeof IdmMode.EXCLUSIVE | typeof IdmMode.SHAREABLE {
  return mode === 'ex' ? IdmMode.EXCLUSIVE : IdmMode.SHAREABLE;
}

const zeroVb = (): ValueBlock => ({ version: 0, flags: 0, rVersion: 0 });

export class IdmSession {
  private conn: IlmConnection | null = null;
  private readonly resources = new Map<string, ResourceData>();
  /** The VG's PVs as the last start_vg named them. */
  vgDrives: string[] = [];
  private glDriveList: string[] = [];

  constructor(private readonly d: IdmSessionDeps) {}

  get isGlobal(): boolean { return this.d.lsName === GL_LOCKSPACE_IDM; }
  get connected(): boolean { return this.conn !== null && this.conn.alive; }

  /** lm_add_lockspace_idm. */
  async start(): Promise<number> {
    if (this.isGlobal) {
      const drives = this.d.glDrives();
      if (!drives) {
        this.d.error(`S ${this.d.lsName} add_lockspace_idm fail to get pv list for glb lock`);
        return -E.IO;
      }
      this.glDriveList = drives;
      this.d.debug(`S ${this.d.lsName} add_lockspace_idm get pv list for glb lock: ${drives.join(' ') || 'none'}`);
    }
    const killArgs = `--kill ${this.isGlobal ? '' : this.d.vgName}`;
    const c = await this.d.connect();
    if (c.rv < 0 || !c.client) {
      this.d.error(`S ${this.d.lsName} add_lockspace_idm fail to connect the lock manager ${c.rv}`);
      return -E.MANAGER;
    }
    const rv = await c.client.setKillPath(this.d.killPath, killArgs);
    if (rv < 0) {
      this.d.error(`S ${this.d.lsName} add_lockspace_idm fail to set kill path ${rv}`);
      c.client.close();
      return -E.MANAGER;
    }
    this.conn = c.client;
    this.d.debug(`S ${this.d.lsName} add_lockspace_idm kill path is: "${this.d.killPath} ${killArgs}"`);
    return 0;
  }

  /** lm_rem_lockspace_idm: locks still held expire on the drives (the ILM does not release them). */
  async stop(): Promise<number> {
    const c = this.conn;
    this.conn = null;
    this.resources.clear();
    if (!c) return 0;
    const rv = await c.disconnect();
    if (rv < 0) {
      this.d.error(`S ${this.d.lsName} rem_lockspace_idm error ${rv}`);
      c.close();
    }
    return 0;
  }

  private resource(r: IdmResource, lvUuid: string): ResourceData | null {
    let rd = this.resources.get(r.name);
    if (!rd) {
      const lockId = idmLockId(r.type, this.d.vgUuid, lvUuid);
      if (!lockId) return null;
      rd = { lockId, drives: [], vbTimestamp: 0n, vb: r.type === 'lv' ? null : zeroVb() };
      this.resources.set(r.name, rd);
    }
    return rd;
  }

  /** lm_lock_idm; pvs = the path[N] list of a lock_lv request. */
  async lock(r: IdmResource, mode: 'sh' | 'ex', lvUuid: string, pvs: string[]): Promise<{ rv: number; vb?: ValueBlock; vbLost?: boolean }> {
    const rd = this.resource(r, lvUuid);
    if (!rd) {
      this.d.error(`S ${this.d.lsName} R ${r.name} lock_idm: malformed uuid`);
      return { rv: -E.INVAL };
    }
    const drives = r.type === 'gl' ? this.glDriveList : r.type === 'vg' ? this.vgDrives : pvs;
    if (drives.length >= DRIVE_MAX) return { rv: -E.INVAL };
    rd.drives = [...drives];
    const c = this.conn;
    const rv = c ? await c.lock(rd.lockId, idmMode(mode), rd.drives, this.d.lockTimeoutMs ?? IDM_TIMEOUT_MS) : -E.MANAGER;
    if (rv < 0) {
      this.d.error(`S ${this.d.lsName} R ${r.name} lock_idm acquire mode ${mode} rv ${rv}`);
      return { rv: -E.LOCKIO };
    }
    if (!rd.vb || !c) return { rv: 0 };
    const read = await c.readLvb(rd.lockId);
    const ts = read.rv < 0 ? 0n : decodeTimestamp(read.lvb);
    if (read.rv < 0) this.d.error(`S ${this.d.lsName} R ${r.name} lock_idm get_lvb error ${read.rv}`);
    if (read.rv < 0 || ts !== rd.vbTimestamp) {
      // Another host changed it (or we never saw it): whatever we cached is stale.
      // C hands the core a zero val_blk and nothing else; but once res_lock has
      // taken a zero val_blk as valid (version_zero_valid) it reads the next zero
      // as "still zero" and keeps its cache, so a host invalidated once this way
      // missed every later change (simulator: stale-vg-metadata, docs/simulator.md
      // finding 18). We say the value block's content is lost, as the dlm
      // manager does for VALNOTVALID: the core always invalidates on it.
      rd.vbTimestamp = ts;
      rd.vb = zeroVb();
      return { rv: 0, vb: zeroVb(), vbLost: true };
    }
    return { rv: 0, vb: { ...rd.vb } };
  }

  /** Before leaving ex with a new version: record it and write a fresh timestamp. */
  private async publishVersion(r: IdmResource, rd: ResourceData, rVersion: number): Promise<number> {
    if (!rd.vb || !rVersion || r.mode !== 'ex' || !this.conn) return 0;
    if (!rd.vb.version) rd.vb.version = VAL_BLK_VERSION;
    rd.vb.rVersion = rVersion;
    const now = this.d.utcUs();
    rd.vbTimestamp = this.d.hooks?.noTimestampPlusOne ? now : nextTimestamp(rd.vbTimestamp, now);
    const rv = await this.conn.writeLvb(rd.lockId, encodeTimestamp(rd.vbTimestamp));
    if (rv < 0) {
      this.d.error(`S ${this.d.lsName} R ${r.name} write_lvb error ${rv}`);
      return -E.LMERR;
    }
    return 0;
  }

  async convert(r: IdmResource, mode: 'sh' | 'ex', rVersion: number): Promise<number> {
    const rd = this.resources.get(r.name);
    if (!rd || !this.conn) return -E.INVAL;
    const rv = await this.publishVersion(r, rd, rVersion);
    if (rv < 0) return rv;
    return this.conn.convert(rd.lockId, idmMode(mode));
  }

  async unlock(r: IdmResource, rVersion: number): Promise<number> {
    const rd = this.resources.get(r.name);
    if (!rd || !this.conn) return -E.INVAL;
    const rv = await this.publishVersion(r, rd, rVersion);
    if (rv < 0) return rv;
    const un = await this.conn.unlock(rd.lockId);
    if (un < 0) {
      // The ILM forgets a lock on release whatever the drives answered (propeller
      // frees it too): it is no longer renewed and its drive entries time out. C
      // returns the error, and the core keeps a lock record the ILM no longer
      // knows: every later unlock gets -1 and the other clients' requests for
      // the resource on this host wait forever (simulator finding 20).
      this.d.error(`S ${this.d.lsName} R ${r.name} unlock_idm error ${un}: released, its drive entries time out`);
    }
    return 0;
  }

  forget(name: string): void {
    this.resources.delete(name);
  }

  /** lm_hosts_idm: the most other hosts holding any of our resources; < 0 an error. */
  async hosts(): Promise<number> {
    if (!this.conn) return 0;
    let most = 0;
    for (const rd of this.resources.values()) {
      if (rd.drives.length === 0) continue;
      const r = await this.conn.hostCount(rd.lockId, rd.drives);
      if (r.rv < 0) return r.rv;
      most = Math.max(most, r.count);
    }
    return most;
  }
}
