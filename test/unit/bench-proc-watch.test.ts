// bench/proc-watch.ts: a watched process that ends while the watch is armed
// fails the bench section (ProcessDied), also in the middle of a wait.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessWatch, ProcessDied, exitStatus } from '../../bench/proc-watch';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

const tick = () => new Promise((r) => setImmediate(r));

test('check() passes while every process lives and throws ProcessDied naming the dead one', async () => {
  const w = new ProcessWatch();
  const a = deferred();
  const b = deferred();
  w.watch('drive 0', a.promise, () => 'signal SIGKILL');
  w.watch('drive 1', b.promise, () => 'code 0');
  await tick();
  w.check();
  a.resolve();
  await tick();
  assert.throws(() => w.check(), (e: unknown) => e instanceof ProcessDied && /drive 0 exited \(signal SIGKILL\)/.test(e.message) && !/drive 1/.test(e.message));
  assert.deepEqual(w.deaths, ['drive 0 exited (signal SIGKILL)']);
});

test('race() rejects with ProcessDied as soon as a process dies, before the awaited work ends', async () => {
  const w = new ProcessWatch();
  const d = deferred();
  w.watch('ILM', d.promise, () => 'code 1');
  const never = new Promise<number>(() => { /* a measurement that would run on */ });
  const raced = w.race(never);
  d.resolve();
  await assert.rejects(raced, (e: unknown) => e instanceof ProcessDied && e.deaths[0] === 'ILM exited (code 1)');
  // the work's own result wins while nobody died
  const w2 = new ProcessWatch();
  w2.watch('drive', new Promise(() => { /* lives */ }), () => '');
  assert.equal(await w2.race(Promise.resolve(42)), 42);
  await assert.rejects(w2.race(Promise.reject(new Error('lvm failed'))), /lvm failed/);
});

test('race() refuses to start once a death was seen; ends after disarm() are clean-up, not deaths', async () => {
  const w = new ProcessWatch();
  const a = deferred();
  const b = deferred();
  w.watch('drive 0', a.promise, () => 'signal SIGKILL');
  w.watch('drive 1', b.promise, () => 'signal SIGKILL');
  a.resolve();
  await tick();
  await assert.rejects(w.race(Promise.resolve(1)), ProcessDied);
  w.disarm();
  b.resolve();
  await tick();
  assert.deepEqual(w.deaths, ['drive 0 exited (signal SIGKILL)']);
});

test('ProcessDied names the deaths and, when given, what failed after them', () => {
  assert.equal(new ProcessDied(['drive 0 exited (code 1)']).message, 'drive 0 exited (code 1) during the run');
  assert.equal(new ProcessDied(['a exited (code 1)', 'b exited (code 2)'], 'lvchange exited 5').message,
    'a exited (code 1); b exited (code 2) during the run; what failed next: lvchange exited 5');
});

test('exitStatus names the signal or the exit code', () => {
  assert.equal(exitStatus({ exitCode: null, signalCode: 'SIGKILL' }), 'signal SIGKILL');
  assert.equal(exitStatus({ exitCode: 3, signalCode: null }), 'code 3');
  assert.equal(exitStatus({ exitCode: null, signalCode: null }), 'status unknown');
});
