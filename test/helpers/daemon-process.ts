// Starts the built `bin/lvmlockd` in a private temp dir and always cleans up:
// the daemon is killed by its pid and the directory removed.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RawClient } from './raw-client';

/** Repository root (dist/test/helpers → ../../..). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const LVMLOCKD_BIN = path.join(REPO_ROOT, 'bin', 'lvmlockd');

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Daemons still running; killed if the test process exits without cleaning up. */
const live = new Set<number>();
process.on('exit', () => {
  for (const pid of live) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
});

export class DaemonProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<RunResult>;
  private exitedFlag = false;

  constructor(readonly proc: ChildProcess, readonly dir: string, readonly socketPath: string, readonly pidFile: string) {
    proc.stdout?.on('data', (d: Buffer) => { this.stdout += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => {
      if (proc.pid !== undefined) live.add(proc.pid);
      proc.on('exit', (code, signal) => {
        if (proc.pid !== undefined) live.delete(proc.pid);
        this.exitedFlag = true;
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get pid(): number { return this.proc.pid!; }
  get alive(): boolean { return !this.exitedFlag; }

  /** Kills the daemon (by pid) if it still runs. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
    await this.waitExit(3000);
  }

  /** The exit result, or null when the daemon still runs after timeoutMs. */
  async waitExit(timeoutMs: number): Promise<RunResult | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((r) => { timer = setTimeout(() => r(null), timeoutMs); });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export function makeTempDir(prefix = 'lvmlockd-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** `bin/lvmlockd -T -f -s <dir>/s.sock -p <dir>/pid [extra]`; resolves once hello is answered. */
export async function startTestDaemon(dir: string, extra: string[] = [], name = 's'): Promise<DaemonProcess> {
  const socketPath = path.join(dir, `${name}.sock`);
  const pidFile = path.join(dir, `${name}.pid`);
  const proc = spawn(process.execPath, [LVMLOCKD_BIN, '-T', '-f', '-s', socketPath, '-p', pidFile, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LVM_LVMLOCKD_SOCKET: '', LVM_LVMLOCKD_PIDFILE: '' },
  });
  const d = new DaemonProcess(proc, dir, socketPath, pidFile);
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (!d.alive) throw new Error(`lvmlockd exited during start: ${d.stderr}`);
    if (fs.existsSync(socketPath)) {
      try {
        const c = await RawClient.connect(socketPath, 1000);
        const r = await c.request('request = "hello"\n', 1000);
        c.destroy();
        if (r && r.includes('protocol = "lvmlockd"')) return d;
      } catch { /* not yet */ }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await d.kill();
  throw new Error(`lvmlockd did not answer hello: ${d.stderr}`);
}

/** Runs `bin/lvmlockd args` to completion (for option handling tests). */
export function runLvmlockd(args: string[], timeoutMs = 10000): Promise<RunResult> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [LVMLOCKD_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LVM_LVMLOCKD_SOCKET: '', LVM_LVMLOCKD_PIDFILE: '' },
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { try { process.kill(proc.pid!, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    proc.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}
