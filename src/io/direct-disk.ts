/**
 * Disk implementation for real devices and files: O_DIRECT | O_SYNC, so every
 * read goes to the medium and every write is on the medium when it returns.
 * The page cache is never used — two hosts sharing a LUN do not share a page
 * cache, so cached reads would break the lease algorithms.
 *
 * O_DIRECT needs the user buffer aligned (to the logical block size; we use
 * 4096). Node cannot allocate aligned Buffers, so we call posix_memalign()
 * through koffi and wrap the memory with koffi.view(); fs.read/fs.write then
 * run on libuv's thread pool with that memory, which keeps the event loop free.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { Disk, DiskError, IoOptions, checkIo } from './disk';

const fsRead = promisify(fs.read);
const fsWrite = promisify(fs.write);
const fsOpen = promisify(fs.open);

const ALIGN = 4096;

/**
 * I/Os that timed out but are still held by the device, per disk, beyond
 * which new I/O is refused at once. Each such I/O pins one libuv thread
 * until the device answers; without a bound, a device that hangs (a dead
 * path without a SCSI timeout) would take every thread of the pool, and with
 * them the I/O of healthy lockspaces and the close() that ends this one.
 */
export const MAX_STUCK_IOS = 2;

interface Native {
  alloc(size: number): { buf: Buffer; ptr: unknown };
  free(ptr: unknown): void;
  lseekEnd(fd: number): number;
}

let native: Native | undefined;

function loadNative(): Native {
  if (native) return native;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const koffi = require('koffi');
  const libc = koffi.load('libc.so.6');
  const posixMemalign = libc.func('int posix_memalign(_Out_ void **memptr, size_t alignment, size_t size)');
  const cfree = libc.func('void free(void *ptr)');
  const lseek = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');
  native = {
    alloc(size: number) {
      const out: unknown[] = [null];
      const rc = posixMemalign(out, ALIGN, size) as number;
      if (rc !== 0 || !out[0]) throw new DiskError('EIO', `posix_memalign(${size}) failed: ${rc}`);
      const buf = Buffer.from(koffi.view(out[0], size) as ArrayBuffer);
      return { buf, ptr: out[0] };
    },
    free(ptr: unknown) {
      cfree(ptr);
    },
    lseekEnd(fd: number) {
      const r = lseek(fd, 0, 2 /* SEEK_END */);
      return Number(r);
    },
  };
  return native;
}

export interface DirectDiskOptions {
  /** Override the detected logical sector size. */
  sectorSize?: number;
  /** Default per-I/O timeout in ms (sanlock uses io_timeout seconds). */
  defaultTimeoutMs?: number;
  /** Open read-only. */
  readOnly?: boolean;
}

