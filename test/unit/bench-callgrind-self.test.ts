/** Self cost per function from a callgrind dump, and its split into compiler, GC and the rest (bench/lockd.ts --instructions). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callgrindSelfCosts, splitInstructions } from '../../bench/callgrind-self';

// The shape callgrind 3.19 writes: names compressed to "(id) name" at first use, a call's
// inclusive cost on the line after calls=, which is not the caller's own cost.
const DUMP = `# callgrind format
version: 1
positions: line
events: Ir
summary: 1000

ob=(1) node
fl=(1) ???
fn=(1) Builtins_StringAdd_CheckNone
0 100
cfn=(2) v8::internal::compiler::GraphReducer::ReduceTop()
calls=3 0
0 400
fn=(2)
0 300
+2 100
fn=(3) v8::internal::Scavenger::ScavengeObject(x)
0 150
fn=(4) 0x000000000d0c3040
0 250
-1 50
fn=(1)
0 50
`;

test('self costs: call lines left out, compressed names resolved, repeated functions summed', () => {
  const { total, byFn } = callgrindSelfCosts(DUMP);
  assert.equal(total, 1000);
  assert.deepEqual([...byFn], [
    ['Builtins_StringAdd_CheckNone', 150],
    ['v8::internal::compiler::GraphReducer::ReduceTop()', 400],
    ['v8::internal::Scavenger::ScavengeObject(x)', 150],
    ['0x000000000d0c3040', 300],
  ]);
});

test('split: compiler and GC by function name, the rest is what is left of the total', () => {
  assert.deepEqual(splitInstructions(DUMP), { total: 1000, compiler: 400, gc: 150 });
});

test('split: shares of the self costs applied to the summary total when totals: is larger', () => {
  const text = DUMP.replace('summary: 1000', 'summary: 500') + 'totals: 1000\n';
  assert.deepEqual(splitInstructions(text), { total: 500, compiler: 200, gc: 75 });
});
