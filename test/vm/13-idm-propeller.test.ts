// VM tier: interop with the real propeller daemon (Seagate's seagate_ilm,
// built from its source by hand: CI cannot fetch it). Runs only when
// LVMLOCKD_VM_PROPELLER names the directory of a propeller build (the one
// holding `seagate_ilm`, propeller's src/ after `make`); it is shared
// read-only into the guests. Without it the file says loudly that it did not
// run. The drives are the TCMU SCSI disks of 11-idm-scsi (lib/idm-scsi.ts):
// propeller reaches them as it reaches real drives, through udev (ID_WWN),
// sysfs (the disk's scsi_generic node) and SG_IO / sg read-write on /dev/sgN.
// (a) both VMs run the real seagate_ilm under our lvmlockd: vgcreate
//     --lock-type idm, lock-start, ex/sh exclusion, the VG LVB, host count and
//     mode as propeller reads them from our firmware;
// (b) vm1 switches to our ILM, vm2 keeps propeller's, same drives: each side
//     is refused what the other holds, both hold sh together, and each reads
//     the LVB the other wrote.

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VmCluster, type Vm } from './lib/vm';
import { vmSkipReason, vmLog, describeVm } from './lib/gate';
import { lvm, setupLvm, spawnDetached, startLvmlockd, stopLvmlockd, waitFor, TS_LVMLOCKCTL } from './lib/stack';
import { IDM_DISK_MIB, idmWwn, setupIdmScsiDisks, firmwareState, lockIdHex, vgLvb, type ScsiDisk } from './lib/idm-scsi';

const DRIVES = 3;
const PROPELLER_ENV = 'LVMLOCKD_VM_PROPELLER';
const propellerDir = process.env[PROPELLER_ENV] ?? '';
const GUEST_PROPELLER = '/opt/propeller';
const STORAGE_ERRORS = /LV vgx\/lv1 lock failed: storage errors for sanlock leases/;

function skipReason(): string | false {
  const base = vmSkipReason();
  if (base) return base;
  if (!propellerDir) {
    const why = `${PROPELLER_ENV} is not set: it must name a propeller build directory (seagate_ilm built from Seagate's propeller source); CI cannot fetch that source, so this interop check runs only on a developer machine`;
    process.stderr.write(`\n*** 13-idm-propeller NOT RUN: ${why} ***\n\n`);
    return `NOT RUN: ${why}`;
  }
  return false;
}

type Probe = Record<string, unknown> & {
  connect: number; lock?: number; unlock?: number;
  count?: { rv: number; count: number; self: number }; mode?: { rv: number; mode: number };
  lvb?: { rv: number; hex: string };
};

/** One ILM client connection in the guest to whichever ILM runs there (lib/ilm-probe.ts). */
async function probe(vm: Vm, op: 'peek' | 'lvb', lockId: string, drives: string[]): Promise<Probe> {
  const arg = JSON.stringify({ op, lockId, drives });
  const r = await vm.shOk(`node /repo/dist/test/vm/lib/ilm-probe.js '${arg}'`, { timeoutMs: 120_000 });
  const p = JSON.parse(r.stdout.trim().split('\n').pop()!) as Probe;
  vmLog(`${vm.name} ILM probe ${op}: ${JSON.stringify(p)}`);
  return p;
}

/** The first 7 LVB bytes (propeller's SCSI layer puts its record type in the 8th's place on the drive). */
const lvb7 = (hex: string): string => hex.slice(0, 14);

async function startPropeller(vm: Vm): Promise<void> {
  await spawnDetached(vm, [`${GUEST_PROPELLER}/seagate_ilm`, '-D', '1', '-E', '7'], 'seagate_ilm.log', { ILM_LOG_DIR: '/run/seagate_ilm' });
  await waitFor(vm, 'test -S /run/seagate_ilm/main.sock', 60_000, 'propeller\'s seagate_ilm');
}

