// The NVMe encoding of the IDM commands over an admin channel (propeller:
// src/idm_nvme_io.c, idm_nvme_api.c): IDM write 0xC1 / read 0xC2 with the
// IDM opcode and group in cdw12, the completion status mapped by
// nvmeErrno; the version from byte 1023 of Identify Controller (high nibble
// major, low nibble minor).

import type { IdmIo } from './idm-io';
import { MutexOp, RECORD_BYTES } from './record';
import {
  NVME_IDM_VERSION_OFFSET, identifyControllerCommand, idmReadCommand, idmWriteCommand, nvmeErrno,
  type NvmeAdminChannel,
} from './nvme';
import { Group } from './record';

export class NvmeIdmIo implements IdmIo {
  constructor(readonly channel: NvmeAdminChannel) {}

  get path(): string { return this.channel.path; }

  async mutexWrite(mutexOp: number, record: Buffer): Promise<number> {
    const r = await this.channel.admin(idmWriteCommand(mutexOp, Group.DEFAULT, record));
    return r.ok ? nvmeErrno(r.status, mutexOp) : r.errno;
  }

  async readRecords(group: number, records: number): Promise<{ rv: number; data: Buffer }> {
    const r = await this.channel.admin(idmReadCommand(group, records * RECORD_BYTES));
    if (!r.ok) return { rv: r.errno, data: Buffer.alloc(0) };
    const rv = nvmeErrno(r.status, MutexOp.INIT);
    return { rv, data: rv === 0 ? r.dataIn : Buffer.alloc(0) };
  }

  async version(): Promise<{ rv: number; major: number; minor: number }> {
    const r = await this.channel.admin(identifyControllerCommand());
    if (!r.ok) return { rv: r.errno, major: 0, minor: 0 };
    // propeller's nvme_admin_identify hands back the ioctl's value; a positive status is not < 0 there,
    // so it reads the zeroed buffer. We report it as -EINVAL instead of version 0.0.
    if (r.status !== 0) return { rv: nvmeErrno(r.status, MutexOp.INIT), major: 0, minor: 0 };
    const raw = r.dataIn[NVME_IDM_VERSION_OFFSET] ?? 0;
    return { rv: 0, major: raw >> 4, minor: raw & 0x0f };
  }

  close(): void {
    this.channel.close();
  }
}
