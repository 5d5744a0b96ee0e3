/**
 * Disk implementation for real devices and files: O_DIRECT | O_SYNC, so every
 * read goes to the medium and every write is on the medium when it returns.
 * The page cache is never used — two hosts sharing a LUN do not share a page
 * cache, so cached reads would break the lease algorithms.
 *
 * O_DIRECT needs the user buffer aligned (to the logical block size; we use
 * 4096). Node cannot allocate aligned Buffers, so we call posix_memalign()
 * through koffi and wrap the memory with koffi.view().
 *
 * The I/O itself goes through Linux native aio (./linux-aio), as sanlock's
 * does: a synchronous O_SYNC pwrite() on a block device costs a device flush
 * on top of the FUA write, an aio write only the FUA write. When aio is not
 * available (io_setup fails, e.g. fs.aio-max-nr used up) or is turned off,
 * fs.read/fs.write run the I/O on libuv's thread pool instead. Either way
 * the event loop never waits for the device.
 */
import * as fs from 'node:fs';
import { promisify, getSystemErrorMap } from 'node:util';
import { Disk, DiskError, IoOptions, checkIo } from './disk';
import { AioQueue, AioSubmitError, AioSys, IOCB_CMD_PREAD, IOCB_CMD_PWRITE, NativeMem, linuxAioSys } from './linux-aio';
import { Errno } from '../util/errno';

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
  alloc(size: number): NativeMem;
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
      return { buf, ptr: out[0], addr: koffi.address(out[0]) as bigint };
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
  /**
   * Which I/O goes through Linux native aio: 'all' (default), 'writes', or
   * 'off' (everything on libuv's thread pool). Without this option the
   * environment variable LVMLOCKD_DISK_AIO (same values) decides.
   */
  aio?: AioMode;
}

export type AioMode = 'all' | 'writes' | 'off';

export const DEFAULT_AIO_MODE: AioMode = 'all';

/** Requests per aio context (io_setup nr_events); more outstanding I/O uses the thread pool. */
export const AIO_NR_EVENTS = 32;

const { EAGAIN } = Errno;

/** Tests only: a fake aio platform for the disks opened while it is set. */
export const aioTesting: { sys: AioSys | undefined } = { sys: undefined };

function aioModeFromEnv(): AioMode {
  const v = process.env['LVMLOCKD_DISK_AIO'];
  return v === 'all' || v === 'writes' || v === 'off' ? v : DEFAULT_AIO_MODE;
}

/** The aio queue gave up on a context: the kernel may still use the I/O's memory. */
class AbandonedIoError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'AbandonedIoError';
  }
}

/** An error like libuv's ("EIO: i/o error, write") for an errno from an aio completion. */
function errnoError(errno: number, op: string): Error {
  const m = getSystemErrorMap().get(-errno);
  return new Error(m ? `${m[0]}: ${m[1]}, ${op}` : `errno ${errno}, ${op}`);
}

/** What a disk's I/O goes through, for tests and diagnostics. */
export interface AioStatus {
  mode: AioMode;
  /** An aio context is open and used. */
  active: boolean;
  /** Why aio is not used although the mode asks for it. */
  reason?: string;
  /** aio I/Os submitted and not completed (including timed-out ones), also after close(). */
  outstanding: number;
  /** The disk's aio context was destroyed (after close(), once idle). */
  contextDestroyed: boolean;
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

/** Released read buffers kept per size (a lease acquire holds at most two at once). */
const SPARE_COPIES_PER_SIZE = 4;

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
  private readonly pool = new Map<number, NativeMem[]>();
  /**
   * Buffers read() returned and the caller gave back with release(), by size:
   * the next read of that size copies into one of them instead of a fresh
   * allocation (a fresh 1 MiB buffer costs page faults on every lease read).
   */
  private readonly spareCopies = new Map<number, Buffer[]>();
  /** Buffers read() returned that release() may still take back (each at most once). */
  private readonly lent = new WeakSet<Buffer>();
  private readonly aioMode: AioMode;
  private aio: AioQueue | undefined;
  /** The queue this disk opened, kept after close() for aioStatus. */
  private aioOpened: AioQueue | undefined;
  private aioReason: string | undefined;

