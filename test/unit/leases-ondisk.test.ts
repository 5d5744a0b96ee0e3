/**
 * On-disk format: CRC vectors, golden sectors written by real sanlock 3.8.5
 * (decode, re-encode, checksums), init byte equality, dump/read_leader text
 * equality, and acquire results byte-equal to sanlock's.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ManualClock } from '../../src/io/clock';
import { Disk, DiskError, IoOptions, checkIo } from '../../src/io/disk';
import { sanlockChecksum, standardCrc32c } from '../../src/leases/crc32c';
import { Lockspace, initLockspace } from '../../src/leases/delta-lease';
import { directDump, findFreeLeaseSlot, formatLeader } from '../../src/leases/direct';
import {
  DELTA_DISK_MAGIC,
  PAXOS_DISK_MAGIC,
  decodeDblock,
  decodeLeader,
  decodeModeBlock,
  decodeRequest,
  dblockChecksumOf,
  encodeDblock,
  encodeLeaderRaw,
  leaderChecksum,
} from '../../src/leases/ondisk';
import { acquireResource, directHost, initResource } from '../../src/leases/paxos-lease';
import { SeededRandom } from '../../src/leases/random';
import { alignSizeOld, geometry, maxHostsFor } from '../../src/leases/sizes';
import { deriveTimeouts } from '../../src/leases/timeouts';
import { parseArgs } from '../../src/cli/leasectl';
import { repoRoot } from '../harness/cluster';

// ---------------------------------------------------------------------------
// helpers

const GOLDEN = path.join(repoRoot(), 'test', 'fixtures', 'sanlock-golden');

/** Sparse in-memory disk (sectors in a map) so images with 500 MiB offsets stay cheap. */
class SparseDisk implements Disk {
  readonly path = 'sparse';
  readonly chunks = new Map<number, Buffer>();
  constructor(readonly sectorSize: number, private readonly bytes: number) {}
  async size(): Promise<number> {
    return this.bytes;
  }
  async read(offset: number, length: number, _o?: IoOptions): Promise<Buffer> {
    checkIo(this, 'read', offset, length, this.bytes);
    const out = Buffer.alloc(length);
    for (let o = 0; o < length; o += 512) {
      const c = this.chunks.get(offset + o);
      if (c) c.copy(out, o);
    }
    return out;
  }
  async write(offset: number, data: Buffer, _o?: IoOptions): Promise<void> {
    checkIo(this, 'write', offset, data.length, this.bytes);
    for (let o = 0; o < data.length; o += 512) {
      const piece = data.subarray(o, o + 512);
      if (piece.some((b) => b !== 0)) this.chunks.set(offset + o, Buffer.from(piece));
      else this.chunks.delete(offset + o);
    }
  }
  async close(): Promise<void> {
    if (this.bytes < 0) throw new DiskError('EIO', 'never');
  }
}

interface Block {
  offset: number;
  size: number;
  data: Buffer;
}

/** Parse sectors.xxd (xxd -a blocks). */
function parseXxd(text: string): Block[] {
  const blocks: Array<{ offset: number; size: number; lines: Map<number, Buffer>; star: boolean }> = [];
  for (const line of text.split('\n')) {
    const m = /^## offset=(\d+) size=(\d+)/.exec(line);
    if (m) {
      blocks.push({ offset: Number(m[1]), size: Number(m[2]), lines: new Map(), star: false });
      continue;
    }
    if (line.startsWith('#') || !line.trim()) continue;
    const b = blocks[blocks.length - 1]!;
    if (line.trim() === '*') {
      b.star = true;
      continue;
    }
    const off = parseInt(line.slice(0, 8), 16);
    const data = Buffer.from(line.slice(10, 49).replace(/ /g, ''), 'hex');
    if (b.star && b.lines.size) {
      const last = Math.max(...b.lines.keys());
      for (let o = last + 16; o < off; o += 16) b.lines.set(o, b.lines.get(last)!);
    }
    b.lines.set(off, data);
    b.star = false;
  }
  return blocks.map((b) => {
    const data = Buffer.alloc(b.size);
    for (const [o, d] of b.lines) d.copy(data, o - b.offset);
    return { offset: b.offset, size: b.size, data };
  });
}

interface GoldenCase {
  case: string;
  image: string;
  sector_size: number;
}

function loadCase(c: GoldenCase): { blocks: Block[]; dump: string; commands: string } {
  const dir = path.join(GOLDEN, c.case);
  return {
    blocks: parseXxd(fs.readFileSync(path.join(dir, 'sectors.xxd'), 'utf8')),
    dump: fs.readFileSync(path.join(dir, 'dump.txt'), 'utf8'),
    commands: fs.readFileSync(path.join(dir, 'commands.txt'), 'utf8'),
  };
}

