// VM tier: IDM VGs on real SCSI disks. Each of three IDM drives is one
// firmware (bin/idm-drive, in vm1, on TCP over the VMs' network) and, in each
// VM, a TCMU backstore (bin/idm-tcmu) exported through tcm_loop: the guest
// kernel makes it /dev/sdX + /dev/sgN, the disk's blocks live on a shared
// virtio disk (O_DIRECT, so both VMs see one medium), its 0xF0 commands go to
// the drive's firmware. Our ILM (bin/ilmd, no ILM_DRIVE_MAP) reaches the drives
// only by SG_IO on /dev/sgN, our lvmlockd finds the global-lock drives the way
// C does (a GPT partition named "propeller" on a SCSI disk). Then: vgcreate
// --lock-type idm on the three disks, lock-start on both VMs, ex/sh exclusion
// with lvm's messages, a metadata change on one VM seen by the other (the VG
// lock's LVB timestamp on the drives), and LVM2's fabric-failure fault: with a
// lock held, one SCSI disk is deleted (sysfs device/delete) on the holder and
// later rescanned (scsi_host scan); the lock survives on 2 of 3 drives and the
// drive takes part again after the rescan.

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { VmCluster, type Vm } from './lib/vm';
import { vmSkipReason, vmLog, describeVm } from './lib/gate';
import { lvm, setupLvm, spawnDetached, startLvmlockd, waitFor, TS_LVMLOCKCTL } from './lib/stack';
import { sleep } from '../harness/exec';
import { IDM_DISK_MIB, firmwareState, idmWwn, lockIdHex, setupIdmScsiDisks, type FwEntry, type FwState, type ScsiDisk } from './lib/idm-scsi';

const skip = vmSkipReason();
const DRIVES = 3;
const STORAGE_ERRORS = /LV vgx\/lv1 lock failed: storage errors for sanlock leases/;

/** The ILM drive layer over SG_IO, run in the guest: version, wwn, a trylock or unlock+destroy as `hostByte`. */
function sgProbeScript(sg: string, hostByte: number, action: 'trylock' | 'release'): string {
  return `node -e '
const { SgIoTransport } = require("/repo/dist/src/idm/sg-io.js");
const { DriveCommands } = require("/repo/dist/src/ilm/drive-commands.js");
const { MutexOp } = require("/repo/dist/src/idm/record.js");
(async () => {
  const t = new SgIoTransport("${sg}");
  const d = new DriveCommands(t);
  const req = { lockId: Buffer.alloc(64, 0x51), hostId: Buffer.alloc(32, ${hostByte}), mode: 1, timeoutMs: 60000, timeNowMs: BigInt(Date.now()) };
  const out = { version: await d.version(), wwn: await d.wwn() };
  if ("${action}" === "trylock") out.trylock = await d.mutex(MutexOp.TRYLOCK, req);
  else { out.unlock = await d.mutex(MutexOp.UNLOCK, req); out.destroy = await d.mutex(MutexOp.DESTROY, req); }
  out.count = await d.count(req.lockId, req.hostId);
  console.log(JSON.stringify(out));
  t.close();
})().catch((e) => { console.error(e); process.exit(1); });
'`;
}

