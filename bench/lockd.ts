// lock_lv round-trip benchmark: our lvmlockd (-T) against the C lvmlockd (-T),
// both driven over the libdaemon stream protocol by the same load generator.
//
// Per daemon: start it in test mode with socket, pid file and adopt file in a
// private temp dir; one client sends start_vg (dlm, "vgb") and start_wait; then
// for every case N clients (one connection each, one outstanding request per
// connection) loop lock_lv ex / lock_lv un. Uncontended cases give every client
// its own LV uuid and require op_result 0 on every reply; the contended case has
// 8 clients hammering one LV uuid and reports the op_result mix instead.
//
// One "op" is one lock_lv request/reply round trip (an ex or an un); latency is
// measured per round trip on the client side with hrtime.
//
// Run it through `npm run bench` (bench/run.ts), or directly:
//   node dist/bench/lockd.js [--seconds S] [--rounds R] [--max-ops N] [--only ours|c]
//   node dist/bench/lockd.js --profile [--clients 64] [--seconds S] [--profile-out FILE]
// --profile runs only our daemon under `node --cpu-prof` for the N-client
// uncontended case and prints the top self-time functions. --core-only,
// --instructions and --syscalls: see their functions below; `--help` lists all
// flags (bench/lockd-options.ts).
// LOCKD_BENCH_NODE_FLAGS adds node flags to our daemon (A/B tests of V8 options);
// LVMLOCKD_C_BIN names the C daemon binary when it is not on PATH or in sbin.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FrameDecoder, encodeFrame } from '../src/protocol/framing';
import { parseConfigTree, ConfigMap, formatRequest } from '../src/protocol/config-tree';
import { type ClientJob, type ClientResult } from './lockd-client';
import { LOCKD_USAGE, LockdBenchUsage, parseLockdArgs, type LockdCommand } from './lockd-options';
import { SyslogSink } from './syslog-sink';
import { parseSyscallSummary } from './syscall-summary';
import { splitInstructions } from './callgrind-self';

export { lockLvFrame, type LockLvTarget } from './lockd-client';

// ---------------------------------------------------------------- options

export interface LockdBenchOptions {
  /** measured seconds per case (after warm-up) */
  seconds: number;
  /** warm-up seconds per case, not measured */
  warmupSeconds: number;
  /** upper bound on measured round trips per case */
  maxOps: number;
  /** rounds per case; the daemons alternate within each round and the median round is reported */
  rounds: number;
  /** which daemons to run */
  only: 'both' | 'ours' | 'c';
  /** progress lines on stderr */
  verbose: boolean;
}

export const DEFAULT_OPTIONS: LockdBenchOptions = {
  seconds: 3,
  warmupSeconds: 0.5,
  maxOps: 1_000_000,
  rounds: 3,
  only: 'both',
  verbose: true,
};

interface CaseDef {
  name: string;
  clients: number;
  contended: boolean;
}

const CASES: CaseDef[] = [
  { name: 'uncontended x1', clients: 1, contended: false },
  { name: 'uncontended x8', clients: 8, contended: false },
  { name: 'uncontended x64', clients: 64, contended: false },
  { name: 'contended x8 (1 LV)', clients: 8, contended: true },
];

const VG = 'vgb';
const VG_UUID = 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK';
const VG_LOCK_ARGS = '1.0.0:test';
const START_TIMEOUT_MS = 15_000;

const REPO_ROOT = path.resolve(__dirname, '..', '..');

// ---------------------------------------------------------------- protocol client

class ProtoClient {
  private readonly decoder = new FrameDecoder();
  private waiter: { resolve: (t: string) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  private constructor(private readonly sock: net.Socket) {
    sock.setNoDelay?.(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('daemon closed the connection')));
  }

  static connect(sockPath: string): Promise<ProtoClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: sockPath });
      s.once('connect', () => { s.off('error', reject); resolve(new ProtoClient(s)); });
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    for (const ev of this.decoder.push(d)) {
      if (ev.kind === 'overflow') { this.fail(new Error('reply too large')); return; }
      const w = this.waiter;
      this.waiter = null;
      if (w) w.resolve(ev.text);
      else this.fail(new Error('unsolicited reply from daemon'));
    }
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  /** One request, one reply. */
  request(frame: Buffer): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new Error('request already outstanding'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.sock.write(frame);
    });
  }

  destroy(): void {
    this.failure ??= new Error('closed');
    this.sock.destroy();
  }
}

function parseReply(reply: string, key: string): ConfigMap {
  const parsed = parseConfigTree(reply);
  if (!parsed.ok) throw new Error(`unparsable reply to ${key}: ${parsed.error}: ${JSON.stringify(reply)}`);
  return new ConfigMap(parsed.entries);
}

/** exactly what lvm commands send (trace 04): `request = "hello"` */
const HELLO = encodeFrame('request = "hello"\n');

async function hello(c: ProtoClient): Promise<void> {
  const m = parseReply(await c.request(HELLO), 'hello');
  if (m.str('response') !== 'OK') throw new Error('hello refused');
}

// ---------------------------------------------------------------- daemons

interface DaemonSpec {
  label: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  sockPath: string;
  pidPath: string;
}

interface RunningDaemon {
  spec: DaemonSpec;
  child: ChildProcess;
  pid: number;
  stderr: () => string;
  exited: Promise<void>;
  /** the receiver behind the daemon's /dev/log (null: no namespace, see namespaceNote) */
  sink: SyslogSink | null;
}

/**
 * Runs as `unshare -m --propagation private sh -c NS_SCRIPT sh <dir> <sink> <daemon argv>`:
 * in the daemon's own mount namespace /dev becomes a small tmpfs of symlinks to
 * the real device nodes (reached through an rbind of /dev below <dir>) plus
 * `log` -> <sink>. Nothing propagates back (private), so the machine's /dev is
 * untouched. unshare and sh exec, so the child's pid is the daemon's pid.
 */
