// The TCMU backstore against a plain buffer laid out as the kernel lays out
// the uio map (linux/target_core_user.h, mailbox version 2): mailbox fields,
// command entries with their iovecs into the data area, PAD entries at the
// ring's end, the rsp overlay (status at 8, sense at 16), cmd_tail moving mod
// the ring size. Then the whole chain the VM tier uses: the ILM's own drive
// layer -> CDB cut to the 10 bytes LIO keeps of a vendor opcode -> a ring
// entry -> the TCMU disk -> the firmware, and back out of the ring.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  HDR, REQ, RSP, MB_FLAG_CAP_READ_LEN, readMailbox, readEntry, pendingEntries,
  gather, scatter, writeResponse, advanceTail, scsiCommandSize, type Segment,
} from '../../src/idm/tcmu/ring';
import { drain } from '../../src/idm/tcmu/backstore';
import { TcmuDisk, isDataOut, type BlockBackend } from '../../src/idm/tcmu/disk';
import { IdmForwarder, rebuildIdmCdb } from '../../src/idm/tcmu/idm-forward';
import { IdmFirmware } from '../../src/idm/firmware';
import { ScsiTarget } from '../../src/idm/scsi-target';
import { DriveCommands } from '../../src/ilm/drive-commands';
import { MutexOp, Group } from '../../src/idm/record';
import { readCdb, writeCdb, ScsiStatus } from '../../src/idm/scsi';
import type { DriveTransport, ScsiCommand, ScsiReply } from '../../src/idm/transport';

const CMDR_OFF = 128;
const CMDR_SIZE = 4096;
const DATA_OFF = CMDR_OFF + CMDR_SIZE;
const MAP_BYTES = DATA_OFF + 64 * 1024;

/**
 * A fake kernel: queues commands into a map laid out as target_core_user does.
 * It writes at literal offsets (gcc's offsetof on linux/target_core_user.h:
 * mailbox cmd_tail 64; entry hdr len_op 0, cmd_id 4, uflags 7; req iov_cnt 8,
 * iov_bidi_cnt 12, iov_dif_cnt 16, cdb_off 24, iov 48; rsp scsi_status 8,
 * read_len 12, sense 16), not through the module's constants, so a wrong
 * constant fails here.
 */
class FakeKernel {
  readonly mem = Buffer.alloc(MAP_BYTES, 0xa5);
  private dataNext = DATA_OFF;
  constructor(flags = MB_FLAG_CAP_READ_LEN) {
    this.mem.fill(0, 0, CMDR_OFF);
    this.mem.writeUInt16LE(2, 0);
    this.mem.writeUInt16LE(flags, 2);
    this.mem.writeUInt32LE(CMDR_OFF, 4);
    this.mem.writeUInt32LE(CMDR_SIZE, 8);
  }
  get head(): number { return this.mem.readUInt32LE(12); }
  get tail(): number { return this.mem.readUInt32LE(64); }
  /** A PAD entry up to the ring's end. */
  pad(): void {
    const len = CMDR_SIZE - this.head;
    this.mem.writeUInt32LE(len | 0, CMDR_OFF + this.head);
    this.mem.writeUInt32LE(0, 12);
  }
  /** Queues a command with its CDB as the kernel copies it (scsi_command_size bytes) and data split into iovecs. */
  queue(cdb: Buffer, data: Buffer | number, cmdId: number, split = 2): { at: number; iovs: Segment[] } {
    const bytes = typeof data === 'number' ? data : data.length;
    const iovs: Segment[] = [];
    if (bytes > 0) {
      const first = Math.min(bytes, Math.max(512, Math.floor(bytes / split / 512) * 512));
      for (const len of first < bytes ? [first, bytes - first] : [bytes]) {
        iovs.push({ off: this.dataNext, len });
        if (typeof data !== 'number') data.copy(this.mem, this.dataNext, iovs.length === 1 ? 0 : first);
        this.dataNext += Math.ceil(len / 4096) * 4096 + 4096; // not contiguous
      }
    }
    const cdbLen = scsiCommandSize(cdb);
    const base = 48 + iovs.length * 16;
    const len = Math.ceil((base + cdbLen) / 8) * 8;
    if (this.head + len > CMDR_SIZE) this.pad();
    const at = CMDR_OFF + this.head;
    const m = this.mem;
    m.fill(0xee, at, at + len);
    m.writeUInt32LE(len | 1, at);
    m.writeUInt16LE(cmdId, at + 4);
    m[at + 6] = 0;
    m[at + 7] = 0;
    m.writeUInt32LE(iovs.length, at + 8);
    m.writeUInt32LE(0, at + 12);
    m.writeUInt32LE(0, at + 16);
    m.writeBigUInt64LE(BigInt(at + base), at + 24);
    iovs.forEach((s, i) => {
      m.writeBigUInt64LE(BigInt(s.off), at + 48 + i * 16);
      m.writeBigUInt64LE(BigInt(s.len), at + 48 + i * 16 + 8);
    });
    cdb.copy(m, at + base, 0, cdbLen);
    m.writeUInt32LE((this.head + len) % CMDR_SIZE, 12);
    return { at, iovs };
  }
}

