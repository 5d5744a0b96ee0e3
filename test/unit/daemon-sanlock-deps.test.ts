// The sanlock manager's machine-bound dependencies, made in the composition root.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sanlockHostName, sanlockMachineDeps, sysfsBlockSizes } from '../../src/daemon/sanlock-deps';

test('the sanlock host name is "<uuid>.<nodename>", at most 47 characters, new per daemon', () => {
  const a = sanlockHostName();
  const b = sanlockHostName();
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\./);
  assert.ok(a.length <= 47, a);
  assert.equal(a, `${a.slice(0, 36)}.${os.hostname()}`.slice(0, 47));
  assert.notEqual(a.slice(0, 36), b.slice(0, 36));
});

test('sysfsBlockSizes: 0/0 for a file that is no block device; a missing path throws ENOENT', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanlock-deps-'));
  try {
    const f = path.join(dir, 'plain');
    fs.writeFileSync(f, 'x');
    assert.deepEqual(sysfsBlockSizes(f), { physical: 0, logical: 0 });
    assert.throws(() => sysfsBlockSizes(path.join(dir, 'absent')), { code: 'ENOENT' });
    const deps = sanlockMachineDeps();
    assert.equal(deps.deviceExists(f), true);
    assert.equal(deps.deviceExists(path.join(dir, 'absent')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
