// Lock stacks inside the VMs: lvm.conf for real activation, sanlock, the C
// lvmlockd, our lvmlockd (from the repo share), corosync + dlm_controld.
// Every daemon's output goes to /out/<name>.log (the host-side vmN/out dir).

import { lvmConf } from '../../harness/lvmconf';
import { sleep, RunResult } from '../../harness/exec';
import { Vm, VmCluster } from './vm';

/** Our lvmlockd inside the guest (the repo is shared at /repo). */
export const TS_LVMLOCKD = '/repo/bin/lvmlockd';
export const TS_LVMLOCKCTL = '/repo/bin/lvmlockctl';

export interface LvmSetup {
  /** Block devices lvm may use (default the first shared disk, /dev/vdb). */
  devices?: string[];
  hostId?: number;
  /** lvm.conf global/lvmlockctl_kill_command (full path). */
  killCommand?: string;
  extra?: string;
}

export async function setupLvm(vm: Vm, o: LvmSetup = {}): Promise<void> {
  const devices = o.devices ?? ['/dev/vdb'];
  let extra = o.extra ?? '';
  if (o.killCommand) extra += `\nglobal {\n\tlvmlockctl_kill_command = "${o.killCommand}"\n}\n`;
  // real activation with udev managing the /dev/mapper nodes (as on a real
  // host: without udev, libdm creates the nodes only when the command ends,
  // after lvmlockd already looked for /dev/mapper/<vg>-lvmlock)
  const conf = lvmConf({ devices, activation: true, extra })
    .replace('\tudev_sync = 0', '\tudev_sync = 1')
    .replace('\tudev_rules = 0', '\tudev_rules = 1');
  await vm.writeFile('/etc/lvm/lvm.conf', conf);
  await vm.writeFile('/etc/lvm/lvmlocal.conf', `local {\n\thost_id = ${o.hostId ?? vm.index}\n}\n`);
}

/** Start a long-running command detached in the guest; output to /out/<log>. */
export async function spawnDetached(vm: Vm, argv: string[], log: string, env: Record<string, string> = {}): Promise<number> {
  const envs = Object.entries(env).map(([k, v]) => `${k}=${shq(v)}`).join(' ');
  const r = await vm.shOk(`${envs} setsid ${argv.map(shq).join(' ')} >> /out/${log} 2>&1 < /dev/null & echo $!`, { timeoutMs: 20_000 });
  return Number(r.stdout.trim());
}

