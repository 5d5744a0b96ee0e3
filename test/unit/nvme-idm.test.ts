// The NVMe IDM path: the passthrough struct and commands against the kernel
// header's layout and propeller's encoding (spec §4.4), the ioctl binding on
// a real file descriptor, status -> errno through NvmeIdmIo, the device
// selection of the ILM's drive registry, and the emulated drive's NVMe/TCP
// target driven through a real TCP socket by a TypeScript host (the PDU
// sequence of the Linux host driver): connect, properties, identify, I/O with
// in-capsule data and with R2T, and the IDM vendor commands of two hosts
// reaching one firmware through the ILM's own DriveCommands.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MutexOp } from '../../src/idm/record';
import {
  encodePassthru, idmReadCommand, idmWriteCommand, identifyControllerCommand, nvmeStatus, NVME_ADMIN_CMD_BYTES,
  type NvmeAdminChannel, type NvmeAdminCommand, type NvmeAdminReply,
} from '../../src/idm/nvme';
import { NvmePassthruTransport } from '../../src/idm/nvme-passthru';
import { NvmeIdmIo } from '../../src/idm/nvme-idm-io';
import { DriveCommands } from '../../src/ilm/drive-commands';
import { nvmeDeviceFor, stripPartition } from '../../src/ilm/drives';
import { IdmFirmware } from '../../src/idm/firmware';
import { NvmeDrive } from '../../src/idm/nvme-tcp/controller';
import { NvmeTcpTarget } from '../../src/idm/nvme-tcp/target';
import { identityFromWwn } from '../../src/idm/nvme-tcp/drive-process';
import { PduType } from '../../src/idm/nvme-tcp/pdu';
import { TcpController, TcpQueue } from '../helpers/nvme-tcp-initiator';

const E = { PERM: 1, NOENT: 2, IO: 5, AGAIN: 11, NOMEM: 12, NOTTY: 25, BUSY: 16, INVAL: 22, TIME: 62 };
const EX = 1;
const SH = 2;
const LOCK = Buffer.concat([Buffer.alloc(32, 'V'), Buffer.alloc(32, 'L')]);
const HOST_A = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(12), Buffer.alloc(16, 'a')]);
const HOST_B = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.alloc(12), Buffer.alloc(16, 'b')]);
const NQN = 'nqn.2026-12.io.lvmlockd-ts:idm-drive0';

function req(hostId: Buffer, mode: number, lvb?: Buffer) {
  return { lockId: LOCK, hostId, mode, timeoutMs: 60000, lvb, timeNowMs: 1234n };
}

describe('NVMe passthrough encoding (struct nvme_passthru_cmd, propeller fill_nvme_cmd)', () => {
  test('72-byte struct: opcode 0, nsid 4, addr 24, data_len 36, cdw10..15 at 40..60, timeout 64, result 68', () => {
    const cmd: NvmeAdminCommand = { ...idmWriteCommand(MutexOp.REFRESH, 1, Buffer.alloc(512)), nsid: 7, cdw11: 0x11, cdw13: 0x13, cdw14: 0x14, cdw15: 0x15 };
    const b = encodePassthru(cmd, 0xdeadbeef00n);
    assert.equal(b.length, NVME_ADMIN_CMD_BYTES);
    assert.equal(b[0], 0xc1);
    assert.equal(b[1], 0);
    assert.equal(b.readUInt32LE(4), 7);
    assert.equal(b.readBigUInt64LE(16), 0n, 'metadata');
    assert.equal(b.readBigUInt64LE(24), 0xdeadbeef00n);
    assert.equal(b.readUInt32LE(32), 0, 'metadata_len');
    assert.equal(b.readUInt32LE(36), 512);
    assert.equal(b.readUInt32LE(40), 128, 'cdw10 = dwords');
    assert.equal(b.readUInt32LE(44), 0x11);
    assert.equal(b.readUInt32LE(48), 0x0150, 'cdw12 = group 1 << 8 | REFRESH << 4');
    assert.deepEqual([b.readUInt32LE(52), b.readUInt32LE(56), b.readUInt32LE(60)], [0x13, 0x14, 0x15]);
    assert.equal(b.readUInt32LE(64), 15000);
  });

  test('IDM read: 0xC2, INIT in bits 7:4, group in 15:8, length in dwords; version: Identify Controller CNS 1, 4096 bytes', () => {
    const r = idmReadCommand(0xff, 512);
    assert.deepEqual([r.opcode, r.cdw10, r.cdw12, r.dataInBytes, r.dataOut], [0xc2, 128, 0xff10, 512, null]);
    const l = idmReadCommand(1, 70 * 512);
    assert.deepEqual([l.cdw10, l.cdw12], [70 * 128, 0x0110]);
    const id = identifyControllerCommand();
    assert.deepEqual([id.opcode, id.cdw10, id.dataInBytes, id.nsid], [0x06, 1, 4096, 0]);
  });

  test('the ioctl binding reaches the kernel: NVME_IOCTL_ADMIN_CMD on a non-NVMe node fails with -ENOTTY; a missing node with -ENOENT', async () => {
    const t = new NvmePassthruTransport('/dev/null');
    const r = await t.admin(identifyControllerCommand());
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.errno, -E.NOTTY);
    const m = await new NvmePassthruTransport('/dev/nvme-does-not-exist-n1').admin(identifyControllerCommand());
    assert.equal(!m.ok && m.errno, -E.NOENT);
  });
});

