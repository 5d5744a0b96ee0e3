/**
 * Paxos leases on resources (sanlock's paxos_lease.c plus the shared/
 * exclusive logic of resource.c): Disk Paxos on a single disk with one
 * dblock per host, the agreed value being the owner (host_id, generation,
 * timestamp) for lease version lver = leader.lver + 1.
 *
 * Area layout (sectors): 0 leader, 1 request record, 2+(host_id-1) dblock
 * of host_id with its mode block at byte 128.
 */
import { Clock } from '../io/clock';
import { Disk } from '../io/disk';
import { Lockspace, checkAreaAlignment, diskRead, diskWrite, ensureSize, readLeaseSizes } from './delta-lease';
import { HolderInfo, LeaseError, SANLK, isLeaseError } from './errors';
import {
  DBLOCK_FL_RELEASED,
  LEADER_RECORD_SIZE,
  LeaderRecord,
  MBLOCK_OFFSET,
  PAXOS_DBLOCK_FIRST_SECTOR,
  MBLOCK_SHARED,
  PAXOS_DISK_CLEAR,
  PAXOS_DISK_MAGIC,
  PAXOS_DISK_VERSION,
  PaxosDblock,
  REQ_DISK_MAGIC,
  REQ_DISK_VERSION,
  REQ_DISK_VERSION_MAJOR,
  RequestRecord,
  VERSION_MAJOR_MASK,
  cloneLeader,
  dblockSector,
  dblockSectorOffset,
  hostBlockSector,
  dblockIsZero,
  dblockValid,
  decodeDblock,
  decodeLeader,
  decodeModeBlock,
  decodeRequest,
  emptyLeader,
  encodeLeader,
  leaderSector,
  leadersEqual,
  nameField,
  nameString,
  requestSector,
  verifyPaxosLeader,
  wordsOf,
} from './ondisk';
import { LeaseBugHooks } from './hooks';
import { Random } from './random';
import { assert } from '../util/assert';
import { LFL_SHORT_HOLD, LeaseGeometry, alignFlag, alignFromFlags, alignSizeOld, geometry, roundupPow2 } from './sizes';
import { DEFAULT_IO_TIMEOUT, Timeouts, WRITE_INIT_IO_TIMEOUT, calcHostDeadSeconds, deriveTimeouts } from './timeouts';

/** sanlock: sh_retries default. */
export const SH_RETRIES = 8;

export type LeaseMode = 'ex' | 'sh';

/** Where a resource lease lives. */
export interface ResourceRef {
  disk: Disk;
  offset: number;
  lockspace: string;
  resource: string;
  /** Known sizes; read from the leader when omitted. */
  sectorSize?: number;
  alignSize?: number;
}

/** The local host as a paxos participant. */
export interface PaxosHost {
  hostId: number;
  generation: number;
  clock: Clock;
  random: Random;
  timeouts: Timeouts;
  /**
   * The joined lockspace, used to judge the liveness of another owner via
   * its delta lease. Without it (as in `sanlock direct acquire`) a lease
   * owned by another host fails with SANLK_ACQUIRE_LOCKSPACE.
   */
  lockspace?: Lockspace;
  /** Simulator self-check only: deliberate bugs (src/leases/hooks.ts). Production passes none. */
  hooks?: LeaseBugHooks;
}

/** Build a PaxosHost from a joined Lockspace. */
export function paxosHostFor(ls: Lockspace): PaxosHost {
  const h: PaxosHost = { hostId: ls.hostId, generation: ls.generation, clock: ls.clock, random: ls.random, timeouts: ls.timeouts, lockspace: ls };
  if (ls.hooks) h.hooks = ls.hooks;
  return h;
}

/** A held resource lease. */
export interface ResourceLease {
  ref: ResourceRef;
  geometry: LeaseGeometry;
  mode: LeaseMode;
  /** The leader as we last wrote/read it. */
  leader: LeaderRecord;
  /** Our committed dblock. */
  dblock: PaxosDblock;
  /** Lease version (for EX: the lver we own). */
  lver: number;
  /**
   * Set when a convert failed half way: release must also clear a leader
   * that still names us (sanlock's R_ERASE_ALL).
   */
  eraseAll?: boolean;
}

export interface AcquireOptions {
  mode?: LeaseMode;
  /** Fail with SANLK_ACQUIRE_LVER unless the leader is at this lver. */
  lver?: number;
  /** Do not wait for a possibly dead owner: SANLK_ACQUIRE_OWNED_RETRY (lvmlockd always sets this). */
  ownerNowait?: boolean;
  /** Run the ballot regardless of the current owner. */
  force?: boolean;
  /** Set num_hosts in the committed leader. */
  numHosts?: number;
  /**
   * Skip the shared-holder checks, as `sanlock direct acquire` does. Only for
   * the direct tool; never for normal locking.
   */
  directMode?: boolean;
}

export interface InitResourceOptions {
  sectorSize: number;
  alignSize?: number;
  /** num_hosts (1..max_hosts); default max_hosts. */
  numHosts?: number;
  /** Write the PAXOS_DISK_CLEAR magic (sanlock init -z 1). */
  clear?: boolean;
  /** Used for write_timestamp with `clear`. */
  clock?: Clock;
}

function holderOf(l: LeaderRecord): HolderInfo {
  return { hostId: l.ownerId, generation: l.ownerGeneration, timestamp: l.timestamp, lver: l.lver };
}

function describe(ref: ResourceRef): string {
  return `resource ${ref.lockspace}:${ref.resource} at ${ref.disk.path}:${ref.offset}`;
}

/**
 * Format a resource lease, byte-identical to `sanlock direct init -r`: one
 * align_size write with the leader in sector 0, a request record in sector
 * 1, and every dblock and mode block zero.
 */
export async function initResource(
  disk: Disk,
  offset: number,
  lockspace: string,
  resource: string,
  opts: InitResourceOptions,
): Promise<LeaseGeometry> {
  const g = geometry(opts.sectorSize, opts.alignSize);
  checkAreaAlignment(disk, offset, g);
  const rec = emptyLeader();
  rec.magic = opts.clear ? PAXOS_DISK_CLEAR : PAXOS_DISK_MAGIC;
  rec.version = PAXOS_DISK_VERSION;
  rec.flags = alignFlag(g.alignSize);
  rec.sectorSize = g.sectorSize;
  rec.numHosts = opts.numHosts && opts.numHosts > 0 && opts.numHosts <= g.maxHosts ? opts.numHosts : g.maxHosts;
  rec.maxHosts = g.maxHosts;
  rec.spaceName = nameField(lockspace);
  rec.resourceName = nameField(resource);
  if (opts.clear) rec.writeTimestamp = opts.clock ? opts.clock.monotonicSeconds() : 0;
  const buf = Buffer.alloc(g.alignSize);
  encodeLeader(rec).copy(buf, 0);
  requestSector({ magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver: 0, forceMode: 0 }, g.sectorSize).copy(buf, g.sectorSize);
  await ensureSize(disk, offset + g.alignSize);
  await diskWrite(disk, offset, buf, WRITE_INIT_IO_TIMEOUT, 'paxos_init', SANLK.LEADER_WRITE);
  return g;
}