export function shq(s: string): string {
  return /^[A-Za-z0-9_\/.=:,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Poll a shell condition in the guest until it exits 0. */
export async function waitFor(vm: Vm, script: string, timeoutMs: number, what = script): Promise<RunResult> {
  const deadline = Date.now() + timeoutMs;
  let last: RunResult | null = null;
  while (Date.now() < deadline) {
    last = await vm.sh(script, { timeoutMs: 20_000 });
    if (last.code === 0) return last;
    await sleep(500);
  }
  throw new Error(`${vm.name}: timed out (${timeoutMs} ms) waiting for ${what}; last: exit ${last?.code}\n${last?.stdout}\n${last?.stderr}`);
}

/** sanlock daemon without watchdog (no wdmd in the VM). */
export async function startSanlock(vm: Vm): Promise<void> {
  await spawnDetached(vm, ['sanlock', 'daemon', '-D', '-w', '0', '-U', 'root', '-G', 'root'], 'sanlock.log');
  await waitFor(vm, 'sanlock client status >/dev/null 2>&1', 30_000, 'sanlock daemon');
}

export type DaemonKind = 'c' | 'ts';

export interface LvmlockdStart {
  kind: DaemonKind;
  /** Extra arguments, e.g. ['-T'] or ['-o', '2']. */
  args?: string[];
}

/** Start lvmlockd in the foreground with debug output (-D) to /out/lvmlockd.log. */
export async function startLvmlockd(vm: Vm, o: LvmlockdStart): Promise<void> {
  const bin = o.kind === 'c' ? '/usr/sbin/lvmlockd' : TS_LVMLOCKD;
  await spawnDetached(vm, [bin, '-D', ...(o.args ?? [])], 'lvmlockd.log');
  // ready when the socket answers (lvmlockctl --info talks to it)
  await waitFor(vm, 'test -S /run/lvm/lvmlockd.socket && lvmlockctl --info >/dev/null 2>&1', 60_000, `${o.kind} lvmlockd`);
}

/**
 * A sanlock host: the C lvmlockd needs the sanlock daemon; ours writes the
 * sanlock-format leases itself (no sanlock daemon).
 */
export async function startHost(vm: Vm, kind: DaemonKind, args: string[] = []): Promise<void> {
  if (kind === 'c') await startSanlock(vm);
  await startLvmlockd(vm, { kind, args });
}

export async function stopLvmlockd(vm: Vm): Promise<void> {
  await vm.sh('p=$(cat /run/lvmlockd.pid 2>/dev/null); [ -n "$p" ] && kill -9 $p; rm -f /run/lvmlockd.pid /run/lvm/lvmlockd.socket; true');
}

/**
 * Make a used VM fresh again for the next scenario (instead of booting a new
 * one): kill lvmlockd and sanlock by pid, remove every dm device, wipe the
 * start of the shared disks, forget /out/kill.log.
 */
export async function resetVm(vm: Vm): Promise<void> {
  await vm.sh([
    'p=$(cat /run/lvmlockd.pid 2>/dev/null); [ -n "$p" ] && kill -9 $p',
    'for p in $(pidof sanlock); do kill -9 $p; done',
    'sleep 1',
    'rm -f /run/lvmlockd.pid /run/lvm/lvmlockd.socket /out/kill.log',
    'dmsetup remove_all --force >/dev/null 2>&1',
    'udevadm settle -t 10',
    'for d in /dev/vd[b-z]; do [ -b "$d" ] && dd if=/dev/zero of="$d" bs=1M count=8 oflag=direct status=none; done',
    'true',
  ].join('; '), { timeoutMs: 60_000 });
}

/** corosync.conf for the VMs of a cluster (udpu over the hub, two_node for 2 VMs, no crypto). */
export function corosyncConf(c: VmCluster): string {
  const nodes = c.vms.map((v) => `\tnode {\n\t\tring0_addr: ${v.address}\n\t\tnodeid: ${v.index}\n\t\tname: ${v.name}\n\t}`).join('\n');
  return `totem {
\tversion: 2
\tcluster_name: vmtier
\ttransport: knet
\tcrypto_cipher: none
\tcrypto_hash: none
\ttoken: 3000
}
nodelist {
${nodes}
}
quorum {
\tprovider: corosync_votequorum
${c.vms.length === 2 ? '\ttwo_node: 1\n' : ''}}
logging {
\tto_logfile: yes
\tlogfile: /out/corosync.log
\tto_stderr: no
\tto_syslog: no
\ttimestamp: on
}
`;
}

/**
 * A fence agent for dlm_controld (fence_all) that fences nothing: it appends
 * the request dlm_controld gives it on stdin (node=<id> ...) with the guest's
 * wall-clock time (epoch seconds) to /out/fence.log when it starts, waits
 * `delayS` seconds (so that a test can see recovery wait for it), appends a
 * "done" line and reports success.
 */
export const RECORDING_FENCE_AGENT = '/usr/local/sbin/fence_record';
function recordingFenceScript(delayS: number): string {
  return `#!/bin/sh
req=$(tr '\\n' ' ')
echo "fence start $req epoch $(date +%s.%N) uptime $(cut -d' ' -f1 /proc/uptime)" >> /out/fence.log
sync
sleep ${delayS}
echo "fence done $req epoch $(date +%s.%N) uptime $(cut -d' ' -f1 /proc/uptime)" >> /out/fence.log
sync
exit 0
`;
}

export interface DlmStackOptions {
  /** The agent dlm_controld runs (fence_all) before it recovers from a node failure; none: fencing disabled. */
  fenceAgent?: string;
  /** How long RECORDING_FENCE_AGENT takes (default 0 s). */
  fenceDelayS?: number;
}

/**
 * corosync + dlm_controld on every VM; waits for quorum and the dlm daemons.
 * Fencing is disabled unless `fenceAgent` names the agent dlm_controld must
 * run before it recovers from a node failure (RECORDING_FENCE_AGENT is
 * installed by this function).
 */
export async function startDlmStack(c: VmCluster, o: DlmStackOptions = {}): Promise<void> {
  const fencing = o.fenceAgent ? ['--enable_fencing', '1'] : ['--enable_fencing', '0'];
  await Promise.all(c.vms.map(async (vm) => {
    if (o.fenceAgent === RECORDING_FENCE_AGENT) {
      await vm.writeFile(RECORDING_FENCE_AGENT, recordingFenceScript(o.fenceDelayS ?? 0));
      await vm.shOk(`chmod 755 ${RECORDING_FENCE_AGENT}`);
    }
    // fence_all is a dlm.conf setting (dlm_controld has no such command-line option)
    if (o.fenceAgent) await vm.writeFile('/etc/dlm/dlm.conf', `fence_all ${o.fenceAgent}\n`);
    else await vm.sh('rm -f /etc/dlm/dlm.conf');
  }));
  const conf = corosyncConf(c);
  await Promise.all(c.vms.map(async (vm) => {
    await vm.writeFile('/etc/corosync/corosync.conf', conf);
    await vm.shOk('mkdir -p /var/log/corosync /var/lib/corosync /run/corosync');
    await spawnDetached(vm, ['corosync', '-f'], 'corosync.out');
  }));
  await Promise.all(c.vms.map((vm) => waitFor(vm, 'corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *Yes"', 90_000, 'corosync quorum')));
  await Promise.all(c.vms.map((vm) => startDlmControld(vm, fencing)));
}

async function startDlmControld(vm: Vm, fencing: string[]): Promise<void> {
  // --enable_helper 1: dlm_controld's helper runs the commands of dlmc_run_start (lvmlockd's refresh_lv)
  await spawnDetached(vm, ['dlm_controld', '-D', ...fencing, '--enable_startup_fencing', '0', '--enable_quorum_fencing', '0', '--enable_helper', '1'], 'dlm_controld.log');
  // ready for lvmlockd: dlm_controld sees quorum, is past fence_init, and has
  // written the cluster name to configfs (lvmlockd's read_cluster_name)
  try {
    await waitFor(vm,
      'dlm_tool status 2>/dev/null | grep -q "quorate 1" && ! dlm_tool status | grep -q fence_init && test -s /sys/kernel/config/dlm/cluster/cluster_name',
      120_000, 'dlm_controld quorate');
  } catch (e) {
    const why = await vm.sh('pidof dlm_controld; dlm_tool status 2>&1 | head -20; tail -20 /out/dlm_controld.log');
    throw new Error(`${(e as Error).message}\n--- dlm_controld ${fencing.join(' ')}:\n${why.stdout}${why.stderr}`);
  }
}

/** lvm command in the guest (no shell). */
export function lvm(vm: Vm, args: string[], timeoutMs = 180_000): Promise<RunResult> {
  return vm.exec(['lvm', ...args], { timeoutMs });
}

export async function mapperExists(vm: Vm, name: string): Promise<boolean> {
  const r = await vm.exec(['test', '-b', `/dev/mapper/${name}`]);
  return r.code === 0;
}

export async function dmTable(vm: Vm): Promise<string> {
  return (await vm.exec(['dmsetup', 'table'])).stdout;
}