describeVm('vm tier: our lvmlockd and ILM against propeller\'s seagate_ilm on TCMU SCSI disks, 2 VMs', { skip: skipReason(), timeout: 50 * 60_000 }, () => {
  let c: VmCluster | null = null;
  let disks = new Map<number, ScsiDisk[]>();
  let vgUuid = '';
  let lvUuid = '';
  const pvsOf = (vm: Vm): string[] => disks.get(vm.index)!.map((d) => `/dev/${d.sd}2`);

  before(async () => {
    assert.ok(fs.existsSync(path.join(propellerDir, 'seagate_ilm')), `${PROPELLER_ENV}=${propellerDir} has no seagate_ilm (build propeller's src/ with make first)`);
    c = await VmCluster.create({
      vms: 2, disks: Array.from({ length: DRIVES }, () => ({ sizeMiB: IDM_DISK_MIB })), memMiB: 1536, name: 'idm-propeller', log: vmLog,
      shares: [{ tag: 'propeller', hostPath: path.resolve(propellerDir) }],
    });
  });

  after(async () => {
    if (c) {
      for (const vm of c.vms) {
        const r = await vm.sh('tail -n 40 /out/seagate_ilm.log /out/ilm.log /out/idm-tcmu*.log 2>/dev/null; dmesg | grep -iE "tcmu|target|scsi" | tail -n 20');
        vmLog(`${vm.name} logs:\n${r.stdout}`);
      }
      await c.destroy();
    }
  });

  it('TCMU SCSI disks in both VMs; propeller\'s seagate_ilm runs there and lists them by the WWN udev gives', async () => {
    disks = await setupIdmScsiDisks(c!, DRIVES, vmLog);
    for (const vm of c!.vms) {
      await vm.shOk(`mkdir -p ${GUEST_PROPELLER} && mount -t 9p -o trans=virtio,version=9p2000.L,ro propeller ${GUEST_PROPELLER}`);
      const ldd = await vm.shOk(`ldd ${GUEST_PROPELLER}/seagate_ilm`);
      assert.doesNotMatch(ldd.stdout, /not found/, `${vm.name}: the guest has seagate_ilm's libraries:\n${ldd.stdout}`);
      vmLog(`${vm.name}: ${(await vm.shOk(`${GUEST_PROPELLER}/seagate_ilm --version`)).stdout.trim()}`);
      for (let i = 0; i < DRIVES; i++) {
        // what propeller reads to tell drives apart: `udevadm info` ID_WWN of the disk
        const u = await vm.shOk(`udevadm info /dev/${disks.get(vm.index)![i]!.sd}`);
        assert.match(u.stdout, new RegExp(`^E: ID_WWN=0x${idmWwn(i)}$`, 'm'), `${vm.name} drive${i}: udev ID_WWN`);
      }
      await startPropeller(vm);
      // its drive list (debug dump at start): each WWN with the disk's sg node
      const log = await waitFor(vm, `grep -A3 "Device WWN: 0x${idmWwn(DRIVES - 1)}" /out/seagate_ilm.log`, 60_000, 'propeller\'s drive list');
      const all = (await vm.shOk('cat /out/seagate_ilm.log')).stdout;
      for (let i = 0; i < DRIVES; i++) {
        const d = disks.get(vm.index)![i]!;
        assert.match(all, new RegExp(`Device WWN: 0x${idmWwn(i)}\\n(.*\\n)?.*blk_path /dev/${d.sd}\\n.*sg_path /dev/${d.sg}\\n`), `${vm.name}: propeller maps drive${i} to /dev/${d.sg}`);
      }
      vmLog(`${vm.name}: seagate_ilm drive list tail:\n${log.stdout}`);
    }
  });

  it('(a) propeller\'s ILM on both VMs under our lvmlockd: vgcreate --lock-type idm, lock-start, ex/sh exclusion, LVB, host count', async () => {
    assert.equal(disks.size, 2, 'the disks came up');
    const [vm1, vm2] = [c!.vm(1), c!.vm(2)];
    for (const vm of c!.vms) {
      await setupLvm(vm, { devices: pvsOf(vm) });
      await startLvmlockd(vm, { kind: 'ts' });
    }
    const vg = await lvm(vm1, ['vgcreate', '--shared', '--lock-type', 'idm', 'vgx', ...pvsOf(vm1)]);
    assert.equal(vg.code, 0, `${vg.stdout}\n${vg.stderr}`);
    const st = await lvm(vm2, ['vgchange', '--lock-start', 'vgx']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /VG vgx starting idm lockspace/);
    vgUuid = (await lvm(vm1, ['vgs', '--noheadings', '-o', 'vg_uuid', 'vgx'])).stdout.trim();
    const lc = await lvm(vm1, ['lvcreate', '-an', '-n', 'lv1', '-i', '3', '-I', '64k', '-L', '12M', 'vgx']);
    assert.equal(lc.code, 0, lc.stderr);
    lvUuid = (await lvm(vm2, ['lvs', '--noheadings', '-o', 'lv_uuid', 'vgx/lv1'])).stdout.trim();
    assert.match(lvUuid, /^\w{6}(-\w{4}){5}-\w{6}$/, 'vm2 sees the LV vm1 created');
    const lvLock = lockIdHex(vgUuid, lvUuid);

    // ex on vm1: the mutex on all three drives; ex and sh refused on vm2
    const ex1 = await lvm(vm1, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(ex1.code, 0, ex1.stderr);
    assert.match((await vm1.shOk(`${TS_LVMLOCKCTL} --info`)).stdout, new RegExp(`^LK LV ex ${lvUuid}$`, 'm'));
    for (let i = 0; i < DRIVES; i++) {
      const m = (await firmwareState(vm1, i)).mutexes.find((x) => x.lockId === lvLock);
      assert.equal(m?.entries.filter((e) => e.locked).length, 1, `drive ${i} holds the LV's mutex once`);
    }
    // propeller took it through the sg nodes of vm1's disks
    const plog1 = (await vm1.shOk('cat /out/seagate_ilm.log')).stdout;
    for (const d of disks.get(1)!) assert.match(plog1, new RegExp(`Path \\[0\\] is /dev/${d.sg}\\n`), `vm1's propeller used /dev/${d.sg}`);
    for (const flag of ['-aey', '-asy']) {
      const r = await lvm(vm2, ['lvchange', flag, 'vgx/lv1']);
      assert.equal(r.code, 5, `vm2 lvchange ${flag}: ${r.stderr}`);
      assert.match(r.stderr, STORAGE_ERRORS);
    }
    // propeller on vm2 reads vm1's mutex from the drives: one other host, exclusive
    const peek = await probe(vm2, 'peek', lvLock, pvsOf(vm2));
    assert.deepEqual(peek.count, { rv: 0, count: 1, self: 0 });
    assert.deepEqual(peek.mode, { rv: 0, mode: 1 });
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);

    // sh on both; ex refused while shared
    assert.equal((await lvm(vm1, ['lvchange', '-asy', 'vgx/lv1'])).code, 0);
    assert.equal((await lvm(vm2, ['lvchange', '-asy', 'vgx/lv1'])).code, 0);
    for (let i = 0; i < DRIVES; i++) {
      const m = (await firmwareState(vm1, i)).mutexes.find((x) => x.lockId === lvLock);
      assert.equal(m?.entries.filter((e) => e.locked).length, 2, `drive ${i}: two shared holders`);
    }
    const peekSh = await probe(vm1, 'peek', lvLock, pvsOf(vm1));
    assert.deepEqual(peekSh.count, { rv: 0, count: 2, self: 0 });
    assert.deepEqual(peekSh.mode, { rv: 0, mode: 2 });
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);
    const ex2 = await lvm(vm1, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(ex2.code, 5, ex2.stderr);
    assert.match(ex2.stderr, STORAGE_ERRORS);
    assert.equal((await lvm(vm2, ['lvchange', '-an', 'vgx/lv1'])).code, 0);

    // a metadata change on vm1: a fresh VG LVB timestamp on every drive, read back through vm2's propeller
    const lvb0 = vgLvb(await firmwareState(vm1, 0), vgUuid);
    assert.equal((await lvm(vm1, ['lvcreate', '-an', '-n', 'lv2', '-L', '8M', 'vgx'])).code, 0);
    const s0 = await firmwareState(vm1, 0);
    const lvb1 = vgLvb(s0, vgUuid);
    assert.ok(lvb1 > lvb0, `the VG LVB moved on (${lvb0} -> ${lvb1})`);
    for (let i = 1; i < DRIVES; i++) assert.equal(vgLvb(await firmwareState(vm1, i), vgUuid), lvb1, `drive ${i} has the same LVB`);
    const read = await probe(vm2, 'lvb', lockIdHex(vgUuid), pvsOf(vm2));
    assert.equal(read.lock, 0);
    assert.equal(read.lvb?.rv, 0);
    const want = Buffer.alloc(8);
    want.writeBigUInt64LE(lvb1);
    assert.equal(lvb7(read.lvb!.hex), lvb7(want.toString('hex')), 'propeller reads the timestamp our lvmlockd wrote through propeller');
    assert.match((await lvm(vm2, ['lvs', '--noheadings', '-o', 'lv_name', 'vgx'])).stdout, /lv2/, 'vm2 sees lv2');
    assert.equal((await lvm(vm2, ['lvremove', '-y', 'vgx/lv2'])).code, 0);
    assert.doesNotMatch((await lvm(vm1, ['lvs', '--noheadings', '-o', 'lv_name', 'vgx'])).stdout, /lv2/, 'vm1 sees it gone');
  });

  it('(b) vm1 on our ILM, vm2 on propeller\'s, same drives: each refused what the other holds, sh together, each reads the other\'s LVB', async () => {
    assert.ok(lvUuid, 'the VG exists');
    const [vm1, vm2] = [c!.vm(1), c!.vm(2)];
    const lvLock = lockIdHex(vgUuid, lvUuid);
    // vm1: stop the lockspaces, lvmlockd and propeller; start our ILM and lvmlockd
    assert.equal((await lvm(vm1, ['vgchange', '--lock-stop', 'vgx'])).code, 0);
    await vm1.sh(`${TS_LVMLOCKCTL} --stop-lockspaces`);
    await waitFor(vm1, `! ${TS_LVMLOCKCTL} --info | grep -q "^LS"`, 60_000, 'no lockspace left');
    await stopLvmlockd(vm1);
    const term = await vm1.shOk('kill $(cat /run/seagate_ilm/main.pid); for i in $(seq 60); do pidof seagate_ilm >/dev/null || { echo exited; exit 0; }; sleep 0.5; done; kill -9 $(pidof seagate_ilm); echo killed', { timeoutMs: 60_000 });
    vmLog(`vm1: propeller's seagate_ilm on SIGTERM: ${term.stdout.trim()}`);
    await waitFor(vm1, '! pidof seagate_ilm', 30_000, 'propeller gone');
    await spawnDetached(vm1, ['/repo/bin/ilmd', '-D', '1', '-E', '6'], 'ilm.log', { ILM_LOG_DIR: '/run/seagate_ilm' });
    await waitFor(vm1, 'p=$(cat /run/seagate_ilm/main.pid) && grep -q ilmd /proc/$p/cmdline && test -S /run/seagate_ilm/main.sock', 60_000, 'our ILM');
    await startLvmlockd(vm1, { kind: 'ts' });
    const st = await lvm(vm1, ['vgchange', '--lock-start', 'vgx']);
    assert.equal(st.code, 0, st.stderr);
    assert.match((await vm1.shOk('cat /proc/$(cat /run/seagate_ilm/main.pid)/cmdline | tr "\\0" " "')).stdout, /ilmd/, 'vm1 runs our ILM');
    assert.match((await vm2.shOk('cat /proc/$(cat /run/seagate_ilm/main.pid)/cmdline | tr "\\0" " "')).stdout, /seagate_ilm/, 'vm2 runs propeller\'s');

    const locked = async (i: number): Promise<number> =>
      (await firmwareState(vm1, i)).mutexes.find((x) => x.lockId === lvLock)?.entries.filter((e) => e.locked).length ?? 0;
    const refused = async (vm: Vm, who: string): Promise<void> => {
      for (const flag of ['-aey', '-asy']) {
        const r = await lvm(vm, ['lvchange', flag, 'vgx/lv1']);
        assert.equal(r.code, 5, `${who} lvchange ${flag}: ${r.stderr}`);
        assert.match(r.stderr, STORAGE_ERRORS);
      }
    };

    // ours holds ex: propeller's host is refused and reads it from the drives
    assert.equal((await lvm(vm1, ['lvchange', '-aey', 'vgx/lv1'])).code, 0);
    for (let i = 0; i < DRIVES; i++) assert.equal(await locked(i), 1, `drive ${i}: our ILM's mutex`);
    await refused(vm2, 'vm2 (propeller) while vm1 (ours) holds ex:');
    const p2 = await probe(vm2, 'peek', lvLock, pvsOf(vm2));
    assert.deepEqual(p2.count, { rv: 0, count: 1, self: 0 }, 'propeller counts our ILM\'s holder');
    assert.deepEqual(p2.mode, { rv: 0, mode: 1 });
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);

    // propeller's holds ex: ours is refused and reads it from the drives
    assert.equal((await lvm(vm2, ['lvchange', '-aey', 'vgx/lv1'])).code, 0);
    for (let i = 0; i < DRIVES; i++) assert.equal(await locked(i), 1, `drive ${i}: propeller's mutex`);
    await refused(vm1, 'vm1 (ours) while vm2 (propeller) holds ex:');
    const p1 = await probe(vm1, 'peek', lvLock, pvsOf(vm1));
    assert.deepEqual(p1.count, { rv: 0, count: 1, self: 0 }, 'our ILM counts propeller\'s holder');
    assert.deepEqual(p1.mode, { rv: 0, mode: 1 });
    assert.equal((await lvm(vm2, ['lvchange', '-an', 'vgx/lv1'])).code, 0);

    // sh on both; ex refused to either while shared
    assert.equal((await lvm(vm1, ['lvchange', '-asy', 'vgx/lv1'])).code, 0);
    assert.equal((await lvm(vm2, ['lvchange', '-asy', 'vgx/lv1'])).code, 0);
    for (let i = 0; i < DRIVES; i++) assert.equal(await locked(i), 2, `drive ${i}: two shared holders, one per ILM`);
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);
    const ex1 = await lvm(vm1, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(ex1.code, 5, ex1.stderr);
    assert.equal((await lvm(vm2, ['lvchange', '-an', 'vgx/lv1'])).code, 0);
    assert.equal((await lvm(vm1, ['lvchange', '-asy', 'vgx/lv1'])).code, 0);
    const ex2 = await lvm(vm2, ['lvchange', '-aey', 'vgx/lv1']);
    assert.equal(ex2.code, 5, ex2.stderr);
    assert.equal((await lvm(vm1, ['lvchange', '-an', 'vgx/lv1'])).code, 0);

    // the VG LVB: written by propeller (vm2), read by ours (vm1); then the other way
    const check = async (writer: Vm, reader: Vm, what: string, before: bigint): Promise<bigint> => {
      const now = vgLvb(await firmwareState(vm1, 0), vgUuid);
      assert.ok(now > before, `${what}: the VG LVB moved on (${before} -> ${now})`);
      for (let i = 1; i < DRIVES; i++) assert.equal(vgLvb(await firmwareState(vm1, i), vgUuid), now, `${what}: drive ${i} has the same LVB`);
      const r = await probe(reader, 'lvb', lockIdHex(vgUuid), pvsOf(reader));
      assert.equal(r.lock, 0);
      const want = Buffer.alloc(8);
      want.writeBigUInt64LE(now);
      assert.equal(lvb7(r.lvb!.hex), lvb7(want.toString('hex')), `${what}: ${reader.name} reads what ${writer.name} wrote`);
      return now;
    };
    const l0 = vgLvb(await firmwareState(vm1, 0), vgUuid);
    assert.equal((await lvm(vm2, ['lvcreate', '-an', '-n', 'lv3', '-L', '8M', 'vgx'])).code, 0);
    const l1 = await check(vm2, vm1, 'lvcreate on vm2 (propeller)', l0);
    assert.match((await lvm(vm1, ['lvs', '--noheadings', '-o', 'lv_name', 'vgx'])).stdout, /lv3/, 'vm1 sees lv3');
    assert.equal((await lvm(vm1, ['lvremove', '-y', 'vgx/lv3'])).code, 0);
    await check(vm1, vm2, 'lvremove on vm1 (ours)', l1);
    assert.doesNotMatch((await lvm(vm2, ['lvs', '--noheadings', '-o', 'lv_name', 'vgx'])).stdout, /lv3/, 'vm2 sees it gone');
  });
});
