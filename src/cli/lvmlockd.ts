// `lvmlockd` command line: the C daemon's options, defaults and exit codes.
// Without -f/-D it daemonizes: a detached child runs the daemon and tells the
// parent over a pipe when the socket is ready, so init scripts see the same
// "returns once the daemon is up" behaviour as with the C daemon.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Getopt, cAtoi, type LongOption } from '../util/getopt';
import type { DaemonConfig } from '../daemon/server';
import { syslogPriority, LOG_WARNING } from '../daemon/log';
import { sendDumpText } from '../daemon/dump-sender';
import type { LmType } from '../core/constants';
import { WDMD_DEFAULT_SOCKET, parseWatchdogMode } from '../daemon/wdmd';
import { notifySystemd } from '../daemon/sd-notify';

/** The bracket says what this build is and which lock managers it runs (tests look there). */
export const VERSION_TEXT = 'lvmlockd version: 2.03.16(2) (2022-05-18) [lvmlockd-ts 0.1.0; lock managers: sanlock dlm idm]';
const DEFAULT_PIDFILE = '/run/lvmlockd.pid';
const DEFAULT_SOCKET = '/run/lvm/lvmlockd.socket';
const DEFAULT_ADOPT_FILE = '/run/lvm/lvmlockd.adopt';
const CHILD_ENV = 'LVMLOCKD_TS_DAEMON_CHILD';

function usage(prog: string): string {
  return [
    'Usage:',
    `${prog} [options]`,
    '',
    '  --help | -h',
    '        Show this help information.',
    '  --version | -V',
    '        Show version of lvmlockd.',
    '  --test | -T',
    '        Test mode, do not call lock manager.',
    '  --foreground | -f',
    "        Don't fork.",
    '  --daemon-debug | -D',
    "        Don't fork and print debugging to stdout.",
    '  --pid-file | -p <path>',
    `        Set path to the pid file. [${DEFAULT_PIDFILE}]`,
    '  --socket-path | -s <path>',
    `        Set path to the socket to listen on. [${DEFAULT_SOCKET}]`,
    '  --adopt-file <path>',
    `        Set path to the adopt file. [${DEFAULT_ADOPT_FILE}]`,
    '  --syslog-priority | -S err|warning|debug',
    '        Write log messages from this level up to syslog. [warning]',
    '  --gl-type | -g <str>',
    '        Set global lock type to be dlm|sanlock.',
    '  --host-id | -i <num>',
    '        Set the local sanlock host id.',
    '  --host-id-file | -F <path>',
    '        A file containing the local sanlock host_id.',
    '  --sanlock-timeout | -o <seconds>',
    '        Set the sanlock lockspace I/O timeout.',
    '  --adopt | -A 0|1',
    '        Adopt locks from a previous instance of lvmlockd.',
    '  --watchdog auto|on|off',
    '        Arm the host watchdog through wdmd for sanlock lockspaces:',
    '        auto uses wdmd when it runs, on requires it. [auto]',
    '  --wdmd-socket <path>',
    `        Path of wdmd's socket. [${WDMD_DEFAULT_SOCKET}]`,
    '  --log-format text|json',
    '        Syslog and -D lines as text, or as one JSON object each, with',
    '        every answered request at info level (see -S). [text]',
    '  --metrics-file <path>',
    '        Write Prometheus metrics to this file (for node_exporter\'s',
    '        textfile collector) every --metrics-interval seconds.',
    '  --metrics-interval <seconds>',
    '        How often --metrics-file is written. [15]',
    '',
  ].join('\n');
}

const LONGOPTS: LongOption[] = [
  { name: 'help', hasArg: 'none', val: 'h' },
  { name: 'version', hasArg: 'none', val: 'V' },
  { name: 'test', hasArg: 'none', val: 'T' },
  { name: 'foreground', hasArg: 'none', val: 'f' },
  { name: 'daemon-debug', hasArg: 'none', val: 'D' },
  { name: 'pid-file', hasArg: 'required', val: 'p' },
  { name: 'socket-path', hasArg: 'required', val: 's' },
  { name: 'adopt-file', hasArg: 'required', val: 128 },
  { name: 'gl-type', hasArg: 'required', val: 'g' },
  { name: 'host-id', hasArg: 'required', val: 'i' },
  { name: 'host-id-file', hasArg: 'required', val: 'F' },
  { name: 'adopt', hasArg: 'required', val: 'A' },
  { name: 'syslog-priority', hasArg: 'required', val: 'S' },
  { name: 'sanlock-timeout', hasArg: 'required', val: 'o' },
  { name: 'watchdog', hasArg: 'required', val: 129 },
  { name: 'wdmd-socket', hasArg: 'required', val: 130 },
  { name: 'log-format', hasArg: 'required', val: 131 },
  { name: 'metrics-file', hasArg: 'required', val: 132 },
  { name: 'metrics-interval', hasArg: 'required', val: 133 },
];

/** lock managers this build can serve outside test mode */
const SUPPORTED_GL_TYPES: LmType[] = ['sanlock', 'dlm', 'idm'];