async function refGeometry(ref: ResourceRef, io: number): Promise<LeaseGeometry> {
  if (ref.sectorSize) return geometry(ref.sectorSize, ref.alignSize);
  const g = await readLeaseSizes(ref.disk, ref.offset, io);
  if (g.magic !== PAXOS_DISK_MAGIC) {
    throw new LeaseError(SANLK.LEADER_MAGIC, `${describe(ref)}: area holds a lockspace, not a resource lease`);
  }
  return { sectorSize: g.sectorSize, alignSize: g.alignSize, maxHosts: g.maxHosts };
}

/** Read and verify the leader of a resource (sanlock paxos_lease_leader_read). */
export async function readResourceLeader(
  ref: ResourceRef,
  hostId = 0,
  io = DEFAULT_IO_TIMEOUT,
): Promise<{ leader: LeaderRecord; geometry: LeaseGeometry }> {
  const g = await refGeometry(ref, io);
  const sector = await diskRead(ref.disk, ref.offset, g.sectorSize, io, 'paxos_leader_read', SANLK.LEADER_READ);
  const leader = decodeLeader(sector);
  verifyPaxosLeader(leader, sector.subarray(0, LEADER_RECORD_SIZE), nameField(ref.lockspace), nameField(ref.resource), hostId, describe(ref));
  return { leader, geometry: g };
}

/** Holders of a resource: the EX owner (if the leader is held) and SH holders from mode blocks. */
export async function readResourceOwners(
  ref: ResourceRef,
  io = DEFAULT_IO_TIMEOUT,
): Promise<{ leader: LeaderRecord; exclusive: HolderInfo | undefined; shared: Array<{ hostId: number; generation: number }> }> {
  const g = await refGeometry(ref, io);
  const area = await diskRead(ref.disk, ref.offset, g.alignSize, io, 'read_resource_owners', SANLK.LEADER_READ);
  try {
    const leader = decodeLeader(area);
    verifyPaxosLeader(leader, area.subarray(0, LEADER_RECORD_SIZE), nameField(ref.lockspace), nameField(ref.resource), 0, describe(ref));
    const shared: Array<{ hostId: number; generation: number }> = [];
    for (let q = 0; q < leader.numHosts; q++) {
      const off = dblockSectorOffset(q + 1, g.sectorSize);
      if (off + g.sectorSize > area.length) break;
      const mb = decodeModeBlock(area, off + MBLOCK_OFFSET);
      if (mb.flags & MBLOCK_SHARED) shared.push({ hostId: q + 1, generation: mb.generation });
    }
    return { leader, exclusive: leader.timestamp ? holderOf(leader) : undefined, shared };
  } finally {
    ref.disk.release?.(area);
  }
}

/**
 * How `host` (its host_id and generation) holds a lease on disk: 'ex' when
 * the leader names it as the current owner, 'sh' when its mode block is
 * SHARED with its generation, null otherwise. Reads the leader and the
 * host's own dblock sector only.
 */
export async function readOwnHold(host: PaxosHost, ref: ResourceRef): Promise<{ hold: LeaseMode | null; leader: LeaderRecord }> {
  const io = host.timeouts.ioTimeout;
  const g = await refGeometry(ref, io);
  const area = await diskRead(ref.disk, ref.offset, dblockSectorOffset(host.hostId, g.sectorSize) + g.sectorSize, io, 'own_hold_read', SANLK.LEADER_READ);
  const leader = decodeLeader(area);
  verifyPaxosLeader(leader, area.subarray(0, LEADER_RECORD_SIZE), nameField(ref.lockspace), nameField(ref.resource), 0, describe(ref));
  if (leader.timestamp && leader.ownerId === host.hostId && leader.ownerGeneration === host.generation) return { hold: 'ex', leader };
  const mb = decodeModeBlock(area, dblockSectorOffset(host.hostId, g.sectorSize) + MBLOCK_OFFSET);
  if ((mb.flags & MBLOCK_SHARED) && mb.generation === host.generation) return { hold: 'sh', leader };
  return { hold: null, leader };
}

interface LeaseRead {
  leader: LeaderRecord;
  geometry: LeaseGeometry;
  maxMbal: number;
  /** The lver of our own dblock if it is marked RELEASED, else 0. */
  ownReleasedLver: number;
}

/** sanlock paxos_lease_read: whole area, leader verified, every dblock verified. */
async function paxosLeaseRead(ref: ResourceRef, g: LeaseGeometry, hostId: number, io: number): Promise<LeaseRead> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const area = await diskRead(ref.disk, ref.offset, g.alignSize, io, 'paxos_lease_read', SANLK.LEADER_READ);
    try {
      const leader = decodeLeader(area);
      verifyPaxosLeader(leader, area.subarray(0, LEADER_RECORD_SIZE), nameField(ref.lockspace), nameField(ref.resource), hostId, describe(ref));
      const align = alignFromFlags(leader.flags) || alignSizeOld(leader.sectorSize);
      if (leader.sectorSize !== g.sectorSize || align !== g.alignSize) {
        try {
          g = geometry(leader.sectorSize, align);
        } catch (e) {
          throw new LeaseError(SANLK.LEADER_SECTORSIZE, `${describe(ref)}: ${(e as Error).message}`);
        }
        continue;
      }
      const words = wordsOf(area);
      const versions = ref.disk.sectorVersions?.(area);
      let maxMbal = 0;
      let ownReleasedLver = 0;
      for (let q = 0; q < leader.numHosts; q++) {
        const off = dblockSectorOffset(q + 1, g.sectorSize);
        if (off + g.sectorSize > area.length) break;
        if (versions && versions[2 + q] === 0) continue; // never written: all zero
        if (dblockIsZero(area, off, words)) continue;
        if (!dblockValid(area, off)) {
          throw new LeaseError(SANLK.DBLOCK_CHECKSUM, `${describe(ref)}: dblock of host_id ${q + 1} has a bad checksum`);
        }
        const d = decodeDblock(area, off);
        if (d.mbal > maxMbal) maxMbal = d.mbal;
        if (q + 1 === hostId && d.flags & DBLOCK_FL_RELEASED) ownReleasedLver = d.lver;
      }
      return { leader, geometry: g, maxMbal, ownReleasedLver };
    } finally {
      ref.disk.release?.(area);
    }
  }
  throw new LeaseError(SANLK.LEADER_SECTORSIZE, `${describe(ref)}: sector/align size keeps changing`);
}

async function leaderRead(ref: ResourceRef, g: LeaseGeometry, hostId: number, io: number): Promise<LeaderRecord> {
  const sector = await diskRead(ref.disk, ref.offset, g.sectorSize, io, 'paxos_leader_read', SANLK.LEADER_READ);
  const leader = decodeLeader(sector);
  verifyPaxosLeader(leader, sector.subarray(0, LEADER_RECORD_SIZE), nameField(ref.lockspace), nameField(ref.resource), hostId, describe(ref));
  return leader;
}

