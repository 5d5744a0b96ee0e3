// NVMe admin passthrough (NVME_IOCTL_ADMIN_CMD) on an NVMe device node
// (/dev/nvmeXnY or the controller's /dev/nvmeX), as propeller's
// _sync_idm_cmd_send and _send_nvme_cmd_admin: the node is opened read-only
// for each command and closed after it, one struct nvme_passthru_cmd per
// command. The ioctl answers 0, the completion's status field (a positive
// number: SC in bits 7:0, SCT in 10:8, DNR in 14), or -1 with errno. It runs
// on a koffi worker thread so a slow controller does not stall the event loop;
// the data buffer is allocated by koffi so its address stays fixed.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { E } from '../core/constants';
import { NVME_IOCTL_ADMIN_CMD, encodePassthru, passthruResult, type NvmeAdminChannel, type NvmeAdminCommand, type NvmeAdminReply } from './nvme';
import { ioctlBinding } from './ioctl';

export class NvmePassthruTransport implements NvmeAdminChannel {
  constructor(readonly path: string, private readonly request = NVME_IOCTL_ADMIN_CMD) {}

  close(): void { /* nothing held between commands */ }

  async admin(cmd: NvmeAdminCommand): Promise<NvmeAdminReply> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(this.path, fs.constants.O_RDONLY);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      const errno = (os.constants.errno as Record<string, number>)[code] ?? E.IO;
      return { ok: false, errno: -errno, message: `${this.path}: ${(e as Error).message}` };
    }
    const { koffi, ioctl } = ioctlBinding();
    const len = cmd.dataOut ? cmd.dataOut.length : cmd.dataInBytes;
    const mem = len > 0 ? koffi.alloc('uint8_t', len) : null;
    try {
      if (cmd.dataOut && mem) new Uint8Array(koffi.view(mem, len)).set(cmd.dataOut);
      const arg = encodePassthru(cmd, mem ? koffi.address(mem) : 0n);
      const rv = await new Promise<number>((resolve, reject) => {
        ioctl.async(fh.fd, this.request, arg, (err: unknown, r: number) => (err ? reject(err) : resolve(Number(r))));
      });
      if (rv < 0) return { ok: false, errno: -(koffi.errno() || E.IO), message: `${this.path}: NVME_IOCTL_ADMIN_CMD failed` };
      const dataIn = !cmd.dataOut && mem ? Buffer.from(new Uint8Array(koffi.view(mem, len)).slice()) : Buffer.alloc(0);
      return { ok: true, status: rv, result: passthruResult(arg), dataIn };
    } finally {
      if (mem) koffi.free(mem);
      await fh.close();
    }
  }
}
