/**
 * Simulator kernel: a seeded PRNG, virtual time, one event queue, simulated
 * hosts (pause / crash), per-host clocks and simulated shared storage.
 *
 * Everything runs on one thread. Nothing in a simulation reads the real
 * clock, arms a real timer or calls Math.random: time only moves when the
 * scheduler pops the next event, and every random choice comes from a
 * SeededRandom derived from the run's seed. After each event the kernel
 * lets every promise continuation run (setImmediate drains the microtask
 * queue) before it pops the next one, so async lease and core code runs
 * unmodified and a run is reproducible from its seed.
 */
import type { Clock } from '../src/io/clock';
import { DiskError, checkIo, type Disk, type IoOptions } from '../src/io/disk';
import { SeededRandom } from '../src/leases/random';

// ---------------------------------------------------------------- random

/** Seeded random with helpers; independent streams are forked by label. */
export class Rng extends SeededRandom {
  readonly seed: number;
  constructor(seed: number) {
    super(seed);
    this.seed = seed >>> 0;
  }
  /** An independent stream: same seed + label always gives the same stream. */
  fork(label: string): Rng {
    let h = (this.seed ^ 0x9e3779b9) >>> 0;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng(h ^ (h >>> 16));
  }
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
  range(min: number, max: number): number {
    return min + this.next() * (max - min);
  }
  intIn(min: number, maxInclusive: number): number {
    return min + this.int(maxInclusive - min + 1);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

// ---------------------------------------------------------------- scheduler

interface Ev {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Binary heap of events ordered by (time, insertion order). */
class EventHeap {
  private a: Ev[] = [];
  get size(): number {
    return this.a.length;
  }
  push(e: Ev): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p]!, e)) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = e;
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (!top || !last || a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && less(a[r]!, a[l]!) ? r : l;
      if (less(last, a[c]!)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
  peek(): Ev | undefined {
    return this.a[0];
  }
}
function less(x: Ev, y: Ev): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

export interface TraceLine {
  t: number;
  text: string;
}

/** Virtual time (global ms) and the event queue. */
export class Scheduler {
  now = 0;
  private seq = 0;
  private readonly q = new EventHeap();
  steps = 0;
  /** Ring of recent trace lines (the run's story, printed on a violation). */
  readonly trace: TraceLine[] = [];
  traceLimit = 4000;
  traceAll = false;

  at(t: number, fn: () => void): { cancel(): void } {
    const e: Ev = { at: Math.max(t, this.now), seq: this.seq++, fn, cancelled: false };
    this.q.push(e);
    return { cancel: () => void (e.cancelled = true) };
  }
  after(ms: number, fn: () => void): { cancel(): void } {
    return this.at(this.now + Math.max(0, ms), fn);
  }
  log(text: string): void {
    this.trace.push({ t: this.now, text });
    if (this.traceAll) process.stdout.write(`${fmtT(this.now)} ${text}\n`);
    if (this.trace.length > this.traceLimit * 2) this.trace.splice(0, this.trace.length - this.traceLimit);
  }
  pending(): number {
    return this.q.size;
  }
  nextAt(): number | undefined {
    return this.q.peek()?.at;
  }
  /**
   * Run events until `until` (global ms) or until `stop()` returns true.
   * After each event every promise continuation runs before `check` is
   * called and the next event is popped.
   *
   * Each event runs in its own setImmediate callback: Node empties the
   * microtask queue (and process.nextTick's) between two immediate
   * callbacks, so the continuations of one event all run before the next
   * callback checks and pops. Immediates are queued in batches, so one turn
   * of the event loop runs many events (a turn per event cost more than
   * some events).
   */
  run(until: number, check: () => void, stop: () => boolean = () => false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      let checkDue = false;
      let emptyOnce = false;
      let queued = 0;
      const done = () => {
        finished = true;
        resolve();
      };
      const step = () => {
        queued--;
        if (finished) return;
        try {
          if (checkDue) {
            checkDue = false;
            check();
          }
          for (;;) {
            if (stop()) return done();
            const e = this.q.peek();
            if (!e) {
              // Nothing queued: let continuations run once more (they may add events).
              if (emptyOnce) {
                this.now = Math.max(this.now, until);
                return done();
              }
              emptyOnce = true;
              break;
            }
            emptyOnce = false;
            if (e.at > until) {
              this.now = Math.max(this.now, until);
              return done();
            }
            this.q.pop();
            if (e.cancelled) continue;
            this.now = e.at;
            this.steps++;
            e.fn();
            checkDue = true;
            break;
          }
        } catch (err) {
          finished = true;
          reject(err);
          return;
        }
        if (queued === 0) batch();
      };
      const batch = () => {
        for (let i = 0; i < 64; i++) setImmediate(step);
        queued += 64;
      };
      // The first step runs now, in the caller's turn (as an async loop would).
      queued++;
      step();
    });
  }
}

