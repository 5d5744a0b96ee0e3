// The IDM drive command set: CDB bytes and the 512-byte record against the
// byte tables of the project's IDM spec (§4.2, §4.3, from propeller's
// src/idm_scsi.c), SCSI status + sense -> errno as propeller maps it, and the
// emulated firmware (spec §5.2) driven through the ILM's own drive layer
// (DriveCommands) over an in-process SCSI target, so every command takes the
// same CDB/sense path as over a socket.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MutexOp, EntryState, RECORD_BYTES, encodeWriteRecord, decodeWriteRecord, encodeReadRecord, decodeReadRecord,
} from '../../src/idm/record';
import {
  writeCdb, readCdb, scsiErrno, ScsiStatus, SENSE_DESCRIPTOR, SENSE_FIXED, versionInquiryCdb,
} from '../../src/idm/scsi';
import { IdmFirmware } from '../../src/idm/firmware';
import { ScsiTarget } from '../../src/idm/scsi-target';
import { DriveCommands } from '../../src/ilm/drive-commands';
import type { DriveTransport, ScsiCommand, ScsiReply } from '../../src/idm/transport';
import { encodeNvmeAdminCmd, nvmeErrno, NVME_IDM_WRITE, NVME_IDM_READ, NVME_IOCTL_ADMIN_CMD } from '../../src/idm/nvme';
import { encodeSgIoHdr, decodeSgIoHdr, SG_IO_HDR_BYTES, SG_DXFER_TO_DEV } from '../../src/idm/sg-io';
import { encodeSgRequest, parseSgRequest, encodeSgReply, parseSgReply } from '../../src/idm/transport';

const E = { PERM: 1, NOENT: 2, IO: 5, AGAIN: 11, NOMEM: 12, BUSY: 16, INVAL: 22, TIME: 62 };
const EX = 1;
const SH = 2;

function id(s: string, n: number): Buffer {
  return Buffer.from(s.repeat(n).slice(0, n), 'ascii');
}
const LOCK = id('v', 32).length === 32 ? Buffer.concat([id('V', 32), id('L', 32)]) : Buffer.alloc(64);
const HOST_A = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(12), id('a', 16)]);
const HOST_B = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.alloc(12), id('b', 16)]);
const HOST_C = Buffer.concat([Buffer.from([3, 0, 0, 0]), Buffer.alloc(12), id('c', 16)]);

/** An SG_IO stand-in that hands commands to an in-process target at a manual clock. */
class LoopbackTransport implements DriveTransport {
  readonly path = 'loopback';
  nowMs = 1_000_000;
  constructor(readonly target: ScsiTarget) {}
  async execute(cmd: ScsiCommand): Promise<ScsiReply> {
    // Through the socket wire format both ways, so the framing is covered too.
    const req = parseSgRequest(encodeSgRequest(cmd))!.value;
    const done = this.target.execute(req.cdb, req.dataOut, req.dataInBytes, this.nowMs);
    const rep = parseSgReply(encodeSgReply(done))!.value;
    return { ok: true, ...rep };
  }
  close(): void {}
}

function drive(): { t: LoopbackTransport; cmds: DriveCommands } {
  const t = new LoopbackTransport(new ScsiTarget(new IdmFirmware(), { wwn: '5000c500a1b2c3d4', versionMajor: 8 }));
  return { t, cmds: new DriveCommands(t) };
}

function req(hostId: Buffer, mode: number, timeoutMs = 60000, lvb?: Buffer) {
  return { lockId: LOCK, hostId, mode, timeoutMs, lvb, timeNowMs: 1234n };
}

