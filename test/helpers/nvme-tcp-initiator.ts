// A small NVMe/TCP host in TypeScript for tests: the PDU sequence the Linux
// host driver uses (ICReq, Connect, capsules with in-capsule data or R2T +
// H2CData, C2HData + response), so the emulated drive's target can be
// driven from a unit test through a real TCP socket, and the ILM's NVMe IDM
// code (NvmeIdmIo) can run against it as if through the ioctl.

import * as net from 'node:net';
import {
  PduReader, PduType, encodeCapsule, encodeH2CData, encodeIcReq, parseDataPdu, parseIcResp, parseR2t, parseResponse,
  type Pdu,
} from '../../src/idm/nvme-tcp/pdu';
import { FABRICS_OPCODE, FabricsType, encodeSqe, type SqeFields } from '../../src/idm/nvme-tcp/sqe';
import type { NvmeAdminChannel, NvmeAdminCommand, NvmeAdminReply } from '../../src/idm/nvme';

export interface Reply { status: number; result: bigint; dataIn: Buffer }

interface Outstanding { resolve: (r: Reply) => void; reject: (e: Error) => void; dataOut: Buffer | null; dataIn: Buffer; got: number }

export class TcpQueue {
  private readonly reader = new PduReader();
  private readonly outstanding = new Map<number, Outstanding>();
  private nextCid = 1;
  private icResolve: ((p: Pdu) => void) | null = null;
  closed = false;
  /** PDUs that were not what we expected (a C2HTermReq, for instance). */
  readonly oddities: Pdu[] = [];

  private constructor(private readonly sock: net.Socket, readonly inlineMax: number) {
    sock.on('data', (c) => this.onData(c));
    sock.on('close', () => this.fail(new Error('connection closed')));
    sock.on('error', (e) => this.fail(e));
  }

  static async open(port: number, host = '127.0.0.1', inlineMax = 8192): Promise<TcpQueue> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ port, host }, () => resolve(s));
      s.once('error', reject);
    });
    const q = new TcpQueue(sock, inlineMax);
    const icresp = await new Promise<Pdu>((resolve) => {
      q.icResolve = resolve;
      sock.write(encodeIcReq({ pfv: 0, hpda: 0, digest: 0, maxr2t: 0 }));
    });
    const ic = parseIcResp(icresp);
    if (ic.pfv !== 0 || ic.cpda !== 0 || ic.digest !== 0 || ic.maxdata < 4096) throw new Error(`bad ICResp ${JSON.stringify(ic)}`);
    return q;
  }

  /** Raw bytes (for malformed-input tests). */
  writeRaw(b: Buffer): void { this.sock.write(b); }

  close(): void {
    this.sock.destroy();
  }

  private fail(e: Error): void {
    this.closed = true;
    for (const o of this.outstanding.values()) o.reject(e);
    this.outstanding.clear();
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    for (let p = this.reader.next(); p; p = this.reader.next()) {
      if (this.icResolve) {
        const r = this.icResolve;
        this.icResolve = null;
        r(p);
        continue;
      }
      if (p.type === PduType.C2H_DATA) {
        const d = parseDataPdu(p);
        const o = this.outstanding.get(d.cid);
        if (!o) { this.oddities.push(p); continue; }
        d.data.copy(o.dataIn, d.offset);
        o.got += d.data.length;
      } else if (p.type === PduType.R2T) {
        const r = parseR2t(p);
        const o = this.outstanding.get(r.cid);
        if (!o || !o.dataOut) { this.oddities.push(p); continue; }
        const part = o.dataOut.subarray(r.offset, r.offset + r.length);
        // split like the host: at most 4 KiB per H2CData PDU here, to exercise reassembly
        for (let off = 0; off < part.length; off += 4096) {
          const d = part.subarray(off, Math.min(off + 4096, part.length));
          this.sock.write(encodeH2CData({ cid: r.cid, ttag: r.ttag, offset: r.offset + off, data: d, last: off + d.length >= part.length }));
        }
      } else if (p.type === PduType.RSP) {
        const c = parseResponse(p);
        const o = this.outstanding.get(c.cid);
        if (!o) { this.oddities.push(p); continue; }
        this.outstanding.delete(c.cid);
        o.resolve({ status: c.status, result: c.result, dataIn: o.dataIn.subarray(0, o.got) });
      } else {
        this.oddities.push(p);
      }
    }
  }

  submit(f: Omit<SqeFields, 'cid' | 'dataBytes' | 'inline'>, dataOut: Buffer | null = null, dataInBytes = 0): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    const cid = this.nextCid;
    this.nextCid = this.nextCid >= 0xfff0 ? 1 : this.nextCid + 1;
    const bytes = dataOut ? dataOut.length : dataInBytes;
    const inline = !!dataOut && dataOut.length <= this.inlineMax;
    const sqe = encodeSqe({ ...f, cid, dataBytes: bytes, inline });
    return new Promise((resolve, reject) => {
      this.outstanding.set(cid, { resolve, reject, dataOut, dataIn: Buffer.alloc(dataOut ? 0 : dataInBytes), got: 0 });
      this.sock.write(encodeCapsule(sqe, inline && dataOut ? dataOut : Buffer.alloc(0)));
    });
  }

  async connect(qid: number, cntlid: number, subnqn: string, hostnqn: string, katoMs = 5000, sqsize = 31): Promise<Reply> {
    const data = Buffer.alloc(1024);
    Buffer.from('0123456789abcdef').copy(data, 0);
    data.writeUInt16LE(cntlid, 16);
    data.write(subnqn, 256, 'ascii');
    data.write(hostnqn, 512, 'ascii');
    // Connect: recfmt 0, qid, sqsize, kato in cdw10..12 positions (bytes 40..51)
    return this.submit({
      opcode: FABRICS_OPCODE, fctype: FabricsType.CONNECT,
      cdw10: (qid << 16) | 0, cdw11: sqsize, cdw12: katoMs,
    }, data);
  }

  propertyGet(offset: number, eight: boolean): Promise<Reply> {
    return this.submit({ opcode: FABRICS_OPCODE, fctype: FabricsType.PROPERTY_GET, cdw10: eight ? 1 : 0, cdw11: offset });
  }

  propertySet(offset: number, value: number): Promise<Reply> {
    return this.submit({ opcode: FABRICS_OPCODE, fctype: FabricsType.PROPERTY_SET, cdw10: 0, cdw11: offset, cdw12: value });
  }
}

