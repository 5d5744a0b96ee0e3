// VM tier: IDM VGs on NVMe namespaces reached through the kernel. vm1 runs
// three emulated IDM drives with an NVMe/TCP front end (bin/idm-drive
// --nvme-tcp: one firmware and one backing file per drive); both VMs connect
// to them with the kernel's NVMe/TCP host driver (nvme-tcp, by writing the
// option string to /dev/nvme-fabrics: the guest has no nvme-cli), so each VM
// sees three /dev/nvmeXn1 namespaces. On each VM our lvmlockd and our ILM
// (bin/ilmd, no drive map) reach the drives by NVMe admin passthrough only
// (NVME_IOCTL_ADMIN_CMD with the IDM vendor opcodes, as propeller):
// vgcreate --shared --lock-type idm on the three namespaces, lock-start on
// both, ex/sh exclusion across the VMs with lvm's messages, and the mutexes
// of both hosts in the drives' firmware state.
// lvm's global lock drives are found by C (and us) only among SCSI disks with
// a partition named "propeller"; NVMe namespaces are passed with our
// LVMLOCKD_IDM_GL_DRIVES extension.

import assert from 'node:assert/strict';
import { it, after } from 'node:test';
import { VmCluster, type Vm } from './lib/vm';
import { vmSkipReason, vmLog, describeVm } from './lib/gate';
import { setupLvm, spawnDetached, waitFor, TS_LVMLOCKD } from './lib/stack';
import { Steps, lockStart, runUntilOk } from './lib/scenarios';

// lvm's message for a lock another host holds in an IDM VG: as C's
// lm_lock_idm, lvmlockd answers every ILM refusal with -ELOCKIO, which lvm
// words as sanlock's storage errors (test/integration/idm-lvm.test.ts too).
const REFUSED = /LV vgn\/lv1 lock failed: storage errors for sanlock leases/;

const skip = vmSkipReason();
const DRIVES = 3;
const PORT0 = 4420;
const nqn = (i: number): string => `nqn.2026-12.io.lvmlockd-ts:idm-drive${i}`;
const wwn = (i: number): string => `5000c5000000000${i + 1}`;
const LOCK_TIMEOUT_MS = 60_000;

/** The guest's /dev/nvmeXn1 of drive i, by the EUI-64 the drive reports (sysfs wwid). */
async function namespaceOf(vm: Vm, i: number): Promise<string> {
  const r = await waitFor(vm, `for d in /sys/class/block/nvme*n1; do [ "$(cat $d/wwid 2>/dev/null)" = "eui.${wwn(i)}" ] && echo /dev/$(basename $d) && exit 0; done; exit 1`,
    60_000, `namespace of drive ${i}`);
  return r.stdout.trim();
}

async function mutexHosts(vm: Vm, i: number): Promise<Array<{ lockId: string; hosts: number }>> {
  const r = await vm.shOk(`cat /var/tmp/idm/drive${i}.json`);
  const st = JSON.parse(r.stdout) as { mutexes: Array<{ lockId: string; entries: Array<{ hostId: string; locked: boolean }> }> };
  return st.mutexes.map((m) => ({ lockId: m.lockId, hosts: m.entries.filter((e) => e.locked).length }));
}