class FakeChannel implements NvmeAdminChannel {
  readonly path = 'fake';
  status = 0;
  last: NvmeAdminCommand | null = null;
  data = Buffer.alloc(0);
  async admin(cmd: NvmeAdminCommand): Promise<NvmeAdminReply> {
    this.last = cmd;
    return { ok: true, status: this.status, result: 0, dataIn: this.data };
  }
  close(): void {}
}

describe('NvmeIdmIo: vendor status -> errno by opcode, as propeller _idm_cmd_check_status', () => {
  test('write statuses per IDM opcode; read statuses as INIT; the version nibble', async () => {
    const ch = new FakeChannel();
    const io = new NvmeIdmIo(ch);
    const cases: Array<[number, number, number]> = [
      [0, MutexOp.TRYLOCK, 0],
      [nvmeStatus(1, 0xca), MutexOp.TRYLOCK, -E.BUSY], [nvmeStatus(1, 0xca), MutexOp.REFRESH, -E.TIME], [nvmeStatus(1, 0xca), MutexOp.UNLOCK, -E.NOENT],
      [nvmeStatus(1, 0xcb), MutexOp.BREAK, -E.AGAIN], [nvmeStatus(1, 0xcb), MutexOp.REFRESH, -E.PERM], [nvmeStatus(1, 0xcb), MutexOp.UNLOCK, -E.INVAL],
      [nvmeStatus(1, 0xc9), MutexOp.UNLOCK, -E.NOENT], [nvmeStatus(1, 0xc7), MutexOp.TRYLOCK, -E.NOMEM], [nvmeStatus(1, 0xcc), MutexOp.DESTROY, -E.BUSY],
      [nvmeStatus(0, 0x02), MutexOp.TRYLOCK, -E.INVAL],
    ];
    for (const [st, op, want] of cases) {
      ch.status = st;
      assert.equal(await io.mutexWrite(op, Buffer.alloc(512)), want, `status 0x${st.toString(16)} op ${op}`);
      assert.equal(ch.last!.cdw12, 0x100 | (op << 4));
    }
    ch.status = nvmeStatus(1, 0xca);
    assert.equal((await io.readRecords(1, 1)).rv, -E.BUSY, 'a read is neither REFRESH nor UNLOCK');
    ch.status = 0;
    ch.data = Buffer.alloc(4096);
    ch.data[4095] = 0x84; // vs[1023]
    ch.data[1023] = 0x21; // not there
    assert.deepEqual(await io.version(), { rv: 0, major: 8, minor: 4 });
    const failing: NvmeAdminChannel = { path: 'x', close() {}, admin: async () => ({ ok: false, errno: -E.IO, message: 'gone' }) };
    assert.equal(await new NvmeIdmIo(failing).mutexWrite(MutexOp.TRYLOCK, Buffer.alloc(512)), -E.IO);
  });
});

