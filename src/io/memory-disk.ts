/**
 * In-memory Disk for unit tests and the simulator.
 *
 * With no fault hook, every I/O completes on the next microtask and nothing
 * ever touches a real timer. A fault hook sees each I/O before it runs and
 * decides what happens: complete normally, fail with EIO, hang, be delayed
 * on the injected Clock, be dropped (a lost write that still reports
 * success), be torn (only a prefix lands), or wait on an arbitrary promise
 * supplied by a scheduler — which is how a deterministic simulator picks the
 * completion order of concurrent I/Os.
 */
import { Clock } from './clock';
import { Disk, DiskError, IoOptions, checkIo } from './disk';

export interface IoRequest {
  readonly disk: MemoryDisk;
  readonly op: 'read' | 'write';
  readonly offset: number;
  readonly length: number;
  /** For writes: the data to be written. */
  readonly data?: Buffer;
  readonly label?: string;
}

export type FaultAction =
  | { kind: 'ok' }
  | { kind: 'eio' }
  /** Never completes (unless an I/O timeout is set and a clock is given). */
  | { kind: 'hang' }
  /** Complete after `ms` on the disk's clock. */
  | { kind: 'delay'; ms: number }
  /** Write is silently dropped but reported as successful. */
  | { kind: 'lose' }
  /**
   * Only the first `bytes` of the write land, then EIO is reported. Real
   * disks write a sector atomically; use a multiple of the sector size to
   * stay within that model (sub-sector tearing is available for tests that
   * want to go beyond it).
   */
  | { kind: 'torn'; bytes: number }
  /** Complete (normally) when `until` resolves; data is sampled/applied at that moment. */
  | { kind: 'gate'; until: Promise<void> };

export type FaultHook = (req: IoRequest) => FaultAction | undefined;

export interface MemoryDiskOptions {
  sectorSize?: number;
  /** Clock used for 'delay' faults and I/O timeouts. Required for those. */
  clock?: Clock;
  fault?: FaultHook;
  path?: string;
  /**
   * Share this buffer as the medium instead of allocating one (several
   * MemoryDisk objects on one buffer = several hosts on one LUN, each with
   * its own fault hook).
   */
  backing?: Buffer;
}

export class MemoryDisk implements Disk {
  readonly path: string;
  readonly sectorSize: number;
  /** The medium. Tests may inspect or corrupt it directly. */
  readonly data: Buffer;
  fault: FaultHook | undefined;
  private clock: Clock | undefined;
  private closed = false;
  /** Counters, handy in tests and benchmarks. */
  readonly stats = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0 };

  constructor(sizeBytes: number, opts: MemoryDiskOptions = {}) {
    this.sectorSize = opts.sectorSize ?? 512;
    this.data = opts.backing ?? Buffer.alloc(sizeBytes);
    this.fault = opts.fault;
    this.clock = opts.clock;
    this.path = opts.path ?? `mem:${sizeBytes}`;
  }

  /** Build from an existing image (copied). */
  static fromBuffer(image: Buffer, opts: MemoryDiskOptions = {}): MemoryDisk {
    const d = new MemoryDisk(image.length, opts);
    image.copy(d.data);
    return d;
  }

  async size(): Promise<number> {
    return this.data.length;
  }

  private async run<T>(req: IoRequest, opts: IoOptions | undefined, body: (a: FaultAction) => T): Promise<T> {
    if (this.closed) throw new DiskError('ECLOSED', `${req.op} ${this.path}: disk is closed`);
    const action = (this.fault && this.fault(req)) || { kind: 'ok' as const };
    const where = `${req.op} ${this.path} offset ${req.offset}${req.label ? ` (${req.label})` : ''}`;
    let pending: Promise<void>;
    switch (action.kind) {
      case 'eio':
        pending = Promise.reject(new DiskError('EIO', `${where}: injected I/O error`));
        break;
      case 'hang':
        pending = new Promise<void>(() => undefined);
        break;
      case 'delay':
        if (!this.clock) throw new Error('MemoryDisk: delay fault needs a clock');
        pending = this.clock.sleep(action.ms);
        break;
      case 'gate':
        pending = action.until;
        break;
      default:
        pending = Promise.resolve();
    }
    const ms = opts?.timeoutMs;
    if (ms && ms > 0 && this.clock && (action.kind === 'hang' || action.kind === 'delay' || action.kind === 'gate')) {
      const clock = this.clock;
      let timedOut = false;
      const timeout = clock.sleep(ms).then(() => {
        timedOut = true;
      });
      await Promise.race([pending, timeout]);
      if (timedOut) throw new DiskError('ETIMEDOUT', `${where}: timed out after ${ms} ms`);
    } else {
      await pending;
    }
    if (this.closed) throw new DiskError('ECLOSED', `${req.op} ${this.path}: disk is closed`);
    return body(action);
  }

  async read(offset: number, length: number, opts?: IoOptions): Promise<Buffer> {
    checkIo(this, 'read', offset, length, this.data.length);
    const req: IoRequest = { disk: this, op: 'read', offset, length, ...(opts?.label ? { label: opts.label } : {}) };
    return this.run(req, opts, () => {
      this.stats.reads++;
      this.stats.bytesRead += length;
      return Buffer.from(this.data.subarray(offset, offset + length));
    });
  }

  async write(offset: number, data: Buffer, opts?: IoOptions): Promise<void> {
    checkIo(this, 'write', offset, data.length, this.data.length);
    const copy = Buffer.from(data);
    const req: IoRequest = {
      disk: this,
      op: 'write',
      offset,
      length: data.length,
      data: copy,
      ...(opts?.label ? { label: opts.label } : {}),
    };
    return this.run(req, opts, (action) => {
      this.stats.writes++;
      if (action.kind === 'lose') return;
      if (action.kind === 'torn') {
        copy.subarray(0, Math.max(0, Math.min(action.bytes, copy.length))).copy(this.data, offset);
        throw new DiskError('EIO', `write ${this.path} offset ${offset}: injected torn write`);
      }
      this.stats.bytesWritten += copy.length;
      copy.copy(this.data, offset);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
