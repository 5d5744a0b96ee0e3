// VM tier: OUR daemon with dlm VGs on the kernel DLM (corosync + dlm_controld,
// as the C reference in 03-c-dlm), against the real libdlm. For ours on both
// VMs, then C on vm1 and ours on vm2, then ours on vm1 and C on vm2: the 03
// activation and exclusion sequence, then the dlm specifics: the global
// lockspace starts with the first dlm VG and goes with the last, the VG lock's
// value block carries the VG version from one host to the other (C and ours
// lay it out the same way), lvextend of an LV active shared on both VMs
// refreshes the other VM's dm table through dlm_controld's run API, and
// vgremove is refused while the other VM has the lockspace. Then the failure
// cases with ours: the daemon killed with SIGKILL and restarted with -A 1
// adopts its orphaned LV lock (the other VM stays refused meanwhile), and a VM
// powered off while holding an LV ex: the other VM gets the lock only after
// dlm_controld has fenced (a recording fence agent) and recovered.

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VmCluster, type Vm } from './lib/vm';
import { tsLmSkipReason, vmLog, describeVm } from './lib/gate';
import {
  DaemonKind, RECORDING_FENCE_AGENT, restartDlmControld, setupLvm, startDlmStack, startLvmlockd, stopLvmlockd, waitFor,
} from './lib/stack';
import { Steps, activationSequence, lockStart, runUntilOk, LOCKED_BY_OTHER } from './lib/scenarios';
import { killPid } from '../harness/exec';

const skip = tsLmSkipReason('dlm');

async function restartDaemons(c: VmCluster, kinds: DaemonKind[], args: string[] = []): Promise<void> {
  await Promise.all(c.vms.map(async (vm) => {
    // leave the DLM lockspaces cleanly (lvm_global too) before switching daemons; a
    // scenario that failed half-way may have left LVs active and a VG on the disk
    await vm.sh('dmsetup remove_all --force >/dev/null 2>&1; lvmlockctl --stop-lockspaces >/dev/null 2>&1; sleep 2');
    await stopLvmlockd(vm);
  }));
  await c.vm(1).sh('dd if=/dev/zero of=/dev/vdb bs=1M count=8 oflag=direct status=none', { timeoutMs: 60_000 });
  await Promise.all(c.vms.map((vm, i) => startLvmlockd(vm, { kind: kinds[i]!, args })));
}

async function dlmLockspaces(vm: Vm): Promise<string[]> {
  const r = await vm.sh('dlm_tool ls 2>/dev/null | sed -n "s/^name *//p"');
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('lvm_')).sort();
}

/** The VG lock's version in this VM's daemon (lvmlockctl --info: the LK VG line under LS dlm lvm_<vg>). */
async function vgLockVersion(vm: Vm, vg: string): Promise<number | null> {
  const info = (await vm.sh('lvmlockctl --info')).stdout;
  const ls = info.split(/\n\n+/).find((b) => new RegExp(`^LS dlm lvm_${vg}$`, 'm').test(b)) ?? '';
  const m = /^LK VG \w+ ver (\d+)$/m.exec(ls);
  return m ? Number(m[1]) : null;
}

async function dmSectors(vm: Vm, dmName: string): Promise<number> {
  const r = await vm.sh(`dmsetup table ${dmName}`);
  return Number(r.stdout.split(' ')[1] ?? 'NaN');
}

