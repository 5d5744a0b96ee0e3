// VM tier, scenarios 1 and 2 with OUR daemon managing sanlock VGs (no -T, no
// sanlock daemon: our leases on the real lvmlock LV), two VMs:
//  - real activation and ex/sh exclusion across VMs (the same sequence as the
//    C reference in 02-c-sanlock);
//  - storage loss under vm1's PV, by I/O errors and by I/O that hangs beyond
//    io_timeout: our daemon must stop using the VG and run the kill command
//    before vm2 can take the lock (as the C reference in 02-c-sanlock).
// Skipped with a message when this build of the daemon has no sanlock lock
// manager (tsSanlockSkipReason in lib/gate.ts).

import assert from 'node:assert/strict';
import { it, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { tsSanlockSkipReason, vmLog, describeVm } from './lib/gate';
import { resetVm, setupLvm, startHost } from './lib/stack';
import { Steps, activationSequence } from './lib/scenarios';
import { storageLoss, assertSafeTakeover } from './lib/storage-loss';

const skip = tsSanlockSkipReason();

describeVm('vm tier: our lvmlockd with sanlock VGs, 2 VMs', { skip, timeout: 20 * 60_000 }, () => {
  // one cluster for both scenarios (reset in between): saves a boot
  let shared: VmCluster | null = null;
  const cluster = async (): Promise<VmCluster> => {
    if (shared) {
      await Promise.all(shared.vms.map((vm) => resetVm(vm)));
      return shared;
    }
    shared = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'ts-sanlock', log: vmLog });
    return shared;
  };

  after(async () => {
    if (shared) await shared.destroy();
  });

  it('activation, ex/sh exclusion across VMs, teardown', async (t) => {
    const c = await cluster();
    await Promise.all(c.vms.map(async (vm) => {
      await setupLvm(vm);
      await startHost(vm, 'ts', ['-o', '2']);
    }));
    const steps = new Steps(c, 'ts-sanlock', vmLog);
    const t0 = Date.now();
    try {
      await activationSequence(c, steps, { lockType: 'sanlock', vg: 'vgs1' });
    } finally {
      steps.save();
      for (const l of `ts-sanlock sequence ${((Date.now() - t0) / 1000).toFixed(1)} s\n${steps.table()}`.split('\n')) t.diagnostic(l);
    }
  });

  for (const fault of ['error', 'hang'] as const) {
    it(`storage loss (${fault === 'error' ? 'I/O errors' : 'I/O hangs beyond io_timeout'}): vm1 stops using the VG and runs the kill command before vm2 gets the lock`, async (t) => {
      const c = await cluster();
      const steps = new Steps(c, `ts-loss-${fault}`, vmLog);
      try {
        const r = await storageLoss(c, steps, { daemons: ['ts', 'ts'], ioTimeout: 2, fault, log: vmLog });
        for (const l of [
          `${r.fault}, io_timeout ${r.ioTimeout} s: guest clock: kill command start +${r.killStartS} s, LV wiped +${r.wipedS} s, done +${r.killDoneS} s;`,
          `host clock: LV seen offline +${r.wipedHostS} s,`,
          `lockspace dropped by vm1 lvmlockd +${r.lockspaceGoneS} s, vm2 got the lock +${r.otherAcquiredS} s after ${r.vm2Attempts} tries`,
          '--- vm1 kill.log', ...r.killLog.split('\n'),
          '--- vm1 lvmlockctl --info', ...r.vm1Info.split('\n'),
          '--- vm1 lvmlockd log (kill/drop/errors)', ...r.vm1LvmlockdLog.split('\n'),
        ]) t.diagnostic(l);
        assertSafeTakeover(r);
        // and our daemon finished with the VG (the drop completed, even with I/O still hung)
        assert.notEqual(r.lockspaceGoneS, null, `vm1's lvmlockd never dropped the lockspace:\n${r.vm1LvmlockdLog}`);
      } finally {
        steps.save();
      }
    });
  }
});