async function writeLeader(ref: ResourceRef, g: LeaseGeometry, rec: LeaderRecord, io: number, what: string): Promise<void> {
  await diskWrite(ref.disk, ref.offset, leaderSector(rec, g.sectorSize), io, what, SANLK.LEADER_WRITE);
}

/** Write our whole dblock sector (dblock at 0, mode block at 128). sanlock write_host_block. */
async function writeHostBlock(
  ref: ResourceRef,
  g: LeaseGeometry,
  hostId: number,
  dblock: PaxosDblock | undefined,
  mode: { flags: number; generation: number } | undefined,
  io: number,
  what: string,
): Promise<void> {
  const sector = hostBlockSector(g.sectorSize, dblock, mode);
  await diskWrite(ref.disk, ref.offset + dblockSectorOffset(hostId, g.sectorSize), sector, io, what, SANLK.DBLOCK_WRITE);
}

interface BallotResult {
  dblock: PaxosDblock;
  /** Hosts whose mode block was SHARED in phase 1 (may include us when converting). */
  sharedHosts: number[];
}

class BallotAbort extends LeaseError {}

/** One ballot's fixed inputs: where, by whom, for which lver, with which ballot number. */
interface Ballot {
  ref: ResourceRef;
  g: LeaseGeometry;
  host: PaxosHost;
  numHosts: number;
  nextLver: number;
  ourMbal: number;
  /** Our dblock sector's offset. */
  mySector: number;
  /** The dblocks' span to read back (the sectors up to num_hosts, at most the align size). */
  readLen: number;
  /** Our SHARED mode block, kept in the dblock sector we write (sh->ex convert). */
  mode: { flags: number; generation: number } | undefined;
}

/** sanlock run_ballot: phase 1 (prepare), then phase 2 (accept) with the value phase 1 chose. */
async function runBallot(
  ref: ResourceRef,
  g: LeaseGeometry,
  host: PaxosHost,
  numHosts: number,
  nextLver: number,
  ourMbal: number,
  keepSharedMode: boolean,
): Promise<BallotResult> {
  // The leader was verified to have room for our host_id (SANLK_LEADER_NUMHOSTS otherwise).
  assert(host.hostId >= 1 && host.hostId <= numHosts, () => `ballot by host_id ${host.hostId} with num_hosts ${numHosts}`);
  assert(ourMbal > 0, () => `ballot number ${ourMbal}`);
  const b: Ballot = {
    ref, g, host, numHosts, nextLver, ourMbal,
    mySector: ref.offset + dblockSectorOffset(host.hostId, g.sectorSize),
    readLen: Math.min(roundupPow2(numHosts + PAXOS_DBLOCK_FIRST_SECTOR) * g.sectorSize, g.alignSize),
    mode: keepSharedMode ? { flags: MBLOCK_SHARED, generation: host.generation } : undefined,
  };
  const { best, sharedHosts } = await ballotPhase1(b);
  const d2 = await ballotPhase2(b, best);
  return { dblock: d2, sharedHosts };
}

/**
 * Phase 1: write our mbal, read every dblock; abort on a higher lver or mbal.
 * Returns the accepted value with the highest bal (to adopt), and the hosts
 * whose mode block is SHARED.
 */
async function ballotPhase1(b: Ballot): Promise<{ best: PaxosDblock | undefined; sharedHosts: number[] }> {
  const { ref, g, host, numHosts, nextLver, ourMbal } = b;
  const io = host.timeouts.ioTimeout;
  const d1: PaxosDblock = { mbal: ourMbal, bal: 0, inp: 0, inp2: 0, inp3: 0, lver: nextLver, checksum: 0, flags: 0 };
  await diskWrite(ref.disk, b.mySector, dblockSector(d1, g.sectorSize, b.mode), io, 'ballot_phase1_write', SANLK.DBLOCK_WRITE);
  const r1 = await diskRead(ref.disk, ref.offset, b.readLen, io, 'ballot_phase1_read', SANLK.DBLOCK_READ);
  const sharedHosts: number[] = [];
  let best: PaxosDblock | undefined;
  const w1 = wordsOf(r1);
  const v1 = ref.disk.sectorVersions?.(r1);
  try {
    for (let q = 0; q < numHosts; q++) {
      const off = dblockSectorOffset(q + 1, g.sectorSize);
      if (off + g.sectorSize > r1.length) break;
      if (v1 && v1[2 + q] === 0) continue; // never written: zero dblock, zero mode block
      if (dblockIsZero(r1, off, w1)) {
        // a never-written dblock (lver 0) can still sit next to a mode block
        if (r1.readUInt32LE(off + MBLOCK_OFFSET) & MBLOCK_SHARED) sharedHosts.push(q + 1);
        continue;
      }
      if (!dblockValid(r1, off)) continue;
      if (r1.readUInt32LE(off + MBLOCK_OFFSET) & MBLOCK_SHARED) sharedHosts.push(q + 1);
      const bk = decodeDblock(r1, off);
      if (host.hooks?.skipPaxosReadPhase && q + 1 !== host.hostId) continue; // injected bug
      if (bk.lver < nextLver) continue;
      if (bk.lver > nextLver) throw new BallotAbort(SANLK.DBLOCK_LVER, `ballot ${nextLver} phase 1: host_id ${q + 1} is at lver ${bk.lver}`);
      if (bk.mbal > ourMbal) throw new BallotAbort(SANLK.DBLOCK_MBAL, `ballot ${nextLver} phase 1: host_id ${q + 1} has mbal ${bk.mbal} > ${ourMbal}`);
      if (bk.inp !== 0 && bk.bal !== 0 && (!best || bk.bal > best.bal)) best = bk;
    }
  } finally {
    ref.disk.release?.(r1);
  }
  return { best, sharedHosts };
}