describe('ILM drive registry: NVMe devices as propeller selects them', () => {
  test('a name with "nvme" is an NVMe namespace (partition stripped), anything else is not', () => {
    assert.equal(stripPartition('/dev/nvme3n1p2'), '/dev/nvme3n1');
    const d = nvmeDeviceFor('/dev/nvme3n1p2');
    assert.ok(d);
    assert.match(d.id, /^(nvme:|\/dev\/nvme3n1$)/);
    assert.equal(d.open().path, '/dev/nvme3n1');
    assert.equal(nvmeDeviceFor('/dev/sdb1'), null);
    assert.equal(nvmeDeviceFor('/dev/loop0'), null);
  });
});

describe('emulated drive, NVMe/TCP front end, driven over TCP', () => {
  let dir: string;
  let target: NvmeTcpTarget;
  let port: number;
  let fw: IdmFirmware;
  const logs: string[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvme-tcp-'));
    const backing = path.join(dir, 'ns.img');
    fs.writeFileSync(backing, Buffer.alloc(0));
    fs.truncateSync(backing, 8 * 1024 * 1024);
    fw = new IdmFirmware();
    const drive = new NvmeDrive({ identity: identityFromWwn('5000c500a1b2c3d4', NQN), firmware: fw, statePath: path.join(dir, 'state.json'), backingPath: backing, keepAliveSlackMs: 0, log: (l) => logs.push(l) });
    target = new NvmeTcpTarget(drive, (l) => logs.push(l));
    port = await target.listen(0, '127.0.0.1');
  });
  after(async () => {
    await target.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('connect, CAP/VS, CC.EN -> CSTS.RDY, shutdown -> SHST complete; identify controller and namespace', async () => {
    const q = await TcpQueue.open(port);
    try {
      const c = await q.connect(0, 0xffff, NQN, 'nqn.host-a');
      assert.equal(c.status, 0);
      const cntlid = Number(c.result & 0xffffn);
      assert.ok(cntlid >= 1);
      const cap = (await q.propertyGet(0x00, true)).result;
      assert.equal(cap & 0xffffn, 127n, 'MQES');
      assert.equal((cap >> 37n) & 1n, 1n, 'NVM command set');
      assert.equal((await q.propertyGet(0x08, false)).result, 0x10300n);
      assert.equal((await q.propertyGet(0x1c, false)).result, 0n);
      assert.equal((await q.propertySet(0x14, 0x460001)).status, 0);
      assert.equal((await q.propertyGet(0x1c, false)).result & 1n, 1n, 'RDY');
      const idc = await q.submit({ opcode: 0x06, cdw10: 1 }, null, 4096);
      assert.equal(idc.status, 0);
      assert.equal(idc.dataIn.readUInt16LE(78), cntlid, 'cntlid matches the connect');
      assert.equal(idc.dataIn.readUInt16LE(320) > 0, true, 'keep-alive supported');
      assert.equal(idc.dataIn.readUInt32LE(536) & 3, 1, 'SGLs');
      assert.equal(idc.dataIn.subarray(768, 768 + NQN.length).toString(), NQN);
      assert.equal(idc.dataIn[4095], 0x80, 'IDM version 8.0 in vs[1023]');
      const ns = await q.submit({ opcode: 0x06, cdw10: 0, nsid: 1 }, null, 4096);
      assert.equal(ns.dataIn.readBigUInt64LE(0), 16384n, 'nsze: 8 MiB of 512-byte blocks');
      assert.equal(ns.dataIn[130], 9);
      assert.equal(ns.dataIn.subarray(120, 128).toString('hex'), '5000c500a1b2c3d4', 'EUI-64 = WWN');
      const list = await q.submit({ opcode: 0x06, cdw10: 2, nsid: 0 }, null, 4096);
      assert.deepEqual([list.dataIn.readUInt32LE(0), list.dataIn.readUInt32LE(4)], [1, 0]);
      const desc = await q.submit({ opcode: 0x06, cdw10: 3, nsid: 1 }, null, 4096);
      assert.deepEqual([desc.dataIn[0], desc.dataIn[1], desc.dataIn.subarray(4, 12).toString('hex')], [1, 8, '5000c500a1b2c3d4']);
      // then only the command set (NVM): no NGUID or UUID, so the kernel's wwid is "eui.<wwn>" as propeller expects
      assert.deepEqual([desc.dataIn[12], desc.dataIn[13], desc.dataIn[16], desc.dataIn[17]], [4, 1, 0, 0]);
      assert.equal((await q.submit({ opcode: 0x06, cdw10: 0x1f }, null, 4096)).status, 0x4002, 'unknown CNS: invalid field');
      assert.equal((await q.submit({ opcode: 0x18 })).status, 0, 'keep alive');
      assert.equal((await q.submit({ opcode: 0x80 })).status, 0x4001, 'unknown admin opcode');
      // an AER is held: a keep-alive sent after it still completes
      const aer = q.submit({ opcode: 0x0c });
      let aerDone = false;
      void aer.then(() => { aerDone = true; }, () => undefined);
      assert.equal((await q.submit({ opcode: 0x18 })).status, 0);
      assert.equal(aerDone, false);
      assert.equal((await q.propertySet(0x14, 0x464001)).status, 0);
      assert.equal(((await q.propertyGet(0x1c, false)).result >> 2n) & 3n, 2n, 'shutdown complete');
    } finally {
      q.close();
    }
  });

  test('I/O queue: write in-capsule and by R2T (reassembled from several H2CData PDUs), read back by C2HData, flush, range check', async () => {
    const c = await TcpController.connect(port, NQN, 'nqn.host-a');
    try {
      const io = await c.openIo();
      const small = Buffer.alloc(512, 0x5a);
      assert.equal((await io.submit({ opcode: 0x01, nsid: 1, cdw10: 3, cdw12: 0 }, small)).status, 0);
      const big = Buffer.alloc(64 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      assert.equal((await io.submit({ opcode: 0x01, nsid: 1, cdw10: 100, cdw12: 127 }, big)).status, 0, 'R2T write');
      const r = await io.submit({ opcode: 0x02, nsid: 1, cdw10: 100, cdw12: 127 }, null, big.length);
      assert.equal(r.status, 0);
      assert.ok(r.dataIn.equals(big));
      const r2 = await io.submit({ opcode: 0x02, nsid: 1, cdw10: 3, cdw12: 0 }, null, 512);
      assert.ok(r2.dataIn.equals(small));
      assert.equal((await io.submit({ opcode: 0x00, nsid: 1 })).status, 0, 'flush');
      assert.equal((await io.submit({ opcode: 0x02, nsid: 1, cdw10: 16383, cdw12: 1 }, null, 1024)).status, 0x4080, 'past the end');
      assert.equal((await io.submit({ opcode: 0x02, nsid: 2, cdw10: 0, cdw12: 0 }, null, 512)).status, 0x400b, 'no such namespace');
    } finally {
      c.close();
    }
  });

  test('two hosts, one firmware: the ILM\'s DriveCommands over NVMe vendor commands (ex/sh exclusion, LVB, count, version)', async () => {
    const a = await TcpController.connect(port, NQN, 'nqn.host-a');
    const b = await TcpController.connect(port, NQN, 'nqn.host-b');
    try {
      const ca = new DriveCommands(new NvmeIdmIo(a));
      const cb = new DriveCommands(new NvmeIdmIo(b));
      assert.deepEqual(await ca.version(), { rv: 0, major: 8, minor: 0 });
      assert.equal(await ca.mutex(MutexOp.TRYLOCK, req(HOST_A, EX)), 0);
      assert.equal(await cb.mutex(MutexOp.TRYLOCK, req(HOST_B, SH)), -E.BUSY, 'ex held by the other host');
      assert.deepEqual(await cb.count(LOCK, HOST_B), { rv: 0, count: 1, self: 0 });
      assert.deepEqual(await ca.mode(LOCK), { rv: 0, mode: EX });
      const lvb = Buffer.from([1, 2, 3, 4, 5, 6, 7, 0]);
      assert.equal(await ca.mutex(MutexOp.UNLOCK, req(HOST_A, EX, lvb)), 0);
      assert.equal(await cb.mutex(MutexOp.UNLOCK, req(HOST_B, SH)), -E.NOENT, 'unlock of a mutex we do not hold');
      assert.equal(await cb.mutex(MutexOp.TRYLOCK, req(HOST_B, SH)), 0);
      assert.deepEqual(await cb.readLvb(LOCK, HOST_B), { rv: 0, lvb });
      assert.equal(await ca.mutex(MutexOp.TRYLOCK, req(HOST_A, SH)), 0, 'sh with sh');
      assert.deepEqual(await ca.count(LOCK, HOST_A), { rv: 0, count: 1, self: 1 });
      assert.equal(await ca.mutex(MutexOp.REFRESH, req(HOST_A, EX)), -E.PERM, 'convert to ex against a sh holder: COMMAND TERMINATED on REFRESH');
      assert.equal(fs.existsSync(path.join(dir, 'state.json')), true, 'state persisted');
      assert.equal(fw.list(Date.now()).length, 2);
    } finally {
      a.close();
      b.close();
    }
  });

  test('refusals: wrong NQN, I/O connect to an unknown controller, commands before connect, a bad PDU ends the connection with C2HTermReq', async () => {
    const q = await TcpQueue.open(port);
    try {
      const wrong = await q.connect(0, 0xffff, 'nqn.other', 'nqn.host-a');
      assert.equal(wrong.status, 0x4182);
      assert.equal(wrong.result, BigInt((1 << 16) | 256), 'invalid parameter: subsysnqn in the data');
      assert.equal((await q.submit({ opcode: 0x06, cdw10: 1 }, null, 4096)).status, 0x4006, 'no controller yet');
      const io = await q.connect(1, 0x1234, NQN, 'nqn.host-a');
      assert.equal(io.status, 0x4182);
    } finally {
      q.close();
    }
    const bad = await TcpQueue.open(port);
    const closed = new Promise<void>((resolve) => {
      const t = setInterval(() => { if (bad.closed) { clearInterval(t); resolve(); } }, 10);
    });
    const junk = Buffer.alloc(24);
    junk[0] = 0x04; junk[2] = 200; junk.writeUInt32LE(24, 4); // hlen > plen
    bad.writeRaw(junk);
    await closed;
    assert.equal(bad.oddities.some((p) => p.type === PduType.C2H_TERM), true);
  });

  test('keep-alive: a controller whose host stops talking for twice its KATO is ended and its queues closed', async () => {
    const q = await TcpQueue.open(port);
    const c = await q.connect(0, 0xffff, NQN, 'nqn.host-quiet', 100);
    assert.equal(c.status, 0);
    const t0 = Date.now();
    while (!q.closed && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(q.closed, true);
    assert.ok(logs.some((l) => /keep-alive timeout/.test(l)));
  });
});

describe('bin/idm-drive --nvme-tcp (the process the VM tier starts)', () => {
  test('starts, prints its port, serves identify and an IDM lock, keeps the mutex in its state file, stops on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvme-cli-'));
    const backing = path.join(dir, 'd.img');
    fs.closeSync(fs.openSync(backing, 'w'));
    fs.truncateSync(backing, 1024 * 1024);
    const bin = path.join(__dirname, '..', '..', '..', 'bin', 'idm-drive');
    const p = spawn(process.execPath, [bin, '--nvme-tcp', '127.0.0.1:0', '--nqn', NQN, '--backing', backing, '--state', path.join(dir, 's.json'), '--wwn', '5000c50000000042'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        p.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /nvme-tcp 127\.0\.0\.1:(\d+) .* ready \(wwn 5000c50000000042\)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        p.once('exit', (code) => reject(new Error(`idm-drive exited ${code}: ${out}`)));
      });
      const c = await TcpController.connect(port, NQN, 'nqn.host-cli');
      try {
        const cmds = new DriveCommands(new NvmeIdmIo(c));
        assert.deepEqual(await cmds.version(), { rv: 0, major: 8, minor: 0 });
        assert.equal(await cmds.mutex(MutexOp.TRYLOCK, req(HOST_A, EX)), 0);
        const st = JSON.parse(fs.readFileSync(path.join(dir, 's.json'), 'utf8')) as { mutexes: Array<{ lockId: string }> };
        assert.equal(st.mutexes[0]?.lockId, LOCK.toString('hex'));
      } finally {
        c.close();
      }
      const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
      p.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
