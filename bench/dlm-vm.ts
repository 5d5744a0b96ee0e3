// dlm VG benchmark in the VMs of the VM tier: our lvmlockd against the C
// lvmlockd 2.03.16, both on the real kernel DLM (corosync + dlm_controld), in
// the same run on the same two VMs.
//
// The host side (this file) boots 2 VMs (test/vm/lib/vm.ts), starts corosync
// and dlm_controld once (test/vm/lib/stack.ts), then for every round runs one
// daemon after the other (ours first in odd rounds, C first in even ones) on
// both VMs, each with a fresh dlm VG (`vgcreate --shared --lock-type dlm` on
// vm1, `--lock-start` on vm2) and one LV:
//
//  (a) local: the guest-side load generator (bench/dlm-vm-guest.ts, run with
//      the repo's node inside vm1) sends lock_lv ex / lock_lv un on one
//      connection to vm1's daemon socket, nobody else using the LV;
//  (b) refused: vm2 holds the LV lock ex (`lvchange -aey`), vm1 sends lock_lv
//      ex over and over and every answer is a refusal; then
//      hand-over: the LV lock goes back and forth between the VMs (vm1 ex, un,
//      vm2 ex, un, ... coordinated over TCP between the guests), every ex takes
//      a lock that the other VM released just before;
//  (c) lvchange: vm1 `lvchange -aey`, `-an`, vm2 the same, timed by the
//      guest's agent around the command (real activation, udev sync).
//
// Latencies are taken inside the guests; the host's load only matters through
// the vCPUs. Targets (issue #13): ours <= 1.0x C. A miss is reported in the
// table and does not change the exit status; a failed command, refused
// request or daemon fails the section.
//
//   node dist/bench/dlm-vm.js [--rounds 2] [--seconds 5] [--warmup 1] [--handovers 200] [--lvchange-reps 10] [--keep] [--quiet]
//   needs root, qemu and the VM tier's guest image (built on first use); env
//   LVMLOCKD_VM_ACCEL=tcg forces TCG (see docs/vm-tier.md).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VmCluster, qemuUnavailable, type Vm } from '../test/vm/lib/vm';
import { TS_LVMLOCKD, setupLvm, spawnDetached, startDlmStack, stopLvmlockd, waitFor } from '../test/vm/lib/stack';
import { repoRoot } from '../test/harness/cluster';
import type { RunResult } from '../test/harness/exec';
import type { GuestJob, LoopResult, PingPongResult } from './dlm-vm-guest';
import type { LockLvTarget } from './lockd-client';
import { DLM_VM_USAGE, DlmBenchUsageError, parseDlmVmArgs, validateDlmVmOptions, type DlmVmBenchOptions } from './dlm-vm-options';
import { runVmBenchCli } from './vm-bench-cli';

export { DlmBenchUsageError, parseDlmVmArgs, validateDlmVmOptions, DLM_VM_DEFAULTS, type DlmVmBenchOptions } from './dlm-vm-options';

type Side = 'ours' | 'c';
const SIDE_LABEL: Record<Side, string> = { ours: 'ours', c: 'C' };
const VG = 'vgbench';
const LV = 'lv1';
const GUEST_SCRIPT = '/repo/dist/bench/dlm-vm-guest.js';
const C_LVMLOCKD_GUEST = '/usr/sbin/lvmlockd';
const PINGPONG_PORT = 7431;

/** The first line of the section's text when it could not run. */
export const DLM_VM_NOT_RUN = '*** dlm VM bench NOT RUN';

export class DlmVmBenchFailure extends Error {
  constructor(readonly report: string) {
    super(report);
    this.name = 'DlmVmBenchFailure';
  }
}

class StepFailed extends Error {}

// ---------------------------------------------------------------- prerequisites

/** Why the section cannot run here, or null. */
export function dlmVmPrerequisites(): string | null {
  const q = qemuUnavailable();
  if (q) return `the VM tier cannot run here: ${q}`;
  const guest = path.join(repoRoot(), 'dist', 'bench', 'dlm-vm-guest.js');
  if (!fs.existsSync(guest)) return `${path.relative(repoRoot(), guest)} missing (npm run build)`;
  try {
    const out = execFileSync(process.execPath, [path.join(repoRoot(), 'bin', 'lvmlockd'), '--version'], { encoding: 'utf8', timeout: 30_000 });
    const m = /lock managers: ([a-z ]*)\]/.exec(out);
    const managers = m ? m[1]!.trim().split(/\s+/) : [];
    if (!managers.includes('dlm')) return `our lvmlockd has no dlm lock manager (--version lists: ${managers.join(' ') || 'none'})`;
  } catch (e) {
    return `our bin/lvmlockd --version failed: ${(e as Error).message.split('\n')[0]}`;
  }
  return null;
}

