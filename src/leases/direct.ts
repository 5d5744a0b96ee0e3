/**
 * Inspection and repair helpers behind `leasectl direct` (the equivalents of
 * sanlock's direct.c): dump, read_leader, and the lvmlockd free-slot scan.
 * Output formats match `sanlock direct` 3.8.5 character for character.
 */
import { Disk } from '../io/disk';
import { diskRead } from './delta-lease';
import { LeaseError, SANLK } from './errors';
import {
  DELTA_DISK_MAGIC,
  HOSTID_BITMAP_OFFSET,
  HOSTID_BITMAP_SIZE,
  LEADER_RECORD_SIZE,
  LeaderRecord,
  MBLOCK_OFFSET,
  PAXOS_DBLOCK_FIRST_SECTOR,
  dblockSectorOffset,
  MBLOCK_SHARED,
  PAXOS_DISK_MAGIC,
  decodeDblock,
  decodeLeader,
  decodeModeBlock,
  decodeRequest,
  nameString,
  testIdBit,
  verifyPaxosLeader,
  nameField,
} from './ondisk';
import { MIB, alignFromFlags, alignSizeOld, isSectorSize, maxHostsFor } from './sizes';

/** Strip sanlock's "\:" escapes and split on unescaped colons. */
export function splitEscaped(arg: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < arg.length; i++) {
    const c = arg[i]!;
    if (c === '\\' && i + 1 < arg.length) {
      cur += arg[++i];
      continue;
    }
    if (c === ':') {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts;
}

/** An offset like sanlock accepts: bytes, or a number with an "M" suffix (MiB). */
export function parseOffset(s: string): number {
  const m = /^(\d+)M$/.exec(s);
  const n = m ? Number(m[1]) * MIB : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) throw new LeaseError(SANLK.EINVAL, `invalid offset "${s}"`);
  return n;
}

export interface LockspaceArg {
  name: string;
  hostId: number;
  path: string;
  offset: number;
}

export interface ResourceArg {
  lockspace: string;
  resource: string;
  path: string;
  offset: number;
  lver: number;
}

function checkName(n: string, what: string): string {
  if (!n) throw new LeaseError(SANLK.EINVAL, `empty ${what} name`);
  if (Buffer.byteLength(n) > 48) throw new LeaseError(SANLK.EINVAL, `${what} name "${n}" is longer than 48 bytes`);
  return n;
}

/** -s LOCKSPACE:HOST_ID:PATH:OFFSET */
export function parseLockspaceArg(arg: string): LockspaceArg {
  const p = splitEscaped(arg);
  if (p.length < 3) throw new LeaseError(SANLK.EINVAL, `invalid lockspace "${arg}" (want NAME:HOST_ID:PATH:OFFSET)`);
  const hostId = Number(p[1]);
  if (!Number.isInteger(hostId) || hostId < 0) throw new LeaseError(SANLK.EINVAL, `invalid host_id "${p[1]}"`);
  return { name: checkName(p[0]!, 'lockspace'), hostId, path: p[2]!, offset: p[3] !== undefined ? parseOffset(p[3]) : 0 };
}

/** -r LOCKSPACE:RESOURCE:PATH:OFFSET[:LVER] */
export function parseResourceArg(arg: string): ResourceArg {
  const p = splitEscaped(arg);
  if (p.length < 3) throw new LeaseError(SANLK.EINVAL, `invalid resource "${arg}" (want LOCKSPACE:RESOURCE:PATH:OFFSET[:LVER])`);
  const lver = p[4] !== undefined && p[4] !== '' ? Number(p[4]) : 0;
  if (!Number.isSafeInteger(lver) || lver < 0) throw new LeaseError(SANLK.EINVAL, `invalid lver "${p[4]}"`);
  return {
    lockspace: checkName(p[0]!, 'lockspace'),
    resource: checkName(p[1]!, 'resource'),
    path: p[2]!,
    offset: p[3] !== undefined ? parseOffset(p[3]) : 0,
    lver,
  };
}

/** dump path syntax: PATH[:OFFSET[:SIZE]] (M suffix allowed). */
export function parseDumpPath(arg: string): { path: string; offset: number; size: number } {
  const p = splitEscaped(arg);
  return {
    path: p[0]!,
    offset: p[1] !== undefined && p[1] !== '' ? parseOffset(p[1]) : 0,
    size: p[2] !== undefined && p[2] !== '' ? parseOffset(p[2]) : 0,
  };
}

