/**
 * Linux native aio (io_setup / io_submit / io_getevents), as sanlock uses it
 * for lease I/O, called through koffi and libc's syscall(): glibc has no
 * wrappers for these, and going through the raw syscalls needs no libaio.
 *
 * Why: on a block device opened O_DIRECT | O_SYNC, a synchronous pwrite()
 * gets REQ_FUA and then a full device flush (generic_write_sync after the
 * write returned its byte count). The same write submitted with io_submit
 * returns -EIOCBQUEUED to the block layer, so it gets REQ_FUA only, which is
 * what sanlock's writes get. See docs/leases.md.
 *
 * One AioQueue per open disk. Submission is synchronous on the calling
 * thread (io_submit does not wait for the device). Completions are reaped by
 * one io_getevents() call at a time, run as a koffi async call on a libuv
 * worker thread, and only while I/O is outstanding, so the event loop never
 * waits for the device and an idle disk holds no thread.
 */

import { Errno } from '../util/errno';

/** x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
export const SYS_IO_SETUP = 206;
export const SYS_IO_DESTROY = 207;
export const SYS_IO_GETEVENTS = 208;
export const SYS_IO_SUBMIT = 209;

export const IOCB_CMD_PREAD = 0;
export const IOCB_CMD_PWRITE = 1;

/** struct iocb (linux/aio_abi.h), little-endian x86-64: 64 bytes. */
export const IOCB_SIZE = 64;
export const IOCB_OFF = {
  aio_data: 0, // u64, returned in io_event.data
  aio_key: 8, // u32, set by the kernel
  aio_rw_flags: 12, // u32, RWF_*
  aio_lio_opcode: 16, // u16
  aio_reqprio: 18, // s16
  aio_fildes: 20, // u32
  aio_buf: 24, // u64
  aio_nbytes: 32, // u64
  aio_offset: 40, // s64
  aio_reserved2: 48, // u64
  aio_flags: 56, // u32
  aio_resfd: 60, // u32
} as const;

/** struct io_event: data u64, obj u64, res s64, res2 s64. */
export const IO_EVENT_SIZE = 32;

export interface IocbFields {
  data: bigint;
  opcode: number;
  fd: number;
  buf: bigint;
  nbytes: number;
  offset: number;
}

/** Fills `b[0..64)` with a struct iocb; every field not given is zero. */
export function encodeIocb(b: Buffer, f: IocbFields): void {
  b.fill(0, 0, IOCB_SIZE);
  b.writeBigUInt64LE(f.data, IOCB_OFF.aio_data);
  b.writeUInt16LE(f.opcode, IOCB_OFF.aio_lio_opcode);
  b.writeUInt32LE(f.fd, IOCB_OFF.aio_fildes);
  b.writeBigUInt64LE(f.buf, IOCB_OFF.aio_buf);
  b.writeBigUInt64LE(BigInt(f.nbytes), IOCB_OFF.aio_nbytes);
  b.writeBigInt64LE(BigInt(f.offset), IOCB_OFF.aio_offset);
}

export interface IoEvent {
  data: bigint;
  obj: bigint;
  res: bigint;
  res2: bigint;
}

export function decodeEvent(b: Buffer, index: number): IoEvent {
  const o = index * IO_EVENT_SIZE;
  return {
    data: b.readBigUInt64LE(o),
    obj: b.readBigUInt64LE(o + 8),
    res: b.readBigInt64LE(o + 16),
    res2: b.readBigInt64LE(o + 24),
  };
}

/** Native memory: `buf` is a view of it, `addr` its address, `ptr` what free() takes. */
export interface NativeMem {
  buf: Buffer;
  ptr: unknown;
  addr: bigint;
}