// ---------------------------------------------------------------- results

interface SideRound {
  round: number;
  local: LoopResult;
  refused: LoopResult;
  handA: PingPongResult;
  handB: PingPongResult;
  aeyMs: number[];
  anMs: number[];
  /** what the guest's /proc says runs as lvmlockd (sanity check of the side) */
  exe: string;
}

// ---------------------------------------------------------------- helpers

function fail(vm: Vm, what: string, r: RunResult): never {
  throw new StepFailed(`${vm.name}: ${what}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n${r.stdout}${r.stderr}`.trimEnd());
}

async function lvmOk(vm: Vm, args: string[], timeoutMs = 180_000): Promise<RunResult> {
  const r = await vm.exec(['lvm', ...args], { timeoutMs });
  if (r.code !== 0) fail(vm, `lvm ${args.join(' ')}`, r);
  return r;
}

async function lvmUntilOk(vm: Vm, args: string[], limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const r = await vm.exec(['lvm', ...args], { timeoutMs: 120_000 });
    if (r.code === 0) return;
    if (Date.now() > deadline) fail(vm, `lvm ${args.join(' ')} (retried for ${limitMs / 1000} s)`, r);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

async function guestJob<T>(vm: Vm, job: GuestJob, timeoutMs: number): Promise<T> {
  const r = await vm.exec(['node', GUEST_SCRIPT, JSON.stringify(job)], { timeoutMs });
  if (r.code !== 0) fail(vm, `load generator (${job.mode} ${job.label})`, r);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new StepFailed(`${vm.name}: load generator (${job.label}) printed no result: ${r.stdout.slice(0, 300)}`);
  }
}

/** Start lvmlockd of `side` in the foreground without debug output, as a service would run it. */
async function startDaemon(vm: Vm, side: Side): Promise<string> {
  const bin = side === 'c' ? C_LVMLOCKD_GUEST : TS_LVMLOCKD;
  await spawnDetached(vm, [bin, '-f'], `lvmlockd-${side}.log`);
  await waitFor(vm, 'test -S /run/lvm/lvmlockd.socket && lvmlockctl --info >/dev/null 2>&1', 60_000, `${side} lvmlockd`);
  // ours renames its process (cmdline "lvmlockd -f"), but its executable stays node
  const r = await vm.sh('p=$(cat /run/lvmlockd.pid); readlink /proc/$p/exe; tr "\\0" " " < /proc/$p/cmdline');
  const [exe = '', cmdline = ''] = r.stdout.split('\n').map((l) => l.trim());
  const ok = side === 'ours' ? /\/node$/.test(exe) : exe === C_LVMLOCKD_GUEST;
  if (!ok) throw new StepFailed(`${vm.name}: the pid in /run/lvmlockd.pid is not the ${SIDE_LABEL[side]} daemon: exe ${exe}, cmdline ${cmdline}`);
  return `${SIDE_LABEL[side]}: exe ${exe}, cmdline ${cmdline}`;
}

async function dlmLockspaces(vm: Vm): Promise<string[]> {
  const r = await vm.sh('dlm_tool ls 2>/dev/null | sed -n "s/^name *//p"');
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('lvm_'));
}

/**
 * Leave every lvm_ lockspace, stop the daemons, wipe the VG from the disk. A
 * lockspace still listed 30 s after --stop-lockspaces goes into `notes` (the
 * daemon is killed all the same; the next daemon joins such a lockspace).
 */
async function teardown(c: VmCluster, notes: string[], what: string): Promise<void> {
  await Promise.all(c.vms.map(async (vm) => {
    await vm.sh('dmsetup remove_all --force >/dev/null 2>&1; lvmlockctl --stop-lockspaces >/dev/null 2>&1; true', { timeoutMs: 60_000 });
    const deadline = Date.now() + 30_000;
    let left = await dlmLockspaces(vm);
    while (left.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      left = await dlmLockspaces(vm);
    }
    if (left.length) notes.push(`${what}: ${vm.name} still had dlm lockspaces ${left.join(' ')} 30 s after lvmlockctl --stop-lockspaces`);
    await stopLvmlockd(vm);
  }));
  const w = await c.vm(1).sh('dd if=/dev/zero of=/dev/vdb bs=1M count=8 oflag=direct status=none', { timeoutMs: 60_000 });
  if (w.code !== 0) fail(c.vm(1), 'wipe /dev/vdb', w);
}

