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

// Tokens of libdm's config lexer. What counts as a token, and when a word is a
// value rather than a key, follows libdm (libdm-config.c, _get_token/_type),
// since lvmlockd parses requests with it:
// - a value may be "double quoted" (\" and \\ unescaped, other backslashes kept),
//   'single quoted' (raw), a number, or a bare word up to space, '#', '=', '{', '}';
// - a quoted string left open runs to the end of the text and loses its last
//   character (libdm strips the "closing quote" it assumes is there);
// - numbers are [+-.0-9] then digits with at most one '.', read like strtoll
//   base 0 (a leading 0 means octal) or strtod; an out-of-range integer fails;
// - array items are plain values, commas between them optional after an item;
// - the text ends at the first NUL (libdaemon hands the parser a C string).
type Tok = 'int' | 'float' | 'sq' | 'dq' | 'bare' | 'eq' | 'secb' | 'sece' | 'arrb' | 'arre' | 'ident' | 'comma' | 'eof';

class SyntaxError_ {
  constructor(readonly message: string) {}
}

class Lexer {
  t: Tok = 'eof';
  tb = 0;
  te = 0;
  private readonly end: number;
  constructor(readonly text: string, private readonly openQuoteOk: boolean) {
    const nul = text.indexOf('\0');
    this.end = nul < 0 ? text.length : nul;
    this.next('eof');
  }
  fail(what: string): never {
    throw new SyntaxError_(`${what} at offset ${this.tb}`);
  }
  get tok(): string { return this.text.slice(this.tb, this.te); }
  /** The current token type (a call, so type narrowing does not outlive next()). */
  cur(): Tok { return this.t; }
  /** The token's text without its quotes (libdm's _dup_string_tok). */
  unquoted(): string {
    if (this.te - 1 < this.tb + 1) this.fail('expected a string token');
    return this.text.slice(this.tb + 1, this.te - 1);
  }
  expect(t: Tok, what: string): void {
    if (this.t !== t) this.fail(what);
    this.next(t);
  }
  next(prev: Tok): void {
    const s = this.text;
    const end = this.end;
    let i = this.te;
    // spaces and comments
    for (;;) {
      while (i < end && isSpace(s.charCodeAt(i))) i++;
      if (i < end && s[i] === '#') { while (i < end && s[i] !== '\n') i++; continue; }
      break;
    }
    this.tb = i;
    if (i >= end) { this.t = 'eof'; this.te = i; return; }
    const valuesAllowed = prev === 'eq' || prev === 'arrb' || prev === 'comma';
    const c = s[i]!;
    let t: Tok = 'int';
    switch (c) {
      case '{': t = 'secb'; i++; break;
      case '}': t = 'sece'; i++; break;
      case '[': t = 'arrb'; i++; break;
      case ']': t = 'arre'; i++; break;
      case ',': t = 'comma'; i++; break;
      case '=': t = 'eq'; i++; break;
      case '"':
        t = 'dq'; i++;
        while (i < end && s[i] !== '"') { if (s[i] === '\\' && i + 1 < end) i++; i++; }
        if (i < end) i++;
        else if (!this.openQuoteOk) { this.tb = i; this.fail('unterminated string'); }
        break;
      case "'":
        t = 'sq'; i++;
        while (i < end && s[i] !== "'") i++;
        if (i < end) i++;
        else if (!this.openQuoteOk) { this.tb = i; this.fail('unterminated string'); }
        break;
      default:
        if (valuesAllowed && /[.0-9+-]/.test(c)) {
          if (c === '.') t = 'float';
          while (++i < end) {
            const d = s[i]!;
            if (d >= '0' && d <= '9') continue;
            if (d === '.' && t !== 'float') { t = 'float'; continue; }
            break;
          }
          break;
        }
        t = valuesAllowed ? 'bare' : 'ident';
        while (i < end && !isSpace(s.charCodeAt(i)) && !'#={}'.includes(s[i]!)) i++;
    }
    this.t = t;
    this.te = i;
  }
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** libdm's dm_unescape_double_quotes: \" → ", \\ → \, other backslashes stay. */
function unescapeDq(str: string): string {
  return str.replace(/\\(["\\])/g, '$1');
}

/** strtoll(str, NULL, 0) on a numeric token: sign, then octal after a leading 0. */
function parseInt64(lx: Lexer, tok: string): bigint {
  const m = /^([+-]?)([0-9]*)/.exec(tok)!;
  let digits = m[2]!;
  let n = 0n;
  if (digits.length > 1 && digits[0] === '0') {
    digits = /^[0-7]*/.exec(digits)![0];
    for (const d of digits) n = n * 8n + BigInt(d);
  } else if (digits) {
    n = BigInt(digits);
  }
  if (m[1] === '-') n = -n;
  if (n > 0x7fffffffffffffffn || n < -0x8000000000000000n) lx.fail('integer out of range');
  return n;
}

function parseType(lx: Lexer): ConfigValue {
  let v: ConfigValue;
  switch (lx.cur()) {
    case 'int': v = parseInt64(lx, lx.tok); break;
    case 'float': { const f = Number.parseFloat(lx.tok); v = Number.isNaN(f) ? 0 : f; break; }
    case 'sq': v = lx.unquoted(); break;
    case 'dq': v = unescapeDq(lx.unquoted()); break;
    case 'bare': v = lx.tok; break;
    default: lx.fail('expected a value');
  }
  lx.next(lx.cur());
  return v;
}

function parseValue(lx: Lexer): ConfigValue {
  if (lx.cur() !== 'arrb') return parseType(lx);
  lx.next('arrb');
  const items: ConfigValue[] = [];
  while (lx.cur() !== 'arre') {
    items.push(parseType(lx));
    if (lx.cur() === 'comma') lx.next('comma');
  }
  lx.next('arre');
  return items;
}

function parseSection(lx: Lexer, depth: number, into: Array<[string, ConfigValue]>): void {
  let key: string;
  if (lx.cur() === 'dq') key = unescapeDq(lx.unquoted());
  else if (lx.cur() === 'sq') key = lx.unquoted();
  else if (lx.cur() === 'ident') key = lx.tok;
  else lx.fail('expected a key');
  if (!key) lx.fail('empty section identifier');
  lx.next(lx.cur());
  if (lx.cur() === 'secb') {
    if (depth >= MAX_DEPTH) lx.fail('nesting too deep');
    lx.next('secb');
    const entries: Array<[string, ConfigValue]> = [];
    while (lx.cur() !== 'sece') {
      if (lx.cur() === 'eof') lx.fail("missing '}'");
      parseSection(lx, depth + 1, entries);
    }
    lx.next('sece');
    into.push([key, { kind: 'section', entries }]);
    return;
  }
  if (lx.cur() !== 'eq') lx.fail(`expected '=' after key '${key.slice(0, 40)}'`);
  lx.next('eq');
  into.push([key, parseValue(lx)]);
}

export interface ParseOptions {
  /**
   * Accept a quote left open, ended at the text's last character, as libdm does
   * (lvmlockd answers `request = "hello` + newline). The daemon sets this; by
   * default an open quote is a syntax error, so a client can fall back to its
   * own line-by-line reading of a damaged reply.
   */
  libdmOpenQuotes?: boolean;
}

/**
 * One line of the flat form lvm commands send: `key ="value"`, `key = "value"`,
 * `key=123` (a key of lower-case letters, digits and '_'; a double-quoted
 * value without a backslash, quote, newline or NUL, or a decimal integer of at
 * most 15 digits without sign or leading zero).
 */
const FLAT_LINE = /([a-z_][a-z0-9_]*) ?= ?(?:"([^"\\\n\0]*)"|(0|[1-9][0-9]{0,14}))\n/y;

/**
 * The entries of a message made only of FLAT_LINE lines (the last newline may
 * be missing), or null when it has anything else. For such a message the
 * general parser gives exactly these entries (a property test checks it); this
 * way is several times cheaper, and nearly every request has this form.
 */
export function parseFlat(text: string): Array<[string, ConfigValue]> | null {
  const t = text.length && text.charCodeAt(text.length - 1) !== 10 ? text + '\n' : text;
  const entries: Array<[string, ConfigValue]> = [];
  const n = t.length;
  let p = 0;
  // FLAT_LINE, one line at a time, by character codes (the regex's match arrays
  // and captures cost more than the scan; a property test compares the two).
  while (p < n) {
    const k0 = p;
    let c = t.charCodeAt(p);
    if (!((c >= 97 && c <= 122) || c === 95)) return null;
    for (c = t.charCodeAt(++p); (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95; c = t.charCodeAt(++p));
    const key = t.slice(k0, p);
    if (c === 32) c = t.charCodeAt(++p);
    if (c !== 61) return null;
    c = t.charCodeAt(++p);
    if (c === 32) c = t.charCodeAt(++p);
    if (c === 34) {
      const v0 = ++p;
      for (c = t.charCodeAt(p); c !== 34; c = t.charCodeAt(++p)) {
        if (c === 92 || c === 10 || c === 0 || p >= n) return null;
      }
      const value = t.slice(v0, p);
      if (t.charCodeAt(++p) !== 10) return null;
      p++;
      entries.push([key, value]);
    } else {
      const d0 = p;
      for (; c >= 48 && c <= 57; c = t.charCodeAt(++p));
      const digits = p - d0;
      if (c !== 10 || digits === 0 || digits > 15 || (digits > 1 && t.charCodeAt(d0) === 48)) return null;
      entries.push([key, BigInt(t.slice(d0, p))]);
      p++;
    }
  }
  return entries;
}

/** The regex form of parseFlat's scan (the property test compares them). */
export function parseFlatRegex(text: string): Array<[string, ConfigValue]> | null {
  const t = text.length && text.charCodeAt(text.length - 1) !== 10 ? text + '\n' : text;
  const entries: Array<[string, ConfigValue]> = [];
  FLAT_LINE.lastIndex = 0;
  while (FLAT_LINE.lastIndex < t.length) {
    const m = FLAT_LINE.exec(t);
    if (!m) return null;
    entries.push([m[1]!, m[2] !== undefined ? m[2] : BigInt(m[3]!)]);
  }
  return entries;
}

/** Parses a message body. Never throws: syntax problems come back as `ok: false`. */
export function parseConfigTree(text: string, opts: ParseOptions = {}): ParseResult {
  const flat = parseFlat(text);
  if (flat) return { ok: true, entries: flat };
  return parseConfigTreeGeneral(text, opts);
}

/** The whole grammar, without the flat-form shortcut (parseConfigTree uses both; tests compare them). */
export function parseConfigTreeGeneral(text: string, opts: ParseOptions = {}): ParseResult {
  try {
    const lx = new Lexer(text, opts.libdmOpenQuotes === true);
    const entries: Array<[string, ConfigValue]> = [];
    while (lx.cur() !== 'eof') parseSection(lx, 0, entries);
    return { ok: true, entries };
  } catch (e) {
    if (e instanceof SyntaxError_) return { ok: false, error: e.message };
    throw e;
  }
}

/** Entry lists up to this long are searched in order instead of through a Map. */
const SCAN_ENTRIES = 32;

/** First-match lookup, as libdm's find does when duplicate keys are not checked. */
export class ConfigMap {
  /** First occurrences, built only for long entry lists; short ones (every lvm request) are scanned. */
  private readonly first: Map<string, ConfigValue> | null = null;
  private readonly entries: ReadonlyArray<readonly [string, ConfigValue]>;
  constructor(entries: ReadonlyArray<readonly [string, ConfigValue]>) {
    this.entries = entries;
    if (entries.length > SCAN_ENTRIES) {
      const first = new Map<string, ConfigValue>();
      for (const [k, v] of entries) if (!first.has(k)) first.set(k, v);
      this.first = first;
    }
  }
  private find(key: string): ConfigValue | undefined {
    if (this.first) return this.first.get(key);
    const e = this.entries;
    for (let i = 0; i < e.length; i++) if (e[i]![0] === key) return e[i]![1];
    return undefined;
  }
  has(key: string): boolean { return this.first ? this.first.has(key) : this.entries.some((e) => e[0] === key); }
  raw(key: string): ConfigValue | undefined { return this.find(key); }
  /** A string value, or undefined when absent or not a string. */
  str(key: string): string | undefined {
    const v = head(this.find(key));
    return typeof v === 'string' ? v : undefined;
  }
  /** An integer value (libdm's find_int: integers only, not floats or strings). */
  int(key: string): bigint | undefined {
    const v = head(this.find(key));
    return typeof v === 'bigint' ? v : undefined;
  }
  keys(): string[] { return this.first ? [...this.first.keys()] : [...new Set(this.entries.map((e) => e[0]))]; }
}

/** libdm lookups read an array's first item as the value. */
function head(v: ConfigValue | undefined): ConfigValue | undefined {
  return Array.isArray(v) ? v[0] : v;
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
