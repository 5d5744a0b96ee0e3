/**
 * Delta leases: ownership of a host_id in a lockspace (sanlock's
 * delta_lease.c and the renewal/liveness parts of lockspace.c).
 *
 * A lockspace area is align_size bytes: one sector per host_id holding a
 * leader record (bytes 0..199) and a host bitmap (bytes 256..511). A host
 * owns host_id N while it keeps changing the timestamp of sector N-1.
 */
import { Clock } from '../io/clock';
import { Disk, DiskError } from '../io/disk';
import { LeaseError, SANLK } from './errors';
import {
  DELTA_DISK_MAGIC,
  DELTA_DISK_VERSION,
  HOSTID_BITMAP_OFFSET,
  HOSTID_BITMAP_SIZE,
  LEADER_RECORD_SIZE,
  LeaderRecord,
  PAXOS_DISK_MAGIC,
  readU64,
  cloneLeader,
  decodeLeader,
  deltaSectorOffset,
  emptyLeader,
  encodeLeader,
  leaderSector,
  leadersEqual,
  nameField,
  nameString,
  namesEqual,
  setIdBit,
  snprintfName,
  verifyDeltaLeader,
  wordsOf,
  zeroBuffer,
} from './ondisk';
import { LeaseBugHooks } from './hooks';
import { Random } from './random';
import { assert } from '../util/assert';
import { LeaseGeometry, alignFlag, alignFromFlags, alignSizeOld, geometry, isSectorSize } from './sizes';
import {
  DEFAULT_IO_TIMEOUT,
  Timeouts,
  WRITE_INIT_IO_TIMEOUT,
  calcDeltaLargeDelaySeconds,
  calcHostDeadSeconds,
  deriveTimeouts,
} from './timeouts';

export { WRITE_INIT_IO_TIMEOUT };

function ioErr(rv: number, e: unknown, what: string): LeaseError {
  if (e instanceof LeaseError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof DiskError && e.code === 'ETIMEDOUT' ? SANLK.AIO_TIMEOUT : rv;
  return new LeaseError(code, `${what}: ${msg}`, undefined, { cause: e });
}

async function diskRead(disk: Disk, offset: number, len: number, timeoutS: number, what: string, rv: number): Promise<Buffer> {
  try {
    return await disk.read(offset, len, { timeoutMs: timeoutS * 1000, label: what });
  } catch (e) {
    throw ioErr(rv, e, what);
  }
}

async function diskWrite(disk: Disk, offset: number, data: Buffer, timeoutS: number, what: string, rv: number): Promise<void> {
  try {
    await disk.write(offset, data, { timeoutMs: timeoutS * 1000, label: what });
  } catch (e) {
    throw ioErr(rv, e, what);
  }
}

export { diskRead, diskWrite };

export interface InitLockspaceOptions {
  sectorSize: number;
  /** Defaults to 1 MiB for 512 and 8 MiB for 4096, as sanlock. */
  alignSize?: number;
  /** Seconds; written into every record (default 10). */
  ioTimeout?: number;
}

/**
 * Format a lockspace, byte-identical to `sanlock direct init -s` /
 * sanlock_write_lockspace: every host record gets the same free leader.
 * Sector 0 is first written with magic 0 and then rewritten with the real
 * magic, so a crash in the middle never leaves a valid-looking half init.
 */
export async function initLockspace(disk: Disk, offset: number, name: string, opts: InitLockspaceOptions): Promise<LeaseGeometry> {
  const g = geometry(opts.sectorSize, opts.alignSize);
  checkAreaAlignment(disk, offset, g);
  const io = opts.ioTimeout ?? DEFAULT_IO_TIMEOUT;
  const rec = emptyLeader();
  rec.magic = DELTA_DISK_MAGIC;
  rec.version = DELTA_DISK_VERSION;
  rec.flags = alignFlag(g.alignSize);
  rec.sectorSize = g.sectorSize;
  rec.maxHosts = 1;
  rec.spaceName = nameField(name);
  rec.ioTimeout = io & 0xff;
  const buf = Buffer.alloc(g.alignSize);
  const good = encodeLeader(rec);
  for (let i = 0; i < g.maxHosts; i++) good.copy(buf, i * g.sectorSize);
  const first = encodeLeader({ ...cloneLeader(rec), magic: 0 });
  first.copy(buf, 0);
  await ensureSize(disk, offset + g.alignSize);
  await diskWrite(disk, offset, buf, WRITE_INIT_IO_TIMEOUT, 'delta_init', SANLK.LEADER_WRITE);
  await diskWrite(disk, offset, leaderSector(rec, g.sectorSize), WRITE_INIT_IO_TIMEOUT, 'delta_init_sector0', SANLK.LEADER_WRITE);
  return g;
}

export async function ensureSize(disk: Disk, end: number): Promise<void> {
  const size = await disk.size();
  if (size < end) {
    throw new LeaseError(SANLK.EINVAL, `${disk.path}: device is ${size} bytes, lease area needs ${end} bytes`);
  }
}

export function checkAreaAlignment(disk: Disk, offset: number, g: LeaseGeometry): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % g.sectorSize !== 0) {
    throw new LeaseError(SANLK.EINVAL, `offset ${offset} is not a multiple of the ${g.sectorSize}-byte sector size`);
  }
  if (g.sectorSize < disk.sectorSize) {
    throw new LeaseError(
      SANLK.EINVAL,
      `${disk.path} has ${disk.sectorSize}-byte sectors; a ${g.sectorSize}-byte lease layout cannot be used on it`,
    );
  }
}

