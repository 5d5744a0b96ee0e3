// The ILM's per-drive IDM commands (propeller: src/idm_scsi.c scsi_idm_*,
// src/idm_nvme_api.c nvme_idm_*): build the 512-byte record, send it through
// the drive's IDM encoding (SCSI CDBs or NVMe vendor commands, idm-io.ts),
// which maps the transport's status to an errno. Every function answers an errno (0 or
// negative), never throws. ilm_inject_fault's percentage makes a command fail
// with -EIO before any I/O, as propeller does.

import { E } from '../core/constants';
import {
  COUNTDOWN_FOREVER, EntryState, Group, MutexClass, MutexOp, RECORD_BYTES, ResVerType,
  decodeInquiryTotal, decodeReadRecord, encodeWriteRecord, type ReadRecord,
} from '../idm/record';
import { ScsiIdmIo, type IdmIo } from '../idm/idm-io';
import { SG_DATA_BYTES_MAX, type DriveTransport } from '../idm/transport';
import { IdmMode } from './protocol';

export interface FaultInjector {
  /** True when this command should fail with -EIO. */
  fail(): boolean;
}
export const NO_FAULTS: FaultInjector = { fail: () => false };

/** Records read beyond the inquiry's count (see DriveCommands.table). */
export const TABLE_READ_SLACK = 64;

export interface MutexRequest {
  lockId: Buffer;
  hostId: Buffer;
  /** ILM mode (1 ex, 2 sh). */
  mode: number;
  timeoutMs: number;
  /** Only UNLOCK carries it (res_ver type UPDATE_NO_VALID); without it UNLOCK leaves the drive's LVB. */
  lvb?: Buffer;
  timeNowMs: bigint;
}

export function modeToClass(mode: number): number {
  return mode === IdmMode.EXCLUSIVE ? MutexClass.EXCLUSIVE : MutexClass.SHARED_PROTECTED_READ;
}

function countdown(op: number, timeoutMs: number): bigint {
  if (op === MutexOp.UNLOCK || op === MutexOp.DESTROY) return 0n;
  // ilm_lock's timeout is an int converted to u64: -1 ("unlimited") becomes all ones.
  return timeoutMs < 0 ? COUNTDOWN_FOREVER : BigInt(timeoutMs);
}

function isIdmIo(x: DriveTransport | IdmIo): x is IdmIo {
  return typeof (x as IdmIo).mutexWrite === 'function';
}

export class DriveCommands {
  /** The drive's IDM encoding; a bare DriveTransport is a SCSI device. */
  readonly io: IdmIo;

  constructor(dev: DriveTransport | IdmIo, private readonly faults: FaultInjector = NO_FAULTS) {
    this.io = isIdmIo(dev) ? dev : new ScsiIdmIo(dev);
  }

  close(): void {
    this.io.close();
  }

  /** TRYLOCK / UNLOCK / REFRESH / BREAK / DESTROY. */
  async mutex(op: number, req: MutexRequest): Promise<number> {
    if (this.faults.fail()) return -E.IO;
    const unlock = op === MutexOp.UNLOCK;
    const record = encodeWriteRecord({
      timeNowMs: req.timeNowMs,
      countdownMs: countdown(op, req.timeoutMs),
      mutexClass: modeToClass(req.mode),
      resVerType: unlock && req.lvb ? ResVerType.UPDATE_NO_VALID : ResVerType.NO_UPDATE_NO_VALID,
      lvb: unlock && req.lvb ? req.lvb : Buffer.alloc(8),
      lockId: req.lockId,
      hostId: req.hostId,
    });
    return this.io.mutexWrite(op, record);
  }