describe('TCMU ring layout', () => {
  test('mailbox fields at 0, 2, 4, 8, 12 and cmd_tail at 64', () => {
    const k = new FakeKernel();
    k.mem.writeUInt32LE(40, 12);
    k.mem.writeUInt32LE(16, 64);
    assert.deepEqual(readMailbox(k.mem), { version: 2, flags: MB_FLAG_CAP_READ_LEN, cmdrOff: CMDR_OFF, cmdrSize: CMDR_SIZE, head: 40, tail: 16 });
  });

  test('scsi_command_size: 6/10/10/12/16/12/10/10 by group, so a vendor 0xF0 CDB arrives with 10 bytes', () => {
    assert.deepEqual([0x00, 0x28, 0x5a, 0x7e, 0x88, 0xa0, 0xc0, 0xf0].map((op) => scsiCommandSize(Buffer.from([op]))), [6, 10, 10, 12, 16, 12, 10, 10]);
    assert.equal(scsiCommandSize(Buffer.from([0x7f, 0, 0, 0, 0, 0, 0, 24])), 32);
  });

  test('offsets as the compiler lays out target_core_user.h (the req struct in the union is not packed)', () => {
    assert.deepEqual([REQ.IOV_CNT, REQ.IOV_BIDI_CNT, REQ.IOV_DIF_CNT, REQ.CDB_OFF, REQ.IOV], [8, 12, 16, 24, 48]);
    assert.deepEqual([RSP.SCSI_STATUS, RSP.READ_LEN, RSP.SENSE], [8, 12, 16]);
  });

  test('a command entry: id, CDB at cdb_off (24), iovecs from offset 48, data gathered from the data area', () => {
    const k = new FakeKernel();
    const data = Buffer.alloc(3072);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const cdb = Buffer.from('2a00000000100000060000000000000000', 'hex');
    const { at, iovs } = k.queue(cdb, data, 0x1234);
    const [e, ...rest] = pendingEntries(k.mem);
    assert.equal(rest.length, 0);
    assert.ok(e && e.kind === 'cmd');
    assert.equal(e.at, at);
    assert.equal(e.cmdId, 0x1234);
    assert.equal(e.cdb.toString('hex'), cdb.subarray(0, 10).toString('hex'));
    assert.deepEqual(e.iovs, iovs);
    assert.equal(e.iovs.length, 2);
    assert.equal(e.dataBytes, 3072);
    assert.ok(gather(k.mem, e.iovs).equals(data));
  });

  test('response: status at +8, sense at +16 (96 bytes), read_len at +12 with the READ_LEN flag; tail moves by the entry length', () => {
    const k = new FakeKernel();
    const { at } = k.queue(Buffer.from('1200000060 00'.replace(/ /g, ''), 'hex'), 96, 7);
    const e = readEntry(k.mem, readMailbox(k.mem), 0);
    const sense = Buffer.from('7000050000000a000000000024000000', 'hex');
    writeResponse(k.mem, at, ScsiStatus.CHECK_CONDITION, sense, 36);
    assert.equal(k.mem[at + 8], 0x02);
    assert.ok(k.mem.subarray(at + 16, at + 16 + sense.length).equals(sense));
    assert.ok(k.mem.subarray(at + 16 + sense.length, at + 16 + 96).equals(Buffer.alloc(96 - sense.length)));
    assert.equal(k.mem.readUInt32LE(at + 12), 36);
    assert.equal(k.mem[at + 7]! & 0x2, 0x2);
    assert.equal(k.mem.readUInt16LE(at + HDR.CMD_ID), 7, 'the header is kept');
    advanceTail(k.mem, e.len);
    assert.equal(k.tail, e.len);
    assert.equal(k.tail, k.head);
  });

  test('without CAP_READ_LEN no read_len flag is set', () => {
    const k = new FakeKernel(0);
    const { at } = k.queue(Buffer.from('120000006000', 'hex'), 96, 1);
    writeResponse(k.mem, at, 0, Buffer.alloc(0), 36);
    assert.equal(k.mem[at + 7]! & 0x2, 0);
  });

  test('scatter fills the iovecs in order and zeroes what the data does not cover', () => {
    const k = new FakeKernel();
    const { iovs } = k.queue(Buffer.from('28000000000000000600', 'hex'), 3072, 1);
    const n = scatter(k.mem, iovs, Buffer.alloc(2000, 0x11));
    assert.equal(n, 2000);
    const all = gather(k.mem, iovs);
    assert.ok(all.subarray(0, 2000).equals(Buffer.alloc(2000, 0x11)));
    assert.ok(all.subarray(2000).equals(Buffer.alloc(1072)));
  });

  test('PAD entries at the ring end are skipped and the tail wraps to 0', async () => {
    const k = new FakeKernel();
    const disk = memDisk().disk;
    let wrapped = 0;
    let last = 0;
    for (let i = 0; i < 200; i++) {
      k.queue(Buffer.from('000000000000', 'hex'), 0, i);
      assert.equal(await drain(k.mem, disk), 1);
      assert.equal(k.tail, k.head);
      if (k.head < last) wrapped++;
      last = k.head;
    }
    assert.ok(wrapped >= 2, `the ring wrapped (${wrapped} times)`);
  });

  test('an entry whose iovec points past the map is refused, not followed', () => {
    const k = new FakeKernel();
    const { at } = k.queue(Buffer.from('28000000000000000100', 'hex'), 512, 1);
    k.mem.writeBigUInt64LE(BigInt(MAP_BYTES), at + 48);
    assert.throws(() => pendingEntries(k.mem), /beyond/);
  });
});