/** Phase 2: write the chosen value (adopted, else our own proposal) at our mbal, read every dblock; abort on a higher lver or mbal. */
async function ballotPhase2(b: Ballot, best: PaxosDblock | undefined): Promise<PaxosDblock> {
  const { ref, g, host, numHosts, nextLver, ourMbal } = b;
  const io = host.timeouts.ioTimeout;
  const d2: PaxosDblock = best
    ? { mbal: ourMbal, bal: ourMbal, inp: best.inp, inp2: best.inp2, inp3: best.inp3, lver: nextLver, checksum: 0, flags: 0 }
    : {
        mbal: ourMbal,
        bal: ourMbal,
        inp: host.hostId,
        inp2: host.generation,
        inp3: host.clock.monotonicSeconds(),
        lver: nextLver,
        checksum: 0,
        flags: 0,
      };
  await diskWrite(ref.disk, b.mySector, dblockSector(d2, g.sectorSize, b.mode), io, 'ballot_phase2_write', SANLK.DBLOCK_WRITE);
  const r2 = await diskRead(ref.disk, ref.offset, b.readLen, io, 'ballot_phase2_read', SANLK.DBLOCK_READ);
  const w2 = wordsOf(r2);
  const v2 = ref.disk.sectorVersions?.(r2);
  try {
    for (let q = 0; q < numHosts; q++) {
      const off = dblockSectorOffset(q + 1, g.sectorSize);
      if (off + g.sectorSize > r2.length) break;
      if (v2 && v2[2 + q] === 0) continue; // never written: all zero
      if (dblockIsZero(r2, off, w2) || !dblockValid(r2, off)) continue;
      const bk = decodeDblock(r2, off);
      if (bk.lver < nextLver) continue;
      if (bk.lver > nextLver) throw new BallotAbort(SANLK.DBLOCK_LVER, `ballot ${nextLver} phase 2: host_id ${q + 1} is at lver ${bk.lver}`);
      if (bk.mbal > ourMbal) throw new BallotAbort(SANLK.DBLOCK_MBAL, `ballot ${nextLver} phase 2: host_id ${q + 1} has mbal ${bk.mbal} > ${ourMbal}`);
    }
  } finally {
    ref.disk.release?.(r2);
  }
  return d2;
}

interface PaxosAcquireResult {
  leader: LeaderRecord;
  dblock: PaxosDblock;
  geometry: LeaseGeometry;
  sharedHosts: number[];
}

/**
 * How an acquire that got as far as a ballot ended. A failure after our ballot
 * started is returned, not thrown: our dblock may carry a proposal another host
 * can still commit, so the caller must retract (sanlock's T_RETRACT_PAXOS) before
 * it reports `error`. A failure before the ballot is thrown: nothing to undo.
 */
type PaxosAcquireOutcome =
  | ({ ok: true } & PaxosAcquireResult)
  | { ok: false; error: unknown; retract: LeaseGeometry };

/** The error a failed acquire reports, with the holder attached. */
function ownedError(rv: number, ref: ResourceRef, l: LeaderRecord, msg: string): LeaseError {
  return new LeaseError(rv, `${describe(ref)}: ${msg} (held by host_id ${l.ownerId} generation ${l.ownerGeneration}, lver ${l.lver})`, holderOf(l));
}

type AcquireOpts = AcquireOptions & { shared?: boolean; keepSharedMode?: boolean };

/** A phase's verdict that the acquire must start again from a fresh read of the lease. */
const RESTART = 'restart' as const;
type Restart = typeof RESTART;

/**
 * Phase "read leader", its verdict: may we run a ballot on the leader we read
 * at once, or only after its owner is found dead? Throws SANLK_ACQUIRE_LVER when
 * the caller asked for an lver the lease is not at.
 */
function mayRunBallot(ref: ResourceRef, host: PaxosHost, cur: LeaderRecord, opts: AcquireOpts): boolean {
  if (opts.force) return true;
  if (opts.lver !== undefined && opts.lver !== 0 && cur.lver !== opts.lver) {
    throw ownedError(SANLK.ACQUIRE_LVER, ref, cur, `lease is at lver ${cur.lver}, not ${opts.lver}`);
  }
  if (cur.timestamp === 0) return true;
  if (cur.ownerId === host.hostId && cur.ownerGeneration === host.generation) return true;
  if (cur.ownerId === host.hostId && cur.ownerGeneration < host.generation) return true;
  if (host.hooks?.ignoreOwnerLiveness) return true; // injected bug
  return false;
}

/**
 * Phase "wait for the owner": watch the owner's delta lease until the owner is
 * found dead (or gone, or its release is seen), then the ballot may run. Throws
 * SANLK_ACQUIRE_IDLIVE / OWNED_RETRY / LOCKSPACE while it lives; RESTART when
 * the leader changed meanwhile.
 */
async function waitForOwner(ref: ResourceRef, g: LeaseGeometry, host: PaxosHost, cur: LeaderRecord, opts: AcquireOpts): Promise<Restart | undefined> {
  const io = host.timeouts.ioTimeout;
  // Owner liveness through its delta lease.
  const ls = host.lockspace;
  if (!ls || !nameField(ls.name).equals(cur.spaceName)) {
    throw ownedError(SANLK.ACQUIRE_LOCKSPACE, ref, cur, `lockspace "${nameString(cur.spaceName)}" is not joined, cannot check the owner`);
  }
  const hs = ls.hostStatus(cur.ownerId);
  let waitStart: number;
  let lastTimestamp: number;
  if (hs && hs.lastCheck && hs.lastLive && hs.ownerId === cur.ownerId && hs.ownerGeneration === cur.ownerGeneration) {
    waitStart = hs.lastLive;
    lastTimestamp = hs.timestamp;
  } else {
    waitStart = host.clock.monotonicSeconds();
    lastTimestamp = 0;
  }
  for (;;) {
    let hl: LeaderRecord;
    try {
      hl = await ls.readHostLeader(cur.ownerId);
    } catch (e) {
      throw e instanceof LeaseError ? e : new LeaseError(SANLK.ACQUIRE_IDDISK, `cannot read delta lease of host_id ${cur.ownerId}: ${String(e)}`);
    }
    if (hl.timestamp === 0) return undefined;
    if (hl.ownerId !== cur.ownerId || hl.ownerGeneration > cur.ownerGeneration) return undefined;
    if (!lastTimestamp) {
      lastTimestamp = hl.timestamp;
    } else {
      if (hl.timestamp !== lastTimestamp || (hs && hs.lastLive && hs.lastCheck === hs.lastLive)) {
        if (cur.writeId !== cur.ownerId) {
          // Owner may have released while another host's commit overwrote its release.
          const sec = await diskRead(ref.disk, ref.offset + dblockSectorOffset(cur.ownerId, g.sectorSize), g.sectorSize, io, 'owner_dblock', SANLK.DBLOCK_READ).catch(
            () => undefined,
          );
          if (sec && dblockValid(sec, 0) && decodeDblock(sec, 0).flags & DBLOCK_FL_RELEASED) return undefined;
        }
        throw ownedError(SANLK.ACQUIRE_IDLIVE, ref, cur, 'owner is alive');
      }
      const otherIo = hs?.ioTimeout || hl.ioTimeout || io;
      const dead = calcHostDeadSeconds(otherIo, host.timeouts.watchdogFireTimeout);
      if (host.clock.monotonicSeconds() - waitStart > dead) return undefined;
      if (opts.ownerNowait) throw ownedError(SANLK.ACQUIRE_OWNED_RETRY, ref, cur, 'owner may be alive, not waiting');
    }
    await host.clock.sleep(1000);
    const tmp = await leaderRead(ref, g, host.hostId, io);
    if (!leadersEqual(cur, tmp)) return RESTART;
  }
}