/** The dlm specifics on a second VG, with whatever daemons run. */
async function dlmSequence(c: VmCluster, steps: Steps, vg: string, extender: DaemonKind): Promise<void> {
  const [v1, v2] = [c.vm(1), c.vm(2)];
  const lvDm = `${vg}-lv1`;
  await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'dlm', vg, '/dev/vdb']);
  const ls1 = await dlmLockspaces(v1);
  assert.ok(ls1.includes('lvm_global') && ls1.includes(`lvm_${vg}`), `the global lockspace starts with the first dlm VG: ${ls1.join(' ')}`);
  await lockStart(steps, v2, vg);
  const ls2 = await dlmLockspaces(v2);
  assert.ok(ls2.includes('lvm_global') && ls2.includes(`lvm_${vg}`), ls2.join(' '));

  // a metadata change on vm1 reaches vm2 through the VG lock's value block
  await steps.run(v1, ['lvcreate', '-an', '-n', 'lv1', '-L', '64M', vg]);
  await steps.run(v2, ['lvs', `${vg}/lv1`]);
  const ver1 = await vgLockVersion(v1, vg), ver2 = await vgLockVersion(v2, vg);
  steps.note(v2, 'VG lock version (LVB) vm1 / vm2', 0, 0, `${ver1} / ${ver2}`);
  assert.ok(ver1 !== null && ver1 > 0, `vm1 VG lock version ${ver1}`);
  assert.equal(ver2, ver1, 'vm2 read the version vm1 wrote into the LVB');

  // lvextend of an LV active shared on both VMs refreshes vm2's dm table (dlm_controld run API)
  await steps.run(v1, ['lvchange', '-asy', `${vg}/lv1`]);
  await steps.run(v2, ['lvchange', '-asy', `${vg}/lv1`]);
  assert.equal(await dmSectors(v2, lvDm), 131072);
  const ext = await steps.run(v1, ['lvextend', '--lockopt', 'shupdate', '-L', '128M', `${vg}/lv1`]);
  assert.match(ext.stderr, new RegExp(`Refreshing LV /dev/+${vg}/lv1 on other hosts`));
  assert.equal(await dmSectors(v1, lvDm), 262144);
  const s2 = await dmSectors(v2, lvDm);
  steps.note(v2, 'dm table sectors after vm1 lvextend', 0, 0, String(s2));
  // Debian's C lvmlockd 2.03.16 is built without libdlmcontrol: its refresh_lv does nothing,
  // so only our daemon on vm1 can refresh vm2.
  if (extender === 'ts') assert.equal(s2, 262144, 'vm2 was refreshed to the new size');
  await steps.run(v1, ['lvchange', '-an', `${vg}/lv1`]);
  await steps.run(v2, ['lvchange', '-an', `${vg}/lv1`]);
  await steps.run(v1, ['lvremove', '-y', `${vg}/lv1`]);

  // vgremove needs the lockspace stopped on the other host
  const busy = await steps.run(v1, ['vgremove', '-y', vg], 'nonzero');
  steps.note(v1, 'vgremove while vm2 has the lockspace', busy.durationMs, busy.code, busy.stderr.trim().split('\n').pop() ?? '');
  await steps.run(v2, ['vgchange', '--lock-stop', vg]);
  await waitFor(v2, `! dlm_tool ls | grep -q "^name *lvm_\\(global\\|${vg}\\)$"`, 30_000, 'vm2 left lvm_global with its last dlm VG');
  await runUntilOk(steps, v1, ['vgremove', '-y', vg], 60_000);
  // C 2.03.16 leaves the VG's lockspace on vgremove but keeps lvm_global (seen 2026-12-02 with C
  // on vm1); a lock-stop of the last dlm VG (vm2 above) does leave lvm_global.
  await waitFor(v1, `! dlm_tool ls | grep -q "^name *lvm_${vg}$"`, 30_000, 'vm1 left the removed VG\'s lockspace');
}

