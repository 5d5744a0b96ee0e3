// Protocol fuzzing of the real request handler (LockdCore.request) with
// fast-check: random requests built from the protocol's vocabulary with
// hostile values, mutated valid frames (flipped, dropped, duplicated bytes,
// truncation) and raw garbage, from several clients, some of which vanish.
//
// Asserted for every frame: the core does not throw; it answers with one
// parsable reply (response "failed" for a frame it cannot parse or a request
// it does not know), or none only for a lock request that waits; no lockspace
// loop or worker job fails. After every run: a persistent ex LV lock taken at the
// start is still held (an lvm command asking for it again gets -EALREADY),
// and a new client still gets its hello.
//
// FUZZ_CORE_RUNS (default 300) and FUZZ_CORE_SEED tune it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CoreHarness, Reply, lockLv, startVg } from '../helpers/core-harness';
import { REQUESTS } from '../../src/core/constants';
import { ConfigMap, formatRequest, parseConfigTree, type WireValue } from '../../src/protocol/config-tree';

const VG = 'vg1';
const LV_PERSIST = 'Pers1s-tent-LVAA-AAAA-AAAA-AAAA-AAAAAA';
const RUNS = Number(process.env.FUZZ_CORE_RUNS ?? 300);
const SEED = process.env.FUZZ_CORE_SEED ? Number(process.env.FUZZ_CORE_SEED) : undefined;

/** Requests that may legitimately drop the protected lock or its VG; never aimed at vg1/LV_PERSIST. */
const DESTRUCTIVE = new Set(['stop_vg', 'kill_vg', 'drop_vg', 'free_vg', 'free_lv', 'rename_vg_before', 'rename_vg_final', 'stop_all', 'setlockargs_vg_before', 'setlockargs_vg_final', 'busy_vg']);

const hostileString = fc.oneof(
  fc.constantFrom('', 'none', 'vg1', 'vg2', 'ex', 'sh', 'un', 'nl', 'persistent', 'dlm', 'sanlock', 'idm', '1.0.0:test', '1.0.0:lvmlock', 'x'.repeat(300)),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.stringMatching(/^[a-z_]{0,12}$/),
);
const hostileInt = fc.oneof(fc.constantFrom(0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 2 ** 53), fc.integer());
const fieldNames = ['cmd', 'pid', 'mode', 'opts', 'vg_name', 'vg_uuid', 'lv_name', 'lv_uuid', 'vg_lock_type', 'vg_lock_args', 'lv_lock_args',
  'version', 'host_id', 'align_mb', 'lv_size_bytes', 'path', 'max_retries', 'prev_lv_args', 'set_lock_args', 'junk'];

type Frame = { kind: 'request'; name: string; fields: Array<[string, WireValue]> } | { kind: 'raw'; text: string };

const requestFrame: fc.Arbitrary<Frame> = fc
  .record({
    name: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...[...REQUESTS.keys()]) }, { weight: 1, arbitrary: hostileString }),
    fields: fc.array(fc.tuple(fc.constantFrom(...fieldNames), fc.oneof(hostileString, hostileInt)), { maxLength: 10 }),
  })
  .map(({ name, fields }) => {
    const out: Array<[string, WireValue]> = [];
    for (const [k, v] of fields) {
      // Keep the protected VG and LV out of reach of requests that may legitimately release them.
      if ((k === 'vg_name' && v === VG && DESTRUCTIVE.has(name)) || (k === 'lv_uuid' && v === LV_PERSIST)) continue;
      if (DESTRUCTIVE.has(name) && k === 'opts') continue;
      out.push([k, v]);
    }
    if (DESTRUCTIVE.has(name) && !out.some(([k]) => k === 'vg_name')) out.push(['vg_name', 'vg2']);
    return { kind: 'request' as const, name, fields: out };
  });

const validLock = fc
  .record({ lv: fc.constantFrom('lvuuid-0000', 'lvuuid-1111'), mode: fc.constantFrom('ex', 'sh', 'un'), persistent: fc.boolean() })
  .map(({ lv, mode, persistent }) => formatRequest(lockLv(VG, lv, mode, persistent ? 'persistent' : 'none')));

