// lvmlockctl: the lvmlockd admin tool, wire- and output-compatible with the C
// tool of LVM2 2.03.16 (Debian 12), plus HEAD's test-only
// `--set-remote-lv-lock VG --lv-uuid U --lock-mode M`, plus a `--json` form of
// `--info` (our extension, see docs/lvmlockctl.md).
//
// Behaviour worth knowing (all as in C):
// * always talks to the compiled-in socket /run/lvm/lvmlockd.socket (no env
//   override), one connection per run (two for --kill), hello handshake first;
// * --info/--dump text arrives on the abstract datagram socket (see
//   ../daemon/dump-socket.ts), bound before the request is sent;
// * messages of the tool itself go to stdout (C's log_error is printf); the
//   kill/drop notices go to syslog, or to stderr with -e;
// * the exit status is the C int return value modulo 256 (e.g. "Cannot connect
//   to lvmlockd." = -1 = 255); a negative op_result in a reply is NOT an error;
// * `--force`/`-f` is in the help text but not accepted (usage, status 1).
//
// The parts: lvmlockctl/options.ts (command line), env.ts (injectable
// environment), client.ts (libdaemon client), info-text.ts (C --info format),
// info-json.ts (--info --json), kill.ts (--kill's command); this file runs the
// actions. Exports for tests and other tools: main(), formatInfo(), parseInfo(),
// infoToJson(), LvmlockdConnection, parseKillCommandLine().

import { formatHolders } from './holders-format';
import { formatRequest } from '../protocol/config-tree';
import { DumpReceiver, DumpSocketError } from '../daemon/dump-socket';
import { LOG_EMERG, LOG_WARNING, LOG_INFO } from '../util/libc';
import { Errno } from '../util/errno';
import { defaultEnv, type CliEnv } from './lvmlockctl/env';
import { LvmlockdConnection, lvmlockdOpen, replyInt, replyStr, simpleRequest, type Reply } from './lvmlockctl/client';
import { formatInfo } from './lvmlockctl/info-text';
import { infoToJson } from './lvmlockctl/info-json';
import { getKillCommand, runCommandPipe } from './lvmlockctl/kill';
import { readOptions, type Options } from './lvmlockctl/options';

export { LVMLOCKD_SOCKET, LVM_PATH, type CliEnv } from './lvmlockctl/env';
export { LvmlockdConnection, parseReply, replyInt, replyStr, simpleRequest, type Reply } from './lvmlockctl/client';
export { cScan, formatInfo } from './lvmlockctl/info-text';
export {
  parseInfo, infoToJson,
  type InfoValue, type InfoClientRef, type InfoAction, type InfoLock, type InfoResource, type InfoLockspace, type InfoDocument,
} from './lvmlockctl/info-json';
export { parseKillCommandLine } from './lvmlockctl/kill';
export { SHORT_OPTIONS, LONG_OPTIONS, USAGE } from './lvmlockctl/options';

const NO_LOCKD_RESULT = -1000;
const { EINVAL, EAGAIN, EMSGSIZE, EIO } = Errno;
/** Refuse absurd dump lengths instead of allocating them (C: 1 MiB / 4 MiB buffer). */
const MAX_DUMP_LEN = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Actions

class Tool {
  constructor(readonly env: CliEnv, readonly o: Options) {}

  private sysEmerg(msg: string): void {
    if (this.o.useStderr) this.env.stderr(msg + '\n'); else this.env.syslog(LOG_EMERG, msg);
  }
  private sysWarn(msg: string): void {
    if (this.o.useStderr) this.env.stderr(msg + '\n'); else this.env.syslog(LOG_WARNING, msg);
  }
  /** C's log_error (printf to stdout). With --json, stdout carries only the
   *  document, so these messages go to stderr instead. */
  private log(msg: string): void {
    if (this.o.json) this.env.stderr(msg + '\n'); else this.env.stdout(msg + '\n');
  }

  /** _lvmlockd_send(): config-tree style request with cmd/pid/... keys. */
  private async sendRequest(c: LvmlockdConnection, name: string, keys: Array<[string, string]>): Promise<Reply> {
    const fields: Array<[string, string | number]> = [['request', name], ['cmd', 'lvmlockctl'], ['pid', this.env.pid], ...keys];
    return c.send(formatRequest(fields));
  }

  /** _lvmlockd_result(): [ok, result]. */
  private result(reply: Reply): [boolean, number] {
    if (reply.error) {
      this.log(`lvmlockd_result reply error ${reply.error}`);
      return [false, NO_LOCKD_RESULT];
    }
    if (replyStr(reply, 'response', '') !== 'OK') {
      this.log('lvmlockd_result bad response');
      return [false, NO_LOCKD_RESULT];
    }
    const r = replyInt(reply, 'op_result', NO_LOCKD_RESULT);
    if (r === NO_LOCKD_RESULT) {
      this.log('lvmlockd_result no op_result');
      return [false, NO_LOCKD_RESULT];
    }
    return [true, r];
  }

  async quit(c: LvmlockdConnection): Promise<number> {
    const reply = await c.send(simpleRequest('quit'));
    if (reply.error) {
      this.log(`reply error ${reply.error}`);
      return reply.error;
    }
    return 0;
  }

