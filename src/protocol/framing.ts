// libdaemon stream framing: each message is its text followed by "\n##\n".
// The decoder accumulates bytes, hands out whole messages and refuses a message
// larger than the bound instead of growing without limit.

export const TERMINATOR = '\n##\n';
const TERMINATOR_BYTES = Buffer.from(TERMINATOR, 'latin1');
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export type DecodeEvent =
  | { kind: 'message'; text: string }
  | { kind: 'overflow'; bytes: number };

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private length = 0;
  private scanFrom = 0;

  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  /** Bytes buffered that do not yet form a whole message. */
  get pendingBytes(): number { return this.length; }

  push(data: Buffer): DecodeEvent[] {
    this.chunks.push(data);
    this.length += data.length;
    const events: DecodeEvent[] = [];
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    while (true) {
      const at = buf.indexOf(TERMINATOR_BYTES, Math.max(0, this.scanFrom - 3));
      if (at < 0) break;
      events.push({ kind: 'message', text: buf.subarray(0, at + 1).toString('utf8') });
      buf = buf.subarray(at + TERMINATOR_BYTES.length);
      this.scanFrom = 0;
    }
    this.chunks = buf.length ? [buf] : [];
    this.length = buf.length;
    this.scanFrom = buf.length;
    if (this.length > this.maxBytes) {
      events.push({ kind: 'overflow', bytes: this.length });
      this.chunks = [];
      this.length = 0;
      this.scanFrom = 0;
    }
    return events;
  }
}

export function encodeFrame(body: string): Buffer {
  const text = body.endsWith('\n') ? body : body + '\n';
  return Buffer.from(text + '\n##\n', 'utf8');
}