const mutated: fc.Arbitrary<Frame> = fc
  .tuple(validLock, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
  .map(([text, muts]) => {
    let t = text;
    for (const [pos, kind, byte] of muts) {
      const i = t.length ? pos % t.length : 0;
      if (kind === 0) t = t.slice(0, i) + String.fromCharCode(byte) + t.slice(i + 1);
      else if (kind === 1) t = t.slice(0, i) + t.slice(i + 1 + (byte % 8));
      else if (kind === 2) t = t.slice(0, i) + t.slice(i, i + (byte % 24)) + t.slice(i);
      else if (kind === 3) t = t.slice(0, i);
      else t = t.slice(0, i) + '"' + t.slice(i);
    }
    // A mutation must not turn into a request against the protected LV (checked by the property).
    return { kind: 'raw' as const, text: t };
  });

const garbage: fc.Arbitrary<Frame> = fc.oneof(
  fc.string({ maxLength: 200 }).map((text) => ({ kind: 'raw' as const, text })),
  fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'raw' as const, text })),
  fc.constantFrom('a = [', 'request = "hello', 'request = [1,2,3]\n', '[[[[[[[[', 'request = 1e999\n', 'request="lock_lv"\nlv_uuid = 9999999999999999999999\n').map((text) => ({ kind: 'raw' as const, text })),
);

const action = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('frame' as const), client: fc.integer({ min: 0, max: 3 }), frame: fc.oneof(requestFrame, mutated, garbage) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('vanish' as const), client: fc.integer({ min: 0, max: 3 }) }) },
);

function touchesProtected(text: string): boolean {
  return text.includes(LV_PERSIST) || /stop_vg|kill_vg|drop_vg|free_vg|stop_all|rename_vg|setlockargs|busy_vg/.test(text);
}

test('fuzz: LockdCore.request survives random, mutated and garbage frames; held locks unaffected', async () => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 40 }), async (actions) => {
      runs++;
      const h = new CoreHarness({ devices: ['/dev/mapper/vg1-lvmlock'] });
      const admin = h.connect();
      assert.equal((await h.req(admin, startVg(VG, 'dlm'))).opResult, 0);
      await h.req(admin, [['request', 'start_wait'], ['pid', 1]]);
      assert.equal((await h.req(admin, lockLv(VG, LV_PERSIST, 'ex', 'persistent'))).opResult, 0);
      const clients = [h.connect(), h.connect(), h.connect(), h.connect()];
      const inFlight = new Map<number, number>();
      for (const a of actions) {
        const id = clients[a.client]!;
        if (a.t === 'vanish') {
          h.disconnect(id);
          clients[a.client] = h.connect();
          await h.settle();
          continue;
        }
        const text = a.frame.kind === 'raw' ? a.frame.text : formatRequest([['request', a.frame.name], ...a.frame.fields]);
        if (a.frame.kind === 'raw' && touchesProtected(text)) continue;
        if (inFlight.get(id)) continue; // one request in flight per client, as libdaemon clients do
        h.take(id);
        assert.doesNotThrow(() => h.send(id, text), `core threw on ${JSON.stringify(text.slice(0, 200))}`);
        await h.settle();
        const replies = h.take(id);
        assert.ok(replies.length <= 1, `${replies.length} replies to ${JSON.stringify(text.slice(0, 200))}`);
        for (const r of replies) assert.ok(parseConfigTree(r).ok, `unparsable reply ${JSON.stringify(r)}`);
        if (replies.length === 0) {
          // Only a request that waits for a lock (or stop_all's wait) may stay unanswered for now.
          const parsed = parseConfigTree(text, { libdmOpenQuotes: true });
          assert.ok(parsed.ok, `no reply to an unparsable frame ${JSON.stringify(text.slice(0, 200))}`);
          const name = new ConfigMap(parsed.entries).str('request') ?? '';
          assert.match(name, /^lock_(lv|vg|gl)$|^stop_all$/, `no reply to ${JSON.stringify(text.slice(0, 200))}`);
          inFlight.set(id, 1); // queued: no more frames on it, as a libdaemon client
        }
      }
      const fatal = h.log.filter((l) => /lockspace loop failed|work \w+ failed/.test(l));
      assert.deepEqual(fatal, [], 'a lockspace loop or worker job failed');
      // The persistent lock is still held by this host.
      const again = await h.req(admin, lockLv(VG, LV_PERSIST, 'ex', 'persistent'));
      assert.equal(again.opResult, -114, `persistent lock lost: ${again.text}`);
      const ls = h.core.lockspaces.find((l) => l.name === `lvm_${VG}`);
      const r = ls?.resources.find((x) => x.name === LV_PERSIST);
      assert.ok(r && r.locks.some((l) => l.persistent && l.mode === 'ex'), 'persistent ex record gone');
      const fresh = h.connect();
      h.send(fresh, 'request = "hello"\n');
      await h.settle();
      const hello = h.take(fresh);
      assert.equal(hello.length, 1);
      assert.equal(new Reply(hello[0]!).str('protocol'), 'lvmlockd');
    }),
    { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
  );
  assert.equal(runs >= RUNS, true);
});