/** Let every queued promise continuation run (the microtask queue empties before a check-phase callback). */
export function drain(): Promise<void> {
  return new Promise<void>((r) => setImmediate(r));
}

export function fmtT(ms: number): string {
  return (ms / 1000).toFixed(3).padStart(9);
}

// ---------------------------------------------------------------- hosts

/**
 * A simulated machine. Its daemon process can be paused (SIGSTOP, a long GC
 * stall: its timers and I/O completions are held until it resumes, while the
 * world and its clock go on) or crash (everything the incarnation was doing
 * is dropped; in-flight writes land, tear or vanish).
 */
export class SimHost {
  incarnation = 0;
  paused = false;
  crashed = false;
  private held: Array<() => void> = [];
  /** Monotonic clock of this machine: local = offset + rate * global. */
  readonly clock: SimClock;
  /** Per-host storage path failure: every I/O of this host fails (EIO) or hangs. */
  pathFault: 'none' | 'eio' | 'hang' = 'none';
  /** In-flight writes of the current incarnation, for crash handling. */
  readonly inflight = new Set<InflightWrite>();
  pausedMs = 0;
  private pausedSince = 0;

  constructor(readonly sim: Scheduler, readonly id: number, offsetMs: number, rate: number) {
    this.clock = new SimClock(this, offsetMs, rate);
  }

  /** Run fn at global time t in this incarnation of the process (held while paused, dropped after a crash). */
  at(t: number, fn: () => void): void {
    const inc = this.incarnation;
    this.sim.at(t, () => this.deliver(inc, fn));
  }
  deliver(inc: number, fn: () => void): void {
    if (inc !== this.incarnation || this.crashed) return;
    if (this.paused) this.held.push(fn);
    else fn();
  }
  pause(): void {
    if (this.paused || this.crashed) return;
    this.paused = true;
    this.pausedSince = this.sim.now;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.pausedMs += this.sim.now - this.pausedSince;
    const h = this.held.splice(0);
    for (const fn of h) fn();
  }
  /** Kill the process: pending work is dropped; in-flight writes are resolved by `resolveWrite`. */
  crash(resolveWrite: (w: InflightWrite) => void): void {
    this.incarnation++;
    this.crashed = true;
    this.paused = false;
    this.held = [];
    for (const w of [...this.inflight]) resolveWrite(w);
    this.inflight.clear();
  }
  restart(): void {
    this.crashed = false;
  }
}

/**
 * The host's monotonic clock. It never jumps (CLOCK_MONOTONIC does not); it
 * has an offset (hosts booted at different times) and a small rate error
 * (crystal drift, |rate - 1| ≤ 1e-4). A pause freezes the process, not the
 * clock: after a pause the process sees time jump by the pause length.
 */
export class SimClock implements Clock {
  constructor(private readonly host: SimHost, private readonly offsetMs: number, private readonly rate: number) {}
  nowMs(): number {
    return this.offsetMs + this.host.sim.now * this.rate;
  }
  monotonicSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }
  /** Global time at which this clock reads `localMs`. */
  toGlobal(localMs: number): number {
    return Math.ceil((localMs - this.offsetMs) / this.rate);
  }
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const target = this.toGlobal(this.nowMs() + Math.max(0, ms));
      this.host.at(Math.max(target, this.host.sim.now + (ms > 0 ? 1 : 0)), resolve);
    });
  }
}