/** Injected bug grant-without-ballot: commit ourselves as owner of a free lease without Disk Paxos. */
async function commitWithoutBallot(ref: ResourceRef, g: LeaseGeometry, host: PaxosHost, cur: LeaderRecord, opts: AcquireOpts): Promise<PaxosAcquireOutcome> {
  const nextLver = cur.lver + 1;
  const d: PaxosDblock = { mbal: host.hostId, bal: host.hostId, inp: host.hostId, inp2: host.generation, inp3: host.clock.monotonicSeconds(), lver: nextLver, checksum: 0, flags: 0 };
  const nl = cloneLeader(cur);
  nl.lver = nextLver;
  nl.ownerId = host.hostId;
  nl.ownerGeneration = host.generation;
  nl.timestamp = d.inp3;
  nl.writeId = host.hostId;
  nl.writeGeneration = host.generation;
  nl.writeTimestamp = d.inp3;
  if (opts.shared) nl.flags |= LFL_SHORT_HOLD;
  else nl.flags &= ~LFL_SHORT_HOLD;
  await writeLeader(ref, g, nl, hostIo(host), 'paxos_acquire_commit');
  encodeLeader(nl);
  return { ok: true, leader: nl, dblock: d, geometry: g, sharedHosts: [] };
}

function hostIo(host: PaxosHost): number {
  return host.timeouts.ioTimeout;
}

/**
 * Phase "choose ballot": our first ballot number, above every mbal we read,
 * and ours: host_id modulo max_hosts (sanlock's our_mbal).
 */
function firstBallotNumber(rd: LeaseRead, host: PaxosHost): number {
  const cur = rd.leader;
  return rd.maxMbal === 0 ? host.hostId : rd.maxMbal - (rd.maxMbal % cur.maxHosts) + cur.maxHosts + host.hostId;
}

/**
 * The leader we are about to run a ballot for is already at the next lver:
 * another host committed. Ours when it committed our own proposal (and not
 * one we retracted: RESTART then); SANLK_ACQUIRE_OWNED when it is another's.
 */
async function claimCommittedByOther(
  ref: ResourceRef, g: LeaseGeometry, host: PaxosHost, cur: LeaderRecord, tmp: LeaderRecord, noClaimUpTo: number,
): Promise<PaxosAcquireOutcome | Restart> {
  const nextLver = cur.lver + 1;
  if (tmp.ownerId === host.hostId && tmp.ownerGeneration === host.generation) {
    // Another host committed our proposal. We did not finish a phase 1
    // of our own, so collect SHARED mode blocks from a fresh read: any
    // SH holder that could conflict wrote its mode block before this read.
    const area = await diskRead(ref.disk, ref.offset, g.alignSize, hostIo(host), 'committed_by_other', SANLK.DBLOCK_READ);
    const sharedHosts: number[] = [];
    for (let q = 0; q < cur.numHosts && dblockSectorOffset(q + 1, g.sectorSize) + g.sectorSize <= area.length; q++) {
      if (decodeModeBlock(area, dblockSectorOffset(q + 1, g.sectorSize) + MBLOCK_OFFSET).flags & MBLOCK_SHARED) sharedHosts.push(q + 1);
    }
    const own = dblockSectorOffset(host.hostId, g.sectorSize);
    const ownDblock = decodeDblock(area, own);
    if (ownDblock.flags & DBLOCK_FL_RELEASED || tmp.lver <= noClaimUpTo) {
      // The committed proposal is one we retracted after an earlier failed acquire:
      // other hosts see our dblock RELEASED and may take the lease over, so it is not
      // ours to claim. Start again: the leader names us, so a new ballot runs.
      return RESTART;
    }
    return { ok: true, leader: tmp, dblock: ownDblock, geometry: g, sharedHosts };
  }
  throw ownedError(SANLK.ACQUIRE_OWNED, ref, tmp, `lver ${nextLver} was committed by another host`);
}

/** Phase "commit", the record: the leader naming the value our ballot chose. */
function committedLeader(cur: LeaderRecord, ballot: BallotResult, host: PaxosHost, opts: AcquireOpts): LeaderRecord {
  const nl = cloneLeader(cur);
  nl.lver = ballot.dblock.lver;
  nl.ownerId = ballot.dblock.inp;
  nl.ownerGeneration = ballot.dblock.inp2;
  nl.timestamp = ballot.dblock.inp3;
  nl.writeId = host.hostId;
  nl.writeGeneration = host.generation;
  nl.writeTimestamp = host.clock.monotonicSeconds();
  if (opts.numHosts) nl.numHosts = opts.numHosts;
  if (nl.ownerId === host.hostId) {
    if (opts.shared) nl.flags |= LFL_SHORT_HOLD;
    else nl.flags &= ~LFL_SHORT_HOLD;
  }
  return nl;
}

/**
 * Phase "commit": write the leader our ballot chose. The lease is ours only if
 * the value was our own proposal of this generation, and not one we retracted
 * (then we give the lver back and RESTART: the next ballot runs at the next lver).
 */
async function commitBallot(
  ref: ResourceRef, g: LeaseGeometry, host: PaxosHost, cur: LeaderRecord, ballot: BallotResult, opts: AcquireOpts, noClaimUpTo: number,
): Promise<PaxosAcquireOutcome | Restart> {
  const nl = committedLeader(cur, ballot, host, opts);
  try {
    await writeLeader(ref, g, nl, hostIo(host), 'paxos_acquire_commit');
  } catch (e) {
    return { ok: false, error: e, retract: g };
  }
  encodeLeader(nl); // refresh nl.checksum
  if (nl.ownerId !== host.hostId || nl.ownerGeneration !== host.generation) {
    // Also when the proposal was our own, from an earlier generation (made before this
    // host restarted): that owner is dead to every other host, which may take the lease
    // over at once. The next acquire sees an older generation of ours and runs a new ballot.
    throw ownedError(SANLK.ACQUIRE_OTHER, ref, nl, nl.ownerId === host.hostId ? 'ballot committed a proposal of an earlier generation of this host' : 'ballot committed an earlier proposal of another host');
  }
  if (nl.lver <= noClaimUpTo) {
    // The proposal we committed is one we retracted (see noClaimUpTo): not ours to
    // claim. Give the lver back (we wrote this leader) and run a ballot at the next.
    try {
      await paxosLeaseRelease(ref, g, host, nl);
    } catch (e) {
      return { ok: false, error: e, retract: g };
    }
    return RESTART;
  }
  return { ok: true, leader: nl, dblock: ballot.dblock, geometry: g, sharedHosts: ballot.sharedHosts };
}

/**
 * One attempt on the leader `rd` read: wait for its owner if it has a live one,
 * then ballots at the next lver (phase 1 and 2 in runBallot) until one commits
 * or a higher mbal stops repeating; RESTART when the lease moved meanwhile.
 */
