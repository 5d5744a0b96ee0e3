// IDM VG benchmark over real SCSI in the VM tier (issue #14): `lvchange
// -aey`/`-an` hand-overs between two VMs and raw `lock_lv ex`/`un` round trips
// on IDM VGs of 1, 3 and 5 TCMU-backed SCSI disks, against a sanlock VG served
// by the same daemons in the same VMs, in the same run.
//
// The host side (this file) boots 2 VMs (test/vm/lib/vm.ts) and sets up the
// IDM drives as test/vm/11-idm-scsi.test.ts does (test/vm/lib/idm-scsi.ts):
// per drive one firmware (bin/idm-drive) in vm1 on TCP and, in each VM, one
// TCMU backstore (bin/idm-tcmu) over a shared virtio disk, seen by the guest
// kernel as /dev/sdX + /dev/sgN. Each VM runs our ILM (bin/ilmd, no drive map:
// it reaches the drives by SG_IO only) and our lvmlockd -f -g idm -o IO (the
// sanlock VG is created before by a daemon of its own, see below). The
// VG of N drives has one PV partition on each of drives 0..N-1 and one LV
// striped over all of them; the sanlock VG has its own virtio disk.
//
//  (a) lvchange: vm1 -aey, -an, vm2 -aey, -an, R times per config; the configs
//      take turns (the first one moves on every repetition);
//  (b) lock_lv: in vm1, the guest load generator of bench/dlm-vm-guest.ts loops
//      lock_lv ex / un on the LV for S seconds, K rounds per config, the order
//      reversed every round; CPU of the lock processes in vm1 over the loop.
//
// Every process started in the guests (firmwares, backstores, ILMs, daemons)
// is checked after every step: one that is gone fails the section, even when
// the remaining drives are a majority and locks go on being granted.
// `--kill-drive N:I:S` kills drive I's firmware S seconds into the
// measurements, to check exactly that. Everything goes with the VMs, which are
// destroyed in a `finally`.
//
//   node dist/bench/idm-vm.js [--drives 1,3,5] [--lv-reps 5] [--raw-rounds 2] [--raw-seconds 5] [--warmup 1]
//                             [--io 2] [--kill-drive N:I:S] [--no-sanlock] [--keep] [--quiet]
//   needs root, qemu and the VM tier's guest image (built on first use); env
//   LVMLOCKD_VM_ACCEL=tcg forces TCG (see docs/vm-tier.md).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VmCluster, qemuUnavailable, type Vm } from '../test/vm/lib/vm';
import { TS_LVMLOCKD, setupLvm, spawnDetached, stopLvmlockd, waitFor } from '../test/vm/lib/stack';
import { IDM_DISK_MIB, setupIdmScsiDisks, type ScsiDisk } from '../test/vm/lib/idm-scsi';
import { repoRoot } from '../test/harness/cluster';
import type { RunResult } from '../test/harness/exec';
import type { LoopJob, LoopResult } from './dlm-vm-guest';
import type { LockLvTarget, LockType } from './lockd-client';
import { emptyResult } from './idm-report';
import { ProcessDied } from './proc-watch';
import { IDM_VM_USAGE, IdmBenchUsageError, parseIdmVmArgs, validateIdmVmOptions, type IdmVmBenchOptions } from './idm-vm-options';
import { formatIdmVmReport, vmDriveLayout, vmPvPartition, type VmConfigResult } from './idm-vm-report';
import { parseLvDevices } from './idm-report';
import { runVmBenchCli } from './vm-bench-cli';

export { IDM_VM_DEFAULTS, validateIdmVmOptions, type IdmVmBenchOptions } from './idm-vm-options';

const GUEST_SCRIPT = '/repo/dist/bench/dlm-vm-guest.js';
const SOCK = '/run/lvm/lvmlockd.socket';
const PID_FILE = '/run/lvmlockd.pid';
const SANLOCK_DISK_MIB = 512;

/** The first line of the section's text when it could not run. */
export const IDM_VM_NOT_RUN = '*** IDM VM bench NOT RUN';