// ---------------------------------------------------------------- storage

export interface InflightWrite {
  host: SimHost;
  offset: number;
  data: Buffer;
  /** Global time at which it is due to land. */
  at: number;
  /** Cancel the landing event. */
  cancel(): void;
  /** Land now (possibly only a prefix of sectors). */
  land(sectors?: number): void;
}

export interface DiskFaultRates {
  /** Probability that an I/O fails with EIO (a failed write lands a random prefix of its sectors, maybe none or all). */
  eio: number;
  /** Probability that an I/O takes longer than io_timeout (it times out; a write still lands later). */
  slow: number;
  /** Normal latency range in ms. */
  latencyMin: number;
  latencyMax: number;
  /** Slow latency range in ms (beyond the I/O timeout). */
  slowMin: number;
  slowMax: number;
  /**
   * Beyond the model: a timed-out write may still land later, after the
   * host's newer writes to the same sector (reordering across a timeout).
   * Off by default; see docs/simulator.md for what it does to Disk Paxos.
   */
  lateWrites?: boolean;
}

const REGION = 64 * 1024;

const ZERO = Buffer.alloc(64 * 1024);
function isZero(b: Buffer, start: number, end: number): boolean {
  return b.compare(ZERO, 0, end - start, start, end) === 0;
}

export const NO_DISK_FAULTS: DiskFaultRates = { eio: 0, slow: 0, latencyMin: 0.05, latencyMax: 2, slowMin: 0, slowMax: 0 };

/**
 * Buffers of finished runs, by length, for the next run's medium chunks and
 * area buffers (each schedule would otherwise allocate several MiB).
 */
const spare = new Map<number, Buffer[]>();
const SPARE_MAX = 64;
function takeSpare(len: number): Buffer | undefined {
  return spare.get(len)?.pop();
}
function giveSpare(buf: Buffer): void {
  let l = spare.get(buf.length);
  if (!l) spare.set(buf.length, (l = []));
  if (l.length < SPARE_MAX) l.push(buf);
}

/**
 * Small buffers (copies of written data, results of sector reads) are cut
 * from slabs: a Buffer of its own costs the garbage collector more than its
 * bytes. Large ones (area init writes) come from the spare buffers.
 */
const SMALL = 16 * 1024;
let slab = Buffer.allocUnsafeSlow(256 * 1024);
let slabUsed = 0;
function slabBuffer(len: number): Buffer {
  if (slabUsed + len > slab.length) {
    slab = Buffer.allocUnsafeSlow(256 * 1024);
    slabUsed = 0;
  }
  const b = slab.subarray(slabUsed, slabUsed + len);
  slabUsed += (len + 7) & ~7;
  return b;
}
function copyOf(data: Buffer): Buffer {
  const b = data.length > SMALL ? takeSpare(data.length) ?? Buffer.allocUnsafe(data.length) : slabBuffer(data.length);
  data.copy(b);
  return b;
}

/** Reads at least this long are served from shared area buffers (see snapshot()). */
const AREA_READ = 16 * 1024;
/** Area buffers kept per (offset, length) for reuse. */
const AREA_BUFS = 16;

/** A buffer holding [offset, offset+len) of the medium as it was before write stamp `stamp`. */
interface AreaBuf {
  buf: Buffer;
  offset: number;
  stamp: number;
  /** Write stamp of each sector in buf (0: never written, zero). */
  sectors: Uint32Array;
  /** Readers that hold it (handed out by a read, not yet released). */
  refs: number;
}

