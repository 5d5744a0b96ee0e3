// Runs LVM2's test suite in VMs of the VM tier (device-mapper, udev, loop
// devices, the sanlock daemon), each test with the C lvmlockd and with ours
// on the same VM, and prints one RESULT line per test.
//
// The suite starts lvmlockd itself (aux.sh prepare_lvmlockd: `lvmlockd ...`
// from PATH) and finds and stops it by process name (`pgrep lvmlockd`,
// `killall lvmlockd`). For the C runs PATH finds /usr/sbin/lvmlockd; for ours
// a directory in front of PATH has `lvmlockd` and `lvmlockctl` for ours.
//
// The idm flavour (ours only: the guest's C lvmlockd has no IDM support)
// gets three IDM drives as TCMU SCSI disks (test/vm/lib/idm-scsi.ts: one
// emulated firmware per drive, bin/idm-drive, and a bin/idm-tcmu disk), their
// PV partitions as LVM_TEST_BACKING_DEVICE, and `seagate_ilm` (which aux.sh
// prepare_idm starts by name) is our bin/seagate_ilm in the ours PATH dir.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { VmCluster, Vm } from '../vm/lib/vm';
import { idmWwn, setupIdmScsiDisks } from '../vm/lib/idm-scsi';
import { BuiltSuite, GUEST_DATADIR, GUEST_PREFIX, GUEST_RUNNER } from './source';
import { Daemon, Item, Verdict, Options, daemonsFor, parseRunnerList, resultLine, verdictOf } from './plan';

const SHIMS = '/opt/upstream-shims';
const OURS = '/opt/upstream-ours';
const SCRATCH = '/scratch';
/**
 * Runner's silence timeout per test (s) and our hard limit per test (ms). The
 * runner's timeout did not end a test hung in lvmlockctl (seen twice), so
 * our limit is what ends it: long enough for the slowest test seen under TCG
 * (about 4 min), short enough that a hang does not hold the heavy lock long.
 */
const RUNNER_SILENCE_S = 400;
const TEST_LIMIT_MS = 15 * 60_000;
const HANG_SNAPSHOT_MS = 5 * 60_000;
/**
 * A remove script (stop the lockspaces, kill the daemons, remove the global-lock
 * VG) took 21-25 s in every run that finished; one that waits longer is stuck
 * (seen once in `lvmlockctl --stop-lockspaces`).
 */
const REMOVE_LIMIT_MS = 5 * 60_000;
/**
 * IDM drives for the idm flavour: three (upstream's idm_* tests want three
 * different drives), each disk large enough that the largest one-drive layout
 * of the tests we run fits in its PV partition (prepare_devs puts n PVs of
 * 34 MiB on the first backing device when n exceeds the drives: 5 PVs in
 * lvmlockd-lv-types, 171 MiB) and small enough that prepare_devs' zeroing of
 * every backing device (dd, up to 1000 MB each) stays short under TCG.
 */
const SUITE_IDM_DRIVES = 3;
const SUITE_IDM_DISK_MIB = 192;

/**
 * `systemctl` for the suite inside the VM (no systemd there). aux.sh starts
 * sanlock with `systemctl start sanlock` (sanlock flavour), and corosync and
 * dlm_controld with `systemctl start corosync` / `systemctl start dlm` (dlm
 * flavour, after writing its own corosync.conf and dlm.conf). As systemd's
 * units (Type=notify) do, a start returns once the daemon is ready (corosync
 * quorate; dlm_controld quorate, past fencing setup, cluster configured), and
 * a stop returns once the daemon has exited. Any other unit fails loudly.
 */
const SYSTEMCTL_SHIM = `#!/bin/sh
# systemctl stand-in for LVM2's test suite in a VM without systemd
until_ok() { # seconds, what, command...
  n=$1; what=$2; shift 2; i=0
  while [ $i -lt $((n * 2)) ]; do
    if sh -c "$*" >/dev/null 2>&1; then return 0; fi
    sleep 0.5; i=$((i + 1))
  done
  echo "systemctl stand-in: $what not reached after $n s" >&2; return 1
}
stop() { # process name
  killall "$1" 2>/dev/null || return 0
  until_ok 30 "$1 exited" "! pidof $1" || { killall -9 "$1" 2>/dev/null; sleep 1; }
  return 0
}
case "$1 $2" in
  "start sanlock") exec sanlock daemon -w 0 -U root -G root ;;
  "stop sanlock") killall sanlock; exit 0 ;;
  "start corosync")
    mkdir -p /var/log/corosync /var/lib/corosync /run/corosync
    corosync >>/out/corosync.out 2>&1 || exit 1
    until_ok 60 "corosync quorum" 'corosync-quorumtool -s | grep -q "Quorate: *Yes"' ;;
  "stop corosync") stop corosync ;;
  "start dlm")
    modprobe dlm 2>/dev/null
    mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
    mkdir -p /run/dlm_controld /var/log/cluster
    dlm_controld >>/out/dlm_controld.out 2>&1 || exit 1
    until_ok 120 "dlm_controld ready" 'dlm_tool status | grep -q "quorate 1" && ! dlm_tool status | grep -q fence_init && test -s /sys/kernel/config/dlm/cluster/cluster_name' ;;
  "stop dlm") stop dlm_controld ;;
  *) echo "systemctl stand-in: '$*' is not supported in this VM" >&2; exit 1 ;;
esac
`;

