// NVMe encoding of the IDM commands (propeller: src/idm_nvme_io.[ch],
// idm_nvme_utils.c fill_nvme_cmd, idm_nvme_io_admin.c): an admin passthrough
// command (NVME_IOCTL_ADMIN_CMD) with the vendor opcodes 0xC1 (IDM write) /
// 0xC2 (IDM read), the same 512-byte records as SCSI, and the vendor status
// codes mapped to errno. The version is byte 1023 of Identify Controller.
// Pure codec: the ioctl is in nvme-passthru.ts, the ILM side in nvme-idm-io.ts,
// the drive side in nvme-tcp/.

import { E } from '../core/constants';
import { MutexOp } from './record';

export const NVME_IDM_WRITE = 0xc1;
export const NVME_IDM_READ = 0xc2;
export const NVME_ADMIN_IDENTIFY = 0x06;
export const NVME_IDENTIFY_CNS_CTRL = 0x01;
export const NVME_IDENTIFY_BYTES = 4096;
/** Identify Controller's vs[1023] (vendor specific area from byte 3072), the IDM spec version: major << 4 | minor. */
export const NVME_IDM_VERSION_OFFSET = 3072 + 1023;
/** struct nvme_admin_cmd / nvme_passthru_cmd: 72 bytes. */
export const NVME_ADMIN_CMD_BYTES = 72;
/** _IOWR('N', 0x41, struct nvme_admin_cmd). */
export const NVME_IOCTL_ADMIN_CMD = 0xc0484e41;
export const NVME_TIMEOUT_MS = 15000;

/** One admin command as struct nvme_passthru_cmd carries it (the data buffer is the transport's business). */
export interface NvmeAdminCommand {
  opcode: number;
  nsid: number;
  cdw10: number;
  cdw11: number;
  cdw12: number;
  cdw13: number;
  cdw14: number;
  cdw15: number;
  /** Bytes to the controller (opcode bit 0 set), or null for a data-in or no-data command. */
  dataOut: Buffer | null;
  /** Data-in buffer size (0 with dataOut). */
  dataInBytes: number;
  timeoutMs: number;
}

export type NvmeAdminReply =
  /** status: what the ioctl returns, the completion's status field without the phase bit (0 = success). */
  | { ok: true; status: number; result: number; dataIn: Buffer }
  /** The command never reached the controller or the ioctl failed: a negative errno. */
  | { ok: false; errno: number; message: string };

/** What carries admin commands to one controller (the ioctl, or a test initiator). */
export interface NvmeAdminChannel {
  readonly path: string;
  admin(cmd: NvmeAdminCommand): Promise<NvmeAdminReply>;
  close(): void;
}

function blank(opcode: number): NvmeAdminCommand {
  return { opcode, nsid: 0, cdw10: 0, cdw11: 0, cdw12: 0, cdw13: 0, cdw14: 0, cdw15: 0, dataOut: null, dataInBytes: 0, timeoutMs: NVME_TIMEOUT_MS };
}

/** cdw12 of an IDM command: IDM opcode in bits 7:4, group in bits 15:8. */
export function idmCdw12(mutexOp: number, group: number): number {
  return (((group & 0xff) << 8) | ((mutexOp & 0x0f) << 4)) >>> 0;
}

/** IDM write (0xC1): one 512-byte record, cdw10 = number of dwords. */
export function idmWriteCommand(mutexOp: number, group: number, record: Buffer): NvmeAdminCommand {
  return { ...blank(NVME_IDM_WRITE), cdw10: record.length >>> 2, cdw12: idmCdw12(mutexOp, group), dataOut: record };
}

/** IDM read (0xC2): `bytes` of records; reads send INIT (1), which the drive ignores. */
export function idmReadCommand(group: number, bytes: number): NvmeAdminCommand {
  return { ...blank(NVME_IDM_READ), cdw10: bytes >>> 2, cdw12: idmCdw12(MutexOp.INIT, group), dataInBytes: bytes };
}

/** Identify Controller (CNS 1), 4096 bytes, as nvme_admin_identify. */
export function identifyControllerCommand(): NvmeAdminCommand {
  return { ...blank(NVME_ADMIN_IDENTIFY), cdw10: NVME_IDENTIFY_CNS_CTRL, dataInBytes: NVME_IDENTIFY_BYTES };
}