  /**
   * Inquiry for the entry count, then that many records and TABLE_READ_SLACK
   * more: other hosts add entries between the two commands, and an entry of
   * ours pushed past the count read as "not held" (-ENOENT), which turns the
   * drive's state back to INIT: the lock's UNLOCK then skipped that drive and
   * its LVB never got there (simulator finding 24). A drive answers records
   * past its last entry as dead (state 0xDEAD), where the list stops.
   */
  async table(): Promise<{ rv: number; rows: ReadRecord[] }> {
    if (this.faults.fail()) return { rv: -E.IO, rows: [] };
    const inq = await this.read(Group.INQUIRY, 1);
    if (inq.rv < 0) return { rv: inq.rv, rows: [] };
    const total = Math.min(SG_DATA_BYTES_MAX / RECORD_BYTES, Math.max(1, decodeInquiryTotal(inq.data)) + TABLE_READ_SLACK);
    const list = await this.read(Group.DEFAULT, total);
    if (list.rv < 0) return { rv: list.rv, rows: [] };
    const rows: ReadRecord[] = [];
    for (let i = 0; i + RECORD_BYTES <= list.data.length; i += RECORD_BYTES) {
      const rec = decodeReadRecord(list.data, i);
      if (rec.state === EntryState.DEAD) break;
      rows.push(rec);
    }
    return { rv: 0, rows };
  }

  /** The LVB stored for (lock id, host id); -ENOENT when the drive has no such entry. */
  async readLvb(lockId: Buffer, hostId: Buffer): Promise<{ rv: number; lvb: Buffer }> {
    const t = await this.table();
    if (t.rv < 0) return { rv: t.rv, lvb: Buffer.alloc(8) };
    const row = t.rows.find((r) => r.lockId.equals(lockId) && r.hostId.equals(hostId));
    return row ? { rv: 0, lvb: row.lvb } : { rv: -E.NOENT, lvb: Buffer.alloc(8) };
  }

  /** Holders of the lock other than us (count) and whether we hold it (self). */
  async count(lockId: Buffer, hostId: Buffer): Promise<{ rv: number; count: number; self: number }> {
    const t = await this.table();
    if (t.rv < 0) return { rv: t.rv, count: 0, self: 0 };
    let count = 0;
    let self = 0;
    for (const r of t.rows) {
      if (!r.lockId.equals(lockId)) continue;
      if (r.state !== EntryState.LOCKED && r.state !== EntryState.MULTIPLE_LOCKED) continue;
      if (r.hostId.equals(hostId)) self = 1; else count++;
    }
    return { rv: 0, count, self };
  }

  /** The mode the lock is held in on this drive (0 when nobody holds it). */
  async mode(lockId: Buffer): Promise<{ rv: number; mode: number }> {
    const t = await this.table();
    if (t.rv < 0) return { rv: t.rv, mode: 0 };
    const held = t.rows.find((r) => r.lockId.equals(lockId)
      && r.state !== EntryState.UNINIT && r.state !== EntryState.UNLOCKED && r.state !== EntryState.TIMEOUT);
    if (!held) return { rv: 0, mode: IdmMode.UNLOCK };
    if (held.mutexClass === MutexClass.EXCLUSIVE) return { rv: 0, mode: IdmMode.EXCLUSIVE };
    if (held.mutexClass === MutexClass.SHARED_PROTECTED_READ) return { rv: 0, mode: IdmMode.SHAREABLE };
    return { rv: -E.FAULT, mode: 0 };
  }

  async version(): Promise<{ rv: number; major: number; minor: number }> {
    if (this.faults.fail()) return { rv: -E.IO, major: 0, minor: 0 };
    return this.io.version();
  }

  /** The drive's NAA WWN from SCSI VPD page 0x83 ('' for a drive without one; NVMe drives are told apart by sysfs wwid). */
  async wwn(): Promise<{ rv: number; wwn: string }> {
    return this.io instanceof ScsiIdmIo ? this.io.wwn() : { rv: 0, wwn: '' };
  }

  private read(group: number, records: number): Promise<{ rv: number; data: Buffer }> {
    return this.io.readRecords(group, records);
  }
}