describe('IDM SCSI encoding (spec §4.3)', () => {
  test('write CDB: F0, opcode in the upper nibble of byte 1, 00 00 02 00, group 1', () => {
    assert.equal(writeCdb(MutexOp.TRYLOCK).toString('hex'), 'f020' + '00'.repeat(8) + '00000200' + '01' + '00');
    assert.equal(writeCdb(MutexOp.DESTROY)[1], 0x70);
    assert.equal(writeCdb(MutexOp.REFRESH)[1], 0x50);
  });

  test('read CDB: F0 01, record count big-endian in 10..13, group in 14', () => {
    assert.equal(readCdb(0xff, 1).toString('hex'), 'f001' + '00'.repeat(8) + '00000001' + 'ff' + '00');
    assert.equal(readCdb(1, 0x01020304).subarray(10, 15).toString('hex'), '0102030401');
  });

  test('version INQUIRY: 12 01 C3 00 70 00', () => {
    assert.equal(versionInquiryCdb().toString('hex'), '1201c3007000');
  });

  test('status + sense -> errno, per opcode', () => {
    const cases: Array<[number, Buffer, number, number]> = [
      [ScsiStatus.GOOD, Buffer.alloc(0), MutexOp.TRYLOCK, 0],
      [ScsiStatus.CHECK_CONDITION, SENSE_DESCRIPTOR['invalid-opcode'], MutexOp.TRYLOCK, -E.INVAL],
      [ScsiStatus.CHECK_CONDITION, SENSE_FIXED['invalid-opcode'], MutexOp.TRYLOCK, -E.INVAL],
      [ScsiStatus.CHECK_CONDITION, SENSE_DESCRIPTOR['lba-out-of-range'], MutexOp.UNLOCK, -E.NOENT],
      [ScsiStatus.CHECK_CONDITION, SENSE_FIXED['lba-out-of-range'], MutexOp.REFRESH, -E.NOENT],
      [ScsiStatus.CHECK_CONDITION, SENSE_DESCRIPTOR['mutex-list-full'], MutexOp.TRYLOCK, -E.NOMEM],
      [ScsiStatus.CHECK_CONDITION, SENSE_FIXED['host-list-full'], MutexOp.TRYLOCK, -E.NOMEM],
      [ScsiStatus.CHECK_CONDITION, SENSE_DESCRIPTOR['mutex-host-list-full'], MutexOp.TRYLOCK, -E.NOMEM],
      [ScsiStatus.CHECK_CONDITION, Buffer.from([0x70, 0, 3]), MutexOp.TRYLOCK, -E.INVAL],
      [ScsiStatus.RESERVATION_CONFLICT, Buffer.alloc(0), MutexOp.REFRESH, -E.TIME],
      [ScsiStatus.RESERVATION_CONFLICT, Buffer.alloc(0), MutexOp.UNLOCK, -E.NOENT],
      [ScsiStatus.RESERVATION_CONFLICT, Buffer.alloc(0), MutexOp.TRYLOCK, -E.BUSY],
      [ScsiStatus.BUSY, Buffer.alloc(0), MutexOp.BREAK, -E.BUSY],
      [ScsiStatus.COMMAND_TERMINATED, Buffer.alloc(0), MutexOp.REFRESH, -E.PERM],
      [ScsiStatus.COMMAND_TERMINATED, Buffer.alloc(0), MutexOp.UNLOCK, -E.INVAL],
      [ScsiStatus.COMMAND_TERMINATED, Buffer.alloc(0), MutexOp.TRYLOCK, -E.AGAIN],
      [0x28, Buffer.alloc(0), MutexOp.TRYLOCK, -E.INVAL],
    ];
    for (const [status, sense, op, errno] of cases) assert.equal(scsiErrno(status, sense, op), errno, `status ${status} op ${op}`);
  });

  test('sense bytes as propeller compares them (descriptor 72 05 21 …, fixed 70 00 05 … 21)', () => {
    assert.equal(SENSE_DESCRIPTOR['lba-out-of-range'].length, 28);
    assert.equal(SENSE_DESCRIPTOR['lba-out-of-range'].subarray(0, 16).toString('hex'), '7205210000000014030200018' + '00e0000');
    assert.equal(SENSE_DESCRIPTOR['invalid-opcode'].length, 32);
    assert.equal(SENSE_DESCRIPTOR['invalid-opcode'][12], 0xcf);
    assert.equal(SENSE_FIXED['invalid-opcode'].toString('hex'), '700007000000000a00000000310001000000');
  });
});

describe('IDM record (spec §4.2)', () => {
  test('write record: BE u64 fields, byte-reversed ids, res_ver type over the LVB MSB', () => {
    const lvb = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = encodeWriteRecord({ timeNowMs: 0x1122n, countdownMs: 60000n, mutexClass: 2, resVerType: 1, lvb, lockId: LOCK, hostId: HOST_A });
    assert.equal(b.length, RECORD_BYTES);
    assert.equal(b.subarray(8, 16).toString('hex'), '0000000000001122');
    assert.equal(b.readBigUInt64BE(16), 60000n);
    assert.equal(b.readBigUInt64BE(24), 2n);
    assert.equal(b.subarray(32, 40).toString('hex'), '0107060504030201');
    assert.equal(b[64], LOCK[63]);
    assert.equal(b[127], LOCK[0]);
    assert.equal(b[192], HOST_A[31]);
    assert.equal(b[223], HOST_A[0]);
    const back = decodeWriteRecord(b);
    assert.deepEqual(back.lockId, LOCK);
    assert.deepEqual(back.hostId, HOST_A);
    assert.equal(back.resVerType, 1);
  });

  test('read record round trip; the LVB comes back in client order', () => {
    const lvb = Buffer.from([9, 8, 7, 6, 5, 4, 3, 0]);
    const r = { state: EntryState.LOCKED, modifiedMs: 5n, countdownMs: 7n, mutexClass: 0, lvb, lockId: LOCK, hostId: HOST_B };
    assert.deepEqual(decodeReadRecord(encodeReadRecord(r)), r);
  });
});

