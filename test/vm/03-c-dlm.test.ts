// VM tier, scenario 3b: the C reference with the kernel DLM: corosync (knet
// over the hub, two_node quorum), dlm_controld (fencing disabled) and C
// lvmlockd on two VMs, the same command sequence as with sanlock. This is
// the reference the dlm lock manager will be measured against.

import { it, before, after } from 'node:test';
import { VmCluster } from './lib/vm';
import { vmSkipReason, vmLog, describeVm } from './lib/gate';
import { setupLvm, startDlmStack, startLvmlockd } from './lib/stack';
import { Steps, activationSequence } from './lib/scenarios';

const skip = vmSkipReason();

describeVm('vm tier: C lvmlockd + corosync + dlm_controld + kernel DLM, 2 VMs', { skip, timeout: 15 * 60_000 }, () => {
  let c: VmCluster;

  before(async () => {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'c-dlm', log: vmLog });
    await Promise.all(c.vms.map((vm) => setupLvm(vm)));
    const t0 = Date.now();
    await startDlmStack(c);
    vmLog(`c-dlm: corosync quorate and dlm_controld up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await Promise.all(c.vms.map((vm) => startLvmlockd(vm, { kind: 'c' })));
  });

  after(async () => {
    if (c) await c.destroy();
  });

  it('activation, ex/sh exclusion across VMs, teardown', async (t) => {
    const steps = new Steps(c, 'c-dlm', vmLog);
    const t0 = Date.now();
    try {
      await activationSequence(c, steps, { lockType: 'dlm', vg: 'vgd1' });
    } finally {
      steps.save();
      const ls = await c.vm(1).sh('dlm_tool ls; dlm_tool status');
      for (const l of `c-dlm sequence ${((Date.now() - t0) / 1000).toFixed(1)} s\n${steps.table()}\n${ls.stdout}`.split("\n")) t.diagnostic(l);
    }
  });
});
