/**
 * DirectDisk.release(): a buffer read() returned and the caller gave back is
 * reused by the next read of that size (no fresh 1 MiB allocation per lease
 * read), and only such buffers: foreign buffers and second releases are
 * ignored, and a reused buffer always carries the new read's bytes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DirectDisk } from '../../src/io/direct-disk';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'direct-disk-release-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function openDisk(): Promise<DirectDisk> {
  const file = path.join(dir, `disk-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, Buffer.alloc(64 * 1024));
  return DirectDisk.open(file, { aio: 'off', sectorSize: 512 });
}

test('a released read buffer is reused by the next read of the same size, with the new bytes', async () => {
  const disk = await openDisk();
  try {
    await disk.write(0, Buffer.alloc(4096, 0xaa));
    await disk.write(4096, Buffer.alloc(4096, 0x55));
    const a = await disk.read(0, 4096);
    assert.equal(a[0], 0xaa);
    disk.release(a);
    const b = await disk.read(4096, 4096);
    assert.equal(b, a, 'the released buffer came back');
    assert.ok(b.every((x) => x === 0x55), 'it holds the second read\'s bytes');
    const other = await disk.read(0, 8192);
    assert.notEqual(other, b, 'another size does not take it');
  } finally {
    await disk.close();
  }
});

test('a buffer still held is never handed out again; double and foreign releases are ignored', async () => {
  const disk = await openDisk();
  try {
    const held = await disk.read(0, 4096);
    const second = await disk.read(0, 4096);
    assert.notEqual(second, held, 'nothing was released: a new buffer');
    disk.release(second);
    disk.release(second); // second release: ignored
    disk.release(Buffer.alloc(4096)); // not from this disk: ignored
    const third = await disk.read(0, 4096);
    const fourth = await disk.read(0, 4096);
    assert.equal(third, second);
    assert.notEqual(fourth, second, 'a double release must not hand one buffer to two readers');
    assert.notEqual(fourth, held);
  } finally {
    await disk.close();
  }
});