/** Shared storage (one LUN) with global faults. */
export class SimStorage {
  /** The medium, sparse: `region`-sized chunks allocated on the first non-zero write (10,000 LV leases = 10 GiB). */
  private readonly chunks = new Map<number, Buffer>();
  /** Write stamp of every sector of an allocated chunk (an unallocated chunk has only ever been zero). */
  private readonly sectorStamps = new Map<number, Uint32Array>();
  readonly size: number;
  /** Total storage loss: every I/O of every host fails or hangs. */
  lost: 'none' | 'eio' | 'hang' = 'none';
  rates: DiskFaultRates = NO_DISK_FAULTS;
  readonly stats = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, eio: 0, slow: 0, tornAtCrash: 0, lostAtCrash: 0, lateLandings: 0, areaCopies: 0, areaSectorCopies: 0 };
  /** Observers of landed writes (the checker uses them to know when a delta renewal became visible). */
  onLanded: ((host: SimHost, offset: number, data: Buffer) => void) | undefined;
  /** When set, every landed write is traced with this description of its content. */
  ioTrace: ((offset: number, data: Buffer) => string) | undefined;

  /** Last write stamp of each 64 KiB region, and the area buffers of large reads (see snapshot()). */
  private readonly versions: Uint32Array;
  private readonly areas = new Map<number, AreaBuf[]>();
  private readonly handedOut = new WeakMap<Buffer, AreaBuf>();
  private stamp = 1;

  /**
   * `region`: the medium's allocation unit and the granularity of write stamps
   * (default 64 KiB). Scale mode uses 4 KiB: there every LV lease writes one
   * sector of its own 1 MiB area, and 10,000 of them filled 625 MiB in 64 KiB chunks.
   */
  constructor(readonly sim: Scheduler, readonly rng: Rng, size: number, readonly sectorSize: number, readonly region = REGION) {
    if (region % sectorSize !== 0 || region <= 0) throw new RangeError(`sim storage region ${region} is not a multiple of the sector size ${sectorSize}`);
    this.size = size;
    this.versions = new Uint32Array(Math.ceil(size / region) + 1);
  }

  /** A copy of [offset, offset+len). */
  readBytes(offset: number, len: number): Buffer {
    const out = len > SMALL ? Buffer.allocUnsafe(len) : slabBuffer(len);
    this.copyOut(out, offset, len, true);
    return out;
  }

  /**
   * Copy [offset, offset+len) of the medium into out; zero regions are filled
   * only when `fillZero`. With `sectors`, also the write stamp of each sector.
   */
  private copyOut(out: Buffer, offset: number, len: number, fillZero: boolean, sectors?: Uint32Array): void {
    const ss = this.sectorSize;
    let pos = 0;
    while (pos < len) {
      const at = offset + pos;
      const ci = Math.floor(at / this.region);
      const co = at - ci * this.region;
      const n = Math.min(this.region - co, len - pos);
      const c = this.chunks.get(ci);
      if (c) c.copy(out, pos, co, co + n);
      else if (fillZero) out.fill(0, pos, pos + n);
      if (sectors) {
        const st = this.sectorStamps.get(ci);
        if (st) sectors.set(st.subarray(co / ss, (co + n) / ss), pos / ss);
        else sectors.fill(0, pos / ss, (pos + n) / ss);
      }
      pos += n;
    }
  }

  /** Land bytes [0, bytes) of src at offset. */
  writeBytes(offset: number, src: Buffer, bytes: number): void {
    const s = this.stamp++;
    const ss = this.sectorSize;
    let pos = 0;
    while (pos < bytes) {
      const at = offset + pos;
      const ci = Math.floor(at / this.region);
      const co = at - ci * this.region;
      const n = Math.min(this.region - co, bytes - pos);
      let c = this.chunks.get(ci);
      let st = this.sectorStamps.get(ci);
      if (!c || !st) {
        if (isZero(src, pos, pos + n)) {
          pos += n;
          continue;
        }
        c = takeSpare(this.region)?.fill(0) ?? Buffer.alloc(this.region);
        st = new Uint32Array(this.region / ss);
        this.chunks.set(ci, c);
        this.sectorStamps.set(ci, st);
      }
      src.copy(c, co, pos, pos + n);
      st.fill(s, Math.floor(co / ss), Math.ceil((co + n) / ss));
      this.versions[ci] = s;
      pos += n;
    }
  }

  /** Bytes allocated for the medium. */
  allocatedBytes(): number {
    return this.chunks.size * this.region;
  }

  /** True when no write landed in [offset, offset+len) since stamp. */
  private unchangedSince(offset: number, len: number, stamp: number): boolean {
    for (let r = Math.floor(offset / this.region); r <= Math.floor((offset + len - 1) / this.region); r++) {
      if (this.versions[r]! > stamp) return false;
    }
    return true;
  }

  /** Bring an area buffer up to date by copying only the sectors written since its stamp. */
  private refresh(a: AreaBuf): void {
    const len = a.buf.length;
    const ss = this.sectorSize;
    for (let r = Math.floor(a.offset / this.region); r <= Math.floor((a.offset + len - 1) / this.region); r++) {
      if (this.versions[r]! <= a.stamp) continue;
      const c = this.chunks.get(r);
      const st = this.sectorStamps.get(r);
      if (!c || !st) continue; // only zero writes landed here: still zero
      const lo = Math.max(a.offset, r * this.region);
      const hi = Math.min(a.offset + len, (r + 1) * this.region);
      for (let at = lo; at < hi; at += ss) {
        const k = (at - r * this.region) / ss;
        if (st[k]! <= a.stamp) continue;
        // Coalesce a run of changed sectors into one copy.
        let end = at + ss;
        while (end < hi && st[(end - r * this.region) / ss]! > a.stamp) end += ss;
        c.copy(a.buf, at - a.offset, at - r * this.region, end - r * this.region);
        a.sectors.set(st.subarray((at - r * this.region) / ss, (end - r * this.region) / ss), (at - a.offset) / ss);
        this.stats.areaSectorCopies += (end - at) / ss;
        at = end - ss;
      }
    }
    a.stamp = this.stamp++;
  }

  /**
   * Contents of [offset, offset+len) as a Buffer the caller must not modify.
   *
   * Large reads (whole lease areas: 1 MiB per renewal, paxos read and ballot)
   * dominated the simulator's cost when each one copied its area. They are
   * served from a few buffers per area instead: a buffer that no write
   * touched since it was filled is shared by every reader; a buffer that no
   * reader holds any more (`release`) is brought up to date by copying only
   * the sectors written since it was filled. A reader that does not release
   * its buffer only costs a new one later. The lease code never modifies a
   * buffer it read and releases it once it has parsed it.
   */
  snapshot(offset: number, len: number): Buffer {
    if (len < AREA_READ) return this.readBytes(offset, len);
    let list = this.areas.get(offset);
    if (!list) {
      list = [];
      this.areas.set(offset, list);
    }
    let newest: AreaBuf | undefined;
    let free: AreaBuf | undefined;
    for (const a of list) {
      if (a.buf.length !== len) continue;
      if (!newest || a.stamp > newest.stamp) newest = a;
      if (a.refs === 0 && (!free || a.stamp > free.stamp)) free = a;
    }
    let use: AreaBuf;
    if (newest && this.unchangedSince(offset, len, newest.stamp)) {
      use = newest;
    } else if (free) {
      this.refresh(free);
      use = free;
    } else {
      this.stats.areaCopies++;
      const old = takeSpare(len);
      const buf = old ?? Buffer.alloc(len);
      const sectors = new Uint32Array(len / this.sectorSize);
      this.copyOut(buf, offset, len, !!old, sectors);
      use = { buf, offset, stamp: this.stamp++, sectors, refs: 0 };
      this.handedOut.set(buf, use);
      if (list.length >= AREA_BUFS) {
        // Every buffer is held; forget the oldest (a reader that never releases must not
        // leave the area without reusable buffers). Its holder keeps it; it becomes garbage.
        let oldest = 0;
        for (let i = 1; i < list.length; i++) if (list[i]!.stamp < list[oldest]!.stamp) oldest = i;
        list.splice(oldest, 1);
      }
      list.push(use);
    }
    use.refs++;
    return use.buf;
  }

  /** A reader no longer uses a buffer that snapshot() returned (each read is released at most once). */
  release(buf: Buffer): void {
    const a = this.handedOut.get(buf);
    if (a && a.refs > 0) a.refs--;
  }

  /**
   * Write stamp of each sector of a buffer snapshot() returned, valid while the
   * reader holds it (a held buffer is never refreshed). Stamps are unique per
   * landed write, so equal stamps of a sector mean equal bytes; 0 = never written.
   */
  sectorVersions(buf: Buffer): Uint32Array | undefined {
    return this.handedOut.get(buf)?.sectors;
  }

  /**
   * The run is over: nothing will read the medium or a buffer a read returned
   * again (pending continuations of the run never resume). Its buffers go to
   * the next run.
   */
  dispose(): void {
    for (const c of this.chunks.values()) giveSpare(c);
    for (const list of this.areas.values()) for (const a of list) giveSpare(a.buf);
    this.chunks.clear();
    this.sectorStamps.clear();
    this.areas.clear();
  }

  diskFor(host: SimHost, path = `sim:host${host.id}`): SimDisk {
    return new SimDisk(this, host, path);
  }
}

