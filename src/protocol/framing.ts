// libdaemon stream framing: each message is its text followed by "\n##\n".
// The decoder accumulates bytes, hands out whole messages and refuses a message
// larger than the bound instead of growing without limit.

export const TERMINATOR = '\n##\n';
const TERMINATOR_BYTES = Buffer.from(TERMINATOR, 'latin1');
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export type DecodeEvent =
  /** text: the message up to and including the terminator's first "\n" (so text + "##\n"
   *  is the wire bytes); body: without the terminator, as libdaemon's buffer_read gives it. */
  | { kind: 'message'; text: string; body: string }
  | { kind: 'overflow'; bytes: number };

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private length = 0;
  private scanFrom = 0;

  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  /** Bytes buffered that do not yet form a whole message. */
  get pendingBytes(): number { return this.length; }

  push(data: Buffer): DecodeEvent[] {
    // What lvm sends: one whole request per read, nothing buffered, the read
    // ending with the terminator. Then the body is the read without its last
    // four bytes, decoded on its own: the same text as the general path gives
    // (the terminator is ASCII, and no byte of an invalid UTF-8 sequence can
    // decode to "\n" or "#"), with no Buffer searches, slices or re-scan, and a
    // flat string rather than a slice of the decoded read (a sliced string costs
    // every later character access, and the request parser reads each one, a
    // detour through its parent). The read's last four bytes are its first
    // terminator when the body holds none and does not end in "\n##" (no other
    // overlap of a body's end with "\n##\n" spells the terminator).
    const n = data.length;
    if (this.length === 0 && n >= 4 && data[n - 1] === 0x0a && data[n - 2] === 0x23 && data[n - 3] === 0x23 && data[n - 4] === 0x0a) {
      const body = data.toString('utf8', 0, n - 4);
      if (body.indexOf(TERMINATOR) < 0 && !body.endsWith('\n##')) return [{ kind: 'message', text: body + '\n', body }];
    }
    const events: DecodeEvent[] = [];
    if (this.chunks.length && !this.mayEndMessage(data)) {
      // Keep the chunk without copying: re-joining the whole buffer on every read
      // would make a large message cost quadratic time and stall every client.
      this.chunks.push(data);
      this.length += data.length;
      this.scanFrom = this.length;
      this.checkOverflow(events);
      return events;
    }
    this.chunks.push(data);
    this.length += data.length;
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    while (true) {
      const at = buf.indexOf(TERMINATOR_BYTES, Math.max(0, this.scanFrom - 3));
      if (at < 0) break;
      const text = buf.subarray(0, at + 1).toString('utf8');
      events.push({ kind: 'message', text, body: text.slice(0, -1) });
      buf = buf.subarray(at + TERMINATOR_BYTES.length);
      this.scanFrom = 0;
    }
    this.chunks = buf.length ? [buf] : [];
    this.length = buf.length;
    this.scanFrom = buf.length;
    this.checkOverflow(events);
    return events;
  }

  /** A message beyond the bound is dropped whole; the caller closes the connection. */
  private checkOverflow(events: DecodeEvent[]): void {
    if (this.length <= this.maxBytes) return;
    events.push({ kind: 'overflow', bytes: this.length });
    this.chunks = [];
    this.length = 0;
    this.scanFrom = 0;
  }

  /** Whether a terminator may end in `data`, given the bytes already buffered. */
  private mayEndMessage(data: Buffer): boolean {
    if (data.indexOf(TERMINATOR_BYTES) >= 0) return true;
    const parts: Buffer[] = [];
    let need = TERMINATOR_BYTES.length - 1;
    for (let i = this.chunks.length - 1; i >= 0 && need > 0; i--) {
      const c = this.chunks[i]!;
      const t = c.subarray(Math.max(0, c.length - need));
      parts.unshift(t);
      need -= t.length;
    }
    parts.push(data.subarray(0, TERMINATOR_BYTES.length - 1));
    return Buffer.concat(parts).indexOf(TERMINATOR_BYTES) >= 0;
  }
}

export function encodeFrame(body: string): Buffer {
  return Buffer.from(frameText(body), 'utf8');
}

/** The frame as text (socket.write(text) encodes it without a Buffer of our own). */
export function frameText(body: string): string {
  return body.charCodeAt(body.length - 1) === 10 ? body + '\n##\n' : body + '\n\n##\n';
}
