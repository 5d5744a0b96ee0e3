// Process helpers for the multi-host test harness: run a command with a
// timeout, kill processes by pid (never by name), wait for a pid to go away.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

export interface RunResult {
  /** Exit status; when killed by a signal, 128 + signal number (shell style). */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

export interface RunOptions {
  /** Kill the command (SIGKILL, by pid) after this many ms. Default 60000. */
  timeoutMs?: number;
  /** Environment of the command (complete, not merged). */
  env?: NodeJS.ProcessEnv;
  /** Text written to the command's stdin (stdin is closed afterwards). */
  input?: string;
  cwd?: string;
}

const SIGNUMS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13,
  SIGALRM: 14, SIGTERM: 15, SIGUSR1: 10, SIGUSR2: 12, SIGBUS: 7,
};

/** Run argv[0] with argv[1..] (no shell) and collect its output. Never rejects. */
export function runCommand(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (e) {
      resolve({ code: 127, signal: null, stdout: '', stderr: String(e), timedOut: false, durationMs: 0 });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.stdin!.on('error', () => { /* command closed stdin early */ });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) killPid(child.pid, 'SIGKILL');
    }, timeoutMs);
    let spawnError: Error | null = null;
    child.on('error', (e) => { spawnError = e; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8') + (spawnError ? String(spawnError) : '');
      resolve({
        code: code ?? (signal ? 128 + (SIGNUMS[signal] ?? 0) : (spawnError ? 127 : 255)),
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr,
        timedOut,
        durationMs: Date.now() - started,
      });
    });
  });
}

/** Synchronous variant, for setup/teardown code paths that cannot be async. */
export function runCommandSync(argv: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const started = Date.now();
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: opts.env ?? process.env,
    timeout: opts.timeoutMs ?? 30_000,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return {
    code: r.status ?? (r.signal ? 128 + (SIGNUMS[r.signal] ?? 0) : 127),
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error ? String(r.error) : ''),
    timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT',
    durationMs: Date.now() - started,
  };
}

/** Send a signal to one pid; false if it does not exist (any more). */
export function killPid(pid: number, signal: NodeJS.Signals | 0 = 'SIGTERM'): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True while a process with this pid exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Start time (clock ticks since boot) of a pid, to detect pid reuse; null if gone. */
export function pidStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22 overall
  } catch {
    return null;
  }
}

/** Direct and indirect children of a pid (from /proc), deepest last. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      /* raced with exit */
    }
  }
  const result: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) {
      result.push(c);
      queue.push(c);
    }
  }
  return result;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until the pid is gone (or a zombie); true if it went away in time. */
export async function waitPidGone(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!pidAlive(pid)) return true;
    await sleep(25);
  }
  return !pidAlive(pid);
}

/** Busy-wait variant for synchronous exit handlers. */
export function waitPidGoneSync(pid: number, timeoutMs: number): boolean {
  const end = Date.now() + timeoutMs;
  const sab = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < end) {
    if (!pidAlive(pid)) return true;
    Atomics.wait(sab, 0, 0, 10);
  }
  return !pidAlive(pid);
}

/** Quote argv for display as a shell command line. */
export function shellQuote(argv: string[]): string {
  return argv
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}