const NS_SCRIPT = [
  'set -e',
  'T=$1; L=$2; shift 2',
  'mkdir -p "$T/olddev"',
  'mount --rbind /dev "$T/olddev"',
  'mount -t tmpfs -o mode=0755,size=64k lockd-bench-dev /dev',
  'for f in "$T"/olddev/* "$T"/olddev/.[!.]*; do',
  '  [ -e "$f" ] || [ -L "$f" ] || continue',
  '  n=${f##*/}; [ "$n" = log ] || ln -s "$f" "/dev/$n"',
  'done',
  'ln -s "$L" /dev/log',
  'exec "$@"',
].join('\n');

/** Why the daemons run without a syslog receiver, or null when they have one. */
function namespaceNote(): string | null {
  if (process.getuid?.() !== 0) return 'not root: the daemons run WITHOUT a mount namespace and syslog receiver (glibc then writes log lines to /dev/console)';
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    try { fs.accessSync(path.join(d, 'unshare'), fs.constants.X_OK); return null; } catch { /* next */ }
  }
  return 'unshare(1) not found: the daemons run WITHOUT a mount namespace and syslog receiver';
}

const liveChildren = new Set<ChildProcess>();
const liveTmpDirs = new Set<string>();

function cleanupSync(): void {
  for (const c of liveChildren) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  liveChildren.clear();
  for (const d of liveTmpDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
  liveTmpDirs.clear();
}
process.on('exit', cleanupSync);

let signalHandlersInstalled = false;
function installSignalHandlers(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => { cleanupSync(); process.exit(130); });
  }
}

function makeTmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockd-bench-'));
  liveTmpDirs.add(d);
  return d;
}

function removeTmpDir(d: string): void {
  try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  liveTmpDirs.delete(d);
}

export function findCDaemon(): string | null {
  const env = process.env.LVMLOCKD_C_BIN;
  if (env) return fs.existsSync(env) ? env : null;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = path.join(d, 'lvmlockd');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      // skip our own bin/lvmlockd if it happens to be on PATH
      if (path.resolve(p) === path.join(REPO_ROOT, 'bin', 'lvmlockd')) continue;
      return p;
    } catch { /* next */ }
  }
  return null;
}

/** Extra node flags for our daemon, e.g. LOCKD_BENCH_NODE_FLAGS="--max-semi-space-size=16". */
function extraNodeFlags(): string[] {
  return (process.env.LOCKD_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
}

function oursSpec(dir: string, nodeFlags: string[] = []): DaemonSpec {
  nodeFlags = [...extraNodeFlags(), ...nodeFlags];
  const sockPath = path.join(dir, 'ours.sock');
  const pidPath = path.join(dir, 'ours.pid');
  return {
    label: 'ours',
    command: process.execPath,
    args: [...nodeFlags, path.join(REPO_ROOT, 'bin', 'lvmlockd'), '-T', '-f', '-s', sockPath, '-p', pidPath,
      '--adopt-file', path.join(dir, 'ours.adopt')],
    env: daemonEnv(),
    sockPath,
    pidPath,
  };
}

/**
 * Paths go on the command line only. The C lvmlockd 2.03.16 aborts at start-up
 * ("munmap_chunk(): invalid pointer") when LVM_LVMLOCKD_SOCKET/PIDFILE are set
 * *and* -s/-p are given (it frees the getenv() string when the option replaces
 * it), so the variables are removed from both daemons' environment.
 */
function daemonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LVM_LVMLOCKD_SOCKET;
  delete env.LVM_LVMLOCKD_PIDFILE;
  return env;
}