  private take(size: number): NativeMem {
    const free = this.pool.get(size);
    const got = free?.pop();
    return got ?? loadNative().alloc(size);
  }

  private give(b: NativeMem): void {
    const size = b.buf.length;
    const free = this.pool.get(size) ?? [];
    if (this.fd === undefined || free.length >= 4) {
      loadNative().free(b.ptr);
      return;
    }
    free.push(b);
    this.pool.set(size, free);
  }

  private constructor(path: string, fd: number, sectorSize: number, defaultTimeoutMs: number | undefined, aioMode: AioMode) {
    this.path = path;
    this.fd = fd;
    this.sectorSize = sectorSize;
    this.defaultTimeoutMs = defaultTimeoutMs;
    this.aioMode = aioMode;
    if (aioMode !== 'off') this.openAio();
  }

  private openAio(): void {
    try {
      const n = loadNative();
      const sys = aioTesting.sys ?? linuxAioSys(n.alloc, (m) => n.free(m.ptr));
      const q = AioQueue.create(sys, AIO_NR_EVENTS);
      if (q instanceof AioQueue) this.aio = this.aioOpened = q;
      else this.aioReason = `io_setup failed: ${errnoError(q.errno, 'io_setup').message}`;
    } catch (e) {
      this.aioReason = `aio unavailable: ${(e as Error).message}`;
    }
  }

