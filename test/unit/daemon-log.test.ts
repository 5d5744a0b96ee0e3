import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LOG_WARNING, LogRing, syslogPriority } from '../../src/daemon/log';

test('log ring keeps everything until full, oldest first', () => {
  const r = new LogRing(64);
  r.append('1 a\n');
  r.append('2 bb\n');
  assert.equal(r.text(), '1 a\n2 bb\n');
});

test('log ring drops the oldest whole lines once wrapped', () => {
  const r = new LogRing(16);
  for (let i = 0; i < 10; i++) r.append(`line${i}\n`);
  const text = r.text();
  assert.ok(text.endsWith('line9\n'));
  assert.ok(Buffer.byteLength(text) <= 16);
  for (const l of text.split('\n').filter(Boolean)) assert.match(l, /^line\d$/);
});

test('property: the ring always holds a suffix of the log made of whole lines', () => {
  fc.assert(fc.property(
    fc.integer({ min: 8, max: 200 }),
    fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'é', 'x'), maxLength: 30 }), { maxLength: 60 }),
    (cap, lines) => {
      const r = new LogRing(cap);
      let all = '';
      for (const l of lines) { r.append(l + '\n'); all += l + '\n'; }
      const text = r.text();
      assert.ok(all.endsWith(text), 'ring text is a suffix of everything written');
      assert.ok(Buffer.byteLength(text) <= cap);
      assert.ok(text === '' || text.endsWith('\n'));
      if (Buffer.byteLength(all) <= cap) assert.equal(text, all);
    },
  ));
});

/** What the ring must show after `all` was logged: its last `cap` bytes, from the first whole line once wrapped. */
function ringReference(all: string, cap: number): string {
  const bytes = Buffer.from(all);
  if (bytes.length <= cap) return all;
  const tail = bytes.subarray(bytes.length - cap);
  const nl = tail.indexOf(0x0a);
  return nl < 0 ? '' : tail.subarray(nl + 1).toString('utf8');
}

test('property: the ring text does not depend on how the log was cut into appends or when it was read', () => {
  fc.assert(fc.property(
    fc.integer({ min: 8, max: 300 }),
    fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'é', '€', 'x', '\n'), maxLength: 40 }), { maxLength: 80 }),
    fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 20 }),
    (cap, pieces, cuts) => {
      const r = new LogRing(cap);
      let i = 0;
      let k = 0;
      let all = '';
      while (i < pieces.length) {
        const n = 1 + cuts[k++ % cuts.length]!;
        const chunk = pieces.slice(i, i + n).join('');
        r.append(chunk);
        all += chunk;
        i += n;
        if (n === 3) assert.equal(r.text(), ringReference(all, cap)); // a read in between flushes early
      }
      assert.equal(r.text(), ringReference(all, cap));
    },
  ), { numRuns: 1000 });
});

test('a long log in many small lines wraps the 4 MiB ring exactly as byte-wise appends would', () => {
  const r = new LogRing();
  let total = 0;
  const lines: string[] = [];
  for (let i = 0; total < 5 * 1024 * 1024; i++) {
    const l = `${1700000000 + (i >> 10)} S lvm_vgb:B0a001xx-Bnch lock ex ${i}\n`;
    lines.push(l);
    total += l.length;
    r.append(l);
  }
  const bytes = Buffer.from(lines.join(''));
  const tail = bytes.subarray(bytes.length - r.capacity);
  const expected = tail.subarray(tail.indexOf(0x0a) + 1).toString('utf8');
  assert.equal(r.text(), expected);
});

test('syslog priority names: the known ones, warning for anything else (names every object inherits too)', () => {
  assert.equal(syslogPriority('err'), 3);
  assert.equal(syslogPriority('debug'), 7);
  for (const name of ['bogus', '', 'constructor', 'toString', '__proto__']) assert.equal(syslogPriority(name), LOG_WARNING, name);
});
