// Every known request name, with random subsets of fields and hostile values,
// sent to LockdCore one after another by a few clients: the core must never
// throw, must answer each request exactly once (a lock request may wait for
// another client's lock, and stop_all with "wait" may wait for locks to go,
// until the end of the run), and must keep answering hello.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CoreHarness, Reply, startVg } from '../helpers/core-harness';
import { REQUESTS } from '../../src/core/constants';
import type { WireValue } from '../../src/protocol/config-tree';

const NAMES = [...REQUESTS.keys()];

/** Mostly plausible values per field, sometimes hostile ones. */
const hostile = fc.oneof(
  fc.constantFrom('', 'none', 'x'.repeat(300), 'a b', 'ü', '"', '\\', 'bogus'),
  fc.string({ maxLength: 12 }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);
const plausible: Record<string, fc.Arbitrary<WireValue>> = {
  cmd: fc.constantFrom('lvchange', 'vgchange', 'lvmlockctl'),
  pid: fc.constantFrom(1, 4242),
  vg_name: fc.constantFrom('vg1', 'vg1', 'vgs', 'vg2'),
  vg_uuid: fc.constantFrom('Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'),
  mode: fc.constantFrom('ex', 'sh', 'un', 'un', 'nl'),
  opts: fc.constantFrom('none', 'persistent', 'force', 'wait', 'unlock_cancel', 'next_version', 'persistent,unlock_cancel', 'start_init', 'nodelay'),
  vg_lock_type: fc.constantFrom('none', 'none', 'none', 'dlm', 'sanlock'),
  vg_lock_args: fc.constantFrom('none', '1.0.0:test', '1.0.0:lvmlock'),
  lv_name: fc.constantFrom('lv1', 'lv2'),
  lv_uuid: fc.constantFrom('lvuuid-0000', 'lvuuid-1111'),
  lv_lock_args: fc.constantFrom('dlm', 'none', '1.0.0:70254592'),
  prev_lv_args: fc.constantFrom('none', '1.0.0:70254592'),
  set_lock_args: fc.constantFrom('none', 'notimeout'),
  version: fc.integer({ min: 0, max: 10 }),
  host_id: fc.constantFrom(0, 1, 2000, 2001),
  align_mb: fc.constantFrom(0, 1, 8),
  lv_size_bytes: fc.constantFrom(0, 268435456),
  path: fc.constantFrom('/dev/vg1/lv1'),
  max_retries: fc.constantFrom(0, 4),
};
const FIELDS = Object.keys(plausible);

/** Each field present with probability 2/3, mostly plausible; shuffled; sometimes duplicated. */
const requestArb = fc.record({
  client: fc.integer({ min: 0, max: 2 }),
  name: fc.constantFrom(...NAMES),
  values: fc.tuple(...FIELDS.map((k) => fc.option(
    fc.oneof({ weight: 12, arbitrary: plausible[k]! }, { weight: 1, arbitrary: hostile }), { freq: 3 }))),
  dup: fc.option(fc.tuple(fc.constantFrom(...FIELDS), hostile), { freq: 5 }),
  order: fc.infiniteStream(fc.nat()),
}).map(({ client, name, values, dup }) => {
  const fields: Array<[string, WireValue]> = [['request', name]];
  values.forEach((v, i) => { if (v !== null) fields.push([FIELDS[i]!, v]); });
  if (dup) fields.push(dup);
  return { client, name, fields };
});

test('property: any known request with any fields gets exactly one reply and never throws', async () => {
  await fc.assert(fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 30 }), async (reqs) => {
    const h = new CoreHarness({ devices: ['/dev/mapper/vgs-lvmlock'] });
    const admin = h.connect();
    assert.equal((await h.req(admin, startVg('vg1', 'dlm'))).opResult, 0);
    const clients = [h.connect(), h.connect(), h.connect()];
    const pending = new Map<number, string>();
    for (const r of reqs) {
      const id = clients[r.client]!;
      if (pending.has(id)) continue;
      h.send(id, r.fields);
      pending.set(id, r.name);
      await h.settle();
      for (const c of clients) {
        const got = h.take(c);
        assert.ok(got.length <= 1, `client ${c} got ${got.length} replies`);
        if (got.length === 0) continue;
        assert.ok(pending.has(c), `unexpected reply to client ${c}: ${got[0]}`);
        pending.delete(c);
        const rep = new Reply(got[0]!);
        assert.equal(rep.str('response'), 'OK');
      }
      if (h.quitCalled) break;
      const still = pending.get(id);
      if (still !== undefined) {
        assert.ok(/^lock_|^stop_all$/.test(still), `${still} got no reply: ${fc.stringify(r.fields)}`);
      }
    }
    // Whoever waits is released when the others go away.
    for (const c of clients) {
      if (!pending.has(c)) { h.disconnect(c); await h.settle(); }
    }
    const probe = h.connect();
    assert.equal((await h.req(probe, 'request = "hello"\n')).str('protocol'), 'lvmlockd');
  }), { numRuns: 400 });
});