// ---------------------------------------------------------------- the disk

function memDisk(sizeBytes = 1 << 20): { disk: TcmuDisk; store: Buffer; target: ScsiTarget; fwd: IdmForwarder } {
  const store = Buffer.alloc(sizeBytes);
  const backend: BlockBackend = {
    read: async (off, len) => Buffer.from(store.subarray(off, off + len)),
    write: async (off, d) => { d.copy(store, off); },
  };
  const target = new ScsiTarget(new IdmFirmware(), { wwn: '5000c500a1b2c3d4', versionMajor: 8 });
  const firmware: DriveTransport = {
    path: 'firmware',
    async execute(cmd: ScsiCommand): Promise<ScsiReply> {
      if (cmd.cdb[0] === 0xf0) assert.equal(cmd.cdb.length, 16, 'the firmware always gets a full IDM CDB');
      return { ok: true, ...target.execute(cmd.cdb, cmd.dataOut, cmd.dataInBytes, 1_000_000) };
    },
    close() {},
  };
  const fwd = new IdmForwarder(firmware);
  return { disk: new TcmuDisk(backend, sizeBytes, { wwn: '5000c500a1b2c3d4', serial: 'S1' }, fwd), store, target, fwd };
}

/** Runs one command through the ring as the kernel would: CDB cut by scsi_command_size, data through iovecs. */
async function viaRing(disk: TcmuDisk, cdb: Buffer, dataOut: Buffer | null, dataInBytes: number): Promise<{ status: number; sense: Buffer; dataIn: Buffer }> {
  const k = new FakeKernel();
  const { at, iovs } = k.queue(cdb, dataOut ?? dataInBytes, 9);
  assert.equal(await drain(k.mem, disk), 1);
  assert.equal(k.tail, k.head);
  const status = k.mem[at + 8]!;
  const sense = Buffer.from(k.mem.subarray(at + 16, at + 16 + 96));
  const readLen = (k.mem[at + 7]! & 0x2) ? k.mem.readUInt32LE(at + 12) : dataInBytes;
  const dataIn = dataOut ? Buffer.alloc(0) : gather(k.mem, iovs).subarray(0, readLen);
  return { status, sense, dataIn };
}