export type ParsedArgs =
  | { kind: 'run'; config: DaemonConfig; foreground: boolean }
  | { kind: 'exit'; code: number; stdout: string; stderr: string };

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv, prog = 'lvmlockd'): ParsedArgs {
  const config: DaemonConfig = {
    testMode: false,
    socketPath: env.LVM_LVMLOCKD_SOCKET || DEFAULT_SOCKET,
    pidFile: env.LVM_LVMLOCKD_PIDFILE || DEFAULT_PIDFILE,
    adoptFile: DEFAULT_ADOPT_FILE,
    adopt: false,
    glType: null,
    hostId: 0,
    hostIdFile: '',
    sanlockTimeout: 0,
    debugToStdout: false,
    syslogPriority: LOG_WARNING,
    watchdog: 'auto',
    wdmdSocket: WDMD_DEFAULT_SOCKET,
    killHelper: env.LVMLOCKD_KILL_HELPER || path.join(__dirname, '..', '..', '..', 'bin', 'lvmlockctl'),
  };
  let foreground = false;
  // -i and -F are listed in lvmlockd's usage; we accept them (C's optstring forgot them).
  const g = new Getopt(argv, { shortopts: 'hVTfDp:s:l:g:S:I:A:o:i:F:', longopts: LONGOPTS, progName: prog });
  let stderr = '';
  for (let ev = g.next(); ev.kind !== 'end'; ev = g.next()) {
    if (ev.kind === 'error') {
      stderr += ev.message;
      return { kind: 'exit', code: 1, stdout: usage(prog), stderr };
    }
    if (ev.kind !== 'option') continue;
    const arg = ev.arg ?? '';
    switch (ev.opt) {
      case 128: config.adoptFile = arg; break;
      case 129: {
        const mode = parseWatchdogMode(arg);
        if (!mode) return { kind: 'exit', code: 1, stdout: '', stderr: `invalid watchdog option '${arg}' (auto, on or off)\n` };
        config.watchdog = mode;
        break;
      }
      case 130: config.wdmdSocket = arg; break;
      case 131:
        if (arg !== 'text' && arg !== 'json') return { kind: 'exit', code: 1, stdout: '', stderr: `invalid log format '${arg}' (text or json)\n` };
        config.observe = { ...config.observe, logFormat: arg };
        break;
      case 132: config.observe = { ...config.observe, metricsFile: arg }; break;
      case 133: {
        const n = cAtoi(arg);
        if (!(n >= 1)) return { kind: 'exit', code: 1, stdout: '', stderr: `invalid metrics interval '${arg}' (whole seconds, 1 or more)\n` };
        config.observe = { ...config.observe, metricsInterval: n };
        break;
      }
      case 'h': return { kind: 'exit', code: 0, stdout: usage(prog), stderr: '' };
      case 'V': return { kind: 'exit', code: 0, stdout: VERSION_TEXT + '\n', stderr: '' };
      case 'T': config.testMode = true; break;
      case 'f': foreground = true; break;
      case 'D': foreground = true; config.debugToStdout = true; break;
      case 'p': config.pidFile = arg; break;
      case 's': config.socketPath = arg; break;
      case 'g': {
        const t = arg as LmType;
        if (!SUPPORTED_GL_TYPES.includes(t)) return { kind: 'exit', code: 1, stdout: '', stderr: 'invalid gl-type option\n' };
        config.glType = t;
        break;
      }
      case 'i': config.hostId = cAtoi(arg); break;
      case 'F': config.hostIdFile = arg; break;
      case 'o': config.sanlockTimeout = cAtoi(arg); break;
      case 'A': config.adopt = cAtoi(arg) !== 0; break;
      case 'S': config.syslogPriority = syslogPriority(arg); break;
      default: return { kind: 'exit', code: 1, stdout: usage(prog), stderr };
    }
  }
  return { kind: 'run', config, foreground };
}

async function runDaemon(config: DaemonConfig, readyFd: number | null): Promise<number> {
  // Loaded here, not at the top: the daemonizing parent only parses the
  // options and waits for its child, which loads the daemon (about 150
  // modules) anyway; loading them in both made a start twice as slow, which
  // shows on slow CPUs (about 10 s more per start in TCG VMs).
  const { Daemon } = require('../daemon/server') as typeof import('../daemon/server');
  const daemon = new Daemon(config, sendDumpText);
  const err = await daemon.start();
  if (err) {
    process.stderr.write(err.message + '\n');
    return err.exitCode;
  }
  const systemd = notifySystemd(
    { lockspaceNames: () => daemon.core.lockspaces.filter((l) => !l.threadStop).map((l) => l.name) },
    process.env, process.pid, (m) => daemon.log.error(m));
  if (readyFd !== null) {
    fs.writeSync(readyFd, 'ready\n');
    fs.closeSync(readyFd);
  }
  const code = await daemon.exited;
  systemd.stop();
  return code;
}

/** Start a detached copy of ourselves and wait until it is serving. */
function daemonize(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [process.argv[1]!, ...argv], {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { ...process.env, [CHILD_ENV]: '3' },
    });
    let errText = '';
    child.stderr!.on('data', (d: Buffer) => { errText += d.toString(); });
    const ready = child.stdio[3] as NodeJS.ReadableStream;
    ready.on('data', () => {
      child.unref();
      (child.stderr as unknown as { destroy(): void }).destroy();
      (ready as unknown as { destroy(): void }).destroy();
      resolve(0);
    });
    child.on('exit', (code) => {
      process.stderr.write(errText);
      resolve(code ?? 1);
    });
  });
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, process.env);
  if (parsed.kind === 'exit') {
    process.stdout.write(parsed.stdout);
    process.stderr.write(parsed.stderr);
    return parsed.code;
  }
  const childFd = process.env[CHILD_ENV];
  if (childFd) {
    delete process.env[CHILD_ENV];
    return runDaemon(parsed.config, Number(childFd));
  }
  if (!parsed.foreground) return daemonize(argv);
  return runDaemon(parsed.config, null);
}

export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; setImmediate(() => process.exit(code)); },
    (e: unknown) => { process.stderr.write(`lvmlockd: ${(e as Error).stack ?? e}\n`); process.exit(1); },
  );
}
