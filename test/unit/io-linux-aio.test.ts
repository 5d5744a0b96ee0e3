/**
 * Linux aio bookkeeping (src/io/linux-aio.ts) and DirectDisk's use of it,
 * with a fake platform: iocb layout, completions matched by aio_data,
 * memory kept until the kernel is done, one reaper at a time, deferred
 * io_destroy, fallback to pread/pwrite, and the timeout / stuck-I/O bound
 * with completions that arrive late or never.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AioQueue,
  AioSubmitError,
  AioSys,
  IOCB_CMD_PWRITE,
  IOCB_SIZE,
  IO_EVENT_SIZE,
  MAX_GETEVENTS_FAILURES,
  NativeMem,
  decodeEvent,
  encodeIocb,
} from '../../src/io/linux-aio';
import { DirectDisk, MAX_STUCK_IOS, aioTesting } from '../../src/io/direct-disk';
import { DiskError } from '../../src/io/disk';

class FakeSys implements AioSys {
  setupErrno = 0;
  /** errno for the next io_submit calls (0: accept) */
  submitErrno = 0;
  /** io_getevents results to return instead of waiting (-1: failure) */
  readonly mems = new Map<bigint, Buffer>();
  readonly freed = new Set<bigint>();
  readonly submitted: Buffer[] = [];
  readonly destroyed: bigint[] = [];
  getevents_calls = 0;
  private waiter: { events: Buffer; nr: number; cb: (ret: number) => void } | undefined;
  private nextAddr = 0x10000n;

  alloc(size: number): NativeMem {
    const buf = Buffer.alloc(size);
    const addr = this.nextAddr;
    this.nextAddr += 0x10000n;
    this.mems.set(addr, buf);
    return { buf, ptr: addr, addr };
  }
  free(m: NativeMem): void {
    assert.ok(!this.freed.has(m.addr), 'double free');
    this.freed.add(m.addr);
  }
  setup(): { ctx: bigint } | { errno: number } {
    return this.setupErrno ? { errno: this.setupErrno } : { ctx: 0xc0ffeen };
  }
  submitOne(_ctx: bigint, iocbAddr: bigint): number {
    if (this.submitErrno) return this.submitErrno;
    this.submitted.push(Buffer.from(this.mems.get(iocbAddr)!));
    return 0;
  }
  getevents(_ctx: bigint, nr: number, eventsAddr: bigint, cb: (ret: number) => void): void {
    assert.equal(this.waiter, undefined, 'two io_getevents at once');
    this.getevents_calls++;
    this.waiter = { events: this.mems.get(eventsAddr)!, nr, cb };
  }
  destroy(ctx: bigint): void {
    this.destroyed.push(ctx);
  }
  get waiting(): boolean {
    return this.waiter !== undefined;
  }
  /** Completes submitted iocbs (by their aio_data) with the given results. */
  complete(list: Array<[bigint, number]>): void {
    const w = this.waiter;
    assert.ok(w, 'nobody in io_getevents');
    assert.ok(list.length <= w.nr);
    this.waiter = undefined;
    list.forEach(([data, res], i) => {
      w.events.writeBigUInt64LE(data, i * IO_EVENT_SIZE);
      w.events.writeBigUInt64LE(0n, i * IO_EVENT_SIZE + 8);
      w.events.writeBigInt64LE(BigInt(res), i * IO_EVENT_SIZE + 16);
      w.events.writeBigInt64LE(0n, i * IO_EVENT_SIZE + 24);
    });
    w.cb(list.length);
  }
  failGetevents(): void {
    const w = this.waiter!;
    this.waiter = undefined;
    w.cb(-1);
  }
  dataOf(i: number): bigint {
    return this.submitted[i]!.readBigUInt64LE(0);
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('struct iocb / io_event layout (linux/aio_abi.h, x86-64)', () => {
  test('encodeIocb puts every field at its offset, little-endian, rest zero', () => {
    const b = Buffer.alloc(IOCB_SIZE, 0xee);
    encodeIocb(b, { data: 0x1122334455667788n, opcode: IOCB_CMD_PWRITE, fd: 7, buf: 0x7f0000001000n, nbytes: 512, offset: 1 << 20 });
    const want = Buffer.alloc(64);
    want.write('8877665544332211', 0, 'hex'); // aio_data
    // aio_key (8) and aio_rw_flags (12): zero
    want.writeUInt16LE(1, 16); // aio_lio_opcode
    // aio_reqprio (18): zero
    want.writeUInt32LE(7, 20); // aio_fildes
    want.write('00100000007f0000', 24, 'hex'); // aio_buf
    want.writeUInt32LE(512, 32); // aio_nbytes
    want.writeUInt32LE(1 << 20, 40); // aio_offset
    // aio_reserved2 (48), aio_flags (56), aio_resfd (60): zero
    assert.deepEqual(b, want);
    assert.equal(IOCB_SIZE, 64);
    assert.equal(IO_EVENT_SIZE, 32);
  });

  test('decodeEvent reads data, obj, res (signed), res2', () => {
    const b = Buffer.alloc(64);
    b.writeBigUInt64LE(5n, 32);
    b.writeBigUInt64LE(0xabcn, 40);
    b.writeBigInt64LE(-5n, 48);
    assert.deepEqual(decodeEvent(b, 1), { data: 5n, obj: 0xabcn, res: -5n, res2: 0n });
  });
});

describe('AioQueue', () => {
  function queue(capacity = 4): { sys: FakeSys; q: AioQueue } {
    const sys = new FakeSys();
    const q = AioQueue.create(sys, capacity);
    assert.ok(q instanceof AioQueue);
    return { sys, q };
  }

  test('io_setup failure is returned, not thrown', () => {
    const sys = new FakeSys();
    sys.setupErrno = 11;
    assert.deepEqual(AioQueue.create(sys, 4), { errno: 11 });
  });

  test('completions out of order resolve the right I/O; iocbs live until reaped', async () => {
    const { sys, q } = queue();
    const got: number[] = [];
    const p1 = q.submit(IOCB_CMD_PWRITE, 3, 0x1000n, 512, 0).then((r) => got.push(1) && r);
    const p2 = q.submit(IOCB_CMD_PWRITE, 3, 0x2000n, 4096, 4096).then((r) => got.push(2) && r);
    assert.equal(q.outstanding, 2);
    assert.equal(sys.getevents_calls, 1, 'one reaper for both');
    assert.equal(sys.submitted[1]!.readBigUInt64LE(24), 0x2000n);
    assert.equal(sys.freed.size, 0);
    sys.complete([[sys.dataOf(1), 4096]]);
    assert.equal(await p2, 4096);
    assert.deepEqual(got, [2]);
    assert.ok(sys.waiting, 're-armed while an I/O is outstanding');
    sys.complete([[sys.dataOf(0), -5]]);
    assert.equal(await p1, -5);
    assert.equal(q.outstanding, 0);
    assert.ok(!sys.waiting, 'no reaper while idle');
    assert.equal(sys.freed.size, 0, 'iocbs are kept for reuse, not freed');
    // the next submission reuses a reaped iocb
    const before = sys.mems.size;
    const p3 = q.submit(IOCB_CMD_PWRITE, 3, 0x3000n, 512, 0);
    assert.equal(sys.mems.size, before);
    sys.complete([[sys.dataOf(2), 512]]);
    assert.equal(await p3, 512);
  });

  test('capacity: no submission beyond it', () => {
    const { q } = queue(2);
    void q.submit(IOCB_CMD_PWRITE, 3, 0x1000n, 512, 0);
    void q.submit(IOCB_CMD_PWRITE, 3, 0x1000n, 512, 0);
    assert.equal(q.usable(), false);
    assert.throws(() => q.submit(IOCB_CMD_PWRITE, 3, 0x1000n, 512, 0), AioSubmitError);
  });

  test('io_submit error: thrown synchronously, nothing outstanding, no reaper', () => {
    const { sys, q } = queue();
    sys.submitErrno = 22;
    assert.throws(() => q.submit(IOCB_CMD_PWRITE, 3, 0x1000n, 512, 0), (e: unknown) => e instanceof AioSubmitError && e.errno === 22);
    assert.equal(q.outstanding, 0);
    assert.equal(sys.getevents_calls, 0);
  });

  test('close while idle destroys the context at once', () => {
    const { sys, q } = queue();
    q.close();
    assert.deepEqual(sys.destroyed, [0xc0ffeen]);
    assert.equal(q.isDestroyed, true);
    assert.equal(q.usable(), false);
  });

  test('close with I/O outstanding: io_destroy and frees only after the last completion', async () => {
    const { sys, q } = queue();
    const p = q.submit(IOCB_CMD_PWRITE, 3, 0x1000n, 512, 0);
    q.close();
    assert.deepEqual(sys.destroyed, []);
    assert.equal(sys.freed.size, 0, 'the in-flight iocb and the event array stay');
    sys.complete([[sys.dataOf(0), 512]]);
    assert.equal(await p, 512);
    assert.deepEqual(sys.destroyed, [0xc0ffeen]);
    assert.equal(sys.freed.size, 2, 'iocb and events freed');
  });

  test('io_getevents failures: retried, then the queue gives up and leaks in-flight memory', async () => {
    const { sys, q } = queue();
    const p = q.submit(IOCB_CMD_PWRITE, 3, 0x1000n, 512, 0);
    for (let i = 1; i < MAX_GETEVENTS_FAILURES; i++) sys.failGetevents();
    assert.ok(sys.waiting, 'still retrying');
    assert.equal(q.broken, undefined);
    sys.failGetevents();
    await assert.rejects(p, /io_getevents failed/);
    assert.match(q.broken ?? '', /io_getevents failed/);
    assert.equal(q.usable(), false);
    q.close();
    assert.deepEqual(sys.destroyed, [], 'a broken context is not destroyed (the kernel may still use the memory)');
    assert.equal(sys.freed.size, 0);
  });
});

describe('DirectDisk on a fake aio platform (regular file)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-unit-'));
  after(() => {
    aioTesting.sys = undefined;
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  let n = 0;
  function file(): string {
    const p = path.join(tmp, `f${n++}`);
    fs.writeFileSync(p, Buffer.alloc(1 << 20));
    return p;
  }
  async function open(sys: FakeSys, opts: Parameters<typeof DirectDisk.open>[1] = {}): Promise<DirectDisk> {
    aioTesting.sys = sys;
    try {
      return await DirectDisk.open(file(), { aio: 'all', ...opts });
    } finally {
      aioTesting.sys = undefined;
    }
  }
  const data = Buffer.alloc(512, 0x42);

  test('io_setup failure: pread/pwrite, quietly, with the reason in aioStatus', async () => {
    const sys = new FakeSys();
    sys.setupErrno = 11;
    const d = await open(sys);
    assert.equal(d.aioStatus.active, false);
    assert.match(d.aioStatus.reason ?? '', /io_setup failed: EAGAIN/);
    await d.write(512, data);
    assert.deepEqual(await d.read(512, 512), data);
    assert.equal(sys.submitted.length, 0);
    await d.close();
  });

  test("aio 'off' and 'writes' modes", async () => {
    const sys = new FakeSys();
    const off = await open(sys, { aio: 'off' });
    assert.equal(off.aioStatus.active, false);
    await off.write(0, data);
    await off.close();
    const w = await open(sys, { aio: 'writes' });
    assert.deepEqual(await w.read(0, 512), Buffer.alloc(512), 'reads on the thread pool');
    assert.equal(sys.submitted.length, 0);
    const p = w.write(0, data);
    assert.equal(sys.submitted.length, 1);
    assert.equal(sys.submitted[0]!.readUInt16LE(16), IOCB_CMD_PWRITE);
    sys.complete([[sys.dataOf(0), 512]]);
    await p;
    await w.close();
  });

  test('io_submit EAGAIN: that I/O uses pwrite, aio stays; other errno: aio dropped', async () => {
    const sys = new FakeSys();
    const d = await open(sys);
    sys.submitErrno = 11;
    await d.write(0, data);
    assert.deepEqual(await d.read(0, 512), data);
    assert.equal(d.aioStatus.active, true);
    sys.submitErrno = 22;
    await d.write(512, data);
    assert.equal(d.aioStatus.active, false);
    assert.match(d.aioStatus.reason ?? '', /io_submit failed: EINVAL/);
    assert.deepEqual(sys.destroyed, [0xc0ffeen]);
    assert.deepEqual(await d.read(512, 512), data);
    await d.close();
  });

  test('completion errors and short transfers map to DiskError like the pwrite path', async () => {
    const sys = new FakeSys();
    const d = await open(sys);
    const p1 = d.write(1024, data, { label: 'x' });
    sys.complete([[sys.dataOf(0), -5]]);
    await assert.rejects(p1, (e: unknown) => e instanceof DiskError && e.code === 'EIO' && /^write .* offset 1024 length 512: EIO: i\/o error, write$/.test(e.message));
    const p2 = d.write(1024, data);
    sys.complete([[sys.dataOf(1), 0]]);
    await assert.rejects(p2, (e: unknown) => e instanceof DiskError && e.code === 'ERANGE' && /short write of 0\/512 bytes at offset 1024/.test(e.message));
    const p3 = d.read(0, 1024);
    sys.complete([[sys.dataOf(2), 512]]);
    await assert.rejects(p3, (e: unknown) => e instanceof DiskError && e.code === 'ERANGE' && /short read of 512\/1024/.test(e.message));
    await d.close();
  });

  test('timeouts: ETIMEDOUT at the deadline, stuck bound, memory kept until the late completion', async () => {
    const sys = new FakeSys();
    const d = await open(sys);
    const t0 = Date.now();
    const writes = [d.write(0, data, { timeoutMs: 30 }), d.write(512, data, { timeoutMs: 30 })];
    for (const w of writes) await assert.rejects(w, (e: unknown) => e instanceof DiskError && e.code === 'ETIMEDOUT' && /timed out after 30 ms/.test(e.message));
    assert.ok(Date.now() - t0 >= 25);
    assert.equal(d.stuckIos, MAX_STUCK_IOS);
    assert.equal(d.aioStatus.outstanding, 2);
    // the bound: refused at once, not submitted
    await assert.rejects(d.read(0, 512, { timeoutMs: 30 }), /not issued: 2 earlier I\/Os timed out/);
    assert.equal(sys.submitted.length, 2);
    // nothing handed back to the allocator while the kernel holds it
    const bufs = sys.submitted.map((b) => b.readBigUInt64LE(24));
    // the device answers late
    sys.complete([[sys.dataOf(1), 512], [sys.dataOf(0), 512]]);
    await flush();
    assert.equal(d.stuckIos, 0);
    assert.equal(d.aioStatus.outstanding, 0);
    // both aligned buffers went back to the pool: the next writes reuse them
    const p = d.write(0, data);
    assert.ok(bufs.includes(sys.submitted[2]!.readBigUInt64LE(24)));
    sys.complete([[sys.dataOf(2), 512]]);
    await p;
    await d.close();
  });

  test('close() does not wait for hung aio; io_destroy when it completes', async () => {
    const sys = new FakeSys();
    const d = await open(sys);
    const w = d.write(0, data, { timeoutMs: 20 });
    await assert.rejects(w, /timed out/);
    await d.close();
    assert.equal(d.aioStatus.active, false);
    assert.equal(d.aioStatus.contextDestroyed, false);
    assert.deepEqual(sys.destroyed, []);
    await assert.rejects(d.write(0, data), (e: unknown) => e instanceof DiskError && e.code === 'ECLOSED');
    sys.complete([[sys.dataOf(0), 512]]);
    await flush();
    assert.deepEqual(sys.destroyed, [0xc0ffeen]);
    assert.equal(d.aioStatus.contextDestroyed, true);
    assert.equal(d.stuckIos, 0);
  });

  test('a broken queue fails its I/O with EIO and the disk goes on with pwrite', async () => {
    const sys = new FakeSys();
    const d = await open(sys);
    const w = d.write(0, data);
    for (let i = 0; i < MAX_GETEVENTS_FAILURES; i++) sys.failGetevents();
    await assert.rejects(w, (e: unknown) => e instanceof DiskError && e.code === 'EIO' && /io_getevents failed/.test(e.message));
    await d.write(512, data);
    assert.equal(d.aioStatus.active, false);
    assert.match(d.aioStatus.reason ?? '', /io_getevents failed/);
    assert.deepEqual(await d.read(512, 512), data);
    await d.close();
  });
});
