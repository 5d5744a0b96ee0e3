// VM tier: our daemon arms the real host watchdog (wdmd over the softdog
// driver, as sanlock hosts run it); two VMs, two sanlock VGs, io_timeout 2.
// Both failures start at the same moment, so one host_dead wait covers both:
//  - vm1's daemon is stopped (SIGSTOP) while vm1 has vgw/lv1 active ex:
//    nothing on vm1 can run its kill path, so the watchdog must reset vm1
//    (qemu runs with -no-reboot: the reset ends its process) before vm2 is
//    granted the LV's lease;
//  - vm2 loses the PV of vgf (dm `error` under it) while it has vgf/lvf
//    active: its kill command runs, the lockspace is dropped, the daemon
//    disarms that lockspace's watchdog, and vm2 is NOT reset although vgf's
//    lease stopped renewing long enough for the watchdog to fire; vgw's
//    lockspace on vm2 stays armed and healthy.
// Times are host-clock times of the test process, from the failures.

import assert from 'node:assert/strict';
import { it, after } from 'node:test';
import { VmCluster, type Vm } from './lib/vm';
import { tsSanlockSkipReason, vmLog, describeVm } from './lib/gate';
import { lvm, setupLvm, spawnDetached, startHost, waitFor } from './lib/stack';
import { Steps, lockStart, firstLine } from './lib/scenarios';
import { KILL_SCRIPT } from './lib/storage-loss';
import { sleep } from '../harness/exec';

const skip = tsSanlockSkipReason();
const IO = 2;
/** host_dead at io_timeout 2: 8 x 2 + 60 s. Unless disarmed, a reset comes at most this long after the last renewal. */
const HOST_DEAD_S = 76;

/** softdog + wdmd in the guest; wdmd opens /dev/watchdog with sanlock's 60 s fire timeout. */
async function startWdmd(vm: Vm): Promise<void> {
  await vm.shOk('modprobe softdog && test -c /dev/watchdog');
  await spawnDetached(vm, ['wdmd', '-D'], 'wdmd.log');
  await waitFor(vm, 'test -S /run/wdmd/wdmd.sock', 30_000, 'wdmd socket');
}