function u(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

async function tryRead(disk: Disk, offset: number, len: number, io: number): Promise<Buffer | undefined> {
  try {
    return await diskRead(disk, offset, len, io, 'dump', SANLK.LEADER_READ);
  } catch {
    return undefined;
  }
}

async function leaderSizesAt(disk: Disk, offset: number, io: number): Promise<{ sectorSize: number; alignSize: number } | undefined> {
  const b = await tryRead(disk, offset, Math.max(4096, disk.sectorSize), io);
  if (!b) return undefined;
  const l = decodeLeader(b);
  if (l.magic !== DELTA_DISK_MAGIC && l.magic !== PAXOS_DISK_MAGIC) return undefined;
  const align = alignFromFlags(l.flags) || (isSectorSize(l.sectorSize) ? alignSizeOld(l.sectorSize) : 0);
  if (!isSectorSize(l.sectorSize) || !align) return undefined;
  return { sectorSize: l.sectorSize, alignSize: align };
}

export interface DumpOptions {
  /** sanlock -f: 1 adds bitmap bits / request fields, 2 adds dblocks. */
  forceMode?: number;
  sectorSize?: number;
  alignSize?: number;
  ioTimeout?: number;
}

/** `sanlock direct dump PATH[:OFFSET[:SIZE]] [-f N]`: returns the text and an exit status (0 ok). */
export async function directDump(disk: Disk, startOffset: number, dumpSize: number, opts: DumpOptions = {}): Promise<{ rv: number; text: string }> {
  const io = opts.ioTimeout ?? 10;
  const force = opts.forceMode ?? 0;
  let out = '';
  if (startOffset % MIB) out += 'WARNING: dump offset should be a multiple of 1048576 bytes.\n';
  let sectorSize = opts.sectorSize ?? 0;
  let alignSize = opts.alignSize ?? 0;
  if (!sectorSize || !alignSize) {
    let off = startOffset;
    for (let i = 0; i < 1024; i++) {
      const s = await leaderSizesAt(disk, off, io);
      if (s) {
        sectorSize = sectorSize || s.sectorSize;
        alignSize = alignSize || s.alignSize;
        break;
      }
      off += MIB;
      if (dumpSize && off >= startOffset + dumpSize) break;
    }
    if (!sectorSize || !alignSize) {
      out += 'Cannot find sector_size and align_size, set with -A and -Z.\n';
      return { rv: -1, text: out };
    }
  }
  let maxHosts: number;
  try {
    maxHosts = maxHostsFor(sectorSize, alignSize);
  } catch (e) {
    return { rv: SANLK.EINVAL, text: out + `${(e as Error).message}\n` };
  }
  const sectorCount = alignSize / sectorSize;
  out += `${'offset'.padStart(8)} ${'lockspace'.padStart(36)} ${'resource'.padStart(48)} ${'timestamp'.padStart(10)} ${'own'.padStart(4)} ${'gen'.padStart(4)} lver`;
  if (force) out += '/req/mode';
  out += '\n';
  const endSector = dumpSize ? Math.floor(dumpSize / sectorSize) : 0;
  const devSize = await disk.size();
  for (let sectorNr = 0; endSector === 0 || sectorNr < endSector; sectorNr += sectorCount) {
    const at = startOffset + sectorNr * sectorSize;
    let data = at + alignSize <= devSize ? await tryRead(disk, at, alignSize, io) : undefined;
    if (!data) {
      // Past the end (or unreadable): sanlock sees a zeroed first sector.
      if (at + sectorSize <= devSize) {
        const first = await tryRead(disk, at, sectorSize, io);
        data = Buffer.alloc(alignSize);
        first?.copy(data);
      } else {
        data = Buffer.alloc(alignSize);
      }
    }
    const magic = data.readUInt32LE(0);
    if (magic === DELTA_DISK_MAGIC) {
      for (let i = 0; i < sectorCount; i++) {
        const off = i * sectorSize;
        if (!data.readUInt32LE(off)) continue;
        let lr: LeaderRecord;
        try {
          lr = decodeLeader(data, off);
        } catch {
          continue;
        }
        if (!lr.ownerId && !lr.ownerGeneration) continue;
        out += `${u(startOffset + (sectorNr + i) * sectorSize, 8)} ${nameString(lr.spaceName).padStart(36)} ${nameString(lr.resourceName).padStart(48)} ${u(lr.timestamp, 10)} ${u(lr.ownerId, 4)} ${u(lr.ownerGeneration, 4)}`;
        if (force) {
          const bitmap = data.subarray(off + HOSTID_BITMAP_OFFSET, off + HOSTID_BITMAP_OFFSET + HOSTID_BITMAP_SIZE);
          for (let b = 0; b < maxHosts; b++) if (testIdBit(bitmap, b + 1)) out += ` ${b + 1}`;
        }
        out += '\n';
      }
    } else if (magic === PAXOS_DISK_MAGIC) {
      let lr: LeaderRecord;
      try {
        lr = decodeLeader(data, 0);
      } catch {
        break;
      }
      out += `${u(startOffset + sectorNr * sectorSize, 8)} ${nameString(lr.spaceName).padStart(36)} ${nameString(lr.resourceName).padStart(48)} ${u(lr.timestamp, 10)} ${u(lr.ownerId, 4)} ${u(lr.ownerGeneration, 4)} ${lr.lver}`;
      if (force) {
        const rr = decodeRequest(data, sectorSize);
        out += `/${rr.lver}/${rr.forceMode}`;
      }
      out += '\n';
      const n = Math.min(lr.numHosts, sectorCount - PAXOS_DBLOCK_FIRST_SECTOR);
      for (let i = 0; i < n; i++) {
        const pd = dblockSectorOffset(i + 1, sectorSize);
        if (force > 1) {
          const d = decodeDblock(data, pd);
          if (d.mbal || d.inp || d.lver) {
            out += `dblock[${u(i, 4)}] mbal ${d.mbal} bal ${d.bal} inp ${d.inp} inp2 ${d.inp2} inp3 ${d.inp3} lver ${d.lver} sum ${d.checksum.toString(16)}\n`;
          }
        }
        const mb = decodeModeBlock(data, pd + MBLOCK_OFFSET);
        if (!(mb.flags & MBLOCK_SHARED)) continue;
        out += ' '.repeat(106) + `${u(i + 1, 4)} ${u(mb.generation, 4)} SH\n`;
      }
    } else if (endSector === 0) {
      break;
    }
  }
  return { rv: 0, text: out };
}

/** print_leader() of sanlock's main.c. */
export function formatLeader(l: LeaderRecord, isLockspace: boolean): string {
  const lines = [
    `magic 0x${l.magic.toString(16)}`,
    `version 0x${l.version.toString(16)}`,
    `flags 0x${l.flags.toString(16)}`,
    `sector_size ${l.sectorSize}`,
    `num_hosts ${l.numHosts}`,
    `max_hosts ${l.maxHosts}`,
    `owner_id ${l.ownerId}`,
    `owner_generation ${l.ownerGeneration}`,
    `lver ${l.lver}`,
    `space_name ${nameString(l.spaceName)}`,
    `resource_name ${nameString(l.resourceName)}`,
    `timestamp ${l.timestamp}`,
    `checksum 0x${l.checksum.toString(16)}`,
    `io_timeout ${l.ioTimeout}`,
  ];
  if (isLockspace) lines.push(`extra1 ${l.writeId}`, `extra2 ${l.writeGeneration}`, `extra3 ${l.writeTimestamp}`);
  else lines.push(`write_id ${l.writeId}`, `write_generation ${l.writeGeneration}`, `write_timestamp ${l.writeTimestamp}`);
  return lines.join('\n') + '\n';
}

/**
 * lvmlockd's lm_find_free_lock_sanlock: scan lease slots from `start` in
 * steps of align size; the first slot named "#unused", or holding no lease
 * at all (SANLK_LEADER_MAGIC, e.g. a freshly extended lvmlock LV), is free.
 * Returns undefined when the device has no free slot left.
 */
export const LV_UNUSED_NAME = '#unused';
export const GL_LOCK_BEGIN = 65;
export const VG_LOCK_BEGIN = 66;
export const LV_LOCK_BEGIN = 67;

export async function findFreeLeaseSlot(
  disk: Disk,
  lockspace: string,
  sectorSize: number,
  alignSize: number,
  start = LV_LOCK_BEGIN * alignSize,
  io = 10,
): Promise<number | undefined> {
  const size = await disk.size();
  for (let off = start; off + alignSize <= size; off += alignSize) {
    const sector = await diskRead(disk, off, sectorSize, io, 'find_free_lock', SANLK.LEADER_READ);
    const l = decodeLeader(sector);
    if (l.magic !== PAXOS_DISK_MAGIC) {
      if (l.magic === DELTA_DISK_MAGIC) continue;
      return off; // SANLK_LEADER_MAGIC: uninitialized area
    }
    try {
      verifyPaxosLeader(l, sector.subarray(0, LEADER_RECORD_SIZE), nameField(lockspace), undefined, 0, `slot ${off}`);
    } catch {
      continue;
    }
    if (nameString(l.resourceName) === LV_UNUSED_NAME) return off;
  }
  return undefined;
}
