// Protocol tests of the ILM client socket codec (src/ilm/protocol.ts) against
// the byte layouts of propeller's lib_client.c / client.h / lock.h as
// summarised in the project's IDM spec (§2.3-2.5): every command, byte order,
// the SET_KILLPATH length quirk, and bad or truncated frames answered with an
// error (never a throw).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Cmd, IdmMode, ILM_MAGIC, LOCK_PAYLOAD_MAGIC, HEADER_BYTES, PAYLOAD_BYTES, PATH_SLOT_BYTES, KILLPATH_CLAIMED_LENGTH,
  FRAME_BYTES_MAX, RequestParser, ReplyReader, encodeRequest, encodeReply, encodeHeader, encodePayload,
  type IlmRequest, type ParsedFrame,
} from '../../src/ilm/protocol';

const E = { IO: 5, INVAL: 22 };
const lockId = Buffer.from('a'.repeat(32) + 'b'.repeat(32), 'ascii');

const every: IlmRequest[] = [
  { cmd: Cmd.VERSION, drive: '/dev/sdb' },
  { cmd: Cmd.ADD_LOCKSPACE },
  { cmd: Cmd.DEL_LOCKSPACE },
  { cmd: Cmd.ACQUIRE, mode: IdmMode.EXCLUSIVE, lockId, timeoutMs: 60000, drives: ['/dev/sdb1', '/dev/sdc1', '/dev/sdd'] },
  { cmd: Cmd.RELEASE, lockId },
  { cmd: Cmd.CONVERT, mode: IdmMode.SHAREABLE, lockId },
  { cmd: Cmd.WRITE_LVB, lockId, lvb: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) },
  { cmd: Cmd.READ_LVB, lockId },
  { cmd: Cmd.LOCK_HOST_COUNT, lockId, drives: ['/dev/sdb'] },
  { cmd: Cmd.LOCK_MODE, lockId, drives: ['/dev/sdb', '/dev/sdc'] },
  { cmd: Cmd.SET_SIGNAL, signo: 15 },
  { cmd: Cmd.SET_KILLPATH, path: '/usr/sbin/lvmlockctl', args: '--kill vg1' },
  { cmd: Cmd.SET_HOST_ID, hostId: Buffer.alloc(32, 7) },
  { cmd: Cmd.STOP_RENEW },
  { cmd: Cmd.START_RENEW },
  { cmd: Cmd.INJECT_FAULT, percentage: 50 },
];

function parseAll(bytes: Buffer, chunk = bytes.length): ParsedFrame[] {
  const p = new RequestParser();
  const out: ParsedFrame[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    p.push(bytes.subarray(i, i + chunk));
    for (let f = p.next(); f; f = p.next()) { out.push(f); if (f.kind === 'fatal') return out; }
  }
  return out;
}

