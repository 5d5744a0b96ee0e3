// The emulated drive's SCSI front end: takes a CDB and its data-out buffer
// exactly as SG_IO would hand them to a device, answers with SCSI status,
// sense bytes and data-in. Behind it sits the firmware model. Pure: the
// drive's time comes in as an argument.

import { IdmFirmware, type Outcome } from './firmware';
import { Group, RECORD_BYTES, decodeWriteRecord, encodeInquiry, encodeReadRecord, deadRecord } from './record';
import {
  ScsiStatus, SENSE_DESCRIPTOR, deviceIdPage, VERSION_INQUIRY_BYTES, VERSION_MAJOR_OFFSET, decodeCdb, type SenseKind,
} from './scsi';

export interface ScsiCompletion {
  status: number;
  sense: Buffer;
  dataIn: Buffer;
}

export interface TargetIdentity {
  /** 64-bit NAA world wide name, as 16 hex digits. */
  wwn: string;
  /** IDM spec major version reported by INQUIRY page 0xC3. */
  versionMajor: number;
}

/** Records a list read may ask for: enough for a full table, bounded so a bad CDB cannot exhaust memory. */
export const LIST_RECORDS_MAX = 8192;

function good(dataIn: Buffer = Buffer.alloc(0)): ScsiCompletion {
  return { status: ScsiStatus.GOOD, sense: Buffer.alloc(0), dataIn };
}

function check(kind: SenseKind): ScsiCompletion {
  return { status: ScsiStatus.CHECK_CONDITION, sense: Buffer.from(SENSE_DESCRIPTOR[kind]), dataIn: Buffer.alloc(0) };
}

function fromOutcome(o: Outcome): ScsiCompletion {
  switch (o) {
    case 'good': return good();
    case 'not-found': return check('lba-out-of-range');
    case 'invalid-opcode': return check('invalid-opcode');
    case 'mutex-list-full': return check('mutex-list-full');
    case 'host-list-full': return check('host-list-full');
    case 'mutex-host-list-full': return check('mutex-host-list-full');
    case 'conflict': return { status: ScsiStatus.RESERVATION_CONFLICT, sense: Buffer.alloc(0), dataIn: Buffer.alloc(0) };
    case 'busy': return { status: ScsiStatus.BUSY, sense: Buffer.alloc(0), dataIn: Buffer.alloc(0) };
    case 'terminated': return { status: ScsiStatus.COMMAND_TERMINATED, sense: Buffer.alloc(0), dataIn: Buffer.alloc(0) };
  }
}

export class ScsiTarget {
  constructor(readonly firmware: IdmFirmware, private readonly id: TargetIdentity) {}

  /** Runs one command. `mutated` says whether the firmware state changed (to persist). */
  execute(cdb: Buffer, dataOut: Buffer | null, dataInBytes: number, nowMs: number): ScsiCompletion & { mutated: boolean } {
    const c = decodeCdb(cdb, dataOut !== null);
    switch (c.kind) {
      case 'mutex-write': {
        if (c.group !== Group.DEFAULT || c.transferBytes !== RECORD_BYTES || !dataOut || dataOut.length < RECORD_BYTES) {
          return { ...check('invalid-opcode'), mutated: false };
        }
        const outcome = this.firmware.write(c.mutexOp, decodeWriteRecord(dataOut), nowMs);
        return { ...fromOutcome(outcome), mutated: outcome === 'good' };
      }
      case 'mutex-read':
        return { ...this.read(c.group, c.records, dataInBytes, nowMs), mutated: false };
      case 'inquiry':
        return { ...this.inquiry(c.evpd, c.page, Math.min(c.allocation, dataInBytes)), mutated: false };
      case 'unknown':
        return { ...check('invalid-opcode'), mutated: false };
    }
  }

  private read(group: number, records: number, dataInBytes: number, nowMs: number): ScsiCompletion {
    if (records === 0 || records > LIST_RECORDS_MAX || dataInBytes < records * RECORD_BYTES) return check('invalid-opcode');
    if (group === Group.INQUIRY) return good(encodeInquiry(this.firmware.counters(nowMs)));
    if (group !== Group.DEFAULT) return check('lba-out-of-range');
    const rows = this.firmware.list(nowMs);
    const out: Buffer[] = [];
    for (let i = 0; i < records; i++) out.push(i < rows.length ? encodeReadRecord(rows[i]!) : deadRecord());
    return good(Buffer.concat(out));
  }

  private inquiry(evpd: boolean, page: number, allocation: number): ScsiCompletion {
    let data: Buffer;
    if (!evpd) {
      data = Buffer.alloc(36);
      data[2] = 0x06; // SPC-4
      data[3] = 0x02;
      data[4] = 31;
      data.write('LVMLKDTS', 8, 'ascii');
      data.write('IDM EMULATED    ', 16, 'ascii');
      data.write('0001', 32, 'ascii');
    } else if (page === 0xc3) {
      data = Buffer.alloc(VERSION_INQUIRY_BYTES);
      data[1] = 0xc3;
      data[VERSION_MAJOR_OFFSET] = this.id.versionMajor;
    } else if (page === 0x83) {
      data = deviceIdPage(this.id.wwn);
    } else {
      return check('invalid-opcode');
    }
    return good(data.subarray(0, Math.min(allocation, data.length)));
  }
}
