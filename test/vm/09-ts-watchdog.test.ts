// VM tier: our daemon arms the real host watchdog (wdmd over the softdog
// driver, as sanlock hosts run it), two VMs with sanlock VGs, io_timeout 2.
//  - storage loss with a kill command that completes: vm1's lockspace is
//    dropped, the daemon disarms its watchdog and vm1 is NOT reset, although
//    its lease stopped renewing long enough for the watchdog to fire;
//  - vm1's daemon hung (SIGSTOP) with an LV active ex: nothing on vm1 can run
//    its kill path, so the watchdog resets vm1 (qemu runs with -no-reboot, so
//    the reset ends its qemu process) before vm2 is granted the LV's lease.
// Times are host-clock times of the test process.

import assert from 'node:assert/strict';
import { it, after } from 'node:test';
import { VmCluster, type Vm } from './lib/vm';
import { tsSanlockSkipReason, vmLog, describeVm } from './lib/gate';
import { lvm, resetVm, setupLvm, spawnDetached, startHost, waitFor } from './lib/stack';
import { Steps, lockStart, firstLine } from './lib/scenarios';
import { storageLoss, assertSafeTakeover } from './lib/storage-loss';
import { sleep } from '../harness/exec';

const skip = tsSanlockSkipReason();
const IO = 2;

/** softdog + wdmd in the guest; wdmd opens /dev/watchdog with sanlock's 60 s fire timeout. */
async function startWdmd(vm: Vm): Promise<void> {
  await vm.shOk('modprobe softdog && test -c /dev/watchdog');
  await spawnDetached(vm, ['wdmd', '-D'], 'wdmd.log');
  await waitFor(vm, 'test -S /run/wdmd/wdmd.sock', 30_000, 'wdmd socket');
}

describeVm('vm tier: our lvmlockd arms the host watchdog (wdmd + softdog), 2 VMs', { skip, timeout: 20 * 60_000 }, () => {
  let shared: VmCluster | null = null;
  const cluster = async (): Promise<VmCluster> => {
    if (shared) {
      await Promise.all(shared.vms.map((vm) => resetVm(vm)));
      return shared;
    }
    shared = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'ts-watchdog', log: vmLog });
    await Promise.all(shared.vms.map((vm) => startWdmd(vm)));
    return shared;
  };

  after(async () => {
    if (shared) await shared.destroy();
  });

  it('storage loss, kill command completes: the lockspace is dropped, the watchdog disarmed, vm1 not reset', async (t) => {
    const c = await cluster();
    const steps = new Steps(c, 'ts-wd-loss', vmLog);
    let r;
    try {
      r = await storageLoss(c, steps, { daemons: ['ts', 'ts'], ioTimeout: IO, fault: 'error', log: vmLog });
    } finally {
      steps.save();
    }
    assertSafeTakeover(r);
    const log = (await c.vm(1).sh('cat /out/lvmlockd.log')).stdout;
    assert.match(log, /S lvm_vgf watchdog armed: expire \d+/, 'the lockspace armed wdmd');
    assert.match(log, /S lvm_vgf watchdog disarmed/, 'dropping the failed lockspace disarmed wdmd');
    // Undisarmed, the watchdog would fire at most expiry + 60 s = last renewal + 8 x io_timeout + 60 s,
    // i.e. before +76 s; stay well past that.
    const failedAt = r.failedAtMs;
    const waitUntil = failedAt + 110_000;
    if (Date.now() < waitUntil) await sleep(waitUntil - Date.now());
    assert.ok(c.vm(1).alive(), `vm1 was reset although its kill path completed:\n${c.vm(1).tail()}`);
    const ping = await c.vm(1).sh('echo alive; grep -c "test failed" /out/wdmd.log || true');
    assert.match(ping.stdout, /^alive/);
    for (const l of [
      `kill command start +${r.killStartS} s, done +${r.killDoneS} s; vm2 got the lock +${r.otherAcquiredS} s;`,
      `vm1 still running ${((Date.now() - failedAt) / 1000).toFixed(0)} s after the failure (wdmd failed tests: ${ping.stdout.split('\n')[1]})`,
    ]) t.diagnostic(l);
    // Leave vm2's lockspace cleanly: a daemon killed with an armed lockspace would get vm2 reset.
    await c.vm(2).shOk('lvm lvchange -an vgf/lv1 && lvm vgchange --lock-stop vgf');
    assert.match((await c.vm(2).sh('cat /out/lvmlockd.log')).stdout, /S lvm_vgf watchdog disarmed/);
  });

  it('daemon hung (SIGSTOP) with an LV active ex: the watchdog resets vm1 before vm2 gets the lock', async (t) => {
    const c = await cluster();
    const [v1, v2] = [c.vm(1), c.vm(2)];
    const steps = new Steps(c, 'ts-wd-hang', vmLog);
    const vg = 'vgw';
    try {
      await Promise.all([v1, v2].map(async (vm) => {
        await setupLvm(vm);
        await startHost(vm, 'ts', ['-o', String(IO)]);
      }));
      await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'sanlock', vg, '/dev/vdb']);
      await steps.run(v1, ['lvcreate', '-an', '-n', 'lv1', '-L', '64M', vg]);
      await lockStart(steps, v2, vg);
      await steps.run(v1, ['lvchange', '-aey', `${vg}/lv1`]);
      await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`], 5);
      assert.match((await v1.sh('cat /out/lvmlockd.log')).stdout, /S lvm_vgw watchdog armed/);

      await v1.shOk('kill -STOP $(cat /run/lvmlockd.pid)');
      const t0 = Date.now();
      steps.note(v1, 'lvmlockd stopped (SIGSTOP): no renewal, no kill path');
      let resetS: number | null = null;
      void v1.exited.then(() => { resetS = (Date.now() - t0) / 1000; });
      let acquiredS: number | null = null;
      let attempts = 0;
      while (Date.now() - t0 < 240_000) {
        attempts++;
        const r = await lvm(v2, ['lvchange', '-aey', `${vg}/lv1`], 60_000);
        if (r.code === 0) {
          acquiredS = (Date.now() - t0) / 1000;
          break;
        }
        if (attempts === 1 || attempts % 10 === 0) vmLog(`watchdog: vm2 -aey try ${attempts} → ${r.code} ${firstLine(r.stderr, /^\s*$/)}`);
        await sleep(2000);
      }
      steps.note(v2, `lvchange -aey ${acquiredS === null ? 'never succeeded' : `succeeded at +${acquiredS.toFixed(1)} s`}; vm1 reset at ${resetS === null ? 'never' : `+${(resetS as number).toFixed(1)} s`}`);
      const consoleTail = c.vm(1).tail();
      t.diagnostic(`vm1 reset by the watchdog +${resetS} s after its daemon stopped; vm2 got the lock +${acquiredS} s (${attempts} tries)`);
      assert.notEqual(resetS, null, `vm1 was not reset:\n${consoleTail}`);
      assert.match(consoleTail, /softdog: Initiating system reboot/, 'the reset came from the watchdog');
      assert.notEqual(acquiredS, null, 'vm2 never got the lock');
      assert.ok(resetS! < acquiredS!, `vm2 got the lock (+${acquiredS} s) before vm1 was reset (+${resetS} s)`);
    } finally {
      steps.save();
    }
  });
});