/** Cases that were made from a copy of another case only list the sectors that changed. */
function baseBlocks(c: GoldenCase): Block[] {
  const { commands } = loadCase(c);
  const m = /(?:copy of|start from|continuing from) (\w+)/.exec(commands);
  const base = m ? cases.find((x) => x.case === m[1]) : undefined;
  return base ? [...baseBlocks(base), ...loadCase(base).blocks] : [];
}

function imageDisk(c: GoldenCase, blocks: Block[]): SparseDisk {
  const d = new SparseDisk(c.sector_size, 2 * 1024 * 1024 * 1024);
  for (const b of [...baseBlocks(c), ...blocks]) {
    for (let o = 0; o < b.size; o += 512) d.chunks.delete(b.offset + o);
    for (let o = 0; o < b.size; o += 512) {
      const piece = b.data.subarray(o, o + 512);
      if (piece.some((x) => x !== 0)) d.chunks.set(b.offset + o, Buffer.from(piece));
    }
  }
  return d;
}

/** Split dump.txt into ($ command, expected output) sections. */
function dumpSections(text: string): Array<{ cmd: string; out: string }> {
  const res: Array<{ cmd: string; out: string }> = [];
  for (const part of text.split(/^\$ /m).slice(1)) {
    const nl = part.indexOf('\n');
    const cmd = part.slice(0, nl);
    let out = part.slice(nl + 1);
    out = out.replace(/\n+$/, '\n');
    res.push({ cmd, out });
  }
  return res;
}