describe('TCMU disk command set', () => {
  test('WRITE(10) then READ(16) through the ring reach the backend at LBA * 512', async () => {
    const { disk, store } = memDisk();
    const data = Buffer.alloc(1024, 0x5c);
    const w = await viaRing(disk, Buffer.from('2a000000000300000200', 'hex'), data, 0);
    assert.equal(w.status, 0);
    assert.ok(store.subarray(3 * 512, 5 * 512).equals(data));
    assert.ok(store.subarray(2 * 512, 3 * 512).equals(Buffer.alloc(512)));
    const r = await viaRing(disk, Buffer.from('88000000000000000003000000020000', 'hex'), null, 1024);
    assert.equal(r.status, 0);
    assert.ok(r.dataIn.equals(data));
  });

  test('READ CAPACITY (10) and (16): last LBA, 512-byte blocks', async () => {
    const { disk } = memDisk(1 << 20);
    const r10 = await viaRing(disk, Buffer.from('25000000000000000000', 'hex'), null, 8);
    assert.equal(r10.dataIn.toString('hex'), '000007ff00000200');
    const r16 = await viaRing(disk, Buffer.from('9e100000000000000000000000200000', 'hex'), null, 32);
    assert.equal(r16.dataIn.subarray(0, 12).toString('hex'), '00000000000007ff00000200');
  });

  test('INQUIRY: standard, VPD 0x00 lists 0x83 and 0xC3, 0x83 carries the NAA WWN, 0xC3 comes from the firmware', async () => {
    const { disk } = memDisk();
    const std = await viaRing(disk, Buffer.from('120000002400', 'hex'), null, 36);
    assert.equal(std.dataIn.subarray(8, 16).toString(), 'LVMLKDTS');
    const p0 = await viaRing(disk, Buffer.from('12010000ff00', 'hex'), null, 255);
    assert.deepEqual([...p0.dataIn.subarray(4, 4 + p0.dataIn[3]!)], [0x00, 0x80, 0x83, 0xc3]);
    const p83 = await viaRing(disk, Buffer.from('120183004000', 'hex'), null, 64);
    assert.equal(p83.dataIn.subarray(4, 16).toString('hex'), '0103000' + '8' + '5000c500a1b2c3d4');
    const c3 = await viaRing(disk, Buffer.from('1201c3007000', 'hex'), null, 0x70);
    assert.equal(c3.dataIn[96], 8);
  });

  test('out-of-range LBA and unknown opcodes: CHECK CONDITION with ILLEGAL REQUEST sense', async () => {
    const { disk } = memDisk(1 << 20);
    const oor = await viaRing(disk, Buffer.from('28000000080000000100', 'hex'), null, 512);
    assert.equal(oor.status, ScsiStatus.CHECK_CONDITION);
    assert.deepEqual([oor.sense[0], oor.sense[2], oor.sense[12]], [0x70, 0x05, 0x21]);
    const unk = await viaRing(disk, Buffer.from('a3000000000000000000000000000000', 'hex').subarray(0, 12), null, 0);
    assert.deepEqual([unk.status, unk.sense[2], unk.sense[12]], [ScsiStatus.CHECK_CONDITION, 0x05, 0x20]);
  });

  test('data direction from the CDB: IDM read (byte 1 = 0x01) is data-in, any mutex opcode data-out', () => {
    assert.equal(isDataOut(readCdb(Group.INQUIRY, 1)), false);
    for (const op of Object.values(MutexOp)) assert.equal(isDataOut(writeCdb(op)), true);
    assert.equal(isDataOut(Buffer.from('2a', 'hex')), true);
    assert.equal(isDataOut(Buffer.from('28', 'hex')), false);
  });
});

