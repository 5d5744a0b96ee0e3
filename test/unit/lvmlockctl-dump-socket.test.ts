import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DumpReceiver, DumpSocketError, sendDump, abstractAddress, DUMP_SOCKET_NAME } from '../../src/daemon/dump-socket';

// Unique abstract names so these tests never touch a real lvmlockctl/lvmlockd.
let n = 0;
function uniqueName(): string {
  return `lvmlockd-ts-test-${process.pid}-${n++}`;
}

test('the default address is 21 bytes: family, NUL, 18 name bytes', () => {
  const a = abstractAddress();
  assert.equal(a.length, 21);
  assert.equal(a.readUInt16LE(0), 1);
  assert.equal(a[2], 0);
  assert.equal(a.subarray(3).toString(), DUMP_SOCKET_NAME);
});

test('small round trip', async () => {
  const name = uniqueName();
  const rx = DumpReceiver.bind({ name });
  try {
    const text = 'info=structs unused_action_count=1\n';
    const p = rx.receive(Buffer.byteLength(text));
    const res = await sendDump(text, { name });
    assert.deepEqual(res, { ok: true, sent: text.length, total: text.length, retries: 0, delayUs: 0 });
    assert.equal((await p).toString(), text);
  } finally {
    rx.close();
  }
});

test('4 MiB in 64 KiB datagrams, receiver draining concurrently, event loop free', async () => {
  const name = uniqueName();
  const rx = DumpReceiver.bind({ name });
  try {
    const data = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
    let ticks = 0;
    const iv = setInterval(() => ticks++, 1);
    const p = rx.receive(data.length);
    const res = await sendDump(data, { name });
    const got = await p;
    clearInterval(iv);
    assert.equal(res.ok, true, JSON.stringify(res));
    assert.equal(res.sent, data.length);
    assert.ok(got.equals(data));
    assert.ok(ticks > 0, 'timers ran while sending/receiving');
  } finally {
    rx.close();
  }
});

test('second bind of the same name: DumpSocketError EADDRINUSE', () => {
  const name = uniqueName();
  const rx = DumpReceiver.bind({ name });
  try {
    assert.throws(() => DumpReceiver.bind({ name }), (e: unknown) =>
      e instanceof DumpSocketError && e.errno === 98 && e.code === 'EADDRINUSE' && e.syscall === 'bind' && /already bound/.test(e.message));
  } finally {
    rx.close();
  }
  // free again after close
  DumpReceiver.bind({ name }).close();
});

test('receive times out instead of hanging, and reports partial data', async () => {
  const name = uniqueName();
  const rx = DumpReceiver.bind({ name });
  try {
    await sendDump('abc', { name });
    const t0 = Date.now();
    await assert.rejects(rx.receive(10, { timeoutMs: 300 }), (e: unknown) =>
      e instanceof DumpSocketError && e.syscall === 'timeout' && e.errno === 110 && e.partial?.toString() === 'abc');
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2000, `took ${took}`);
  } finally {
    rx.close();
  }
});

test('nobody bound: sendDump resolves with ECONNREFUSED', async () => {
  const res = await sendDump('x', { name: uniqueName() });
  assert.equal(res.ok, false);
  assert.equal(res.errno, 111);
  assert.equal(res.syscall, 'sendto');
});

test('receiver never reads: sender gives up with EAGAIN after about 0.5 s without blocking', async () => {
  const name = uniqueName();
  const rx = DumpReceiver.bind({ name });
  try {
    let ticks = 0;
    const iv = setInterval(() => ticks++, 5);
    const t0 = Date.now();
    const res = await sendDump(Buffer.alloc(8 * 1024 * 1024), { name });
    const took = Date.now() - t0;
    clearInterval(iv);
    assert.equal(res.ok, false);
    assert.equal(res.errno, 11);
    assert.ok(res.sent > 0 && res.sent < res.total);
    assert.ok(res.retries > 10);
    assert.ok(took >= 450 && took < 3000, `took ${took}`);
    assert.ok(ticks > 20, `event loop ran (${ticks} ticks)`);
  } finally {
    rx.close();
  }
});

test('empty dump sends nothing', async () => {
  const res = await sendDump('', { name: uniqueName() });
  assert.equal(res.ok, true);
  assert.equal(res.sent, 0);
});
