// VM tier, scenario 3a: the C reference, lvmlockd + sanlock, two VMs on one
// shared disk, real activation (/dev/mapper nodes) and real ex/sh exclusion
// through sanlock leases on the VG's lvmlock LV.

import { describe, it, before, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { vmSkipReason, vmLog } from './lib/gate';
import { setupLvm, startLvmlockd, startSanlock } from './lib/stack';
import { Steps, activationSequence } from './lib/scenarios';

const skip = vmSkipReason();

describe('vm tier: C lvmlockd + sanlock, 2 VMs', { skip, timeout: 15 * 60_000 }, () => {
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
});
