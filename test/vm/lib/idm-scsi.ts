// IDM drives as real SCSI disks in the VM guests: one firmware per drive
// (bin/idm-drive in vm1, on TCP over the VMs' network) and, in every VM, a
// TCMU backstore per drive (bin/idm-tcmu, target_core_user + tcm_loop) whose
// blocks live on a shared virtio disk and whose 0xF0 commands go to that
// firmware. The disks carry a GPT with a partition named "propeller" (the IDM
// global-lock drives) and one for the PV.

import * as assert from 'node:assert/strict';
import type { Vm, VmCluster } from './vm';
import { spawnDetached, waitFor } from './stack';
import { writeGpt, GPT_TYPE_LINUX, GPT_TYPE_LVM, type GptPartition } from './gpt';

export const IDM_DISK_MIB = 128;
export const FIRMWARE_PORT = 7100;

/** One WWN per drive, the same on every VM (sysfs wwid "naa.<wwn>", udev ID_WWN "0x<wwn>"). */
export const idmWwn = (i: number): string => `5001405${'0'.repeat(8)}${i}`;
/** The guest's node of the cluster's k-th shared disk (c.disks[k]). */
const vdisk = (k: number): string => `/dev/vd${String.fromCharCode('b'.charCodeAt(0) + k)}`;

export interface ScsiDisk { sd: string; sg: string; host: string }

/** A firmware's entry of one host on a mutex, from the drive's state file in vm1. */
export interface FwEntry { hostId: string; locked: boolean; lastRefreshMs: number }
export interface FwMutex { lockId: string; lvb: string; entries: FwEntry[] }
export interface FwState { mutexes: FwMutex[]; keptLvbs: Record<string, string> }

export async function firmwareState(vm1: Vm, i: number): Promise<FwState> {
  const r = await vm1.shOk(`cat /var/lib/idm/drive${i}.json`);
  return JSON.parse(r.stdout) as FwState;
}

/** The 64-byte IDM lock id of a VG (lvUuid empty) or an LV, as hex. */
export function lockIdHex(vgUuid: string, lvUuid = ''): string {
  const id = Buffer.alloc(64);
  id.write(vgUuid.replace(/-/g, ''), 0, 'ascii');
  if (lvUuid) id.write(lvUuid.replace(/-/g, ''), 32, 'ascii');
  return id.toString('hex');
}

/** The VG lock's LVB timestamp as a drive keeps it (held mutex or kept after DESTROY), 0 when none. */
export function vgLvb(s: FwState, vgUuid: string): bigint {
  const id = lockIdHex(vgUuid);
  const hex = s.mutexes.find((x) => x.lockId === id)?.lvb ?? s.keptLvbs[id];
  return hex ? Buffer.from(hex, 'hex').readBigUInt64LE(0) : 0n;
}

/** The `propeller` partition (the IDM global-lock drives) of every drive's GPT: partition 1. */
export const PROPELLER_PART: GptPartition = { name: 'propeller', type: GPT_TYPE_LINUX, firstLba: 2048, lastLba: 4095 };

/** The first LBA after the propeller partition, and the last usable one of a disk of `bytes`. */
export const idmPvSpace = (bytes: number): [number, number] => [4096, bytes / 512 - 34];

/** Partition 1 `propeller`, partition 2 `pv` over the rest of the disk. */
export function defaultIdmLayout(_i: number, bytes: number): GptPartition[] {
  const [first, last] = idmPvSpace(bytes);
  return [PROPELLER_PART, { name: 'pv', type: GPT_TYPE_LVM, firstLba: first, lastLba: last }];
}

export interface IdmScsiSetup {
  /** drive i's GPT partitions (default: defaultIdmLayout) */
  layout?: (i: number, bytes: number) => GptPartition[];
  /** Index in c.disks of drive 0's shared disk (the drives' disks follow it); default 0. */
  firstDisk?: number;
  /** Size of each drive's shared disk (MiB); default IDM_DISK_MIB. */
  diskMiB?: number;
  /** told each process started: drive i's firmware (in vm1) or TCMU backstore (in `vm`), its pid and log in /out */
  onSpawn?: (p: { vm: Vm; kind: 'firmware' | 'tcmu'; drive: number; pid: number; log: string }) => void;
}