/** What AioQueue needs from the platform (the unit tests give a fake one). */
export interface AioSys {
  alloc(size: number): NativeMem;
  free(mem: NativeMem): void;
  /** io_setup: the context, or a positive errno. */
  setup(nrEvents: number): { ctx: bigint } | { errno: number };
  /** io_submit of one iocb: 0, or a positive errno. Synchronous. */
  submitOne(ctx: bigint, iocbAddr: bigint): number;
  /**
   * io_getevents(ctx, 1, nr, events, NULL) off the event loop; `cb` gets the
   * syscall's return value (number of events, or -1).
   */
  getevents(ctx: bigint, nr: number, eventsAddr: bigint, cb: (ret: number) => void): void;
  /** io_destroy, off the event loop (it waits for an RCU grace period). */
  destroy(ctx: bigint): void;
}

let realSys: AioSys | undefined;

/** The real platform binding; throws if koffi or libc cannot provide it. */
export function linuxAioSys(alloc: (size: number) => NativeMem, free: (mem: NativeMem) => void): AioSys {
  if (realSys) return realSys;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`Linux aio syscall numbers are only known for linux/x64, not ${process.platform}/${process.arch}`);
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const koffi = require('koffi');
  const libc = koffi.load('libc.so.6');
  // syscall() is variadic, but koffi cannot call variadic functions
  // asynchronously. glibc's x86-64 syscall() is an assembly stub that only
  // moves the integer registers, so a fixed prototype with six 64-bit
  // arguments is called the same way.
  const syscall6 = libc.func('syscall', 'long', ['long', 'uint64', 'uint64', 'uint64', 'uint64', 'uint64']);
  const ctxOut = alloc(8);
  const ptrArray = alloc(8);
  realSys = {
    alloc,
    free,
    setup(nrEvents: number) {
      ctxOut.buf.writeBigUInt64LE(0n, 0); // io_setup requires *ctxp == 0
      const r = Number(syscall6(SYS_IO_SETUP, nrEvents, ctxOut.addr, 0, 0, 0));
      if (r !== 0) return { errno: (koffi.errno() as number) || 1 };
      return { ctx: ctxOut.buf.readBigUInt64LE(0) };
    },
    submitOne(ctx: bigint, iocbAddr: bigint) {
      // The kernel copies the pointer array and the iocb during io_submit,
      // so one pointer slot serves every submission.
      ptrArray.buf.writeBigUInt64LE(iocbAddr, 0);
      const r = Number(syscall6(SYS_IO_SUBMIT, ctx, 1, ptrArray.addr, 0, 0));
      if (r === 1) return 0;
      return r < 0 ? (koffi.errno() as number) || 1 : Errno.EAGAIN /* nothing queued */;
    },
    getevents(ctx: bigint, nr: number, eventsAddr: bigint, cb: (ret: number) => void) {
      syscall6.async(SYS_IO_GETEVENTS, ctx, 1, nr, eventsAddr, 0, (err: unknown, res: unknown) => {
        cb(err ? -1 : Number(res));
      });
    },
    destroy(ctx: bigint) {
      syscall6.async(SYS_IO_DESTROY, ctx, 0, 0, 0, 0, () => undefined);
    },
  };
  return realSys;
}

/** io_submit refused the I/O; nothing was queued. */
export class AioSubmitError extends Error {
  readonly errno: number;
  constructor(errno: number) {
    super(`io_submit failed: errno ${errno}`);
    this.errno = errno;
  }
}

interface Pending {
  iocb: NativeMem;
  resolve(res: number): void;
  reject(e: Error): void;
}

/**
 * After this many io_getevents() calls in a row that fail (-1: EINTR, or a
 * broken context), the queue gives up: its outstanding I/Os fail with EIO,
 * their memory is never freed (the kernel may still write it), and the disk
 * goes back to pread/pwrite.
 */
export const MAX_GETEVENTS_FAILURES = 20;

export class AioQueue {
  /** Requests io_setup asked for; io_submit beyond this is not tried. */
  readonly capacity: number;
  private readonly sys: AioSys;
  private readonly ctx: bigint;
  private readonly events: NativeMem;
  private readonly pending = new Map<number, Pending>();
  private readonly freeIocbs: NativeMem[] = [];
  private nextId = 1;
  private reaping = false;
  private closed = false;
  private destroyed = false;
  private failures = 0;
  /** Set when the queue stopped working; the disk then uses pread/pwrite. */
  broken: string | undefined;

