/**
 * DirectDisk through Linux native aio on real loop devices (512- and
 * 4096-byte logical sectors): data round trips checked against the backing
 * file and against the pread/pwrite path, errors mapped as on that path,
 * timeouts on the real completion path, close() with I/O in flight, and the
 * iocb layout checked against the system's linux/aio_abi.h when a C
 * compiler is present. Needs root (losetup); skipped otherwise.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AIO_NR_EVENTS, DirectDisk, MAX_STUCK_IOS } from '../../src/io/direct-disk';
import { DiskError } from '../../src/io/disk';
import { IOCB_OFF, IOCB_SIZE, IO_EVENT_SIZE } from '../../src/io/linux-aio';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const haveLosetup = ['/usr/sbin/losetup', '/sbin/losetup', '/usr/bin/losetup'].some((p) => fs.existsSync(p));
const skip = !isRoot ? 'needs root for loop devices' : !haveLosetup ? 'losetup not installed' : process.arch !== 'x64' ? 'x86-64 only' : false;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-it-'));
const loops: string[] = [];
after(() => {
  for (const l of loops.splice(0)) {
    try {
      execFileSync('losetup', ['-d', l]);
    } catch {
      /* already gone */
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const SIZE = 64 << 20;
let nimg = 0;
function loop(sector: 512 | 4096): { dev: string; file: string } {
  const file = path.join(tmp, `img${nimg++}`);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, SIZE);
  const dev = execFileSync('losetup', ['--sector-size', String(sector), '--show', '-f', file], { encoding: 'utf8' }).trim();
  loops.push(dev);
  return { dev, file };
}

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** What the backing file holds at [offset, offset+len): the loop device's medium. */
function backing(file: string, offset: number, len: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(len);
    fs.readSync(fd, b, 0, len, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs `attempt` until it reports a timeout (the I/O must outlast a 1 ms timer; a loaded machine makes that likely, not certain). */
async function untilTimedOut(attempt: () => Promise<boolean>, tries = 8): Promise<void> {
  for (let i = 0; i < tries; i++) if (await attempt()) return;
  assert.fail(`no timeout in ${tries} tries of a 1 ms timeout on a 32 MiB O_SYNC write`);
}

describe('DirectDisk aio on loop devices', { skip, concurrency: false, timeout: 120_000 }, () => {
  test('iocb / io_event layout matches linux/aio_abi.h', { skip: !fs.existsSync('/usr/include/linux/aio_abi.h') || !fs.existsSync('/usr/bin/cc') ? 'no C compiler or kernel headers' : false }, () => {
    const fields = Object.keys(IOCB_OFF);
    const c = path.join(tmp, 'layout.c');
    fs.writeFileSync(
      c,
      '#include <stdio.h>\n#include <stddef.h>\n#include <linux/aio_abi.h>\nint main(void) {\n' +
        fields.map((f) => `  printf("%s %zu\\n", "${f}", offsetof(struct iocb, ${f}));\n`).join('') +
        '  printf("sizeof_iocb %zu\\nsizeof_io_event %zu\\n", sizeof(struct iocb), sizeof(struct io_event));\n  return 0;\n}\n',
    );
    execFileSync('cc', ['-o', path.join(tmp, 'layout'), c]);
    const out = execFileSync(path.join(tmp, 'layout'), { encoding: 'utf8' });
    const got = Object.fromEntries(out.trim().split('\n').map((l) => { const [k, v] = l.split(' '); return [k!, Number(v)]; }));
    assert.deepEqual(got, { ...IOCB_OFF, sizeof_iocb: IOCB_SIZE, sizeof_io_event: IO_EVENT_SIZE });
  });

  for (const sector of [512, 4096] as const) {
    test(`${sector}-byte sectors: writes and reads round-trip through aio, as on the medium`, async () => {
      const { dev, file } = loop(sector);
      const d = await DirectDisk.open(dev, { aio: 'all' });
      const plain = await DirectDisk.open(dev, { aio: 'off' });
      try {
        assert.equal(d.sectorSize, sector);
        assert.equal(d.aioStatus.active, true, `aio not active: ${d.aioStatus.reason}`);
        assert.equal(plain.aioStatus.active, false);
        const cases: Array<[number, number]> = [
          [0, sector],
          [sector, 8 * sector],
          [1 << 20, 1 << 20],
          [SIZE - sector, sector],
        ];
        for (const [i, [off, len]] of cases.entries()) {
          const data = pattern(len, i + sector);
          await d.write(off, data, { timeoutMs: 10_000 });
          assert.deepEqual(backing(file, off, len), data, `medium at ${off}`);
          assert.deepEqual(await d.read(off, len, { timeoutMs: 10_000 }), data, `aio read at ${off}`);
          assert.deepEqual(await plain.read(off, len), data, `pread at ${off}`);
          // and the other way round: pwrite, aio read
          const again = pattern(len, i + 100);
          await plain.write(off, again);
          assert.deepEqual(await d.read(off, len), again);
        }
        assert.equal(d.aioStatus.outstanding, 0);
        assert.equal(d.aioStatus.active, true, 'aio still in use after all of that');
      } finally {
        await d.close();
        await plain.close();
      }
    });

    test(`${sector}-byte sectors: many concurrent I/Os, beyond the aio context size`, async () => {
      const { dev, file } = loop(sector);
      const d = await DirectDisk.open(dev, { aio: 'all' });
      try {
        const n = AIO_NR_EVENTS * 2 + 5;
        const datas = Array.from({ length: n }, (_, i) => pattern(sector, 1000 + i));
        await Promise.all(datas.map((b, i) => d.write(i * 2 * sector, b)));
        const back = await Promise.all(datas.map((_, i) => d.read(i * 2 * sector, sector)));
        back.forEach((b, i) => assert.deepEqual(b, datas[i], `sector ${i * 2}`));
        assert.deepEqual(backing(file, 2 * sector * 7, sector), datas[7]);
        assert.equal(d.aioStatus.active, true);
      } finally {
        await d.close();
      }
    });

    test(`${sector}-byte sectors: errors as on the pwrite path`, async () => {
      const { dev } = loop(sector);
      const d = await DirectDisk.open(dev, { aio: 'all' });
      const plain = await DirectDisk.open(dev, { aio: 'off' });
      try {
        if (sector === 4096) {
          await assert.rejects(d.write(512, Buffer.alloc(512)), (e: unknown) => e instanceof DiskError && e.code === 'EINVAL');
        }
        // past the end: ENOSPC from the block layer for a write, 0 bytes for a read
        const msgs: string[] = [];
        for (const disk of [d, plain]) {
          await assert.rejects(disk.write(SIZE, Buffer.alloc(sector)), (e: unknown) => {
            assert.ok(e instanceof DiskError);
            msgs.push(`${e.code} ${e.message}`);
            return true;
          });
          await assert.rejects(disk.read(SIZE, sector), (e: unknown) => e instanceof DiskError && e.code === 'ERANGE' && /short read of 0\//.test(e.message));
        }
        assert.equal(msgs[0], msgs[1], 'same code and message on both paths');
        assert.equal(d.aioStatus.active, true);
      } finally {
        await d.close();
        await plain.close();
      }
    });
  }

  test('timeout fires on a real aio write; the I/O completes later and is accounted', async () => {
    const { dev, file } = loop(512);
    const d = await DirectDisk.open(dev, { aio: 'all' });
    try {
      const big = pattern(32 << 20, 7);
      await untilTimedOut(async () => {
        const t0 = process.hrtime.bigint();
        try {
          await d.write(0, big, { timeoutMs: 1 });
          return false;
        } catch (e) {
          assert.ok(e instanceof DiskError && e.code === 'ETIMEDOUT', String(e));
          assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 1000, 'rejected at the deadline, not at completion');
          assert.ok(d.aioStatus.outstanding >= 1 || d.stuckIos === 0);
          return true;
        }
      });
      // the kernel finishes it; the stuck count drops back
      for (let i = 0; i < 500 && (d.stuckIos > 0 || d.aioStatus.outstanding > 0); i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(d.stuckIos, 0);
      assert.equal(d.aioStatus.outstanding, 0);
      assert.deepEqual(backing(file, (32 << 20) - 4096, 4096), big.subarray(big.length - 4096), 'the timed-out write still landed whole');
      assert.deepEqual(await d.read(0, 4096), big.subarray(0, 4096));
    } finally {
      await d.close();
    }
  });

  test('stuck bound on the real path: two timed-out writes in flight refuse the third', async () => {
    const { dev } = loop(512);
    const d = await DirectDisk.open(dev, { aio: 'all' });
    try {
      const big = pattern(32 << 20, 9);
      await untilTimedOut(async () => {
        const ws = [d.write(0, big, { timeoutMs: 1 }), d.write(32 << 20, big, { timeoutMs: 1 })];
        const rs = await Promise.allSettled(ws);
        if (!rs.every((r) => r.status === 'rejected') || d.stuckIos < MAX_STUCK_IOS) {
          for (let i = 0; i < 500 && d.stuckIos > 0; i++) await new Promise((r) => setTimeout(r, 10));
          return false;
        }
        await assert.rejects(d.read(0, 512), /not issued/);
        return true;
      });
      for (let i = 0; i < 500 && d.stuckIos > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(d.stuckIos, 0);
      await d.write(0, Buffer.alloc(512, 1));
    } finally {
      await d.close();
    }
  });

  test('close() with aio in flight returns at once; the write completes; the context goes after', async () => {
    const { dev, file } = loop(512);
    const d = await DirectDisk.open(dev, { aio: 'all' });
    const big = pattern(32 << 20, 11);
    const w = d.write(0, big);
    assert.equal(d.aioStatus.outstanding, 1);
    await d.close();
    assert.equal(d.aioStatus.contextDestroyed, false, 'not destroyed while the write is in flight');
    await w;
    assert.equal(d.aioStatus.contextDestroyed, true);
    assert.deepEqual(backing(file, 5 << 20, 4096), big.subarray(5 << 20, (5 << 20) + 4096));
  });

  test('regular files go through aio too', async () => {
    const file = path.join(tmp, 'plain-file');
    fs.writeFileSync(file, Buffer.alloc(1 << 20));
    const d = await DirectDisk.open(file, { aio: 'all' });
    try {
      assert.equal(d.aioStatus.active, true);
      const data = pattern(4096, 3);
      await d.write(8192, data);
      assert.deepEqual(await d.read(8192, 4096), data);
      assert.deepEqual(backing(file, 8192, 4096), data);
    } finally {
      await d.close();
    }
  });
});
