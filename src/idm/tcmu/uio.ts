// The UIO side of a TCMU device: find /dev/uioN by the name the kernel gives
// it ("tcm-user/<hba>/<device>/<dev_config>"), map its one region (size from
// sysfs maps/map0/size) through koffi's mmap, wait for the kernel's
// "commands queued" interrupt by a 4-byte read of the device (on libuv's
// thread pool, so the event loop runs), and tell the kernel about completed
// entries by a 4-byte write.

import * as fs from 'node:fs';
import { promisify } from 'node:util';

const fsRead = promisify(fs.read);

/* eslint-disable @typescript-eslint/no-explicit-any */
let native: { koffi: any; mmap: any; munmap: any } | null = null;
function lib(): { koffi: any; mmap: any; munmap: any } {
  if (native) return native;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const koffi = require('koffi');
  const c = koffi.load('libc.so.6');
  native = {
    koffi,
    mmap: c.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: c.func('int munmap(void *addr, size_t len)'),
  };
  return native;
}

const PROT_READ_WRITE = 0x3;
const MAP_SHARED = 0x1;

export const UIO_CLASS = '/sys/class/uio';

/** The uio device whose name is `name`, e.g. "uio0"; null when none is. */
export function findUio(name: string, root = UIO_CLASS): string | null {
  let entries: string[];
  try { entries = fs.readdirSync(root); } catch { return null; }
  for (const e of entries) {
    try {
      if (fs.readFileSync(`${root}/${e}/name`, 'utf8').trim() === name) return e;
    } catch { /* gone */ }
  }
  return null;
}

export class UioDevice {
  readonly mem: Buffer;
  private readonly ptr: unknown;
  private readonly irq = Buffer.alloc(4);

  private constructor(readonly dev: string, readonly fd: number, readonly size: number) {
    const { koffi, mmap } = lib();
    const p = mmap(null, size, PROT_READ_WRITE, MAP_SHARED, fd, 0);
    if (p === null || koffi.address(p) === 0xffffffffffffffffn) throw new Error(`mmap of /dev/${dev} (${size} bytes) failed: errno ${koffi.errno()}`);
    this.ptr = p;
    this.mem = Buffer.from(koffi.view(p, size) as ArrayBuffer);
  }

  static open(dev: string): UioDevice {
    const size = Number(fs.readFileSync(`${UIO_CLASS}/${dev}/maps/map0/size`, 'utf8').trim());
    if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`${dev}: bad map size`);
    const fd = fs.openSync(`/dev/${dev}`, fs.constants.O_RDWR);
    try {
      return new UioDevice(dev, fd, size);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Resolves when the kernel has signalled since the last wait (event counter). */
  async waitEvent(): Promise<number> {
    const { bytesRead } = await fsRead(this.fd, this.irq, 0, 4, null);
    if (bytesRead !== 4) throw new Error(`/dev/${this.dev}: short read ${bytesRead}`);
    return this.irq.readUInt32LE(0);
  }

  /** Tells the kernel to reap completed entries (uio write -> tcmu irqcontrol). */
  kick(): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(1, 0);
    fs.writeSync(this.fd, b);
  }

  close(): void {
    const { munmap } = lib();
    munmap(this.ptr, this.size);
    fs.closeSync(this.fd);
  }
}
