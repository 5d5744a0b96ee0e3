// The NVMe/TCP target of one emulated drive: every TCP connection is one
// queue. It starts with ICReq/ICResp (no digests, no data alignment), then
// a Fabrics Connect names the queue: qid 0 creates a controller for the
// host (admin queue), qid > 0 joins the controller named by cntlid (I/O
// queue). Commands run one at a time per queue in arrival order; write data
// comes in the capsule or is asked for with one R2T; read data goes out as
// C2HData PDUs followed by the response capsule. An Asynchronous Event
// Request is held, never answered. A malformed PDU ends the connection
// with a C2HTermReq.

import * as net from 'node:net';
import { NvmeController, type Completion, type NvmeDrive } from './controller';
import {
  PduReader, PduType, encodeC2HData, encodeC2HTerm, encodeIcResp, encodeR2t, encodeResponse, parseCapsule,
  parseDataPdu, parseIcReq, TermFes, type Pdu,
} from './pdu';
import { FABRICS_OPCODE, FabricsType, Status, isHostToController, parseSqe, SglType, type Sqe } from './sqe';

/** Largest H2CData PDU data we ask for (ICResp MAXH2CDATA). */
export const MAXH2CDATA = 128 * 1024;
/** C2HData PDUs carry at most this much. */
export const C2H_CHUNK = 128 * 1024;
/** Largest transfer a command may ask for. */
export const TRANSFER_MAX = 4 * 1024 * 1024;

interface PendingWrite { sqe: Sqe; buf: Buffer; received: number }

class QueueConnection {
  private readonly reader = new PduReader();
  private connected = false;
  private qid = -1;
  private ctrl: NvmeController | null = null;
  private sqHead = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, PendingWrite>();
  private nextTtag = 1;
  private readonly onCtrlDestroy = (): void => { this.sock.destroy(); };