describe('IDM commands through a TCMU disk (CDB cut to 10 bytes as LIO does)', () => {
  test('rebuild: writes get 512 bytes and group 1, multi-record reads are list reads, one-record reads are ambiguous', () => {
    const w = rebuildIdmCdb(writeCdb(MutexOp.REFRESH).subarray(0, 10), Buffer.alloc(512), 0);
    assert.ok('cdb' in w && w.cdb.equals(writeCdb(MutexOp.REFRESH)));
    const r = rebuildIdmCdb(readCdb(Group.DEFAULT, 65).subarray(0, 10), null, 65 * 512);
    assert.ok('cdb' in r && r.cdb.equals(readCdb(Group.DEFAULT, 65)));
    assert.deepEqual(rebuildIdmCdb(readCdb(Group.INQUIRY, 1).subarray(0, 10), null, 512), { ambiguousRead: true });
    assert.ok('invalid' in rebuildIdmCdb(writeCdb(MutexOp.LOCK).subarray(0, 10), Buffer.alloc(100), 0));
  });

  /** The ILM's drive layer on SG_IO's fields, delivered through the ring. */
  class RingTransport implements DriveTransport {
    readonly path = 'ring';
    constructor(private readonly disk: TcmuDisk) {}
    async execute(cmd: ScsiCommand): Promise<ScsiReply> {
      const r = await viaRing(this.disk, cmd.cdb, cmd.dataOut, cmd.dataInBytes);
      const senseLen = r.sense[0] === 0x72 ? 8 + r.sense[7]! : r.sense[0] === 0x70 ? 8 + r.sense[7]! : 0;
      return { ok: true, status: r.status, sense: r.sense.subarray(0, senseLen), dataIn: r.dataIn };
    }
    close(): void {}
  }

  const lock = Buffer.alloc(64, 0x41);
  const hostA = Buffer.alloc(32, 0x61);
  const hostB = Buffer.alloc(32, 0x62);
  const req = (hostId: Buffer, mode: number, lvb?: Buffer) => ({ lockId: lock, hostId, mode, timeoutMs: 60000, lvb, timeNowMs: 5n });

  test('the ILM drive layer: trylock, conflict, count, unlock with LVB, read LVB, over the ring', async () => {
    const { disk } = memDisk();
    const a = new DriveCommands(new RingTransport(disk));
    assert.equal(await a.mutex(MutexOp.TRYLOCK, req(hostA, 1)), 0);
    assert.equal(await a.mutex(MutexOp.TRYLOCK, req(hostB, 1)), -16, 'RESERVATION CONFLICT -> -EBUSY');
    assert.deepEqual(await a.count(lock, hostB), { rv: 0, count: 1, self: 0 });
    assert.equal(await a.mutex(MutexOp.UNLOCK, req(hostA, 1, Buffer.from('0102030405060700', 'hex'))), 0);
    assert.equal(await a.mutex(MutexOp.UNLOCK, req(hostB, 1)), -2, 'RESERVATION CONFLICT on unlock -> -ENOENT');
    assert.deepEqual(await a.readLvb(lock, hostA), { rv: 0, lvb: Buffer.from('0102030405060700', 'hex') });
    assert.deepEqual(await a.version(), { rv: 0, major: 8, minor: 0 });
  });

  test("propeller's pattern: inquiry (1 record) then a one-record list read; an empty drive answers a DEAD record to both", async () => {
    const { disk, target } = memDisk();
    const t = new RingTransport(disk);
    const read = async (group: number, n: number) => t.execute({ cdb: readCdb(group, n), dataOut: null, dataInBytes: n * 512, timeoutMs: 1000 });
    const empty = await read(Group.INQUIRY, 1);
    assert.equal(empty.ok && empty.dataIn.readUInt16BE(0), 0, 'total 0');
    assert.equal(empty.ok && empty.dataIn.readBigUInt64BE(0), 0xdeadn, 'and a DEAD record');
    const a = new DriveCommands(t);
    assert.equal(await a.mutex(MutexOp.TRYLOCK, req(hostA, 1)), 0);
    const inq = await read(Group.INQUIRY, 1);
    assert.ok(inq.ok && inq.dataIn.readUInt16BE(0) === 1, 'the inquiry gives the counters');
    const list = await read(Group.DEFAULT, 1);
    const expected = target.execute(readCdb(Group.DEFAULT, 1), null, 512, 1_000_000).dataIn;
    assert.ok(list.ok && list.dataIn.equals(expected), 'the read after it is the list');
    const again = await read(Group.INQUIRY, 1);
    assert.ok(again.ok && again.dataIn.readUInt16BE(0) === 1, 'and the next one-record read an inquiry again');
  });
});
