// systemd as PID 1 over an overlay of this machine's / (writes go to a temp
// dir), in private pid/mount/net/uts/ipc/cgroup namespaces with cgroup2, a
// read-only /sys and a /dev holding only the nodes asked for: enough for
// Debian's own units to run, and nothing of the machine is changed. Killing
// the unshare process (SIGKILL) ends everything inside.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function systemdContainerWhyNot(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, overlay mount)';
  if (!fs.existsSync('/lib/systemd/systemd')) return 'systemd is not installed';
  const fsTypes = fs.readFileSync('/proc/filesystems', 'utf8');
  if (!fsTypes.includes('cgroup2')) return 'the kernel has no cgroup2';
  if (!fsTypes.includes('overlay')) return 'the kernel has no overlayfs';
  for (const tool of ['unshare', 'nsenter', 'pgrep']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}

export interface ContainerOptions {
  /** Work directory (created if missing; removed by the caller after stop()). */
  dir: string;
  hostname: string;
  /** Host /dev nodes to bind into the container's /dev (basenames, e.g. "loop3"). */
  devices?: string[];
  /** Block device nodes to create: container path → host node whose major:minor to use. */
  blockNodes?: Record<string, string>;
  /** Files to put into the container before boot: container path → content. */
  files?: Record<string, string>;
  /** Host files to copy in before boot: container path → host path. */
  copies?: Record<string, string>;
}

export class SystemdContainer {
  private constructor(private readonly proc: ChildProcess, readonly init: number) {}

  static async boot(o: ContainerOptions): Promise<SystemdContainer> {
    for (const d of ['upper', 'work', 'root', 'hostdev', 'in']) fs.mkdirSync(path.join(o.dir, d), { recursive: true });
    const put: string[] = [];
    let n = 0;
    for (const [dest, content] of Object.entries(o.files ?? {})) {
      const src = path.join(o.dir, 'in', String(n++));
      fs.writeFileSync(src, content);
      put.push(`mkdir -p "$T/root${path.dirname(dest)}"; cp "${src}" "$T/root${dest}"`);
    }
    for (const [dest, src] of Object.entries(o.copies ?? {})) put.push(`mkdir -p "$T/root${path.dirname(dest)}"; cp "${src}" "$T/root${dest}"`);
    for (const [dest, node] of Object.entries(o.blockNodes ?? {})) {
      const [major, minor] = fs.readFileSync(`/sys/block/${path.basename(node)}/dev`, 'utf8').trim().split(':');
      put.push(`mkdir -p "$T/root${path.dirname(dest)}"; mknod -m 660 "$T/root${dest}" b ${major} ${minor}`);
    }
    const devs = ['null', 'zero', 'urandom', 'random', 'full', 'tty', ...(o.devices ?? [])].join(' ');
    const setup = `set -e
      T="${o.dir}"
      mount --make-rprivate /
      mount -t overlay overlay -o lowerdir=/,upperdir=$T/upper,workdir=$T/work $T/root
      mount -t proc proc $T/root/proc
      mount -t sysfs -o ro sysfs $T/root/sys
      mount -t cgroup2 cgroup2 $T/root/sys/fs/cgroup
      mount --rbind /dev $T/hostdev
      mount -t tmpfs -o mode=755 tmpfs $T/root/dev
      for n in ${devs}; do touch $T/root/dev/$n; mount --bind $T/hostdev/$n $T/root/dev/$n; done
      mkdir $T/root/dev/pts $T/root/dev/shm
      ln -s /proc/self/fd $T/root/dev/fd
      mount -t tmpfs tmpfs $T/root/run
      mount -t tmpfs tmpfs $T/root/tmp
      echo "${o.hostname}" > $T/root/etc/hostname
      ${put.join('\n      ')}
      exec chroot $T/root env container=lvmlockd-ts-test /lib/systemd/systemd --system --unit=basic.target`;
    const proc = spawn('unshare', ['--pid', '--mount', '--uts', '--ipc', '--net', '--cgroup', '--fork', '--kill-child', 'sh', '-c', setup],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    let init = 0;
    for (let i = 0; i < 100 && !init; i++) {
      await sleep(100);
      const kid = spawnSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
      try {
        if (kid && fs.readFileSync(`/proc/${kid}/comm`, 'utf8').trim() === 'systemd') init = Number(kid);
      } catch { /* not yet */ }
    }
    const c = new SystemdContainer(proc, init);
    if (!init) { await c.stop(); throw new Error(`systemd did not start: ${err}`); }
    let state = '';
    for (let i = 0; i < 150; i++) {
      state = c.sh('systemctl is-system-running').stdout.trim();
      if (state === 'running' || state === 'degraded') return c;
      await sleep(200);
    }
    await c.stop();
    throw new Error(`systemd did not finish booting: ${state}`);
  }

  /** A shell command inside (its namespaces and root). */
  sh(cmd: string, timeoutMs = 180_000): { status: number | null; stdout: string; stderr: string } {
    return spawnSync('nsenter', ['-t', String(this.init), '-a', '-r', '-w', 'sh', '-c', cmd], { encoding: 'utf8', timeout: timeoutMs });
  }

  /** Like sh(), but the exit status must be 0; returns stdout trimmed. */
  ok(cmd: string, timeoutMs?: number): string {
    const r = this.sh(cmd, timeoutMs);
    if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}\n${r.stdout}${r.stderr}`);
    return r.stdout.trim();
  }

  /** systemctl show of a few properties. */
  show(unit: string): Record<string, string> {
    return Object.fromEntries(this.ok(`systemctl show ${unit} -p ActiveState -p SubState -p MainPID -p StatusText`)
      .split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await gone;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
