// The IDM vendor admin commands as the emulated drive's NVMe front end
// answers them (propeller: src/idm_nvme_io.c, idm_nvme_api.c): 0xC1 writes
// one 512-byte record with the IDM opcode in cdw12 bits 7:4 and the group in
// bits 15:8; 0xC2 reads records of a group (1: mutex list, 0xFF: inquiry
// counters). The firmware model's outcomes become the vendor status codes
// (status code type 1) that propeller maps to errno. Pure: the drive's time
// comes in as an argument.

import type { IdmFirmware, Outcome } from '../firmware';
import { Group, RECORD_BYTES, deadRecord, decodeWriteRecord, encodeInquiry, encodeReadRecord } from '../record';
import { NVME_IDM_READ, NVME_IDM_WRITE, NVME_SCT_VENDOR, NvmeIdmStatus, nvmeStatus } from '../nvme';
import { LIST_RECORDS_MAX } from '../scsi-target';

export interface VendorCompletion { status: number; dataIn: Buffer; mutated: boolean }

const vendor = (sc: number): number => nvmeStatus(NVME_SCT_VENDOR, sc);

export function outcomeStatus(o: Outcome): number {
  switch (o) {
    case 'good': return 0;
    case 'not-found': return vendor(NvmeIdmStatus.GROUP_INVALID);
    case 'invalid-opcode': return vendor(NvmeIdmStatus.OPCODE_INVALID);
    case 'mutex-list-full': return vendor(NvmeIdmStatus.LIMIT_EXCEEDED);
    case 'host-list-full': return vendor(NvmeIdmStatus.LIMIT_EXCEEDED_HOST);
    case 'mutex-host-list-full': return vendor(NvmeIdmStatus.LIMIT_EXCEEDED_SHARED_HOST);
    case 'conflict': return vendor(NvmeIdmStatus.RESERVATION_CONFLICT);
    case 'busy': return vendor(NvmeIdmStatus.BUSY);
    case 'terminated': return vendor(NvmeIdmStatus.COMMAND_TERMINATED);
  }
}

export function isIdmVendorOpcode(opcode: number): boolean {
  return opcode === NVME_IDM_WRITE || opcode === NVME_IDM_READ;
}

export function executeIdmVendor(
  fw: IdmFirmware, opcode: number, cdw10: number, cdw12: number, dataOut: Buffer | null, dataInBytes: number, nowMs: number,
): VendorCompletion {
  const mutexOp = (cdw12 >> 4) & 0x0f;
  const group = (cdw12 >> 8) & 0xff;
  const none = Buffer.alloc(0);
  if (opcode === NVME_IDM_WRITE) {
    if (group !== Group.DEFAULT || !dataOut || dataOut.length < RECORD_BYTES || cdw10 * 4 !== dataOut.length) {
      return { status: vendor(NvmeIdmStatus.OPCODE_INVALID), dataIn: none, mutated: false };
    }
    const o = fw.write(mutexOp, decodeWriteRecord(dataOut), nowMs);
    return { status: outcomeStatus(o), dataIn: none, mutated: o === 'good' };
  }
  const records = Math.floor(dataInBytes / RECORD_BYTES);
  if (records === 0 || records > LIST_RECORDS_MAX || cdw10 * 4 !== dataInBytes) {
    return { status: vendor(NvmeIdmStatus.OPCODE_INVALID), dataIn: none, mutated: false };
  }
  if (group === Group.INQUIRY) {
    const inq = encodeInquiry(fw.counters(nowMs));
    const out = Buffer.alloc(records * RECORD_BYTES);
    inq.copy(out, 0, 0, Math.min(inq.length, out.length));
    return { status: 0, dataIn: out, mutated: false };
  }
  if (group !== Group.DEFAULT) return { status: vendor(NvmeIdmStatus.GROUP_INVALID), dataIn: none, mutated: false };
  const rows = fw.list(nowMs);
  const out: Buffer[] = [];
  for (let i = 0; i < records; i++) out.push(i < rows.length ? encodeReadRecord(rows[i]!) : deadRecord());
  return { status: 0, dataIn: Buffer.concat(out), mutated: false };
}