/**
 * Find sector and align size of the lease at `offset` the way sanlock does:
 * read 4096 bytes and parse the leader (delta or paxos). Throws
 * SANLK_LEADER_MAGIC when there is no lease there.
 */
export async function readLeaseSizes(disk: Disk, offset: number, timeoutS = DEFAULT_IO_TIMEOUT): Promise<LeaseGeometry & { magic: number }> {
  const len = Math.max(4096, disk.sectorSize);
  if (offset % disk.sectorSize !== 0) {
    throw new LeaseError(SANLK.EINVAL, `offset ${offset} is not aligned to the ${disk.sectorSize}-byte sector size of ${disk.path}`);
  }
  const buf = await diskRead(disk, offset, len, timeoutS, 'read_sector_size', SANLK.LEADER_READ);
  const rec = decodeLeader(buf);
  if (rec.magic !== DELTA_DISK_MAGIC && rec.magic !== PAXOS_DISK_MAGIC) {
    throw new LeaseError(SANLK.LEADER_MAGIC, `${disk.path} offset ${offset}: no sanlock lease (magic 0x${rec.magic.toString(16)})`);
  }
  if (!isSectorSize(rec.sectorSize)) {
    throw new LeaseError(SANLK.LEADER_SECTORSIZE, `${disk.path} offset ${offset}: invalid sector_size ${rec.sectorSize} in leader`);
  }
  const align = alignFromFlags(rec.flags) || alignSizeOld(rec.sectorSize);
  try {
    return { ...geometry(rec.sectorSize, align), magic: rec.magic };
  } catch (e) {
    throw new LeaseError(SANLK.LEADER_SECTORSIZE, `${disk.path} offset ${offset}: ${(e as Error).message}`);
  }
}

/** Read and verify host_id's delta leader. */
export async function readDeltaLeader(
  disk: Disk,
  offset: number,
  sectorSize: number,
  spaceName: string | Buffer | undefined,
  hostId: number,
  timeoutS = DEFAULT_IO_TIMEOUT,
): Promise<{ leader: LeaderRecord; sector: Buffer }> {
  if (!Number.isInteger(hostId) || hostId < 1) throw new LeaseError(SANLK.EINVAL, `invalid host_id ${hostId}`);
  const sector = await diskRead(disk, offset + deltaSectorOffset(hostId, sectorSize), sectorSize, timeoutS, 'delta_leader_read', SANLK.LEADER_READ);
  const leader = decodeLeader(sector);
  const sn = typeof spaceName === 'string' ? nameField(spaceName) : spaceName;
  verifyDeltaLeader(leader, sector.subarray(0, LEADER_RECORD_SIZE), sn, `lockspace host_id ${hostId} at ${disk.path}:${offset}`);
  return { leader, sector };
}

/** What the local host knows about another host from watching its delta lease. */
export interface HostStatus {
  ownerId: number;
  ownerGeneration: number;
  timestamp: number;
  ioTimeout: number;
  /** Local monotonic seconds of the first check, the last check and the last observed change (0 = never). */
  firstCheck: number;
  lastCheck: number;
  lastLive: number;
}

export interface LockspaceOptions {
  disk: Disk;
  offset: number;
  name: string;
  hostId: number;
  clock: Clock;
  random: Random;
  /** Unique name of this host instance (sanlock: "<uuid>.<nodename>"); defaults to a random uuid with `nodeName`. */
  hostName?: string;
  /** This machine's node name (uname -n), handed in by the caller; used only for a default hostName (default "localhost"). */
  nodeName?: string;
  /** Seconds (sanlock's io_timeout, 1..255; default 10). */
  ioTimeout?: number;
  /** Must be the same on all hosts (sanlock: 60). */
  watchdogFireTimeout?: number;
  /** Use these sizes instead of reading them from disk. */
  sectorSize?: number;
  alignSize?: number;
  /** Called when renewals have failed for id_renewal_fail_seconds: the host_id is lost. */
  onFail?: (err: Error) => void;
  /** Called after every successful renewal with its local monotonic time (the host watchdog follows it). */
  onRenewed?: (lastSuccess: number) => void;
  /** Simulator self-check only: deliberate bugs (src/leases/hooks.ts). Production passes none. */
  hooks?: LeaseBugHooks;
}

