// Emulated IDM drives (bin/idm-drive) and ILM daemons (bin/ilmd) for tests:
// each a real process, tracked by pid and killed on cleanup (and on exit of
// the test process). A drive is a socket + a state file in the rig's temp dir.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './daemon-process';

const live = new Set<number>();
process.on('exit', () => {
  for (const pid of live) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
});

export class RigProcess {
  output = '';
  readonly exited: Promise<void>;
  constructor(readonly proc: ChildProcess) {
    live.add(proc.pid!);
    proc.stdout?.on('data', (d: Buffer) => { this.output += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { this.output += d.toString(); });
    this.exited = new Promise((r) => proc.on('exit', () => { live.delete(proc.pid!); r(); }));
  }
  get pid(): number { return this.proc.pid!; }
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!live.has(this.pid)) return;
    try { process.kill(this.pid, signal); } catch { /* gone */ }
    await this.exited;
  }
}

async function waitForSocket(p: string, proc: RigProcess, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try { if (fs.statSync(p).isSocket()) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${p} did not appear; output:\n${proc.output}`);
}

export interface IlmDaemon { proc: RigProcess; runDir: string; socket: string; logDir: string }

export class IdmRig {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockd-idm-'));
  readonly drives: Array<{ socket: string; state: string; proc: RigProcess | null }> = [];
  private readonly procs: RigProcess[] = [];

  /** Starts (or restarts from its state file) drive i. */
  async startDrive(i: number, extra: string[] = []): Promise<string> {
    const socket = path.join(this.dir, `drive${i}.sock`);
    const state = path.join(this.dir, `drive${i}.json`);
    const proc = new RigProcess(spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'idm-drive'), '--socket', socket, '--state', state, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.procs.push(proc);
    try { fs.unlinkSync(socket); } catch { /* fresh */ }
    await waitForSocket(socket, proc);
    this.drives[i] = { socket, state, proc };
    return socket;
  }

  async stopDrive(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.drives[i]?.proc?.kill(signal);
    if (this.drives[i]) this.drives[i]!.proc = null;
  }

  /** Starts an ILM daemon in the foreground with its own run dir. */
  async startIlm(name: string, env: NodeJS.ProcessEnv = {}, bin = 'ilmd'): Promise<IlmDaemon> {
    const runDir = path.join(this.dir, `ilm-${name}`);
    const logDir = path.join(this.dir, `ilm-${name}-log`);
    const socket = path.join(runDir, 'main.sock');
    try { fs.unlinkSync(socket); } catch { /* fresh */ }
    const proc = new RigProcess(spawn(process.execPath, [path.join(REPO_ROOT, 'bin', bin), '-D', '1', '-E', '6'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ILM_RUN_DIR: runDir, ILM_LOG_DIR: logDir, ...env },
    }));
    this.procs.push(proc);
    await waitForSocket(socket, proc);
    return { proc, runDir, socket, logDir };
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) await p.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