async function acquireAttempt(
  ref: ResourceRef, g: LeaseGeometry, host: PaxosHost, rd: LeaseRead, opts: AcquireOpts, noClaimUpTo: number,
): Promise<PaxosAcquireOutcome | Restart> {
  const cur = rd.leader;
  let reuseRead = true;
  if (!mayRunBallot(ref, host, cur, opts)) {
    if ((await waitForOwner(ref, g, host, cur, opts)) === RESTART) return RESTART;
    // After waiting on the owner, sanlock re-reads the leader before the ballot.
    reuseRead = false;
  }

  const nextLver = cur.lver + 1;
  if (host.hooks?.grantWithoutBallot && cur.timestamp === 0) return commitWithoutBallot(ref, g, host, cur, opts);
  let ourMbal = firstBallotNumber(rd, host);
  for (let tries = 0; ; tries++) {
    let tmp: LeaderRecord;
    if (reuseRead) {
      reuseRead = false;
      tmp = cur;
    } else {
      tmp = await leaderRead(ref, g, host.hostId, hostIo(host));
    }
    if (tmp.lver === nextLver) return claimCommittedByOther(ref, g, host, cur, tmp, noClaimUpTo);
    if (tmp.lver > nextLver) return RESTART;
    if (!leadersEqual(cur, tmp)) return RESTART;
    // A ballot number belongs to one host: it is host_id modulo max_hosts (sanlock's our_mbal).
    assert(!(cur.maxHosts > 0) || ourMbal % cur.maxHosts === host.hostId % cur.maxHosts,
      () => `ballot ${ourMbal} of host_id ${host.hostId} is not ours (max_hosts ${cur.maxHosts})`);
    let ballot: BallotResult;
    try {
      ballot = await runBallot(ref, g, host, cur.numHosts, nextLver, ourMbal, !!opts.keepSharedMode);
    } catch (e) {
      // Only a higher mbal is worth another ballot. Deliberate deviation: sanlock 3.8.5
      // also retries after SANLK_DBLOCK_LVER, but a dblock at a higher lver means the
      // leader we read is stale (e.g. an old commit landed late), and retrying the same
      // lver aborts forever; we fail instead (lvmlockd maps SANLK_DBLOCK_LVER to -EAGAIN,
      // and the caller's next attempt re-reads everything). Found by the simulator.
      if (e instanceof BallotAbort && e.rv === SANLK.DBLOCK_MBAL) {
        await host.clock.sleep(Math.floor(host.random.next() * 1000));
        ourMbal += cur.maxHosts;
        continue;
      }
      // Our dblock may carry a proposal that another host can still commit.
      return { ok: false, error: e, retract: g };
    }
    return commitBallot(ref, g, host, cur, ballot, opts, noClaimUpTo);
  }
}

/**
 * sanlock paxos_lease_acquire: read the lease (leader and dblocks), then an
 * attempt (acquireAttempt: wait for a live owner, choose a ballot number, run
 * phase 1 and 2, commit), from a fresh read whenever an attempt finds that
 * the lease moved.
 */
async function paxosLeaseAcquire(ref: ResourceRef, host: PaxosHost, opts: AcquireOpts): Promise<PaxosAcquireOutcome> {
  let g = await refGeometry(ref, hostIo(host));
  // Our dblock marked RELEASED at lver L tells other hosts that we do not own
  // lver L, and they may run a ballot for L+1 on that word (sanlock's "owner
  // dblock released" check). A proposal of ours that an earlier, retracted
  // acquire left in the dblocks can still be committed at L, by another host
  // or by one of our own ballots that adopts it; our ballots' writes then hide
  // the RELEASED flag. So no commit at an lver up to L may be claimed by this
  // acquire: it starts again, and the leader naming us lets it run at L+1.
  let noClaimUpTo = 0;
  for (let restarts = 0; ; restarts++) {
    if (restarts > 1000) throw new LeaseError(SANLK.ERROR, `${describe(ref)}: acquire restarted too often`);
    // Phase "read leader".
    const rd = await paxosLeaseRead(ref, g, host.hostId, hostIo(host));
    g = rd.geometry;
    if (rd.ownReleasedLver > noClaimUpTo) noClaimUpTo = rd.ownReleasedLver;
    const out = await acquireAttempt(ref, g, host, rd, opts, noClaimUpTo);
    if (out !== RESTART) return out;
  }
}

/**
 * After a failed acquire that got as far as a ballot: make sure we do not
 * end up owning the lease (sanlock's R_ERASE_ALL on release). Mark our
 * dblock RELEASED so others may take over even if they commit our proposal,
 * and clear the leader if it names us and we wrote it. Best effort.
 */
async function retract(ref: ResourceRef, host: PaxosHost, g: LeaseGeometry): Promise<void> {
  const io = host.timeouts.ioTimeout;
  try {
    const sec = await diskRead(ref.disk, ref.offset + dblockSectorOffset(host.hostId, g.sectorSize), g.sectorSize, io, 'retract_read', SANLK.DBLOCK_READ);
    if (dblockValid(sec, 0)) {
      const d = decodeDblock(sec, 0);
      await writeHostBlock(ref, g, host.hostId, { ...d, flags: DBLOCK_FL_RELEASED }, undefined, io, 'retract_dblock');
    }
  } catch {
    /* best effort */
  }
  try {
    const leader = await leaderRead(ref, g, 0, io);
    if (leader.timestamp && leader.ownerId === host.hostId && leader.ownerGeneration === host.generation) {
      await paxosLeaseRelease(ref, g, host, leader);
    }
  } catch {
    /* best effort */
  }
}

/** sanlock paxos_lease_release: clear the leader's timestamp if we wrote it. */
async function paxosLeaseRelease(
  ref: ResourceRef,
  g: LeaseGeometry,
  host: PaxosHost,
  last: LeaderRecord | undefined,
  rename?: string,
): Promise<LeaderRecord> {
  const io = host.timeouts.ioTimeout;
  const leader = await leaderRead(ref, g, 0, io);
  const l = last ?? leader;
  if (leader.writeId !== host.hostId) return leader;
  if (leader.lver !== l.lver) {
    throw new LeaseError(SANLK.RELEASE_LVER, `${describe(ref)}: lver is ${leader.lver}, we held ${l.lver}`, holderOf(leader));
  }
  if (leader.timestamp === 0) throw new LeaseError(SANLK.RELEASE_OWNER, `${describe(ref)}: lease is already free`, holderOf(leader));
  if (leader.ownerId !== host.hostId || leader.ownerGeneration !== host.generation) {
    throw new LeaseError(SANLK.RELEASE_OWNER, `${describe(ref)}: owned by host_id ${leader.ownerId} generation ${leader.ownerGeneration}, not us`, holderOf(leader));
  }
  if (!leadersEqual(leader, l)) throw new LeaseError(SANLK.RELEASE_OWNER, `${describe(ref)}: leader changed since we acquired it`, holderOf(leader));
  const nl = cloneLeader(leader);
  if (rename !== undefined) nl.resourceName = nameField(rename);
  nl.timestamp = 0;
  nl.writeId = host.hostId;
  nl.writeGeneration = host.generation;
  nl.writeTimestamp = host.clock.monotonicSeconds();
  nl.flags &= ~LFL_SHORT_HOLD;
  await writeLeader(ref, g, nl, io, 'paxos_release');
  encodeLeader(nl);
  return nl;
}