function cSpec(dir: string, bin: string): DaemonSpec {
  const sockPath = path.join(dir, 'c.sock');
  const pidPath = path.join(dir, 'c.pid');
  return {
    label: 'C',
    command: bin,
    args: ['-T', '-f', '-s', sockPath, '-p', pidPath, '--adopt-file', path.join(dir, 'c.adopt')],
    env: daemonEnv(),
    sockPath,
    pidPath,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startDaemon(spec: DaemonSpec, startTimeoutMs = START_TIMEOUT_MS): Promise<RunningDaemon> {
  let sink: SyslogSink | null = null;
  let command = spec.command;
  let args = spec.args;
  if (namespaceNote() === null) {
    const dir = path.dirname(spec.sockPath);
    sink = SyslogSink.bind(path.join(dir, `${spec.label}-syslog.sock`));
    command = 'unshare';
    args = ['-m', '--propagation', 'private', 'sh', '-c', NS_SCRIPT, 'sh', path.join(dir, `${spec.label}-ns`), sink.path, spec.command, ...spec.args];
  }
  const child = spawn(command, args, { env: spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  let errText = '';
  const keep = (d: Buffer): void => { errText = (errText + d.toString()).slice(-8192); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => { liveChildren.delete(child); resolve(); }));
  let spawnError: Error | null = null;
  child.once('error', (e) => { spawnError = e; });
  const deadline = Date.now() + startTimeoutMs;
  while (true) {
    if (spawnError) { await sink?.close(); throw new Error(`${spec.label}: cannot start ${command}: ${(spawnError as Error).message}`); }
    if (child.exitCode !== null || child.signalCode !== null) {
      await sink?.close();
      throw new Error(`${spec.label} daemon exited during start-up (${child.exitCode ?? child.signalCode}): ${errText.trim()}`);
    }
    if (fs.existsSync(spec.sockPath)) {
      try {
        const c = await ProtoClient.connect(spec.sockPath);
        c.destroy();
        break;
      } catch { /* not listening yet */ }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await sink?.close();
      throw new Error(`${spec.label} daemon did not open ${path.basename(spec.sockPath)} within ${startTimeoutMs} ms: ${errText.trim()}`);
    }
    await sleep(20);
  }
  return { spec, child, pid: child.pid!, stderr: () => errText, exited, sink };
}

/** SIGTERM, then SIGKILL: both daemons ignore SIGTERM while lockspaces exist. */
async function stopDaemon(d: RunningDaemon, graceMs = 300): Promise<void> {
  await killDaemon(d, graceMs);
  await d.sink?.close();
}

async function killDaemon(d: RunningDaemon, graceMs: number): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  try { process.kill(d.pid, 'SIGTERM'); } catch { return; }
  const done = await Promise.race([d.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    try { process.kill(d.pid, 'SIGKILL'); } catch { /* gone */ }
    await Promise.race([d.exited, sleep(5000)]);
  }
}

/** VmRSS of a process in MiB. */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function setupVg(sockPath: string): Promise<void> {
  const c = await ProtoClient.connect(sockPath);
  try {
    await hello(c);
    const start = parseReply(await c.request(encodeFrame(formatRequest([
      ['request', 'start_vg'], ['pid', process.pid], ['vg_name', VG], ['vg_lock_type', 'dlm'],
      ['vg_lock_args', VG_LOCK_ARGS], ['vg_uuid', VG_UUID], ['version', 1], ['host_id', 0], ['opts', 'none'],
    ]))), 'start_vg');
    const sr = Number(start.int('op_result') ?? NaN);
    if (sr !== 0) throw new Error(`start_vg failed: op_result ${sr}`);
    const wait = parseReply(await c.request(encodeFrame(formatRequest([['request', 'start_wait'], ['pid', process.pid]]))), 'start_wait');
    const wr = Number(wait.int('op_result') ?? NaN);
    if (wr !== 0) throw new Error(`start_wait failed: op_result ${wr}`);
  } finally {
    c.destroy();
  }
}

// ---------------------------------------------------------------- one case

export interface CaseResult {
  caseName: string;
  daemon: string;
  clients: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50us: number;
  p99us: number;
  maxUs: number;
  /** successful ex acquisitions per second (contended case) */
  acquiredPerSec: number;
  /** op_result -> count over measured round trips */
  results: Map<number, number>;
  daemonCpu: number;
  benchCpu: number;
  /** daemon resident set size at the end of the case, MiB */
  rssMiB: number;
}


const CLIENT_SCRIPT = path.join(__dirname, 'lockd-client.js');

/** Runs the load generator (bench/lockd-client.ts) as a process of its own and returns what it measured. */
export function runClient(job: ClientJob): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT_SCRIPT, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    child.once('error', (e) => { liveChildren.delete(child); reject(new Error(`load generator: ${e.message}`)); });
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      if (code === 0) {
        try { resolve(JSON.parse(out) as ClientResult); } catch { reject(new Error(`load generator printed no result: ${out.slice(0, 500)}`)); }
      } else {
        reject(new Error(`load generator failed (${code ?? signal}): ${err.trim()}`));
      }
    });
  });
}

async function runCase(d: RunningDaemon, def: CaseDef, tag: number, o: LockdBenchOptions): Promise<CaseResult> {
  const r = await runClient({
    label: d.spec.label, sockPath: d.spec.sockPath, daemonPid: d.pid, clients: def.clients, contended: def.contended,
    tag, warmupSeconds: o.warmupSeconds, seconds: o.seconds, maxOps: o.maxOps, vg: VG, vgLockArgs: VG_LOCK_ARGS,
  });
  const secs = r.seconds;
  return {
    caseName: def.name,
    daemon: d.spec.label,
    clients: def.clients,
    ops: r.ops,
    seconds: secs,
    opsPerSec: r.ops / secs,
    p50us: r.p50us,
    p99us: r.p99us,
    maxUs: r.maxUs,
    acquiredPerSec: r.acquired / secs,
    results: new Map(r.results),
    daemonCpu: r.daemonCpuSeconds / secs,
    benchCpu: r.clientCpuSeconds / secs,
    rssMiB: rssMiB(d.pid),
  };
}

// ---------------------------------------------------------------- whole bench

/** A load-generator job of exactly `maxOps` uncontended round trips (the counting modes: --instructions, --syscalls). */
function countedJob(spec: DaemonSpec, daemonPid: number, clients: number, maxOps: number, tag: number): ClientJob {
  return {
    label: spec.label, sockPath: spec.sockPath, daemonPid, clients, contended: false, tag,
    warmupSeconds: 0, seconds: 3600, maxOps, vg: VG, vgLockArgs: VG_LOCK_ARGS,
  };
}

async function startAndSetUp(spec: DaemonSpec, startTimeoutMs = START_TIMEOUT_MS): Promise<RunningDaemon> {
  const d = await startDaemon(spec, startTimeoutMs);
  try {
    await setupVg(spec.sockPath);
    return d;
  } catch (e) {
    await stopDaemon(d);
    throw withDaemonOutput(e, d);
  }
}

function withDaemonOutput(e: unknown, d: RunningDaemon): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  const c = d.child;
  const state = c.exitCode !== null ? `exited with status ${c.exitCode}`
    : c.signalCode !== null ? `killed by ${c.signalCode}` : 'still running';
  if (!err.message.includes('daemon state:')) err.message += ` (${d.spec.label} daemon state: ${state})`;
  const tail = d.stderr().trim();
  if (tail && !err.message.includes('daemon output')) err.message += `\n${d.spec.label} daemon output (tail):\n${tail.slice(-2000)}`;
  return err;
}

/** The round with the median throughput stands for the case; all rounds' ops/s are kept. */
interface Aggregate extends CaseResult {
  roundOps: number[];
}

function median(rs: CaseResult[]): Aggregate {
  const sorted = [...rs].sort((a, b) => a.opsPerSec - b.opsPerSec);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...mid, roundOps: rs.map((r) => r.opsPerSec) };
}