describeVm('vm tier: our lvmlockd arms the host watchdog (wdmd + softdog), 2 VMs', { skip, timeout: 15 * 60_000 }, () => {
  let c: VmCluster | null = null;

  after(async () => {
    if (c) await c.destroy();
  });

  it('a hung daemon\'s VM is reset before the other VM gets its lease; a VM whose kill path completes is not reset', async (t) => {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }, { sizeMiB: 1024 }], name: 'ts-watchdog', log: vmLog });
    const [v1, v2] = [c.vm(1), c.vm(2)];
    const steps = new Steps(c, 'ts-watchdog', vmLog);
    try {
      await Promise.all([v1, v2].map((vm) => startWdmd(vm)));
      // vm2 reaches vgf's PV (/dev/vdb) through dm so that it can fail; vm1 uses only /dev/vdc.
      await v2.shOk('dmsetup create pv0 --table "0 $(blockdev --getsz /dev/vdb) linear /dev/vdb 0" && udevadm settle');
      await v2.writeFile('/usr/local/sbin/vm-kill-vg', KILL_SCRIPT);
      await v2.shOk('chmod 0755 /usr/local/sbin/vm-kill-vg');
      await setupLvm(v1, { devices: ['/dev/vdc'] });
      await setupLvm(v2, { devices: ['/dev/mapper/pv0', '/dev/vdc'], killCommand: '/usr/local/sbin/vm-kill-vg' });
      await Promise.all([v1, v2].map((vm) => startHost(vm, 'ts', ['-o', String(IO)])));

      await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgw', '/dev/vdc']);
      await steps.run(v1, ['lvcreate', '-an', '-n', 'lv1', '-L', '64M', 'vgw']);
      await lockStart(steps, v2, 'vgw');
      await steps.run(v2, ['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgf', '/dev/mapper/pv0']);
      await steps.run(v2, ['lvcreate', '-n', 'lvf', '-L', '64M', 'vgf']); // active ex on vm2
      await steps.run(v1, ['lvchange', '-aey', 'vgw/lv1']);
      await steps.run(v2, ['lvchange', '-aey', 'vgw/lv1'], 5);
      assert.match((await v1.sh('cat /out/lvmlockd.log')).stdout, /S lvm_vgw watchdog armed: expire \d+/);
      const armed2 = (await v2.sh('cat /out/lvmlockd.log')).stdout;
      assert.match(armed2, /S lvm_vgw watchdog armed/);
      assert.match(armed2, /S lvm_vgf watchdog armed/);

      // The two failures.
      const fail = await Promise.all([
        v1.shOk('kill -STOP $(cat /run/lvmlockd.pid)'),
        v2.shOk('dmsetup suspend --noflush pv0 && dmsetup load pv0 --table "0 $(blockdev --getsz /dev/vdb) error" && dmsetup resume pv0 && cut -d" " -f1 /proc/uptime'),
      ]);
      const t0 = Date.now();
      const up0 = Number(fail[1].stdout.trim());
      steps.note(v1, 'lvmlockd stopped (SIGSTOP): no renewal, no kill path');
      steps.note(v2, 'pv0 (vgf) switched to the error target');
      const since = (): number => (Date.now() - t0) / 1000;
      let resetS: number | null = null;
      void v1.exited.then(() => { resetS = since(); });

      let acquiredS: number | null = null;
      let attempts = 0;
      while (since() < 240) {
        attempts++;
        const r = await lvm(v2, ['lvchange', '-aey', 'vgw/lv1'], 60_000);
        if (r.code === 0) {
          acquiredS = since();
          break;
        }
        if (attempts === 1 || attempts % 10 === 0) vmLog(`watchdog: vm2 -aey vgw/lv1 try ${attempts} → ${r.code} ${firstLine(r.stderr, /^\s*$/)}`);
        await sleep(2000);
      }
      steps.note(v2, `lvchange -aey vgw/lv1 ${acquiredS === null ? 'never succeeded' : `succeeded at +${acquiredS.toFixed(1)} s`}`);
      // Without the disarm, vm2 would be reset by +HOST_DEAD_S: stay past that with a margin.
      if (since() < HOST_DEAD_S + 20) await sleep((HOST_DEAD_S + 20 - since()) * 1000);

      const tail1 = v1.tail();
      const kill = (await v2.sh('cat /out/kill.log 2>/dev/null')).stdout;
      const log2 = (await v2.sh('cat /out/lvmlockd.log')).stdout;
      const wdmdFailed = (await v2.sh('grep -c "test failed" /out/wdmd.log || true')).stdout.trim();
      const killStart = /^(\S+) start/m.exec(kill);
      const killDone = /^(\S+) done/m.exec(kill);
      const rel = (m: RegExpExecArray | null): string => (m ? `+${(Number(m[1]) - up0).toFixed(1)} s` : 'never');
      for (const l of [
        `vm1 (daemon stopped): reset by the watchdog at +${resetS} s; vm2 got vgw/lv1 at +${acquiredS} s (${attempts} tries)`,
        `vm2 (vgf's PV lost): kill command start ${rel(killStart)}, done ${rel(killDone)} (guest clock); still running at +${since().toFixed(0)} s; wdmd failed tests: ${wdmdFailed}`,
      ]) t.diagnostic(l);

      assert.notEqual(resetS, null, `vm1 was not reset:\n${tail1}`);
      assert.match(tail1, /softdog: Initiating system reboot/, 'the reset came from the watchdog');
      assert.notEqual(acquiredS, null, 'vm2 never got vgw/lv1');
      assert.ok(resetS! < acquiredS!, `vm2 got the lock (+${acquiredS} s) before vm1 was reset (+${resetS} s)`);

      assert.ok(v2.alive(), `vm2 was reset although its kill path completed:\n${v2.tail()}`);
      assert.ok(killDone, `vm2's kill command did not complete:\n${kill}`);
      assert.match(log2, /S lvm_vgf watchdog disarmed/, 'dropping the failed lockspace disarmed it');
      assert.doesNotMatch(log2, /S lvm_vgw watchdog disarmed/, 'vgw stays armed on vm2');
      assert.match((await v2.sh('lvmlockctl --info')).stdout, /^VG vgw /m, 'vgw still started on vm2');
    } finally {
      steps.save();
    }
    // vm2 leaves vgw cleanly (an armed lockspace must not outlive its daemon).
    await v2.shOk('lvm lvchange -an vgw/lv1 && lvm vgchange --lock-stop vgw');
  });
});
