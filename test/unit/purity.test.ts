// The pure layers (src/core, src/leases, src/protocol) take time, randomness,
// host names and devices from the composition root (src/daemon, src/cli): no
// Node I/O module, no clock, no Math.random. The sanlock manager (src/lm/sanlock)
// is held to the same rule: its host name, sysfs block sizes and device check
// come from src/daemon/sanlock-deps.ts. Parsed with the TypeScript
// compiler, so comments and strings do not count.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../harness/cluster';

const PURE_DIRS = ['src/core', 'src/leases', 'src/protocol', 'src/lm/sanlock'];
const BANNED_MODULES = new Set(['fs', 'fs/promises', 'os', 'net', 'crypto', 'child_process', 'dgram', 'http', 'https', 'worker_threads']);
/** Reads of the clock or of ambient randomness, as `object.property`. */
const BANNED_CALLS = new Set(['Date.now', 'performance.now', 'process.hrtime', 'Math.random', 'crypto.getRandomValues', 'crypto.randomUUID']);

function bannedModule(spec: string): boolean {
  return BANNED_MODULES.has(spec.replace(/^node:/, ''));
}

/** The violations in one source text, as "line: what". */
export function impurities(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const hit = (n: ts.Node, what: string) => out.push(`${fileName}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}: ${what}`);
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      if (bannedModule(n.moduleSpecifier.text)) hit(n, `imports ${n.moduleSpecifier.text}`);
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) {
      const e = n.moduleReference.expression;
      if (ts.isStringLiteral(e) && bannedModule(e.text)) hit(n, `imports ${e.text}`);
    } else if (ts.isCallExpression(n) && n.arguments.length > 0 && ts.isStringLiteralLike(n.arguments[0]!) &&
      (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) {
      const spec = (n.arguments[0] as ts.StringLiteralLike).text;
      if (bannedModule(spec)) hit(n, `loads ${spec}`);
    } else if (ts.isImportTypeNode(n)) {
      // `typeof import('node:os')` is only a type: fine.
    } else if (ts.isPropertyAccessExpression(n) && ts.isIdentifier(n.expression)) {
      const name = `${n.expression.text}.${n.name.text}`;
      if (BANNED_CALLS.has(name)) hit(n, `reads ${name}`);
    } else if (ts.isNewExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'Date' && !n.arguments?.length) {
      hit(n, 'reads the clock (new Date())');
    } else if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'Date') {
      hit(n, 'reads the clock (Date())');
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('src/core, src/leases, src/protocol and src/lm/sanlock import no Node I/O module and read no clock or ambient randomness', () => {
  const root = repoRoot();
  const hits: string[] = [];
  let files = 0;
  for (const d of PURE_DIRS) {
    for (const f of tsFiles(path.join(root, d))) {
      files++;
      hits.push(...impurities(path.relative(root, f), fs.readFileSync(f, 'utf8')));
    }
  }
  assert.ok(files >= 15, `expected the pure layers' sources under ${root}, found ${files} files`);
  assert.deepEqual(hits, []);
});

test('the purity check finds each kind of leak and ignores comments, strings and types', () => {
  const leaks = [
    "import * as os from 'node:os';",
    "import { readFileSync } from 'fs';",
    "export { hostname } from 'node:os';",
    "import cp = require('child_process');",
    "const c = require('node:crypto');",
    "void import('node:net');",
    'const t = Date.now();',
    'const t = new Date();',
    'const s = Date();',
    'const t = performance.now();',
    'const t = process.hrtime.bigint();',
    'const r = Math.random();',
    'const u = crypto.randomUUID();',
  ];
  for (const line of leaks) assert.equal(impurities('x.ts', line).length, 1, line);
  const clean = [
    '// calls Math.random and Date.now() and require("node:os")',
    "const s = 'Date.now() new Date() node:fs';",
    "type Os = typeof import('node:os');",
    'const d = new Date(0);',
    "import { Disk } from '../io/disk';",
    'const m = Math.floor(1.5);',
  ];
  for (const line of clean) assert.deepEqual(impurities('x.ts', line), [], line);
});