describeVm('vm tier: our lvmlockd with dlm VGs on the kernel DLM, 2 VMs', { skip, timeout: 45 * 60_000 }, () => {
  let c: VmCluster;

  before(async () => {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'ts-dlm', log: vmLog });
    await Promise.all(c.vms.map((vm) => setupLvm(vm)));
    await startDlmStack(c);
  });

  after(async () => {
    if (c) await c.destroy();
  });

  for (const [first, second] of [['ts', 'ts'], ['c', 'ts'], ['ts', 'c']] as Array<[DaemonKind, DaemonKind]>) {
    it(`vm1 ${first}, vm2 ${second}: activation, exclusion, global lockspace, LVB, refresh, vgremove`, async (t) => {
      await restartDaemons(c, [first, second]);
      const label = `dlm-${first}-${second}`;
      const steps = new Steps(c, label, vmLog);
      const t0 = Date.now();
      try {
        await activationSequence(c, steps, { lockType: 'dlm', vg: `vgd${first}${second}` });
        await dlmSequence(c, steps, `vgx${first}${second}`, first);
      } finally {
        steps.save();
        for (const l of `${label} sequence ${((Date.now() - t0) / 1000).toFixed(1)} s\n${steps.table()}`.split('\n')) t.diagnostic(l);
      }
    });
  }

  it('ours killed with SIGKILL and restarted with -A 1: the LV lock is adopted, vm2 stays refused', async (t) => {
    await restartDaemons(c, ['ts', 'ts'], ['-A', '1']);
    const [v1, v2] = [c.vm(1), c.vm(2)];
    const steps = new Steps(c, 'dlm-adopt', vmLog);
    const vg = 'vgadopt';
    try {
      await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'dlm', vg, '/dev/vdb']);
      await lockStart(steps, v2, vg);
      await steps.run(v1, ['lvcreate', '-n', 'lv1', '-L', '64M', vg]);
      const uuid = (await v1.shOk(`lvs --noheadings -o lv_uuid ${vg}/lv1`)).stdout.trim();
      await v1.shOk('kill -9 $(cat /run/lvmlockd.pid)');
      steps.note(v1, 'lvmlockd killed with SIGKILL');
      const orphan = (await v1.sh(`dlm_tool lockdebug lvm_${vg}`)).stdout;
      t.diagnostic(`vm1 lockdebug after kill:\n${orphan}`);
      assert.match((await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`], 5)).stderr, LOCKED_BY_OTHER, 'the orphan still protects the LV');
      await stopLvmlockd(v1);
      await startLvmlockd(v1, { kind: 'ts', args: ['-A', '1'] });
      const info = (await v1.shOk('lvmlockctl --info')).stdout;
      steps.note(v1, 'restarted with -A 1', 0, 0, info.split('\n').filter((l) => l.startsWith('LK LV')).join('; '));
      assert.match(info, new RegExp(`^LK LV ex ${uuid}$`, 'm'), `adopted:\n${info}`);
      assert.match((await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`], 5)).stderr, LOCKED_BY_OTHER, 'vm2 still refused');
      await steps.run(v1, ['lvchange', '-an', `${vg}/lv1`]);
      await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`]);
      await steps.run(v2, ['lvchange', '-an', `${vg}/lv1`]);
      await steps.run(v1, ['lvremove', '-y', `${vg}/lv1`]);
      await steps.run(v2, ['vgchange', '--lock-stop', vg]);
      await runUntilOk(steps, v1, ['vgremove', '-y', vg], 60_000);
    } finally {
      steps.save();
      for (const l of steps.table().split('\n')) t.diagnostic(l);
    }
  });

  // Not yet passed once (its first runs on 2026-12-02 had not finished when they were stopped),
  // so it does not run in CI, where a hang would cost the suite timeout: skipped loudly unless
  // LVMLOCKD_VM_DLM_POWEROFF=1.
  const poweroffSkip = process.env.LVMLOCKD_VM_DLM_POWEROFF === '1'
    ? false
    : 'NOT RUN: the power-off/fencing scenario has not passed yet (LVMLOCKD_VM_DLM_POWEROFF=1 runs it)';
  it('vm1 powered off while holding an LV ex: vm2 gets the lock only after fencing and recovery', { skip: poweroffSkip }, async (t) => {
    // every lockspace stopped, dlm_controld again with fencing through the recording agent
    await Promise.all(c.vms.map(async (vm) => {
      await vm.sh('lvmlockctl --stop-lockspaces >/dev/null 2>&1; sleep 2');
      await stopLvmlockd(vm);
    }));
    await restartDlmControld(c, { fenceAgent: RECORDING_FENCE_AGENT });
    await restartDaemons(c, ['ts', 'ts']);
    const [v1, v2] = [c.vm(1), c.vm(2)];
    const steps = new Steps(c, 'dlm-poweroff', vmLog);
    const vg = 'vgfence';
    try {
      await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'dlm', vg, '/dev/vdb']);
      await lockStart(steps, v2, vg);
      await steps.run(v1, ['lvcreate', '-n', 'lv1', '-L', '64M', vg]);
      assert.match((await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`], 5)).stderr, LOCKED_BY_OTHER);
      await v2.sh('rm -f /out/fence.log');
      const t0 = Date.now();
      killPid(v1.pid, 'SIGKILL');
      steps.note(v1, 'qemu killed (power off)');
      let granted = false;
      let tries = 0;
      while (Date.now() - t0 < 240_000) {
        tries++;
        const r = await v2.exec(['lvm', 'lvchange', '-aey', `${vg}/lv1`], { timeoutMs: 240_000 });
        if (r.code === 0) { granted = true; break; }
        assert.match(r.stderr, LOCKED_BY_OTHER, `vm2 lvchange -aey: ${r.stderr}`);
        await new Promise((res) => setTimeout(res, 2000));
      }
      const grantedUptime = Number((await v2.shOk("cut -d' ' -f1 /proc/uptime")).stdout);
      steps.note(v2, 'lvchange -aey granted after power off', Date.now() - t0, granted ? 0 : 1, `${tries} tries`);
      assert.ok(granted, 'vm2 never got the lock');
      const fence = fs.existsSync(path.join(v2.outDir, 'fence.log')) ? fs.readFileSync(path.join(v2.outDir, 'fence.log'), 'utf8') : '';
      t.diagnostic(`vm2 fence.log: ${fence.trim()}`);
      const m = /fence .*node=1\b.* uptime ([\d.]+)/.exec(fence);
      assert.ok(m, `dlm_controld on vm2 did not run the fence agent for node 1: ${JSON.stringify(fence)}`);
      assert.ok(Number(m[1]) <= grantedUptime, `fenced at ${m[1]} s, lock granted at ${grantedUptime} s (guest uptime)`);
      await steps.run(v2, ['lvchange', '-an', `${vg}/lv1`]);
    } finally {
      steps.save();
      for (const l of steps.table().split('\n')) t.diagnostic(l);
    }
  });
});
