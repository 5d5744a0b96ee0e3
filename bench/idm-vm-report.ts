// The IDM VM section's pure parts (bench/idm-vm.ts): the GPT layout that puts
// the PVs of the 1-, 3- and 5-drive VGs on the same TCMU disks, and the
// report. No I/O; tested in test/unit/bench-idm-vm.test.ts.

import { fmtMs, idmResultTable, type ConfigResult } from './idm-report';
import { GPT_TYPE_LVM, type GptPartition } from '../test/vm/lib/gpt';
import { PROPELLER_PART, idmPvSpace } from '../test/vm/lib/idm-scsi';

/** A config of the VM section: ConfigResult plus the CPU of vm1's TCMU backstores of the VG's drives. */
export interface VmConfigResult extends ConfigResult {
  /** CPU seconds over the lock_lv loops of vm1's idm-tcmu processes of the VG's drives */
  rawTcmuCpu: number;
}

/**
 * GPT of drive `i` when the IDM VGs have `drives` drives each (VG v on drives
 * 0 .. drives[v]-1): partition 1 `propeller`, then one PV partition per VG
 * that uses drive i, in VG order, each in its own equal slot of the disk.
 */
export function vmDriveLayout(drives: readonly number[], i: number, bytes: number): GptPartition[] {
  const [first, last] = idmPvSpace(bytes);
  const slot = Math.floor((last - first + 1) / drives.length / 2048) * 2048;
  if (slot < 2048 * 4) throw new Error(`a disk of ${bytes} bytes has no room for ${drives.length} PV partitions`);
  const parts: GptPartition[] = [PROPELLER_PART];
  drives.forEach((n, v) => {
    if (i < n) parts.push({ name: `pv-vgi${n}`, type: GPT_TYPE_LVM, firstLba: first + v * slot, lastLba: first + (v + 1) * slot - 1 });
  });
  return parts;
}

/** The partition number of VG `v`'s PV on drive `i` under vmDriveLayout (null: the VG does not use the drive). */
export function vmPvPartition(drives: readonly number[], v: number, i: number): number | null {
  if (i >= drives[v]!) return null;
  return 2 + drives.slice(0, v).filter((n) => i < n).length;
}

export interface VmReportContext {
  date: string;
  commit: string;
  accel: string;
  accelReason: string;
  guestKernel: string;
  load0: string;
  load1: string;
  seconds: number;
  bootSeconds: number;
  setupSeconds: number;
  cpus: number;
  node: string;
  lvReps: number;
  rawRounds: number;
  rawSeconds: number;
  warmupSeconds: number;
  io: number;
  maxDrives: number;
  notes: string[];
}

export function formatIdmVmReport(results: VmConfigResult[], ctx: VmReportContext): string {
  const out: string[] = [];
  const vs = results.some((r) => r.drives === 0) ? ` vs a sanlock VG (same daemons, own lease engine, -o ${ctx.io}) in the same VMs, same run` : ' (no sanlock VG in this run)';
  out.push(`IDM VGs on TCMU SCSI disks in 2 VMs (our lvmlockd + our ILM over SG_IO, drive firmwares in vm1 over TCP)${vs}`);
  const tcg = ctx.accel.toLowerCase() === 'tcg';
  out.push(`${ctx.date}, commit ${ctx.commit}; accelerator ${ctx.accel.toUpperCase()} (${ctx.accelReason}); guests: 1 vCPU each, kernel ${ctx.guestKernel}`);
  if (tcg) out.push('TCG: every guest instruction is emulated, so all figures are many times what the same guests would show under KVM; compare the configs within this run (IDM / sanlock ratios), not with other tables.');
  out.push(`host: ${ctx.cpus} CPUs, node ${ctx.node}; load average (1/5/15 min) ${ctx.load0} at start, ${ctx.load1} at end`);
  out.push(`section ${ctx.seconds.toFixed(0)} s (VM boot ${ctx.bootSeconds.toFixed(0)} s, disks + daemons + VGs ${ctx.setupSeconds.toFixed(0)} s)`);
  out.push('');
  out.push(...idmResultTable(results));
  out.push('');
  out.push('CPU per lock_lv round trip over the lock_lv loops, all in vm1 (lvmlockd / ILM / TCMU backstores of the VG\'s drives / their firmwares; 10 ms ticks):');
  for (const r of results) {
    const n = r.rawExUs.length + r.rawUnUs.length;
    const per = (s: number) => (n && Number.isFinite(s) ? fmtMs(1000 * s / n) : '-');
    const idm = r.drives > 0;
    const total = r.rawCpu.lvmlockd + (idm ? r.rawCpu.ilm + r.rawTcmuCpu + r.rawCpu.drives : 0);
    out.push(`  ${r.name.padEnd(8)} ${per(r.rawCpu.lvmlockd)} / ${idm ? per(r.rawCpu.ilm) : '-'} / ${idm ? per(r.rawTcmuCpu) : '-'} / ${idm ? per(r.rawCpu.drives) : '-'}` +
      `, together ${per(total)} of ${n ? fmtMs(1000 * r.rawSeconds / n) : '-'} wall time per round trip`);
  }
  out.push('');
  out.push(`Set-up: ${ctx.maxDrives} IDM drives; each is one firmware process (bin/idm-drive) in vm1 and, in each VM, a TCMU backstore`);
  out.push('(bin/idm-tcmu, target_core_user + tcm_loop) whose blocks are a shared virtio disk and whose 0xF0 commands go to the firmware');
  out.push('over TCP. The VG of N drives has one PV partition on each of drives 0..N-1 (the VGs share the disks, each VG\'s locks');
  out.push('are on its own drives only) and lv1 striped over all its PVs, so the LV lock, like the VG lock, goes to every drive of');
  out.push('the VG. Global lock: the disks\' "propeller" partitions.' +
    (results.some((r) => r.drives === 0) ? ' The sanlock VG is on its own virtio disk (lvmlock LV, our leases).' : ''));
  out.push(`Each VM runs one our ILM (bin/ilmd -D 1 -E 6, no drive map: SG_IO only) and one our lvmlockd -f -g idm -o ${ctx.io} (no debug output) for all VGs.`);
  out.push(`lvchange: vm1 -aey, -an, vm2 -aey, -an, ${ctx.lvReps} times per config (configs take turns), the guest agent's wall time around`);
  out.push('the lvm command (process start-up, activation and udev sync included, the same for all configs).');
  out.push(`lock_lv: ${ctx.rawRounds} rounds of ${ctx.rawSeconds} s (after ${ctx.warmupSeconds} s warm-up) per config in vm1, the load generator of`);
  out.push('bench/dlm-vm-guest.ts (the repo\'s node in the guest) looping lock_lv ex / un on the LV (IDM requests carry path[N] and');
  out.push('path_num as lvm sends them), timed in the guest; lock_lv/s = round trips (ex + un) per second. p50/p90 = nearest rank.');
  for (const n of ctx.notes) out.push(`note: ${n}`);
  return out.join('\n') + '\n';
}