/** Logical sector size: sysfs for block devices, 512 for regular files (as sanlock). */
export function detectSectorSize(path: string): number {
  const st = fs.statSync(path);
  if (!st.isBlockDevice()) return 512;
  const rdev = st.rdev;
  const major = (rdev >> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  try {
    const v = parseInt(fs.readFileSync(`/sys/dev/block/${major}:${minor}/queue/logical_block_size`, 'utf8'), 10);
    if (v === 512 || v === 4096) return v;
  } catch {
    /* fall through */
  }
  return 512;
}

export class DirectDisk implements Disk {
  readonly path: string;
  readonly sectorSize: number;
  private fd: number | undefined;
  private readonly defaultTimeoutMs: number | undefined;
  private cachedSize: number | undefined;
  private inflight = 0;
  /** I/Os whose caller got ETIMEDOUT and that the device has not completed yet. */
  private stuck = 0;
  /** Aligned buffers not in use, by size (reused: no mmap/munmap and page faults per I/O). */
  private readonly pool = new Map<number, Array<{ buf: Buffer; ptr: unknown }>>();

  private take(size: number): { buf: Buffer; ptr: unknown } {
    const free = this.pool.get(size);
    const got = free?.pop();
    return got ?? loadNative().alloc(size);
  }

  private give(b: { buf: Buffer; ptr: unknown }): void {
    const size = b.buf.length;
    const free = this.pool.get(size) ?? [];
    if (this.fd === undefined || free.length >= 4) {
      loadNative().free(b.ptr);
      return;
    }
    free.push(b);
    this.pool.set(size, free);
  }

  private constructor(path: string, fd: number, sectorSize: number, defaultTimeoutMs?: number) {
    this.path = path;
    this.fd = fd;
    this.sectorSize = sectorSize;
    this.defaultTimeoutMs = defaultTimeoutMs;
  }

  static async open(path: string, opts: DirectDiskOptions = {}): Promise<DirectDisk> {
    loadNative();
    let sectorSize: number;
    try {
      sectorSize = opts.sectorSize ?? detectSectorSize(path);
    } catch (e) {
      throw new DiskError('ENODEV', `cannot open ${path}: ${(e as Error).message}`);
    }
    const c = fs.constants;
    const flags = (opts.readOnly ? c.O_RDONLY : c.O_RDWR) | c.O_DIRECT | c.O_SYNC;
    let fd: number;
    try {
      fd = await fsOpen(path, flags);
    } catch (e) {
      throw new DiskError('ENODEV', `cannot open ${path} with O_DIRECT: ${(e as Error).message}`);
    }
    return new DirectDisk(path, fd, sectorSize, opts.defaultTimeoutMs);
  }

  private getFd(op: string): number {
    if (this.fd === undefined) throw new DiskError('ECLOSED', `${op} ${this.path}: disk is closed`);
    return this.fd;
  }

  async size(): Promise<number> {
    const fd = this.getFd('size');
    if (this.cachedSize === undefined) {
      const st = fs.fstatSync(fd);
      this.cachedSize = st.isBlockDevice() ? loadNative().lseekEnd(fd) : st.size;
    }
    return this.cachedSize;
  }

  /** I/Os that timed out and are still outstanding on the device. */
  get stuckIos(): number {
    return this.stuck;
  }

  /** Refuses new I/O while the device still holds MAX_STUCK_IOS timed-out ones. */
  private checkNotStuck(op: string, offset: number, opts?: IoOptions): void {
    if (this.stuck < MAX_STUCK_IOS) return;
    throw new DiskError('ETIMEDOUT', `${op} ${this.path} offset ${offset}${opts?.label ? ` (${opts.label})` : ''} not issued: ` +
      `${this.stuck} earlier I/Os timed out and the device has not completed them`);
  }

  private withTimeout<T>(p: Promise<T>, op: string, offset: number, opts?: IoOptions): Promise<T> {
    const ms = opts?.timeoutMs ?? this.defaultTimeoutMs;
    if (!ms || ms <= 0) return p;
    return new Promise<T>((resolve, reject) => {
      let timedOut = false;
      const t = setTimeout(() => {
        timedOut = true;
        this.stuck++;
        reject(new DiskError('ETIMEDOUT', `${op} ${this.path} offset ${offset}${opts?.label ? ` (${opts.label})` : ''} timed out after ${ms} ms`));
      }, ms);
      const settle = (): void => {
        clearTimeout(t);
        if (timedOut) this.stuck--;
      };
      p.then(
        (v) => {
          settle();
          resolve(v);
        },
        (e) => {
          settle();
          reject(e);
        },
      );
    });
  }

  async read(offset: number, length: number, opts?: IoOptions): Promise<Buffer> {
    const fd = this.getFd('read');
    checkIo(this, 'read', offset, length, undefined);
    this.checkNotStuck('read', offset, opts);
    const mem = this.take(length);
    const buf = mem.buf;
    this.inflight++;
    const io = fsRead(fd, buf, 0, length, offset)
      .then((r) => {
        if (r.bytesRead !== length) {
          throw new DiskError(
            'ERANGE',
            `read ${this.path}: short read of ${r.bytesRead}/${length} bytes at offset ${offset} (device too small?)`,
          );
        }
        // copy out of the aligned memory (allocUnsafe + copy: one memcpy, no fill)
        const copy = Buffer.allocUnsafe(length);
        buf.copy(copy, 0, 0, length);
        return copy;
      })
      .catch((e: unknown) => {
        if (e instanceof DiskError) throw e;
        throw new DiskError('EIO', `read ${this.path} offset ${offset} length ${length}: ${(e as Error).message}`);
      })
      .finally(() => {
        // The aligned memory is reused or freed only when the kernel is done
        // with it, even if the caller already gave up on a timeout.
        this.give(mem);
        this.inflight--;
      });
    return this.withTimeout(io, 'read', offset, opts);
  }

  async write(offset: number, data: Buffer, opts?: IoOptions): Promise<void> {
    const fd = this.getFd('write');
    checkIo(this, 'write', offset, data.length, undefined);
    this.checkNotStuck('write', offset, opts);
    const mem = this.take(data.length);
    const buf = mem.buf;
    data.copy(buf);
    this.inflight++;
    const io = fsWrite(fd, buf, 0, data.length, offset)
      .then((r) => {
        if (r.bytesWritten !== data.length) {
          throw new DiskError(
            'ERANGE',
            `write ${this.path}: short write of ${r.bytesWritten}/${data.length} bytes at offset ${offset}`,
          );
        }
      })
      .catch((e: unknown) => {
        if (e instanceof DiskError) throw e;
        throw new DiskError('EIO', `write ${this.path} offset ${offset} length ${data.length}: ${(e as Error).message}`);
      })
      .finally(() => {
        this.give(mem);
        this.inflight--;
      });
    return this.withTimeout(io, 'write', offset, opts);
  }

  async close(): Promise<void> {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    for (const free of this.pool.values()) for (const b of free) loadNative().free(b.ptr);
    this.pool.clear();
    // close(2) directly, not on the thread pool: threads may all be held by
    // I/O the device never completes, and close does not wait for it.
    fs.closeSync(fd);
  }
}