describe('ILM protocol: byte layouts', () => {
  test('header: four host-endian u32, magic 00 4d 4c 49 on the little-endian wire', () => {
    const b = encodeRequest({ cmd: Cmd.ADD_LOCKSPACE });
    assert.equal(b.toString('hex'), '004d4c49' + '01000000' + '10000000' + '00000000');
  });

  test('ACQUIRE: payload {LOCK magic, mode, drive_num, 64-byte id, timeout} then 4096-byte path slots', () => {
    const b = encodeRequest(every[3]!);
    assert.equal(b.length, HEADER_BYTES + PAYLOAD_BYTES + 3 * PATH_SLOT_BYTES);
    assert.equal(b.readUInt32LE(8), b.length);
    const p = b.subarray(HEADER_BYTES);
    assert.equal(p.readUInt32LE(0), LOCK_PAYLOAD_MAGIC);
    assert.equal(p.subarray(0, 4).toString('hex'), '4b434f4c');
    assert.equal(p.readUInt32LE(4), 1);
    assert.equal(p.readUInt32LE(8), 3);
    assert.deepEqual(p.subarray(12, 76), lockId);
    assert.equal(p.readInt32LE(76), 60000);
    const slot0 = p.subarray(PAYLOAD_BYTES, PAYLOAD_BYTES + PATH_SLOT_BYTES);
    assert.equal(slot0.subarray(0, 10).toString(), '/dev/sdb1\0');
    assert.ok(slot0.subarray(9).every((x) => x === 0));
  });

  test('SET_KILLPATH claims 16 + 80 + 256 bytes but sends 256 (libseagate_ilm quirk)', () => {
    const b = encodeRequest(every[11]!);
    assert.equal(b.readUInt32LE(8), KILLPATH_CLAIMED_LENGTH);
    assert.equal(KILLPATH_CLAIMED_LENGTH, 352);
    assert.equal(b.length, 16 + 256);
  });

  test('SET_SIGNAL and INJECT_FAULT carry a bare int32, no payload struct', () => {
    assert.equal(encodeRequest(every[10]!).length, 20);
    assert.equal(encodeRequest({ cmd: Cmd.INJECT_FAULT, percentage: -1 }).readInt32LE(16), -1);
  });

  test('WRITE_LVB is payload + 8 raw bytes; VERSION sends drive_num 1 and one slot', () => {
    assert.equal(encodeRequest(every[6]!).length, 16 + 80 + 8);
    const v = encodeRequest(every[0]!);
    assert.equal(v.length, 16 + 80 + 4096);
    assert.equal(v.readUInt32LE(16 + 8), 1);
  });

  test('reply: header with result, then data; ReplyReader splits a stream', () => {
    const r = new ReplyReader();
    const bytes = Buffer.concat([encodeReply(Cmd.READ_LVB, 0, Buffer.alloc(8, 9)), encodeReply(Cmd.RELEASE, -1)]);
    for (const byte of bytes) r.push(Buffer.from([byte]));
    const a = r.next();
    assert.equal(a?.header.result, 0);
    assert.deepEqual(a?.data, Buffer.alloc(8, 9));
    const b = r.next();
    assert.equal(b?.header.result, -1);
    assert.equal(b?.data.length, 0);
    assert.equal(r.next(), null);
    const bad = new ReplyReader();
    bad.push(Buffer.alloc(16));
    assert.throws(() => bad.next(), /bad magic/);
  });
});

