// VM tier, scenario 3a: the C reference, lvmlockd + sanlock, two VMs on one
// shared disk, real activation (/dev/mapper nodes) and real ex/sh exclusion
// through sanlock leases on the VG's lvmlock LV. Then, on the same VMs
// (reset), scenario 2 with the C reference: vm1's PV fails under an active
// exclusive LV; records when vm1's kill command runs and when vm2 gets the
// lock (see docs/vm-tier.md), and checks that vm1's LV is offline before
// vm2 has the lock.

import { it, before, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { vmSkipReason, vmLog, describeVm } from './lib/gate';
import { resetVm, setupLvm, startLvmlockd, startSanlock } from './lib/stack';
import { storageLoss, assertSafeTakeover } from './lib/storage-loss';
import { Steps, activationSequence } from './lib/scenarios';

const skip = vmSkipReason();

describeVm('vm tier: C lvmlockd + sanlock (activation, storage loss), 2 VMs', { skip, timeout: 15 * 60_000 }, () => {
  let c: VmCluster;

  before(async () => {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'c-sanlock', log: vmLog });
    await Promise.all(c.vms.map(async (vm) => {
      await setupLvm(vm);
      await startSanlock(vm);
      await startLvmlockd(vm, { kind: 'c', args: ['-o', '2'] });
    }));
  });

  after(async () => {
    if (c) await c.destroy();
  });

  it('activation, ex/sh exclusion across VMs, teardown', async (t) => {
    const steps = new Steps(c, 'c-sanlock', vmLog);
    const t0 = Date.now();
    try {
      await activationSequence(c, steps, { lockType: 'sanlock', vg: 'vgs1' });
    } finally {
      steps.save();
      for (const l of `c-sanlock sequence ${((Date.now() - t0) / 1000).toFixed(1)} s\n${steps.table()}`.split("\n")) t.diagnostic(l);
    }
  });

  it('vm1 loses its PV: kill command deactivates, then vm2 takes the lock', async (t) => {
    await Promise.all(c.vms.map((vm) => resetVm(vm)));
    const steps = new Steps(c, 'c-loss', vmLog);
    try {
      const r = await storageLoss(c, steps, { daemons: ['c', 'c'], ioTimeout: 2, log: vmLog });
      for (const l of [
        `io_timeout ${r.ioTimeout} s: guest clock: kill command start +${r.killStartS} s, LV wiped +${r.wipedS} s, done +${r.killDoneS} s;`,
        `host clock: LV seen offline +${r.wipedHostS} s,`,
        `lockspace dropped by vm1 lvmlockd +${r.lockspaceGoneS} s, vm2 got the lock +${r.otherAcquiredS} s after ${r.vm2Attempts} tries`,
        '--- vm1 kill.log', ...r.killLog.split('\n'),
        '--- vm1 lvmlockctl --info', ...r.vm1Info.split('\n'),
        '--- vm1 lvs + dmsetup table after', ...r.vm1LvsAfter.split('\n'),
        '--- vm1 lvmlockd log (kill/drop/errors)', ...r.vm1LvmlockdLog.split('\n'),
        '--- vm1 sanlock log (tail)', ...r.vm1SanlockLog.split('\n'),
      ]) t.diagnostic(l);
      assertSafeTakeover(r);
    } finally {
      steps.save();
    }
  });
});