/**
 * One host's view of the shared storage (implements the lease code's Disk).
 * Reads sample the medium when they complete; writes land when they
 * complete. Both complete through scheduler events, in a seeded order. An
 * I/O that outlives its timeout fails with ETIMEDOUT, but a write then still
 * lands later, as with real kernel I/O that cannot be cancelled.
 */
export class SimDisk implements Disk {
  readonly sectorSize: number;
  private closed = false;
  constructor(readonly storage: SimStorage, readonly host: SimHost, readonly path: string) {
    this.sectorSize = storage.sectorSize;
  }
  async size(): Promise<number> {
    return this.storage.size;
  }
  async close(): Promise<void> {
    this.closed = true;
  }

  /** The caller is done with a buffer read() returned (see SimStorage.snapshot). */
  release(buf: Buffer): void {
    this.storage.release(buf);
  }

  /** Per-sector write stamps of a buffer read() returned (see SimStorage.sectorVersions). */
  sectorVersions(buf: Buffer): Uint32Array | undefined {
    return this.storage.sectorVersions(buf);
  }

  private plan(): { kind: 'ok' | 'eio' | 'hang'; latency: number } {
    const st = this.storage;
    const r = st.rates;
    const fault = st.lost !== 'none' ? st.lost : this.host.pathFault;
    const latency = st.rng.range(r.latencyMin, r.latencyMax);
    if (fault === 'eio') return { kind: 'eio', latency };
    if (fault === 'hang') return { kind: 'hang', latency };
    if (st.rng.chance(r.eio)) {
      st.stats.eio++;
      return { kind: 'eio', latency };
    }
    if (st.rng.chance(r.slow)) {
      st.stats.slow++;
      return { kind: 'ok', latency: st.rng.range(r.slowMin, r.slowMax) };
    }
    return { kind: 'ok', latency };
  }