describe('ILM protocol: daemon-side parser', () => {
  for (const req of every) {
    test(`round trip of ${Object.keys(Cmd).find((k) => Cmd[k as keyof typeof Cmd] === req.cmd)}, whole and byte by byte`, () => {
      const bytes = encodeRequest(req);
      for (const chunk of [bytes.length, 1, 97]) {
        const frames = parseAll(bytes, chunk);
        assert.equal(frames.length, 1);
        assert.deepEqual(frames[0], { kind: 'request', req });
      }
    });
  }

  test('every command back to back in one stream (killpath surplus not eaten from the next frame)', () => {
    const bytes = Buffer.concat(every.map(encodeRequest));
    const frames = parseAll(bytes);
    assert.deepEqual(frames, every.map((req) => ({ kind: 'request', req })));
  });

  test('SET_KILLPATH with its true length (272) is accepted too', () => {
    const b = encodeRequest(every[11]!);
    b.writeUInt32LE(272, 8);
    assert.deepEqual(parseAll(b), [{ kind: 'request', req: every[11] }]);
  });

  test('bad header magic: fatal, answered -EINVAL', () => {
    const b = encodeRequest({ cmd: Cmd.ADD_LOCKSPACE });
    b.writeUInt32LE(0xdeadbeef, 0);
    const [f] = parseAll(b);
    assert.equal(f?.kind, 'fatal');
    assert.equal(f?.result, -E.INVAL);
  });

  test('unknown command: -EINVAL (propeller sends no reply), its claimed bytes skipped', () => {
    const junk = Buffer.concat([encodeHeader({ magic: ILM_MAGIC, cmd: 99, length: 16 + 5, result: 0 }), Buffer.alloc(5, 1)]);
    const frames = parseAll(Buffer.concat([junk, encodeRequest({ cmd: Cmd.STOP_RENEW })]));
    assert.equal(frames[0]?.kind, 'reject');
    assert.equal(frames[0]?.result, -E.INVAL);
    assert.deepEqual(frames[1], { kind: 'request', req: { cmd: Cmd.STOP_RENEW } });
  });

  test('bad payload magic: -EINVAL, the path slots behind it skipped', () => {
    const b = encodeRequest(every[3]!);
    b.writeUInt32LE(0x1234, 16);
    const frames = parseAll(Buffer.concat([b, encodeRequest({ cmd: Cmd.START_RENEW })]), 1000);
    assert.deepEqual(frames.map((f) => [f.kind, f.kind === 'request' ? f.req.cmd : f.result]),
      [['reject', -E.INVAL], ['request', Cmd.START_RENEW]]);
  });

  test('ACQUIRE with drive_num 0 or 513, or mode 0/3: -EINVAL', () => {
    for (const [driveNum, mode] of [[0, 1], [513, 1], [1, 0], [1, 3]] as const) {
      const b = Buffer.concat([
        encodeHeader({ magic: ILM_MAGIC, cmd: Cmd.ACQUIRE, length: 16 + 80, result: 0 }),
        encodePayload({ mode, driveNum, lockId }),
      ]);
      const frames = parseAll(b);
      assert.equal(frames.length, 1);
      assert.deepEqual(frames.map((f) => f.kind === 'request' ? 'request' : f.result), [-E.INVAL]);
    }
  });

  test('VERSION with drive_num != 1 and HOST_COUNT with drive_num > 512: -EINVAL', () => {
    for (const [cmd, driveNum] of [[Cmd.VERSION, 2], [Cmd.LOCK_HOST_COUNT, 600], [Cmd.LOCK_MODE, 513]] as const) {
      const b = Buffer.concat([encodeHeader({ magic: ILM_MAGIC, cmd, length: 96, result: 0 }), encodePayload({ driveNum, lockId })]);
      const [f] = parseAll(b);
      assert.equal(f?.kind, 'reject');
      assert.equal(f.kind === 'reject' && f.result, -E.INVAL);
    }
  });

  test('header claiming fewer bytes than the command needs: -EIO after the claimed bytes, stream stays in step', () => {
    const short = encodeRequest(every[3]!).subarray(0, 16 + 80 + 100);
    short.writeUInt32LE(short.length, 8);
    const lvbShort = encodeRequest(every[6]!).subarray(0, 16 + 80 + 3);
    lvbShort.writeUInt32LE(lvbShort.length, 8);
    const frames = parseAll(Buffer.concat([short, lvbShort, encodeRequest({ cmd: Cmd.DEL_LOCKSPACE })]), 7);
    assert.deepEqual(frames.map((f) => [f.kind, f.kind === 'request' ? f.req.cmd : f.result]),
      [['reject', -E.IO], ['reject', -E.IO], ['request', Cmd.DEL_LOCKSPACE]]);
  });

  test('a truncated frame is incomplete (midFrame), never a throw', () => {
    const b = encodeRequest(every[3]!).subarray(0, 40);
    const p = new RequestParser();
    p.push(b);
    assert.equal(p.next(), null);
    assert.equal(p.midFrame, true);
  });

  test('header claiming more than the largest legal frame: fatal -EINVAL', () => {
    const b = encodeHeader({ magic: ILM_MAGIC, cmd: Cmd.ACQUIRE, length: FRAME_BYTES_MAX + 1, result: 0 });
    const [f] = parseAll(b);
    assert.equal(f?.kind, 'fatal');
  });

  test('random byte streams never throw; every frame is a request, reject or fatal', () => {
    fc.assert(fc.property(fc.array(fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
      fc.constantFrom(...every).map(encodeRequest),
      fc.record({ cmd: fc.integer({ min: 0, max: 20 }), length: fc.integer({ min: 0, max: 400 }) })
        .map(({ cmd, length }) => encodeHeader({ magic: ILM_MAGIC, cmd, length, result: 0 })),
    ), { maxLength: 8 }), fc.integer({ min: 1, max: 300 }), (parts, chunk) => {
      const frames = parseAll(Buffer.concat(parts), chunk);
      for (const f of frames) assert.ok(['request', 'reject', 'fatal'].includes(f.kind));
    }), { numRuns: 300 });
  });
});
