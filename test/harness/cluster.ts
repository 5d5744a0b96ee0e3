// Multi-host test cluster on one machine.
//
// A "host" is a holder process in its own mount + network + UTS namespace
// (`unshare -m -n -u`) that bind-mounts a private directory on /etc/lvm
// (lvm.conf with use_lvmlockd=1, lvmlocal.conf with the host's host_id) and
// on /run (so /run/lvm/lvmlockd.socket, /run/lvmlockd.pid, /run/lock/lvm and
// /run/sanlock are per host), and a per-cluster directory on /dev/mapper
// (device-mapper emulation nodes shared by the hosts of one cluster). Every
// command of the host runs through `nsenter -t <holder pid> -m -n -u`.
// All hosts see the same loop devices (the shared storage): /dev is shared.
//
// Processes are tracked and killed by pid; loop devices are detached only
// when still bound to our backing file. Spawned processes get a parent-death
// SIGKILL (setpriv --pdeathsig) so a crashed test run leaks nothing
// long-lived; anything else is reaped by the next run (reapStaleRuns).

import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCommand, RunResult, RunOptions, killPid, pidAlive, waitPidGone, sleep, shellQuote, descendants } from './exec';
import { lvmConf, lvmLocalConf } from './lvmconf';
import { helloOk } from './hello';
import { ResourceTracker, reapStaleRuns, DIR_PREFIX, detachLoopSync } from './resources';

export type DaemonKind = 'c' | 'ts';

// LVM_TS_C_LVMLOCKD / LVM_TS_C_LVMLOCKCTL: another C build as the reference (e.g. a wrapper
// running Debian 13's 2.03.31 from an unpacked tree); the default is the installed one.
export const C_LVMLOCKD = process.env.LVM_TS_C_LVMLOCKD ?? '/usr/sbin/lvmlockd';
export const C_LVMLOCKCTL = process.env.LVM_TS_C_LVMLOCKCTL ?? '/usr/sbin/lvmlockctl';
export const SYS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Top of the repository (folder holding package.json), found from this file. */
export function repoRoot(): string {
  let d = __dirname;
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'tsconfig.json'))) return d;
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  return process.cwd();
}

/** Default binaries of our TypeScript daemon and tool. */
export function tsLvmlockdPath(): string {
  return process.env.LVMLOCKD_TS_BIN ?? path.join(repoRoot(), 'bin', 'lvmlockd');
}
export function tsLvmlockctlPath(): string {
  return process.env.LVMLOCKCTL_TS_BIN ?? path.join(repoRoot(), 'bin', 'lvmlockctl');
}

export interface DiskSpec {
  sizeMiB: number;
  /** Logical sector size of the loop device (losetup --sector-size). Default 512. */
  sectorSize?: 512 | 4096;
}

export interface Disk {
  index: number;
  /** Loop device path, e.g. /dev/loop3 (the same on every host). */
  path: string;
  backingFile: string;
  sizeMiB: number;
  sectorSize: number;
}

export interface MapperDevice {
  /** dm name, e.g. vg1-lvmlock */
  name: string;
  /** Path as seen inside the hosts: /dev/mapper/<name> */
  path: string;
  /** The offset loop device behind it. */
  loop: string;
  offsetBytes: number;
  sizeBytes: number;
}

export interface ClusterOptions {
  /** Number of hosts, default 2. Hosts are numbered from 1. */
  hosts?: number;
  /** Shared disks (sparse files on loop devices). Default one of 512 MiB. */
  disks?: DiskSpec[];
  /** local/host_id of each host; default 1..n. */
  hostIds?: number[];
  /** global/activation in lvm.conf; default false (no device-mapper here). */
  activation?: boolean;
  /** global/use_lvmlockd; default true. */
  useLvmlockd?: boolean;
  /** Extra lvm.conf text appended for every host (or per host index). */
  extraLvmConf?: string | ((hostIndex: number) => string);
  /** Extra lvmlocal.conf text. */
  extraLvmLocalConf?: string | ((hostIndex: number) => string);
  /** Give hosts an eth0 on a private bridge (10.213.0.<i>/24). Default false. */
  network?: boolean;
  /** First three octets of the host addresses when network is on. */
  subnet?: string;
  /** Default timeout of host.run(), ms. Default 60000. */
  commandTimeoutMs?: number;
  /** lvmlockctl binary used by host.lvmlockctl(); default the C one. */
  lvmlockctl?: string;
  /** Keep the temp dir (logs, confs) after destroy(). Env HARNESS_KEEP=1 too. */
  keep?: boolean;
  /** Label in the temp dir name. */
  name?: string;
}