/**
 * `lvmlockd` for the ours runs when our daemon does not name its process
 * lvmlockd itself: node through a link named lvmlockd (the kernel takes the
 * process name from the file name executed) in the foreground, detached,
 * returning once the socket is there, as the C daemon's fork does.
 */
const OURS_LAUNCHER = `#!/bin/sh
# our lvmlockd under the process name "lvmlockd" (for pgrep/killall in the suite)
run="${OURS}/libexec/lvmlockd /repo/bin/lvmlockd"
for a in "$@"; do
  case "$a" in -h|--help|-V|--version|-f|--foreground|-D|--daemon-debug) exec $run "$@" ;; esac
done
sock=/run/lvm/lvmlockd.socket
pgrep -x lvmlockd >/dev/null || rm -f "$sock"
setsid $run -f "$@" >>/out/ours-lvmlockd.log 2>&1 </dev/null &
pid=$!
i=0
while [ $i -lt 600 ]; do
  if ! kill -0 $pid 2>/dev/null; then wait $pid; exit $?; fi
  [ -S "$sock" ] && exit 0
  sleep 0.05
  i=$((i + 1))
done
echo "lvmlockd (ours): no socket after 30 s" >&2
exit 1
`;

/** True when bin/lvmlockd names its own process (then PATH gets bin/lvmlockd itself, no launcher). */
export function oursNamesItself(repo: string): boolean {
  try {
    return /setProcessName\(\s*'lvmlockd'/.test(fs.readFileSync(path.join(repo, 'bin', 'lvmlockd'), 'utf8'));
  } catch {
    return false;
  }
}

export async function prepareVm(vm: Vm, selfNamed: boolean): Promise<void> {
  await vm.shOk([
    // aux.sh copies its sanlock.conf into /etc/sanlock and its dlm.conf into
    // /etc/dlm, which Debian's packages do not create
    `mkdir -p ${GUEST_PREFIX} ${SCRATCH} ${SHIMS} ${OURS}/libexec /etc/sanlock /etc/dlm`,
    `mountpoint -q ${GUEST_PREFIX} || mount -t 9p -o trans=virtio,version=9p2000.L,ro lvm2suite ${GUEST_PREFIX}`,
    `mkfs.ext4 -q -F /dev/vdb && mount /dev/vdb ${SCRATCH}`,
    'modprobe loop 2>/dev/null; true',
    // the dlm flavour's corosync.conf names the node by hostname: resolve it to
    // the VM's address (vm-init's /etc/hosts has localhost only)
    'addr=$(ip -4 -o addr show eth0 | awk \'{print $4}\' | cut -d/ -f1); ' +
      'grep -q " $(hostname)$" /etc/hosts || echo "${addr:-127.0.0.1} $(hostname)" >> /etc/hosts',
  ].join(' && '), { timeoutMs: 120_000 });
  await vm.writeFile(`${SHIMS}/systemctl`, SYSTEMCTL_SHIM);
  if (selfNamed) {
    await vm.shOk(`ln -sf /repo/bin/lvmlockd ${OURS}/lvmlockd`);
  } else {
    await vm.writeFile(`${OURS}/lvmlockd`, OURS_LAUNCHER);
    await vm.shOk(`chmod +x ${OURS}/lvmlockd && ln -sf "$(command -v node)" ${OURS}/libexec/lvmlockd`);
  }
  // idm_ilm_failure.sh runs idm_inject_failure (upstream's is built against libseagate_ilm): ours, through our ILM client
  await vm.writeFile(`${OURS}/idm_inject_failure`, '#!/bin/sh\nexec node /repo/dist/test/upstream/idm-inject-failure.js "$@"\n');
  // aux.sh prepare_idm runs `seagate_ilm -D 0 ...` and finds it by name: ours names its process
  await vm.shOk(`chmod +x ${OURS}/idm_inject_failure && `
    + `ln -sf /repo/bin/lvmlockctl ${OURS}/lvmlockctl && ln -sf /repo/bin/seagate_ilm ${OURS}/seagate_ilm && chmod +x ${SHIMS}/systemctl`);
}

/**
 * The IDM drives as SCSI disks in the VM (its shared disks 1..SUITE_IDM_DRIVES);
 * returns the LVM_TEST_BACKING_DEVICE value: each drive's PV partition (the
 * GPT's second; the first, named "propeller", is lvmlockd's global-lock drive),
 * by its udev name from the WWN (/dev/disk/by-id/wwn-0x<wwn>-part2), which
 * stays the same when a fault test deletes a disk and rescans it under
 * another sdX name; /dev/sdX2 when udev made no such link.
 */
async function prepareIdmDrives(cluster: VmCluster, log: (s: string) => void): Promise<string> {
  const disks = await setupIdmScsiDisks(cluster, SUITE_IDM_DRIVES, log, {}, { firstDisk: 1, diskMiB: SUITE_IDM_DISK_MIB });
  const vm = cluster.vm(1);
  const paths: string[] = [];
  for (const [i, d] of disks.get(1)!.entries()) {
    const byId = `/dev/disk/by-id/wwn-0x${idmWwn(i)}-part2`;
    const r = await vm.sh(`test -b ${byId} && [ "$(readlink -f ${byId})" = /dev/${d.sd}2 ]`);
    if (r.code !== 0) log(`drive${i}: no udev link ${byId} to /dev/${d.sd}2; using /dev/${d.sd}2 (a rescan may rename it)`);
    paths.push(r.code === 0 ? byId : `/dev/${d.sd}2`);
  }
  return paths.join(',');
}

function pathFor(d: Daemon): string {
  return `${d === 'ours' ? `${OURS}:` : ''}${SHIMS}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
}

/** Stop every lock daemon and the suite's devices left behind (between daemon blocks). */
async function cleanVm(vm: Vm): Promise<void> {
  await vm.sh([
    'killall -9 lvmlockd 2>/dev/null', 'killall -9 sanlock 2>/dev/null', 'killall -9 seagate_ilm 2>/dev/null',
    'killall dlm_controld 2>/dev/null', 'killall corosync 2>/dev/null', 'sleep 2',
    'killall -9 dlm_controld corosync 2>/dev/null',
    'rm -f /run/lvm/lvmlockd.socket /run/lvmlockd.pid',
    'for d in $(dmsetup ls 2>/dev/null | awk \'$1 ~ /^(LVMTEST|GL_DEV|glvg)/ {print $1}\'); do dmsetup remove --force "$d" >/dev/null 2>&1; done',
    'losetup -D 2>/dev/null', `rm -rf ${SCRATCH}/t`, 'true',
  ].join('; '), { timeoutMs: 120_000 });
}

export interface TestRun {
  verdict: Verdict;
  status: string;
  seconds: number;
}

async function runOne(vm: Vm, d: Daemon, flavour: string, test: string, limitMs = TEST_LIMIT_MS, env = ''): Promise<TestRun> {
  const out = `/out/runs/${d}/${flavour}/${test.replace(/\.sh$/, '')}`;
  const script = [
    `rm -rf ${out} && mkdir -p ${out} ${SCRATCH}/t && cd ${SCRATCH}`,
    // loop devices for every test: aux.sh takes a ramdisk (brd, 4 KiB physical
    // blocks, so lvm sizes the sanlock lock LV larger) only while /sys/block/ram0
    // is absent, which depends on what the previous test left loaded
    `${env}PATH=${pathFor(d)} LVM_TEST_DIR=${SCRATCH}/t LVM_TEST_PREFER_BRD=0 ${GUEST_RUNNER} --testdir ${GUEST_DATADIR} --outdir ${out}` +
      ` --flavours ${flavour} --only shell/${test} --batch --timeout ${RUNNER_SILENCE_S} >${out}/runner.out 2>&1`,
    `cat ${out}/list`,
  ].join('; ');
  // a test silent for long is usually hung: note what the VM runs then (the
  // agent runs requests side by side), for the logs
  const watch = setInterval(() => {
    vm.sh(`ps -eo pid,ppid,etimes,stat,wchan:20,args > ${out}/ps-$(cut -d. -f1 /proc/uptime).txt 2>&1`, { timeoutMs: 30_000 }).catch(() => undefined);
  }, HANG_SNAPSHOT_MS);
  const r = await vm.sh(script, { timeoutMs: limitMs }).finally(() => clearInterval(watch));
  const status = parseRunnerList(r.stdout).get(`${flavour}:${test}`);
  return { verdict: r.timedOut ? 'fail' : verdictOf(status), status: r.timedOut ? 'killed (time limit)' : status ?? 'no result', seconds: r.durationMs / 1000 };
}

export interface ShardReport {
  results: Array<{ item: Item; runs: Partial<Record<Daemon, TestRun>> }>;
  /** Items (or one daemon's half of them) not started because the time budget ran out. */
  outOfTime: Array<{ item: Item; daemons: Daemon[] }>;
}

export interface RunContext {
  suite: BuiltSuite;
  options: Options;
  runDir: string;
  emit: (line: string) => void;
  log: (line: string) => void;
  /** Why no further test may start (the --stop-at budget is spent), or null. */
  timeUp: () => string | null;
}

/**
 * The lock state the remove script starts from, for the logs: what each
 * lockspace holds decides whether `lvmlockctl --stop-lockspaces` (which waits
 * while any lock is held) can answer. The daemon's lvmlockctl, from the same PATH.
 */
async function snapshotLocks(vm: Vm, d: Daemon, flavour: string, label: string): Promise<void> {
  const out = `/out/runs/${d}/${flavour}/${label}`;
  await vm.sh([
    `rm -rf ${out} && mkdir -p ${out}`,
    `export PATH=${pathFor(d)}`,
    `timeout 30 lvmlockctl --info >${out}/lvmlockctl-info.txt 2>&1`,
    `timeout 30 lvmlockctl --dump >${out}/lvmlockctl-dump.txt 2>&1`,
    `dmsetup info -c >${out}/dmsetup-info.txt 2>&1`,
    `losetup -a >${out}/losetup.txt 2>&1`,
    'true',
  ].join('; '), { timeoutMs: 120_000 }).catch(() => undefined);
}

function saveLogs(vm: Vm, runDir: string): void {
  const from = path.join(vm.outDir, 'runs');
  if (fs.existsSync(from)) fs.cpSync(from, path.join(runDir, 'logs'), { recursive: true, force: true });
  const daemonLog = path.join(vm.outDir, 'ours-lvmlockd.log');
  if (fs.existsSync(daemonLog)) fs.appendFileSync(path.join(runDir, 'ours-lvmlockd.log'), fs.readFileSync(daemonLog));
}

function report(ctx: RunContext, item: Item, runs: Partial<Record<Daemon, TestRun>>): void {
  const v: Partial<Record<Daemon, Verdict>> = {};
  for (const d of ctx.options.daemons) v[d] = runs[d]?.verdict ?? '-';
  const line = resultLine(item.flavour.name, item.test, v);
  const times = ctx.options.daemons.map((d) => `${d}=${runs[d] ? runs[d]!.seconds.toFixed(1) + 's' : '-'}(${runs[d]?.status ?? '-'})`).join(' ');
  ctx.emit(line);
  ctx.emit(`TIME ${item.flavour.name} ${item.test} ${times} item=${item.index}`);
}

/** One VM, one shard: per-test flavours alternate C and ours per test; the others run a block per daemon. */
export async function runShard(ctx: RunContext, shardNo: number, items: Item[]): Promise<ShardReport> {
  const rep: ShardReport = { results: [], outOfTime: [] };
  const idm = items.some((it) => it.flavour.idmDrives && daemonsFor(it.flavour, ctx.options.daemons).length > 0);
  const cluster = await VmCluster.create({
    vms: 1, disks: [{ sizeMiB: 6144 }, ...(idm ? Array.from({ length: SUITE_IDM_DRIVES }, () => ({ sizeMiB: SUITE_IDM_DISK_MIB })) : [])],
    // the IDM drives add 7 node processes (3 firmwares, 3 TCMU disks, the ILM)
    memMiB: idm ? Math.max(ctx.options.memMiB, 2048) : ctx.options.memMiB, name: `upstream${shardNo}`, keep: ctx.options.keep,
    shares: [{ tag: 'lvm2suite', hostPath: ctx.suite.prefixDir }],
    log: (s) => ctx.log(`[shard ${shardNo}] ${s}`),
  });
  const vm = cluster.vm(1);
  const skipForTime = (it: Item, daemons: Daemon[], why: string): void => {
    ctx.log(`[shard ${shardNo}] NOT RUN ${it.flavour.name} ${it.test} with ${daemons.join('+')}: ${why}`);
    rep.outOfTime.push({ item: it, daemons });
  };
  try {
    const selfNamed = oursNamesItself(path.resolve(__dirname, '..', '..', '..'));
    ctx.log(`[shard ${shardNo}] ours as lvmlockd: ${selfNamed ? 'bin/lvmlockd (names its process)' : 'through the launcher'}`);
    await prepareVm(vm, selfNamed);
    let backing = '';
    if (idm) {
      backing = await prepareIdmDrives(cluster, (s) => ctx.log(`[shard ${shardNo}] ${s}`));
      ctx.log(`[shard ${shardNo}] IDM drives (TCMU SCSI disks): LVM_TEST_BACKING_DEVICE=${backing}`);
    }
    const byFlavour = new Map<string, Item[]>();
    for (const it of items) byFlavour.set(it.flavour.name, [...(byFlavour.get(it.flavour.name) ?? []), it]);
    for (const group of byFlavour.values()) {
      const fl = group[0]!.flavour;
      const daemons = daemonsFor(fl, ctx.options.daemons);
      for (const d of ctx.options.daemons) {
        const why = fl.notRunWith?.[d];
        if (why) ctx.log(`[shard ${shardNo}] ${fl.name}: NOT RUN with ${d === 'c' ? 'the C lvmlockd' : 'ours'}: ${why}`);
      }
      const env = (fl.idmDrives ? `LVM_TEST_BACKING_DEVICE=${backing} ` : '') + (ctx.options.failure ? 'LVM_TEST_FAILURE=1 ' : '');
      if (daemons.length === 0) {
        for (const it of group) {
          report(ctx, it, {});
          rep.results.push({ item: it, runs: {} });
        }
      } else if (!fl.prepare) {
        for (const it of group) {
          const runs: Partial<Record<Daemon, TestRun>> = {};
          const late = ctx.timeUp();
          if (late) skipForTime(it, daemons, late);
          else {
            for (const d of daemons) {
              runs[d] = await runOne(vm, d, fl.name, it.test, TEST_LIMIT_MS, env);
              await vm.sh('killall -9 lvmlockd 2>/dev/null; rm -f /run/lvm/lvmlockd.socket /run/lvmlockd.pid; true');
            }
            saveLogs(vm, ctx.runDir);
          }
          report(ctx, it, runs);
          rep.results.push({ item: it, runs });
        }
      } else {
        // One daemon serves the whole group between the prepare and remove
        // scripts, so a group is a block per daemon; RESULT lines follow the last block.
        const all = new Map<Item, Partial<Record<Daemon, TestRun>>>(group.map((it) => [it, {}]));
        for (const d of daemons) {
          const lateBlock = ctx.timeUp();
          if (lateBlock) {
            for (const it of group) skipForTime(it, [d], lateBlock);
            continue;
          }
          await cleanVm(vm);
          const prep = await runOne(vm, d, fl.name, fl.prepare, TEST_LIMIT_MS, env);
          ctx.log(`[shard ${shardNo}] ${fl.name} ${d}: ${fl.prepare} ${prep.status} (${prep.seconds.toFixed(0)} s)`);
          let late: string | null = null;
          for (const it of group) {
            late ??= ctx.timeUp();
            if (late) { skipForTime(it, [d], late); continue; }
            all.get(it)![d] = await runOne(vm, d, fl.name, it.test, TEST_LIMIT_MS, env);
            saveLogs(vm, ctx.runDir);
          }
          if (late) {
            ctx.log(`[shard ${shardNo}] ${fl.name} ${d}: ${fl.remove} not run (${late})`);
            continue;
          }
          await snapshotLocks(vm, d, fl.name, 'before-remove');
          const rem = await runOne(vm, d, fl.name, fl.remove!, REMOVE_LIMIT_MS, env);
          if (fl.idmDrives) await vm.sh(`cp /var/log/seagate_ilm.log /out/runs/${d}/${fl.name}/seagate_ilm.log 2>/dev/null; true`);
          if (rem.status === 'killed (time limit)') await snapshotLocks(vm, d, fl.name, 'remove-stuck');
          ctx.log(`[shard ${shardNo}] ${fl.name} ${d}: ${fl.remove} ${rem.status} (${rem.seconds.toFixed(0)} s)`);
          saveLogs(vm, ctx.runDir);
        }
        for (const it of group) {
          report(ctx, it, all.get(it)!);
          rep.results.push({ item: it, runs: all.get(it)! });
        }
      }
    }
  } finally {
    saveLogs(vm, ctx.runDir);
    await cluster.destroy();
  }
  return rep;
}
