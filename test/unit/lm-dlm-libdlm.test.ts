// The koffi bindings of src/lm/dlm/libdlm.ts on this machine: libdlm_lt.so.3
// loads (libdlm3 comes with lvm2-lockd), a lock block's sb_lvbptr points at its
// own LVB bytes, and calls that need the kernel DLM (absent here) fail as
// values on a worker thread instead of throwing or blocking.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LibDlm, libdlmProblem } from '../../src/lm/dlm/libdlm';

const problem = libdlmProblem();

test('libdlm bindings: lock block layout, calls without a kernel DLM fail as values', { skip: problem ? `libdlm not loadable here: ${problem}` : false }, async () => {
  const k = new LibDlm();
  const lk = k.newLockBlock();
  try {
    assert.equal(lk.lvb.length, 32);
    assert.equal(lk.status, 0);
    assert.equal(lk.lkid, 0);
    // the LVB pointer in the lksb (offset 16) addresses the 32 bytes after it
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const koffi = require('koffi');
    const ptr = (lk as unknown as { ptr: unknown }).ptr;
    const mem = Buffer.from(koffi.view(ptr, 56));
    assert.equal(mem.readBigUInt64LE(16), BigInt(koffi.address(ptr)) + 24n);
    lk.lvb.write('0101000007000000', 'hex');
    assert.equal(mem.subarray(24, 32).toString('hex'), '0101000007000000');
  } finally {
    lk.free();
  }
  const hasDlm = require('node:fs').existsSync('/sys/kernel/config/dlm/cluster');
  if (!hasDlm) {
    assert.equal(await k.kernelVersion(), null, 'no dlm control device here');
    const r = await k.openLockspace('lvm_no_such_vg');
    assert.ok('rv' in r && r.rv === -1, JSON.stringify(r));
  }
});