export interface DaemonOptions {
  /** 'c' = /usr/sbin/lvmlockd, 'ts' = our bin/lvmlockd. */
  kind: DaemonKind;
  /** Override the binary (absolute path). */
  binary?: string;
  /** Extra arguments, e.g. ['-T'] for test mode. */
  args?: string[];
  /** Extra environment of the daemon (merged over a clean base env). */
  env?: Record<string, string>;
  /** Foreground flag: true → -D (debug log to the log file, default), false → -f. */
  debug?: boolean;
  /** How long to wait for the socket to answer hello. Default 10000 ms. */
  readyTimeoutMs?: number;
  /** Only wait for connect, not for a valid hello reply. Default false. */
  noHello?: boolean;
  /**
   * Do not wait for /run/lvmlockd.pid. By default readiness also needs it:
   * lvm commands access() that compiled-in path before connecting.
   */
  noPidFile?: boolean;
}

export interface ProcHandle {
  pid: number;
  logPath: string;
  child: ChildProcess;
  /** Resolves with the exit status once the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Current content of the log (stdout+stderr). */
  log(): string;
}

export interface DaemonHandle extends ProcHandle {
  kind: DaemonKind;
  binary: string;
  argv: string[];
}

export interface CommandRecord {
  host: number;
  argv: string[];
  result: RunResult;
}

