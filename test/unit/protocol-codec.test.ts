// Unit and property tests of the libdaemon message codec: the config-tree text
// parser/writers (src/protocol/config-tree.ts) and the "\n##\n" stream framing
// (src/protocol/framing.ts). Byte forms come from the golden traces (Debian 12
// lvmlockd 2.03.16 driven by the real lvm commands).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ConfigMap, formatReply, formatRequest, parseConfigTree, parseConfigTreeGeneral, parseFlat, parseFlatRegex, type ConfigValue, type WireValue,
} from '../../src/protocol/config-tree';
import { FrameDecoder, MAX_MESSAGE_BYTES, TERMINATOR, encodeFrame } from '../../src/protocol/framing';

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function parseOk(text: string): Array<[string, ConfigValue]> {
  const r = parseConfigTree(text);
  assert.ok(r.ok, `expected "${text}" to parse: ${r.ok ? '' : r.error}`);
  return r.entries;
}

function parseMap(text: string): ConfigMap {
  return new ConfigMap(parseOk(text));
}

/** Values as the parser returns them: integers become bigint. */
function normalize(v: WireValue): ConfigValue {
  return typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v;
}

// Keys the lvm request builder and the daemon's reply writer use, plus the
// identifier characters libdm allows ([A-Za-z0-9_-.+/@[]]).
const keyArb = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_\-.+/@[\]]{0,20}$/);
const intArb = fc.bigInt({ min: I64_MIN, max: I64_MAX });
// No NUL: libdaemon hands the parser a C string, so text ends at the first NUL.
const anyStringArb = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0'));
const plainStringArb = anyStringArb.filter((s) => !s.includes('"') && !s.includes('\\'));

describe('formatRequest / formatReply / parseConfigTree round trip', () => {
  test('property: formatRequest round trips strings (quotes, backslashes, newlines, unicode) and 64-bit ints', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(keyArb, fc.oneof(anyStringArb, intArb, fc.integer({ min: -(2 ** 31), max: 2 ** 31 }))), { minLength: 1, maxLength: 10 }),
      (fields) => {
        const text = formatRequest(fields);
        const entries = parseOk(text);
        assert.deepEqual(entries, fields.map(([k, v]) => [k, normalize(v)]));
      },
    ), { numRuns: 500 });
  });

  test('property: formatReply round trips strings without quote/backslash and 64-bit ints', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(keyArb, fc.oneof(plainStringArb, intArb)), { minLength: 1, maxLength: 10 }),
      (fields) => {
        const entries = parseOk(formatReply(fields));
        assert.deepEqual(entries, fields.map(([k, v]) => [k, normalize(v)]));
      },
    ), { numRuns: 500 });
  });

  test('property: parser never throws on arbitrary text, and error results carry a message', () => {
    const alphabet = fc.constantFrom('a', 'k', '=', ' ', '"', '\\', '\n', '#', '{', '}', '[', ']', ',', '-', '1', '9', '.', '\0', '\x7f', 'é');
    fc.assert(fc.property(
      fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: alphabet, maxLength: 200 })),
      (text) => {
        const r = parseConfigTree(text);
        if (!r.ok) assert.equal(typeof r.error, 'string');
        else assert.ok(Array.isArray(r.entries));
      },
    ), { numRuns: 2000 });
  });

  test('extreme 64-bit integers and negatives', () => {
    const text = formatRequest([['request', 'x'], ['a', I64_MIN], ['b', I64_MAX], ['c', -210], ['d', 0]]);
    const m = parseMap(text);
    assert.equal(m.int('a'), I64_MIN);
    assert.equal(m.int('b'), I64_MAX);
    assert.equal(m.int('c'), -210n);
    assert.equal(m.int('d'), 0n);
    // One past either end is a syntax error, not a silent wrap.
    assert.equal(parseConfigTree('a = 9223372036854775808\n').ok, false);
    assert.equal(parseConfigTree('a = -9223372036854775809\n').ok, false);
    assert.equal(parseMap('a = +5\n').int('a'), 5n);
  });

  test('escaping: formatRequest escapes " and \\ ; formatReply writes raw as libdaemon does', () => {
    assert.equal(formatRequest([['request', 'a"b\\c']]), 'request="a\\"b\\\\c"\n');
    assert.equal(formatReply([['response', 'OK'], ['v', 'x']]), 'response = "OK"\nv = "x"\n');
    // libdm's unescape: only \" and \\ ; any other backslash stays.
    assert.equal(parseMap('s = "a\\"b\\\\c\\n"\n').str('s'), 'a"b\\c\\n');
  });
});