function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return '-';
  if (us >= 10_000) return `${(us / 1000).toFixed(1)} ms`;
  if (us >= 1000) return `${(us / 1000).toFixed(2)} ms`;
  return `${us.toFixed(0)} us`;
}

function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '-';
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function resultMix(r: CaseResult): string {
  return [...r.results.entries()].sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}:${(100 * v / Math.max(1, r.ops)).toFixed(1)}%`).join(' ');
}

export function formatReport(results: Aggregate[], o: LockdBenchOptions, notes: string[]): string {
  const lines: string[] = [];
  lines.push('lvmlockd lock_lv benchmark (test mode -T, dlm VG, one outstanding request per connection)');
  lines.push(`op = one lock_lv round trip (ex or un); ${o.seconds} s measured per case and round after ${o.warmupSeconds} s warm-up, max ${o.maxOps} ops; ` +
    `${os.cpus().length} CPUs, node ${process.version}, ${new Date().toISOString()}`);
  lines.push('');
  const hdr = [pad('case', 22), pad('daemon', 7), pad('ops/s', 9, true), pad('p50', 10, true), pad('p99', 10, true),
    pad('max', 10, true), pad('daemon cpu', 11, true), pad('cpu/op', 8, true), pad('bench cpu', 10, true),
    pad('rss', 8, true), '  ops/s per round'].join(' ');
  lines.push(hdr);
  lines.push('-'.repeat(hdr.length));
  const byCase = new Map<string, Aggregate[]>();
  for (const r of results) {
    const l = byCase.get(r.caseName) ?? [];
    l.push(r);
    byCase.set(r.caseName, l);
  }
  for (const [name, rs] of byCase) {
    let first = true;
    for (const r of rs) {
      lines.push([pad(first ? name : '', 22), pad(r.daemon, 7), pad(Math.round(r.opsPerSec).toString(), 9, true),
        pad(fmtUs(r.p50us), 10, true), pad(fmtUs(r.p99us), 10, true), pad(fmtUs(r.maxUs), 10, true),
        pad(`${(100 * r.daemonCpu).toFixed(0)}%`, 11, true), pad(fmtUs(1e6 * r.daemonCpu / r.opsPerSec), 8, true),
        pad(`${(100 * r.benchCpu).toFixed(0)}%`, 10, true), pad(`${r.rssMiB.toFixed(0)}M`, 8, true),
        '  ' + r.roundOps.map((x) => Math.round(x)).join(' / ')].join(' '));
      first = false;
    }
    const ours = rs.find((r) => r.daemon === 'ours');
    const c = rs.find((r) => r.daemon === 'C');
    if (ours && c) {
      const tOk = ours.opsPerSec >= c.opsPerSec;
      const lOk = ours.p50us <= c.p50us;
      lines.push([pad('', 22), pad('ours/C', 7), pad(fmtRatio(ours.opsPerSec / c.opsPerSec), 9, true),
        pad(fmtRatio(ours.p50us / c.p50us), 10, true), pad(fmtRatio(ours.p99us / c.p99us), 10, true), pad('', 10), pad('', 11),
        pad(fmtRatio((ours.daemonCpu / ours.opsPerSec) / (c.daemonCpu / c.opsPerSec)), 8, true),
        `  target ops/s >= 1.0x: ${tOk ? 'met' : 'MISSED'}, p50 <= 1.0x: ${lOk ? 'met' : 'MISSED'}`].join(' '));
    }
  }
  const contended = results.filter((r) => CASES.some((c) => c.contended && c.name === r.caseName));
  if (contended.length) {
    lines.push('');
    lines.push('contended case, op_result mix over measured round trips and successful ex acquisitions:');
    for (const r of contended) {
      lines.push(`  ${pad(r.daemon, 5)} ${resultMix(r)}  acquired ex ${Math.round(r.acquiredPerSec)}/s`);
    }
  }
  if (notes.length) {
    lines.push('');
    for (const n of notes) lines.push(n);
  }
  return lines.join('\n') + '\n';
}

export async function runLockdBench(opts: Partial<LockdBenchOptions> = {}): Promise<string> {
  const o: LockdBenchOptions = { ...DEFAULT_OPTIONS, ...opts };
  installSignalHandlers();
  const notes: string[] = [];
  const daemons: RunningDaemon[] = [];
  const dir = makeTmpDir();
  const load0 = os.loadavg();
  const perCase = new Map<string, CaseResult[]>();
  const failures: string[] = [];
  const syslogLines: string[] = [];
  try {
    if (o.only !== 'c') {
      if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'lvmlockd.js'))) {
        throw new Error('dist/src/cli/lvmlockd.js missing: run `npm run build` first');
      }
      daemons.push(await startAndSetUp(oursSpec(dir)));
    }
    if (o.only !== 'ours') {
      const bin = findCDaemon();
      if (!bin) notes.push('C lvmlockd not found (install lvm2-lockd or set LVMLOCKD_C_BIN): C rows skipped.');
      else daemons.push(await startAndSetUp(cSpec(dir, bin)));
    }
    for (let ci = 0; ci < CASES.length; ci++) {
      const def = CASES[ci]!;
      for (let round = 0; round < o.rounds; round++) {
        // alternate which daemon goes first so drift and background load hit both alike
        const order = round % 2 === 0 ? daemons : [...daemons].reverse();
        for (const d of order) {
          if (!alive(d)) continue;
          if (o.verbose) process.stderr.write(`  ${def.name} round ${round + 1}/${o.rounds} ${d.spec.label}: `);
          let r: CaseResult;
          try {
            r = await runCase(d, def, ci * o.rounds + round, o);
          } catch (e) {
            // Recorded and reported loudly (the bench then fails); the other rounds still run.
            const msg = withDaemonOutput(e, d).message;
            failures.push(`${def.name}, round ${round + 1}, ${d.spec.label}: ${msg}`);
            if (o.verbose) process.stderr.write(`FAILED: ${msg}\n`);
            await sleep(100);
            continue;
          }
          if (o.verbose) process.stderr.write(`${Math.round(r.opsPerSec)} ops/s, p50 ${fmtUs(r.p50us)}, p99 ${fmtUs(r.p99us)}\n`);
          const key = `${def.name}\0${d.spec.label}`;
          perCase.set(key, [...(perCase.get(key) ?? []), r]);
          await sleep(100); // let the closed connections' cleanup settle
        }
      }
    }
  } finally {
    syslogLines.push(...daemons.map((d) => d.sink
      ? `${d.spec.label} ${d.sink.lines} line${d.sink.lines === 1 ? '' : 's'}${d.sink.recent.length ? `, last: ${JSON.stringify(d.sink.recent[d.sink.recent.length - 1]!.slice(0, 100))}` : ''}`
      : `${d.spec.label} none`));
    await Promise.all(daemons.map((d) => stopDaemon(d)));
    removeTmpDir(dir);
  }
  const load1 = os.loadavg();
  const results = [...perCase.values()].map(median);
  notes.push(`Median of ${o.rounds} rounds per case (ops/s of every round in the last column); the two daemons run`);
  notes.push('side by side but take turns, alternating which goes first. The load generator (bench/lockd-client.ts) is');
  notes.push('a Node process of its own sharing the CPUs with the daemon; "bench cpu" is its CPU use.');
  const nsNote = namespaceNote();
  notes.push(nsNote ?? 'Each daemon runs in its own mount namespace whose /dev/log is a datagram receiver of the bench.');
  notes.push(`syslog lines received: ${syslogLines.join('; ')}.`);
  notes.push('"cpu/op" = daemon CPU time (all threads, /proc) per round trip: less sensitive to background load than');
  notes.push('ops/s. "rss" = daemon VmRSS at the end of the reported round (the runs accumulate in one daemon).');
  notes.push(`Load average before/after: ${load0[0]!.toFixed(2)} / ${load1[0]!.toFixed(2)} (other work on the machine skews figures).`);
  let report = formatReport(results, o, notes);
  if (failures.length) {
    report += `\nFAILED (${failures.length} case round${failures.length > 1 ? 's' : ''}; figures above exclude them):\n` +
      failures.map((f) => `  - ${f}`).join('\n') + '\n';
    throw new LockdBenchFailure(report);
  }
  return report;
}

/** Thrown when any case round failed; `report` holds the whole report including the failures. */
export class LockdBenchFailure extends Error {
  constructor(readonly report: string) {
    super(report);
    this.name = 'LockdBenchFailure';
  }
}

/** Message (which this file extends with context after construction) plus the stack frames. */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  return [e.message, ...frames].join('\n');
}

function alive(d: RunningDaemon): boolean {
  return d.child.exitCode === null && d.child.signalCode === null;
}

// ---------------------------------------------------------------- profiling

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export function summarizeProfile(prof: CpuProfile, top = 25): string {
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    self.set(prof.samples[i]!, (self.get(prof.samples[i]!) ?? 0) + dt);
  }
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let total = 0;
  for (const v of self.values()) total += v;
  const rel = (url: string): string => {
    if (!url) return '';
    const u = url.replace(/^file:\/\//, '');
    const i = u.indexOf('/dist/');
    if (i >= 0) return u.slice(i + 1);
    if (u.startsWith('node:')) return u;
    return path.basename(u);
  };
  const key = (n: ProfileNode): string => {
    const f = n.callFrame;
    const name = f.functionName || '(anonymous)';
    const where = rel(f.url);
    return where ? `${name}  ${where}:${f.lineNumber + 1}` : name;
  };
  const selfBy = new Map<string, number>();
  const inclBy = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    selfBy.set(key(n), (selfBy.get(key(n)) ?? 0) + t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      inclBy.set(k, (inclBy.get(k) ?? 0) + t);
    }
  }
  const fileBy = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const f = rel(n.callFrame.url) || `(${n.callFrame.functionName || 'native'})`;
    fileBy.set(f, (fileBy.get(f) ?? 0) + t);
  }
  const pct = (v: number): string => `${(100 * v / total).toFixed(1).padStart(5)}%`;
  const out: string[] = [];
  out.push(`total sampled ${(total / 1e6).toFixed(2)} s`);
  out.push('', `top ${top} by self time:`);
  for (const [k, v] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${pct(v)}  ${k}`);
  out.push('', 'top by inclusive time (project code only):');
  for (const [k, v] of [...inclBy].filter(([k]) => k.includes('dist/')).sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${pct(v)}  ${k}`);
  out.push('', 'self time by script:');
  for (const [k, v] of [...fileBy].sort((a, b) => b[1] - a[1]).slice(0, 15)) out.push(`  ${pct(v)}  ${k}`);
  return out.join('\n') + '\n';
}

export async function runProfile(clients: number, seconds: number, outFile: string | null): Promise<string> {
  installSignalHandlers();
  const dir = makeTmpDir();
  try {
    const profDir = path.join(dir, 'prof');
    fs.mkdirSync(profDir);
    // The preload (this file) makes SIGUSR2 a clean exit so --cpu-prof writes its profile.
    const spec = oursSpec(dir, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--require', __filename]);
    spec.env = { ...spec.env, LOCKD_BENCH_PRELOAD: '1' };
    const o: LockdBenchOptions = { ...DEFAULT_OPTIONS, seconds, only: 'ours' };
    const d = await startDaemon(spec);
    let result: CaseResult;
    try {
      await setupVg(spec.sockPath);
      result = await runCase(d, { name: `uncontended x${clients}`, clients, contended: false }, 0, o);
      process.kill(d.pid, 'SIGUSR2');
      await Promise.race([d.exited, sleep(10_000)]);
    } finally {
      await stopDaemon(d);
    }
    const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (!files.length) throw new Error('daemon wrote no .cpuprofile');
    const text = fs.readFileSync(path.join(profDir, files[0]!), 'utf8');
    if (outFile) fs.writeFileSync(outFile, text);
    const head = `profile of our lvmlockd -T, uncontended x${clients}, ${seconds} s (+warm-up): ` +
      `${Math.round(result.opsPerSec)} ops/s (under the profiler), p50 ${fmtUs(result.p50us)}, daemon cpu ${(100 * result.daemonCpu).toFixed(0)}%\n`;
    return head + summarizeProfile(JSON.parse(text) as CpuProfile);
  } finally {
    removeTmpDir(dir);
  }
}

// ---------------------------------------------------------------- core only

/**
 * --core-only: our daemon's JS work per lock_lv round trip without sockets.
 * One Daemon object is built as bin/lvmlockd -T builds it (never started: no
 * pid file, no socket); its reply port is replaced so that each reply sends the
 * client's next request at once. CPU time of this process per round trip is
 * what the request path costs above the socket reads and writes.
 */
export async function runCoreOnly(clients: number, seconds: number): Promise<string> {
  // Loaded here so that a bench run without --core-only does not load the daemon's modules.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Daemon } = require('../src/daemon/server') as typeof import('../src/daemon/server');
  const dir = makeTmpDir();
  try {
    const daemon = new Daemon({
      testMode: true, socketPath: path.join(dir, 's'), pidFile: path.join(dir, 'p'), adoptFile: path.join(dir, 'a'), adopt: false,
      glType: null, hostId: 0, hostIdFile: '', sanlockTimeout: 10, debugToStdout: false, syslogPriority: 4,
      watchdog: 'off' as never, wdmdSocket: '', killHelper: '',
    }, async () => 0);
    const replies = new Map<number, (text: string) => void>();
    const internals = daemon as unknown as { sendReply: (id: number, text: string) => boolean };
    internals.sendReply = (id, text) => { const f = replies.get(id); if (f) setImmediate(() => f(text)); return !!f; };
    const core = daemon.core;
    const ask = (id: number, body: string): Promise<string> => new Promise((resolve) => { replies.set(id, resolve); core.request(id, body); });
    const setup = core.addClient(process.pid, -1, 1);
    const frameBody = (b: Buffer): string => b.toString('utf8').slice(0, -4);
    await ask(setup, frameBody(encodeFrame(formatRequest([
      ['request', 'start_vg'], ['pid', process.pid], ['vg_name', VG], ['vg_lock_type', 'dlm'],
      ['vg_lock_args', VG_LOCK_ARGS], ['vg_uuid', VG_UUID], ['version', 1], ['host_id', 0], ['opts', 'none'],
    ]))));
    await ask(setup, 'request="start_wait"\npid =' + process.pid + '\n');
    let ops = 0;
    let measuring = false;
    let stop = false;
    const { lockLvFrame, lvUuid } = require('./lockd-client') as typeof import('./lockd-client');
    const loops: Promise<void>[] = [];
    for (let i = 0; i < clients; i++) {
      const id = core.addClient(process.pid, -1, 2 + i);
      const t = { vg: VG, lv: `lv${i}`, lvUuid: lvUuid(77, i), lockType: 'dlm' as const, vgArgs: VG_LOCK_ARGS, lvArgs: 'dlm' };
      const ex = frameBody(lockLvFrame(t, 'ex'));
      const un = frameBody(lockLvFrame(t, 'un'));
      loops.push((async () => {
        while (!stop) {
          for (const body of [ex, un]) {
            const r = await ask(id, body);
            if (!r.includes('op_result = 0')) throw new Error(`core-only: ${JSON.stringify(r)}`);
            if (measuring) ops++;
          }
        }
      })());
    }
    await sleep(500);
    measuring = true;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    measuring = false;
    const c = process.cpuUsage(c0);
    const secs = (performance.now() - t0) / 1000;
    stop = true;
    await Promise.all(loops);
    const cpu = (c.user + c.system) / 1e6;
    return `core only (no sockets), ${clients} client${clients === 1 ? '' : 's'}: ${Math.round(ops / secs)} round trips/s, ` +
      `${(1e6 * cpu / ops).toFixed(1)} us CPU per lock_lv round trip (this process: core, test manager, debug log, ` +
      `request parse and reply text; setImmediate per reply stands in for the socket)\n`;
  } finally {
    removeTmpDir(dir);
  }
}

// ---------------------------------------------------------------- instructions

/**
 * --instructions: user-space instructions each daemon executes per lock_lv
 * round trip, counted by valgrind's callgrind, so the figure does not depend on
 * the machine's load (wall-clock ratios do). Each daemon runs under
 * `valgrind --tool=callgrind` in its namespace with the syslog receiver, as in
 * the main bench; per client count: a warm-up of `ops` round trips, the
 * counters zeroed (`callgrind_control -z`), `ops` measured round trips, a dump
 * (`callgrind_control -d`) whose total is divided by the round trips. All
 * threads count (C's client and lockspace threads; Node's GC and platform
 * threads). Kernel work (the system calls themselves) is not counted; the
 * connect, hello and close of each client (a few requests) are inside the
 * measured window and are noise against `ops`.
 */
export async function runInstructions(clientCounts: number[], ops: number, keepDir: string | null = null, only: LockdBenchOptions['only'] = 'both'): Promise<string> {
  installSignalHandlers();
  const dir = makeTmpDir();
  const lines: string[] = [];
  try {
    const specs: DaemonSpec[] = only === 'c' ? [] : [oursSpec(dir)];
    const cBin = findCDaemon();
    if (cBin && only !== 'ours') specs.push(cSpec(dir, cBin));
    else if (!cBin) lines.push('C lvmlockd not found (install lvm2-lockd or set LVMLOCKD_C_BIN): C row skipped.');
    const ns = namespaceNote();
    if (ns) lines.push(ns);
    const per = new Map<string, number[]>();
    const splitLines: string[] = [];
    for (const spec of specs) {
      const outPrefix = path.join(dir, `${spec.label}.callgrind`);
      const wrapped: DaemonSpec = {
        ...spec, command: 'valgrind',
        args: ['--tool=callgrind', `--callgrind-out-file=${outPrefix}`, '--collect-jumps=no', '-q', spec.command, ...spec.args],
      };
      const d = await startAndSetUp(wrapped, 180_000);
      try {
        const counts: number[] = [];
        // V8 compiles the hot path in the background after enough calls: a first warm-up
        // long enough for that, so that the first client count is not charged with it.
        await runClient(countedJob(spec, d.pid, 8, 3 * ops, 899));
        for (const [i, clients] of clientCounts.entries()) {
          const job = (tag: number): ClientJob => countedJob(spec, d.pid, clients, ops, tag);
          await runClient(job(900 + 2 * i));
          await callgrindControl(['-z', String(d.pid)]);
          const r = await runClient(job(901 + 2 * i));
          const before = new Set(fs.readdirSync(dir));
          await callgrindControl(['-d', String(d.pid)]);
          const dumps = fs.readdirSync(dir).filter((f) => f.startsWith(`${spec.label}.callgrind`) && !before.has(f));
          if (dumps.length !== 1) throw new Error(`${spec.label}: expected one new callgrind dump, found ${dumps.length}`);
          const dumpText = fs.readFileSync(path.join(dir, dumps[0]!), 'latin1');
          const m = /^(?:summary|totals): (\d+)/m.exec(dumpText);
          if (!m) throw new Error(`${spec.label}: no instruction total in ${dumps[0]}`);
          const sp = splitInstructions(dumpText);
          const bad = r.results.filter(([k]) => k !== 0);
          if (bad.length) throw new Error(`${spec.label}: non-zero op_result in ${JSON.stringify(r.results)}`);
          counts.push(Number(m[1]) / r.ops);
          splitLines.push(`${spec.label} x${clients}: of the ${Math.round(Number(m[1]) / r.ops).toLocaleString('en-US')} per round trip, ` +
            `optimizing compiler ${Math.round(sp.compiler / r.ops).toLocaleString('en-US')}, GC ${Math.round(sp.gc / r.ops).toLocaleString('en-US')}, ` +
            `rest (request path) ${Math.round((sp.total - sp.compiler - sp.gc) / r.ops).toLocaleString('en-US')}`);
          if (keepDir) fs.copyFileSync(path.join(dir, dumps[0]!), path.join(keepDir, `${spec.label}-x${clients}.callgrind`));
        }
        per.set(spec.label, counts);
      } finally {
        await stopDaemon(d, 5000);
      }
    }
    const head = ['clients', ...specs.map((s) => `${s.label} instr/round trip`), 'ours/C'];
    lines.unshift(`lock_lv round trips (ex or un, uncontended, test mode, syslog receiver), user-space instructions per round trip ` +
      `(callgrind, all threads, ${ops} round trips after ${ops} of warm-up, ${3 * ops} before the first), node ${process.version}, ${new Date().toISOString()}`);
    lines.push(head.join('  '));
    for (const [i, c] of clientCounts.entries()) {
      const ours = per.get('ours')?.[i] ?? NaN;
      const c0 = per.get('C')?.[i] ?? NaN;
      lines.push([String(c).padStart(7), ...specs.map((s) => Math.round(per.get(s.label)![i]!).toLocaleString('en-US').padStart(22)),
        Number.isFinite(c0) && Number.isFinite(ours) ? (ours / c0).toFixed(2) + 'x' : '-'].join('  '));
    }
    lines.push('self cost by function, split (a recompilation or major GC in the window shows in the first two):', ...splitLines.map((l) => '  ' + l));
    return lines.join('\n') + '\n';
  } finally {
    removeTmpDir(dir);
  }
}

function callgrindControl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('callgrind_control', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    child.once('error', reject);
    child.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`callgrind_control ${args.join(' ')}: ${code}: ${out.trim()}`)));
  });
}

// ---------------------------------------------------------------- system calls

/** utime and stime of a process (all threads), seconds. */
function userSysSeconds(pid: number): { user: number; sys: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after ")" start at field 3 (state); utime = 14, stime = 15, in USER_HZ (100) ticks
  return { user: Number(rest[14 - 3]) / 100, sys: Number(rest[15 - 3]) / 100 };
}

function tracerWorks(cmd: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.once('error', () => resolve(false));
    c.once('exit', (code) => resolve(code === 0));
  });
}

/**
 * --syscalls: system calls per lock_lv round trip of each daemon, by kind and
 * thread. The daemon runs as in the main bench (namespace, syslog receiver);
 * per client count: `ops` round trips of warm-up, then the tracer is attached
 * to all its threads (`perf trace -s -p PID`, or `strace -c -f -p PID` with
 * --tracer strace), `ops` measured round trips, and the tracer is stopped
 * (SIGINT) for its summary. The clients' connect, hello and close fall into
 * the window (a few system calls per client, noise against `ops`); so do the
 * daemon's idle wake-ups in the ~1 s around the round trips.
 */
export async function runSyscalls(clientCounts: number[], ops: number, tracer: 'perf' | 'strace', only: LockdBenchOptions['only'] = 'both'): Promise<string> {
  installSignalHandlers();
  const dir = makeTmpDir();
  const lines: string[] = [];
  try {
    if (tracer === 'perf' && !(await tracerWorks('perf', ['trace', '-s', 'true']))) throw new Error('`perf trace -s true` fails here: use --tracer strace');
    if (tracer === 'strace' && !(await tracerWorks('strace', ['-c', '-o', '/dev/null', 'true']))) throw new Error('strace not usable here');
    const specs: DaemonSpec[] = only === 'c' ? [] : [oursSpec(dir)];
    const cBin = findCDaemon();
    if (cBin && only !== 'ours') specs.push(cSpec(dir, cBin));
    else if (!cBin) lines.push('C lvmlockd not found (install lvm2-lockd or set LVMLOCKD_C_BIN): C rows skipped.');
    const ns = namespaceNote();
    if (ns) lines.push(ns);
    lines.unshift(`lock_lv round trips (ex or un, uncontended, test mode, syslog receiver): system calls per round trip, ` +
      `${tracer === 'perf' ? 'perf trace -s' : 'strace -c -f'} attached to all threads of the daemon for ${ops} round trips after ${ops} of warm-up, ` +
      `node ${process.version}, ${new Date().toISOString()}`);
    for (const spec of specs) {
      const d = await startAndSetUp(spec);
      try {
        await runClient(countedJob(spec, d.pid, 8, 3 * ops, 799));
        for (const [i, clients] of clientCounts.entries()) {
          const job = (tag: number): ClientJob => countedJob(spec, d.pid, clients, ops, tag);
          // The warm-up round, untraced, also gives the split of the daemon's CPU into user and kernel time.
          const t0 = userSysSeconds(d.pid);
          const w = await runClient(job(800 + 2 * i));
          const t1 = userSysSeconds(d.pid);
          const out = path.join(dir, `${spec.label}-x${clients}.trace`);
          const t = tracer === 'perf'
            ? spawn('perf', ['trace', '-s', '-o', out, '-p', String(d.pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
            : spawn('strace', ['-c', '-f', '-o', out, '-p', String(d.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
          liveChildren.add(t);
          let terr = '';
          t.stderr!.on('data', (b: Buffer) => { terr = (terr + b.toString()).slice(-2000); });
          const tExit = new Promise<void>((resolve) => t.once('exit', () => { liveChildren.delete(t); resolve(); }));
          await sleep(1000);
          const r = await runClient(job(801 + 2 * i));
          t.kill('SIGINT');
          await Promise.race([tExit, sleep(20_000)]);
          const bad = r.results.filter(([k]) => k !== 0);
          if (bad.length) throw new Error(`${spec.label}: non-zero op_result in ${JSON.stringify(r.results)}`);
          const text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
          const counts = parseSyscallSummary(text);
          if (counts.byThread.size === 0) throw new Error(`${spec.label}: no syscall summary from ${tracer}: ${terr.trim()} ${text.slice(0, 500)}`);
          lines.push('', `${spec.label}, ${clients} client${clients === 1 ? '' : 's'}, ${r.ops} round trips: calls per round trip ` +
            `(untraced round before: daemon CPU per round trip ${(1e6 * (t1.user - t0.user) / w.ops).toFixed(1)} us user + ` +
            `${(1e6 * (t1.sys - t0.sys) / w.ops).toFixed(1)} us kernel, 10 ms ticks)`);
          const total = new Map<string, number>();
          for (const [th, m] of counts.byThread) {
            let sum = 0;
            for (const [k, v] of m) { sum += v; total.set(k, (total.get(k) ?? 0) + v); }
            lines.push(`  thread ${th}: ${(sum / r.ops).toFixed(3)}  (` +
              [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / r.ops).toFixed(3)}`).join(', ') + ')');
          }
          let all = 0;
          for (const v of total.values()) all += v;
          if (counts.byThread.size > 1) lines.push(`  all threads: ${(all / r.ops).toFixed(3)}  (` +
            [...total].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / r.ops).toFixed(3)}`).join(', ') + ')');
        }
      } finally {
        await stopDaemon(d, 5000);
      }
    }
    return lines.join('\n') + '\n';
  } finally {
    removeTmpDir(dir);
  }
}

// ---------------------------------------------------------------- entry points

if (process.env.LOCKD_BENCH_PRELOAD === '1' && require.main !== module) {
  // loaded with --require into the profiled daemon
  delete process.env.LOCKD_BENCH_PRELOAD;
  process.on('SIGUSR2', () => process.exit(0));
}

if (require.main === module) {
  let cmd: LockdCommand;
  try {
    cmd = parseLockdArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof LockdBenchUsage)) throw e;
    process.stderr.write(`lockd bench: ${e.message}\n${LOCKD_USAGE}\n`);
    process.exit(2);
  }
  if (cmd.mode === 'help') {
    process.stdout.write(LOCKD_USAGE + '\n');
    process.exit(0);
  }
  const run = cmd.mode === 'syscalls' ? runSyscalls(cmd.clients, cmd.ops, cmd.tracer, cmd.only)
    : cmd.mode === 'instructions' ? runInstructions(cmd.clients, cmd.ops, cmd.keepDumps, cmd.only)
    : cmd.mode === 'core-only' ? runCoreOnly(cmd.clients, cmd.seconds)
    : cmd.mode === 'profile' ? runProfile(cmd.clients, cmd.seconds, cmd.profileOut)
    : runLockdBench({
      ...(cmd.seconds !== undefined ? { seconds: cmd.seconds } : {}),
      ...(cmd.maxOps !== undefined ? { maxOps: cmd.maxOps } : {}),
      ...(cmd.only !== undefined ? { only: cmd.only } : {}),
      ...(cmd.rounds !== undefined ? { rounds: cmd.rounds } : {}),
    });
  run.then((text) => { process.stdout.write(text); }, (e: unknown) => {
    if (e instanceof LockdBenchFailure) process.stdout.write(e.report);
    else process.stderr.write(`lockd bench failed: ${describeError(e)}\n`);
    process.exitCode = 1;
  });
}
