/** leasectl argument parsing and a full init/acquire/dump/release round on a temp file (no sanlock needed). */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs, run } from '../../src/cli/leasectl';
import { parseDumpPath, parseLockspaceArg, parseResourceArg, splitEscaped } from '../../src/leases/direct';

describe('leasectl argument syntax (same as sanlock direct)', () => {
  test('lockspace, resource and dump paths', () => {
    assert.deepEqual(parseLockspaceArg('LS:3:/dev/x:1M'), { name: 'LS', hostId: 3, path: '/dev/x', offset: 1 << 20 });
    assert.deepEqual(parseResourceArg('LS:R:/dev/x:2097152:5'), { lockspace: 'LS', resource: 'R', path: '/dev/x', offset: 2 << 20, lver: 5 });
    assert.deepEqual(parseResourceArg('lvm_vg:#unused:/dev/a\\:b:0'), { lockspace: 'lvm_vg', resource: '#unused', path: '/dev/a:b', offset: 0, lver: 0 });
    assert.deepEqual(parseDumpPath('img:8M:1M'), { path: 'img', offset: 8 << 20, size: 1 << 20 });
    assert.deepEqual(splitEscaped('a\\:b:c'), ['a:b', 'c']);
    assert.throws(() => parseResourceArg('LS'), /invalid resource/);
    assert.throws(() => parseLockspaceArg('LS:x:/p:0'), /invalid host_id/);
    assert.throws(() => parseResourceArg(`LS:${'n'.repeat(49)}:/p:0`), /longer than 48/);
    assert.throws(() => parseLockspaceArg('LS:1:/p:12K'), /invalid offset/);
  });
  test('options', () => {
    const o = parseArgs(['direct', 'init', '-r', 'LS:R:p:0', '-Z', '4096', '-A', '2M', '-n', '8', '-o', '3']);
    assert.equal(o.sectorSize, 4096);
    assert.equal(o.alignSize, 2 << 20);
    assert.equal(o.numHosts, 8);
    assert.equal(o.ioTimeout, 3);
    assert.throws(() => parseArgs(['direct', 'init', '-A', '3M']), /invalid align size/);
    assert.throws(() => parseArgs(['direct', 'init', '-Q']), /requires arg/);
    assert.throws(() => parseArgs(['direct', 'init', '-rLS']), /unknown option/);
  });
});

describe('leasectl on a file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasectl-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'l.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 4 << 20);

  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await run(argv, (s) => (out += s), (s) => (err += s));
    return { code, out, err };
  }

  test('init, acquire, dump, read_leader, release, errors', async (t) => {
    const init = await cli('direct', 'init', '-s', `LS:0:${file}:0`, '-o', '1');
    if (/O_DIRECT/.test(init.err)) {
      t.skip('temp dir does not support O_DIRECT');
      return;
    }
    assert.equal(init.out, 'init done 0\n');
    assert.equal((await cli('direct', 'init', '-r', `LS:R:${file}:1M`)).out, 'init done 0\n');
    const a = await cli('direct', 'acquire', '-r', `LS:R:${file}:1M`, '-i', '4', '-g', '2');
    assert.equal(a.out, 'acquire done 0\n');
    assert.equal(a.code, 0);
    const d = await cli('direct', 'dump', `${file}:1M`, '-f', '2');
    assert.match(d.out, /^01048576 {35}LS {48}R 00\d{8} 0004 0002 1\/0\/0\ndblock\[0003\] mbal 4 bal 4 inp 4 inp2 2 inp3 \d+ lver 1 sum [0-9a-f]+\n$/m);
    const other = await cli('direct', 'acquire', '-r', `LS:R:${file}:1M`, '-i', '5', '-g', '1');
    assert.equal(other.out, 'acquire done -241\n');
    assert.equal(other.code, 1);
    assert.match(other.err, /held by host_id 4 generation 2/);
    const rl = await cli('direct', 'read_leader', '-r', `LS:R:${file}:1M`);
    assert.match(rl.out, /^read_leader done 0\nmagic 0x6152010\n[\s\S]*owner_id 4\nowner_generation 2\n/);
    assert.equal((await cli('direct', 'release', '-r', `LS:R:${file}:1M`)).out, 'release done 0\n');
    assert.match((await cli('direct', 'read_leader', '-r', `LS:R:${file}:1M`)).out, /timestamp [1-9]/, 'release without -i writes nothing (sanlock 3.8.5)');
    assert.equal((await cli('direct', 'release', '-r', `LS:R:${file}:1M`, '-i', '4', '-g', '2')).out, 'release done 0\n');
    assert.match((await cli('direct', 'read_leader', '-r', `LS:R:${file}:1M`)).out, /timestamp 0\n/);
    const bad = await cli('direct', 'read_leader', '-r', `LS:NOPE:${file}:1M`);
    assert.match(bad.out, /^read_leader done -227\n/);
    assert.match(bad.err, /"R" on disk, expected "NOPE"/);
    const magic = await cli('direct', 'acquire', '-r', `LS:R:${file}:2M`, '-i', '1', '-g', '1');
    assert.equal(magic.out, 'acquire done -223\n');
    assert.match((await cli('direct', 'dump', `${file}:3M`)).out, /Cannot find sector_size and align_size/);
    assert.equal((await cli('direct', 'frob')).code, 1);
    // misaligned offset: clear error, nothing written
    const before = fs.readFileSync(file);
    const mis = await cli('direct', 'acquire', '-r', `LS:R:${file}:1048577`, '-i', '1', '-g', '1');
    assert.equal(mis.out, 'acquire done -22\n');
    assert.match(mis.err, /not aligned/);
    // truncated device: the lease area runs past the end of the file
    const cut = path.join(dir, 'cut.img');
    fs.writeFileSync(cut, before.subarray(0, (1 << 20) + 65536));
    const tr = await cli('direct', 'acquire', '-r', `LS:R:${cut}:1M`, '-i', '1', '-g', '1');
    assert.equal(tr.out, 'acquire done -220\n');
    assert.match(tr.err, /short read/);
    assert.ok(fs.readFileSync(cut).equals(before.subarray(0, (1 << 20) + 65536)), 'nothing written to the truncated device');
    assert.ok(fs.readFileSync(file).equals(before));
  });
});
