// IDM VG benchmark: `lvchange -aey`/`-an` end to end and raw `lock_lv ex`/`un`
// round trips on IDM VGs of 1, 3 and 5 emulated drives (our lvmlockd, our ILM,
// bin/idm-drive processes reached through their sockets), against our lvmlockd
// on a sanlock VG, on the same machine in the same run, driven by unmodified
// LVM2 commands in the namespace hosts of test/harness.
//
// Cluster: hosts 1 and 2 run our ILM (bin/ilmd) and our lvmlockd; hosts 3 and 4
// run our lvmlockd with its own lease engine (-o IO). Each IDM VG has its own
// loop disks, each disk backed for locking by one emulated drive (the ILMs'
// drive map), and one LV striped over all of its PVs, so that the LV lock, like
// the VG lock, goes to every drive of the VG. The sanlock VG has one disk.
//
//  (a) lvchange: host A `-aey`, `-an`, host B `-aey`, `-an`, R times per config;
//      the configs take turns (the first one moves on every repetition).
//  (b) lock_lv: host A, one client of bench/lockd-client.ts looping lock_lv ex / un
//      on the LV for S seconds, K rounds per config, the order reversed every round.
//      IDM requests carry the LV's PVs as lvm sends them (path[N-1] .. path[0], path_num).
//
// Every drive, ILM and lvmlockd process is watched: one that dies mid-run fails
// the section (FAILED, exit status 1 of `npm run bench`), even when the
// remaining drives are a majority and locks go on being granted.
// `--kill-drive N:I:S` kills drive I of the N-drive VG S seconds into the
// measurements, to check exactly that.
//
//   node dist/bench/idm.js [--drives 1,3,5] [--no-sanlock] [--lv-reps 10] [--raw-rounds 2]
//                          [--raw-seconds 2] [--io 1] [--kill-drive N:I:S] [--keep]

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cluster, type Host } from '../test/harness/cluster';
import { IdmRig } from '../test/helpers/idm-rig';
import { runClient } from './lockd';
import { cpuSeconds, type LockType } from './lockd-client';
import { IDM_DEFAULTS, IDM_USAGE, IdmBenchUsageError, parseIdmArgs, type IdmBenchOptions } from './idm-options';
import { ProcessWatch, ProcessDied, exitStatus } from './proc-watch';
import { driveOwners, emptyResult, formatIdmReport, parseLvDevices, type ConfigResult } from './idm-report';

export { IDM_DEFAULTS, type IdmBenchOptions } from './idm-options';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const DISK_MIB = 16;
const SOCKET = '/run/lvm/lvmlockd.socket';

interface Config {
  res: ConfigResult;
  lockType: LockType;
  vg: string;
  lv: string;
  a: Host;
  b: Host;
  /** the VG's PVs (vgcreate order), i.e. the LV's: what lvm sends as path[N] */
  pvs: string[];
  /** indexes into the rig's drives */
  driveIdx: number[];
  lvUuid: string;
  lvArgs: string;
  vgArgs: string;
}

export class IdmBenchFailure extends Error {
  constructor(readonly report: string) {
    super(report);
    this.name = 'IdmBenchFailure';
  }
}

class CommandFailed extends Error {}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function loadAvg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

export function idmPrerequisites(): string | null {
  if (process.getuid?.() !== 0) return 'not root (namespace hosts and loop devices need root)';
  if (!['/usr/sbin/lvm', '/sbin/lvm'].some((p) => fs.existsSync(p))) return 'lvm2 not installed';
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'lvmlockd.js'))) return 'dist/ is not built (npm run build)';
  return null;
}

async function lvmOk(h: Host, args: string[], what: string): Promise<{ ms: number; stdout: string }> {
  const t = nowMs();
  const r = await h.lvm(args, { timeoutMs: 120_000 });
  const ms = nowMs() - t;
  if (r.code !== 0) {
    throw new CommandFailed(`${h.name} (${what}): lvm ${args.join(' ')} exited ${r.code}${r.timedOut ? ' (timeout)' : ''}\n${r.stdout}${r.stderr}`);
  }
  return { ms, stdout: r.stdout };
}