  constructor(private readonly drive: NvmeDrive, private readonly sock: net.Socket, private readonly log: (l: string) => void) {
    sock.setNoDelay(true);
    sock.on('data', (chunk) => this.onData(chunk));
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.onClose());
  }

  private onClose(): void {
    const c = this.ctrl;
    this.ctrl = null;
    if (!c) return;
    c.onDestroy.delete(this.onCtrlDestroy);
    // The admin queue going away ends the controller (and with it its I/O queues).
    if (this.qid === 0) c.destroy('admin queue closed');
  }

  private fatal(fes: number, pdu: Buffer, why: string): void {
    this.log(`queue ${this.qid}: ${why}; terminating the connection`);
    if (!this.sock.destroyed) this.sock.end(encodeC2HTerm(fes, pdu.subarray(0, 24)));
    this.sock.destroySoon();
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    for (;;) {
      let p: Pdu | null;
      try {
        p = this.reader.next();
      } catch (e) {
        this.fatal(TermFes.INVALID_HEADER, chunk, (e as Error).message);
        return;
      }
      if (!p) return;
      try {
        this.onPdu(p);
      } catch (e) {
        this.fatal(TermFes.INVALID_HEADER, p.raw, (e as Error).message);
        return;
      }
    }
  }

  private onPdu(p: Pdu): void {
    if (!this.connected) {
      const ic = parseIcReq(p);
      if (ic.pfv !== 0) throw new Error(`unsupported PDU format version ${ic.pfv}`);
      this.connected = true;
      // No digests (whatever was asked: the host refuses a mismatch itself), no alignment.
      this.sock.write(encodeIcResp({ pfv: 0, cpda: 0, digest: 0, maxdata: MAXH2CDATA }));
      return;
    }
    switch (p.type) {
      case PduType.CMD:
        this.onCapsule(p);
        return;
      case PduType.H2C_DATA:
        this.onH2CData(p);
        return;
      case PduType.H2C_TERM:
        this.log(`queue ${this.qid}: host terminated the connection`);
        this.sock.destroy();
        return;
      default:
        throw new Error(`unexpected PDU type ${p.type}`);
    }
  }

  private onCapsule(p: Pdu): void {
    const cap = parseCapsule(p);
    const sqe = parseSqe(cap.sqe);
    this.sqHead = (this.sqHead + 1) & 0xffff;
    const toCtrl = isHostToController(sqe);
    const want = sqe.sglLength;
    if (want > TRANSFER_MAX) {
      this.enqueue(sqe, null, { status: Status.INVALID_FIELD });
      return;
    }
    if (toCtrl && want > 0) {
      if (cap.data.length > 0 || sqe.sglType === SglType.DATA_OFFSET) {
        if (cap.data.length !== want) throw new Error(`in-capsule data ${cap.data.length} bytes, SGL says ${want}`);
        this.enqueue(sqe, cap.data);
        return;
      }
      // Ask for the data: one R2T for all of it.
      const ttag = this.nextTtag;
      this.nextTtag = this.nextTtag >= 0xfffe ? 1 : this.nextTtag + 1;
      this.pending.set(ttag, { sqe, buf: Buffer.alloc(want), received: 0 });
      this.sock.write(encodeR2t({ cid: sqe.cid, ttag, offset: 0, length: want }));
      return;
    }
    this.enqueue(sqe, null);
  }

  private onH2CData(p: Pdu): void {
    const d = parseDataPdu(p);
    const w = this.pending.get(d.ttag);
    if (!w || w.sqe.cid !== d.cid) throw new Error(`H2CData for unknown transfer tag ${d.ttag}`);
    if (d.offset !== w.received || d.offset + d.data.length > w.buf.length) {
      this.fatal(TermFes.DATA_RANGE, p.raw, `H2CData offset ${d.offset} length ${d.data.length} out of range`);
      return;
    }
    d.data.copy(w.buf, d.offset);
    w.received += d.data.length;
    if (w.received === w.buf.length) {
      this.pending.delete(d.ttag);
      this.enqueue(w.sqe, w.buf);
    }
  }

  private enqueue(sqe: Sqe, dataOut: Buffer | null, fixed?: Completion): void {
    this.chain = this.chain.then(() => {
      if (this.sock.destroyed) return;
      let c: Completion;
      try {
        c = fixed ?? this.execute(sqe, dataOut);
      } catch (e) {
        this.log(`queue ${this.qid}: command 0x${sqe.opcode.toString(16)} failed: ${(e as Error).message}`);
        c = { status: Status.INTERNAL };
      }
      if (c.held) return;
      this.complete(sqe, c);
    });
  }

  private complete(sqe: Sqe, c: Completion): void {
    const out: Buffer[] = [];
    if (c.status === 0 && c.dataIn && c.dataIn.length > 0) {
      for (let off = 0; off < c.dataIn.length; off += C2H_CHUNK) {
        const part = c.dataIn.subarray(off, Math.min(off + C2H_CHUNK, c.dataIn.length));
        out.push(encodeC2HData({ cid: sqe.cid, ttag: 0, offset: off, data: part, last: off + part.length >= c.dataIn.length }));
      }
    }
    out.push(encodeResponse({ result: c.result ?? 0n, sqHead: this.sqHead, sqId: Math.max(this.qid, 0), cid: sqe.cid, status: c.status }));
    this.sock.write(Buffer.concat(out));
  }

  private execute(sqe: Sqe, dataOut: Buffer | null): Completion {
    if (sqe.opcode === FABRICS_OPCODE) return this.fabrics(sqe, dataOut);
    if (!this.ctrl || this.ctrl.destroyed) return { status: Status.INTERNAL };
    if (this.qid === 0) return this.ctrl.admin(sqe, dataOut);
    if ((this.ctrl.cc & 1) === 0) return { status: Status.INTERNAL };
    return this.drive.io(sqe, dataOut);
  }

  private fabrics(sqe: Sqe, dataOut: Buffer | null): Completion {
    const fctype = sqe.raw[4]!;
    if (fctype === FabricsType.CONNECT) return this.connect(sqe, dataOut);
    if (!this.ctrl || this.qid !== 0) return { status: Status.INVALID_FIELD };
    this.ctrl.kick();
    const eight = (sqe.raw[40]! & 7) === 1;
    const offset = sqe.raw.readUInt32LE(44);
    if (fctype === FabricsType.PROPERTY_GET) return this.ctrl.propertyGet(offset, eight);
    if (fctype === FabricsType.PROPERTY_SET) return this.ctrl.propertySet(offset, sqe.raw.readBigUInt64LE(48));
    return { status: Status.INVALID_OPCODE };
  }

  private connect(sqe: Sqe, data: Buffer | null): Completion {
    // Connect invalid parameters: result bit 16 set = "in the data", else in the command; low bits: offset.
    const bad = (inData: boolean, offset: number): Completion => ({ status: Status.CONNECT_INVALID_PARAM, result: BigInt((inData ? 1 << 16 : 0) | offset) });
    if (this.ctrl) return { status: Status.INVALID_FIELD };
    if (!data || data.length < 1024) return bad(false, 24);
    const recfmt = sqe.raw.readUInt16LE(40);
    const qid = sqe.raw.readUInt16LE(42);
    const kato = sqe.raw.readUInt32LE(48);
    if (recfmt !== 0) return bad(false, 40);
    const cntlid = data.readUInt16LE(16);
    const subnqn = cstr(data.subarray(256, 512));
    const hostnqn = cstr(data.subarray(512, 768));
    if (subnqn !== this.drive.nqn) return bad(true, 256);
    if (qid === 0) {
      if (cntlid !== 0xffff) return bad(true, 16);
      const c = this.drive.newController(hostnqn, kato);
      this.attach(c, 0);
      this.log(`admin queue: controller ${c.cntlid} for ${hostnqn} (kato ${kato} ms)`);
      return { status: 0, result: BigInt(c.cntlid) };
    }
    const c = this.drive.controllers.get(cntlid);
    if (!c || c.hostnqn !== hostnqn) return bad(true, 16);
    if (qid > Math.max(c.ioQueues, 1)) return bad(false, 42);
    this.attach(c, qid);
    return { status: 0, result: 0n };
  }

  private attach(c: NvmeController, qid: number): void {
    this.ctrl = c;
    this.qid = qid;
    c.onDestroy.add(this.onCtrlDestroy);
  }
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('ascii');
}

export class NvmeTcpTarget {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly drive: NvmeDrive, log: (l: string) => void = () => undefined) {
    this.server = net.createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      new QueueConnection(drive, s, log);
    });
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.drive.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
