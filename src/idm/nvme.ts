// NVMe encoding of the IDM commands (propeller: src/idm_nvme_io.[ch]): an
// admin passthrough command (NVME_IOCTL_ADMIN_CMD) with the vendor opcodes
// 0xC1 (IDM write) / 0xC2 (IDM read), the same 512-byte records as SCSI, and
// the vendor status codes mapped to errno. Pure codec; there is no NVMe
// transport here yet (no NVMe device to test one against).

import { E } from '../core/constants';
import { MutexOp } from './record';

export const NVME_IDM_WRITE = 0xc1;
export const NVME_IDM_READ = 0xc2;
/** struct nvme_admin_cmd / nvme_passthru_cmd: 72 bytes. */
export const NVME_ADMIN_CMD_BYTES = 72;
/** _IOWR('N', 0x41, struct nvme_admin_cmd). */
export const NVME_IOCTL_ADMIN_CMD = 0xc0484e41;
export const NVME_TIMEOUT_MS = 15000;

export interface NvmeIdmCommand {
  nvmeOpcode: typeof NVME_IDM_WRITE | typeof NVME_IDM_READ;
  /** IDM mutex opcode (reads send INIT, which the drive ignores). */
  mutexOp: number;
  group: number;
  dataAddress: bigint;
  dataBytes: number;
}

/** The 72-byte ioctl argument (little-endian, as the kernel struct on x86_64/arm64). */
export function encodeNvmeAdminCmd(c: NvmeIdmCommand): Buffer {
  const b = Buffer.alloc(NVME_ADMIN_CMD_BYTES);
  b[0] = c.nvmeOpcode;
  b.writeBigUInt64LE(c.dataAddress, 24);
  b.writeUInt32LE(c.dataBytes, 36);
  b.writeUInt32LE(Math.floor(c.dataBytes / 4), 40); // cdw10: number of dwords
  b[48] = (c.mutexOp & 0x0f) << 4;                   // cdw12 byte 0: opcode in bits 7:4
  b[49] = c.group & 0xff;                            // cdw12 byte 1: group
  b.writeUInt32LE(NVME_TIMEOUT_MS, 64);
  return b;
}

/** Vendor status codes (status code type 1). */
export const NvmeIdmStatus = {
  MUTEX_OP_FAILURE: 0xc0, REVERSE_OWNER_CHECK_FAILURE: 0xc1, OP_FAILURE_STATE: 0xc2, OP_FAILURE_CLASS: 0xc3,
  OP_FAILURE_OWNER: 0xc4, OPCODE_INVALID: 0xc5, LIMIT_EXCEEDED: 0xc6, LIMIT_EXCEEDED_HOST: 0xc7,
  LIMIT_EXCEEDED_SHARED_HOST: 0xc8, GROUP_INVALID: 0xc9, RESERVATION_CONFLICT: 0xca, COMMAND_TERMINATED: 0xcb,
  BUSY: 0xcc,
} as const;

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