/** lv_uuid and lock args of the LV, lock args of the VG, and the PVs under the LV. */
async function readLvFacts(cfg: Config): Promise<void> {
  const lv = await lvmOk(cfg.a, ['lvs', '--noheadings', '-o', 'lv_uuid,lock_args', `${cfg.vg}/${cfg.lv}`], 'lvs');
  const m = /^\s*(\S{38})\s+(\S+)\s*$/.exec(lv.stdout);
  if (!m) throw new CommandFailed(`${cfg.res.name}: cannot read lv_uuid/lock_args: ${JSON.stringify(lv.stdout)}`);
  cfg.lvUuid = m[1]!;
  cfg.lvArgs = m[2]!;
  cfg.vgArgs = (await lvmOk(cfg.a, ['vgs', '--noheadings', '-o', 'lock_args', cfg.vg], 'vgs')).stdout.trim();
  const devs = parseLvDevices((await lvmOk(cfg.a, ['lvs', '--noheadings', '-o', 'devices', `${cfg.vg}/${cfg.lv}`], 'lvs devices')).stdout);
  const want = [...cfg.pvs].sort().join(' ');
  if ([...devs].sort().join(' ') !== want) {
    throw new CommandFailed(`${cfg.res.name}: ${cfg.vg}/${cfg.lv} is on ${devs.join(' ')}, not on every PV of the VG (${want})`);
  }
}

/** CPU seconds so far of a config's lock processes: host A's lvmlockd and ILM, the VG's drives. */
function configCpu(cfg: Config, rig: IdmRig | null): ConfigResult['rawCpu'] {
  const of = (pid: number | undefined) => (pid === undefined ? 0 : cpuSeconds(pid));
  return {
    lvmlockd: of(cfg.a.daemon?.pid),
    ilm: cfg.lockType === 'idm' ? of(cfg.a.ilm?.pid) : 0,
    drives: cfg.driveIdx.reduce((t, i) => t + of(rig?.drives[i]?.proc?.pid), 0),
  };
}