/** Split a shell line into words, honouring single quotes. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] ?? m[2]!);
  return out;
}

const cases: GoldenCase[] = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases.json'), 'utf8'));

// ---------------------------------------------------------------------------

describe('crc32c', () => {
  test('test vectors from the spec', () => {
    assert.equal(sanlockChecksum(Buffer.from('123456789')), 0xe8c7bb34);
    assert.equal(standardCrc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(sanlockChecksum(Buffer.alloc(168)), 0x7e11fbd1);
  });
  test('sanlock variant = ~standard with seed 1', () => {
    // sanlock = ~std_crc32c(data, prev = 1): std with prev p starts from ~p, ends with ~.
    const data = Buffer.from('the quick brown fox');
    const { crc32c } = require('../../src/leases/crc32c') as typeof import('../../src/leases/crc32c');
    const std = (crc32c(~1 >>> 0, data) ^ 0xffffffff) >>> 0;
    assert.equal(sanlockChecksum(data), (~std >>> 0));
  });
});

describe('records', () => {
  test('64-bit fields round-trip above 2^32 and reject values beyond 2^53', () => {
    const d = { mbal: 2 ** 40 + 7, bal: 2 ** 32, inp: 1, inp2: 2 ** 53 - 1, inp3: 0xffffffff, lver: 3, checksum: 0, flags: 1 };
    const b = encodeDblock({ ...d });
    const back = decodeDblock(b);
    assert.deepEqual({ ...back, checksum: 0 }, d);
    assert.equal(b.readBigUInt64LE(0), BigInt(2 ** 40 + 7));
    const bad = Buffer.from(b);
    bad.writeBigUInt64LE(2n ** 60n, 8);
    assert.throws(() => decodeDblock(bad), /out of range/);
    assert.throws(() => encodeDblock({ ...d, mbal: -1 }), /out of range/);
  });
});

describe('sizes', () => {
  test('max_hosts table', () => {
    assert.equal(maxHostsFor(512, 1 << 20), 2000);
    assert.equal(maxHostsFor(4096, 1 << 20), 250);
    assert.equal(maxHostsFor(4096, 2 << 20), 500);
    assert.equal(maxHostsFor(4096, 4 << 20), 1000);
    assert.equal(maxHostsFor(4096, 8 << 20), 2000);
    assert.throws(() => maxHostsFor(512, 2 << 20), /invalid/);
    assert.throws(() => geometry(1024), /invalid sector size/);
    assert.equal(alignSizeOld(4096), 8 << 20);
  });
  test('timeouts derive from io_timeout like sanlock', () => {
    const t = deriveTimeouts(10);
    assert.equal(t.idRenewalSeconds, 20);
    assert.equal(t.idRenewalFailSeconds, 80);
    assert.equal(t.hostDeadSeconds, 140);
    assert.equal(t.deltaAcquireHeldMin, 140);
    assert.equal(t.deltaAcquireHeldMax, 200);
    assert.equal(t.deltaAcquireFreeMax, 50);
    assert.equal(t.paxosAcquireHeldMax, 210);
    assert.equal(t.setBitmapSeconds, 60);
    assert.equal(t.requestFinishSeconds, 60);
    assert.equal(deriveTimeouts(1).hostDeadSeconds, 68);
  });
});

describe('golden sectors', () => {
  test('every leader and dblock decodes, re-encodes byte for byte and has a good checksum', () => {
    let leaders = 0;
    let dblocks = 0;
    for (const c of cases) {
      const { blocks } = loadCase(c);
      for (const b of blocks) {
        for (let s = 0; s < b.size; s += c.sector_size) {
          const sec = b.data.subarray(s, s + c.sector_size);
          const magic = sec.readUInt32LE(0);
          if (magic === DELTA_DISK_MAGIC || magic === PAXOS_DISK_MAGIC) {
            const l = decodeLeader(sec);
            assert.ok(encodeLeaderRaw(l).equals(sec.subarray(0, 200)), `${c.case}@${b.offset + s} re-encode`);
            assert.equal(leaderChecksum(sec.subarray(0, 200)), l.checksum, `${c.case}@${b.offset + s} checksum`);
            assert.ok(sec.subarray(200, 256).every((x) => x === 0));
            leaders++;
          } else if (magic === 0x08292011) {
            const r = decodeRequest(sec);
            assert.equal(r.version, 0x00010001);
          } else if (sec.subarray(0, 56).some((x) => x !== 0)) {
            const d = decodeDblock(sec);
            assert.equal(dblockChecksumOf(sec), d.checksum, `${c.case}@${b.offset + s} dblock checksum`);
            const re = encodeDblock({ ...d });
            assert.ok(re.equals(sec.subarray(0, 56)), `${c.case} dblock re-encode`);
            dblocks++;
          }
        }
      }
    }
    assert.ok(leaders > 30, `leaders checked: ${leaders}`);
    assert.ok(dblocks >= 5, `dblocks checked: ${dblocks}`);
  });

  test('decoded fields match the documented values', () => {
    const c = cases.find((x) => x.case === 'resd_sh_held')!;
    const { blocks } = loadCase(c);
    const img = Buffer.alloc(4096);
    for (const b of blocks) if (b.offset < 4096) b.data.copy(img, b.offset);
    const l = decodeLeader(img);
    assert.equal(l.magic, PAXOS_DISK_MAGIC);
    assert.equal(l.version, 0x00060004);
    assert.equal(l.timestamp, 0);
    assert.equal(l.ownerId, 1);
    assert.equal(l.lver, 1);
    const d = decodeDblock(img, 1024);
    assert.deepEqual([d.mbal, d.bal, d.inp, d.inp2, d.inp3, d.lver, d.flags], [1, 1, 1, 1, 252, 1, 1]);
    assert.deepEqual(decodeModeBlock(img, 1024 + 128), { flags: 1, generation: 1 });
    const r = cases.find((x) => x.case === 'res_request')!;
    const rb = loadCase(r).blocks.find((b) => b.offset === 512)!;
    assert.deepEqual(decodeRequest(rb.data), { magic: 0x08292011, version: 0x00010001, lver: 2, forceMode: 1 });
  });

  for (const c of cases) {
    test(`dump and read_leader text equal sanlock's: ${c.case}`, async () => {
      const { blocks, dump } = loadCase(c);
      const disk = imageDisk(c, blocks);
      for (const sec of dumpSections(dump)) {
        const w = words(sec.cmd);
        if (w[2] === 'dump') {
          const [, off, size] = w[3]!.split(':');
          const force = w.includes('-f') ? Number(w[w.indexOf('-f') + 1]) : 0;
          const r = await directDump(disk, Number(off ?? 0), Number(size ?? 0), { forceMode: force });
          assert.equal(r.text, sec.out, `${c.case}: ${sec.cmd}`);
        } else if (w[2] === 'read_leader') {
          const isLs = w[3] === '-s';
          const parts = w[4]!.split(':');
          const off = Number(parts[3]);
          const at = isLs ? off + (Number(parts[1]) - 1) * c.sector_size : off;
          const l = decodeLeader(await disk.read(at, c.sector_size));
          assert.equal('read_leader done 0\n' + formatLeader(l, isLs), sec.out, `${c.case}: ${sec.cmd}`);
        }
      }
    });
  }

  for (const c of cases) {
    const init = /sanlock direct init/.test(fs.existsSync(path.join(GOLDEN, c.case, 'commands.txt')) ? fs.readFileSync(path.join(GOLDEN, c.case, 'commands.txt'), 'utf8') : '');
    if (!init) continue;
    test(`init is byte-identical to sanlock direct init: ${c.case}`, async () => {
      const { blocks, commands } = loadCase(c);
      const mine = new SparseDisk(c.sector_size, 2 * 1024 * 1024 * 1024);
      let acquired = false;
      for (const line of commands.split('\n')) {
        if (/sanlock direct acquire|sanlock client|continuing|start from|copy of/.test(line)) acquired = true;
        if (!line.startsWith('sanlock direct init')) continue;
        const o = parseArgs(words(line).slice(1));
        const sector = o.sectorSize || 512;
        const align = o.alignSize || alignSizeOld(sector);
        if (o.ls) await initLockspace(mine, o.ls.offset, o.ls.name, { sectorSize: sector, alignSize: align, ioTimeout: 10 });
        else if (o.res) await initResource(mine, o.res.offset, o.res.lockspace, o.res.resource, { sectorSize: sector, alignSize: align, numHosts: o.numHosts });
      }
      let compared = 0;
      for (const b of blocks) {
        const ours = await mine.read(b.offset, b.size);
        if (acquired) {
          // Only sectors that still hold init content are comparable: free delta records,
          // and untouched zero sectors.
          const l = decodeLeader(b.data);
          const isFreeRecord = l.magic === DELTA_DISK_MAGIC && l.ownerId === 0;
          if (!isFreeRecord) continue;
        }
        assert.ok(ours.equals(b.data), `${c.case}: sector at ${b.offset} differs`);
        compared++;
      }
      if (!acquired) assert.ok(compared > 0);
    });
  }

  test('delta acquire writes the same sector as sanlock direct acquire_id (ls512_id1)', async () => {
    const c = cases.find((x) => x.case === 'ls512_id1')!;
    const golden = loadCase(c).blocks.find((b) => b.offset === 0)!.data;
    const want = decodeLeader(golden);
    const disk = new SparseDisk(512, 16 << 20);
    await initLockspace(disk, 0, 'LS', { sectorSize: 512 });
    const clock = new ManualClock(want.timestamp * 1000);
    const ls = new Lockspace({ disk, offset: 0, name: 'LS', hostId: 1, clock, random: new SeededRandom(1), hostName: 'host1-name' });
    const p = ls.acquire();
    for (let i = 0; i < 100 && ls.state !== 'held'; i++) {
      await new Promise((r) => setImmediate(r));
      clock.runNext();
    }
    assert.equal(await p, 1);
    assert.ok((await disk.read(0, 512)).equals(golden));
  });

  test('paxos ballots write the same sectors as sanlock direct acquire (res512_ex1, res_sh1_ex2)', async () => {
    const ex1 = loadCase(cases.find((x) => x.case === 'res512_ex1')!).blocks;
    const disk = new SparseDisk(512, 16 << 20);
    await initResource(disk, 0, 'LS', 'RES1', { sectorSize: 512 });
    const host = directHost(1, 1, new ManualClock(201_000), new SeededRandom(1), 10);
    await acquireResource(host, { disk, offset: 0, lockspace: 'LS', resource: 'RES1' }, { directMode: true });
    for (const b of ex1) assert.ok((await disk.read(b.offset, b.size)).equals(b.data), `res512_ex1 sector ${b.offset}`);

    const shc = cases.find((x) => x.case === 'resd_sh_held')!;
    const d2 = imageDisk(shc, loadCase(shc).blocks);
    const host2 = directHost(2, 1, new ManualClock(290_000), new SeededRandom(1), 10);
    await acquireResource(host2, { disk: d2, offset: 0, lockspace: 'LSD', resource: 'RESSH' }, { directMode: true });
    for (const b of loadCase(cases.find((x) => x.case === 'res_sh1_ex2')!).blocks) {
      assert.ok((await d2.read(b.offset, b.size)).equals(b.data), `res_sh1_ex2 sector ${b.offset}`);
    }
  });

  test('lvmlockd free LV slot scan finds #unused and uninitialized slots', async () => {
    const c = cases.find((x) => x.case === 'lvmlock512_layout')!;
    const disk = imageDisk(c, loadCase(c).blocks);
    const slot = await findFreeLeaseSlot(disk, 'lvm_vg1', 512, 1 << 20);
    assert.equal(slot, 67 * (1 << 20));
    // an area past the last initialized slot (magic 0) is free as well
    const after = await findFreeLeaseSlot(disk, 'lvm_vg1', 512, 1 << 20, 68 * (1 << 20));
    assert.equal(after, 69 * (1 << 20));
  });
});
