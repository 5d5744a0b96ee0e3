// The ILM daemon's command line, compatible with propeller's seagate_ilm:
// options are pairs "-X <int>" (-D debug/foreground, -L log file priority,
// -U log file UTC times, -S syslog priority, -E stderr priority, -l mlock,
// -R log replay count), "--version"/"-V" alone; ILM_RUN_DIR and ILM_LOG_DIR
// as there. Our addition: ILM_DRIVE_MAP names the emulated-drive map
// (src/ilm/drives.ts). Without -D (or -D 0) the daemon detaches, as
// propeller's daemon(0, 0) does.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IlmServer, type LogLevel } from '../ilm/server';
import { sysLog, LOG_DAEMON } from '../util/libc';

export const ILM_VERSION = '0.9.3-ts';
const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface IlmArgs {
  debug: number;
  filePriorityMax: number;
  fileUtc: boolean;
  syslogPriorityMax: number;
  stderrPriorityMax: number;
  mlock: number;
  replay: number;
}

export function parseIlmArgs(argv: string[]): IlmArgs | { error: string } | { version: true } {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) return { version: true };
  const a: IlmArgs = { debug: 0, filePriorityMax: 4, fileUtc: false, syslogPriorityMax: 4, stderrPriorityMax: 7, mlock: 0, replay: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const p = argv[i]!;
    if (p[0] !== '-' || p.length !== 2) return { error: `Unknown option ${p}\n` };
    const opt = p[1]!;
    if (i + 1 >= argv.length) return { error: `Option '${opt}' requires arg` };
    const n = Number.parseInt(argv[i + 1]!, 10) || 0;
    switch (opt) {
      case 'D': a.debug = n; break;
      case 'L': a.filePriorityMax = n; break;
      case 'U': a.fileUtc = n !== 0; break;
      case 'S': a.syslogPriorityMax = n; break;
      case 'E': a.stderrPriorityMax = n; break;
      case 'l': a.mlock = n; break;
      case 'R': a.replay = n; break;
      default: return { error: `Unknown Option '${opt}'` };
    }
  }
  return a;
}

function stamp(utc: boolean): string {
  const d = new Date();
  if (utc) return d.toISOString().replace('T', ' ').replace('Z', '');
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * Without -D: start the daemon detached and return once it listens (0), or
 * once it failed (1). Propeller's daemon(0, 0) returns at once, but its child
 * has the program's name from the fork on, so `seagate_ilm; pgrep seagate_ilm`
 * (LVM2's test suite, aux.sh prepare_idm) finds it; ours is a new node process
 * that takes the name only once it runs, so the parent waits for it.
 */
function detach(argv: string[], progName: string, timeoutMs = 120_000): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], {
    detached: true, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, ILM_TS_DETACHED: '1' },
  });
  return new Promise((resolve) => {
    const done = (code: number, why?: string): void => {
      clearTimeout(timer);
      if (why) process.stderr.write(`${progName}: ${why}\n`);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    const timer = setTimeout(() => done(1, `the daemon (pid ${child.pid}) did not start listening in ${timeoutMs / 1000} s`), timeoutMs);
    child.on('message', (m) => { if (m === 'ready') done(0); });
    child.on('exit', (code, sig) => done(1, `the daemon exited before it listened (${sig ?? `exit ${code}`}); see its log`));
    child.on('error', (e) => done(1, `cannot start the daemon: ${e.message}`));
  });
}

export async function runIlm(argv: string[], progName: string): Promise<void> {
  const parsed = parseIlmArgs(argv);
  if ('version' in parsed) {
    process.stdout.write(`${progName} ${ILM_VERSION}\n`);
    return;
  }
  if ('error' in parsed) {
    process.stderr.write(parsed.error);
    process.exit(1);
  }
  const args = parsed;
  if (args.debug === 0 && process.env.ILM_TS_DETACHED !== '1') {
    process.exitCode = await detach(argv, progName);
    return;
  }
  const runDir = process.env.ILM_RUN_DIR || '/run/seagate_ilm';
  const logDir = process.env.ILM_LOG_DIR || '/var/log';
  let logFd = -1;
  try {
    fs.mkdirSync(logDir, { recursive: true });
    logFd = fs.openSync(path.join(logDir, 'seagate_ilm.log'), 'a');
  } catch { /* logging to the file is best effort */ }
  const toStderr = args.debug !== 0;
  const log = (level: LogLevel, line: string): void => {
    const prio = PRIORITY[level];
    const text = `${stamp(args.fileUtc)} ${process.pid} ${level.toUpperCase()} ${line}\n`;
    if (toStderr && prio <= args.stderrPriorityMax) process.stderr.write(text);
    if (logFd >= 0 && prio <= args.filePriorityMax) fs.writeSync(logFd, text);
    if (prio <= args.syslogPriorityMax) sysLog('seagate_ilm', prio, line, LOG_DAEMON);
  };
  // ILM_TS_QUIESCENT_MS: a test knob to shorten the 50 s renewal-failure period.
  const quiescent = Number(process.env.ILM_TS_QUIESCENT_MS);
  const server = new IlmServer({
    runDir, driveMap: process.env.ILM_DRIVE_MAP || null, log,
    quiescentMs: Number.isFinite(quiescent) && quiescent > 0 ? quiescent : undefined,
  });
  try {
    await server.listen();
  } catch (e) {
    log('error', `cannot start: ${(e as Error).message}`);
    process.exit(1);
  }
  if (process.env.ILM_TS_DETACHED === '1' && process.send) {
    process.send('ready');
    process.disconnect();
  }
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    log('info', 'stopping');
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
