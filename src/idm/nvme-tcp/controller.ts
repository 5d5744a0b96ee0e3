// One emulated NVMe drive (an NVM subsystem with one namespace) and the
// controllers hosts create on it over NVMe/TCP. The drive owns the one
// firmware instance every host's IDM commands reach, and the namespace's
// backing file every host's reads and writes reach. A controller is created
// by an admin-queue Connect (dynamic controller model) and holds what the
// host driver reads and sets: the CAP/VS/CC/CSTS properties, features, the
// keep-alive timeout and the held Asynchronous Event Requests.

import * as fs from 'node:fs';
import { IdmFirmware } from '../firmware';
import { saveFirmwareState } from '../drive-server';
import { executeIdmVendor, isIdmVendorOpcode } from './idm-vendor';
import {
  NSID, LBA_SHIFT, NVME_VERSION_1_3, activeNamespaces, identifyController, identifyNamespace, namespaceDescriptors,
  type DriveIdentity,
} from './identify';
import { AdminOp, IoOp, Status, type Sqe } from './sqe';

export interface Completion {
  status: number;
  result?: bigint;
  /** Data for the host (reads). */
  dataIn?: Buffer;
  /** The command is held (an Asynchronous Event Request): no completion now. */
  held?: boolean;
}

export const Reg = { CAP: 0x00, VS: 0x08, CC: 0x14, CSTS: 0x1c, NSSR: 0x20 } as const;

export const MQES = 127;
export const MDTS = 8;           // 2^8 * 4 KiB = 1 MiB
export const IO_QUEUES_MAX = 4;
export const IN_CAPSULE_BYTES = 8192;

export interface NvmeDriveOptions {
  identity: DriveIdentity;
  firmware: IdmFirmware;
  /** Where the firmware's state is persisted after each change (null: not persisted). */
  statePath: string | null;
  /** The namespace's backing file (a regular file or a block device). */
  backingPath: string;
  /** Grace beyond twice the host's KATO before a silent controller is ended (default 10 s: slow emulated guests). */
  keepAliveSlackMs?: number;
  log?: (line: string) => void;
}

export class NvmeDrive {
  readonly controllers = new Map<number, NvmeController>();
  private nextCntlid = 1;
  private readonly fd: number;
  readonly blocks: bigint;

  constructor(readonly opts: NvmeDriveOptions) {
    this.fd = fs.openSync(opts.backingPath, fs.constants.O_RDWR);
    const st = fs.fstatSync(this.fd);
    let size = st.size;
    if (st.isBlockDevice()) size = blockDeviceSize(this.fd, opts.backingPath);
    this.blocks = BigInt(Math.floor(size / (1 << LBA_SHIFT)));
  }

  get nqn(): string { return this.opts.identity.subnqn; }

  newController(hostnqn: string, kato: number): NvmeController {
    let id = this.nextCntlid;
    while (this.controllers.has(id)) id = id >= 0xffef ? 1 : id + 1;
    this.nextCntlid = id >= 0xffef ? 1 : id + 1;
    const c = new NvmeController(this, id, hostnqn, kato);
    this.controllers.set(id, c);
    return c;
  }

  dropController(c: NvmeController): void {
    if (this.controllers.get(c.cntlid) === c) this.controllers.delete(c.cntlid);
  }

  /** An IDM vendor command: to the one firmware, persisted before the answer. */
  idm(sqe: Sqe, dataOut: Buffer | null): Completion {
    const r = executeIdmVendor(this.opts.firmware, sqe.opcode, sqe.cdw10, sqe.cdw12, dataOut, dataOut ? 0 : sqe.sglLength, Date.now());
    if (r.mutated && this.opts.statePath) saveFirmwareState(this.opts.statePath, this.opts.firmware.state);
    return { status: r.status, dataIn: r.dataIn };
  }

