// requestFields (src/protocol/request-fields.ts) takes the keys lvmlockd reads
// out of a request in one pass; the daemon's core used to look each one up in a
// ConfigMap. These tests hold it to exactly what those lookups give.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigMap, parseConfigTree, type ConfigValue } from '../../src/protocol/config-tree';
import { REQUEST_FIELD_KEYS, requestFields, type RequestFields } from '../../src/protocol/request-fields';

const INT_FIELDS = new Set<keyof RequestFields>(['pid', 'version', 'hostId', 'alignMb', 'lvSizeBytes', 'pathNum', 'maxRetries']);
const FIELDS = Object.keys(REQUEST_FIELD_KEYS) as Array<keyof RequestFields>;
const WIRE_KEYS = Object.values(REQUEST_FIELD_KEYS);

/** What the core's lookups gave for each field: ConfigMap's str() or int(). */
function byLookups(entries: ReadonlyArray<readonly [string, ConfigValue]>): RequestFields {
  const m = new ConfigMap(entries);
  const out: Record<string, unknown> = {};
  for (const f of FIELDS) out[f] = INT_FIELDS.has(f) ? m.int(REQUEST_FIELD_KEYS[f]) : m.str(REQUEST_FIELD_KEYS[f]);
  return out as unknown as RequestFields;
}

// Keys: every known key, keys of the same lengths that differ in one character,
// and other identifiers; values of every type the parser produces.
const nearMiss = fc.tuple(fc.constantFrom(...WIRE_KEYS), fc.nat(), fc.constantFrom('x', '_', 'A', '0'))
  .map(([k, i, c]) => { const at = i % k.length; return k.slice(0, at) + c + k.slice(at + 1); });
const keyArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...WIRE_KEYS) },
  { weight: 2, arbitrary: nearMiss },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z_][a-z0-9_[\]]{0,14}$/) },
);
const scalarArb: fc.Arbitrary<ConfigValue> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constant('none'),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.double({ noNaN: true }),
);
const valueArb: fc.Arbitrary<ConfigValue> = fc.oneof(
  { weight: 6, arbitrary: scalarArb },
  { weight: 1, arbitrary: fc.array(scalarArb, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.array(fc.tuple(keyArb, scalarArb), { maxLength: 2 }).map((entries) => ({ kind: 'section' as const, entries })) },
);
const entryArb = fc.tuple(keyArb, valueArb);

describe('requestFields', () => {
  test('property: every field equals the ConfigMap lookup (first entry of a key decides, arrays by their first item, type-checked)', () => {
    fc.assert(fc.property(fc.array(entryArb, { maxLength: 40 }), (entries) => {
      assert.deepEqual(requestFields(entries), byLookups(entries));
    }), { numRuns: 5000 });
  });

  test('a lock_lv as lvm sends it', () => {
    const text = 'request="lock_lv"\ncmd ="lvchange"\npid =4242\nmode ="ex"\nopts ="none"\nvg_name ="vg1"\n' +
      'lv_name ="lv1"\nlv_uuid ="Aaaaaa-Bbbb-Cccc-Dddd-Eeee-Ffff-Gggggg"\nvg_lock_type ="sanlock"\n' +
      'vg_lock_args ="1.0.0:lvmlock"\nlv_lock_args ="1.0.0:70254592"\n';
    const r = parseConfigTree(text);
    assert.ok(r.ok);
    const f = requestFields(r.entries);
    assert.equal(f.request, 'lock_lv');
    assert.equal(f.pid, 4242n);
    assert.equal(f.lvLockArgs, '1.0.0:70254592');
    assert.equal(f.hostId, undefined);
    assert.deepEqual(f, byLookups(r.entries));
  });

  test('every field is reached by its own key, and only by it', () => {
    for (const [i, f] of FIELDS.entries()) {
      const v: ConfigValue = INT_FIELDS.has(f) ? BigInt(i + 1) : `v${i}`;
      const got = requestFields([[REQUEST_FIELD_KEYS[f], v]]);
      for (const g of FIELDS) assert.equal(got[g], g === f ? v : undefined, `${REQUEST_FIELD_KEYS[f]} -> ${g}`);
    }
  });

  test('a first entry of the wrong type hides a later one of the right type', () => {
    const f = requestFields([['pid', 'x'], ['pid', 7n], ['vg_name', 3n], ['vg_name', 'vg']]);
    assert.equal(f.pid, undefined);
    assert.equal(f.vgName, undefined);
  });
});