export type LockspaceState = 'idle' | 'acquiring' | 'held' | 'failed' | 'released';

export interface AcquireHostIdOptions {
  /** Skip the 2 * io_timeout check wait when the record was free (sanlock's SANLK_ADD_NODELAY, as we apply it). */
  nodelay?: boolean;
}

export type ResumeOutcome =
  | { resumed: true; generation: number; age: number }
  | { resumed: false; reason: string };

/** The host name as a 48-byte field, cut to 48 bytes (what strncmp(…, 48) compares). */
export function hostNameField(name: string): Buffer {
  const b = zeroBuffer(48);
  Buffer.from(name, 'utf8').copy(b, 0, 0, 48);
  return b;
}

/** sanlock's default host name: a random uuid and the node name, cut to 47 bytes. */
export function randomHostName(random: Random, nodeName: string): string {
  const hex = (n: number) =>
    Array.from({ length: n }, () => Math.floor(random.next() * 16).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}.${nodeName}`.slice(0, 47);
}

const SEEN_NEVER = 0;
const SEEN_INVALID = 1;
const SEEN_VALID = 2;

/**
 * What a lockspace member knows about every other host_id, as columns indexed
 * by host_id. Every host keeps one for max_hosts (2000) host_ids, so in the
 * simulator 2000 hosts hold 4 million of these entries: a few typed arrays per
 * host instead of several objects per entry keep that within memory.
 */
class HostView {
  /** A HostStatus exists (the record was valid once). */
  readonly known: Uint8Array;
  readonly ownerId: Float64Array;
  readonly ownerGeneration: Float64Array;
  readonly timestamp: Float64Array;
  readonly ioTimeout: Uint16Array;
  readonly firstCheck: Float64Array;
  readonly lastCheck: Float64Array;
  readonly lastLive: Float64Array;
  /** SEEN_*: whether the record was decoded and whether it was valid. */
  readonly seen: Uint8Array;
  /** Sector version of the record when it was last looked at (-1: the disk gives none). */
  readonly version: Float64Array;
  /** Copies of the records' words, kept only when the disk gives no versions. */
  words: Int32Array | undefined;
  /** Copies of the records' bytes, when the area buffer cannot be read as words. */
  raw: Buffer | undefined;

  constructor(maxHosts: number) {
    const n = maxHosts + 1;
    this.known = new Uint8Array(n);
    this.ownerId = new Float64Array(n);
    this.ownerGeneration = new Float64Array(n);
    this.timestamp = new Float64Array(n);
    this.ioTimeout = new Uint16Array(n);
    this.firstCheck = new Float64Array(n);
    this.lastCheck = new Float64Array(n);
    this.lastLive = new Float64Array(n);
    this.seen = new Uint8Array(n);
    this.version = new Float64Array(n);
  }
}

/** decodeLeader + verifyDeltaLeader of another host's record: true when it is a valid delta leader. */
function decodeValidDelta(area: Buffer, off: number, spaceName: Buffer): boolean {
  const raw = area.subarray(off, off + LEADER_RECORD_SIZE);
  try {
    verifyDeltaLeader(decodeLeader(raw), raw, spaceName, 'check_other');
    return true;
  } catch {
    return false;
  }
}

/**
 * One host's membership of a lockspace: acquire, renew, release of its
 * host_id, and the liveness view of the other hosts built from renewals.
 */
export class Lockspace {
  readonly disk: Disk;
  readonly offset: number;
  readonly name: string;
  readonly spaceName: Buffer;
  readonly hostId: number;
  readonly hostName: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly timeouts: Timeouts;
  /** Simulator self-check only (undefined in production). */
  readonly hooks: LeaseBugHooks | undefined;
  geometry: LeaseGeometry | undefined;
  state: LockspaceState = 'idle';
  /** Generation of our host_id after acquire. */
  generation = 0;
  /** Last leader we wrote. */
  private last: LeaderRecord | undefined;
  private lastRenewOk = true;
  /** Local monotonic seconds of the last successful renewal (or acquire). */
  lastSuccess = 0;
  /** Renewal counters for status displays and metrics (never read by the algorithm). */
  readonly renewals = { ok: 0, failed: 0, lastMs: 0 };
  /** Liveness view of the other hosts and what their records were last time (allocated by the first area read). */
  private view: HostView | undefined;
  /** Bits we set in our bitmap, with the local time they expire. */
  private readonly bitmapUntil = new Map<number, number>();
  private renewLoop: Promise<void> | undefined;
  private stopRequested = false;
  private wake: (() => void) | undefined;
  private onFail: ((err: Error) => void) | undefined;
  private onRenewed: ((lastSuccess: number) => void) | undefined;
  /** Called when a renewal shows our bit set in another host's bitmap. */
  onBitmapSeen: ((fromHostId: number, leader: LeaderRecord) => void) | undefined;

  constructor(o: LockspaceOptions) {
    if (!Number.isInteger(o.hostId) || o.hostId < 1 || o.hostId > 2000) {
      throw new LeaseError(SANLK.ADDLS_INVALID_HOSTID, `invalid host_id ${o.hostId} (1..2000)`);
    }
    this.disk = o.disk;
    this.offset = o.offset;
    this.name = o.name;
    this.spaceName = nameField(o.name);
    this.hostId = o.hostId;
    this.clock = o.clock;
    this.random = o.random;
    this.hostName = o.hostName ?? randomHostName(o.random, o.nodeName ?? 'localhost');
    this.timeouts = deriveTimeouts(o.ioTimeout ?? DEFAULT_IO_TIMEOUT, o.watchdogFireTimeout);
    this.onFail = o.onFail;
    this.onRenewed = o.onRenewed;
    this.hooks = o.hooks;
    if (o.sectorSize) this.geometry = geometry(o.sectorSize, o.alignSize);
  }

  private get io(): number {
    return this.timeouts.ioTimeout;
  }

  private async sizes(): Promise<LeaseGeometry> {
    if (!this.geometry) {
      const g = await readLeaseSizes(this.disk, this.offset, this.io);
      if (g.magic !== DELTA_DISK_MAGIC) {
        throw new LeaseError(SANLK.LEADER_MAGIC, `${this.disk.path}:${this.offset} holds a resource lease, not a lockspace`);
      }
      this.geometry = { sectorSize: g.sectorSize, alignSize: g.alignSize, maxHosts: g.maxHosts };
    }
    if (this.hostId > this.geometry.maxHosts) {
      throw new LeaseError(
        SANLK.ADDLS_INVALID_HOSTID,
        `host_id ${this.hostId} is above max_hosts ${this.geometry.maxHosts} for ${this.geometry.sectorSize}/${this.geometry.alignSize}`,
      );
    }
    return this.geometry;
  }

  private async sleepSeconds(s: number): Promise<void> {
    if (s > 0) await this.clock.sleep(s * 1000);
  }

  private async readOwn(): Promise<LeaderRecord> {
    const g = await this.sizes();
    return (await readDeltaLeader(this.disk, this.offset, g.sectorSize, this.spaceName, this.hostId, this.io)).leader;
  }

  /**
   * Acquire our host_id (sanlock delta_lease_acquire). Waits 2*io_timeout on
   * a free lease, and max(host_dead, id_renewal+6*io) first on a lease that
   * another instance may still hold. Returns the new generation.
   */
  async acquire(opts: AcquireHostIdOptions = {}): Promise<number> {
    const g = await this.sizes();
    this.state = 'acquiring';
    try {
      let leader = await this.readOwn();
      const wasFree = leader.timestamp === 0;
      const otherIo = leader.ioTimeout || this.io;
      if (leader.timestamp !== 0 && !namesEqual(leader.resourceName, hostNameField(this.hostName))) {
        const wf = this.timeouts.watchdogFireTimeout;
        const delay = Math.max(calcHostDeadSeconds(otherIo, wf), calcDeltaLargeDelaySeconds(otherIo));
        const before = cloneLeader(leader);
        await this.sleepSeconds(delay);
        leader = await this.readOwn();
        if (!leadersEqual(before, leader) && leader.timestamp !== 0) {
          throw new LeaseError(
            SANLK.HOSTID_BUSY,
            `host_id ${this.hostId} in lockspace ${this.name} is in use by "${nameString(leader.resourceName)}" (generation ${leader.ownerGeneration}, timestamp changed)`,
            { hostId: leader.ownerId, generation: leader.ownerGeneration, timestamp: leader.timestamp, lver: 0 },
          );
        }
      }
      const rec = cloneLeader(leader);
      rec.timestamp = this.clock.monotonicSeconds();
      rec.ioTimeout = this.io & 0xff;
      rec.ownerId = this.hostId;
      rec.ownerGeneration = leader.ownerGeneration + 1;
      rec.resourceName = snprintfName(leader.resourceName, this.hostName);
      assert(rec.ownerId >= 1 && rec.ownerId <= g.maxHosts, () => `delta lease of host_id ${rec.ownerId} with max_hosts ${g.maxHosts}`);
      assert(rec.ownerGeneration > leader.ownerGeneration, 'acquire takes a new generation');
      const sector = leaderSector(rec, g.sectorSize);
      await diskWrite(this.disk, this.offset + deltaSectorOffset(this.hostId, g.sectorSize), sector, this.io, 'delta_leader', SANLK.LEADER_WRITE);
      // The wait lets a concurrent acquirer of the same host_id overwrite us, which the
      // re-read below detects. nodelay skips it for a record that was free: the caller
      // vouches that no other host uses this host_id. A record that was held is never
      // taken without the wait.
      if (!(opts.nodelay && wasFree)) await this.sleepSeconds(2 * otherIo);
      const check = await this.readOwn();
      if (!leadersEqual(check, rec)) {
        throw new LeaseError(
          SANLK.HOSTID_BUSY,
          `host_id ${this.hostId} in lockspace ${this.name} was taken by "${nameString(check.resourceName)}" while acquiring`,
          { hostId: check.ownerId, generation: check.ownerGeneration, timestamp: check.timestamp, lver: 0 },
        );
      }
      // The 2*io wait may have lasted far longer (the process was stopped, or I/O
      // stalled). Other hosts count host_dead from their last sight of our write and
      // may already hold this generation dead; renewing now would not undo what they
      // did on that view (clear our SH mode blocks, take our leases) nor reach the
      // hosts whose view is a renewal interval old. Fail: the caller rejoins with a
      // new generation.
      if (this.renewalFailPassed(rec.timestamp)) {
        const age = this.clock.monotonicSeconds() - rec.timestamp;
        throw new LeaseError(
          SANLK.ETIMEDOUT,
          `host_id ${this.hostId} in lockspace ${this.name}: the acquire took ${age} s from its write, past the renewal-fail time of ${this.timeouts.idRenewalFailSeconds} s; other hosts may count this generation dead`,
        );
      }
      this.last = check;
      this.generation = check.ownerGeneration;
      // As sanlock: the last success is the timestamp we wrote, not the end of the
      // 2*io wait. Other hosts count host_dead from the write; counting from the end of
      // the wait would let our kill path and watchdog fire 2*io_timeout too late.
      this.lastSuccess = rec.timestamp;
      this.lastRenewOk = true;
      this.state = 'held';
      return this.generation;
    } catch (e) {
      this.state = 'idle';
      throw e;
    }
  }

  /**
   * Continue the host_id lease our previous instance (same host name) held,
   * keeping its generation, so that the resource leases it held under that
   * generation stay ours without a moment in which other hosts could see them
   * as free. Only while other hosts cannot yet have declared that instance
   * dead: its last renewal (a timestamp of this machine's monotonic clock) must
   * be at most `maxAgeSeconds` old. Returns why not otherwise; throws
   * LeaseError on i/o errors.
   */
  async resume(maxAgeSeconds: number): Promise<ResumeOutcome> {
    await this.sizes();
    const leader = await this.readOwn();
    const now = this.clock.monotonicSeconds();
    if (leader.timestamp === 0) return { resumed: false, reason: `host_id ${this.hostId} lease was released` };
    if (leader.ownerId !== this.hostId || !namesEqual(leader.resourceName, hostNameField(this.hostName))) {
      return { resumed: false, reason: `host_id ${this.hostId} lease is held by "${nameString(leader.resourceName)}", not by "${this.hostName}"` };
    }
    const age = now - leader.timestamp;
    if (age < 0 || age > maxAgeSeconds) {
      return { resumed: false, reason: `host_id ${this.hostId} lease was last renewed ${age} s ago, more than ${maxAgeSeconds} s` };
    }
    this.state = 'acquiring';
    this.last = leader;
    this.generation = leader.ownerGeneration;
    this.lastRenewOk = true;
    this.lastSuccess = leader.timestamp;
    try {
      await this.renew();
    } catch (e) {
      this.last = undefined;
      this.generation = 0;
      this.state = 'idle';
      throw e;
    }
    this.state = 'held';
    return { resumed: true, generation: this.generation, age };
  }

  /** Ask `hostId` to look at us (requests, host events) for set_bitmap_seconds. */
  setHostBit(hostId: number): void {
    this.bitmapUntil.set(hostId, this.clock.monotonicSeconds() + this.timeouts.setBitmapSeconds);
  }

  private currentBitmap(now: number): Buffer {
    const b = zeroBuffer(HOSTID_BITMAP_SIZE);
    for (const [h, until] of this.bitmapUntil) {
      if (until > now) setIdBit(b, h);
      else this.bitmapUntil.delete(h);
    }
    return b;
  }

  /**
   * One renewal (sanlock delta_lease_renew): read the whole area, check our
   * record is still ours, update the liveness view of every host, write our
   * sector with a new timestamp and our bitmap.
   */
  async renew(): Promise<void> {
    const g = await this.sizes();
    if (!this.last) throw new LeaseError(SANLK.RENEW_OWNER, `host_id ${this.hostId} is not held`);
    let area: Buffer;
    try {
      area = await diskRead(this.disk, this.offset, g.alignSize, this.io, 'delta_renew_read', SANLK.LEADER_READ);
    } catch (e) {
      this.lastRenewOk = false;
      throw e;
    }
    const off = deltaSectorOffset(this.hostId, g.sectorSize);
    let leader: LeaderRecord;
    let now: number;
    try {
      const raw = area.subarray(off, off + LEADER_RECORD_SIZE);
      leader = decodeLeader(raw);
      verifyDeltaLeader(leader, raw, this.spaceName, `lockspace ${this.name} host_id ${this.hostId}`);
      now = this.clock.monotonicSeconds();
      this.observeArea(area, g, now);
    } finally {
      this.disk.release?.(area); // nothing below looks at the area again
    }
    if (
      leader.ownerId !== this.last.ownerId ||
      leader.ownerGeneration !== this.last.ownerGeneration ||
      !namesEqual(leader.resourceName, this.last.resourceName)
    ) {
      this.lastRenewOk = false;
      throw new LeaseError(
        SANLK.RENEW_OWNER,
        `host_id ${this.hostId} lease was taken by host ${leader.ownerId} generation ${leader.ownerGeneration} "${nameString(leader.resourceName)}"`,
      );
    }
    if (this.lastRenewOk && !leadersEqual(leader, this.last)) {
      this.lastRenewOk = false;
      throw new LeaseError(SANLK.RENEW_DIFF, `host_id ${this.hostId} lease changed on disk since our last renewal`);
    }
    const rec = cloneLeader(leader);
    rec.timestamp = now;
    rec.ioTimeout = this.io & 0xff;
    const sector = leaderSector(rec, g.sectorSize, this.currentBitmap(now));
    try {
      await diskWrite(this.disk, this.offset + off, sector, this.io, 'delta_renew_write', SANLK.LEADER_WRITE);
    } catch (e) {
      this.lastRenewOk = false;
      throw e;
    }
    this.last = rec;
    this.lastRenewOk = true;
    this.lastSuccess = now;
  }

  /** Update host statuses from a whole-area read (sanlock check_other_leases). */
  observeArea(area: Buffer, g: LeaseGeometry, now = this.clock.monotonicSeconds()): void {
    const words = wordsOf(area);
    const recWords = LEADER_RECORD_SIZE >> 2;
    // Per-sector versions, when the disk (a simulated one) knows them: a record whose
    // sector kept its version has the bytes we decoded last time.
    const versions = this.disk.sectorVersions?.(area);
    const v = (this.view ??= new HostView(g.maxHosts));
    if (!versions && words && !v.words) {
      // Records seen so far were not copied: decode them once more (same result, see below).
      v.words = new Int32Array((g.maxHosts + 1) * recWords);
      v.seen.fill(SEEN_NEVER);
    }
    const me = this.hostId - 1;
    const myByte = HOSTID_BITMAP_OFFSET + (me >> 3);
    const myBit = 1 << (me & 7);
    /** Area offset of the record decoded last in this pass (-1: none). */
    let lastOff = -1;
    let lastValid = false;
    for (let i = 0; i < g.maxHosts; i++) {
      const hostId = i + 1;
      if (hostId === this.hostId) continue;
      const off = i * g.sectorSize;
      if (off + g.sectorSize > area.length) break;
      const version = versions && versions.length > i ? versions[i]! : -1;
      const seen = v.seen[hostId]!;
      // Whether the record has the bytes decoded last time is only a shortcut: the same
      // bytes decode to the same result, so both ways end in the same host status.
      let same = false;
      if (seen !== SEEN_NEVER) {
        if (version >= 0 && v.version[hostId] === version) {
          same = true;
        } else if (words && v.words) {
          // Word compare in JS: thousands of records per renewal, a native call each costs more.
          same = true;
          const cw = v.words;
          for (let k = 0, w = off >> 2, c = hostId * recWords; k < recWords; k++, w++, c++) {
            if (words[w] !== cw[c]) {
              same = false;
              break;
            }
          }
        } else if (!words) {
          same = v.raw !== undefined && area.compare(v.raw, hostId * LEADER_RECORD_SIZE, (hostId + 1) * LEADER_RECORD_SIZE, off, off + LEADER_RECORD_SIZE) === 0;
        }
      }
      let valid: boolean;
      if (same) {
        valid = seen === SEEN_VALID;
        v.version[hostId] = version;
      } else {
        // A fresh area holds max_hosts identical free records: a record with the bytes of
        // the one decoded just before has the same result.
        let dup = false;
        if (words && lastOff >= 0) {
          dup = true;
          for (let k = 0, w = off >> 2, l = lastOff >> 2; k < recWords; k++, w++, l++) {
            if (words[w] !== words[l]) {
              dup = false;
              break;
            }
          }
        }
        if (dup) {
          valid = lastValid;
        } else {
          valid = decodeValidDelta(area, off, this.spaceName);
          lastOff = off;
          lastValid = valid;
        }
        v.seen[hostId] = valid ? SEEN_VALID : SEEN_INVALID;
        v.version[hostId] = version;
        if (v.words && words) v.words.set(words.subarray(off >> 2, (off >> 2) + recWords), hostId * recWords);
        else if (!words) {
          if (!v.raw) {
            v.raw = Buffer.alloc((g.maxHosts + 1) * LEADER_RECORD_SIZE);
            v.seen.fill(SEEN_NEVER);
            v.seen[hostId] = valid ? SEEN_VALID : SEEN_INVALID;
          }
          area.copy(v.raw, hostId * LEADER_RECORD_SIZE, off, off + LEADER_RECORD_SIZE);
        }
      }
      if (!valid) continue;
      const fresh = !v.known[hostId];
      if (fresh) {
        // Starts zeroed like sanlock's host_status, so the first sight of a
        // used record counts as a change (last_live = first_check).
        v.known[hostId] = 1;
        v.firstCheck[hostId] = now;
      }
      if (!same || fresh) {
        // A record with the bytes applied last time cannot change the status.
        const ownerId = readU64(area, off + 32);
        const ownerGeneration = readU64(area, off + 40);
        const timestamp = readU64(area, off + 152);
        if (v.ownerId[hostId] !== ownerId || v.ownerGeneration[hostId] !== ownerGeneration || v.timestamp[hostId] !== timestamp) {
          v.ownerId[hostId] = ownerId;
          v.ownerGeneration[hostId] = ownerGeneration;
          v.timestamp[hostId] = timestamp;
          v.ioTimeout[hostId] = area.readUInt16LE(off + 174);
          v.lastLive[hostId] = now;
        }
      }
      v.lastCheck[hostId] = now;
      if (this.onBitmapSeen && v.timestamp[hostId] !== 0 && ((area[off + myByte] ?? 0) & myBit) !== 0) {
        this.onBitmapSeen(hostId, decodeLeader(area, off));
      }
    }
  }

  /** What we know about another host, or undefined before the first renewal. */
  hostStatus(hostId: number): HostStatus | undefined {
    const v = this.view;
    if (!v || !v.known[hostId]) return undefined;
    return {
      ownerId: v.ownerId[hostId]!,
      ownerGeneration: v.ownerGeneration[hostId]!,
      timestamp: v.timestamp[hostId]!,
      ioTimeout: v.ioTimeout[hostId]!,
      firstCheck: v.firstCheck[hostId]!,
      lastCheck: v.lastCheck[hostId]!,
      lastLive: v.lastLive[hostId]!,
    };
  }

  /**
   * sanlock host_live(): false when the host's delta lease is free, when it
   * restarted with a newer generation than `generation`, or when its
   * timestamp has not changed for host_dead_seconds. True when unknown.
   *
   * Deliberate deviation from sanlock 3.8.5: a `generation` newer than any we
   * have seen (also of a free record: the host may have joined since) is
   * unknown, so live. sanlock judges it by the staleness of the
   * older generation's record, so a host that rejoined after a long stall and
   * took a lease (its SHARED mode block names the new generation) before our
   * next renewal saw its new delta lease is "dead" to us, and its lease is
   * cleared and granted to us (simulator, seed 2539072980).
   */
  hostLive(hostId: number, generation: number): boolean {
    const hs = this.hostStatus(hostId);
    if (!hs || !hs.lastCheck) return true;
    if (generation > hs.ownerGeneration) return true;
    if (!hs.timestamp) return false;
    if (hs.ownerGeneration > generation) return false;
    const now = this.clock.monotonicSeconds();
    const dead = calcHostDeadSeconds(hs.ioTimeout || this.io, this.timeouts.watchdogFireTimeout);
    if (!hs.lastLive && now - hs.firstCheck > dead) return false;
    if (hs.lastLive && now - hs.lastLive > dead) return false;
    return true;
  }

  /**
   * Summary of another host for status displays: 'free' (host_id not held),
   * 'live', 'dead' (silent for host_dead_seconds), or 'unknown' (not seen by
   * a renewal yet).
   */
  hostState(hostId: number): { state: 'free' | 'live' | 'dead' | 'unknown'; generation: number; timestamp: number } {
    const hs = this.hostStatus(hostId);
    if (!hs || !hs.lastCheck) return { state: 'unknown', generation: 0, timestamp: 0 };
    if (!hs.timestamp) return { state: 'free', generation: hs.ownerGeneration, timestamp: 0 };
    return { state: this.hostLive(hostId, hs.ownerGeneration) ? 'live' : 'dead', generation: hs.ownerGeneration, timestamp: hs.timestamp };
  }

  /** Read another host's delta leader (used for paxos owner liveness). */
  async readHostLeader(hostId: number): Promise<LeaderRecord> {
    const g = await this.sizes();
    return (await readDeltaLeader(this.disk, this.offset, g.sectorSize, this.spaceName, hostId, this.io)).leader;
  }

  /** Read all host records of the lockspace (e.g. for a status display). */
  async readAllHosts(): Promise<Array<{ hostId: number; leader: LeaderRecord }>> {
    const g = await this.sizes();
    const area = await diskRead(this.disk, this.offset, g.alignSize, this.io, 'delta_read_all', SANLK.LEADER_READ);
    const out: Array<{ hostId: number; leader: LeaderRecord }> = [];
    try {
      for (let i = 0; i < g.maxHosts; i++) {
        const raw = area.subarray(i * g.sectorSize, i * g.sectorSize + LEADER_RECORD_SIZE);
        const rec = decodeLeader(raw);
        if (rec.magic !== DELTA_DISK_MAGIC) continue;
        out.push({ hostId: i + 1, leader: rec });
      }
    } finally {
      this.disk.release?.(area);
    }
    return out;
  }

  /** Release our host_id: write the last record with timestamp 0 (sanlock delta_lease_release). */
  async release(): Promise<void> {
    await this.stopRenewal();
    const g = await this.sizes();
    const base = this.last ?? (await this.readOwn());
    const rec = cloneLeader(base);
    rec.timestamp = 0;
    await diskWrite(this.disk, this.offset + deltaSectorOffset(this.hostId, g.sectorSize), leaderSector(rec, g.sectorSize), this.io, 'delta_release', SANLK.LEADER_WRITE);
    this.last = rec;
    this.state = 'released';
  }

  /**
   * Start the renewal loop (sanlock lockspace_thread): poll every second,
   * renew once id_renewal_seconds have passed since the last success,
   * retry failures every 0.5 s, and give up (state 'failed', onFail) after
   * id_renewal_fail_seconds without success.
   */
  startRenewal(): void {
    if (this.renewLoop) return;
    this.stopRequested = false;
    this.renewLoop = (async () => {
      let failing = false;
      while (!this.stopRequested) {
        await Promise.race([
          this.clock.sleep(failing ? 500 : 1000),
          new Promise<void>((r) => {
            this.wake = r;
          }),
        ]);
        if (this.stopRequested) break;
        const now = this.clock.monotonicSeconds();
        if (!failing && now - this.lastSuccess < this.timeouts.idRenewalSeconds) continue;
        const started = this.clock.nowMs();
        try {
          await this.renew();
          this.renewals.ok++;
          this.renewals.lastMs = this.clock.nowMs() - started;
          failing = false;
          if (!this.stopRequested) this.onRenewed?.(this.lastSuccess);
        } catch (e) {
          this.renewals.failed++;
          if (this.hooks?.renewWithoutTimeoutCheck && !(e instanceof LeaseError && (e.rv === SANLK.RENEW_OWNER || e.rv === SANLK.RENEW_DIFF))) {
            this.lastSuccess = this.clock.monotonicSeconds(); // injected bug
            continue;
          }
          failing = true;
          const lost = e instanceof LeaseError && (e.rv === SANLK.RENEW_OWNER || e.rv === SANLK.RENEW_DIFF);
          if (lost || this.renewalFailPassed(this.lastSuccess)) {
            this.state = 'failed';
            this.onFail?.(e as Error);
            break;
          }
        }
      }
    })();
  }

  /**
   * Whether our host_id lease is past the renewal-fail time (other hosts will
   * soon count it dead): resource leases must not be granted on it.
   */
  leaseStale(): boolean {
    return this.state !== 'held' || this.renewalFailPassed(this.lastSuccess);
  }

  /** Whether id_renewal_fail_seconds have passed since `since` (a monotonic timestamp of ours). */
  private renewalFailPassed(since: number): boolean {
    return this.clock.monotonicSeconds() - since >= this.timeouts.idRenewalFailSeconds;
  }

  async stopRenewal(): Promise<void> {
    this.stopRequested = true;
    this.wake?.();
    const l = this.renewLoop;
    this.renewLoop = undefined;
    if (l) await l;
  }

  /**
   * Take over the on-disk record of our host_id as if we had written it
   * (what `sanlock direct renew_id` does before renewing).
   */
  async adoptCurrent(): Promise<LeaderRecord> {
    const l = await this.readOwn();
    this.last = l;
    this.generation = l.ownerGeneration;
    this.lastRenewOk = true;
    this.state = 'held';
    return cloneLeader(l);
  }

  /** The last record we wrote (for tests / status). */
  lastLeader(): LeaderRecord | undefined {
    return this.last ? cloneLeader(this.last) : undefined;
  }
}

