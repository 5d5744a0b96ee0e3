// The SCSI disk a TCMU backstore presents: the commands the kernel's sd
// driver, udev and lvm send (INQUIRY with VPD pages, READ CAPACITY, TEST UNIT
// READY, MODE SENSE, READ/WRITE, SYNCHRONIZE CACHE), blocks from a backend
// shared by every host (a shared disk opened O_DIRECT), and the IDM 0xF0
// commands handed to the drive's one firmware (idm-forward.ts). Anything else
// is CHECK CONDITION, ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE.

import type { ScsiCompletion } from '../scsi-target';
import { IDM_SCSI_OPCODE, ScsiStatus, deviceIdPage } from '../scsi';

export const BLOCK_BYTES = 512;

export interface BlockBackend {
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer): Promise<void>;
}

/** Where the 0xF0 commands (and the IDM INQUIRY page 0xC3) go. */
export interface IdmEndpoint {
  execute(cdb: Buffer, dataOut: Buffer | null, dataInBytes: number): Promise<ScsiCompletion>;
}

export interface DiskIdentity {
  /** NAA WWN, 16 hex digits (VPD 0x83; sysfs wwid "naa.<wwn>"). */
  wwn: string;
  serial: string;
}

/** Fixed-format sense (0x70): key, ASC, ASCQ. */
export function fixedSense(key: number, asc: number, ascq = 0): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x70;
  b[2] = key & 0x0f;
  b[7] = 10;
  b[12] = asc;
  b[13] = ascq;
  return b;
}

export const Sense = {
  invalidOpcode: (): Buffer => fixedSense(0x05, 0x20),
  invalidField: (): Buffer => fixedSense(0x05, 0x24),
  lbaOutOfRange: (): Buffer => fixedSense(0x05, 0x21),
  mediumError: (): Buffer => fixedSense(0x03, 0x11),
  writeError: (): Buffer => fixedSense(0x03, 0x0c),
  /** LOGICAL UNIT COMMUNICATION FAILURE: the firmware could not be reached. */
  commFailure: (): Buffer => fixedSense(0x04, 0x08),
} as const;

function good(dataIn: Buffer = Buffer.alloc(0)): ScsiCompletion {
  return { status: ScsiStatus.GOOD, sense: Buffer.alloc(0), dataIn };
}
function check(sense: Buffer): ScsiCompletion {
  return { status: ScsiStatus.CHECK_CONDITION, sense, dataIn: Buffer.alloc(0) };
}

/**
 * Whether the command carries data to the device. TCMU entries do not say; the
 * CDB does. IDM: a read has 0x01 in byte 1, a write the mutex opcode in the
 * upper nibble.
 */
export function isDataOut(cdb: Buffer): boolean {
  const op = cdb[0]!;
  if (op === IDM_SCSI_OPCODE) return (cdb[1]! & 0x0f) !== 0x01;
  return op === 0x0a || op === 0x2a || op === 0x8a || op === 0x2e || op === 0x8e
    || op === 0x15 || op === 0x55 || op === 0x41 || op === 0x93 || op === 0x42 || op === 0x3b;
}

interface Rw { lba: number; blocks: number; write: boolean }

export function decodeRw(cdb: Buffer): Rw | null {
  switch (cdb[0]) {
    case 0x08: case 0x0a: {
      const lba = ((cdb[1]! & 0x1f) << 16) | cdb.readUInt16BE(2);
      return { lba, blocks: cdb[4] === 0 ? 256 : cdb[4]!, write: cdb[0] === 0x0a };
    }
    case 0x28: case 0x2a: case 0x2e:
      return { lba: cdb.readUInt32BE(2), blocks: cdb.readUInt16BE(7), write: cdb[0] !== 0x28 };
    case 0x88: case 0x8a: case 0x8e:
      return { lba: Number(cdb.readBigUInt64BE(2)), blocks: cdb.readUInt32BE(10), write: cdb[0] !== 0x88 };
    default:
      return null;
  }
}

export class TcmuDisk {
  readonly blocks: number;

  constructor(
    private readonly backend: BlockBackend,
    sizeBytes: number,
    private readonly id: DiskIdentity,
    private readonly idm: IdmEndpoint,
  ) {
    this.blocks = Math.floor(sizeBytes / BLOCK_BYTES);
  }