describe('emulated firmware through the ILM drive layer (spec §5.2)', () => {
  test('trylock: free -> 0; twice by the holder -> -EAGAIN; ex by another -> -EBUSY', async () => {
    const { cmds } = drive();
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX)), 0);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX)), -E.AGAIN);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, EX)), -E.BUSY);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, SH)), -E.BUSY);
  });

  test('shared: two hosts sh; ex refused; host counts as propeller\'s tests expect', async () => {
    const { cmds } = drive();
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, SH)), 0);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, SH)), 0);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_C, EX)), -E.BUSY);
    assert.deepEqual(await cmds.count(LOCK, HOST_A), { rv: 0, count: 1, self: 1 });
    assert.deepEqual(await cmds.count(LOCK, HOST_C), { rv: 0, count: 2, self: 0 });
    assert.deepEqual(await cmds.mode(LOCK), { rv: 0, mode: SH });
    // SH -> EX with another sharer: COMMAND TERMINATED -> -EPERM
    assert.equal(await cmds.mutex(MutexOp.REFRESH, req(HOST_A, EX)), -E.PERM);
  });

  test('unlock: stores the LVB (7 bytes), wrong mode -> -EINVAL, not a holder -> -ENOENT, unknown -> -ENOENT', async () => {
    const { cmds } = drive();
    assert.equal(await cmds.mutex(MutexOp.UNLOCK, req(HOST_A, EX)), -E.NOENT);
    await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX));
    assert.equal(await cmds.mutex(MutexOp.UNLOCK, req(HOST_B, EX)), -E.NOENT);
    assert.equal(await cmds.mutex(MutexOp.UNLOCK, req(HOST_A, SH)), -E.INVAL);
    assert.equal(await cmds.mutex(MutexOp.UNLOCK, req(HOST_A, EX, 0, Buffer.from([1, 2, 3, 4, 5, 6, 7, 0x68]))), 0);
    assert.equal(await cmds.mutex(MutexOp.UNLOCK, req(HOST_A, EX)), 0, 'EX unlocked twice is GOOD');
    const r = await cmds.readLvb(LOCK, HOST_A);
    assert.deepEqual(r, { rv: 0, lvb: Buffer.from([1, 2, 3, 4, 5, 6, 7, 0]) });
    // The LVB survives a new lock by another host while the mutex exists.
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, EX)), 0);
    assert.deepEqual((await cmds.readLvb(LOCK, HOST_B)).lvb, Buffer.from([1, 2, 3, 4, 5, 6, 7, 0]));
  });

  test('refresh by a non-holder -> -ETIME; on an unknown mutex -> -ENOENT; ex -> sh demotion', async () => {
    const { cmds } = drive();
    assert.equal(await cmds.mutex(MutexOp.REFRESH, req(HOST_A, EX)), -E.NOENT);
    await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX));
    assert.equal(await cmds.mutex(MutexOp.REFRESH, req(HOST_B, EX)), -E.TIME);
    assert.equal(await cmds.mutex(MutexOp.REFRESH, req(HOST_A, SH)), 0);
    assert.deepEqual(await cmds.mode(LOCK), { rv: 0, mode: SH });
  });

  test('membership timeout: break refused while live, granted after the countdown; the broken host loses it', async () => {
    const { t, cmds } = drive();
    await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX, 5000));
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, EX)), -E.BUSY);
    assert.equal(await cmds.mutex(MutexOp.BREAK, req(HOST_B, EX)), -E.BUSY);
    t.nowMs += 5001;
    // expired but not broken: still the holder, reported TIMEOUT, own refresh still works
    const table = await cmds.table();
    assert.equal(table.rows[0]?.state, EntryState.TIMEOUT);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, EX)), -E.BUSY);
    assert.equal(await cmds.mutex(MutexOp.BREAK, req(HOST_B, EX)), 0);
    assert.equal(await cmds.mutex(MutexOp.REFRESH, req(HOST_A, EX)), -E.TIME);
    assert.equal(await cmds.mutex(MutexOp.UNLOCK, req(HOST_A, EX)), -E.NOENT);
    assert.deepEqual(await cmds.count(LOCK, HOST_B), { rv: 0, count: 0, self: 1 });
  });

  test('destroy: refused while held live, removes the mutex once released', async () => {
    const { cmds } = drive();
    assert.equal(await cmds.mutex(MutexOp.DESTROY, req(HOST_A, EX)), -E.NOENT);
    await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, SH));
    await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, SH));
    await cmds.mutex(MutexOp.UNLOCK, req(HOST_A, SH));
    assert.equal(await cmds.mutex(MutexOp.DESTROY, req(HOST_A, SH)), -E.BUSY);
    await cmds.mutex(MutexOp.UNLOCK, req(HOST_B, SH));
    assert.equal(await cmds.mutex(MutexOp.DESTROY, req(HOST_B, SH)), 0);
    assert.deepEqual((await cmds.table()).rows, []);
    assert.deepEqual(await cmds.mode(LOCK), { rv: 0, mode: 0 });
  });

  test('destroy and the LVB: kept for the next lock by default, dropped with keepLvbOnDestroy false', async () => {
    for (const keep of [true, false]) {
      const t = new LoopbackTransport(new ScsiTarget(new IdmFirmware(undefined, { keepLvbOnDestroy: keep }), { wwn: '1', versionMajor: 8 }));
      const cmds = new DriveCommands(t);
      await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX));
      await cmds.mutex(MutexOp.UNLOCK, req(HOST_A, EX, 0, Buffer.from([9, 9, 9, 9, 9, 9, 9, 9])));
      assert.equal(await cmds.mutex(MutexOp.DESTROY, req(HOST_A, EX)), 0);
      await cmds.mutex(MutexOp.TRYLOCK, req(HOST_B, EX));
      const r = await cmds.readLvb(LOCK, HOST_B);
      assert.deepEqual(r.lvb, keep ? Buffer.from([9, 9, 9, 9, 9, 9, 9, 0]) : Buffer.alloc(8), `keep=${keep}`);
    }
  });

  test('table full -> -ENOMEM; unsupported opcode -> -EINVAL; version and WWN inquiries', async () => {
    const t = new LoopbackTransport(new ScsiTarget(new IdmFirmware(undefined, { entryLimit: 1 }), { wwn: '5000c500a1b2c3d4', versionMajor: 8 }));
    const cmds = new DriveCommands(t);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX)), 0);
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, { ...req(HOST_A, EX), lockId: Buffer.alloc(64, 0x31) }), -E.NOMEM);
    assert.equal(await cmds.mutex(MutexOp.LOCK, req(HOST_B, EX)), -E.INVAL);
    assert.deepEqual(await cmds.version(), { rv: 0, major: 8, minor: 0 });
    assert.deepEqual(await cmds.wwn(), { rv: 0, wwn: '5000c500a1b2c3d4' });
  });

  test('injected faults fail every command with -EIO before any I/O', async () => {
    const { t } = drive();
    let calls = 0;
    const counting: DriveTransport = { path: 'x', close() {}, execute: (c) => { calls++; return t.execute(c); } };
    const cmds = new DriveCommands(counting, { fail: () => true });
    assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX)), -E.IO);
    assert.equal((await cmds.table()).rv, -E.IO);
    assert.equal(calls, 0);
  });
});