// ---------------------------------------------------------------- one side, one round

async function runSide(c: VmCluster, side: Side, round: number, o: DlmVmBenchOptions, log: (s: string) => void, notes: string[]): Promise<SideRound> {
  const [v1, v2] = [c.vm(1), c.vm(2)];
  const label = SIDE_LABEL[side];
  const exes = await Promise.all([startDaemon(v1, side), startDaemon(v2, side)]);
  await lvmOk(v1, ['vgcreate', '--shared', '--lock-type', 'dlm', VG, '/dev/vdb']);
  await lvmOk(v1, ['lvcreate', '-an', '-n', LV, '-L', '8M', VG]);
  await lvmOk(v2, ['vgchange', '--lock-start', VG]);
  const lvs = await lvmOk(v1, ['lvs', '--noheadings', '-o', 'lv_uuid,lock_args', `${VG}/${LV}`]);
  const vgs = await lvmOk(v1, ['vgs', '--noheadings', '-o', 'lock_args', VG]);
  const m = /^\s*(\S{38})\s+(\S+)\s*$/.exec(lvs.stdout);
  if (!m) throw new StepFailed(`${v1.name}: cannot read lv_uuid and lock_args from ${JSON.stringify(lvs.stdout)}`);
  const target: LockLvTarget = { vg: VG, lv: LV, lvUuid: m[1]!, lockType: 'dlm', vgArgs: vgs.stdout.trim(), lvArgs: m[2]! };
  log(`${label} round ${round}: VG ${VG} (lock_args ${target.vgArgs}), LV ${target.lvUuid} (${target.lvArgs})`);
  const sock = '/run/lvm/lvmlockd.socket';
  const loopTimeout = (o.warmupSeconds + o.seconds) * 1000 + 120_000;

  // (a) local
  const local = await guestJob<LoopResult>(v1, {
    mode: 'loop', label: `${label} local`, sockPath: sock, pidFile: '/run/lvmlockd.pid', target, expect: 'granted',
    warmupSeconds: o.warmupSeconds, seconds: o.seconds, maxOps: 2_000_000,
  }, loopTimeout);
  log(`${label} round ${round}: local ${local.exUs.length} ex+un in ${local.seconds.toFixed(1)} s`);

  // (b) refused while vm2 holds the LV ex
  await lvmOk(v2, ['lvchange', '-aey', `${VG}/${LV}`]);
  const refused = await guestJob<LoopResult>(v1, {
    mode: 'loop', label: `${label} refused`, sockPath: sock, pidFile: '/run/lvmlockd.pid', target, expect: 'refused',
    warmupSeconds: o.warmupSeconds, seconds: o.seconds, maxOps: 2_000_000,
  }, loopTimeout);
  await lvmOk(v2, ['lvchange', '-an', `${VG}/${LV}`]);
  log(`${label} round ${round}: refused ${refused.exUs.length} ex`);

  // (b) hand-over between the VMs
  const warmup = Math.min(20, Math.max(2, Math.round(o.handovers / 10)));
  const timeoutSeconds = 60 + Math.ceil(o.handovers / 5);
  const pp = (vm: Vm, role: 'a' | 'b'): Promise<PingPongResult> => guestJob<PingPongResult>(vm, {
    mode: 'pingpong', label: `${label} hand-over ${vm.name}`, role, sockPath: sock, target,
    address: v1.address, port: PINGPONG_PORT, handovers: o.handovers, warmup, timeoutSeconds,
  }, timeoutSeconds * 1000 + 30_000);
  const [handA, handB] = await Promise.all([pp(v1, 'a'), pp(v2, 'b')]);
  log(`${label} round ${round}: ${handA.exUs.length} hand-overs in ${handA.seconds.toFixed(1)} s`);

  // (c) lvchange, the VMs taking turns
  const aeyMs: number[] = [];
  const anMs: number[] = [];
  for (let i = 0; i < o.lvchangeReps; i++) {
    for (const vm of [v1, v2]) {
      aeyMs.push((await lvmOk(vm, ['lvchange', '-aey', `${VG}/${LV}`])).durationMs);
      anMs.push((await lvmOk(vm, ['lvchange', '-an', `${VG}/${LV}`])).durationMs);
    }
  }
  log(`${label} round ${round}: ${aeyMs.length} lvchange -aey`);

  // the VG goes; the next side starts from an empty disk
  await lvmOk(v2, ['vgchange', '--lock-stop', VG]);
  await lvmUntilOk(v1, ['vgremove', '-y', VG], 60_000);
  await teardown(c, notes, `${label} round ${round}`);
  return { round, local, refused, handA, handB, aeyMs, anMs, exe: exes[0]! };
}