describe('exact byte forms from the traces', () => {
  test('lock_gl request from vgcreate (trace 02)', () => {
    const wire = 'request="lock_gl"\ncmd ="vgcreate"\npid =6401\nmode ="ex"\nopts ="none"\nvg_lock_type ="dlm"\n';
    assert.equal(formatRequest([
      ['request', 'lock_gl'], ['cmd', 'vgcreate'], ['pid', 6401], ['mode', 'ex'], ['opts', 'none'], ['vg_lock_type', 'dlm'],
    ]), wire);
    assert.deepEqual(parseOk(wire), [
      ['request', 'lock_gl'], ['cmd', 'vgcreate'], ['pid', 6401n], ['mode', 'ex'], ['opts', 'none'], ['vg_lock_type', 'dlm'],
    ]);
    // The trace message is 92 bytes including the blank line and "##" line.
    assert.equal(encodeFrame(wire).length, 92);
  });

  test('start_vg request (trace 02) parses every field', () => {
    const wire = 'request="start_vg"\npid =6401\nvg_name ="vg1"\nvg_lock_type ="dlm"\nvg_lock_args ="1.0.0:test"\n' +
      'vg_uuid ="Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK"\nversion =2\nhost_id =0\nopts ="start_init"\n';
    const m = parseMap(wire);
    assert.equal(m.str('request'), 'start_vg');
    assert.equal(m.str('vg_uuid'), 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK');
    assert.equal(m.int('version'), 2n);
    assert.equal(m.int('host_id'), 0n);
    assert.equal(m.str('opts'), 'start_init');
    assert.equal(encodeFrame(wire).length, 186);
  });

  test('hello request and reply (trace 01/02), lvmlockctl spelling', () => {
    assert.equal(encodeFrame('request = "hello"\n').toString(), 'request = "hello"\n\n##\n');
    assert.equal(encodeFrame('request = "hello"\n').length, 22);
    const reply = formatReply([['response', 'OK'], ['result', 0], ['protocol', 'lvmlockd'], ['version', 1]]);
    assert.equal(reply, 'response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 1\n');
    assert.equal(encodeFrame(reply).length, 65);
  });

  test('lock_gl -210 reply (trace 02) is 123 bytes', () => {
    const reply = formatReply([
      ['response', 'OK'], ['op', 7], ['lock_type', 'none'], ['op_result', -210], ['lm_result', 0],
      ['result_flags', 'NO_LOCKSPACES,NO_GL_LS,NO_LM'],
    ]);
    assert.equal(reply, 'response = "OK"\nop = 7\nlock_type = "none"\nop_result = -210\nlm_result = 0\nresult_flags = "NO_LOCKSPACES,NO_GL_LS,NO_LM"\n');
    assert.equal(encodeFrame(reply).length, 123);
    assert.equal(parseMap(reply).int('op_result'), -210n);
  });

  test('init_vg reply (trace 02) is 127 bytes', () => {
    const reply = formatReply([
      ['response', 'OK'], ['op', 3], ['op_result', 0], ['lm_result', 0], ['vg_lock_args', '1.0.0:test'],
      ['lv_lock_args', 'none'], ['result_flags', 'none'],
    ]);
    assert.equal(encodeFrame(reply).length, 127);
  });
});

describe('grammar beyond flat keys', () => {
  test('comments, blank lines, whitespace variants', () => {
    const m = parseMap('# leading comment\n\n  a=1 # trailing\n\tb\t=\t"x # not a comment"\r\nc =-3\n#end');
    assert.equal(m.int('a'), 1n);
    assert.equal(m.str('b'), 'x # not a comment');
    assert.equal(m.int('c'), -3n);
    assert.deepEqual(m.keys(), ['a', 'b', 'c']);
  });

  test('sections, nested sections and arrays (flat, commas optional after an item)', () => {
    const entries = parseOk('top { a = 1 inner { b = "x" } }\nlist = [ "a", 2, 3 ]\nempty = []\nf = 1.5\ntrail = [1,]\n');
    assert.deepEqual(entries[0], ['top', { kind: 'section', entries: [['a', 1n], ['inner', { kind: 'section', entries: [['b', 'x']] }]] }]);
    assert.deepEqual(entries[1], ['list', ['a', 2n, 3n]]);
    assert.deepEqual(entries[2], ['empty', []]);
    assert.deepEqual(entries[3], ['f', 1.5]);
    assert.deepEqual(entries[4], ['trail', [1n]]);
    const m = new ConfigMap(entries);
    assert.equal(m.str('top'), undefined);
    assert.equal(m.int('f'), undefined, 'a float is not an int for libdm lookups');
    // libdm lookups read an array's first item.
    assert.equal(m.str('list'), 'a');
    assert.equal(m.int('trail'), 1n);
    assert.equal(m.str('empty'), undefined);
    // Arrays do not nest; two items need a comma between them.
    assert.equal(parseConfigTree('a = [[1]]\n').ok, false);
    assert.equal(parseConfigTree('a = [1 2]\n').ok, false);
  });

  test('idm PV list keys path[0] are identifiers', () => {
    const m = parseMap('path_num =2\npath[0] ="/dev/sda"\npath[1] ="/dev/sdb"\n');
    assert.equal(m.str('path[1]'), '/dev/sdb');
    assert.equal(m.int('path_num'), 2n);
  });

  test('duplicate keys: first match wins; wrong types read as absent', () => {
    const m = parseMap('request = "a"\nrequest = "b"\nn = "12"\ns = 5\n');
    assert.equal(m.str('request'), 'a');
    assert.equal(m.str('s'), undefined);
    assert.equal(m.int('s'), 5n);
    assert.equal(m.int('missing'), undefined);
    assert.equal(m.has('n'), true);
  });

  test('empty and comment-only bodies are empty trees', () => {
    assert.deepEqual(parseOk(''), []);
    assert.deepEqual(parseOk('\n\n# nothing\n'), []);
  });

  test('malformed text comes back as an error value, never an exception', () => {
    const bad = [
      'request\n',
      'request = \n',
      '= "x"\n',
      'a = [1 2]\n',
      '"" = 1\n',
      'a = "\n'.slice(0, 5),
      'request = "unterminated\n',
      'a = 1.2.3\n',
      'a = 0x10\n',
      'a = [1,\n',
      'a { b = 1\n',
      '}\n',
      'a = 1 }\n',
      'a = "x" b\n',
      '\x01\x02\xff = \0',
      'a'.repeat(10) + ' = ' + '['.repeat(100) + ']'.repeat(100),
      'x { '.repeat(100) + '}'.repeat(100),
      'a = 99999999999999999999999\n',
      'a = --1\n',
    ];
    for (const text of bad) {
      const r = parseConfigTree(text);
      assert.equal(r.ok, false, `should fail: ${JSON.stringify(text.slice(0, 40))}`);
      if (!r.ok) assert.match(r.error, /at offset \d+/);
    }
  });

  test('deep nesting is bounded, not a stack overflow', () => {
    const deep = 'a = ' + '['.repeat(200000) + ']'.repeat(200000);
    const r = parseConfigTree(deep);
    assert.equal(r.ok, false);
    const deepSec = 'a {'.repeat(50000) + '}'.repeat(50000);
    assert.equal(parseConfigTree(deepSec).ok, false);
  });
});

describe('libdm lexer compatibility (as lvmlockd 2.03.16 parses requests)', () => {
  // Each case was checked against the C daemon: it answers hello exactly when the
  // parse gives request = "hello".
  const req = (text: string): string | undefined => {
    const r = parseConfigTree(text, { libdmOpenQuotes: true });
    return r.ok ? new ConfigMap(r.entries).str('request') : undefined;
  };
  test('accepted spellings of request = "hello"', () => {
    for (const text of [
      'request = "hello"\n', 'request="hello"\n', 'request = hello\n', 'request=hello\n', "request = 'hello'\n",
      '"request" = "hello"\n', "'request' = hello\n", 'request = ["hello"]\n', 'request = [hello , 1]\n',
      'request = "hello"\n\0garbage }}}\n', 'request = "hello"\nsec { a = 1 }\n', 'request = "hello"\nx = -\n',
      'request = "hello # not a comment"'.replace(' # not a comment', ''), 'request = hello#comment\n',
      'request = "hello"\nrequest = "bogus"\n',
    ]) {
      assert.equal(req(text), 'hello', JSON.stringify(text));
    }
  });
  test('an unclosed quote runs to the end of the text and loses its last character', () => {
    assert.equal(req('request = "hello\n'), 'hello');
    assert.equal(req("request = 'hello\n"), 'hello');
    assert.equal(req('request = "hellox'), 'hello');
    assert.equal(parseConfigTree('request = "', { libdmOpenQuotes: true }).ok, false);
    // Without the option (replies read by lvmlockctl) an open quote is an error.
    assert.equal(parseConfigTree('request = "hello\n').ok, false);
    assert.equal(parseConfigTree("request = 'hello\n").ok, false);
  });
  test('rejected or not hello', () => {
    for (const text of [
      'request = "hello" garbage\n', 'request = "hello"\npid = 99999999999999999999\n', 'request = "hello"\nx = [1 2 3]\n',
      'request = "hello"\nx = 1.2.3\n', 'request = "hello"\nx = 0x10\n', 'request = "hello"\nsec { a = 1 \n',
      'request = "hello"\n"" = 1\n', 'request = "hello"\n= 1\n',
      // A bare word runs up to a space, '#', '=', '{' or '}': "hello," swallows the comma.
      'request = [hello, 1]\n',
    ]) {
      assert.equal(parseConfigTree(text).ok, false, JSON.stringify(text));
    }
    assert.equal(req('request = "hel\\lo"\n'), 'hel\\lo');
    assert.equal(req('request = "bogus"\nrequest = "hello"\n'), 'bogus');
  });
  test('numbers as strtoll/strtod read them', () => {
    const m = parseMap('a = 010\nb = -010\nc = 09\nd = +\ne = .5\nf = 5.\ng = -0\n');
    assert.equal(m.int('a'), 8n);
    assert.equal(m.int('b'), -8n);
    assert.equal(m.int('c'), 0n);
    assert.equal(m.int('d'), 0n);
    assert.equal(m.raw('e'), 0.5);
    assert.equal(m.raw('f'), 5);
    assert.equal(m.int('g'), 0n);
    // A word starting with a digit is a value only after '=', '[' or ','.
    assert.equal(parseConfigTree('9key = 1\n').ok, true);
    assert.equal(parseMap('9key = 1\n').int('9key'), 1n);
  });
  test('strings: only \\" and \\\\ are unescaped; single quotes are raw', () => {
    assert.equal(parseMap('s = "a\\"b\\\\c\\td"\n').str('s'), 'a"b\\c\\td');
    assert.equal(parseMap("s = 'a\\\"b'\n").str('s'), 'a\\\"b');
  });
});

describe('FrameDecoder / encodeFrame', () => {
  const msgs = (evs: ReturnType<FrameDecoder['push']>): string[] =>
    evs.map((e) => (e.kind === 'message' ? e.text : `<overflow ${e.bytes}>`));

  test('encodeFrame adds a newline only when missing, then the terminator', () => {
    assert.equal(encodeFrame('a = 1\n').toString(), 'a = 1\n\n##\n');
    assert.equal(encodeFrame('a = 1').toString(), 'a = 1\n\n##\n');
    assert.equal(TERMINATOR, '\n##\n');
  });

  test('one whole message: text keeps the terminator\'s first newline, body is without the terminator', () => {
    const d = new FrameDecoder();
    const ev = d.push(encodeFrame('request = "hello"\n'));
    assert.deepEqual(ev, [{ kind: 'message', text: 'request = "hello"\n\n', body: 'request = "hello"\n' }]);
    assert.equal(d.pendingBytes, 0);
  });

  test('byte-by-byte feeding yields each message exactly once, at its last byte', () => {
    const wire = Buffer.concat([encodeFrame('a = 1\n'), encodeFrame('b = "x"\n'), encodeFrame('c = 2\n')]);
    const d = new FrameDecoder();
    const got: Array<[number, string]> = [];
    for (let i = 0; i < wire.length; i++) {
      for (const m of msgs(d.push(wire.subarray(i, i + 1)))) got.push([i, m]);
    }
    assert.deepEqual(got.map((g) => g[1]), ['a = 1\n\n', 'b = "x"\n\n', 'c = 2\n\n']);
    // Each message is announced when its terminator's last byte arrives.
    const ends: number[] = [];
    let off = 0;
    for (const b of ['a = 1\n', 'b = "x"\n', 'c = 2\n']) { off += encodeFrame(b).length; ends.push(off - 1); }
    assert.deepEqual(got.map((g) => g[0]), ends);
  });

  test('terminator split across chunks at every position', () => {
    const wire = encodeFrame('request = "hello"\n');
    for (let cut = 1; cut < wire.length; cut++) {
      const d = new FrameDecoder();
      const a = msgs(d.push(wire.subarray(0, cut)));
      const b = msgs(d.push(wire.subarray(cut)));
      assert.deepEqual([...a, ...b], ['request = "hello"\n\n'], `cut at ${cut}`);
    }
  });

  test('several messages and a partial one in a single chunk', () => {
    const d = new FrameDecoder();
    const chunk = Buffer.concat([encodeFrame('a = 1'), encodeFrame('b = 2'), Buffer.from('c = 3\n\n#')]);
    assert.deepEqual(msgs(d.push(chunk)), ['a = 1\n\n', 'b = 2\n\n']);
    assert.equal(d.pendingBytes, 'c = 3\n\n#'.length);
    assert.deepEqual(msgs(d.push(Buffer.from('#\n'))), ['c = 3\n\n']);
    assert.equal(d.pendingBytes, 0);
  });

  test('a read that ends with a terminator (the one-request fast path) decodes as the byte-wise search does', () => {
    // Reference: search the bytes for the terminator and decode each message's bytes alone.
    const reference = (wire: Buffer): { texts: string[]; rest: number } => {
      const texts: string[] = [];
      let buf = wire;
      for (let at = buf.indexOf(TERMINATOR); at >= 0; at = buf.indexOf(TERMINATOR)) {
        texts.push(buf.subarray(0, at + 1).toString('utf8'));
        buf = buf.subarray(at + TERMINATOR.length);
      }
      return { texts, rest: buf.length };
    };
    // Pieces near the terminator and UTF-8 edge cases: lone continuation bytes, cut sequences, 0xff.
    const pieces = ['\n', '#', '##', '\n##', 'a', ' = ', '"', 'é', '€', '😀'].map((t) => Buffer.from(t))
      .concat([[0xff], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0x80], [0x00]].map((b) => Buffer.from(b)));
    let seed = 12345;
    const rand = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 16) % n; };
    for (let i = 0; i < 5000; i++) {
      const parts: Buffer[] = [];
      const len = rand(12);
      for (let j = 0; j < len; j++) parts.push(pieces[rand(pieces.length)]!);
      if (rand(4) !== 0) parts.push(Buffer.from(TERMINATOR));
      const wire = Buffer.concat(parts);
      const d = new FrameDecoder();
      const ev = d.push(wire);
      const ref = reference(wire);
      assert.deepEqual(ev, ref.texts.map((text) => ({ kind: 'message', text, body: text.slice(0, -1) })), JSON.stringify([...wire]));
      assert.equal(d.pendingBytes, ref.rest);
    }
  });

  test('"##" inside a line or without the leading newline is not a terminator', () => {
    const d = new FrameDecoder();
    assert.deepEqual(msgs(d.push(Buffer.from('a = "##"\nb##\n'))), []);
    assert.deepEqual(msgs(d.push(Buffer.from('\n##\n'))), ['a = "##"\nb##\n\n']);
  });

  test('multi-byte UTF-8 split across chunks decodes intact', () => {
    const wire = encodeFrame('s = "é€😀"\n');
    const d = new FrameDecoder();
    const out: string[] = [];
    for (let i = 0; i < wire.length; i++) out.push(...msgs(d.push(wire.subarray(i, i + 1))));
    assert.deepEqual(out, ['s = "é€😀"\n\n']);
  });

  test('overflow: a message larger than the bound is refused and the buffer is dropped', () => {
    const d = new FrameDecoder(64);
    assert.deepEqual(msgs(d.push(Buffer.alloc(64, 0x61))), []);
    assert.equal(d.pendingBytes, 64);
    const ev = d.push(Buffer.from('a'));
    assert.deepEqual(ev, [{ kind: 'overflow', bytes: 65 }]);
    assert.equal(d.pendingBytes, 0);
    // The decoder is usable again afterwards.
    assert.deepEqual(msgs(d.push(encodeFrame('a = 1'))), ['a = 1\n\n']);
  });

  test('overflow bound counts only the unterminated tail, not whole messages already cut', () => {
    const d = new FrameDecoder(32);
    const big = Buffer.concat(Array.from({ length: 10 }, () => encodeFrame('a = 1234567890')));
    const out = msgs(d.push(big));
    assert.equal(out.length, 10);
    assert.ok(out.every((m) => m === 'a = 1234567890\n\n'));
  });

  test('default bound is 16 MiB', () => {
    assert.equal(MAX_MESSAGE_BYTES, 16 * 1024 * 1024);
    const d = new FrameDecoder();
    const mib = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 16; i++) assert.deepEqual(d.push(mib), []);
    assert.deepEqual(d.push(Buffer.from('x')), [{ kind: 'overflow', bytes: 16 * 1024 * 1024 + 1 }]);
  });

  test('a large message fed in socket-sized chunks costs linear time (no re-join per read)', () => {
    const d = new FrameDecoder();
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const t0 = process.hrtime.bigint();
    let events: ReturnType<FrameDecoder['push']> = [];
    for (let i = 0; i < 272 && events.length === 0; i++) events = d.push(chunk);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.deepEqual(events, [{ kind: 'overflow', bytes: 16 * 1024 * 1024 + 64 * 1024 }]);
    // Re-joining the buffer on every read took over a second here.
    assert.ok(ms < 400, `took ${ms} ms`);
    // A large valid message arriving in pieces is still found whole.
    const body = 'a = "' + 'x'.repeat(3 * 1024 * 1024) + '"\n';
    const wire = encodeFrame(body);
    const out: string[] = [];
    for (let off = 0; off < wire.length; off += 65536) out.push(...msgs(d.push(wire.subarray(off, off + 65536))));
    assert.deepEqual(out, [body + '\n']);
  });

  test('property: any chunking of a message stream yields the same messages', () => {
    const bodyArb = fc.array(fc.tuple(keyArb, fc.oneof(anyStringArb, intArb)), { minLength: 1, maxLength: 4 })
      .map((f) => formatRequest(f));
    fc.assert(fc.property(
      fc.array(bodyArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }),
      (bodies, sizes) => {
        const wire = Buffer.concat(bodies.map((b) => encodeFrame(b)));
        const d = new FrameDecoder();
        const out: string[] = [];
        let off = 0;
        let i = 0;
        while (off < wire.length) {
          const n = sizes[i++ % sizes.length]!;
          out.push(...msgs(d.push(wire.subarray(off, off + n))));
          off += n;
        }
        // A body may itself contain "\n##\n" inside a quoted string (formatRequest does not
        // escape newlines), in which case libdaemon would split it too; compare with a
        // reference split of the whole stream.
        const ref = wire.toString('utf8').split(TERMINATOR);
        ref.pop();
        assert.deepEqual(out, ref.map((t) => t + '\n'));
        assert.equal(d.pendingBytes, 0);
      },
    ), { numRuns: 300 });
  });
});