  get aioStatus(): AioStatus {
    const q = this.aioOpened;
    const st: AioStatus = {
      mode: this.aioMode,
      active: this.aio !== undefined,
      outstanding: q?.outstanding ?? 0,
      contextDestroyed: q?.isDestroyed ?? false,
    };
    if (this.aioReason !== undefined) st.reason = this.aioReason;
    return st;
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
    return new DirectDisk(path, fd, sectorSize, opts.defaultTimeoutMs, opts.aio ?? aioModeFromEnv());
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

  /** The aio queue for this I/O, or undefined for the thread pool. */
  private aioFor(op: 'read' | 'write'): AioQueue | undefined {
    const q = this.aio;
    if (!q || (op === 'read' && this.aioMode !== 'all')) return undefined;
    if (q.broken !== undefined) {
      this.dropAio(q.broken);
      return undefined;
    }
    return q.usable() ? q : undefined;
  }

  private dropAio(reason: string): void {
    this.aioReason = reason;
    this.aio?.close();
    this.aio = undefined;
  }

  /**
   * Runs one I/O on `mem` and resolves with the byte count. Rejects with an
   * AbandonedIoError when the memory may still be in the kernel's
   * hands and must never be reused or freed.
   */
  private transfer(op: 'read' | 'write', fd: number, mem: NativeMem, length: number, offset: number): Promise<number> {
    const q = this.aioFor(op);
    if (q) {
      try {
        return q.submit(op === 'read' ? IOCB_CMD_PREAD : IOCB_CMD_PWRITE, fd, mem.addr, length, offset).then(
          (res) => {
            if (res < 0) throw errnoError(-res, op);
            return res;
          },
          (e: Error) => {
            // the queue gave up on the context: the kernel may still use mem
            throw new AbandonedIoError(`${e.message}, ${op}`, e);
          },
        );
      } catch (e) {
        // Nothing was queued. EAGAIN: no room in the kernel right now, this
        // I/O only uses the thread pool. Anything else: aio does not work
        // on this fd (or the FFI call itself failed): stop using it.
        if (!(e instanceof AioSubmitError)) this.dropAio(`io_submit failed: ${(e as Error).message}`);
        else if (e.errno !== EAGAIN) this.dropAio(`io_submit failed: ${errnoError(e.errno, 'io_submit').message}`);
      }
    }
    if (op === 'read') return fsRead(fd, mem.buf, 0, length, offset).then((r) => r.bytesRead);
    return fsWrite(fd, mem.buf, 0, length, offset).then((r) => r.bytesWritten);
  }

  async read(offset: number, length: number, opts?: IoOptions): Promise<Buffer> {
    const fd = this.getFd('read');
    checkIo(this, 'read', offset, length, undefined);
    this.checkNotStuck('read', offset, opts);
    const mem = this.take(length);
    const buf = mem.buf;
    let abandoned = false;
    this.inflight++;
    const io = this.transfer('read', fd, mem, length, offset)
      .then((n) => {
        if (n !== length) {
          throw new DiskError(
            'ERANGE',
            `read ${this.path}: short read of ${n}/${length} bytes at offset ${offset} (device too small?)`,
          );
        }
        // copy out of the aligned memory into a released buffer of this size,
        // else a new one (allocUnsafe + copy: one memcpy, no fill)
        const copy = this.spareCopies.get(length)?.pop() ?? Buffer.allocUnsafeSlow(length);
        buf.copy(copy, 0, 0, length);
        this.lent.add(copy);
        return copy;
      })
      .catch((e: unknown) => {
        if (e instanceof DiskError) throw e;
        if (e instanceof AbandonedIoError) abandoned = true;
        throw new DiskError('EIO', `read ${this.path} offset ${offset} length ${length}: ${(e as Error).message}`, { cause: e });
      })
      .finally(() => {
        // The aligned memory is reused or freed only when the kernel is done
        // with it, even if the caller already gave up on a timeout.
        if (!abandoned) this.give(mem);
        this.inflight--;
      });
    return this.withTimeout(io, 'read', offset, opts);
  }

  async write(offset: number, data: Buffer, opts?: IoOptions): Promise<void> {
    const fd = this.getFd('write');
    checkIo(this, 'write', offset, data.length, undefined);
    this.checkNotStuck('write', offset, opts);
    const mem = this.take(data.length);
    data.copy(mem.buf);
    let abandoned = false;
    this.inflight++;
    const io = this.transfer('write', fd, mem, data.length, offset)
      .then((n) => {
        if (n !== data.length) {
          throw new DiskError(
            'ERANGE',
            `write ${this.path}: short write of ${n}/${data.length} bytes at offset ${offset}`,
          );
        }
      })
      .catch((e: unknown) => {
        if (e instanceof DiskError) throw e;
        if (e instanceof AbandonedIoError) abandoned = true;
        throw new DiskError('EIO', `write ${this.path} offset ${offset} length ${data.length}: ${(e as Error).message}`, { cause: e });
      })
      .finally(() => {
        if (!abandoned) this.give(mem);
        this.inflight--;
      });
    return this.withTimeout(io, 'write', offset, opts);
  }

  /** The caller is done with a buffer read() returned: a later read may reuse it. */
  release(buf: Buffer): void {
    if (!this.lent.delete(buf)) return; // not ours, or released already
    const free = this.spareCopies.get(buf.length) ?? [];
    if (free.length >= SPARE_COPIES_PER_SIZE) return;
    free.push(buf);
    this.spareCopies.set(buf.length, free);
  }

  async close(): Promise<void> {
    if (this.fd === undefined) return;
    this.spareCopies.clear();
    const fd = this.fd;
    this.fd = undefined;
    for (const free of this.pool.values()) for (const b of free) loadNative().free(b.ptr);
    this.pool.clear();
    // close(2) directly, not on the thread pool: threads may all be held by
    // I/O the device never completes, and close does not wait for it. An aio
    // request in flight holds its own reference to the file.
    fs.closeSync(fd);
    // io_destroy now if idle, else after the last completion: never waits.
    this.aio?.close();
    this.aio = undefined;
  }
}
