// The core must not know lock managers by name: what one manager does differently
// is that manager's business (src/lm/<name>/) or an optional capability in
// src/lm/types.ts. A branch on 'sanlock', 'dlm' or 'idm' in src/core fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../harness/cluster';

const CORE = path.join(repoRoot(), 'src', 'core');
// constants.ts defines the names (the LmType union, lvmlockd's wire numbers and orders).
const ALLOWED = new Set(['constants.ts']);

test('src/core names no lock manager outside constants.ts', () => {
  const files = fs.readdirSync(CORE).filter((f) => f.endsWith('.ts') && !ALLOWED.has(f));
  assert.ok(files.length >= 5, `expected the core's files in ${CORE}, found ${files.join(' ')}`);
  const hits: string[] = [];
  for (const f of files) {
    fs.readFileSync(path.join(CORE, f), 'utf8').split('\n').forEach((line, i) => {
      if (/['"`](sanlock|dlm|idm)['"`]/.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(hits, []);
});

test('sanlock manager imports nothing from test mode', () => {
  const dir = path.join(repoRoot(), 'src', 'lm', 'sanlock');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('sanlock-lm.ts'), files.join(' '));
  for (const f of files) assert.doesNotMatch(fs.readFileSync(path.join(dir, f), 'utf8'), /from '\.\.\/test\//, f);
});
