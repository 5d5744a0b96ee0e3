import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LogRing } from '../../src/daemon/log';

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
