// The IDM commands of a TCMU disk, forwarded to the drive's one firmware (a
// drive server every host's backstore reaches over TCP), so two hosts' disks
// for one drive share one mutex table.
//
// What the kernel hands a TCMU backstore of an IDM CDB: LIO keeps
// scsi_command_size() bytes of a CDB, 10 for the vendor opcodes 0xC0-0xFF, so
// of propeller's 16-byte 0xF0 CDBs only bytes 0-9 arrive: the opcode and byte 1
// (mutex opcode << 4 for a write, 0x01 for a read). Bytes 10-14 (transfer
// length, group) are lost. We rebuild them:
//  - write: transfer length = the data-out length (512), group 1;
//  - read: records = data-in length / 512; more than one record is a mutex
//    list read (group 1). A one-record read is either the inquiry (group
//    0xFF: entry counters) or a one-record list read (propeller reads `total`
//    records after an inquiry that said 1). With no entries on the drive a
//    DEAD record answers both (counters all read total 0; a list of one DEAD
//    record is empty). Otherwise a one-record read that follows an inquiry of
//    this host not yet followed by a list read is the list read; any other
//    is the inquiry. Our ILM never sends a one-record list read (it reads
//    total + 64 records), so for it the rule is exact.
// A full 16-byte CDB (another transport) is forwarded as it is.

import { Group, RECORD_BYTES, deadRecord, decodeInquiryTotal } from '../record';
import { CDB_BYTES, IDM_SCSI_OPCODE, SCSI_TIMEOUT_MS, readCdb, writeCdb, ScsiStatus } from '../scsi';
import type { ScsiCompletion } from '../scsi-target';
import type { DriveTransport } from '../transport';
import { Sense, type IdmEndpoint } from './disk';

/** How long an inquiry waits for its list read before a one-record read counts as an inquiry again. */
export const PAIRING_WINDOW_MS = 10_000;

export type Rebuilt = { cdb: Buffer; dataOut: Buffer | null; dataInBytes: number } | { ambiguousRead: true } | { invalid: string };

/** The 16-byte CDB a truncated IDM CDB stood for, where the data length tells. */
export function rebuildIdmCdb(cdb: Buffer, dataOut: Buffer | null, dataInBytes: number): Rebuilt {
  if (cdb[0] !== IDM_SCSI_OPCODE) return { invalid: 'not an IDM opcode' };
  if (cdb.length >= CDB_BYTES) return { cdb, dataOut, dataInBytes };
  if ((cdb[1]! & 0x0f) === 0x01) {
    if (dataInBytes === 0 || dataInBytes % RECORD_BYTES !== 0) return { invalid: `read of ${dataInBytes} bytes` };
    const records = dataInBytes / RECORD_BYTES;
    if (records === 1) return { ambiguousRead: true };
    return { cdb: readCdb(Group.DEFAULT, records), dataOut: null, dataInBytes };
  }
  if (!dataOut || dataOut.length !== RECORD_BYTES) return { invalid: `write of ${dataOut?.length ?? 0} bytes` };
  return { cdb: writeCdb(cdb[1]! >> 4), dataOut, dataInBytes: 0 };
}

export class IdmForwarder implements IdmEndpoint {
  /** Times of this host's inquiries not yet followed by a list read. */
  private inquiries: number[] = [];

  constructor(private readonly transport: DriveTransport, private readonly now: () => number = Date.now) {}

  async execute(cdb: Buffer, dataOut: Buffer | null, dataInBytes: number): Promise<ScsiCompletion> {
    if (cdb[0] !== IDM_SCSI_OPCODE) return this.send(cdb, null, dataInBytes); // INQUIRY page 0xC3
    const r = rebuildIdmCdb(cdb, dataOut, dataInBytes);
    if ('invalid' in r) return { status: ScsiStatus.CHECK_CONDITION, sense: Sense.invalidField(), dataIn: Buffer.alloc(0) };
    if ('cdb' in r) {
      if (r.dataOut === null && r.cdb[14] === Group.DEFAULT) this.inquiries.shift();
      return this.send(r.cdb, r.dataOut, r.dataInBytes);
    }
    return this.oneRecordRead();
  }

  private async oneRecordRead(): Promise<ScsiCompletion> {
    const inq = await this.send(readCdb(Group.INQUIRY, 1), null, RECORD_BYTES);
    if (inq.status !== ScsiStatus.GOOD) return inq;
    if (decodeInquiryTotal(inq.dataIn) === 0) return { ...inq, dataIn: deadRecord() };
    const t = this.now();
    this.inquiries = this.inquiries.filter((at) => t - at < PAIRING_WINDOW_MS);
    if (this.inquiries.length > 0) {
      this.inquiries.shift();
      return this.send(readCdb(Group.DEFAULT, 1), null, RECORD_BYTES);
    }
    this.inquiries.push(t);
    return inq;
  }

  private async send(cdb: Buffer, dataOut: Buffer | null, dataInBytes: number): Promise<ScsiCompletion> {
    const r = await this.transport.execute({ cdb, dataOut, dataInBytes, timeoutMs: SCSI_TIMEOUT_MS });
    if (!r.ok) {
      return { status: ScsiStatus.CHECK_CONDITION, sense: Sense.commFailure(), dataIn: Buffer.alloc(0) };
    }
    return { status: r.status, sense: r.sense, dataIn: r.dataIn };
  }
}
