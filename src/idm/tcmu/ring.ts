// The TCMU (target_core_user) shared ring, as the kernel lays it out in the
// memory a user-space backstore maps from /dev/uioN (linux/target_core_user.h,
// mailbox version 2): a mailbox at offset 0, the command ring at
// mailbox.cmdr_off, data buffers after the ring. The kernel appends entries at
// cmd_head; user space answers each entry in place (rsp overlays req) and moves
// cmd_tail past it. Offsets in entries (cdb_off, iov_base) are offsets into the
// mapped area. Pure functions over the mapped bytes, so they are tested on a
// plain Buffer laid out the same way.

/** Mailbox fields (packed struct; cmd_tail on its own 64-byte cache line). */
export const MB = { VERSION: 0, FLAGS: 2, CMDR_OFF: 4, CMDR_SIZE: 8, CMD_HEAD: 12, CMD_TAIL: 64 } as const;
export const MAILBOX_BYTES = 68;
export const MAILBOX_VERSION = 2;
export const MB_FLAG_CAP_OOOC = 1 << 0;
export const MB_FLAG_CAP_READ_LEN = 1 << 1;

export const TcmuOp = { PAD: 0, CMD: 1, TMR: 2 } as const;
const OP_MASK = 0x7;

/** Entry header: u32 len_op, u16 cmd_id, u8 kflags, u8 uflags. */
export const HDR = { LEN_OP: 0, CMD_ID: 4, KFLAGS: 6, UFLAGS: 7 } as const;
/**
 * Request: u32 iov_cnt, iov_bidi_cnt, iov_dif_cnt, u64 cdb_off, 2 x u64 pad,
 * struct iovec iov[]. Only the outer entry is packed: the req struct inside
 * the union keeps its natural alignment, so cdb_off sits at 24 (after 4 bytes
 * of padding) and the iovecs at 48.
 */
export const REQ = { IOV_CNT: 8, IOV_BIDI_CNT: 12, IOV_DIF_CNT: 16, CDB_OFF: 24, IOV: 48 } as const;
export const IOVEC_BYTES = 16;
/** Response: u8 scsi_status, u8 pad, u16 pad, u32 read_len, char sense_buffer[96]. */
export const RSP = { SCSI_STATUS: 8, READ_LEN: 12, SENSE: 16 } as const;
export const SENSE_BUFFER_BYTES = 96;
export const UFLAG_UNKNOWN_OP = 0x1;
export const UFLAG_READ_LEN = 0x2;

export interface Mailbox {
  version: number;
  flags: number;
  cmdrOff: number;
  cmdrSize: number;
  head: number;
  tail: number;
}

export function readMailbox(mem: Buffer): Mailbox {
  return {
    version: mem.readUInt16LE(MB.VERSION),
    flags: mem.readUInt16LE(MB.FLAGS),
    cmdrOff: mem.readUInt32LE(MB.CMDR_OFF),
    cmdrSize: mem.readUInt32LE(MB.CMDR_SIZE),
    head: mem.readUInt32LE(MB.CMD_HEAD),
    tail: mem.readUInt32LE(MB.CMD_TAIL),
  };
}

/** A data segment: offset into the mapped area and length. */
export interface Segment { off: number; len: number }

export type RingEntry =
  | { kind: 'pad'; at: number; len: number }
  | { kind: 'cmd'; at: number; len: number; cmdId: number; cdb: Buffer; iovs: Segment[]; dataBytes: number }
  | { kind: 'other'; at: number; len: number; op: number };

/**
 * The CDB length the kernel copies into the ring: scsi_command_size(), i.e. by
 * opcode group (6, 10, 10, 12, 16, 12, 10, 10 bytes), 8 + additional length
 * for VARIABLE LENGTH (0x7f). Vendor opcodes 0xC0-0xFF are groups 6/7: 10 bytes.
 */
export function scsiCommandSize(cdb: Buffer): number {
  const op = cdb[0] ?? 0;
  if (op === 0x7f) return 8 + (cdb[7] ?? 0);
  return [6, 10, 10, 12, 16, 12, 10, 10][(op >> 5) & 7]!;
}

function u64(mem: Buffer, at: number, what: string): number {
  const v = mem.readBigUInt64LE(at);
  if (v > BigInt(mem.length)) throw new Error(`ring: ${what} ${v} beyond the mapped ${mem.length} bytes`);
  return Number(v);
}

