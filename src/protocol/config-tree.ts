// The libdm config-tree text that libdaemon messages carry: `key = value` lines
// with quoted strings, 64-bit integers, floats, arrays and sections. lvmlockd only
// uses flat string/integer keys, but clients may send anything the grammar allows,
// so the parser accepts the whole grammar and never throws.

export type ConfigValue = string | bigint | number | ConfigValue[] | ConfigSection;
export interface ConfigSection {
  readonly kind: 'section';
  readonly entries: ReadonlyArray<readonly [string, ConfigValue]>;
}

export type ParseResult =
  | { ok: true; entries: Array<[string, ConfigValue]> }
  | { ok: false; error: string };

const MAX_DEPTH = 32;

class Cursor {
  pos = 0;
  constructor(readonly text: string) {}
  get done(): boolean { return this.pos >= this.text.length; }
  peek(): string { return this.text[this.pos] ?? ''; }
  skipSpaceAndComments(): void {
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
        this.pos++;
      } else if (c === '#') {
        while (this.pos < this.text.length && this.text[this.pos] !== '\n') this.pos++;
      } else {
        return;
      }
    }
  }
}

class SyntaxError_ {
  constructor(readonly message: string) {}
}

function fail(cur: Cursor, what: string): never {
  throw new SyntaxError_(`${what} at offset ${cur.pos}`);
}

const IDENT = /[A-Za-z0-9_\-.+/@[\]]/;

function parseIdentifier(cur: Cursor): string {
  const start = cur.pos;
  while (!cur.done && IDENT.test(cur.peek())) cur.pos++;
  if (cur.pos === start) fail(cur, 'expected a key');
  return cur.text.slice(start, cur.pos);
}

function parseString(cur: Cursor): string {
  cur.pos++; // opening quote
  let out = '';
  while (true) {
    if (cur.done) fail(cur, 'unterminated string');
    const c = cur.text[cur.pos++]!;
    if (c === '"') return out;
    if (c === '\\' && !cur.done) {
      out += cur.text[cur.pos++];
    } else {
      out += c;
    }
  }
}

function parseNumber(cur: Cursor): bigint | number {
  const m = /^[-+]?[0-9]+(\.[0-9]+)?/.exec(cur.text.slice(cur.pos, cur.pos + 64));
  if (!m) fail(cur, 'expected a value');
  cur.pos += m[0].length;
  if (m[1] !== undefined) return Number(m[0]);
  const n = BigInt(m[0]);
  if (n > 0x7fffffffffffffffn || n < -0x8000000000000000n) fail(cur, 'integer out of range');
  return n;
}

function parseValue(cur: Cursor, depth: number): ConfigValue {
  cur.skipSpaceAndComments();
  const c = cur.peek();
  if (c === '"') return parseString(cur);
  if (c === '[') {
    cur.pos++;
    const items: ConfigValue[] = [];
    while (true) {
      cur.skipSpaceAndComments();
      if (cur.done) fail(cur, 'unterminated array');
      if (cur.peek() === ']') { cur.pos++; return items; }
      if (items.length > 0) {
        if (cur.peek() !== ',') fail(cur, "expected ',' in array");
        cur.pos++;
        cur.skipSpaceAndComments();
      }
      if (depth >= MAX_DEPTH) fail(cur, 'nesting too deep');
      items.push(parseValue(cur, depth + 1));
    }
  }
  return parseNumber(cur);
}

function parseEntries(cur: Cursor, depth: number, closing: boolean): Array<[string, ConfigValue]> {
  const entries: Array<[string, ConfigValue]> = [];
  while (true) {
    cur.skipSpaceAndComments();
    if (cur.done) {
      if (closing) fail(cur, "missing '}'");
      return entries;
    }
    if (cur.peek() === '}') {
      if (!closing) fail(cur, "unexpected '}'");
      cur.pos++;
      return entries;
    }
    const key = parseIdentifier(cur);
    cur.skipSpaceAndComments();
    if (cur.peek() === '{') {
      cur.pos++;
      if (depth >= MAX_DEPTH) fail(cur, 'nesting too deep');
      entries.push([key, { kind: 'section', entries: parseEntries(cur, depth + 1, true) }]);
    } else if (cur.peek() === '=') {
      cur.pos++;
      entries.push([key, parseValue(cur, depth)]);
    } else {
      fail(cur, `expected '=' after key '${key}'`);
    }
  }
}

/** Parses a message body. Never throws: syntax problems come back as `ok: false`. */
export function parseConfigTree(text: string): ParseResult {
  try {
    return { ok: true, entries: parseEntries(new Cursor(text), 0, false) };
  } catch (e) {
    if (e instanceof SyntaxError_) return { ok: false, error: e.message };
    throw e;
  }
}

/** First-match lookup, as libdm's find does when duplicate keys are not checked. */
export class ConfigMap {
  private readonly first = new Map<string, ConfigValue>();
  constructor(entries: ReadonlyArray<readonly [string, ConfigValue]>) {
    for (const [k, v] of entries) if (!this.first.has(k)) this.first.set(k, v);
  }
  has(key: string): boolean { return this.first.has(key); }
  raw(key: string): ConfigValue | undefined { return this.first.get(key); }
  /** A string value, or undefined when absent or not a string. */
  str(key: string): string | undefined {
    const v = this.first.get(key);
    return typeof v === 'string' ? v : undefined;
  }
  /** An integer value; strings of digits are accepted as libdm does for int lookups. */
  int(key: string): bigint | undefined {
    const v = this.first.get(key);
    if (typeof v === 'bigint') return v;
    if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
    return undefined;
  }
  keys(): string[] { return [...this.first.keys()]; }
}

export type WireValue = string | number | bigint;

/** `key = "value"` / `key = 123` lines, the form libdaemon's simple reply writer uses. */
export function formatReply(fields: ReadonlyArray<readonly [string, WireValue]>): string {
  let out = '';
  for (const [k, v] of fields) out += typeof v === 'string' ? `${k} = "${v}"\n` : `${k} = ${v}\n`;
  return out;
}

/** `key ="value"` lines, the form lvm commands' request builder produces (first line `request="x"`). */
export function formatRequest(fields: ReadonlyArray<readonly [string, WireValue]>): string {
  let out = '';
  fields.forEach(([k, v], i) => {
    const sep = i === 0 ? '=' : ' =';
    out += typeof v === 'string' ? `${k}${sep}"${escapeString(v)}"\n` : `${k}${sep}${v}\n`;
  });
  return out;
}

function escapeString(s: string): string {
  return s.replace(/[\\"]/g, (c) => '\\' + c);
}