describeVm('vm tier: IDM VG on NVMe/TCP namespaces, our lvmlockd + ILM by NVMe passthrough, 2 VMs', { skip, timeout: 30 * 60_000 }, () => {
  let c: VmCluster | null = null;
  after(async () => {
    if (c) await c.destroy();
  });

  it('vgcreate --lock-type idm on 3 NVMe namespaces, lock-start on both VMs, ex/sh exclusion', async (t) => {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 16 }], name: 'idm-nvme', log: vmLog });
    const [v1, v2] = [c.vm(1), c.vm(2)];
    const steps = new Steps(c, 'idm-nvme', vmLog);
    const t0 = Date.now();
    try {
      for (const vm of c.vms) {
        const m = await vm.sh('modprobe nvme-tcp && test -c /dev/nvme-fabrics', { timeoutMs: 60_000 });
        assert.equal(m.code, 0, `${vm.name}: the NVMe/TCP host driver is not available: ${m.stderr}`);
      }
      // the drives, in vm1, on its hub address: both VMs reach them over the network
      await v1.shOk('mkdir -p /var/tmp/idm');
      for (let i = 0; i < DRIVES; i++) {
        await v1.shOk(`truncate -s 256M /var/tmp/idm/drive${i}.img`);
        await spawnDetached(v1, ['/repo/bin/idm-drive', '--nvme-tcp', `${v1.address}:${PORT0 + i}`, '--nqn', nqn(i),
          '--backing', `/var/tmp/idm/drive${i}.img`, '--state', `/var/tmp/idm/drive${i}.json`, '--wwn', wwn(i)], `idm-drive${i}.log`);
      }
      for (let i = 0; i < DRIVES; i++) await waitFor(v1, `grep -q ready /out/idm-drive${i}.log`, 120_000, `idm-drive ${i}`);
      steps.note(v1, `3 NVMe/TCP drives listening on ${v1.address}:${PORT0}-${PORT0 + DRIVES - 1}`);

      const paths = new Map<Vm, string[]>();
      for (const vm of c.vms) {
        for (let i = 0; i < DRIVES; i++) {
          const opts = `transport=tcp,traddr=${v1.address},trsvcid=${PORT0 + i},nqn=${nqn(i)},hostnqn=nqn.2014-08.org.nvmexpress:vm-${vm.index},nr_io_queues=1`;
          const r = await vm.sh(`printf '%s' '${opts}' > /dev/nvme-fabrics`, { timeoutMs: 120_000 });
          assert.equal(r.code, 0, `${vm.name}: connect to drive ${i} failed: ${r.stderr}\n${(await vm.sh('dmesg | tail -30')).stdout}`);
        }
        const p: string[] = [];
        for (let i = 0; i < DRIVES; i++) p.push(await namespaceOf(vm, i));
        paths.set(vm, p);
        steps.note(vm, `NVMe namespaces ${p.join(' ')}`);
      }

      for (const vm of c.vms) {
        const p = paths.get(vm)!;
        await setupLvm(vm, { devices: p });
        // our ILM: no drive map, so a path can only resolve as an NVMe namespace (or a SCSI disk)
        await spawnDetached(vm, ['/repo/bin/ilmd', '-D', '1', '-E', '7'], 'ilm.log', { ILM_LOG_DIR: '/run/seagate_ilm' });
        await waitFor(vm, 'test -S /run/seagate_ilm/main.sock', 60_000, 'ILM socket');
        await spawnDetached(vm, [TS_LVMLOCKD, '-D'], 'lvmlockd.log', {
          LVMLOCKD_IDM_GL_DRIVES: p.join(','), LVMLOCKD_IDM_TIMEOUT_MS: String(LOCK_TIMEOUT_MS),
        });
        await waitFor(vm, 'test -S /run/lvm/lvmlockd.socket && lvmlockctl --info >/dev/null 2>&1', 60_000, 'our lvmlockd');
      }

      const vg = 'vgn';
      const lv = `${vg}/lv1`;
      const cr = await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'idm', vg, ...paths.get(v1)!]);
      assert.match(cr.stdout, /starting idm lockspace/);
      const st = await lockStart(steps, v2, vg);
      assert.match(st.stdout, /starting idm lockspace/);

      await steps.run(v1, ['lvcreate', '-n', 'lv1', '-L', '16M', vg]);
      const r1 = await steps.run(v2, ['lvchange', '-aey', lv], 5);
      assert.match(r1.stderr, REFUSED);
      const r2 = await steps.run(v2, ['lvchange', '-asy', lv], 5);
      assert.match(r2.stderr, REFUSED);
      // the LV lock on the drive under the LV: held by one host
      const lvLocks = async (): Promise<number[]> => {
        const counts: number[] = [];
        for (let i = 0; i < DRIVES; i++) for (const m of await mutexHosts(v1, i)) if (!/^0+$/.test(m.lockId.slice(64)) && m.hosts > 0) counts.push(m.hosts);
        return counts;
      };
      assert.deepEqual(await lvLocks(), [1], 'one ex holder of the LV lock, on the one drive under the LV');

      await steps.run(v1, ['lvchange', '-an', lv]);
      await steps.run(v1, ['lvchange', '-asy', lv]);
      await steps.run(v2, ['lvchange', '-asy', lv]);
      assert.deepEqual(await lvLocks(), [2], 'both VMs hold the LV lock sh in the drive');
      steps.note(v1, 'drive firmware: LV mutex held sh by 2 hosts');
      // a convert of vm2's own sh lock to ex (lvm's wording for a failed convert is not the point here)
      const r3 = await steps.run(v2, ['lvchange', '-aey', lv], 'nonzero');
      steps.note(v2, 'lvchange -aey over sh held by both', r3.durationMs, r3.code, r3.stderr.trim().split('\n')[0] ?? '');
      await steps.run(v1, ['lvchange', '-an', lv]);
      await steps.run(v2, ['lvchange', '-an', lv]);

      await steps.run(v2, ['lvchange', '-aey', lv]);
      const r4 = await steps.run(v1, ['lvchange', '-aey', lv], 5);
      assert.match(r4.stderr, REFUSED);
      await steps.run(v2, ['lvchange', '-an', lv]);

      // nothing reached the drives but NVMe: the ILMs had no drive map, so every drive was an NVMe namespace
      for (const vm of c.vms) {
        const log = (await vm.sh('cat /out/ilm.log')).stdout;
        assert.doesNotMatch(log, /counted as failed/, `${vm.name}: the ILM failed to resolve a drive:\n${log.slice(-3000)}`);
      }

      await steps.run(v1, ['lvremove', '-y', lv]);
      await steps.run(v2, ['vgchange', '--lock-stop', vg]);
      await runUntilOk(steps, v1, ['vgremove', '-y', vg], 60_000);
    } catch (e) {
      for (const vm of c.vms) {
        for (const f of ['ilm.log', 'lvmlockd.log']) t.diagnostic(`--- ${vm.name} ${f}\n${(await vm.sh(`tail -40 /out/${f}`).catch(() => ({ stdout: '' }))).stdout}`);
        t.diagnostic(`--- ${vm.name} dmesg\n${(await vm.sh('dmesg | grep -i nvme | tail -30').catch(() => ({ stdout: '' }))).stdout}`);
      }
      t.diagnostic(`--- vm1 drive logs\n${(await v1.sh('tail -20 /out/idm-drive*.log').catch(() => ({ stdout: '' }))).stdout}`);
      throw e;
    } finally {
      steps.save();
      for (const l of `idm-nvme sequence ${((Date.now() - t0) / 1000).toFixed(1)} s\n${steps.table()}`.split('\n')) t.diagnostic(l);
    }
  });
});
