// SG_IO on a SCSI generic node (/dev/sgN), the way propeller's _scsi_sg_io
// sends IDM commands: one struct sg_io_hdr per command, 15 s timeout, the
// status byte and sense buffer handed back for the errno mapping in scsi.ts.
// The ioctl runs on a koffi worker thread so a slow device does not stall the
// event loop. Buffers the kernel reads or writes are allocated by koffi, so
// their addresses stay fixed during the call.
//
// A device that goes away (its SCSI device deleted, a path lost) fails the
// ioctl or completes with a host status; the node is then closed, and when a
// locator was given (the drive's WWN looked up in sysfs) the next command
// opens wherever the drive is now, e.g. the new /dev/sgN after a rescan.
//
// Verified against real SCSI disks in the VM tier (test/vm/11-idm-scsi: TCMU
// disks through tcm_loop, two hosts, a disk deleted and rescanned).

import * as fs from 'node:fs';
import { E } from '../core/constants';
import { SENSE_BYTES_MAX } from './scsi';
import type { DriveTransport, ScsiCommand, ScsiReply } from './transport';
import { ioctlBinding } from './ioctl';

export const SG_IO = 0x2285;
export const SG_IO_HDR_BYTES = 88;
export const SG_DXFER_NONE = -1;
export const SG_DXFER_TO_DEV = -2;
export const SG_DXFER_FROM_DEV = -3;

export interface SgIoHdrIn {
  direction: number;
  cmdLen: number;
  senseMax: number;
  dxferLen: number;
  dxferp: bigint;
  cmdp: bigint;
  sbp: bigint;
  timeoutMs: number;
}

export interface SgIoHdrOut {
  status: number;
  maskedStatus: number;
  senseWritten: number;
  hostStatus: number;
  driverStatus: number;
  resid: number;
}

/** struct sg_io_hdr as the 64-bit kernel lays it out. */
export function encodeSgIoHdr(h: SgIoHdrIn): Buffer {
  const b = Buffer.alloc(SG_IO_HDR_BYTES);
  b.writeInt32LE(0x53, 0);           // interface_id 'S'
  b.writeInt32LE(h.direction, 4);
  b[8] = h.cmdLen;
  b[9] = h.senseMax;
  b.writeUInt16LE(0, 10);            // iovec_count
  b.writeUInt32LE(h.dxferLen, 12);
  b.writeBigUInt64LE(h.dxferp, 16);
  b.writeBigUInt64LE(h.cmdp, 24);
  b.writeBigUInt64LE(h.sbp, 32);
  b.writeUInt32LE(h.timeoutMs, 40);
  return b;
}

export function decodeSgIoHdr(b: Buffer): SgIoHdrOut {
  return {
    status: b[64]!,
    maskedStatus: b[65]!,
    senseWritten: b[67]!,
    hostStatus: b.readUInt16LE(68),
    driverStatus: b.readUInt16LE(70),
    resid: b.readInt32LE(72),
  };
}

export class SgIoTransport implements DriveTransport {
  private fd: number;
  private node: string;

  /** Opens `path` now (throws when it cannot); `locate` finds the drive's node again after it went away. */
  constructor(readonly path: string, private readonly locate?: () => string | null) {
    this.node = path;
    this.fd = fs.openSync(path, fs.constants.O_RDWR);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private reopen(): string | null {
    const node = this.locate ? this.locate() : this.node;
    if (!node) return `${this.path}: the device is gone`;
    try {
      this.fd = fs.openSync(node, fs.constants.O_RDWR);
      this.node = node;
      return null;
    } catch (e) {
      return `${node}: ${(e as Error).message}`;
    }
  }

  async execute(cmd: ScsiCommand): Promise<ScsiReply> {
    if (this.fd < 0) {
      const why = this.reopen();
      if (why) return { ok: false, errno: -E.IO, message: why };
    }
    const r = await this.executeOn(this.fd, cmd);
    if (!r.ok) this.close();
    return r;
  }

  private async executeOn(fd: number, cmd: ScsiCommand): Promise<ScsiReply> {
    const { koffi, ioctl } = ioctlBinding();
    const dataLen = cmd.dataOut ? cmd.dataOut.length : cmd.dataInBytes;
    const cdbMem = koffi.alloc('uint8_t', cmd.cdb.length);
    const senseMem = koffi.alloc('uint8_t', SENSE_BYTES_MAX);
    const dataMem = dataLen > 0 ? koffi.alloc('uint8_t', dataLen) : null;
    try {
      new Uint8Array(koffi.view(cdbMem, cmd.cdb.length)).set(cmd.cdb);
      if (cmd.dataOut && dataMem) new Uint8Array(koffi.view(dataMem, dataLen)).set(cmd.dataOut);
      const hdr = encodeSgIoHdr({
        direction: cmd.dataOut ? SG_DXFER_TO_DEV : dataLen > 0 ? SG_DXFER_FROM_DEV : SG_DXFER_NONE,
        cmdLen: cmd.cdb.length, senseMax: SENSE_BYTES_MAX, dxferLen: dataLen,
        dxferp: dataMem ? koffi.address(dataMem) : 0n, cmdp: koffi.address(cdbMem), sbp: koffi.address(senseMem),
        timeoutMs: cmd.timeoutMs,
      });
      const rv = await new Promise<number>((resolve, reject) => {
        ioctl.async(fd, SG_IO, hdr, (err: unknown, r: number) => (err ? reject(err) : resolve(Number(r))));
      });
      if (rv < 0) return { ok: false, errno: -E.IO, message: `${this.node}: SG_IO failed (errno ${koffi.errno()})` };
      const out = decodeSgIoHdr(hdr);
      if (out.hostStatus !== 0) {
        return { ok: false, errno: -E.IO, message: `${this.node}: host status ${out.hostStatus} driver status ${out.driverStatus}` };
      }
      const sense = Buffer.from(new Uint8Array(koffi.view(senseMem, SENSE_BYTES_MAX)).slice(0, out.senseWritten));
      const dataIn = !cmd.dataOut && dataMem ? Buffer.from(new Uint8Array(koffi.view(dataMem, dataLen)).slice(0, dataLen - Math.max(0, out.resid))) : Buffer.alloc(0);
      return { ok: true, status: out.status, sense, dataIn };
    } finally {
      koffi.free(cdbMem);
      koffi.free(senseMem);
      if (dataMem) koffi.free(dataMem);
    }
  }
}
