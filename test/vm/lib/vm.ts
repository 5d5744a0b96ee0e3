// Clusters of qemu VMs for the real-kernel test tier.
//
// Each VM boots the cached guest image (image.ts) with its root disk in
// snapshot mode (writes are thrown away), shares the repo read-only over
// virtio-9p (/repo: dist/, bin/, node_modules/), gets a per-VM log dir on the
// host (/out in the guest), the cluster's shared raw disks (virtio-blk,
// cache=none, share-rw: /dev/vdb, /dev/vdc, ...; O_DIRECT writes of one VM are
// read by the others), one NIC on the cluster's hub (10.213.0.N/24) and an
// agent on a virtio-serial port (guest/agent.ts) through which `vm.exec()`
// runs a command and returns exit code, stdout and stderr.
//
// qemu runs under `setpriv --pdeathsig SIGKILL`, every pid is tracked in the
// cluster dir's resources.json, and destroy() (also run from exit/signal
// hooks) kills them by pid and removes the temp dir.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { killPid, pidAlive, waitPidGone, sleep, RunResult } from '../../harness/exec';
import { repoRoot } from '../../harness/cluster';
import { DIR_PREFIX, ResourceTracker, reapStaleRuns } from '../../harness/resources';
import { cacheRoot, ensureImage, ensureSystemdImage, GuestImage } from './image';
import { Accel, AccelVerdict, chooseAccel, KVM_CONSOLE_TIMEOUT_MS, recordKvmBroken, waitFirstBytes } from './accel';
import { Hub } from './hub';

export const VM_DIR_PREFIX = `${DIR_PREFIX}vm-`;

export function vmTmpRoot(): string {
  // not tmpfs: the shared disks are opened with O_DIRECT (cache=none)
  return process.env.LVMLOCKD_VM_TMP ?? '/var/tmp';
}

export interface VmDiskSpec {
  sizeMiB: number;
}

export interface VmClusterOptions {
  vms?: number;
  disks?: VmDiskSpec[];
  memMiB?: number;
  /** Keep the temp dir (logs, disks) after destroy; also env VM_KEEP=1. */
  keep?: boolean;
  name?: string;
  bootTimeoutMs?: number;
  /** Skip the accelerator choice (used for the TCG reboot after silent KVM guests). */
  accel?: AccelVerdict;
  log?: (s: string) => void;
  /** Extra host dirs shared read-only over virtio-9p (mount them in the guest by tag). */
  shares?: VmShare[];
  /**
   * PID 1 of the guests: 'script' (default) is test/vm/guest/vm-init.sh on the
   * base image, root disk in snapshot mode; 'systemd' boots the systemd image
   * (build-image-systemd.sh) with systemd as init, each VM on its own sparse
   * copy of the root file system, so what a test installs survives
   * `vm.reboot()`.
   */
  init?: VmInit;
}

export type VmInit = 'script' | 'systemd';

export interface VmShare {
  tag: string;
  hostPath: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
}

/** The VM cache file that keeps the accelerator verdict between the tier's processes. */
export function accelVerdictFile(): string {
  return path.join(cacheRoot(), 'accel-verdict.json');
}

/** Thrown when guests started under KVM stay silent: the cluster boots again under TCG. */
class KvmSilentError extends Error {}

/** Why qemu cannot run here, or null if it can. */
export function qemuUnavailable(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root';
  const r = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) return 'qemu-system-x86_64 not installed (apt-get install qemu-system-x86)';
  for (const tool of ['debootstrap', 'mkfs.ext4', 'setpriv']) {
    const w = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    if (w.status !== 0) return `${tool} not installed`;
  }
  const dist = path.join(repoRoot(), 'dist', 'test', 'vm', 'guest', 'agent.js');
  if (!fs.existsSync(dist)) return `${dist} missing (npm run build)`;
  return null;
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

interface StartArgs {
  image: GuestImage;
  accel: Accel;
  hubPort: number;
  disks: string[];
  memMiB: number;
  shares: VmShare[];
  init: VmInit;
}