describe('IDM NVMe and SG_IO encodings (spec §4.4; struct layouts of the 64-bit kernel)', () => {
  test('NVMe admin command: opcode C1/C2, data address and length, cdw10 = dwords, cdw12 = op<<4 | group<<8, 15 s', () => {
    const b = encodeNvmeAdminCmd({ nvmeOpcode: NVME_IDM_WRITE, mutexOp: MutexOp.BREAK, group: 1, dataAddress: 0x1122334455667788n, dataBytes: 512 });
    assert.equal(b.length, 72);
    assert.equal(b[0], 0xc1);
    assert.equal(b.readBigUInt64LE(24), 0x1122334455667788n);
    assert.equal(b.readUInt32LE(36), 512);
    assert.equal(b.readUInt32LE(40), 128);
    assert.equal(b.readUInt32LE(48), 0x0160);
    assert.equal(b.readUInt32LE(64), 15000);
    assert.equal(encodeNvmeAdminCmd({ nvmeOpcode: NVME_IDM_READ, mutexOp: MutexOp.INIT, group: 0xff, dataAddress: 0n, dataBytes: 512 }).readUInt32LE(48), 0xff10);
    assert.equal(NVME_IOCTL_ADMIN_CMD, 0xc0484e41);
  });

  test('NVMe vendor status -> errno, per opcode (only the status code byte counts)', () => {
    const cases: Array<[number, number, number]> = [
      [0, MutexOp.TRYLOCK, 0], [-5, MutexOp.TRYLOCK, -5],
      [0x1c0, MutexOp.TRYLOCK, -E.INVAL], [0x1c5, MutexOp.TRYLOCK, -E.INVAL],
      [0x1c6, MutexOp.TRYLOCK, -E.NOMEM], [0x1c8, MutexOp.TRYLOCK, -E.NOMEM], [0x1c9, MutexOp.UNLOCK, -E.NOENT],
      [0x1ca, MutexOp.REFRESH, -E.TIME], [0x1ca, MutexOp.UNLOCK, -E.NOENT], [0x1ca, MutexOp.BREAK, -E.BUSY],
      [0x1cb, MutexOp.REFRESH, -E.PERM], [0x1cb, MutexOp.UNLOCK, -E.INVAL], [0x1cb, MutexOp.DESTROY, -E.AGAIN],
      [0x1cc, MutexOp.TRYLOCK, -E.BUSY], [0x0cc, MutexOp.TRYLOCK, -E.BUSY],
    ];
    for (const [st, op, errno] of cases) assert.equal(nvmeErrno(st, op), errno, `0x${st.toString(16)} op ${op}`);
  });

  test('sg_io_hdr: 88 bytes, pointers at 16/24/32, timeout at 40, status/sense/host/driver/resid at 64..72', () => {
    const b = encodeSgIoHdr({ direction: SG_DXFER_TO_DEV, cmdLen: 16, senseMax: 64, dxferLen: 512, dxferp: 1n, cmdp: 2n, sbp: 3n, timeoutMs: 15000 });
    assert.equal(b.length, SG_IO_HDR_BYTES);
    assert.equal(b.readInt32LE(0), 0x53);
    assert.equal(b.readInt32LE(4), -2);
    assert.deepEqual([b[8], b[9], b.readUInt32LE(12)], [16, 64, 512]);
    assert.deepEqual([b.readBigUInt64LE(16), b.readBigUInt64LE(24), b.readBigUInt64LE(32)], [1n, 2n, 3n]);
    assert.equal(b.readUInt32LE(40), 15000);
    b[64] = 0x18; b[65] = 0x0c; b[67] = 28; b.writeUInt16LE(7, 68); b.writeUInt16LE(8, 70); b.writeInt32LE(12, 72);
    assert.deepEqual(decodeSgIoHdr(b), { status: 0x18, maskedStatus: 0x0c, senseWritten: 28, hostStatus: 7, driverStatus: 8, resid: 12 });
  });
});

