// The assert() helper, and the width checks the lease codec makes with it
// before encoding (values that would otherwise be cut to their field's width).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssertionError, assert as invariant } from '../../src/util/assert';
import { assertHeldLocksMatchMode, newResource } from '../../src/core/model';
import { encodeDblock, encodeLeader, encodeRequest, emptyLeader, decodeLeader, dblockSector } from '../../src/leases/ondisk';

test('assert passes truthy values and throws AssertionError with the message otherwise', () => {
  invariant(1, 'never');
  assert.throws(() => invariant(0, 'zero'), (e: unknown) => e instanceof AssertionError && e.message === 'assertion failed: zero');
  assert.throws(() => invariant(null), /^AssertionError: assertion failed$/);
  let built = 0;
  invariant(true, () => `built ${++built}`);
  assert.equal(built, 0, 'a message function runs only on failure');
  assert.throws(() => invariant(false, () => `built ${++built}`), /built 1/);
});

test('lease records: a 32- or 16-bit field out of its width is refused before encode, not cut', () => {
  const ok = emptyLeader();
  assert.equal(decodeLeader(encodeLeader(ok)).magic, 0);
  for (const [field, v] of [['magic', -1], ['flags', 2 ** 32], ['sectorSize', 1.5], ['ioTimeout', 0x10000], ['unused2', -1]] as const) {
    assert.throws(() => encodeLeader({ ...emptyLeader(), [field]: v }), (e: unknown) => e instanceof AssertionError && e.message.includes(field), field);
  }
  const d = { mbal: 1, bal: 1, inp: 1, inp2: 1, inp3: 1, lver: 1, checksum: 0, flags: 0 };
  assert.throws(() => encodeDblock({ ...d, flags: -1 }), AssertionError);
  assert.throws(() => dblockSector(d, 512, { flags: 2 ** 32, generation: 1 }), AssertionError);
  assert.throws(() => encodeRequest({ magic: -1, version: 0, lver: 0, forceMode: 0 }), AssertionError);
});

test('core: a held resource whose locks disagree with its mode fails the grant check', () => {
  const lock = (mode: 'sh' | 'ex', clientId: number) => ({ mode, version: 0, persistent: false, clientId });
  const r = newResource('lv', 'lvuuid');
  r.mode = 'sh';
  r.locks = [lock('sh', 1), lock('sh', 2)];
  assertHeldLocksMatchMode(r);
  r.locks.push(lock('ex', 3));
  assert.throws(() => assertHeldLocksMatchMode(r), /held sh and has a ex lock \(client 3\)/);
  r.mode = 'ex';
  r.locks = [lock('ex', 1), lock('ex', 2)];
  assert.throws(() => assertHeldLocksMatchMode(r), /2 ex locks/);
  r.locks = [];
  assert.throws(() => assertHeldLocksMatchMode(r), /with no lock/);
  r.mode = 'un';
  assert.throws(() => assertHeldLocksMatchMode(r), /mode un after a grant/);
});