// ---------------------------------------------------------------- statistics and report

/** Nearest-rank quantile. */
export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return '-';
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 10_000) return `${(us / 1000).toFixed(1)} ms`;
  if (us >= 1000) return `${(us / 1000).toFixed(2)} ms`;
  return `${us.toFixed(0)} us`;
}

function pad(s: string, n: number, left = false): string {
  return left ? s.padEnd(n) : s.padStart(n);
}

interface Row {
  what: string;
  /** samples in microseconds */
  ours: number[];
  c: number[];
  target: boolean;
}

function pooled(rs: SideRound[], f: (r: SideRound) => number[]): number[] {
  return rs.flatMap(f);
}

export interface DlmVmReportInput {
  results: Record<Side, SideRound[]>;
  o: DlmVmBenchOptions;
  accel: string;
  accelReason: string;
  guestKernel: string;
  cVersion: string;
  commit: string;
  load0: number[];
  load1: number[];
  bootS: number;
  stackS: number;
  totalS: number;
  notes: string[];
}

export function formatDlmVmReport(x: DlmVmReportInput): string {
  const { results: res, o } = x;
  const out: string[] = [];
  const la = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  out.push('dlm VGs in 2 VMs on the kernel DLM (corosync + dlm_controld): our lvmlockd vs C lvmlockd, same VMs, same run');
  out.push(`${new Date().toISOString()}, commit ${x.commit}; accelerator ${x.accel.toUpperCase()} (${x.accelReason}); guests: 1 vCPU each, kernel ${x.guestKernel}, ${x.cVersion}`);
  out.push(`host: ${os.cpus().length} CPUs, node ${process.version}; load average (1/5/15 min) ${la(x.load0)} at start, ${la(x.load1)} at end`);
  out.push(`section ${x.totalS.toFixed(0)} s (VM boot ${x.bootS.toFixed(0)} s, corosync + dlm_controld ${x.stackS.toFixed(0)} s); ${o.rounds} round${o.rounds > 1 ? 's' : ''}, ` +
    `first daemon alternating (ours first in round 1); per side and round: local and refused loops ${o.seconds} s after ${o.warmupSeconds} s warm-up, ` +
    `${o.handovers} hand-overs, ${o.lvchangeReps} lvchange hand-overs`);
  out.push('');
  const rows: Row[] = [
    { what: 'local lock_lv ex (no other holder)', ours: pooled(res.ours, (r) => r.local.exUs), c: pooled(res.c, (r) => r.local.exUs), target: true },
    { what: 'local lock_lv un', ours: pooled(res.ours, (r) => r.local.unUs), c: pooled(res.c, (r) => r.local.unUs), target: true },
    { what: 'lock_lv ex refused (other VM holds ex)', ours: pooled(res.ours, (r) => r.refused.exUs), c: pooled(res.c, (r) => r.refused.exUs), target: true },
    { what: 'hand-over lock_lv ex (other VM released)', ours: pooled(res.ours, (r) => [...r.handA.exUs, ...r.handB.exUs]), c: pooled(res.c, (r) => [...r.handA.exUs, ...r.handB.exUs]), target: true },
    { what: 'hand-over lock_lv un', ours: pooled(res.ours, (r) => [...r.handA.unUs, ...r.handB.unUs]), c: pooled(res.c, (r) => [...r.handA.unUs, ...r.handB.unUs]), target: true },
    { what: 'lvchange -aey (vm1/vm2 alternating)', ours: pooled(res.ours, (r) => r.aeyMs.map((v) => v * 1000)), c: pooled(res.c, (r) => r.aeyMs.map((v) => v * 1000)), target: true },
    { what: 'lvchange -an', ours: pooled(res.ours, (r) => r.anMs.map((v) => v * 1000)), c: pooled(res.c, (r) => r.anMs.map((v) => v * 1000)), target: false },
  ];
  const head = `${pad('case', 42, true)} ${pad('n ours/C', 13)} ${pad('ours p50', 9)} ${pad('ours p90', 9)} ${pad('C p50', 9)} ${pad('C p90', 9)} ${pad('ours/C p50', 10)}  target ours <= 1.0x C`;
  out.push(head);
  out.push('-'.repeat(head.length));
  const verdicts: string[] = [];
  const verdict = (what: string, ratio: number): string => {
    if (!Number.isFinite(ratio)) { verdicts.push(`${what}: n/a`); return 'n/a'; }
    const v = ratio <= 1.0 ? 'met' : 'MISSED';
    verdicts.push(`${what} ${ratio.toFixed(2)}x ${v}`);
    return v;
  };
  for (const r of rows) {
    const op = quantile(r.ours, 0.5), cp = quantile(r.c, 0.5);
    const ratio = op / cp;
    out.push(`${pad(r.what, 42, true)} ${pad(`${r.ours.length}/${r.c.length}`, 13)} ${pad(fmtUs(op), 9)} ${pad(fmtUs(quantile(r.ours, 0.9)), 9)} ` +
      `${pad(fmtUs(cp), 9)} ${pad(fmtUs(quantile(r.c, 0.9)), 9)} ${pad(Number.isFinite(ratio) ? ratio.toFixed(2) + 'x' : '-', 10)}  ${r.target ? verdict(r.what, ratio) : ''}`);
  }
  // throughput of the loops and CPU
  const rate = (rs: SideRound[], f: (r: SideRound) => LoopResult, perPair: number): { perS: number; rounds: number[]; cpuUs: number } => {
    const ops = rs.map((r) => f(r).exUs.length * perPair);
    const secs = rs.map((r) => f(r).seconds);
    const cpu = rs.reduce((a, r) => a + f(r).daemonCpuSeconds, 0);
    const total = ops.reduce((a, b) => a + b, 0);
    return { perS: total / secs.reduce((a, b) => a + b, 0), rounds: ops.map((n, i) => n / secs[i]!), cpuUs: 1e6 * cpu / Math.max(1, total) };
  };
  out.push('');
  out.push('lock_lv round trips per second on one connection (ex and un each count as one), and lvmlockd CPU (utime+stime in the guest, 10 ms ticks) per round trip:');
  for (const [what, f, perPair] of [['local ex+un', (r: SideRound) => r.local, 2], ['refused ex', (r: SideRound) => r.refused, 1]] as Array<[string, (r: SideRound) => LoopResult, number]>) {
    const ro = rate(res.ours, f, perPair), rc = rate(res.c, f, perPair);
    const ratio = ro.perS / rc.perS;
    const v = Number.isFinite(ratio) ? (ratio >= 1.0 ? 'met' : 'MISSED') : 'n/a';
    if (what === 'local ex+un') verdicts.push(`local ex+un round trips/s ${Number.isFinite(ratio) ? ratio.toFixed(2) + 'x' : '-'} (>= 1.0x) ${v}`);
    const per = (r: { rounds: number[] }) => r.rounds.map((n) => Math.round(n)).join(' / ');
    const side = (r: { perS: number; rounds: number[]; cpuUs: number }): string => Number.isFinite(r.perS)
      ? `${Math.round(r.perS)}/s (rounds ${per(r)}), CPU ${fmtUs(r.cpuUs)}/op` : '-';
    out.push(`  ${pad(what, 12, true)} ours ${side(ro)}; C ${side(rc)}; ` +
      `ours/C ${Number.isFinite(ratio) ? ratio.toFixed(2) + 'x' : '-'}${what === 'local ex+un' ? ` (target >= 1.0x: ${v})` : ''}`);
  }
  const mix = (rs: SideRound[]): string => {
    const m = new Map<number, number>();
    for (const r of rs) for (const [k, n] of r.refused.exResults) m.set(k, (m.get(k) ?? 0) + n);
    return [...m].map(([k, n]) => `op_result ${k} x${n}`).join(', ') || '-';
  };
  const refusals = (rs: SideRound[]) => rs.reduce((a, r) => a + r.handA.refusals + r.handB.refusals, 0);
  out.push(`  refused answers: ours ${mix(res.ours)}; C ${mix(res.c)}`);
  out.push(`  hand-over ex refused before the grant (the other VM's un had returned): ours ${refusals(res.ours)}, C ${refusals(res.c)}`);
  const exes = [...new Set([...res.ours, ...res.c].map((r) => r.exe))];
  if (exes.length) out.push(`  daemons checked on the socket (vm1 /proc/<pid>/exe + cmdline): ${exes.join('; ')}`);
  out.push('');
  out.push('p50/p90: nearest rank over all rounds. lock_lv latencies are taken in vm1 (hand-over: in both VMs) by the load generator');
  out.push('(bench/dlm-vm-guest.ts, the repo\'s node in the guest) around one request/reply on the daemon socket; lvchange: the');
  out.push('guest agent\'s wall time around the lvm command (process start-up, activation and udev sync included, the same for both).');
  out.push('Daemons run with -f and without -D (no debug output). Refused: vm2 holds the LV ex through `lvchange -aey`.');
  for (const n of x.notes) out.push(`note: ${n}`);
  out.push('');
  out.push('targets: ' + (verdicts.length ? verdicts.join('; ') : 'none measured'));
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- the bench

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

export async function runDlmVmBench(opts: Partial<DlmVmBenchOptions> = {}): Promise<string> {
  const o = validateDlmVmOptions(opts);
  const missing = dlmVmPrerequisites();
  if (missing) {
    const text = `${DLM_VM_NOT_RUN}: ${missing}. No dlm figures were taken. ***\n`;
    process.stderr.write(`\n${text}\n`);
    return text;
  }
  const started = Date.now();
  const log = (s: string): void => { if (o.verbose) process.stderr.write(`[dlm-vm bench ${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`); };
  const load0 = os.loadavg();
  const results: Record<Side, SideRound[]> = { ours: [], c: [] };
  const notes: string[] = [];
  let failure: Error | null = null;
  let c: VmCluster | null = null;
  let bootS = NaN, stackS = NaN;
  let guestKernel = '?', cVersion = '?';
  const commit = gitCommit();
  try {
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 256 }], name: 'bench-dlm', keep: o.keep, log });
    bootS = (Date.now() - started) / 1000;
    const cl = c;
    if (o.keep) notes.push(`cluster dir kept: ${cl.dir}`);
    await Promise.all(cl.vms.map((vm) => setupLvm(vm)));
    const t1 = Date.now();
    await startDlmStack(cl);
    stackS = (Date.now() - t1) / 1000;
    guestKernel = (await cl.vm(1).exec(['uname', '-r'])).stdout.trim();
    const cv = await cl.vm(1).sh(`${C_LVMLOCKD_GUEST} --version 2>&1 | head -1`);
    cVersion = `C ${cv.stdout.trim() || 'lvmlockd (version unknown)'}`;
    log(`dlm stack up in ${stackS.toFixed(0)} s; ${cVersion}`);
    for (let round = 1; round <= o.rounds; round++) {
      const order: Side[] = round % 2 === 1 ? ['ours', 'c'] : ['c', 'ours'];
      for (const side of order) {
        results[side].push(await runSide(cl, side, round, o, log, notes));
      }
    }
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
  } finally {
    if (c) {
      try { await c.destroy(); } catch (e) { notes.push(`cleanup: ${(e as Error).message}`); }
    }
  }
  const text = formatDlmVmReport({
    results, o, accel: c?.accel ?? '?', accelReason: c?.accelReason ?? '', guestKernel, cVersion, commit,
    load0, load1: os.loadavg(), bootS, stackS, totalS: (Date.now() - started) / 1000, notes,
  });
  if (failure) {
    const where = c && o.keep ? ` (logs in ${c.dir})` : ' (--keep keeps the guest logs)';
    throw new DlmVmBenchFailure(`${text}\nFAILED${where}: ${failure.message}\n`);
  }
  return text;
}

// ---------------------------------------------------------------- CLI

if (require.main === module) {
  runVmBenchCli({
    name: 'dlm-vm', parse: parseDlmVmArgs, usageError: DlmBenchUsageError, usage: DLM_VM_USAGE,
    run: runDlmVmBench, notRun: DLM_VM_NOT_RUN, failure: DlmVmBenchFailure,
  });
}