describe('parseFlat: the shortcut for the flat form lvm commands send', () => {
  // Pieces that make lines of the flat form and, mixed in, everything near it
  // that the shortcut must leave to the general parser.
  const keyPiece = fc.constantFrom('request', 'pid', 'vg_name', 'lv_uuid', 'x', '_k2', 'Key', 'a-b', '1k', 'k.x', '');
  const eqPiece = fc.constantFrom('=', ' =', '= ', ' = ', '  =', '\t=', '=\t', '');
  const valuePiece = fc.oneof(
    fc.constantFrom('"lock_lv"', '"none"', '""', '"a b#c"', '"x\\"y"', '"a\\\\"', '"open', "'sq'", '0', '00', '012', '-5', '+5',
      '123456789012345', '1234567890123456', '99999999999999999999', '1.5', '.5', 'bare', '"ü€"', '"a\nb"', '"nul\0"', '[1]', '{'),
    fc.integer({ min: 0, max: 2 ** 31 }).map(String),
    plainStringArb.map((v) => `"${v}"`),
  );
  const endPiece = fc.constantFrom('\n', '\n', '\n', '', ' \n', '\n\n', '#c\n', '\r\n');
  const lineArb = fc.tuple(keyPiece, eqPiece, valuePiece, endPiece).map((p) => p.join(''));

  test('property: whenever the shortcut answers, the general parser gives the same entries', () => {
    let answered = 0;
    fc.assert(fc.property(fc.array(lineArb, { maxLength: 8 }), (lines) => {
      const text = lines.join('');
      const flat = parseFlat(text);
      if (flat === null) return;
      answered++;
      for (const openQuotes of [false, true]) {
        const r = parseConfigTreeGeneral(text, { libdmOpenQuotes: openQuotes });
        assert.ok(r.ok, `general parser refused ${JSON.stringify(text)}`);
        assert.deepEqual(flat, r.entries, JSON.stringify(text));
      }
    }), { numRuns: 5000 });
    assert.ok(answered > 500, `the shortcut answered only ${answered} of 5000 texts`);
  });

  test('property: the character scan and the FLAT_LINE regex answer for the same texts, with the same entries', () => {
    let answered = 0;
    fc.assert(fc.property(fc.array(lineArb, { maxLength: 8 }), (lines) => {
      const text = lines.join('');
      const flat = parseFlat(text);
      assert.deepEqual(flat, parseFlatRegex(text), JSON.stringify(text));
      if (flat !== null) answered++;
    }), { numRuns: 5000 });
    assert.ok(answered > 500, `the shortcut answered only ${answered} of 5000 texts`);
    // Any text from the characters that matter, not only line-shaped ones.
    fc.assert(fc.property(fc.array(fc.constantFrom('a', 'z', '_', '0', '1', '9', ' ', '=', '"', '\\', '\n', '\0', '#', 'A', '-', 'é'), { maxLength: 24 }),
      (cs) => { const text = cs.join(''); assert.deepEqual(parseFlat(text), parseFlatRegex(text), JSON.stringify(text)); }), { numRuns: 20000 });
  });

  test('ConfigMap: first occurrence wins, short lists scanned and long ones through a Map alike', () => {
    for (const n of [3, 40]) {
      const entries: Array<[string, ConfigValue]> = [];
      for (let i = 0; i < n; i++) entries.push([`k${i % 5}`, i % 2 ? BigInt(i) : `v${i}`]);
      const m = new ConfigMap(entries);
      assert.deepEqual(m.keys(), ['k0', 'k1', 'k2', 'k3', 'k4'].slice(0, Math.min(n, 5)));
      assert.equal(m.str('k0'), 'v0');
      assert.equal(m.int('k1'), 1n);
      assert.equal(m.str('k1'), undefined);
      assert.equal(m.has('k2'), true);
      assert.equal(m.has('k9'), false);
      assert.equal(m.raw('k9'), undefined);
    }
  });

  test('lvm request shapes take the shortcut, and parseConfigTree gives its entries', () => {
    const lockLv = formatRequest([
      ['request', 'lock_lv'], ['cmd', 'lvchange'], ['pid', 4242], ['mode', 'ex'], ['opts', 'none'],
      ['vg_name', 'vg1'], ['lv_name', 'lv1'], ['lv_uuid', 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'],
      ['vg_lock_type', 'sanlock'], ['vg_lock_args', '1.0.0:lvmlock'], ['lv_lock_args', '1.0.0:70254592'],
    ]);
    for (const text of [lockLv, lockLv.slice(0, -1), 'request = "hello"\n', formatReply([['response', 'OK'], ['op_result', 0]])]) {
      const flat = parseFlat(text);
      assert.ok(flat, JSON.stringify(text));
      assert.deepEqual(flat, (parseConfigTreeGeneral(text) as { entries: unknown }).entries);
      assert.deepEqual(parseConfigTree(text), { ok: true, entries: flat });
    }
    // Not flat: each goes to the general parser, which still reads it.
    for (const text of ['pid = -5\n', 'pid = 012\n', 'k = "a\\"b"\n', 'k = 1.5\n', 'k = [1, 2]\n', 'k = "x" # c\n', 's { a = 1 }\n']) {
      assert.equal(parseFlat(text), null, JSON.stringify(text));
      assert.ok(parseConfigTree(text).ok, JSON.stringify(text));
    }
  });
});

test('commonReply gives the text formatReply gives for op, lock_type, op_result, lm_result, result_flags', async () => {
  const { commonReply } = await import('../../src/core/lockd');
  const { formatReply: fmt } = await import('../../src/protocol/config-tree');
  const ops = [1, 5, 6, 7, 12, 23, 30];
  const lms = ['dlm', 'sanlock', 'idm', 'none'];
  const results = [0, -1, -11, -210, -221, 1, 3];
  const flagsList = ['none', 'NO_LOCKSPACES,', 'NO_GL_LS,NO_LM', 'SH_EXISTS,HOSTS_UNKNOWN,'];
  let n = 0;
  for (const op of ops) for (const lm of lms) for (const result of results) for (const lmResult of [0, -2, 7]) for (const flags of flagsList) {
    const want = fmt([['response', 'OK'], ['op', op], ['lock_type', lm], ['op_result', result], ['lm_result', lmResult], ['result_flags', flags]]);
    assert.equal(commonReply(op, lm, result, lmResult, flags), want, JSON.stringify({ op, lm, result, lmResult, flags }));
    n++;
  }
  assert.equal(n, 7 * 4 * 7 * 3 * 4);
});