  private constructor(sys: AioSys, ctx: bigint, capacity: number) {
    this.sys = sys;
    this.ctx = ctx;
    this.capacity = capacity;
    this.events = sys.alloc(capacity * IO_EVENT_SIZE);
  }

  /** A queue, or the errno of io_setup (e.g. EAGAIN when fs.aio-max-nr is used up). */
  static create(sys: AioSys, capacity: number): AioQueue | { errno: number } {
    const r = sys.setup(capacity);
    if ('errno' in r) return r;
    return new AioQueue(sys, r.ctx, capacity);
  }

  /** I/Os submitted and not reaped yet (including those whose caller timed out). */
  get outstanding(): number {
    return this.pending.size;
  }

  /** True while an io_getevents call is running on a worker thread. */
  get reaperRunning(): boolean {
    return this.reaping;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Room for one more I/O, and the queue works. */
  usable(): boolean {
    return !this.closed && this.broken === undefined && this.pending.size < this.capacity;
  }

  /**
   * Submits one I/O on `buf` (which must stay valid until the promise
   * settles: the promise settles only when the kernel has completed the
   * I/O). Resolves with io_event.res: the byte count, or -errno. Throws
   * AioSubmitError synchronously when io_submit refuses it.
   */
  submit(opcode: number, fd: number, buf: bigint, nbytes: number, offset: number): Promise<number> {
    if (!this.usable()) throw new AioSubmitError(11);
    const id = this.nextId++;
    if (this.nextId > Number.MAX_SAFE_INTEGER) this.nextId = 1;
    const iocb = this.freeIocbs.pop() ?? this.sys.alloc(IOCB_SIZE);
    encodeIocb(iocb.buf, { data: BigInt(id), opcode, fd, buf, nbytes, offset });
    const errno = this.sys.submitOne(this.ctx, iocb.addr);
    if (errno !== 0) {
      this.freeIocbs.push(iocb);
      throw new AioSubmitError(errno);
    }
    const p = new Promise<number>((resolve, reject) => {
      this.pending.set(id, { iocb, resolve, reject });
    });
    this.reap();
    return p;
  }

  private reap(): void {
    if (this.reaping || this.pending.size === 0 || this.broken !== undefined) return;
    this.reaping = true;
    this.sys.getevents(this.ctx, this.capacity, this.events.addr, (ret) => this.reaped(ret));
  }

  private reaped(ret: number): void {
    this.reaping = false;
    if (ret < 0) {
      if (++this.failures >= MAX_GETEVENTS_FAILURES) {
        this.fail(`io_getevents failed ${this.failures} times in a row`);
        return;
      }
    } else {
      this.failures = 0;
      for (let i = 0; i < ret; i++) {
        const ev = decodeEvent(this.events.buf, i);
        const id = Number(ev.data);
        const p = this.pending.get(id);
        if (!p) continue; // cannot happen: every submitted id is pending until reaped
        this.pending.delete(id);
        if (this.closed) this.sys.free(p.iocb);
        else this.freeIocbs.push(p.iocb);
        p.resolve(Number(ev.res));
      }
    }
    if (this.pending.size > 0) this.reap();
    else if (this.closed) this.destroy();
  }

  /** Gives up on the context: pending I/O fails, its memory is leaked on purpose. */
  private fail(reason: string): void {
    this.broken = reason;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new Error(reason));
  }

  /**
   * No more submissions. The context is destroyed now if nothing is
   * outstanding, else when the last I/O completes; this never waits.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.freeIocbs.splice(0)) this.sys.free(m);
    if (this.pending.size === 0 && !this.reaping && this.broken === undefined) this.destroy();
  }

  private destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.sys.destroy(this.ctx);
    this.sys.free(this.events);
  }
}
