/**
 * Simulated shared storage: one sparse LUN that every host's SimDisk reads
 * and writes, with global faults (total storage loss), seeded fault rates,
 * shared area buffers for whole-area reads, and what a crash does to the
 * writes a host had in flight.
 */
import { SMALL, giveSpare, slabBuffer, takeSpare } from './buffers';
import { SimDisk } from './disk';
import type { SimHost } from './host';
import type { Rng } from './rng';
import type { Scheduler } from './scheduler';

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