  read(offset: number, length: number, opts?: IoOptions): Promise<Buffer> {
    checkIo(this, 'read', offset, length, this.storage.size);
    if (this.closed) return Promise.reject(new DiskError('ECLOSED', `read ${this.path}: closed`));
    const st = this.storage;
    const p = this.plan();
    const where = () => `read ${this.path} offset ${offset}${opts?.label ? ` (${opts.label})` : ''}`;
    return new Promise<Buffer>((resolve, reject) => {
      const now = st.sim.now;
      let done = false;
      const timeout = opts?.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : 0;
      if (timeout && (p.kind === 'hang' || p.latency > timeout)) {
        this.host.at(now + timeout, () => {
          if (done) return;
          done = true;
          reject(new DiskError('ETIMEDOUT', `${where()}: timed out after ${timeout} ms`));
        });
      }
      if (p.kind === 'hang') return;
      // The medium is sampled at completion; the result reaches the process later if it is paused.
      st.sim.at(now + p.latency, () => {
        if (done) return;
        if (p.kind === 'eio') {
          this.host.deliver(this.host.incarnation, () => {
            if (done) return;
            done = true;
            reject(new DiskError('EIO', `${where()}: I/O error`));
          });
          return;
        }
        st.stats.reads++;
        st.stats.bytesRead += length;
        const buf = st.snapshot(offset, length);
        const host = this.host;
        if (host.crashed) {
          st.release(buf); // never delivered
          return;
        }
        host.deliver(host.incarnation, () => {
          if (done) {
            st.release(buf); // the reader already gave up (timeout)
            return;
          }
          done = true;
          resolve(buf);
        });
      });
    });
  }