  async execute(cdb: Buffer, dataOut: Buffer | null, dataInBytes: number): Promise<ScsiCompletion> {
    const op = cdb[0]!;
    if (op === IDM_SCSI_OPCODE) return this.idm.execute(cdb, dataOut, dataInBytes);
    const rw = decodeRw(cdb);
    if (rw) return this.rw(rw, dataOut);
    switch (op) {
      case 0x00: return good();                                   // TEST UNIT READY
      case 0x03: return good(Buffer.from(fixedSense(0, 0)));      // REQUEST SENSE: no sense
      case 0x12: return this.inquiry(cdb);
      case 0x1a: return this.modeSense(cdb, false);
      case 0x5a: return this.modeSense(cdb, true);
      case 0x25: {                                                // READ CAPACITY (10)
        const b = Buffer.alloc(8);
        b.writeUInt32BE(Math.min(this.blocks - 1, 0xffffffff), 0);
        b.writeUInt32BE(BLOCK_BYTES, 4);
        return good(b);
      }
      case 0x9e: {                                                // SERVICE ACTION IN (16)
        if ((cdb[1]! & 0x1f) !== 0x10) return check(Sense.invalidField());
        const b = Buffer.alloc(32);
        b.writeBigUInt64BE(BigInt(this.blocks - 1), 0);
        b.writeUInt32BE(BLOCK_BYTES, 8);
        return good(b.subarray(0, Math.min(32, cdb.readUInt32BE(10))));
      }
      case 0x35: case 0x91: return good();                        // SYNCHRONIZE CACHE: the backend writes through
      case 0x1e: return good();                                   // PREVENT ALLOW MEDIUM REMOVAL
      default: return check(Sense.invalidOpcode());
    }
  }

  private async rw(rw: Rw, dataOut: Buffer | null): Promise<ScsiCompletion> {
    if (rw.lba + rw.blocks > this.blocks) return check(Sense.lbaOutOfRange());
    if (rw.blocks === 0) return good();
    const off = rw.lba * BLOCK_BYTES;
    const len = rw.blocks * BLOCK_BYTES;
    try {
      if (rw.write) {
        if (!dataOut || dataOut.length < len) return check(Sense.invalidField());
        await this.backend.write(off, dataOut.subarray(0, len));
        return good();
      }
      return good(await this.backend.read(off, len));
    } catch {
      return check(rw.write ? Sense.writeError() : Sense.mediumError());
    }
  }

  private async inquiry(cdb: Buffer): Promise<ScsiCompletion> {
    const evpd = (cdb[1]! & 1) === 1;
    const page = cdb[2]!;
    const alloc = cdb.readUInt16BE(3);
    let data: Buffer;
    if (!evpd) {
      if (page !== 0) return check(Sense.invalidField());
      data = Buffer.alloc(36);
      data[2] = 0x06;          // SPC-4
      data[3] = 0x02;          // response data format 2
      data[4] = 31;            // additional length
      data[7] = 0x02;          // CmdQue
      data.write('LVMLKDTS', 8, 'ascii');
      data.write('IDM EMULATED    ', 16, 'ascii');
      data.write('0001', 32, 'ascii');
    } else if (page === 0x00) {
      const pages = [0x00, 0x80, 0x83, 0xc3];
      data = Buffer.from([0, 0x00, 0, pages.length, ...pages]);
    } else if (page === 0x80) {
      const s = Buffer.from(this.id.serial, 'ascii');
      data = Buffer.concat([Buffer.from([0, 0x80, 0, s.length]), s]);
    } else if (page === 0x83) {
      data = deviceIdPage(this.id.wwn);
    } else if (page === 0xc3) {
      return this.idm.execute(cdb, null, alloc);
    } else {
      return check(Sense.invalidField());
    }
    return good(data.subarray(0, Math.min(alloc, data.length)));
  }

  private modeSense(cdb: Buffer, ten: boolean): ScsiCompletion {
    const page = cdb[2]! & 0x3f;
    const alloc = ten ? cdb.readUInt16BE(7) : cdb[4]!;
    // Caching page: write cache off (every write is on the medium when it completes).
    const caching = Buffer.alloc(20);
    caching[0] = 0x08;
    caching[1] = 18;
    let pages: Buffer;
    if (page === 0x08 || page === 0x3f) pages = caching;
    else return check(Sense.invalidField());
    const headerLen = ten ? 8 : 4;
    const h = Buffer.alloc(headerLen);
    if (ten) h.writeUInt16BE(headerLen - 2 + pages.length, 0);
    else h[0] = headerLen - 1 + pages.length;
    const data = Buffer.concat([h, pages]);
    return good(data.subarray(0, Math.min(alloc, data.length)));
  }
}
