// The VM image cache keeps one version of each kind of image: pruning old
// base images (img-<hash>) never evicts the systemd image (systemd-<hash>)
// or the reverse, and never touches a lock or a build in progress.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pruneImages, systemdImageHash } from '../vm/lib/image';

const H = (c: string): string => c.repeat(16);

function cache(t: { after: (fn: () => void) => void }, entries: string[]): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vm-cache-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  for (const e of entries) fs.mkdirSync(path.join(d, e));
  fs.writeFileSync(path.join(d, 'accel-verdict.json'), '{}');
  return d;
}

const ENTRIES = [
  `img-${H('a')}`, `img-${H('b')}`, `img-${H('c')}.lock`, `img-${H('d')}.tmp.123`,
  `systemd-${H('1')}`, `systemd-${H('2')}`, `systemd-${H('3')}.lock`, `systemd-${H('4')}.tmp.9`,
];

test('pruning base images keeps every systemd image, locks and builds in progress', (t) => {
  const d = cache(t, ENTRIES);
  assert.deepEqual(pruneImages(d, 'img-', `img-${H('b')}`), [`img-${H('a')}`]);
  assert.deepEqual(fs.readdirSync(d).sort(), [...ENTRIES.filter((e) => e !== `img-${H('a')}`), 'accel-verdict.json'].sort());
});

test('pruning systemd images keeps every base image', (t) => {
  const d = cache(t, ENTRIES);
  assert.deepEqual(pruneImages(d, 'systemd-', `systemd-${H('2')}`), [`systemd-${H('1')}`]);
  for (const e of ENTRIES.filter((x) => x.startsWith('img-'))) assert.ok(fs.existsSync(path.join(d, e)), e);
});

test('the systemd image key follows the base image key', () => {
  assert.match(systemdImageHash(H('a')), /^[0-9a-f]{16}$/);
  assert.notEqual(systemdImageHash(H('a')), systemdImageHash(H('b')));
  assert.equal(systemdImageHash(H('a')), systemdImageHash(H('a')));
});