export class IdmVmBenchFailure extends Error {
  constructor(readonly report: string) {
    super(report);
    this.name = 'IdmVmBenchFailure';
  }
}

class StepFailed extends Error {}

/** Why the section cannot run here, or null. */
export function idmVmPrerequisites(sanlock: boolean): string | null {
  const q = qemuUnavailable();
  if (q) return `the VM tier cannot run here: ${q}`;
  const guest = path.join(repoRoot(), 'dist', 'bench', 'dlm-vm-guest.js');
  if (!fs.existsSync(guest)) return `${path.relative(repoRoot(), guest)} missing (npm run build)`;
  try {
    const out = execFileSync(process.execPath, [path.join(repoRoot(), 'bin', 'lvmlockd'), '--version'], { encoding: 'utf8', timeout: 30_000 });
    const m = /lock managers: ([a-z ]*)\]/.exec(out);
    const managers = m ? m[1]!.trim().split(/\s+/) : [];
    for (const want of sanlock ? ['idm', 'sanlock'] : ['idm']) {
      if (!managers.includes(want)) return `our lvmlockd has no ${want} lock manager (--version lists: ${managers.join(' ') || 'none'})`;
    }
  } catch (e) {
    return `our bin/lvmlockd --version failed: ${(e as Error).message.split('\n')[0]}`;
  }
  return null;
}

// ---------------------------------------------------------------- guest processes

interface GuestProc { vm: Vm; pid: number; label: string; log: string }

/**
 * The processes the section depends on, in both guests. check() asks each VM
 * which of them are gone (kill -0) and throws ProcessDied naming them, with
 * the end of their logs.
 */
class GuestWatch {
  readonly procs: GuestProc[] = [];
  private readonly dead: string[] = [];

  add(p: GuestProc): void {
    if (!Number.isInteger(p.pid) || p.pid <= 0) throw new StepFailed(`${p.vm.name}: ${p.label}: no pid from the spawn`);
    this.procs.push(p);
  }

  /** Forget a process that the bench stops itself. */
  remove(vm: Vm, label: string): void {
    const i = this.procs.findIndex((p) => p.vm === vm && p.label === label);
    if (i >= 0) this.procs.splice(i, 1);
  }

  pids(vm: Vm, pred: (p: GuestProc) => boolean): number[] {
    return this.procs.filter((p) => p.vm === vm && pred(p)).map((p) => p.pid);
  }

  get deaths(): readonly string[] {
    return this.dead;
  }

  async check(): Promise<void> {
    const vms = [...new Set(this.procs.map((p) => p.vm))];
    for (const vm of vms) {
      const mine = this.procs.filter((p) => p.vm === vm);
      const r = await vm.sh(`for p in ${mine.map((p) => p.pid).join(' ')}; do kill -0 $p 2>/dev/null || echo $p; done`, { timeoutMs: 60_000 });
      if (r.code !== 0) throw new StepFailed(`${vm.name}: cannot check the processes: exit ${r.code}${r.timedOut ? ' (timed out)' : ''} ${r.stderr}`);
      const gone = new Set(r.stdout.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0));
      for (const p of mine.filter((x) => gone.has(x.pid))) {
        const tail = (await vm.sh(`tail -n 5 /out/${p.log} 2>/dev/null`)).stdout.trim().replace(/\n/g, ' | ');
        const what = `${vm.name} ${p.label} (pid ${p.pid}) is gone; end of /out/${p.log}: ${tail || '(empty)'}`;
        if (!this.dead.includes(what)) this.dead.push(what);
      }
    }
    if (this.dead.length) throw new ProcessDied([...this.dead]);
  }
}

// ---------------------------------------------------------------- helpers

interface Config {
  res: VmConfigResult;
  lockType: LockType;
  vg: string;
  lv: string;
  /** the VG's PVs in each VM (vgcreate order) */
  pvs: Map<Vm, string[]>;
  /** drive indexes of the VG */
  driveIdx: number[];
  target: LockLvTarget | null;
}

