// VM tier, scenario 4: a C host (C lvmlockd + sanlock daemon) and a host
// running OUR lvmlockd on the same sanlock VG, real activation: the same
// exclusion sequence as 02-c-sanlock, once with the C host creating the VG
// and once with ours creating it. Skipped with a message until our daemon
// has the sanlock lock manager.

import { describe, it, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { tsSanlockSkipReason, vmLog } from './lib/gate';
import { DaemonKind, setupLvm, startHost, stopLvmlockd } from './lib/stack';
import { Steps, activationSequence } from './lib/scenarios';

const skip = tsSanlockSkipReason();

describe('vm tier: mixed C and our lvmlockd on one sanlock VG, 2 VMs', { skip, timeout: 20 * 60_000 }, () => {
  let c: VmCluster | null = null;

  after(async () => {
    if (c) await c.destroy();
  });

  for (const [first, second] of [['c', 'ts'], ['ts', 'c']] as Array<[DaemonKind, DaemonKind]>) {
    it(`vm1 ${first}, vm2 ${second}: activation and exclusion`, async (t) => {
      if (!c) c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'mixed', log: vmLog });
      const kinds = [first, second];
      await Promise.all(c.vms.map(async (vm, i) => {
        await stopLvmlockd(vm);
        await vm.sh('p=$(pidof sanlock); [ -n "$p" ] && kill -9 $p; dmsetup remove_all; dd if=/dev/zero of=/dev/vdb bs=1M count=4 oflag=direct status=none; true');
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
});
