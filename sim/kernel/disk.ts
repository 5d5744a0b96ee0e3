/** One host's view of the simulated shared storage: the lease code's Disk. */
import { DiskError, checkIo, type Disk, type IoOptions } from '../../src/io/disk';
import { SMALL, copyOf, giveSpare } from './buffers';
import type { SimHost } from './host';
import type { InflightWrite, SimStorage } from './storage';

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