export class Vm {
  pid = 0;
  private startArgs: StartArgs | null = null;
  /** Boots that ended (reboot()); their consoles are kept as console.bootN.log. */
  boots = 0;
  private sock: net.Socket | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private buf = '';
  exited: Promise<number | null> = Promise.resolve(null);
  private exitCode: number | null | undefined = undefined;
  readonly commands: Array<{ argv: string[]; result: RunResult }> = [];

  constructor(
    readonly cluster: VmCluster,
    readonly index: number,
    readonly dir: string,
  ) {}

  get name(): string {
    return `vm${this.index}`;
  }

  get address(): string {
    return `10.213.0.${this.index}`;
  }

  get consoleLog(): string {
    return path.join(this.dir, 'console.log');
  }

  /** Host path of the guest's /out (per-VM log dir). */
  get outDir(): string {
    return path.join(this.dir, 'out');
  }

  alive(): boolean {
    return this.exitCode === undefined && this.pid > 0 && pidAlive(this.pid);
  }

  /** The VM's own root disk (init 'systemd'): a sparse copy of the image's. */
  get rootDisk(): string {
    return path.join(this.dir, 'root.img');
  }

  start(image: GuestImage, accel: Accel, hubPort: number, disks: string[], memMiB: number, shares: VmShare[] = [], init: VmInit = 'script'): void {
    this.startArgs = { image, accel, hubPort, disks, memMiB, shares, init };
    fs.mkdirSync(this.outDir, { recursive: true });
    if (init === 'systemd' && !fs.existsSync(this.rootDisk)) {
      const cp = spawnSync('cp', ['--sparse=always', image.rootfs, this.rootDisk], { encoding: 'utf8' });
      if (cp.status !== 0) throw new Error(`${this.name}: copying the root disk failed: ${cp.stderr}`);
    }
    this.exitCode = undefined;
    this.buf = '';
    const sockPath = path.join(this.dir, 'agent.sock');
    const mac = `52:54:00:d7:00:${this.index.toString(16).padStart(2, '0')}`;
    const append = [
      'console=ttyS0', 'root=/dev/vda', 'rw', 'rootfstype=ext4', 'panic=-1',
      ...(init === 'systemd' ? ['init=/lib/systemd/systemd', 'systemd.show_status=error'] : ['init=/sbin/vm-init']),
      // clocksource=hpet: under TCG the kernel calibrates the TSC against the
      // PIT at boot; on a loaded host the calibration can be off by a factor
      // (a guest clock seen running 6x fast), and leases are all about time.
      // qemu's HPET runs at its advertised rate from the host clock.
      'loglevel=4', 'net.ifnames=0', 'mitigations=off', 'clocksource=hpet',
      `vm.name=${this.name}`, `vm.ip=${this.address}/24`,
    ].join(' ');
    const args = [
      '-name', this.name,
      '-machine', `pc,accel=${accel}`,
      '-cpu', accel === 'kvm' ? 'host' : 'max',
      '-smp', '1', '-m', String(memMiB),
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-kernel', image.kernel, '-initrd', image.initrd, '-append', append,
      '-drive', init === 'systemd'
        ? `file=${this.rootDisk},if=none,id=root,format=raw`
        : `file=${image.rootfs},if=none,id=root,format=raw,snapshot=on`,
      '-device', 'virtio-blk-pci,drive=root',
    ];
    disks.forEach((d, k) => {
      args.push('-drive', `file=${d},if=none,id=shared${k},format=raw,cache=none,aio=threads,file.locking=off`);
      args.push('-device', `virtio-blk-pci,drive=shared${k},share-rw=on,serial=shared${k}`);
    });
    args.push(
      '-netdev', `socket,id=n0,connect=127.0.0.1:${hubPort}`,
      '-device', `virtio-net-pci,netdev=n0,mac=${mac}`,
      '-serial', `file:${this.consoleLog}`,
      '-chardev', `socket,id=agent,path=${sockPath},server=on,wait=off`,
      '-device', 'virtio-serial-pci',
      '-device', 'virtserialport,chardev=agent,name=agent',
      '-virtfs', `local,path=${repoRoot()},mount_tag=repo,security_model=none,readonly=on,id=repo`,
      '-virtfs', `local,path=${this.outDir},mount_tag=out,security_model=none,id=out`,
    );
    for (const sh of shares) {
      args.push('-virtfs', `local,path=${sh.hostPath},mount_tag=${sh.tag},security_model=none,readonly=on,id=${sh.tag}`);
    }
    fs.writeFileSync(path.join(this.dir, 'qemu.cmdline'), ['qemu-system-x86_64', ...args].map((a) => JSON.stringify(a)).join(' ') + '\n');
    const qlog = fs.openSync(path.join(this.dir, 'qemu.log'), 'a');
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'qemu-system-x86_64', ...args], {
      stdio: ['ignore', qlog, qlog],
    });
    fs.closeSync(qlog);
    this.pid = child.pid ?? 0;
    this.cluster.tracker.addPid(this.pid, `${this.name} qemu`);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        for (const p of this.pending.values()) p.reject(new Error(`${this.name}: qemu exited (${code ?? signal})`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  private async connect(deadline: number): Promise<void> {
    const sockPath = path.join(this.dir, 'agent.sock');
    while (Date.now() < deadline) {
      if (!this.alive()) throw new Error(`${this.name}: qemu exited during boot:\n${this.tail()}`);
      if (fs.existsSync(sockPath)) {
        try {
          const s = await new Promise<net.Socket>((resolve, reject) => {
            const c = net.createConnection(sockPath, () => resolve(c));
            c.once('error', reject);
          });
          this.sock = s;
          s.setEncoding('utf8');
          s.on('data', (d: string) => this.onData(d));
          s.on('error', () => {});
          s.on('close', () => {
            this.sock = null;
            for (const p of this.pending.values()) p.reject(new Error(`${this.name}: agent connection closed`));
            this.pending.clear();
          });
          return;
        } catch { /* not yet */ }
      }
      await sleep(100);
    }
    throw new Error(`${this.name}: no agent socket`);
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      let o: Record<string, unknown>;
      try { o = JSON.parse(line) as Record<string, unknown>; } catch { continue; }
      const p = this.pending.get(o.id as number);
      if (p) {
        this.pending.delete(o.id as number);
        p.resolve(o);
      }
    }
  }

  private request(body: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    if (!this.sock) return Promise.reject(new Error(`${this.name}: agent not connected`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: agent did not answer request ${id} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.sock!.write(JSON.stringify({ id, ...body }) + '\n');
    });
  }

  /** Wait until the agent answers a ping (the guest has booted). */
  async waitReady(timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    const deadline = t0 + timeoutMs;
    await this.connect(deadline);
    while (Date.now() < deadline) {
      if (!this.alive()) throw new Error(`${this.name}: qemu exited during boot:\n${this.tail()}`);
      try {
        await this.request({ op: 'ping' }, 1500);
        return Date.now() - t0;
      } catch {
        if (!this.sock) await this.connect(deadline);
      }
    }
    throw new Error(`${this.name}: agent not ready after ${timeoutMs} ms; console:\n${this.tail()}`);
  }

  tail(lines = 40): string {
    try {
      return fs.readFileSync(this.consoleLog, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no console log)';
    }
  }

  /**
   * Run argv in the VM (no shell). Never rejects for a failing command; rejects
   * only when the VM or its agent is gone. The agent kills the command's
   * process group after timeoutMs (default 120 s).
   */
  async exec(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const body: Record<string, unknown> = { op: 'exec', argv, timeoutMs };
    if (opts.input !== undefined) body.input = opts.input;
    if (opts.env) body.env = opts.env;
    const o = await this.request(body, timeoutMs + 30_000);
    if (typeof o.error === 'string') throw new Error(`${this.name}: agent: ${o.error}`);
    const result: RunResult = {
      code: o.code as number,
      signal: (o.signal as NodeJS.Signals | null) ?? null,
      stdout: o.stdout as string,
      stderr: o.stderr as string,
      timedOut: o.timedOut as boolean,
      durationMs: o.durationMs as number,
    };
    this.commands.push({ argv, result });
    this.cluster.record(this, argv, result);
    return result;
  }

  /** `sh -c script` in the VM. */
  sh(script: string, opts: ExecOptions = {}): Promise<RunResult> {
    return this.exec(['sh', '-c', script], opts);
  }

  /** Like exec, but throws (with the output) unless the exit code is 0. */
  async execOk(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const r = await this.exec(argv, opts);
    if (r.code !== 0) {
      throw new Error(`${this.name}: ${argv.join(' ')} → exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    }
    return r;
  }

  shOk(script: string, opts: ExecOptions = {}): Promise<RunResult> {
    return this.execOk(['sh', '-c', script], opts);
  }

  /** [host ms, guest uptime ms], sampled together (midpoint of the round trip). */
  async clockMark(): Promise<[number, number] | null> {
    try {
      const h0 = Date.now();
      const r = await this.exec(['cut', '-d', ' ', '-f1', '/proc/uptime'], { timeoutMs: 10_000 });
      if (r.code !== 0) return null;
      return [(h0 + Date.now()) / 2, Number(r.stdout.trim()) * 1000];
    } catch {
      return null;
    }
  }

  /**
   * Rate of the guest's monotonic clock against the host's over `ms`
   * (1.0 = same speed). Lease timing in the guest is only meaningful near 1.
   */
  async clockRate(ms = 10_000): Promise<number> {
    const up = async (): Promise<[number, number]> => {
      const h0 = Date.now();
      const r = await this.execOk(['cut', '-d', ' ', '-f1', '/proc/uptime']);
      return [(h0 + Date.now()) / 2, Number(r.stdout.trim()) * 1000];
    };
    const [h1, g1] = await up();
    await sleep(ms);
    const [h2, g2] = await up();
    return (g2 - g1) / (h2 - h1);
  }

  /** Write a file in the guest. */
  async writeFile(guestPath: string, content: string): Promise<void> {
    await this.execOk(['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1"', 'sh', guestPath], { input: content });
  }

  /**
   * Reboot the guest as an administrator would (`systemctl reboot`: units
   * stop, file systems unmount) and wait for its agent. qemu runs with
   * -no-reboot, so the guest's reset ends the qemu process; it is started
   * again with the same disks, on the same hub port, and boots from its own
   * root disk (init 'systemd': what was installed or enabled survives).
   * Returns the milliseconds from the command to a ready agent.
   */
  async reboot(timeoutMs = 240_000): Promise<number> {
    const a = this.startArgs;
    if (!a) throw new Error(`${this.name}: not started`);
    if (a.init !== 'systemd') throw new Error(`${this.name}: reboot() needs init 'systemd' (the script init's root is a snapshot)`);
    const t0 = Date.now();
    const oldPid = this.pid;
    const exited = this.exited;
    // the agent is stopped by the shutdown: the answer may never come
    this.request({ op: 'exec', argv: ['systemctl', 'reboot'], timeoutMs: 10_000 }, 15_000).catch(() => undefined);
    const gone = await Promise.race([exited.then(() => true), sleep(timeoutMs / 2).then(() => false)]);
    if (!gone) throw new Error(`${this.name}: the guest did not reset within ${timeoutMs / 2000} s of systemctl reboot:\n${this.tail()}`);
    this.sock?.destroy();
    this.sock = null;
    this.cluster.tracker.forgetPid(oldPid);
    // qemu truncates its -serial file: keep the console of the boot that ended
    this.boots++;
    fs.renameSync(this.consoleLog, path.join(this.dir, `console.boot${this.boots}.log`));
    this.start(a.image, a.accel, a.hubPort, a.disks, a.memMiB, a.shares, a.init);
    await this.waitReady(Math.max(30_000, timeoutMs - (Date.now() - t0)));
    // the guest's uptime starts again: measure its clock rate from this boot on
    this.cluster.clockMarks[this.index - 1] = await this.clockMark();
    return Date.now() - t0;
  }

  /** Ask the guest to power off, then kill qemu by pid. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.pid) return;
    if (this.alive() && this.sock) {
      // flush the guest's file systems (the /out share) and power off
      this.request({ op: 'exec', argv: ['sh', '-c', 'sync; echo o > /proc/sysrq-trigger'], timeoutMs: 2000 }, 2000).catch(() => {});
      await Promise.race([this.exited, sleep(graceMs)]);
    }
    this.sock?.destroy();
    if (pidAlive(this.pid)) {
      killPid(this.pid, 'SIGTERM');
      if (!(await waitPidGone(this.pid, 2000))) killPid(this.pid, 'SIGKILL');
      await waitPidGone(this.pid, 5000);
    }
    this.cluster.tracker.forgetPid(this.pid);
  }
}

const live = new Set<VmCluster>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.tracker.releaseSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of live) c.tracker.releaseSync();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

export class VmCluster {
  readonly vms: Vm[] = [];
  readonly disks: string[] = [];
  readonly hub = new Hub();
  tracker!: ResourceTracker;
  image!: GuestImage;
  accel: Accel = 'tcg';
  accelReason = '';
  bootMs: number[] = [];
  /** [host ms, guest uptime ms] per VM right after boot, for the clock check at destroy */
  clockMarks: Array<[number, number] | null> = [];
  private cmdLog: fs.WriteStream | null = null;
  private destroyed = false;

  private constructor(readonly dir: string, readonly opts: VmClusterOptions) {}

  static async create(opts: VmClusterOptions = {}): Promise<VmCluster> {
    const log = opts.log ?? (() => {});
    reapStaleRuns(vmTmpRoot());
    const image = opts.init === 'systemd' ? await ensureSystemdImage(log) : await ensureImage(log);
    fs.mkdirSync(vmTmpRoot(), { recursive: true });
    const dir = fs.mkdtempSync(path.join(vmTmpRoot(), `${VM_DIR_PREFIX}${process.pid}-${opts.name ?? 'c'}-`));
    const keep = opts.keep ?? process.env.VM_KEEP === '1';
    const c = new VmCluster(dir, opts);
    c.tracker = new ResourceTracker(dir, keep);
    c.image = image;
    live.add(c);
    installHooks();
    try {
      c.cmdLog = fs.createWriteStream(path.join(dir, 'commands.log'));
      const verdict = opts.accel ?? await chooseAccel({
        kernel: image.kernel, initrd: image.initrd, cacheFile: accelVerdictFile(), env: process.env.LVMLOCKD_VM_ACCEL, log,
      });
      c.accel = verdict.accel;
      c.accelReason = verdict.reason;
      log(`VM tier: accelerator ${verdict.accel}: ${verdict.reason}`);
      for (const [k, spec] of (opts.disks ?? [{ sizeMiB: 1024 }]).entries()) {
        const f = path.join(dir, `disk${k}.raw`);
        fs.closeSync(fs.openSync(f, 'w'));
        fs.truncateSync(f, spec.sizeMiB * 1024 * 1024);
        c.disks.push(f);
      }
      const port = await c.hub.start();
      const n = opts.vms ?? 2;
      for (let i = 1; i <= n; i++) {
        const vdir = path.join(dir, `vm${i}`);
        fs.mkdirSync(vdir);
        const vm = new Vm(c, i, vdir);
        c.vms.push(vm);
        vm.start(image, c.accel, port, c.disks, opts.memMiB ?? 1024, opts.shares, opts.init ?? 'script');
        // the hub numbers ports by connection order: wait for this VM's
        const t0 = Date.now();
        while (c.hub.connections() < i) {
          if (!vm.alive()) throw new Error(`${vm.name}: qemu exited at start:\n${fs.readFileSync(path.join(vdir, 'qemu.log'), 'utf8')}`);
          if (Date.now() - t0 > 15_000) throw new Error(`${vm.name}: qemu did not connect to the hub`);
          await sleep(50);
        }
      }
      if (c.accel === 'kvm') {
        const silent = await waitFirstBytes(c.vms.map((vm) => vm.consoleLog), KVM_CONSOLE_TIMEOUT_MS, (i) => c.vms[i]!.alive());
        const dead = c.vms.filter((vm) => !vm.alive());
        if (silent.length > 0 || dead.length > 0) {
          const who = [...silent.map((i) => `vm${i + 1} silent`), ...dead.map((vm) => `${vm.name} exited`)].join(', ');
          const msg = `guests under KVM did not boot (${who} after ${KVM_CONSOLE_TIMEOUT_MS / 1000} s)`;
          if (verdict.forced) throw new Error(`${msg}; LVMLOCKD_VM_ACCEL=kvm forbids the fallback to TCG`);
          throw new KvmSilentError(msg);
        }
      }
      const timeout = opts.bootTimeoutMs ?? (c.accel === 'kvm' ? 60_000 : 180_000);
      c.bootMs = await Promise.all(c.vms.map((vm) => vm.waitReady(timeout)));
      c.clockMarks = await Promise.all(c.vms.map((vm) => vm.clockMark()));
      log(`${n} VM(s) up (${c.accel}) in ${c.bootMs.map((b) => (b / 1000).toFixed(1) + 's').join(', ')}; dir ${dir}`);
      return c;
    } catch (e) {
      await c.destroy();
      if (e instanceof KvmSilentError) {
        const reason = `${e.message}; falling back to TCG for the rest of the run`;
        log(`VM tier: ${reason}`);
        recordKvmBroken(accelVerdictFile(), image.kernel, reason);
        return VmCluster.create({ ...opts, accel: { accel: 'tcg', reason } });
      }
      throw e;
    }
  }

  vm(i: number): Vm {
    const v = this.vms[i - 1];
    if (!v) throw new Error(`no vm${i}`);
    return v;
  }

  /** Cut (or restore) a VM's network cable at the hub. */
  setLink(i: number, up: boolean): void {
    this.hub.setLink(i - 1, up);
  }

  record(vm: Vm, argv: string[], r: RunResult): void {
    if (!this.cmdLog) return;
    const ts = new Date().toISOString();
    this.cmdLog.write(`${ts} ${vm.name}$ ${argv.join(' ')}\n  exit ${r.code}${r.timedOut ? ' (timed out)' : ''} in ${r.durationMs} ms\n`);
    const indent = (s: string): string => s.replace(/\n$/, '').split('\n').map((l) => `  | ${l}`).join('\n') + '\n';
    if (r.stdout) this.cmdLog.write(indent(r.stdout));
    if (r.stderr) this.cmdLog.write('  stderr:\n' + indent(r.stderr));
  }

  /** Copy the guest logs that matter into /out (the host-side vmN/out dir). */
  async collectLogs(): Promise<void> {
    await Promise.all(this.vms.filter((v) => v.alive()).map((v) => v.sh(
      'cp -a /var/log/* /out/ 2>/dev/null; dmesg > /out/dmesg.txt 2>&1; ' +
      'for f in /run/lvmlockd*.log /tmp/*.log; do [ -f "$f" ] && cp "$f" /out/; done; sync',
      { timeoutMs: 15_000 },
    ).catch(() => undefined)));
  }

  /**
   * Guest clock rates over the cluster's life (1.0 = the host's). Logged at
   * destroy; a rate far from 1 makes every lease timing of that VM suspect.
   */
  async clockRates(): Promise<Array<number | null>> {
    return Promise.all(this.vms.map(async (vm, i) => {
      const m0 = this.clockMarks[i];
      if (!m0 || !vm.alive()) return null;
      const m1 = await vm.clockMark();
      return m1 ? (m1[1] - m0[1]) / (m1[0] - m0[0]) : null;
    }));
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      const rates = await this.clockRates();
      const text = rates.map((r, i) => `vm${i + 1} ${r === null ? '?' : r.toFixed(3)}`).join(', ');
      fs.writeFileSync(path.join(this.dir, 'clock-rates.txt'), text + '\n');
      if (rates.some((r) => r !== null && (r < 0.9 || r > 1.1))) this.opts.log?.(`WARNING: guest clock rate off: ${text}`);
    } catch { /* best effort */ }
    try { await this.collectLogs(); } catch { /* best effort */ }
    await Promise.all(this.vms.map((v) => v.stop().catch(() => undefined)));
    await this.hub.close().catch(() => undefined);
    await new Promise<void>((r) => (this.cmdLog ? this.cmdLog.end(() => r()) : r()));
    this.cmdLog = null;
    this.tracker.releaseSync();
    live.delete(this);
  }
}