/** The entry at ring offset `pos` (relative to the ring start). Throws on an entry that points outside the map. */
export function readEntry(mem: Buffer, mb: Mailbox, pos: number): RingEntry {
  const at = mb.cmdrOff + pos;
  const lenOp = mem.readUInt32LE(at + HDR.LEN_OP);
  const op = lenOp & OP_MASK;
  const len = (lenOp & ~OP_MASK) >>> 0;
  if (len === 0 || pos + len > mb.cmdrSize) throw new Error(`ring: entry at ${pos} has length ${len} (ring ${mb.cmdrSize})`);
  if (op === TcmuOp.PAD) return { kind: 'pad', at, len };
  if (op !== TcmuOp.CMD) return { kind: 'other', at, len, op };
  const iovCnt = mem.readUInt32LE(at + REQ.IOV_CNT);
  const bidi = mem.readUInt32LE(at + REQ.IOV_BIDI_CNT);
  const dif = mem.readUInt32LE(at + REQ.IOV_DIF_CNT);
  if (REQ.IOV + (iovCnt + bidi + dif) * IOVEC_BYTES > len) throw new Error(`ring: entry at ${pos}: ${iovCnt} iovecs do not fit in ${len} bytes`);
  const iovs: Segment[] = [];
  let dataBytes = 0;
  for (let i = 0; i < iovCnt; i++) {
    const off = u64(mem, at + REQ.IOV + i * IOVEC_BYTES, 'iov_base');
    const l = u64(mem, at + REQ.IOV + i * IOVEC_BYTES + 8, 'iov_len');
    if (off + l > mem.length) throw new Error(`ring: iovec ${off}+${l} beyond the map`);
    iovs.push({ off, len: l });
    dataBytes += l;
  }
  const cdbOff = u64(mem, at + REQ.CDB_OFF, 'cdb_off');
  const size = scsiCommandSize(mem.subarray(cdbOff, cdbOff + 8));
  if (cdbOff + size > mem.length) throw new Error('ring: cdb beyond the map');
  const cdb = Buffer.from(mem.subarray(cdbOff, cdbOff + size));
  return { kind: 'cmd', at, len, cmdId: mem.readUInt16LE(at + HDR.CMD_ID), cdb, iovs, dataBytes };
}

/** Entries between tail and head, in ring order (pads included). */
export function pendingEntries(mem: Buffer): RingEntry[] {
  const mb = readMailbox(mem);
  const out: RingEntry[] = [];
  let pos = mb.tail;
  let guard = 0;
  while (pos !== mb.head) {
    const e = readEntry(mem, mb, pos);
    out.push(e);
    pos = (pos + e.len) % mb.cmdrSize;
    if (++guard > 1 << 20) throw new Error('ring: no end between tail and head');
  }
  return out;
}

/** Data-out bytes of a command: its iovecs concatenated. */
export function gather(mem: Buffer, iovs: Segment[]): Buffer {
  return Buffer.concat(iovs.map((s) => mem.subarray(s.off, s.off + s.len)));
}

/** Copies data-in into the iovecs; the rest of the buffers is zeroed. Returns the bytes copied. */
export function scatter(mem: Buffer, iovs: Segment[], data: Buffer): number {
  let done = 0;
  for (const s of iovs) {
    const n = Math.max(0, Math.min(s.len, data.length - done));
    if (n > 0) data.copy(mem, s.off, done, done + n);
    if (n < s.len) mem.fill(0, s.off + n, s.off + s.len);
    done += n;
  }
  return done;
}

/**
 * Answers the command entry at absolute offset `at`: SCSI status and sense in
 * the rsp overlay. With `readLen` (and the kernel's CAP_READ_LEN) the kernel
 * reports a data-in shorter than the buffer as a residual.
 */
export function writeResponse(mem: Buffer, at: number, status: number, sense: Buffer, readLen?: number): void {
  mem[at + RSP.SCSI_STATUS] = status;
  mem[at + RSP.SCSI_STATUS + 1] = 0;
  mem.writeUInt16LE(0, at + RSP.SCSI_STATUS + 2);
  mem.fill(0, at + RSP.SENSE, at + RSP.SENSE + SENSE_BUFFER_BYTES);
  sense.copy(mem, at + RSP.SENSE, 0, Math.min(sense.length, SENSE_BUFFER_BYTES));
  if (readLen !== undefined && (readMailbox(mem).flags & MB_FLAG_CAP_READ_LEN)) {
    mem.writeUInt32LE(readLen, at + RSP.READ_LEN);
    mem[at + HDR.UFLAGS] = (mem[at + HDR.UFLAGS]! | UFLAG_READ_LEN) & 0xff;
  } else {
    mem.writeUInt32LE(0, at + RSP.READ_LEN);
  }
}

/** Moves cmd_tail past an entry (mod the ring size). */
export function advanceTail(mem: Buffer, entryLen: number): void {
  const mb = readMailbox(mem);
  mem.writeUInt32LE((mb.tail + entryLen) % mb.cmdrSize, MB.CMD_TAIL);
}