  async dump(c: LvmlockdConnection, req: 'info' | 'dump'): Promise<number> {
    const got = await this.fetchDump(c, simpleRequest(req));
    if (got.data === null) {
      if (got.empty && req === 'info' && this.o.json) this.env.stdout(infoToJson(''));
      return got.rv;
    }
    const data = got.data;
    if (req === 'info' && this.o.json) {
      this.env.stdout(infoToJson(data));
    } else if ((this.o.info && this.o.dump) || req === 'dump') {
      const nul = data.indexOf(0);
      this.env.stdout((nul >= 0 ? data.subarray(0, nul) : data).toString('latin1') + '\n');
    } else {
      this.env.stdout(formatInfo(data));
    }
    return 0;
  }

  /** --metrics (Prometheus text) and --holders VG (our extensions; a C daemon refuses them). */
  async report(c: LvmlockdConnection, kind: 'metrics' | 'holders'): Promise<number> {
    const request = kind === 'metrics' ? simpleRequest('metrics')
      : formatRequest([['request', 'holders'], ['cmd', 'lvmlockctl'], ['pid', this.env.pid], ['vg_name', this.o.vgName ?? '']]);
    const got = await this.fetchDump(c, request);
    if (got.data === null) {
      if (got.rv < 0) this.env.stderr(`lvmlockd refused the ${kind} request (${got.rv}): ${kind === 'holders' ? 'is the VG started here? ' : ''}is lvmlockd the TypeScript daemon?\n`);
      return got.rv;
    }
    const text = got.data.toString('utf8');
    this.env.stdout(kind === 'metrics' ? text : formatHolders(text, this.o.json));
    return 0;
  }

  /** Sends `request` and receives the dump_len bytes the reply announces on the dump socket. */
  private async fetchDump(c: LvmlockdConnection, request: string): Promise<{ rv: number; data: Buffer | null; empty: boolean }> {
    let rx: DumpReceiver;
    try {
      rx = DumpReceiver.bind(this.env.dumpSocketName ? { name: this.env.dumpSocketName } : {});
    } catch (e) {
      const errno = e instanceof DumpSocketError ? e.errno : 1;
      this.log(`socket error ${-errno}`);
      return { rv: -errno, data: null, empty: false };
    }
    let rv = 0;
    try {
      const reply = await c.send(request);
      if (reply.error) {
        this.log(`reply error ${reply.error}`);
        return { rv: reply.error, data: null, empty: false };
      }
      const result = replyInt(reply, 'result', replyInt(reply, 'op_result', 0));
      const dumpLen = replyInt(reply, 'dump_len', 0);
      if (result < 0) {
        rv = result;
        this.log(`result ${result}`);
      }
      if (dumpLen <= 0) return { rv, data: null, empty: true };
      if (dumpLen > MAX_DUMP_LEN) {
        this.log(`recvfrom error -1 ${EMSGSIZE}`);
        return { rv: -EMSGSIZE, data: null, empty: false };
      }
      try {
        return { rv: 0, data: await rx.receive(dumpLen, { timeoutMs: this.env.dumpTimeoutMs }), empty: false };
      } catch (e) {
        // A timeout is reported as a receive timeout would be in C (EAGAIN).
        const errno = e instanceof DumpSocketError ? (e.syscall === 'timeout' ? EAGAIN : e.errno) : EIO;
        this.log(`recvfrom error -1 ${errno}`);
        return { rv: -errno, data: null, empty: false };
      }
    } finally {
      rx.close();
    }
  }

  private async vgRequest(c: LvmlockdConnection, name: string, extra: Array<[string, string]> = []): Promise<number> {
    const reply = await this.sendRequest(c, name, [['vg_name', this.o.vgName ?? ''], ...extra]);
    const [ok, result] = this.result(reply);
    if (!ok) {
      this.log(`lvmlockd result ${result}`);
      return result;
    }
    return 0;
  }

  async able(c: LvmlockdConnection, req: 'enable_gl' | 'disable_gl'): Promise<number> {
    return this.vgRequest(c, req);
  }

  async drop(c: LvmlockdConnection): Promise<number> {
    const vg = this.o.vgName ?? '';
    this.sysWarn(`Dropping locks for VG ${vg}.`);
    const reply = await this.sendRequest(c, 'drop_vg', [['vg_name', vg]]);
    const [ok, result] = this.result(reply);
    if (!ok) {
      this.log(`lvmlockd result ${result}`);
      return result;
    }
    // C's lvmlockctl ignores op_result here. Our daemon refuses a drop that would
    // release the locks of LVs still locked on this host (only C drops them, see the
    // README's deliberate differences); saying nothing would let the administrator
    // believe the locks are gone.
    if (result === -Errno.EBUSY) {
      this.env.stderr(
        `lvmlockd kept the locks of VG ${vg}: LVs in it are still locked on this host. ` +
          `Deactivate them (or run lvmlockctl --kill ${vg} first when the VG lost its lock storage), then drop again.\n`,
      );
      return result;
    }
    return 0;
  }

