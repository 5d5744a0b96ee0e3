// VM tier, scenario 2 with the C reference (lvmlockd 2.03.16 + sanlock
// 3.8.5): vm1's PV fails under an active exclusive LV. Records when vm1's
// kill command runs and when vm2 gets the lock (see docs/vm-tier.md), and
// checks that vm1's LV is offline before vm2 has the lock.

import { describe, it, before, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { vmSkipReason, vmLog } from './lib/gate';
import { Steps } from './lib/scenarios';
import { storageLoss, assertSafeTakeover } from './lib/storage-loss';

const skip = vmSkipReason();

describe('vm tier: storage loss under C lvmlockd + sanlock (2 VMs)', { skip, timeout: 15 * 60_000 }, () => {
  let c: VmCluster;

  before(async () => {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'c-loss', log: vmLog });
  });

  after(async () => {
    if (c) await c.destroy();
  });

  it('vm1 loses its PV: kill command deactivates, then vm2 takes the lock', async (t) => {
    const steps = new Steps(c, 'c-loss', vmLog);
    try {
      const r = await storageLoss(c, steps, { daemons: ['c', 'c'], ioTimeout: 2, log: vmLog });
      for (const l of [
        `io_timeout ${r.ioTimeout} s: kill command start +${r.killStartS} s, LV wiped +${r.wipedS} s, done +${r.killDoneS} s,`,
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