/**
 * Start the firmwares in vm1 and the TCMU disks in every VM; returns each VM's
 * disks by drive index. The cluster must have `drives` shared disks of
 * `more.diskMiB` (IDM_DISK_MIB) each from c.disks[more.firstDisk] on. `tcmuEnv`
 * is added to each idm-tcmu's environment. `more` may also give the GPT layout
 * and a callback told every process started.
 */
export async function setupIdmScsiDisks(
  c: VmCluster, drives: number, log: (s: string) => void, tcmuEnv: Record<string, string> = {},
  more: IdmScsiSetup = {},
): Promise<Map<number, ScsiDisk[]>> {
  const layout = more.layout ?? defaultIdmLayout;
  const first = more.firstDisk ?? 0;
  const vm1 = c.vm(1);
  for (const vm of c.vms) {
    await vm.shOk('modprobe target_core_user && modprobe tcm_loop && modprobe sg && (mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config)', { timeoutMs: 60_000 });
  }
  await vm1.shOk('mkdir -p /var/lib/idm');
  for (let i = 0; i < drives; i++) {
    const pid = await spawnDetached(vm1, ['/repo/bin/idm-drive', '--socket', `tcp:0.0.0.0:${FIRMWARE_PORT + i}`, '--state', `/var/lib/idm/drive${i}.json`, '--wwn', idmWwn(i)], `idm-drive${i}.log`);
    more.onSpawn?.({ vm: vm1, kind: 'firmware', drive: i, pid, log: `idm-drive${i}.log` });
  }
  await waitFor(vm1, `for i in $(seq 0 ${drives - 1}); do grep -q ready /out/idm-drive$i.log || exit 1; done`, 120_000, 'the drive firmwares');
  // the GPT before any guest sees the disks (the image has no sfdisk)
  const bytes = (more.diskMiB ?? IDM_DISK_MIB) * 1024 * 1024;
  for (const [i, f] of c.disks.slice(first, first + drives).entries()) writeGpt(f, bytes, layout(i, bytes));
  const disks = new Map<number, ScsiDisk[]>();
  for (const vm of c.vms) {
    for (let i = 0; i < drives; i++) {
      const pid = await spawnDetached(vm, [
        '/repo/bin/idm-tcmu', '--name', `idm${i}`, '--hba', '1', '--backing', vdisk(first + i), '--size', String(bytes),
        '--wwn', idmWwn(i), '--firmware', `tcp:${vm1.address}:${FIRMWARE_PORT + i}`,
      ], `idm-tcmu${i}.log`, tcmuEnv);
      more.onSpawn?.({ vm, kind: 'tcmu', drive: i, pid, log: `idm-tcmu${i}.log` });
    }
    await waitFor(vm, `for i in $(seq 0 ${drives - 1}); do grep -q "ready" /out/idm-tcmu$i.log || exit 1; done`, 240_000, 'the TCMU disks');
    const found: ScsiDisk[] = [];
    for (let i = 0; i < drives; i++) {
      const line = (await vm.shOk(`grep "ready" /out/idm-tcmu${i}.log | tail -n 1`)).stdout;
      const m = /ready (sd[a-z]+) (sg\d+) (host\d+)/.exec(line);
      assert.ok(m, `${vm.name}: idm-tcmu${i}: ${line}`);
      found.push({ sd: m[1]!, sg: m[2]!, host: m[3]! });
    }
    disks.set(vm.index, found);
    log(`${vm.name}: ${found.map((d, i) => `drive${i}=/dev/${d.sd},/dev/${d.sg},${d.host}`).join(' ')}`);
    await vm.shOk('udevadm settle -t 30', { timeoutMs: 60_000 });
  }
  return disks;
}