describeVm('vm tier: IDM VGs on TCMU SCSI disks, our lvmlockd + ILM over SG_IO, 2 VMs', { skip, timeout: 40 * 60_000 }, () => {
  let c: VmCluster | null = null;
  let disks = new Map<number, ScsiDisk[]>();
  let vgUuid = '';
  let lvUuid = '';
  const diskOf = (vm: Vm, i: number): ScsiDisk => disks.get(vm.index)![i]!;

  before(async () => {
    c = await VmCluster.create({
      vms: 2, disks: Array.from({ length: DRIVES }, () => ({ sizeMiB: IDM_DISK_MIB })), memMiB: 1536, name: 'idm-scsi', log: vmLog,
    });
  });

  after(async () => {
    if (c) {
      for (const vm of c.vms) {
        const r = await vm.sh('tail -n 30 /out/ilm.log /out/idm-tcmu*.log /out/idm-drive*.log 2>/dev/null; dmesg | grep -iE "tcmu|target|sd |scsi" | tail -n 30');
        vmLog(`${vm.name} logs:\n${r.stdout}`);
      }
      await c.destroy();
    }
  });

  it('three TCMU-backed SCSI disks in each VM, one firmware per drive: SG_IO reaches it from both VMs', async () => {
    const vm1 = c!.vm(1);
    disks = await setupIdmScsiDisks(c!, DRIVES, vmLog, { IDM_TCMU_STATS: '1' });
    const vm2 = c!.vm(2);
    for (const vm of c!.vms) {
      for (let i = 0; i < DRIVES; i++) {
        const d = diskOf(vm, i);
        const sys = await vm.shOk(`cat /sys/class/block/${d.sd}/device/wwid /sys/class/block/${d.sd}/device/vendor; grep PARTNAME /sys/class/block/${d.sd}/${d.sd}1/uevent`);
        assert.match(sys.stdout, new RegExp(`naa\\.${idmWwn(i)}\\n`), `${vm.name} drive${i} wwid`);
        assert.match(sys.stdout, /LVMLKDTS/);
        assert.match(sys.stdout, /PARTNAME=propeller/, `${vm.name} sees the GPT name`);
      }
    }
    // blocks: an O_DIRECT write through vm1's SCSI disk is read through vm2's
    await vm1.shOk(`head -c 4096 /dev/urandom > /run/idm-pattern && dd if=/run/idm-pattern of=/dev/${diskOf(vm1, 1).sd}2 bs=4096 count=1 seek=100 oflag=direct status=none && sha256sum < /run/idm-pattern`);
    const want = (await vm1.shOk('sha256sum < /run/idm-pattern')).stdout;
    const got = (await vm2.shOk(`dd if=/dev/${diskOf(vm2, 1).sd}2 bs=4096 count=1 skip=100 iflag=direct status=none | sha256sum`)).stdout;
    assert.equal(got, want, 'vm2 reads what vm1 wrote through its SCSI disk');
    // the ILM's own drive layer over SG_IO: one firmware for both VMs
    const p1 = JSON.parse((await vm1.shOk(sgProbeScript(`/dev/${diskOf(vm1, 0).sg}`, 0x61, 'trylock'), { timeoutMs: 60_000 })).stdout) as Record<string, unknown>;
    vmLog(`vm1 SG_IO probe: ${JSON.stringify(p1)}`);
    assert.deepEqual(p1.version, { rv: 0, major: 8, minor: 0 });
    assert.deepEqual(p1.wwn, { rv: 0, wwn: idmWwn(0) });
    assert.equal(p1.trylock, 0);
    assert.deepEqual(p1.count, { rv: 0, count: 0, self: 1 });
    const p2 = JSON.parse((await vm2.shOk(sgProbeScript(`/dev/${diskOf(vm2, 0).sg}`, 0x62, 'trylock'), { timeoutMs: 60_000 })).stdout) as Record<string, unknown>;
    vmLog(`vm2 SG_IO probe: ${JSON.stringify(p2)}`);
    assert.equal(p2.trylock, -16, 'vm2 gets RESERVATION CONFLICT -> -EBUSY through its own SCSI disk');
    assert.deepEqual(p2.count, { rv: 0, count: 1, self: 0 });
    const p3 = JSON.parse((await vm1.shOk(sgProbeScript(`/dev/${diskOf(vm1, 0).sg}`, 0x61, 'release'), { timeoutMs: 60_000 })).stdout) as Record<string, unknown>;
    assert.equal(p3.unlock, 0);
    assert.deepEqual(p3.count, { rv: 0, count: 0, self: 0 });
  });

  it('vgcreate --lock-type idm on the SCSI disks, lock-start on both VMs, ex/sh exclusion, the LVB', async () => {
    assert.equal(disks.size, 2, 'the disks came up');
    const [vm1, vm2] = [c!.vm(1), c!.vm(2)];
    for (const vm of c!.vms) {
      await setupLvm(vm, { devices: disks.get(vm.index)!.map((d) => `/dev/${d.sd}2`) });
      await spawnDetached(vm, ['/repo/bin/ilmd', '-D', '1', '-E', '6'], 'ilm.log', { ILM_LOG_DIR: '/run/seagate_ilm' });
      await waitFor(vm, 'test -S /run/seagate_ilm/main.sock', 60_000, 'the ILM');
      await startLvmlockd(vm, { kind: 'ts' });
    }
    const pvs = disks.get(1)!.map((d) => `/dev/${d.sd}2`);
    const vg = await lvm(vm1, ['vgcreate', '--shared', '--lock-type', 'idm', 'vgx', ...pvs]);
    assert.equal(vg.code, 0, `${vg.stdout}\n${vg.stderr}`);
    const st = await lvm(vm2, ['vgchange', '--lock-start', 'vgx']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /VG vgx starting idm lockspace/);
    vgUuid = (await lvm(vm1, ['vgs', '--noheadings', '-o', 'vg_uuid', 'vgx'])).stdout.trim();
    const lc = await lvm(vm1, ['lvcreate', '-an', '-n', 'lv1', '-i', '3', '-I', '64k', '-L', '12M', 'vgx']);
    assert.equal(lc.code, 0, lc.stderr);
    lvUuid = (await lvm(vm2, ['lvs', '--noheadings', '-o', 'lv_uuid', 'vgx/lv1'])).stdout.trim();
    assert.match(lvUuid, /^\w{6}(-\w{4}){5}-\w{6}$/, 'vm2 sees the LV vm1 created');

    // ex on vm1: the mutex on all three drives, ex and sh refused on vm2
    const ex1 = await lvm(vm1, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(ex1.code, 0, ex1.stderr);
    assert.match((await vm1.shOk(`${TS_LVMLOCKCTL} --info`)).stdout, new RegExp(`^LK LV ex ${lvUuid}$`, 'm'));
    for (let i = 0; i < DRIVES; i++) {
      const m = (await firmwareState(vm1, i)).mutexes.find((x) => x.lockId === lockIdHex(vgUuid, lvUuid));
      assert.equal(m?.entries.filter((e) => e.locked).length, 1, `drive ${i} holds the LV's mutex once`);
    }
    for (const flag of ['-aey', '-asy']) {
      const r = await lvm(vm2, ['lvchange', flag, 'vgx/lv1']);
      assert.equal(r.code, 5, `vm2 lvchange ${flag}: ${r.stderr}`);
      assert.match(r.stderr, STORAGE_ERRORS);
    }
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);
    // sh on both; ex refused while shared
    assert.equal((await lvm(vm1, ['lvchange', '-asy', 'vgx/lv1'])).code, 0);
    assert.equal((await lvm(vm2, ['lvchange', '-asy', 'vgx/lv1'])).code, 0);
    const m = (await firmwareState(vm1, 0)).mutexes.find((x) => x.lockId === lockIdHex(vgUuid, lvUuid));
    assert.equal(m?.entries.filter((e) => e.locked).length, 2, 'two shared holders on the drive');
    assert.equal((await vm2.exec(['test', '-b', '/dev/mapper/vgx-lv1'])).code, 0, 'vm2 activated the LV on its SCSI disks');
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);
    const ex2 = await lvm(vm1, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(ex2.code, 5, ex2.stderr);
    assert.match(ex2.stderr, STORAGE_ERRORS);
    assert.equal((await lvm(vm2, ['lvchange', '-an', 'vgx/lv1'])).code, 0);

    // a metadata change on vm1: a fresh timestamp in the VG lock's LVB on every drive, vm2 sees the change
    const lvbOf = (s: FwState): bigint => {
      const hex = s.mutexes.find((x) => x.lockId === lockIdHex(vgUuid))?.lvb ?? s.keptLvbs[lockIdHex(vgUuid)];
      return hex ? Buffer.from(hex, 'hex').readBigUInt64LE(0) : 0n;
    };
    const before = lvbOf(await firmwareState(vm1, 0));
    assert.equal((await lvm(vm1, ['lvcreate', '-an', '-n', 'lv2', '-L', '8M', 'vgx'])).code, 0);
    const after1 = lvbOf(await firmwareState(vm1, 0));
    assert.ok(after1 > before, `the VG LVB moved on (${before} -> ${after1})`);
    for (let i = 1; i < DRIVES; i++) assert.equal(lvbOf(await firmwareState(vm1, i)), after1, `drive ${i} has the same LVB`);
    assert.match((await lvm(vm2, ['lvs', '--noheadings', '-o', 'lv_name', 'vgx'])).stdout, /lv2/, 'vm2 sees lv2');
    assert.equal((await lvm(vm2, ['lvremove', '-y', 'vgx/lv2'])).code, 0);
    assert.doesNotMatch((await lvm(vm1, ['lvs', '--noheadings', '-o', 'lv_name', 'vgx'])).stdout, /lv2/, 'vm1 sees it gone');
    const ilm = await vm1.sh('grep -c "" /out/ilm.log; grep -ci "drive map" /out/ilm.log');
    vmLog(`vm1 ilm.log lines / drive-map mentions: ${ilm.stdout.replace(/\n/g, ' ')}`);
  });

  it('fabric failure: a SCSI disk deleted on the holder and rescanned; the lock survives on 2 of 3 drives', async () => {
    assert.ok(lvUuid, 'the VG exists');
    const [vm1, vm2] = [c!.vm(1), c!.vm(2)];
    assert.equal((await lvm(vm1, ['lvchange', '-aey', 'vgx/lv1'])).code, 0);
    const lock = lockIdHex(vgUuid, lvUuid);
    const vm1Entry = async (i: number): Promise<FwEntry | undefined> => {
      const m = (await firmwareState(vm1, i)).mutexes.find((x) => x.lockId === lock);
      return m?.entries.find((e) => e.locked);
    };
    const gone = diskOf(vm1, 2);
    await vm1.shOk(`echo 1 > /sys/block/${gone.sd}/device/delete`);
    await waitFor(vm1, `! test -e /sys/block/${gone.sd}`, 30_000, `${gone.sd} gone`);
    const t0 = Date.now();
    await sleep(20_000);
    // still held: on vm1's daemon, refused to vm2, renewed on drives 0 and 1 but not on the deleted one
    assert.match((await vm1.shOk(`${TS_LVMLOCKCTL} --info`)).stdout, new RegExp(`^LK LV ex ${lvUuid}$`, 'm'));
    const r = await lvm(vm2, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(r.code, 5, `vm2 must still be refused: ${r.stderr}`);
    assert.match(r.stderr, STORAGE_ERRORS);
    const now = Date.now();
    for (const i of [0, 1]) {
      const e = await vm1Entry(i);
      assert.ok(e, `drive ${i} still holds vm1's entry`);
    }
    const stale = await vm1Entry(2);
    assert.ok(stale, 'drive 2 keeps vm1\'s entry (not yet expired)');
    const fresh0 = (await vm1Entry(0))!.lastRefreshMs;
    vmLog(`after ${(now - t0) / 1000} s without ${gone.sd}: drive0 refreshed ${fresh0}, drive2 refreshed ${stale.lastRefreshMs} (drive clock)`);
    assert.ok(fresh0 - stale.lastRefreshMs > 10_000, 'drive 2 was not refreshed while its disk was gone, drive 0 was');
    // rescan: the disk comes back (maybe under another name), the ILM finds it by its wwid and renews there again
    await vm1.shOk(`echo "- - -" > /sys/class/scsi_host/${gone.host}/scan && udevadm settle -t 30`, { timeoutMs: 60_000 });
    const back = await waitFor(vm1, `for b in /sys/class/block/sd*; do [ "$(cat $b/device/wwid 2>/dev/null)" = "naa.${idmWwn(2)}" ] && basename $b; done | grep .`, 60_000, 'the disk back');
    vmLog(`vm1: drive2 back as /dev/${back.stdout.trim()}`);
    const deadline = Date.now() + 30_000;
    let refreshed = false;
    while (Date.now() < deadline && !refreshed) {
      await sleep(2000);
      const e2 = await vm1Entry(2);
      refreshed = e2 !== undefined && e2.lastRefreshMs > stale.lastRefreshMs;
    }
    assert.ok(refreshed, 'vm1 renews its lock on drive 2 again after the rescan');
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);
    const ok2 = await lvm(vm2, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(ok2.code, 0, `vm2 gets the lock once vm1 released it: ${ok2.stderr}`);
    for (let i = 0; i < DRIVES; i++) {
      const m = (await firmwareState(vm1, i)).mutexes.find((x) => x.lockId === lock);
      assert.equal(m?.entries.filter((e) => e.locked).length, 1, `drive ${i}: vm2's mutex (all three drives, drive 2 included)`);
    }
    assert.equal((await lvm(vm2, ['lvchange', '-an', 'vgx/lv1'])).code, 0);
  });
});