/** dm name of an LV, with '-' doubled as device-mapper does. */
export function dmName(vg: string, lv: string): string {
  return `${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

const liveClusters = new Set<Cluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of [...liveClusters]) c.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const c of [...liveClusters]) c.destroySync();
      process.kill(process.pid, sig);
    });
  }
}

function baseEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  const nodeDir = path.dirname(process.execPath);
  // LVM_TS_PATH_PREPEND: a directory whose `lvm` (and others) the hosts run instead of the
  // installed ones, to run the same scenarios with another LVM2 version.
  const prepend = process.env.LVM_TS_PATH_PREPEND ? `${process.env.LVM_TS_PATH_PREPEND}:` : '';
  const env: NodeJS.ProcessEnv = {
    PATH: `${prepend}${nodeDir}:${SYS_PATH}`,
    HOME: '/root',
    LC_ALL: 'C',
    LANG: 'C',
    LVM_SUPPRESS_FD_WARNINGS: '1',
  };
  if (process.env.TERM) env.TERM = process.env.TERM;
  return { ...env, ...(extra ?? {}) };
}

/** Spawn a long-lived process with a parent-death SIGKILL, stdout+stderr to a log file. */
function spawnLogged(argv: string[], logPath: string, env: NodeJS.ProcessEnv): ProcHandle {
  const fd = fs.openSync(logPath, 'a');
  const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', ...argv], {
    stdio: ['ignore', fd, fd],
    env,
  });
  fs.closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', () => resolve({ code: 127, signal: null }));
  });
  if (child.pid === undefined) throw new Error(`cannot spawn ${argv[0]}`);
  return {
    pid: child.pid,
    logPath,
    child,
    exited,
    log: () => {
      try {
        return fs.readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    },
  };
}

async function stopProc(h: ProcHandle, timeoutMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const kids = descendants(h.pid);
  if (pidAlive(h.pid)) {
    killPid(h.pid, signal);
    const res = await Promise.race([h.exited, sleep(timeoutMs).then(() => null)]);
    if (res === null) {
      killPid(h.pid, 'SIGKILL');
      await Promise.race([h.exited, sleep(5000)]);
    }
  }
  for (const k of kids) if (pidAlive(k)) killPid(k, 'SIGKILL');
  for (const k of kids) await waitPidGone(k, 2000);
  return Promise.race([h.exited, sleep(100).then(() => ({ code: null, signal: null }))]);
}

/**
 * `losetup -f --show ...` with retries: clusters of other test files (run in
 * parallel) attach loop devices at the same time, and `losetup -f` can lose
 * the race for the free device it found (EBUSY).
 */
async function attachLoop(argv: string[]): Promise<string> {
  let r: RunResult | null = null;
  for (let attempt = 0; attempt < 10; attempt++) {
    r = await runCommand(argv);
    if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
    await sleep(100 + 100 * attempt);
  }
  throw new Error(`${shellQuote(argv)} failed: ${r?.stderr}`);
}

export class Host {
  daemon: DaemonHandle | null = null;
  sanlock: ProcHandle | null = null;
  /** The host's ILM daemon (IDM VGs), when started. */
  ilm: ProcHandle | null = null;
  /** eth0 address when the cluster has a network. */
  address: string | null = null;

  constructor(
    readonly cluster: Cluster,
    /** 1-based host number. */
    readonly index: number,
    readonly hostId: number,
    /** Host directory (holds etc-lvm/, run/, logs). */
    readonly dir: string,
    /** Pid of the namespace holder. */
    readonly holderPid: number,
  ) {}

  get name(): string {
    return `host${this.index}`;
  }

  /** argv prefix that enters this host's namespaces. */
  nsenterPrefix(): string[] {
    return ['nsenter', '-t', String(this.holderPid), '-m', '-n', '-u', '--'];
  }

  /** Where a path seen inside the host lives in the root namespace. */
  hostPath(p: string): string {
    if (p === '/run' || p.startsWith('/run/')) return path.join(this.dir, 'run', p.slice(4));
    if (p === '/etc/lvm' || p.startsWith('/etc/lvm/')) return path.join(this.dir, 'etc-lvm', p.slice(8));
    if (p === '/dev/mapper' || p.startsWith('/dev/mapper/')) return path.join(this.cluster.mapperDir, p.slice(11));
    return p;
  }

  /** Run a command inside the host. Never rejects; see RunResult.code. */
  async run(argv: string[], opts: Omit<RunOptions, 'env'> & { env?: Record<string, string> } = {}): Promise<RunResult> {
    const r = await runCommand([...this.nsenterPrefix(), ...argv], {
      ...opts,
      env: baseEnv(opts.env),
      timeoutMs: opts.timeoutMs ?? this.cluster.commandTimeoutMs,
    });
    this.cluster.recordCommand({ host: this.index, argv, result: r });
    return r;
  }

  /** `lvm <args>` inside the host. */
  lvm(args: string[], opts?: Omit<RunOptions, 'env'> & { env?: Record<string, string> }): Promise<RunResult> {
    return this.run(['lvm', ...args], opts);
  }

  /** lvmlockctl inside the host (the cluster's lvmlockctl binary unless given). */
  lvmlockctl(args: string[], opts: { binary?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    const bin = opts.binary ?? this.cluster.lvmlockctlBinary;
    return this.run([bin, ...args], { timeoutMs: opts.timeoutMs });
  }

  /** Like run() but throws (with output) unless the exit code is 0. */
  async runOk(argv: string[], opts?: Omit<RunOptions, 'env'> & { env?: Record<string, string> }): Promise<RunResult> {
    const r = await this.run(argv, opts);
    if (r.code !== 0) {
      throw new Error(`${this.name}: ${shellQuote(argv)} exited ${r.code}${r.timedOut ? ' (timeout)' : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    }
    return r;
  }

  /**
   * Start a lock daemon in the foreground inside the host and wait until
   * /run/lvm/lvmlockd.socket answers hello. Log: <host dir>/lvmlockd.log.
   */
  async startDaemon(opts: DaemonOptions): Promise<DaemonHandle> {
    if (this.daemon && pidAlive(this.daemon.pid)) throw new Error(`${this.name}: a daemon is already running (pid ${this.daemon.pid})`);
    const binary = opts.binary ?? (opts.kind === 'c' ? C_LVMLOCKD : tsLvmlockdPath());
    if (!fs.existsSync(binary)) throw new Error(`${this.name}: lvmlockd binary not found: ${binary}`);
    const fg = opts.debug === false ? '-f' : '-D';
    const argv = [binary, fg, ...(opts.args ?? [])];
    const logPath = path.join(this.dir, 'lvmlockd.log');
    fs.appendFileSync(logPath, `=== ${new Date().toISOString()} start: ${shellQuote(argv)}\n`);
    const env = baseEnv(opts.env);
    const h = spawnLogged([...this.nsenterPrefix(), ...argv], logPath, env);
    this.cluster.tracker.addPid(h.pid, `${this.name} lvmlockd`);
    const handle: DaemonHandle = { ...h, kind: opts.kind, binary, argv };
    this.daemon = handle;
    const sockInHost = opts.env?.LVM_LVMLOCKD_SOCKET ?? '/run/lvm/lvmlockd.socket';
    const sock = this.hostPath(sockInHost);
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
    let last = '';
    let exitedEarly: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    void h.exited.then((e) => { exitedEarly = e; });
    while (Date.now() < deadline) {
      if (exitedEarly) break;
      if (fs.existsSync(sock)) {
        const r = await helloOk(sock, 1000);
        if (r.ok || (opts.noHello && r.error !== 'ENOENT' && r.error !== 'ECONNREFUSED')) {
          if (opts.noPidFile || fs.existsSync(this.hostPath('/run/lvmlockd.pid'))) return handle;
          last = 'socket ready but no /run/lvmlockd.pid (lvm commands check it)';
        } else {
          last = `${r.error ?? ''} ${r.text}`;
        }
      }
      await sleep(50);
    }
    const why = exitedEarly
      ? `exited early (code ${(exitedEarly as { code: number | null }).code}, signal ${(exitedEarly as { signal: string | null }).signal})`
      : `not ready after ${opts.readyTimeoutMs ?? 10_000} ms (${last.trim() || 'no socket'})`;
    await this.stopDaemon({ timeoutMs: 200 });
    throw new Error(`${this.name}: lvmlockd ${shellQuote(argv)} ${why}\n--- log tail ---\n${h.log().split('\n').slice(-30).join('\n')}`);
  }

  /** SIGTERM (or `signal`), then SIGKILL after timeoutMs (default 3000). */
  async stopDaemon(opts: { timeoutMs?: number; signal?: NodeJS.Signals } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
    const d = this.daemon;
    if (!d) return null;
    const r = await stopProc(d, opts.timeoutMs ?? 3000, opts.signal);
    this.cluster.tracker.forgetPid(d.pid);
    this.daemon = null;
    return r;
  }

  /** The daemon log so far ('' if none). */
  daemonLog(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'lvmlockd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * Start the real sanlock daemon (unprivileged mode, no watchdog) inside the
   * host; /run/sanlock is per host. Waits for `sanlock client status`.
   */
  async startSanlock(opts: { args?: string[]; readyTimeoutMs?: number } = {}): Promise<ProcHandle> {
    if (this.sanlock && pidAlive(this.sanlock.pid)) throw new Error(`${this.name}: sanlock already running`);
    const argv = ['sanlock', 'daemon', '-D', '-w', '0', '-l', '0', '-U', 'root', '-G', 'root', ...(opts.args ?? [])];
    const logPath = path.join(this.dir, 'sanlock.log');
    const h = spawnLogged([...this.nsenterPrefix(), ...argv], logPath, baseEnv({ SANLOCK_PRIVILEGED: '0' }));
    this.cluster.tracker.addPid(h.pid, `${this.name} sanlock`);
    this.sanlock = h;
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
    while (Date.now() < deadline) {
      if (!pidAlive(h.pid)) break;
      if (fs.existsSync(this.hostPath('/run/sanlock/sanlock.sock'))) {
        const r = await this.run(['sanlock', 'client', 'status'], { timeoutMs: 5000 });
        if (r.code === 0) return h;
      }
      await sleep(100);
    }
    await this.stopSanlock({ timeoutMs: 200 });
    throw new Error(`${this.name}: sanlock daemon did not start\n${h.log()}`);
  }

  async stopSanlock(opts: { timeoutMs?: number } = {}): Promise<void> {
    const s = this.sanlock;
    if (!s) return;
    await stopProc(s, opts.timeoutMs ?? 3000);
    this.cluster.tracker.forgetPid(s.pid);
    this.sanlock = null;
  }

  /**
   * Start an ILM daemon (ours by default, in the foreground) inside the host;
   * /run/seagate_ilm is per host. Waits for its socket. Log: <host dir>/ilm.log.
   */
  async startIlm(opts: { binary?: string; env?: Record<string, string>; readyTimeoutMs?: number } = {}): Promise<ProcHandle> {
    if (this.ilm && pidAlive(this.ilm.pid)) throw new Error(`${this.name}: ILM already running`);
    const binary = opts.binary ?? path.join(repoRoot(), 'bin', 'ilmd');
    const argv = [binary, '-D', '1', '-E', '6'];
    const logPath = path.join(this.dir, 'ilm.log');
    const sock = this.hostPath('/run/seagate_ilm/main.sock');
    try { fs.unlinkSync(sock); } catch { /* not there */ }
    const h = spawnLogged([...this.nsenterPrefix(), ...argv], logPath, baseEnv({ ILM_LOG_DIR: '/run/seagate_ilm', ...(opts.env ?? {}) }));
    this.cluster.tracker.addPid(h.pid, `${this.name} ilm`);
    this.ilm = h;
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
    while (Date.now() < deadline) {
      if (!pidAlive(h.pid)) break;
      if (fs.existsSync(sock)) return h;
      await sleep(50);
    }
    await this.stopIlm({ timeoutMs: 200 });
    throw new Error(`${this.name}: ILM did not start\n${h.log()}`);
  }

  async stopIlm(opts: { timeoutMs?: number; signal?: NodeJS.Signals } = {}): Promise<void> {
    const s = this.ilm;
    if (!s) return;
    await stopProc(s, opts.timeoutMs ?? 3000, opts.signal);
    this.cluster.tracker.forgetPid(s.pid);
    this.ilm = null;
  }

  /** Cut (false) or restore (true) this host's link to the cluster network. */
  async setNetwork(up: boolean): Promise<void> {
    if (!this.cluster.switchPid) throw new Error('cluster was created without network');
    const r = await runCommand(['nsenter', '-t', String(this.cluster.switchPid), '-n', '--', 'ip', 'link', 'set', `vh${this.index}`, up ? 'up' : 'down']);
    if (r.code !== 0) throw new Error(`ip link set: ${r.stderr}`);
  }
}