  async stopLockspaces(c: LvmlockdConnection): Promise<number> {
    let opts = '';
    if (this.o.waitOpt) opts += 'wait ';
    if (this.o.forceOpt) opts += 'force ';
    const reply = await this.sendRequest(c, 'stop_all', [['opts', opts || 'none']]);
    const [ok, result] = this.result(reply);
    if (!ok) {
      this.log(`lvmlockd result ${result}`);
      return result;
    }
    return 0;
  }

  async setLock(c: LvmlockdConnection): Promise<number> {
    if (this.o.vgName === undefined || this.o.lvUuid === undefined || this.o.lockMode === undefined) {
      this.log('--set-remote-lv-lock requires --lv-uuid and --lock-mode');
      return -EINVAL;
    }
    return this.vgRequest(c, 'set_remote_lv_lock', [['lv_uuid', this.o.lvUuid], ['mode', this.o.lockMode]]);
  }

  async kill(): Promise<number> {
    const vg = this.o.vgName ?? '';
    this.sysEmerg(`lvmlockd lost access to locks in VG ${vg}.`);
    const killCmd = getKillCommand(this.env, vg);
    if (killCmd === null) {
      this.sysEmerg(`Immediately deactivate LVs in VG ${vg}.`);
      this.sysEmerg(`Once VG is unused, run lvmlockctl --drop ${vg}.`);
    }

    let c = await lvmlockdOpen(this.env);
    if (!c) {
      this.log('Cannot connect to lvmlockd for kill_vg.');
    } else {
      const reply = await this.sendRequest(c, 'kill_vg', [['vg_name', vg]]);
      const [ok, result] = this.result(reply);
      if (!ok) this.log(`lvmlockd result ${result} kill_vg`);
      c.close();
    }

    if (killCmd === null) return 0;

    const run = runCommandPipe(killCmd, this.env);
    // C then waits for "pid 0" (any child) and fails with ECHILD.
    if (!run.started) this.log('waitpid error pid 0 10');
    if (!run.started || run.status !== 'ok') {
      this.sysEmerg(`Failed to run VG ${vg} kill command ${killCmd}`);
      this.sysEmerg(`Immediately deactivate LVs in VG ${vg}.`);
      this.sysEmerg(`Once VG is unused, run lvmlockctl --drop ${vg}.`);
      return -1;
    }
    this.sysWarn(`Successful VG ${vg} kill command ${killCmd}`);

    c = await lvmlockdOpen(this.env);
    if (!c) {
      this.sysEmerg(`Failed to connect to lvmlockd to drop locks in VG ${vg}.`);
      return -1;
    }
    let rv = 0;
    const reply = await this.sendRequest(c, 'drop_vg', [['vg_name', vg]]);
    const [ok, result] = this.result(reply);
    if (!ok) {
      this.sysEmerg(`Failed to drop locks in VG ${vg}`);
      rv = result;
    }
    c.close();
    return rv;
  }
}

/** Runs lvmlockctl with `args` (argv without the program name). Resolves with
 *  the C return value (the process exit status is this value & 0xff). */
export async function main(args: readonly string[], envOverrides: Partial<CliEnv> = {}): Promise<number> {
  const env: CliEnv = { ...defaultEnv(), ...envOverrides };
  const parsed = readOptions(args, env);
  if ('exit' in parsed) return parsed.exit;
  const o = parsed.options;
  const tool = new Tool(env, o);

  if (o.killVg) return tool.kill();

  const c = await lvmlockdOpen(env);
  if (!c) {
    env.stdout('Cannot connect to lvmlockd.\n');
    return -1;
  }
  try {
    if (o.quit) return await tool.quit(c);
    if (o.metrics) return await tool.report(c, 'metrics');
    if (o.holders) return await tool.report(c, 'holders');
    if (o.info) return await tool.dump(c, 'info');
    if (o.dump) return await tool.dump(c, 'dump');
    if (o.dropVg) return await tool.drop(c);
    if (o.glEnable) {
      env.syslog(LOG_INFO, `Enabling global lock in VG ${o.vgName}.`);
      return await tool.able(c, 'enable_gl');
    }
    if (o.glDisable) {
      env.syslog(LOG_INFO, `Disabling global lock in VG ${o.vgName}.`);
      return await tool.able(c, 'disable_gl');
    }
    if (o.stopLockspaces) return await tool.stopLockspaces(c);
    if (o.setLock) return await tool.setLock(c);
    return 0;
  } finally {
    c.close();
  }
}

/** Entry point of bin/lvmlockctl. */
export function run(): void {
  // A closed stdout (`lvmlockctl --dump | head`) ends C lvmlockctl with SIGPIPE;
  // end quietly with the status a shell shows for that (128 + 13).
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (rv) => finish(rv & 0xff),
    (e) => {
      process.stderr.write(`lvmlockctl: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      finish(1);
    },
  );
}

function finish(code: number): void {
  process.exitCode = code;
  // Flush stdout before leaving; koffi worker threads must not keep us alive.
  process.stdout.write('', () => process.exit(code));
}

if (require.main === module) run();