/** sanlock clear_dead_shared: wipe SH mode blocks of dead hosts; count live ones. */
async function clearDeadShared(
  ref: ResourceRef,
  g: LeaseGeometry,
  host: PaxosHost,
  sharedHosts: number[],
): Promise<Array<{ hostId: number; generation: number }>> {
  const io = host.timeouts.ioTimeout;
  const live: Array<{ hostId: number; generation: number }> = [];
  for (const h of sharedHosts) {
    if (h === host.hostId) continue;
    const sec = await diskRead(ref.disk, ref.offset + dblockSectorOffset(h, g.sectorSize), g.sectorSize, io, 'read_mode_block', SANLK.DBLOCK_READ);
    const mb = decodeModeBlock(sec);
    if (!(mb.flags & MBLOCK_SHARED) || !mb.generation) continue;
    const alive = host.lockspace ? host.lockspace.hostLive(h, mb.generation) : true;
    if (alive) {
      live.push({ hostId: h, generation: mb.generation });
      continue;
    }
    await writeHostBlock(ref, g, h, undefined, undefined, io, 'clear_dead_shared');
  }
  return live;
}

/**
 * Acquire a resource lease in `ex` or `sh` mode (sanlock acquire_token).
 * Errors are LeaseErrors with sanlock's rv; `err.holder` names the holder:
 * SANLK_ACQUIRE_IDLIVE / OWNED / OTHER / OWNED_RETRY / LOCKSPACE for an EX
 * owner, -EAGAIN (SANLK.EAGAIN) with `holder.sharedHolders` for live SH holders.
 */
export async function acquireResource(host: PaxosHost, ref: ResourceRef, opts: AcquireOptions = {}): Promise<ResourceLease> {
  // Our host_id lease must be current at the start and still at the grant: a
  // daemon paused past the renewal-fail time is about to be counted dead by
  // the other hosts, who may then take what we hold.
  if (host.lockspace?.leaseStale()) {
    throw new LeaseError(SANLK.ACQUIRE_LOCKSPACE, `${describe(ref)}: our host_id ${host.hostId} lease is not current (lockspace failing or not held)`);
  }
  const lease = await acquireResourceUnchecked(host, ref, opts);
  if (host.lockspace?.leaseStale()) {
    await releaseResource(host, lease).catch(() => undefined);
    throw new LeaseError(SANLK.ACQUIRE_LOCKSPACE, `${describe(ref)}: our host_id ${host.hostId} lease went stale while acquiring; released`);
  }
  return lease;
}

async function acquireResourceUnchecked(host: PaxosHost, ref: ResourceRef, opts: AcquireOptions): Promise<ResourceLease> {
  const mode = opts.mode ?? 'ex';
  const shared = mode === 'sh';
  const io = host.timeouts.ioTimeout;
  let shRetries = 0;
  let res: PaxosAcquireResult;
  for (;;) {
    let failed: { error: unknown; retract?: LeaseGeometry };
    try {
      const out = await paxosLeaseAcquire(ref, host, { ...opts, shared });
      if (out.ok) {
        res = out;
        break;
      }
      failed = out;
    } catch (e) {
      failed = { error: e };
    }
    const e = failed.error;
    if (
      shared &&
      isLeaseError(e) &&
      (e.rv === SANLK.ACQUIRE_IDLIVE || e.rv === SANLK.ACQUIRE_OWNED || e.rv === SANLK.ACQUIRE_OTHER)
    ) {
      const { leader } = await readResourceLeader(ref, 0, io).catch(() => ({ leader: undefined }));
      if (leader && leader.flags & LFL_SHORT_HOLD) {
        if (shRetries++ < SH_RETRIES) {
          await host.clock.sleep(Math.floor(host.random.next() * 1000));
          continue;
        }
        throw new LeaseError(SANLK.ACQUIRE_SHRETRY, `${describe(ref)}: another host keeps the lease busy with shared acquires`, e.holder);
      }
    }
    if (failed.retract) await retract(ref, host, failed.retract);
    throw e;
  }
  const g = res.geometry;
  const lease: ResourceLease = { ref: { ...ref, sectorSize: g.sectorSize, alignSize: g.alignSize }, geometry: g, mode, leader: res.leader, dblock: res.dblock, lver: res.leader.lver };
  if (shared) {
    await writeHostBlock(ref, g, host.hostId, { ...res.dblock, flags: DBLOCK_FL_RELEASED }, { flags: MBLOCK_SHARED, generation: host.generation }, io, 'sh_mode_block');
    lease.leader = await paxosLeaseRelease(ref, g, host, res.leader);
    return lease;
  }
  if (opts.directMode) return lease;
  const others = host.hooks?.ignoreSharedHolders ? [] : res.sharedHosts.filter((h) => h !== host.hostId);
  if (others.length) {
    const live = await clearDeadShared(ref, g, host, others);
    if (live.length) {
      await releaseResource(host, lease).catch(() => undefined);
      throw new LeaseError(SANLK.EAGAIN, `${describe(ref)}: held shared by host_id ${live.map((l) => l.hostId).join(',')}`, {
        ...holderOf(res.leader),
        hostId: live[0]!.hostId,
        generation: live[0]!.generation,
        sharedHolders: live,
      });
    }
  }
  return lease;
}

/**
 * Release a held lease (sanlock _release_token). EX: our dblock is marked
 * RELEASED and the leader's timestamp cleared if we wrote the leader. SH:
 * our dblock is marked RELEASED and our mode block cleared.
 */
export async function releaseResource(host: PaxosHost, lease: ResourceLease, opts: { rename?: string } = {}): Promise<void> {
  const io = host.timeouts.ioTimeout;
  const g = lease.geometry;
  try {
    await writeHostBlock(lease.ref, g, host.hostId, { ...lease.dblock, flags: DBLOCK_FL_RELEASED }, undefined, io, 'release_dblock');
  } catch (e) {
    if (lease.mode === 'sh') throw e;
    // EX: sanlock ignores this failure and still clears the leader.
  }
  if (lease.mode === 'sh') {
    if (lease.eraseAll) {
      // A half-done convert may have left the leader naming us.
      try {
        const leader = await leaderRead(lease.ref, g, 0, io);
        if (leader.timestamp && leader.ownerId === host.hostId && leader.ownerGeneration === host.generation) {
          lease.leader = await paxosLeaseRelease(lease.ref, g, host, leader);
        }
      } catch {
        /* best effort, as sanlock */
      }
    }
    return;
  }
  lease.leader = await paxosLeaseRelease(lease.ref, g, host, lease.leader, opts.rename);
}