function fail(vm: Vm, what: string, r: RunResult): never {
  throw new StepFailed(`${vm.name}: ${what}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n${r.stdout}${r.stderr}`.trimEnd());
}

async function lvmOk(vm: Vm, args: string[], timeoutMs = 180_000): Promise<RunResult> {
  const r = await vm.exec(['lvm', ...args], { timeoutMs });
  if (r.code !== 0) fail(vm, `lvm ${args.join(' ')}`, r);
  return r;
}

async function readTarget(vm: Vm, cfg: Config): Promise<LockLvTarget> {
  const lvs = await lvmOk(vm, ['lvs', '--noheadings', '-o', 'lv_uuid,lock_args', `${cfg.vg}/${cfg.lv}`]);
  const m = /^\s*(\S{38})\s+(\S+)\s*$/.exec(lvs.stdout);
  if (!m) throw new StepFailed(`${vm.name}: cannot read lv_uuid and lock_args of ${cfg.vg}/${cfg.lv} from ${JSON.stringify(lvs.stdout)}`);
  const vgArgs = (await lvmOk(vm, ['vgs', '--noheadings', '-o', 'lock_args', cfg.vg])).stdout.trim();
  const pvs = cfg.pvs.get(vm)!;
  const devs = parseLvDevices((await lvmOk(vm, ['lvs', '--noheadings', '-o', 'devices', `${cfg.vg}/${cfg.lv}`])).stdout);
  if ([...devs].sort().join(' ') !== [...pvs].sort().join(' ')) {
    throw new StepFailed(`${vm.name}: ${cfg.vg}/${cfg.lv} is on ${devs.join(' ')}, not on every PV of the VG (${pvs.join(' ')})`);
  }
  return { vg: cfg.vg, lv: cfg.lv, lvUuid: m[1]!, lockType: cfg.lockType, vgArgs, lvArgs: m[2]!, pvs: cfg.lockType === 'idm' ? pvs : [] };
}