export class Cluster {
  readonly hosts: Host[] = [];
  readonly disks: Disk[] = [];
  readonly mappers: MapperDevice[] = [];
  readonly commands: CommandRecord[] = [];
  switchPid: number | null = null;
  readonly tracker: ResourceTracker;
  readonly commandTimeoutMs: number;
  readonly lvmlockctlBinary: string;
  private holders: ProcHandle[] = [];
  private destroyed = false;
  private readonly cmdLog: string;

  private constructor(readonly dir: string, readonly opts: ClusterOptions) {
    const keep = opts.keep ?? process.env.HARNESS_KEEP === '1';
    this.tracker = new ResourceTracker(dir, keep);
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 60_000;
    this.lvmlockctlBinary = opts.lvmlockctl ?? C_LVMLOCKCTL;
    this.cmdLog = path.join(dir, 'commands.log');
  }

  get mapperDir(): string {
    return path.join(this.dir, 'mapper');
  }

  /** Host by 1-based number. */
  host(i: number): Host {
    const h = this.hosts[i - 1];
    if (!h) throw new Error(`no host ${i} (cluster has ${this.hosts.length})`);
    return h;
  }

  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    installExitHook();
    reapStaleRuns();
    const label = (opts.name ?? 'c').replace(/[^A-Za-z0-9_.-]/g, '_');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-${label}-`));
    const c = new Cluster(dir, opts);
    liveClusters.add(c);
    try {
      await c.setup();
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  private async setup(): Promise<void> {
    const o = this.opts;
    fs.mkdirSync(path.join(this.dir, 'disks'));
    fs.mkdirSync(this.mapperDir);
    // A control node keeps libdevmapper's view of /dev/mapper ordinary.
    await runCommand(['mknod', '-m', '600', path.join(this.mapperDir, 'control'), 'c', '10', '236']);
    if (!fs.existsSync('/dev/mapper')) fs.mkdirSync('/dev/mapper', { recursive: true });
    for (const spec of o.disks ?? [{ sizeMiB: 512 }]) await this.addDisk(spec);

    const n = o.hosts ?? 2;
    if (o.network) await this.startSwitch();
    for (let i = 1; i <= n; i++) {
      const hostId = o.hostIds?.[i - 1] ?? i;
      const hdir = path.join(this.dir, `host${i}`);
      for (const d of ['etc-lvm/backup', 'etc-lvm/archive', 'etc-lvm/cache', 'run/lvm', 'run/lock/lvm']) {
        fs.mkdirSync(path.join(hdir, d), { recursive: true });
      }
      const extra = typeof o.extraLvmConf === 'function' ? o.extraLvmConf(i) : o.extraLvmConf;
      const extraLocal = typeof o.extraLvmLocalConf === 'function' ? o.extraLvmLocalConf(i) : o.extraLvmLocalConf;
      this.writeHostConf(hdir, hostId, extra, extraLocal);
      const holderPid = await this.startHolder(hdir, i);
      const host = new Host(this, i, hostId, hdir, holderPid);
      this.hosts.push(host);
      if (o.network) await this.connectHost(host);
    }
  }

  private writeHostConf(hdir: string, hostId: number, extra?: string, extraLocal?: string): void {
    fs.writeFileSync(
      path.join(hdir, 'etc-lvm', 'lvm.conf'),
      lvmConf({
        devices: this.disks.map((d) => d.path),
        activation: this.opts.activation ?? false,
        useLvmlockd: this.opts.useLvmlockd ?? true,
        extra,
      }),
    );
    fs.writeFileSync(path.join(hdir, 'etc-lvm', 'lvmlocal.conf'), lvmLocalConf({ hostId, extra: extraLocal }));
  }

  /** Rewrite every host's lvm.conf (e.g. after adding a disk). */
  rewriteConfs(): void {
    for (const h of this.hosts) {
      const o = this.opts;
      const extra = typeof o.extraLvmConf === 'function' ? o.extraLvmConf(h.index) : o.extraLvmConf;
      const extraLocal = typeof o.extraLvmLocalConf === 'function' ? o.extraLvmLocalConf(h.index) : o.extraLvmLocalConf;
      this.writeHostConf(h.dir, h.hostId, extra, extraLocal);
    }
  }

  private async startHolder(hdir: string, index: number): Promise<number> {
    const script = [
      'set -e',
      'mount --bind "$1/etc-lvm" /etc/lvm',
      'mount --bind "$1/run" /run',
      'mount --bind "$2" /dev/mapper',
      'hostname "$3"',
      'ip link set lo up',
      'echo ready',
      'exec sleep infinity',
    ].join('\n');
    const argv = ['unshare', '-m', '-n', '-u', '--propagation', 'private', '--', 'sh', '-c', script, 'holder', hdir, this.mapperDir, `host${index}`];
    const logPath = path.join(hdir, 'holder.log');
    const h = spawnLogged(argv, logPath, baseEnv());
    this.tracker.addPid(h.pid, `host${index} holder`);
    this.holders.push(h);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (h.log().includes('ready')) return h.pid;
      if (!pidAlive(h.pid)) break;
      await sleep(20);
    }
    throw new Error(`host${index}: namespace holder failed: ${h.log()}`);
  }

  private async startSwitch(): Promise<void> {
    const script = 'set -e\nip link set lo up\nip link add br0 type bridge\nip link set br0 up\necho ready\nexec sleep infinity';
    const logPath = path.join(this.dir, 'switch.log');
    const h = spawnLogged(['unshare', '-n', '--', 'sh', '-c', script], logPath, baseEnv());
    this.tracker.addPid(h.pid, 'switch');
    this.holders.push(h);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (h.log().includes('ready')) {
        this.switchPid = h.pid;
        return;
      }
      if (!pidAlive(h.pid)) break;
      await sleep(20);
    }
    throw new Error(`network switch failed: ${h.log()}`);
  }

  private async connectHost(host: Host): Promise<void> {
    const sw = ['nsenter', '-t', String(this.switchPid), '-n', '--'];
    const subnet = this.opts.subnet ?? '10.213.0';
    const steps: string[][] = [
      [...sw, 'ip', 'link', 'add', `vh${host.index}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(host.holderPid)],
      [...sw, 'ip', 'link', 'set', `vh${host.index}`, 'master', 'br0', 'up'],
      [...host.nsenterPrefix(), 'ip', 'addr', 'add', `${subnet}.${host.index}/24`, 'dev', 'eth0'],
      [...host.nsenterPrefix(), 'ip', 'link', 'set', 'eth0', 'up'],
    ];
    for (const s of steps) {
      const r = await runCommand(s, { env: baseEnv() });
      if (r.code !== 0) throw new Error(`${shellQuote(s)}: ${r.stderr}`);
    }
    host.address = `${subnet}.${host.index}`;
  }

  /** Create one more shared disk (sparse file + loop device). */
  async addDisk(spec: DiskSpec): Promise<Disk> {
    const index = this.disks.length;
    const file = path.join(this.dir, 'disks', `disk${index}.img`);
    const fd = fs.openSync(file, 'w');
    fs.ftruncateSync(fd, spec.sizeMiB * 1024 * 1024);
    fs.closeSync(fd);
    const argv = ['losetup', '-f', '--show'];
    if (spec.sectorSize && spec.sectorSize !== 512) argv.push('--sector-size', String(spec.sectorSize));
    argv.push(file);
    const dev = await attachLoop(argv);
    this.tracker.addLoop(dev, file);
    const disk: Disk = { index, path: dev, backingFile: file, sizeMiB: spec.sizeMiB, sectorSize: spec.sectorSize ?? 512 };
    this.disks.push(disk);
    if (this.hosts.length) this.rewriteConfs();
    return disk;
  }

  /**
   * Emulate a device-mapper LV: an offset loop device over a disk's backing
   * file, with a block node /dev/mapper/<vg>-<lv> visible in every host of
   * this cluster. Offsets are in bytes from the start of the disk.
   */
  async emulateLv(vg: string, lv: string, o: { disk?: number; offsetBytes: number; sizeBytes: number }): Promise<MapperDevice> {
    const disk = this.disks[o.disk ?? 0];
    if (!disk) throw new Error(`no disk ${o.disk}`);
    const name = dmName(vg, lv);
    const node = path.join(this.mapperDir, name);
    if (fs.existsSync(node)) throw new Error(`/dev/mapper/${name} already exists`);
    const argv = ['losetup', '-f', '--show', '--offset', String(o.offsetBytes), '--sizelimit', String(o.sizeBytes)];
    if (disk.sectorSize !== 512) argv.push('--sector-size', String(disk.sectorSize));
    argv.push(disk.backingFile);
    const loop = await attachLoop(argv);
    this.tracker.addLoop(loop, disk.backingFile);
    const [major, minor] = fs.readFileSync(`/sys/block/${path.basename(loop)}/dev`, 'utf8').trim().split(':');
    const mk = await runCommand(['mknod', '-m', '660', node, 'b', major!, minor!]);
    if (mk.code !== 0) throw new Error(`mknod failed: ${mk.stderr}`);
    const m: MapperDevice = { name, path: `/dev/mapper/${name}`, loop, offsetBytes: o.offsetBytes, sizeBytes: o.sizeBytes };
    this.mappers.push(m);
    return m;
  }

  /**
   * /dev/mapper/<vg>-lvmlock for a sanlock VG, made before `vgcreate` (the
   * daemon writes the leases during vgcreate): the lvmlock LV is the first
   * LV of a new VG, so it starts at the PV's pe_start (default 1 MiB) and is
   * 256 MiB for 512-byte sectors, 1024 MiB for 4K sectors with the default
   * sanlock_align_size 8 (pass sizeBytes for other settings). Not emulated:
   * a later automatic extension of lvmlock (sanlock_lv_extend) by lvm.
   */
  emulateLvmlock(vg: string, o: { disk?: number; offsetBytes?: number; sizeBytes?: number } = {}): Promise<MapperDevice> {
    const disk = this.disks[o.disk ?? 0];
    const defSize = (disk?.sectorSize === 4096 ? 1024 : 256) * 1024 * 1024;
    return this.emulateLv(vg, 'lvmlock', {
      disk: o.disk,
      offsetBytes: o.offsetBytes ?? 1024 * 1024,
      sizeBytes: o.sizeBytes ?? defSize,
    });
  }

  /**
   * Emulate an existing (single-segment, single-PV) LV from its metadata, as
   * read on host `hostIndex` (default 1) with `lvs`/`pvs`.
   */
  async emulateLvFromMetadata(vg: string, lv: string, hostIndex = 1): Promise<MapperDevice> {
    const h = this.host(hostIndex);
    const opt = ['--noheadings', '--nosuffix', '--units', 'b', '--config', 'global/use_lvmlockd=0'];
    const seg = await h.lvm(['lvs', '-a', ...opt, '-o', 'seg_pe_ranges,vg_extent_size', `${vg}/${lv}`]);
    if (seg.code !== 0) throw new Error(`lvs failed: ${seg.stderr}`);
    const m = /(\/dev\/\S+):(\d+)-(\d+)\s+(\d+)/.exec(seg.stdout);
    if (!m) throw new Error(`cannot parse segment of ${vg}/${lv}: ${seg.stdout}`);
    const [, pv, first, last, ext] = m;
    const pvr = await h.lvm(['pvs', ...opt, '-o', 'pe_start', pv!]);
    const peStart = Number(pvr.stdout.trim());
    const disk = this.disks.find((d) => d.path === pv);
    if (!disk || !Number.isFinite(peStart)) throw new Error(`unknown PV ${pv} / pe_start ${pvr.stdout}`);
    const extent = Number(ext);
    return this.emulateLv(vg, lv, {
      disk: disk.index,
      offsetBytes: peStart + Number(first) * extent,
      sizeBytes: (Number(last) - Number(first) + 1) * extent,
    });
  }

  /** Remove an emulated /dev/mapper node and detach its loop device. */
  async removeMapper(name: string): Promise<void> {
    const i = this.mappers.findIndex((m) => m.name === name);
    if (i < 0) return;
    const m = this.mappers[i]!;
    fs.rmSync(path.join(this.mapperDir, name), { force: true });
    const tracked = this.tracker.loops.find((l) => l.device === m.loop);
    if (tracked) {
      const err = detachLoopSync(tracked);
      if (err) throw new Error(err);
    }
    this.tracker.forgetLoop(m.loop);
    this.mappers.splice(i, 1);
  }

  /** @internal */
  recordCommand(rec: CommandRecord): void {
    this.commands.push(rec);
    const r = rec.result;
    try {
      fs.appendFileSync(
        this.cmdLog,
        `### host${rec.host} $ ${shellQuote(rec.argv)}\n### exit ${r.code}${r.timedOut ? ' (TIMEOUT)' : ''} ${r.durationMs} ms\n${r.stdout}${r.stderr ? '### stderr\n' + r.stderr : ''}\n`,
      );
    } catch {
      /* dir removed */
    }
  }

  /** Stop everything (daemons, sanlock, holders), detach loops, remove the dir. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    for (const h of this.hosts) {
      try {
        await h.stopDaemon({ timeoutMs: 500 });
      } catch {
        /* fall through to the tracker */
      }
      try {
        await h.stopSanlock({ timeoutMs: 500 });
      } catch {
        /* idem */
      }
    }
    for (const h of this.holders) {
      await stopProc(h, 500, 'SIGKILL');
      this.tracker.forgetPid(h.pid);
    }
    this.destroySync();
  }

  /** Synchronous teardown (used by the process exit hook). Idempotent. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    liveClusters.delete(this);
    const errors = this.tracker.releaseSync();
    if (errors.length) process.stderr.write(`harness cleanup problems:\n  ${errors.join('\n  ')}\n`);
  }
}