/** Convert a held lease between ex and sh (sanlock convert_token). */
export async function convertResource(host: PaxosHost, lease: ResourceLease, mode: LeaseMode, opts: { ownerNowait?: boolean } = {}): Promise<void> {
  const io = host.timeouts.ioTimeout;
  const g = lease.geometry;
  if (mode === lease.mode) return;
  if (mode === 'sh') {
    // From here on we may only rely on SH: once our SHARED mode block and
    // RELEASED dblock are on disk (one sector, written atomically), other
    // hosts may take SH; if the write did not land we still own EX, which
    // covers SH. So the lease counts as SH even if a step below fails.
    lease.mode = 'sh';
    lease.eraseAll = true;
    await writeHostBlock(lease.ref, g, host.hostId, { ...lease.dblock, flags: DBLOCK_FL_RELEASED }, { flags: MBLOCK_SHARED, generation: host.generation }, io, 'ex2sh');
    lease.leader = await paxosLeaseRelease(lease.ref, g, host, lease.leader);
    lease.eraseAll = false;
    return;
  }
  const res = await paxosLeaseAcquire(lease.ref, host, { keepSharedMode: true, ...(opts.ownerNowait ? { ownerNowait: true } : {}) });
  if (!res.ok) {
    // Keep our SH; make sure the half-done ex attempt cannot leave us as owner.
    try {
      const sec = await diskRead(lease.ref.disk, lease.ref.offset + dblockSectorOffset(host.hostId, g.sectorSize), g.sectorSize, io, 'retract_read', SANLK.DBLOCK_READ);
      if (dblockValid(sec, 0)) {
        const d = decodeDblock(sec, 0);
        await writeHostBlock(lease.ref, g, host.hostId, { ...d, flags: DBLOCK_FL_RELEASED }, { flags: MBLOCK_SHARED, generation: host.generation }, io, 'retract_sh2ex');
      }
      const leader = await leaderRead(lease.ref, g, 0, io);
      if (leader.timestamp && leader.ownerId === host.hostId && leader.ownerGeneration === host.generation) {
        await paxosLeaseRelease(lease.ref, g, host, leader);
      }
    } catch {
      /* best effort */
    }
    throw res.error;
  }
  lease.leader = res.leader;
  lease.dblock = res.dblock;
  lease.lver = res.leader.lver;
  const others = host.hooks?.ignoreSharedHolders ? [] : res.sharedHosts.filter((h) => h !== host.hostId);
  if (others.length) {
    const live = await clearDeadShared(lease.ref, g, host, others);
    if (live.length) {
      lease.leader = await paxosLeaseRelease(lease.ref, g, host, res.leader);
      throw new LeaseError(SANLK.EAGAIN, `${describe(lease.ref)}: cannot convert to ex, held shared by host_id ${live.map((l) => l.hostId).join(',')}`, {
        ...holderOf(res.leader),
        hostId: live[0]!.hostId,
        generation: live[0]!.generation,
        sharedHolders: live,
      });
    }
  }
  // Clear our SHARED mode block. Like sanlock, a failure here is ignored: a
  // stale SH block of ours only makes EX acquirers of other hosts wait.
  await writeHostBlock(lease.ref, g, host.hostId, res.dblock, undefined, io, 'sh2ex_clear_mode').catch(() => undefined);
  lease.mode = 'ex';
}

/**
 * Ask the holder of a lease to give it up (sanlock request_token): write
 * the request record for `lver` (0 = current lver + 1). The caller should
 * then set the owner's bit in its lockspace bitmap (Lockspace.setHostBit).
 * Returns the owner host_id (0 when the lease is free: nothing written).
 */
export async function requestResource(host: PaxosHost, ref: ResourceRef, lver: number, forceMode: number): Promise<number> {
  const io = host.timeouts.ioTimeout;
  const { leader, geometry: g } = await readResourceLeader(ref, 0, io);
  if (leader.timestamp === 0) return 0;
  const want = lver || leader.lver + 1;
  if (leader.lver >= want) throw new LeaseError(SANLK.REQUEST_OLD, `${describe(ref)}: lease is already at lver ${leader.lver}`);
  const sec = await diskRead(ref.disk, ref.offset + g.sectorSize, g.sectorSize, io, 'request_read', SANLK.LEADER_READ);
  const rr = decodeRequest(sec);
  if (rr.magic !== REQ_DISK_MAGIC) throw new LeaseError(SANLK.REQUEST_MAGIC, `${describe(ref)}: bad request record magic 0x${rr.magic.toString(16)}`);
  if ((rr.version & VERSION_MAJOR_MASK) >>> 0 !== REQ_DISK_VERSION_MAJOR) {
    throw new LeaseError(SANLK.REQUEST_VERSION, `${describe(ref)}: unsupported request record version 0x${rr.version.toString(16)}`);
  }
  if (rr.lver > want) throw new LeaseError(SANLK.REQUEST_LVER, `${describe(ref)}: a request for lver ${rr.lver} is already pending`);
  const out: RequestRecord = { magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver: want, forceMode };
  await diskWrite(ref.disk, ref.offset + g.sectorSize, requestSector(out, g.sectorSize), io, 'request_write', SANLK.LEADER_WRITE);
  host.lockspace?.setHostBit(leader.ownerId);
  return leader.ownerId;
}

/** Read the request record of a lease (owner side: examine). */
export async function readRequest(ref: ResourceRef, io = DEFAULT_IO_TIMEOUT): Promise<RequestRecord> {
  const g = await refGeometry(ref, io);
  const sec = await diskRead(ref.disk, ref.offset + g.sectorSize, g.sectorSize, io, 'request_read', SANLK.LEADER_READ);
  return decodeRequest(sec);
}

/** Owner side of the request mechanism: should we give up `lease`? */
export function requestWantsRelease(req: RequestRecord, lease: ResourceLease): boolean {
  return req.magic === REQ_DISK_MAGIC && req.forceMode !== 0 && req.lver > lease.lver;
}

/** A PaxosHost without a lockspace (like `sanlock direct`), for tools. */
export function directHost(hostId: number, generation: number, clock: Clock, random: Random, ioTimeout = DEFAULT_IO_TIMEOUT): PaxosHost {
  return { hostId, generation, clock, random, timeouts: deriveTimeouts(ioTimeout) };
}

/** Release as `sanlock direct release` does when given our host_id: uses the on-disk leader and dblock. */
export async function releaseResourceDirect(host: PaxosHost, ref: ResourceRef): Promise<LeaderRecord> {
  const io = host.timeouts.ioTimeout;
  const { leader, geometry: g } = await readResourceLeader(ref, 0, io);
  if (host.hostId === 0) return leader; // sanlock 3.8.5 behaviour: nothing written
  const sec = await diskRead(ref.disk, ref.offset + dblockSectorOffset(host.hostId, g.sectorSize), g.sectorSize, io, 'own_dblock', SANLK.DBLOCK_READ);
  const d = decodeDblock(sec);
  if (d.mbal || d.inp || d.lver) {
    await writeHostBlock(ref, g, host.hostId, { ...d, flags: DBLOCK_FL_RELEASED }, undefined, io, 'release_dblock').catch(() => undefined);
  }
  return paxosLeaseRelease(ref, g, host, undefined);
}