describe('emulated firmware: random command sequences', () => {
  test('three hosts, two mutexes, every opcode and mode, clock jumps: the table invariants hold (checked inside) and nothing throws', () => {
    const hosts = [HOST_A, HOST_B, HOST_C];
    const locks = [LOCK, Buffer.alloc(64, 0x32)];
    const cmd = fc.record({
      op: fc.constantFrom(MutexOp.TRYLOCK, MutexOp.UNLOCK, MutexOp.REFRESH, MutexOp.BREAK, MutexOp.DESTROY, MutexOp.LOCK),
      host: fc.integer({ min: 0, max: 2 }), lock: fc.integer({ min: 0, max: 1 }),
      cls: fc.constantFrom(0, 1, 2), countdown: fc.constantFrom(0n, 1000n, 5000n, 0xffff_ffff_ffff_ffffn),
      advance: fc.integer({ min: 0, max: 3000 }),
    });
    fc.assert(fc.property(fc.array(cmd, { maxLength: 60 }), (cmds) => {
      const fw = new IdmFirmware();
      let now = 1000;
      for (const c of cmds) {
        now += c.advance;
        fw.write(c.op, { timeNowMs: BigInt(now), countdownMs: c.countdown, mutexClass: c.cls, resVerType: 1, lvb: Buffer.alloc(8, 1), lockId: locks[c.lock]!, hostId: hosts[c.host]! }, now);
        assert.ok(fw.counters(now).total <= 6);
      }
    }), { numRuns: 300 });
  });
});