export async function runIdmBench(opts: Partial<IdmBenchOptions> = {}): Promise<string> {
  const o: IdmBenchOptions = { ...IDM_DEFAULTS, ...opts };
  const missing = idmPrerequisites();
  if (missing) return `IDM bench: SKIPPED (not run), ${missing}.\n`;
  if (!o.drives.length || o.drives.some((n) => !Number.isInteger(n) || n < 1) || new Set(o.drives).size !== o.drives.length) {
    throw new Error(`drive counts must be distinct positive integers, not ${o.drives.join(',')}`);
  }
  if (o.killDrive && !o.drives.includes(o.killDrive.drives)) throw new Error(`--kill-drive: no VG of ${o.killDrive.drives} drives in this run`);
  const started = Date.now();
  const log = (s: string) => { if (o.verbose) process.stderr.write(`[idm bench ${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`); };
  const notes: string[] = [];
  const load0 = loadAvg();
  const commit = gitCommit();
  const watch = new ProcessWatch();
  const configs: Config[] = [];
  let failure: Error | null = null;
  let cluster: Cluster | null = null;
  let rig: IdmRig | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const idmDisks = o.drives.reduce((a, b) => a + b, 0);
  try {
    const disks = [...Array.from({ length: idmDisks }, () => ({ sizeMiB: DISK_MIB })), ...(o.sanlock ? [{ sizeMiB: 512 }] : [])];
    cluster = await Cluster.create({ hosts: o.sanlock ? 4 : 2, disks, name: 'bench-idm', keep: o.keep, commandTimeoutMs: 120_000 });
    const cl = cluster;
    rig = new IdmRig();
    const mapLines: string[] = [];
    for (const [i, { vg, j }] of driveOwners(o.drives).entries()) {
      const sock = await rig.startDrive(i);
      mapLines.push(`${cl.disks[i]!.path} ${sock}`);
      const proc = rig.drives[i]!.proc!;
      watch.watch(`emulated drive ${j} of ${vg} (${cl.disks[i]!.path}, pid ${proc.pid})`, proc.exited, () => exitStatus(proc.proc));
    }
    const driveMap = path.join(rig.dir, 'drives.map');
    fs.writeFileSync(driveMap, mapLines.join('\n') + '\n');
    const [h1, h2] = [cl.host(1), cl.host(2)];
    for (const h of [h1, h2]) {
      const ilm = await h.startIlm({ env: { ILM_DRIVE_MAP: driveMap } });
      watch.watch(`${h.name} ILM (pid ${ilm.pid})`, ilm.exited, () => exitStatus(ilm.child));
      const d = await h.startDaemon({ kind: 'ts', debug: false, env: { LVMLOCKD_IDM_GL_DRIVES: cl.disks[0]!.path } });
      watch.watch(`${h.name} lvmlockd (pid ${d.pid})`, d.exited, () => exitStatus(d.child));
    }
    if (o.sanlock) {
      for (const h of [cl.host(3), cl.host(4)]) {
        const d = await h.startDaemon({ kind: 'ts', debug: false, args: ['-o', String(o.io)] });
        watch.watch(`${h.name} lvmlockd (pid ${d.pid})`, d.exited, () => exitStatus(d.child));
      }
    }
    log(`cluster up (${cl.dir}): ${idmDisks} emulated drives, ILM + lvmlockd on hosts 1-2${o.sanlock ? ', sanlock VG hosts 3-4' : ''}`);

    // -- set-up: one IDM VG per drive count, an LV striped over all its PVs
    let next = 0;
    for (const n of o.drives) {
      const driveIdx = Array.from({ length: n }, (_, j) => next + j);
      next += n;
      const cfg: Config = {
        res: emptyResult(`idm x${n}`, n), lockType: 'idm', vg: `vgi${n}`, lv: 'lv1', a: h1, b: h2,
        pvs: driveIdx.map((i) => cl.disks[i]!.path), driveIdx, lvUuid: '', lvArgs: '', vgArgs: '',
      };
      await lvmOk(h1, ['vgcreate', '--shared', '--lock-type', 'idm', cfg.vg, ...cfg.pvs], 'vgcreate');
      const stripes = n > 1 ? ['-i', String(n), '-I', '64k'] : [];
      await lvmOk(h1, ['lvcreate', '-an', '-n', cfg.lv, ...stripes, '-L', `${4 * n}M`, cfg.vg], 'lvcreate');
      await lvmOk(h2, ['vgchange', '--lock-start', cfg.vg], 'lock-start');
      await readLvFacts(cfg);
      configs.push(cfg);
      log(`${cfg.res.name}: ${cfg.vg}/${cfg.lv} on ${cfg.pvs.join(' ')}, started on both hosts`);
    }
    if (o.sanlock) {
      const [h3, h4] = [cl.host(3), cl.host(4)];
      const disk = cl.disks.length - 1;
      const cfg: Config = {
        res: emptyResult('sanlock', 0), lockType: 'sanlock', vg: 'vgs1', lv: 'lv1', a: h3, b: h4,
        pvs: [cl.disks[disk]!.path], driveIdx: [], lvUuid: '', lvArgs: '', vgArgs: '',
      };
      await cl.emulateLvmlock(cfg.vg, { disk });
      await lvmOk(h3, ['vgcreate', '--shared', '--lock-type', 'sanlock', cfg.vg, cfg.pvs[0]!], 'vgcreate');
      await lvmOk(h3, ['lvcreate', '-an', '-n', cfg.lv, '-L', '8M', cfg.vg], 'lvcreate');
      await lvmOk(h4, ['vgchange', '--lock-start', cfg.vg], 'lock-start');
      await readLvFacts(cfg);
      configs.push(cfg);
      log(`sanlock: ${cfg.vg}/${cfg.lv}, started on both hosts`);
    }
    watch.check();
    // one untimed hand-over per config (first use of each lock, page cache, lvm's caches)
    for (const cfg of configs) {
      for (const h of [cfg.a, cfg.b]) {
        await lvmOk(h, ['lvchange', '-aey', `${cfg.vg}/${cfg.lv}`], 'warm-up -aey');
        await lvmOk(h, ['lvchange', '-an', `${cfg.vg}/${cfg.lv}`], 'warm-up -an');
      }
    }
    watch.check();

    if (o.killDrive) {
      const k = o.killDrive;
      const cfg = configs.find((c) => c.res.drives === k.drives)!;
      const idx = cfg.driveIdx[k.index]!;
      notes.push(`FAULT INJECTED (--kill-drive ${k.drives}:${k.index}:${k.afterSeconds}): SIGKILL to drive ${k.index} of ${cfg.vg} (${cl.disks[idx]!.path}) ${k.afterSeconds} s into the measurements`);
      killTimer = setTimeout(() => {
        log(`--kill-drive: SIGKILL to drive ${k.index} of ${cfg.vg} (${cl.disks[idx]!.path})`);
        void rig!.drives[idx]!.proc?.kill('SIGKILL');
      }, k.afterSeconds * 1000);
    }

    // -- (a) lvchange hand-overs
    for (let r = 0; r < o.lvReps; r++) {
      const order = configs.map((_, i) => configs[(i + r) % configs.length]!);
      for (const cfg of order) {
        const vglv = `${cfg.vg}/${cfg.lv}`;
        for (const h of [cfg.a, cfg.b]) {
          cfg.res.lvAcquireMs.push((await lvmOk(h, ['lvchange', '-aey', vglv], 'lvchange -aey')).ms);
          watch.check();
          cfg.res.lvReleaseMs.push((await lvmOk(h, ['lvchange', '-an', vglv], 'lvchange -an')).ms);
          watch.check();
        }
      }
    }
    log(`lvchange: ${configs.map((c) => `${c.res.name} ${c.res.lvAcquireMs.length}`).join(', ')} acquires`);

    // -- (b) lock_lv loops on host A
    for (let round = 0; round < o.rawRounds; round++) {
      const order = round % 2 === 0 ? configs : [...configs].reverse();
      for (const cfg of order) {
        const cpu0 = configCpu(cfg, rig);
        const r = await watch.race(runClient({
          label: `${cfg.res.name} lock_lv`, sockPath: cfg.a.hostPath(SOCKET), daemonPid: cfg.a.daemon!.pid,
          clients: 1, contended: false, tag: 0, warmupSeconds: 0, seconds: o.rawSeconds, maxOps: 1_000_000,
          vg: cfg.vg, vgLockArgs: cfg.vgArgs, keepSamples: true,
          target: { lv: cfg.lv, lvUuid: cfg.lvUuid, lockType: cfg.lockType, lvArgs: cfg.lvArgs, pvs: cfg.lockType === 'idm' ? cfg.pvs : [] },
        }));
        if (!r.samples || r.samples.length !== r.ops) throw new Error(`${cfg.res.name}: the load generator returned ${r.samples?.length ?? 'no'} samples for ${r.ops} round trips`);
        for (const [us, ex] of r.samples) (ex ? cfg.res.rawExUs : cfg.res.rawUnUs).push(us);
        cfg.res.rawSeconds += r.seconds;
        const cpu1 = configCpu(cfg, rig);
        cfg.res.rawCpu.lvmlockd += cpu1.lvmlockd - cpu0.lvmlockd;
        cfg.res.rawCpu.ilm += cpu1.ilm - cpu0.ilm;
        cfg.res.rawCpu.drives += cpu1.drives - cpu0.drives;
        watch.check();
      }
    }
    log(`lock_lv: ${configs.map((c) => `${c.res.name} ${c.res.rawExUs.length + c.res.rawUnUs.length}`).join(', ')} round trips`);
    watch.check();
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
  } finally {
    if (killTimer) clearTimeout(killTimer);
    // a death seen before the clean-up explains whatever failed after it
    if (watch.deaths.length && !(failure instanceof ProcessDied)) {
      failure = new ProcessDied(watch.deaths, failure?.message);
    }
    watch.disarm();
    if (cluster) {
      try { await cluster.destroy(); } catch (e) { notes.push(`cleanup: ${(e as Error).message}`); }
    }
    if (rig) {
      try { await rig.cleanup(); } catch (e) { notes.push(`cleanup of the drives: ${(e as Error).message}`); }
    }
  }
  const text = formatIdmReport(configs.map((c) => c.res), {
    date: new Date().toISOString(), commit, load0, load1: loadAvg(), seconds: (Date.now() - started) / 1000,
    cpus: os.cpus().length, node: process.version, lvReps: o.lvReps, rawRounds: o.rawRounds, rawSeconds: o.rawSeconds,
    io: o.io, notes,
  });
  if (failure) {
    const what = failure instanceof ProcessDied ? `a process the bench depends on died: ${failure.message}` : failure.message;
    throw new IdmBenchFailure(`${text}\nFAILED: ${what}\n`);
  }
  return text;
}

// ---------------------------------------------------------------- CLI

if (require.main === module) {
  let o: IdmBenchOptions;
  try {
    o = parseIdmArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof IdmBenchUsageError)) throw e;
    process.stderr.write(`idm bench: ${e.message}\n${IDM_USAGE}\n`);
    process.exit(2);
  }
  runIdmBench(o).then((t) => { process.stdout.write(t); }, (e: unknown) => {
    if (e instanceof IdmBenchFailure) process.stdout.write(e.report);
    else process.stderr.write(`IDM bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