  io(sqe: Sqe, dataOut: Buffer | null): Completion {
    if (sqe.opcode === IoOp.FLUSH) {
      fs.fdatasyncSync(this.fd);
      return { status: Status.SUCCESS };
    }
    if (sqe.opcode !== IoOp.READ && sqe.opcode !== IoOp.WRITE) return { status: Status.INVALID_OPCODE };
    if (sqe.nsid !== NSID) return { status: Status.INVALID_NS };
    const slba = (BigInt(sqe.cdw11) << 32n) | BigInt(sqe.cdw10);
    const nlb = (sqe.cdw12 & 0xffff) + 1;
    if (slba + BigInt(nlb) > this.blocks) return { status: Status.LBA_RANGE };
    const bytes = nlb << LBA_SHIFT;
    const pos = Number(slba) * (1 << LBA_SHIFT);
    if (sqe.opcode === IoOp.WRITE) {
      if (!dataOut || dataOut.length !== bytes) return { status: Status.DATA_XFER_ERROR };
      fs.writeSync(this.fd, dataOut, 0, bytes, pos);
      return { status: Status.SUCCESS };
    }
    if (sqe.sglLength !== bytes) return { status: Status.DATA_XFER_ERROR };
    const out = Buffer.alloc(bytes);
    fs.readSync(this.fd, out, 0, bytes, pos);
    return { status: Status.SUCCESS, dataIn: out };
  }

  close(): void {
    for (const c of [...this.controllers.values()]) c.destroy('drive closing');
    fs.closeSync(this.fd);
  }
}

