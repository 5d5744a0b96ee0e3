// The one errno table and the daemon's result table built from it: the values
// lvm tests for, and the names the daemon logs, stay as they were.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno, errnoNames } from '../../src/util/errno';
import { E, errnoName } from '../../src/core/constants';

test('E takes its Linux values from the errno table and keeps lvmlockd\'s own codes', () => {
  for (const [k, v] of Object.entries(E)) {
    if (v < 200) assert.equal(v, Errno[('E' + k) as keyof typeof Errno], k);
  }
  assert.equal(E.AGAIN, 11);
  assert.equal(E.NOLS, 210);
  assert.equal(E.LOCKREPAIR, 226);
  assert.equal(new Set(Object.values(Errno)).size, Object.keys(Errno).length, 'one name per errno value');
});

test('errnoName names only the daemon\'s results: an errno outside E prints as its number', () => {
  assert.equal(errnoName(-11), 'EAGAIN');
  assert.equal(errnoName(-210), 'ENOLS');
  assert.equal(errnoName(-Errno.ECONNREFUSED), '-111');
  assert.equal(errnoName(-Errno.ETIMEDOUT), '-110');
});

test('errnoNames looks up only the names it is given', () => {
  const m = errnoNames(['EAGAIN', 'EINTR']);
  assert.equal(m.get(11), 'EAGAIN');
  assert.equal(m.get(4), 'EINTR');
  assert.equal(m.get(5), undefined);
});
