// "Who holds what" in a sanlock VG, read from its lease area on disk (the
// lvmlock LV), as any host would see it: the GL, VG and LV leases, each with
// its exclusive owner (the paxos leader while held) or its shared holders
// (mode blocks marked SHARED), and for every holder the host name, generation
// and delta-lease liveness from the lockspace's host records.
//
// Reads one sector per lease slot, plus one sector per known host for each
// slot in use (mode blocks), never the whole 1 MiB of each lease.

import type { Disk } from '../../io/disk';
import { decodeLeader, decodeModeBlock, nameString, DELTA_DISK_MAGIC, PAXOS_DISK_MAGIC, MBLOCK_OFFSET, MBLOCK_SHARED } from '../../leases/ondisk';
import { GL_LOCK_BEGIN, LV_LOCK_BEGIN, LV_UNUSED, VG_LOCK_BEGIN } from './sanlock-lm';
import type { DiskHolder, DiskLock } from '../types';

export interface HolderReadOptions {
  disk: Disk;
  sectorSize: number;
  alignSize: number;
  ioTimeoutS: number;
  /** The delta-lease state of a host as our renewals judge it ('LIVE', 'FAIL', 'DEAD', 'FREE', 'UNKNOWN'). */
  hostState(hostId: number): string;
}

export async function readDiskHolders(o: HolderReadOptions): Promise<DiskLock[]> {
  const io = { timeoutMs: o.ioTimeoutS * 1000, label: 'holders' };
  const ss = o.sectorSize;
  const delta = Buffer.from(await o.disk.read(0, o.alignSize, io));
  const hosts = new Map<number, { name: string; generation: number; timestamp: number }>();
  for (let id = 1; id * ss <= delta.length; id++) {
    const off = (id - 1) * ss;
    if (delta.readUInt32LE(off) !== DELTA_DISK_MAGIC) continue;
    const l = decodeLeader(delta, off);
    if (!l.ownerGeneration) continue;
    hosts.set(id, { name: nameString(l.resourceName), generation: l.ownerGeneration, timestamp: l.timestamp });
  }
  const holder = (hostId: number, generation: number): DiskHolder => ({
    hostId, generation, hostName: hosts.get(hostId)?.name ?? '', state: o.hostState(hostId),
  });

  const size = await o.disk.size();
  const locks: DiskLock[] = [];
  for (let slot = GL_LOCK_BEGIN; (slot + 1) * o.alignSize <= size; slot++) {
    const base = slot * o.alignSize;
    const sector = Buffer.from(await o.disk.read(base, ss, io));
    if (sector.readUInt32LE(0) !== PAXOS_DISK_MAGIC) {
      if (slot >= LV_LOCK_BEGIN) break; // LV slots are written in order: the first blank one ends them
      continue;
    }
    const leader = decodeLeader(sector);
    const resource = nameString(leader.resourceName);
    if (resource === LV_UNUSED) continue;
    const type = slot === GL_LOCK_BEGIN ? 'gl' : slot === VG_LOCK_BEGIN ? 'vg' : 'lv';
    if (leader.timestamp) {
      locks.push({ resource, type, mode: 'ex', lver: leader.lver, holders: [holder(leader.ownerId, leader.ownerGeneration)] });
      continue;
    }
    const shared: DiskHolder[] = [];
    for (const hostId of hosts.keys()) {
      if (hostId > leader.numHosts) continue;
      const mb = decodeModeBlock(Buffer.from(await o.disk.read(base + (1 + hostId) * ss, ss, io)), MBLOCK_OFFSET);
      if (mb.flags & MBLOCK_SHARED) shared.push(holder(hostId, mb.generation));
    }
    if (shared.length) locks.push({ resource, type, mode: 'sh', lver: leader.lver, holders: shared });
  }
  return locks;
}
