// The IDM commands one drive understands, whatever carries them: a mutex
// write of one 512-byte record, a read of records (mutex list or inquiry
// group), the IDM spec version. Each answers an errno mapped the way
// propeller maps its transport's status (SCSI: status + sense, scsi.ts;
// NVMe: vendor status codes, nvme.ts), never throws. Implementations:
// ScsiIdmIo (SG_IO or the emulated drive's socket) and NvmeIdmIo (admin
// passthrough, nvme-idm-io.ts).

import { RECORD_BYTES } from './record';
import {
  SCSI_TIMEOUT_MS, VERSION_INQUIRY_BYTES, VERSION_MAJOR_OFFSET, DEVICE_ID_INQUIRY_BYTES,
  readCdb, scsiErrno, versionInquiryCdb, deviceIdInquiryCdb, writeCdb,
} from './scsi';
import type { DriveTransport } from './transport';

export interface IdmIo {
  readonly path: string;
  /** One IDM write (TRYLOCK, UNLOCK, REFRESH, BREAK, DESTROY) of one record: 0 or a negative errno. */
  mutexWrite(mutexOp: number, record: Buffer): Promise<number>;
  /** `records` 512-byte records of a group (1: mutex list, 0xFF: inquiry). */
  readRecords(group: number, records: number): Promise<{ rv: number; data: Buffer }>;
  version(): Promise<{ rv: number; major: number; minor: number }>;
  close(): void;
}

/** The SCSI encoding (0xF0 CDBs, INQUIRY) over a DriveTransport. */
export class ScsiIdmIo implements IdmIo {
  constructor(readonly transport: DriveTransport) {}

  get path(): string { return this.transport.path; }

  async mutexWrite(mutexOp: number, record: Buffer): Promise<number> {
    const r = await this.transport.execute({ cdb: writeCdb(mutexOp), dataOut: record, dataInBytes: 0, timeoutMs: SCSI_TIMEOUT_MS });
    if (!r.ok) return r.errno;
    return scsiErrno(r.status, r.sense, mutexOp);
  }

  async readRecords(group: number, records: number): Promise<{ rv: number; data: Buffer }> {
    const r = await this.transport.execute({
      cdb: readCdb(group, records), dataOut: null, dataInBytes: records * RECORD_BYTES, timeoutMs: SCSI_TIMEOUT_MS,
    });
    if (!r.ok) return { rv: r.errno, data: Buffer.alloc(0) };
    // For reads propeller hands CDB byte 1 (0x01) to the mapping as the "opcode".
    const rv = scsiErrno(r.status, r.sense, 0x01);
    return { rv, data: rv === 0 ? r.dataIn : Buffer.alloc(0) };
  }

  async version(): Promise<{ rv: number; major: number; minor: number }> {
    const r = await this.transport.execute({ cdb: versionInquiryCdb(), dataOut: null, dataInBytes: VERSION_INQUIRY_BYTES, timeoutMs: SCSI_TIMEOUT_MS });
    if (!r.ok) return { rv: r.errno, major: 0, minor: 0 };
    const rv = scsiErrno(r.status, r.sense, 0x01);
    return { rv, major: rv === 0 ? r.dataIn[VERSION_MAJOR_OFFSET] ?? 0 : 0, minor: 0 };
  }

  /** The drive's NAA WWN from VPD page 0x83, as hex; '' when it has none. */
  async wwn(): Promise<{ rv: number; wwn: string }> {
    const r = await this.transport.execute({ cdb: deviceIdInquiryCdb(), dataOut: null, dataInBytes: DEVICE_ID_INQUIRY_BYTES, timeoutMs: SCSI_TIMEOUT_MS });
    if (!r.ok) return { rv: r.errno, wwn: '' };
    const rv = scsiErrno(r.status, r.sense, 0x01);
    if (rv < 0) return { rv, wwn: '' };
    // Walk the designators for an NAA one (type 3).
    const d = r.dataIn;
    const end = Math.min(d.length, 4 + (d.length >= 4 ? d.readUInt16BE(2) : 0));
    for (let i = 4; i + 4 <= end;) {
      const len = d[i + 3]!;
      if ((d[i + 1]! & 0x0f) === 0x03 && i + 4 + len <= end) return { rv: 0, wwn: d.subarray(i + 4, i + 4 + len).toString('hex') };
      i += 4 + len;
    }
    return { rv: 0, wwn: '' };
  }

  close(): void {
    this.transport.close();
  }
}