/** A connected controller: admin queue (and an I/O queue once asked), usable as the ILM's NVMe channel. */
export class TcpController implements NvmeAdminChannel {
  io: TcpQueue | null = null;
  private constructor(readonly path: string, readonly admin_q: TcpQueue, readonly cntlid: number, private readonly port: number,
    private readonly subnqn: string, private readonly hostnqn: string) {}

  static async connect(port: number, subnqn: string, hostnqn: string): Promise<TcpController> {
    const q = await TcpQueue.open(port);
    const r = await q.connect(0, 0xffff, subnqn, hostnqn);
    if (r.status !== 0) throw new Error(`admin connect failed: status 0x${r.status.toString(16)}`);
    const c = new TcpController(`nvme-tcp:${port}`, q, Number(r.result & 0xffffn), port, subnqn, hostnqn);
    const cc = (6 << 16) | (4 << 20) | 1; // IOSQES 6, IOCQES 4, EN
    const s = await q.propertySet(0x14, cc);
    if (s.status !== 0) throw new Error('CC write failed');
    return c;
  }

  async openIo(): Promise<TcpQueue> {
    const nq = await this.admin_q.submit({ opcode: 0x09, cdw10: 0x07, cdw11: 0 });
    if (nq.status !== 0) throw new Error('set features number of queues failed');
    const q = await TcpQueue.open(this.port);
    const r = await q.connect(1, this.cntlid, this.subnqn, this.hostnqn);
    if (r.status !== 0) throw new Error(`io connect failed: status 0x${r.status.toString(16)}`);
    this.io = q;
    return q;
  }

  async admin(cmd: NvmeAdminCommand): Promise<NvmeAdminReply> {
    try {
      const r = await this.admin_q.submit({
        opcode: cmd.opcode, nsid: cmd.nsid, cdw10: cmd.cdw10, cdw11: cmd.cdw11, cdw12: cmd.cdw12,
        cdw13: cmd.cdw13, cdw14: cmd.cdw14, cdw15: cmd.cdw15,
      }, cmd.dataOut, cmd.dataInBytes);
      return { ok: true, status: r.status, result: Number(r.result & 0xffffffffn), dataIn: r.dataIn };
    } catch (e) {
      return { ok: false, errno: -5, message: (e as Error).message };
    }
  }

  close(): void {
    this.io?.close();
    this.admin_q.close();
  }
}