function gitCommit(): string {
  try {
    const root = repoRoot();
    const head = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 10_000 }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', timeout: 10_000 }).trim();
    return dirty ? `${head}+uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

const loadAvg = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');

// ---------------------------------------------------------------- the bench

export async function runIdmVmBench(opts: Partial<IdmVmBenchOptions> = {}): Promise<string> {
  const o = validateIdmVmOptions(opts);
  const missing = idmVmPrerequisites(o.sanlock);
  if (missing) {
    const text = `${IDM_VM_NOT_RUN}: ${missing}. No IDM-over-SCSI figures were taken. ***\n`;
    process.stderr.write(`\n${text}\n`);
    return text;
  }
  const started = Date.now();
  const log = (s: string): void => { if (o.verbose) process.stderr.write(`[idm-vm bench ${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`); };
  const load0 = loadAvg();
  const commit = gitCommit();
  const maxDrives = Math.max(...o.drives);
  const watch = new GuestWatch();
  const configs: Config[] = [];
  const notes: string[] = [];
  let failure: Error | null = null;
  let c: VmCluster | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  let bootS = NaN, setupS = NaN;
  let guestKernel = '?';
  try {
    const disks = [...Array.from({ length: maxDrives }, () => ({ sizeMiB: IDM_DISK_MIB })), ...(o.sanlock ? [{ sizeMiB: SANLOCK_DISK_MIB }] : [])];
    c = await VmCluster.create({ vms: 2, disks, memMiB: 2048, name: 'bench-idm', keep: o.keep, log });
    const cl = c;
    bootS = (Date.now() - started) / 1000;
    if (o.keep) notes.push(`cluster dir kept: ${cl.dir}`);
    const [v1, v2] = [cl.vm(1), cl.vm(2)];
    guestKernel = (await v1.exec(['uname', '-r'])).stdout.trim();
    const t1 = Date.now();

    // -- the drives: firmwares in vm1, TCMU disks in both VMs
    const sd = await setupIdmScsiDisks(cl, maxDrives, log, {}, {
      layout: (i, bytes) => vmDriveLayout(o.drives, i, bytes),
      onSpawn: (p) => watch.add({ vm: p.vm, pid: p.pid, label: `drive ${p.drive} ${p.kind === 'firmware' ? 'firmware (idm-drive)' : 'TCMU backstore (idm-tcmu)'}`, log: p.log }),
    });
    const sanlockDisk = `/dev/vd${String.fromCharCode('b'.charCodeAt(0) + maxDrives)}`;
    const pvOf = (vm: Vm, v: number, i: number): string => `/dev/${(sd.get(vm.index) as ScsiDisk[])[i]!.sd}${vmPvPartition(o.drives, v, i)}`;
    for (const [v, n] of o.drives.entries()) {
      const driveIdx = Array.from({ length: n }, (_, i) => i);
      configs.push({
        res: { ...emptyResult(`idm x${n}`, n), rawTcmuCpu: 0 }, lockType: 'idm', vg: `vgi${n}`, lv: 'lv1',
        pvs: new Map(cl.vms.map((vm) => [vm, driveIdx.map((i) => pvOf(vm, v, i))])), driveIdx, target: null,
      });
    }
    if (o.sanlock) {
      configs.push({
        res: { ...emptyResult('sanlock', 0), rawTcmuCpu: 0 }, lockType: 'sanlock', vg: 'vgs1', lv: 'lv1',
        pvs: new Map(cl.vms.map((vm) => [vm, [sanlockDisk]])), driveIdx: [], target: null,
      });
    }
    // PV partitions present in both VMs
    for (const vm of cl.vms) {
      const all = configs.flatMap((x) => x.pvs.get(vm)!);
      await waitFor(vm, all.map((p) => `test -b ${p}`).join(' && '), 60_000, `the PV partitions ${all.join(' ')}`);
    }

    // -- ILM and lvmlockd in each VM
    const startDaemon = async (vm: Vm, args: string[]): Promise<void> => {
      const d = await spawnDetached(vm, [TS_LVMLOCKD, '-f', '-o', String(o.io), ...args], 'lvmlockd.log');
      watch.add({ vm, pid: d, label: 'lvmlockd', log: 'lvmlockd.log' });
      await waitFor(vm, `test -S ${SOCK} && lvmlockctl --info >/dev/null 2>&1`, 60_000, 'our lvmlockd');
      const pidFile = (await vm.sh(`cat ${PID_FILE}`)).stdout.trim();
      if (Number(pidFile) !== d) throw new StepFailed(`${vm.name}: ${PID_FILE} says ${pidFile}, the lvmlockd started is ${d}`);
    };
    for (const vm of cl.vms) {
      await setupLvm(vm, { devices: configs.flatMap((x) => x.pvs.get(vm)!) });
      const ilm = await spawnDetached(vm, ['/repo/bin/ilmd', '-D', '1', '-E', '6'], 'ilm.log', { ILM_LOG_DIR: '/run/seagate_ilm' });
      watch.add({ vm, pid: ilm, label: 'ILM (bin/ilmd)', log: 'ilm.log' });
      await waitFor(vm, 'test -S /run/seagate_ilm/main.sock', 60_000, 'the ILM');
    }
    // The sanlock VG is created first, by a daemon of its own in vm1: lvm's
    // vgcreate asks for the global lock with the new VG's lock type, which a
    // daemon whose global lock is IDM refuses (-EINVAL, as C's lvmlockd does).
    // The VG is then lock-stopped, that daemon stopped, and the daemons of the
    // run (global lock IDM, -g idm) serve the IDM VGs and the sanlock VG alike.
    const sanCfg = configs.find((x) => x.lockType === 'sanlock');
    if (sanCfg) {
      await startDaemon(v1, []);
      await lvmOk(v1, ['vgcreate', '--shared', '--lock-type', 'sanlock', sanCfg.vg, ...sanCfg.pvs.get(v1)!]);
      await lvmOk(v1, ['lvcreate', '-an', '-n', sanCfg.lv, '-L', '8M', sanCfg.vg]);
      await lvmOk(v1, ['vgchange', '--lock-stop', sanCfg.vg]);
      watch.remove(v1, 'lvmlockd');
      await stopLvmlockd(v1);
      log(`sanlock: ${sanCfg.vg}/${sanCfg.lv} created on ${sanCfg.pvs.get(v1)!.join(' ')} (own daemon, stopped again)`);
    }
    for (const vm of cl.vms) await startDaemon(vm, ['-g', 'idm']);
    await watch.check();

    // -- the IDM VGs: created in vm1, lock-started in vm2, one LV striped over all PVs
    for (const cfg of configs) {
      if (cfg.lockType === 'idm') {
        const pvs = cfg.pvs.get(v1)!;
        await lvmOk(v1, ['vgcreate', '--shared', '--lock-type', 'idm', cfg.vg, ...pvs]);
        const n = pvs.length;
        const stripes = n > 1 ? ['-i', String(n), '-I', '64k'] : [];
        await lvmOk(v1, ['lvcreate', '-an', '-n', cfg.lv, ...stripes, '-L', `${4 * n}M`, cfg.vg]);
      } else {
        await lvmOk(v1, ['vgchange', '--lock-start', cfg.vg]);
      }
      await lvmOk(v2, ['vgchange', '--lock-start', cfg.vg]);
      cfg.target = await readTarget(v1, cfg);
      await readTarget(v2, cfg);
      log(`${cfg.res.name}: ${cfg.vg}/${cfg.lv} on ${cfg.pvs.get(v1)!.join(' ')} (vm2: ${cfg.pvs.get(v2)!.join(' ')}), started in both VMs`);
    }
    await watch.check();
    // one untimed hand-over per config (first use of each lock, caches)
    for (const cfg of configs) {
      for (const vm of [v1, v2]) {
        await lvmOk(vm, ['lvchange', '-aey', `${cfg.vg}/${cfg.lv}`]);
        await lvmOk(vm, ['lvchange', '-an', `${cfg.vg}/${cfg.lv}`]);
      }
    }
    await watch.check();
    setupS = (Date.now() - t1) / 1000;
    log(`set-up done in ${setupS.toFixed(0)} s`);

    if (o.killDrive) {
      const k = o.killDrive;
      const fw = watch.procs.find((p) => p.vm === v1 && p.label.startsWith(`drive ${k.index} firmware`))!;
      notes.push(`FAULT INJECTED (--kill-drive ${k.drives}:${k.index}:${k.afterSeconds}): SIGKILL to drive ${k.index}'s firmware (vm1 pid ${fw.pid}; a drive of vgi${k.drives}) ${k.afterSeconds} s into the measurements`);
      killTimer = setTimeout(() => {
        log(`--kill-drive: SIGKILL to drive ${k.index}'s firmware (vm1 pid ${fw.pid})`);
        void v1.sh(`kill -9 ${fw.pid}`).catch(() => undefined);
      }, k.afterSeconds * 1000);
    }

    // -- (a) lvchange hand-overs
    for (let r = 0; r < o.lvReps; r++) {
      const order = configs.map((_, i) => configs[(i + r) % configs.length]!);
      for (const cfg of order) {
        const vglv = `${cfg.vg}/${cfg.lv}`;
        for (const vm of [v1, v2]) {
          cfg.res.lvAcquireMs.push((await lvmOk(vm, ['lvchange', '-aey', vglv])).durationMs);
          cfg.res.lvReleaseMs.push((await lvmOk(vm, ['lvchange', '-an', vglv])).durationMs);
        }
        await watch.check();
      }
      log(`lvchange repetition ${r + 1}/${o.lvReps} done`);
    }

    // -- (b) lock_lv loops in vm1
    const loopTimeout = (o.warmupSeconds + o.rawSeconds) * 1000 + 180_000;
    for (let round = 0; round < o.rawRounds; round++) {
      const order = round % 2 === 0 ? configs : [...configs].reverse();
      for (const cfg of order) {
        const idm = cfg.lockType === 'idm';
        const ofDrive = (kind: string) => (p: { label: string }) => cfg.driveIdx.some((i) => p.label.startsWith(`drive ${i} ${kind}`));
        const job: LoopJob = {
          mode: 'loop', label: `${cfg.res.name} lock_lv`, sockPath: SOCK, pidFile: PID_FILE, target: cfg.target!, expect: 'granted',
          warmupSeconds: o.warmupSeconds, seconds: o.rawSeconds, maxOps: 1_000_000,
          cpuPids: idm ? {
            ilm: watch.pids(v1, (p) => p.label.startsWith('ILM')),
            tcmu: watch.pids(v1, ofDrive('TCMU')),
            drives: watch.pids(v1, ofDrive('firmware')),
          } : {},
        };
        const r = await v1.exec(['node', GUEST_SCRIPT, JSON.stringify(job)], { timeoutMs: loopTimeout });
        if (r.code !== 0) fail(v1, `load generator (${job.label})`, r);
        let res: LoopResult;
        try {
          res = JSON.parse(r.stdout) as LoopResult;
        } catch {
          throw new StepFailed(`${v1.name}: load generator (${job.label}) printed no result: ${r.stdout.slice(0, 300)}`);
        }
        cfg.res.rawExUs.push(...res.exUs);
        cfg.res.rawUnUs.push(...res.unUs);
        cfg.res.rawSeconds += res.seconds;
        cfg.res.rawCpu.lvmlockd += res.daemonCpuSeconds;
        const g = res.groupCpuSeconds ?? {};
        cfg.res.rawCpu.ilm += g.ilm ?? 0;
        cfg.res.rawCpu.drives += g.drives ?? 0;
        cfg.res.rawTcmuCpu += g.tcmu ?? 0;
        log(`${cfg.res.name} lock_lv round ${round + 1}: ${res.exUs.length} ex+un in ${res.seconds.toFixed(1)} s`);
        await watch.check();
      }
    }
    await watch.check();
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
  } finally {
    if (killTimer) clearTimeout(killTimer);
    // a death explains whatever failed after it
    if (c && !(failure instanceof ProcessDied)) {
      try { await watch.check(); } catch (e) {
        if (e instanceof ProcessDied) failure = new ProcessDied(watch.deaths, failure?.message);
      }
    }
    if (c) {
      try { await c.destroy(); } catch (e) { notes.push(`cleanup: ${(e as Error).message}`); }
    }
  }
  const text = formatIdmVmReport(configs.map((x) => x.res), {
    date: new Date().toISOString(), commit, accel: c?.accel ?? '?', accelReason: c?.accelReason ?? '', guestKernel,
    load0, load1: loadAvg(), seconds: (Date.now() - started) / 1000, bootSeconds: bootS, setupSeconds: setupS,
    cpus: os.cpus().length, node: process.version, lvReps: o.lvReps, rawRounds: o.rawRounds, rawSeconds: o.rawSeconds,
    warmupSeconds: o.warmupSeconds, io: o.io, maxDrives, notes,
  });
  if (failure) {
    const what = failure instanceof ProcessDied ? `a process the bench depends on died: ${failure.message}` : failure.message;
    const where = c && o.keep ? ` (logs in ${c.dir})` : ' (--keep keeps the guest logs)';
    throw new IdmVmBenchFailure(`${text}\nFAILED${where}: ${what}\n`);
  }
  return text;
}

// ---------------------------------------------------------------- CLI

if (require.main === module) {
  runVmBenchCli({
    name: 'idm-vm', parse: parseIdmVmArgs, usageError: IdmBenchUsageError, usage: IDM_VM_USAGE,
    run: runIdmVmBench, notRun: IDM_VM_NOT_RUN, failure: IdmVmBenchFailure,
  });
}