/** The 72-byte ioctl argument (little-endian, as the kernel struct on x86_64/arm64). */
export function encodePassthru(c: NvmeAdminCommand, dataAddress: bigint): Buffer {
  const b = Buffer.alloc(NVME_ADMIN_CMD_BYTES);
  b[0] = c.opcode;
  b.writeUInt32LE(c.nsid >>> 0, 4);
  b.writeBigUInt64LE(dataAddress, 24);
  b.writeUInt32LE(c.dataOut ? c.dataOut.length : c.dataInBytes, 36);
  b.writeUInt32LE(c.cdw10 >>> 0, 40);
  b.writeUInt32LE(c.cdw11 >>> 0, 44);
  b.writeUInt32LE(c.cdw12 >>> 0, 48);
  b.writeUInt32LE(c.cdw13 >>> 0, 52);
  b.writeUInt32LE(c.cdw14 >>> 0, 56);
  b.writeUInt32LE(c.cdw15 >>> 0, 60);
  b.writeUInt32LE(c.timeoutMs >>> 0, 64);
  return b;
}

/** The `result` field the kernel fills in (completion dword 0). */
export function passthruResult(b: Buffer): number {
  return b.readUInt32LE(68);
}

export interface NvmeIdmCommand {
  nvmeOpcode: typeof NVME_IDM_WRITE | typeof NVME_IDM_READ;
  /** IDM mutex opcode (reads send INIT, which the drive ignores). */
  mutexOp: number;
  group: number;
  dataAddress: bigint;
  dataBytes: number;
}

/** The ioctl argument of one IDM command (kept for the byte-table tests). */
export function encodeNvmeAdminCmd(c: NvmeIdmCommand): Buffer {
  const cmd = c.nvmeOpcode === NVME_IDM_WRITE
    ? idmWriteCommand(c.mutexOp, c.group, Buffer.alloc(c.dataBytes))
    : { ...idmReadCommand(c.group, c.dataBytes), cdw12: idmCdw12(c.mutexOp, c.group) };
  return encodePassthru(cmd, c.dataAddress);
}

/** Vendor status codes (status code type 1). */
export const NvmeIdmStatus = {
  MUTEX_OP_FAILURE: 0xc0, REVERSE_OWNER_CHECK_FAILURE: 0xc1, OP_FAILURE_STATE: 0xc2, OP_FAILURE_CLASS: 0xc3,
  OP_FAILURE_OWNER: 0xc4, OPCODE_INVALID: 0xc5, LIMIT_EXCEEDED: 0xc6, LIMIT_EXCEEDED_HOST: 0xc7,
  LIMIT_EXCEEDED_SHARED_HOST: 0xc8, GROUP_INVALID: 0xc9, RESERVATION_CONFLICT: 0xca, COMMAND_TERMINATED: 0xcb,
  BUSY: 0xcc,
} as const;
export const NVME_SCT_VENDOR = 1;
/** Do Not Retry, in the status field the ioctl returns (bit 14). */
export const NVME_STATUS_DNR = 0x4000;

/** The status field (as the ioctl returns it) for a status code type and code. */
export function nvmeStatus(sct: number, sc: number, dnr = true): number {
  return ((sct & 7) << 8) | (sc & 0xff) | (dnr ? NVME_STATUS_DNR : 0);
}

/** ioctl's return value -> errno, as propeller's _idm_cmd_check_status (only the status code byte counts). */
export function nvmeErrno(ioctlResult: number, mutexOp: number): number {
  if (ioctlResult <= 0) return ioctlResult;
  const sc = ioctlResult & 0xff;
  switch (sc) {
    case NvmeIdmStatus.LIMIT_EXCEEDED:
    case NvmeIdmStatus.LIMIT_EXCEEDED_HOST:
    case NvmeIdmStatus.LIMIT_EXCEEDED_SHARED_HOST:
      return -E.NOMEM;
    case NvmeIdmStatus.GROUP_INVALID:
      return -E.NOENT;
    case NvmeIdmStatus.RESERVATION_CONFLICT:
      return mutexOp === MutexOp.REFRESH ? -E.TIME : mutexOp === MutexOp.UNLOCK ? -E.NOENT : -E.BUSY;
    case NvmeIdmStatus.COMMAND_TERMINATED:
      return mutexOp === MutexOp.REFRESH ? -E.PERM : mutexOp === MutexOp.UNLOCK ? -E.INVAL : -E.AGAIN;
    case NvmeIdmStatus.BUSY:
      return -E.BUSY;
    default:
      return -E.INVAL;
  }
}
