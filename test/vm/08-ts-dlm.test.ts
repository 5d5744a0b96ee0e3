// VM tier: OUR daemon with dlm VGs on the kernel DLM (corosync +
// dlm_controld, as the C reference in 03-c-dlm): the same activation and
// exclusion sequence with ours on both VMs, then with C on vm1 and ours on
// vm2 (the kernel DLM arbitrates between them). Skipped with a message until
// the daemon has the dlm lock manager.

import { it, before, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { tsLmSkipReason, vmLog, describeVm } from './lib/gate';
import { DaemonKind, setupLvm, startDlmStack, startLvmlockd, stopLvmlockd } from './lib/stack';
import { Steps, activationSequence } from './lib/scenarios';

const skip = tsLmSkipReason('dlm');

describeVm('vm tier: our lvmlockd with dlm VGs on the kernel DLM, 2 VMs', { skip, timeout: 20 * 60_000 }, () => {
  let c: VmCluster;

  before(async () => {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'ts-dlm', log: vmLog });
    await Promise.all(c.vms.map((vm) => setupLvm(vm)));
    await startDlmStack(c);
  });

  after(async () => {
    if (c) await c.destroy();
  });

  for (const [first, second] of [['ts', 'ts'], ['c', 'ts']] as Array<[DaemonKind, DaemonKind]>) {
    it(`vm1 ${first}, vm2 ${second}: activation and exclusion`, async (t) => {
      const kinds = [first, second];
      await Promise.all(c.vms.map(async (vm, i) => {
        // leave the DLM lockspaces cleanly (lvm_global too) before switching daemons
        await vm.sh('lvmlockctl --stop-lockspaces >/dev/null 2>&1; sleep 2');
        await stopLvmlockd(vm);
        await startLvmlockd(vm, { kind: kinds[i]! });
      }));
      const label = `dlm-${first}-${second}`;
      const steps = new Steps(c, label, vmLog);
      const t0 = Date.now();
      try {
        await activationSequence(c, steps, { lockType: 'dlm', vg: `vgd${first}${second}` });
      } finally {
        steps.save();
        for (const l of `${label} sequence ${((Date.now() - t0) / 1000).toFixed(1)} s\n${steps.table()}`.split('\n')) t.diagnostic(l);
      }
    });
  }
});
