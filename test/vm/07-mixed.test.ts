// VM tier, scenario 4: a C host (C lvmlockd + sanlock daemon) and a host
// running OUR lvmlockd on the same sanlock VG, real activation: the same
// exclusion sequence as 02-c-sanlock, once with the C host creating the VG
// and once with ours creating it. Then storage loss under OUR host with a C
// host (sanlock daemon) waiting for the lock: C's sanlock must judge our
// host dead from our delta lease only after our kill command has run.
// Skipped with a message when this build of our daemon has no sanlock lock
// manager (tsSanlockSkipReason in lib/gate.ts).

import { it, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { tsSanlockSkipReason, vmLog, describeVm } from './lib/gate';
import { DaemonKind, resetVm, setupLvm, startHost } from './lib/stack';
import { Steps, activationSequence } from './lib/scenarios';
import { storageLoss, assertSafeTakeover } from './lib/storage-loss';

const skip = tsSanlockSkipReason();

describeVm('vm tier: mixed C and our lvmlockd on one sanlock VG, 2 VMs', { skip, timeout: 20 * 60_000 }, () => {
  let c: VmCluster | null = null;

  after(async () => {
    if (c) await c.destroy();
  });

  for (const [first, second] of [['c', 'ts'], ['ts', 'c']] as Array<[DaemonKind, DaemonKind]>) {
    it(`vm1 ${first}, vm2 ${second}: activation and exclusion`, async (t) => {
      if (!c) c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'mixed', log: vmLog });
      const kinds = [first, second];
      await Promise.all(c.vms.map(async (vm, i) => {
        await resetVm(vm);
        await setupLvm(vm);
        await startHost(vm, kinds[i]!, ['-o', '2']);
      }));
      const label = `mixed-${first}-${second}`;
      const steps = new Steps(c, label, vmLog);
      const t0 = Date.now();
      try {
        await activationSequence(c, steps, { lockType: 'sanlock', vg: `vgm${first}` });
      } finally {
        steps.save();
        for (const l of `${label} sequence ${((Date.now() - t0) / 1000).toFixed(1)} s\n${steps.table()}`.split('\n')) t.diagnostic(l);
      }
    });
  }

  it('storage loss under our host (vm1), C host (vm2) takes over after our kill command', async (t) => {
    if (c) await Promise.all(c.vms.map((vm) => resetVm(vm)));
    else c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'mixed', log: vmLog });
    const steps = new Steps(c, 'mixed-loss', vmLog);
    try {
      const r = await storageLoss(c, steps, { daemons: ['ts', 'c'], ioTimeout: 2, log: vmLog });
      for (const l of [
        `io_timeout ${r.ioTimeout} s: guest clock: kill command start +${r.killStartS} s, LV wiped +${r.wipedS} s, done +${r.killDoneS} s;`,
        `host clock: LV seen offline +${r.wipedHostS} s,`,
        `lockspace dropped by vm1 lvmlockd +${r.lockspaceGoneS} s, vm2 (C) got the lock +${r.otherAcquiredS} s after ${r.vm2Attempts} tries`,
        '--- vm1 kill.log', ...r.killLog.split('\n'),
        '--- vm1 lvmlockd log (kill/drop/errors)', ...r.vm1LvmlockdLog.split('\n'),
      ]) t.diagnostic(l);
      assertSafeTakeover(r);
    } finally {
      steps.save();
    }
  });
});