  write(offset: number, data: Buffer, opts?: IoOptions): Promise<void> {
    checkIo(this, 'write', offset, data.length, this.storage.size);
    if (this.closed) return Promise.reject(new DiskError('ECLOSED', `write ${this.path}: closed`));
    const st = this.storage;
    const host = this.host;
    const copy = copyOf(data);
    const p = this.plan();
    const where = () => `write ${this.path} offset ${offset}${opts?.label ? ` (${opts.label})` : ''}`;
    const sectors = copy.length / this.sectorSize;
    const inc0 = host.incarnation;
    return new Promise<void>((resolve, reject) => {
      const now = st.sim.now;
      let done = false;
      // eslint-disable-next-line prefer-const
      let w!: InflightWrite;
      const timeout = opts?.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : 0;
      if (timeout && (p.kind === 'hang' || p.latency > timeout)) {
        if (p.kind !== 'hang' && !st.rates.lateWrites) {
          // In the model a timed-out write never lands after the host has seen the timeout:
          // it lands at the deadline (just before the error) or never.
          st.sim.at(now + timeout, () => {
            if (st.rng.chance(0.5)) w.land();
            else w.cancel();
            host.inflight.delete(w);
          });
        }
        host.at(now + timeout, () => {
          if (done) return;
          done = true;
          reject(new DiskError('ETIMEDOUT', `${where()}: timed out after ${timeout} ms`));
        });
      }
      if (p.kind === 'hang') return;
      const applied = (n: number) => {
        if (n <= 0) return;
        const bytes = Math.min(copy.length, n * this.sectorSize);
        st.writeBytes(offset, copy, bytes);
        st.stats.writes++;
        st.stats.bytesWritten += bytes;
        st.onLanded?.(host, offset, copy.subarray(0, bytes));
      };
      let landed = false;
      // A large copy (an area init write) goes back to the spare buffers once the write is settled.
      const recycle = () => {
        if (copy.length > SMALL) giveSpare(copy);
      };
      w = {
        host,
        offset,
        data: copy,
        at: now + p.latency,
        cancel: () => {
          if (landed) return;
          landed = true;
          ev.cancel();
          recycle();
        },
        land: (n = sectors) => {
          if (landed) return;
          landed = true;
          ev.cancel();
          applied(n);
          recycle();
        },
      };
      host.inflight.add(w);
      const ev = st.sim.at(now + p.latency, () => {
        if (landed) return;
        landed = true;
        host.inflight.delete(w);
        // EIO: a failed multi-sector write may have landed any prefix of its sectors.
        const n = p.kind === 'eio' ? st.rng.intIn(0, sectors) : sectors;
        applied(n);
        if (done) st.stats.lateLandings++;
        if (st.ioTrace) st.sim.log(`io h${host.id} ${opts?.label ?? 'write'} @${offset} landed ${n}/${sectors}${done ? ' LATE (after timeout)' : ''}${host.incarnation !== inc0 ? ' (after crash)' : ''}${st.ioTrace(offset, copy)}`);
        recycle();
        host.deliver(host.incarnation, () => {
          if (done) return;
          done = true;
          if (p.kind === 'eio') reject(new DiskError('EIO', `${where()}: I/O error`));
          else resolve();
        });
      });
    });
  }
}

/**
 * What happens to a crashed host's in-flight write: it was already in the
 * storage controller, so it lands at its time, lands torn (a prefix of its
 * sectors: sectors are atomic, multi-sector writes are not), or never lands.
 */
export function crashWriteResolver(rng: Rng, stats: SimStorage['stats'], sectorSize: number, now: () => number, restartAfterMs: () => number): (w: InflightWrite) => void {
  return (w) => {
    const x = rng.next();
    const sectors = w.data.length / sectorSize;
    if (x < 0.4 && w.at < now() + restartAfterMs()) return; // lands at its scheduled time, before the host is back
    if (x < 0.7 && sectors > 1) {
      stats.tornAtCrash++;
      w.land(rng.intIn(0, sectors - 1));
      return;
    }
    stats.lostAtCrash++;
    w.cancel();
  };
}