function blockDeviceSize(fd: number, p: string): number {
  // No BLKGETSIZE64 without native code: read it from sysfs (512-byte sectors).
  const name = fs.realpathSync(p).replace(/^\/dev\//, '');
  void fd;
  return Number(fs.readFileSync(`/sys/class/block/${name}/size`, 'utf8').trim()) * 512;
}

export class NvmeController {
  cc = 0;
  csts = 0;
  private readonly features = new Map<number, number>();
  /** Asynchronous Event Requests held until the controller goes away. */
  readonly heldAers: number[] = [];
  ioQueues = 0;
  private kaTimer: NodeJS.Timeout | null = null;
  /** Called when the controller is torn down (keep-alive expiry, shutdown): close its connections. */
  readonly onDestroy = new Set<(why: string) => void>();
  destroyed = false;

  constructor(readonly drive: NvmeDrive, readonly cntlid: number, readonly hostnqn: string, readonly katoMs: number) {
    this.kick();
  }

  get cap(): bigint {
    return BigInt(MQES)            // MQES
      | (1n << 16n)                // CQR
      | (20n << 24n)               // TO: 10 s
      | (1n << 37n);               // CSS: NVM command set
  }

  /** Keep-alive: any admin command restarts the timer; twice the host's KATO (plus a grace) without one ends the controller. */
  kick(): void {
    if (this.kaTimer) clearTimeout(this.kaTimer);
    if (this.katoMs <= 0 || this.destroyed) return;
    this.kaTimer = setTimeout(() => this.destroy('keep-alive timeout'), this.katoMs * 2 + (this.drive.opts.keepAliveSlackMs ?? 10_000));
    this.kaTimer.unref();
  }

  destroy(why: string): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.kaTimer) clearTimeout(this.kaTimer);
    this.drive.dropController(this);
    this.drive.opts.log?.(`controller ${this.cntlid} (${this.hostnqn}): ${why}`);
    for (const f of this.onDestroy) f(why);
  }

  propertyGet(offset: number, eightBytes: boolean): Completion {
    switch (offset) {
      case Reg.CAP: return { status: 0, result: eightBytes ? this.cap : this.cap & 0xffffffffn };
      case Reg.VS: return { status: 0, result: BigInt(NVME_VERSION_1_3) };
      case Reg.CC: return { status: 0, result: BigInt(this.cc) };
      case Reg.CSTS: return { status: 0, result: BigInt(this.csts) };
      case Reg.NSSR: return { status: 0, result: 0n };
      default: return { status: Status.INVALID_FIELD };
    }
  }

  propertySet(offset: number, value: bigint): Completion {
    if (offset !== Reg.CC) return { status: Status.INVALID_FIELD };
    const cc = Number(value & 0xffffffffn);
    const en = (cc & 1) === 1;
    const shn = (cc >> 14) & 3;
    this.cc = cc;
    let csts = en ? 1 : 0;                  // RDY follows EN
    if (shn !== 0) csts |= 2 << 2;          // SHST: shutdown processing complete
    this.csts = csts;
    return { status: 0 };
  }

  admin(sqe: Sqe, dataOut: Buffer | null): Completion {
    this.kick();
    if (isIdmVendorOpcode(sqe.opcode)) return this.drive.idm(sqe, dataOut);
    switch (sqe.opcode) {
      case AdminOp.KEEP_ALIVE:
        return { status: 0 };
      case AdminOp.ASYNC_EVENT:
        this.heldAers.push(sqe.cid);
        return { status: 0, held: true };
      case AdminOp.IDENTIFY:
        return this.identify(sqe);
      case AdminOp.SET_FEATURES:
        return this.setFeatures(sqe);
      case AdminOp.GET_FEATURES:
        return this.getFeatures(sqe);
      case AdminOp.GET_LOG_PAGE:
        return this.logPage(sqe);
      default:
        return { status: Status.INVALID_OPCODE };
    }
  }

  private fit(b: Buffer, sqe: Sqe): Buffer {
    const out = Buffer.alloc(sqe.sglLength);
    b.copy(out, 0, 0, Math.min(b.length, out.length));
    return out;
  }

  private identify(sqe: Sqe): Completion {
    const cns = sqe.cdw10 & 0xff;
    const csi = (sqe.cdw11 >>> 24) & 0xff;
    const id = this.drive.opts.identity;
    switch (cns) {
      case 0x00:
        return { status: 0, dataIn: this.fit(sqe.nsid === NSID ? identifyNamespace(id, this.drive.blocks) : Buffer.alloc(4096), sqe) };
      case 0x01:
        return {
          status: 0,
          dataIn: this.fit(identifyController(id, { cntlid: this.cntlid, mqes: MQES, mdts: MDTS, inCapsuleBytes: IN_CAPSULE_BYTES }), sqe),
        };
      case 0x02:
        return { status: 0, dataIn: this.fit(activeNamespaces(sqe.nsid), sqe) };
      case 0x03:
        if (sqe.nsid !== NSID) return { status: Status.INVALID_NS };
        return { status: 0, dataIn: this.fit(namespaceDescriptors(id), sqe) };
      case 0x05: case 0x06:
        // I/O command set specific structures: the NVM set has nothing beyond the defaults.
        if (csi !== 0) return { status: Status.INVALID_FIELD };
        return { status: 0, dataIn: this.fit(Buffer.alloc(4096), sqe) };
      default:
        return { status: Status.INVALID_FIELD };
    }
  }

  private setFeatures(sqe: Sqe): Completion {
    const fid = sqe.cdw10 & 0xff;
    if (fid === 0x07) {
      // Number of queues: grant what was asked, up to IO_QUEUES_MAX (0's based both ways).
      const n = Math.min(Math.min(sqe.cdw11 & 0xffff, sqe.cdw11 >>> 16) + 1, IO_QUEUES_MAX);
      this.ioQueues = n;
      return { status: 0, result: BigInt((n - 1) | ((n - 1) << 16)) };
    }
    this.features.set(fid, sqe.cdw11);
    return { status: 0 };
  }

  private getFeatures(sqe: Sqe): Completion {
    const fid = sqe.cdw10 & 0xff;
    if (fid === 0x07) {
      const n = Math.max(this.ioQueues, 1);
      return { status: 0, result: BigInt((n - 1) | ((n - 1) << 16)) };
    }
    if (fid === 0x0f) return { status: 0, result: BigInt(this.katoMs) };
    return { status: 0, result: BigInt(this.features.get(fid) ?? 0) };
  }

  private logPage(sqe: Sqe): Completion {
    const lid = sqe.cdw10 & 0xff;
    const numd = (((sqe.cdw11 & 0xffff) << 16) | (sqe.cdw10 >>> 16)) + 1;
    if (![0x01, 0x02, 0x03, 0x04].includes(lid)) return { status: Status.INVALID_FIELD };
    const out = Buffer.alloc(Math.min(numd * 4, sqe.sglLength));
    if (lid === 0x02 && out.length >= 3) out.writeUInt16LE(300, 1); // SMART: composite temperature 300 K
    return { status: 0, dataIn: out };
  }
}
