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
// Exports for tests and other tools: main(), formatInfo(), parseInfo(),
// infoToJson(), LvmlockdConnection, parseKillCommandLine().

import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { formatHolders } from './holders-format';
import { Getopt, cAtoi, type LongOption } from '../util/getopt';
import { FrameDecoder, encodeFrame } from '../protocol/framing';
import { parseConfigTree, formatRequest, ConfigMap, type ConfigValue } from '../protocol/config-tree';
import { DumpReceiver, DumpSocketError, DEFAULT_RECEIVE_TIMEOUT_MS } from '../daemon/dump-socket';
import { sysLog, sysStrerror, LOG_EMERG, LOG_WARNING, LOG_INFO } from '../util/libc';
import { Errno } from '../util/errno';

export const LVMLOCKD_SOCKET = '/run/lvm/lvmlockd.socket';
export const LVM_PATH = '/sbin/lvm';
const NO_LOCKD_RESULT = -1000;
const PATH_MAX = 4096;
const { EINVAL, ECONNRESET, EPROTO, EAGAIN, EMSGSIZE, EIO } = Errno;
/** Refuse absurd dump lengths instead of allocating them (C: 1 MiB / 4 MiB buffer). */
const MAX_DUMP_LEN = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Options

const OPT_SET_REMOTE_LV_LOCK = 128;
const OPT_LV_UUID = 129;
const OPT_LOCK_MODE = 130;
const OPT_JSON = 131;
const OPT_METRICS = 132;
const OPT_HOLDERS = 133;

export const SHORT_OPTIONS = 'hqidE:D:w:k:r:Se';
export const LONG_OPTIONS: readonly LongOption[] = [
  { name: 'help', hasArg: 'none', val: 'h' },
  { name: 'quit', hasArg: 'none', val: 'q' },
  { name: 'info', hasArg: 'none', val: 'i' },
  { name: 'dump', hasArg: 'none', val: 'd' },
  { name: 'wait', hasArg: 'required', val: 'w' },
  { name: 'force', hasArg: 'required', val: 'f' },
  { name: 'kill', hasArg: 'required', val: 'k' },
  { name: 'drop', hasArg: 'required', val: 'r' },
  { name: 'gl-enable', hasArg: 'required', val: 'E' },
  { name: 'gl-disable', hasArg: 'required', val: 'D' },
  { name: 'stop-lockspaces', hasArg: 'none', val: 'S' },
  { name: 'stderr', hasArg: 'none', val: 'e' },
  { name: 'set-remote-lv-lock', hasArg: 'required', val: OPT_SET_REMOTE_LV_LOCK },
  { name: 'lv-uuid', hasArg: 'required', val: OPT_LV_UUID },
  { name: 'lock-mode', hasArg: 'required', val: OPT_LOCK_MODE },
  { name: 'json', hasArg: 'none', val: OPT_JSON },
  { name: 'metrics', hasArg: 'none', val: OPT_METRICS },
  { name: 'holders', hasArg: 'required', val: OPT_HOLDERS },
];

export const USAGE =
  'lvmlockctl options\n' +
  'Options:\n' +
  '--help | -h\n' +
  '      Show this help information.\n' +
  '--quit | -q\n' +
  '      Tell lvmlockd to quit.\n' +
  '--info | -i\n' +
  '      Print lock state information from lvmlockd.\n' +
  '--dump | -d\n' +
  '      Print log buffer from lvmlockd.\n' +
  '--wait | -w 0|1\n' +
  '      Wait option for other commands.\n' +
  '--force | -f 0|1>\n' +
  '      Force option for other commands.\n' +
  '--kill | -k <vgname>\n' +
  '      Kill access to the VG locks are lost (see lvmlockctl_kill_command).\n' +
  '--drop | -r <vgname>\n' +
  '      Clear locks for the VG when it is unused after kill (-k).\n' +
  '--gl-enable | -E <vgname>\n' +
  '      Tell lvmlockd to enable the global lock in a sanlock VG.\n' +
  '--gl-disable | -D <vgname>\n' +
  '      Tell lvmlockd to disable the global lock in a sanlock VG.\n' +
  '--stop-lockspaces | -S\n' +
  '      Stop all lockspaces.\n' +
  '--stderr | -e\n' +
  '      Send kill and drop messages to stderr instead of syslog\n' +
  '--set-remote-lv-lock <vgname> --lv-uuid <uuid> --lock-mode <mode>\n' +
  '      Test only (daemon_test mode): simulate a remote LV lock.\n' +
  '--json\n' +
  '      With --info (implied): print the lock state as a JSON document.\n' +
  '      With --holders: print the holders as a JSON document.\n' +
  '--metrics\n' +
  '      Print lvmlockd\'s metrics in the Prometheus text format.\n' +
  '--holders <vgname>\n' +
  '      List the locks of a VG and the hosts holding them.\n';

interface Options {
  quit: boolean;
  info: boolean;
  dump: boolean;
  json: boolean;
  metrics: boolean;
  holders: boolean;
  waitOpt: number;
  forceOpt: number;
  killVg: boolean;
  dropVg: boolean;
  glEnable: boolean;
  glDisable: boolean;
  useStderr: boolean;
  stopLockspaces: boolean;
  setLock: boolean;
  vgName: string | undefined;
  lvUuid: string | undefined;
  lockMode: string | undefined;
}

// ---------------------------------------------------------------------------
// Environment (injectable for tests)

export interface CliEnv {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** syslog(priority, message); default: libc syslog with ident "lvmlockctl". */
  syslog: (priority: number, message: string) => void;
  /** Stream socket of the daemon; the real tool always uses the default. */
  socketPath: string;
  /** lvm binary used to read lvmlockctl_kill_command. */
  lvmPath: string;
  /** Abstract name of the dump socket. */
  dumpSocketName?: string;
  /** How long to wait for dump datagrams without progress. */
  dumpTimeoutMs: number;
  /** argv[0] for getopt messages. */
  progName: string;
  pid: number;
}

function defaultEnv(): CliEnv {
  return {
    stdout: (s) => { process.stdout.write(Buffer.from(s, 'latin1')); },
    stderr: (s) => { process.stderr.write(Buffer.from(s, 'latin1')); },
    syslog: (p, m) => sysLog('lvmlockctl', p, m),
    socketPath: LVMLOCKD_SOCKET,
    lvmPath: LVM_PATH,
    dumpTimeoutMs: DEFAULT_RECEIVE_TIMEOUT_MS,
    progName: path.basename(process.argv[1] ?? 'lvmlockctl'),
    pid: process.pid,
  };
}

// ---------------------------------------------------------------------------
// libdaemon client

export interface Reply {
  /** errno-style transport error (0 = none), like libdaemon's reply.error. */
  error: number;
  text?: string;
  map?: ConfigMap;
}

/** Lenient reply parsing: the config-tree grammar first, then `key = value` per line. */
export function parseReply(text: string): ConfigMap {
  const parsed = parseConfigTree(text);
  if (parsed.ok) return new ConfigMap(parsed.entries);
  const entries: Array<[string, ConfigValue]> = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_.\-[\]]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const raw = m[2]!;
    if (raw.startsWith('"')) {
      entries.push([m[1]!, raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw.slice(1)]);
    } else if (/^[-+]?\d+$/.test(raw)) {
      entries.push([m[1]!, BigInt(raw)]);
    } else {
      entries.push([m[1]!, raw]);
    }
  }
  return new ConfigMap(entries);
}

/** daemon_reply_str(): the string value or the default. */
export function replyStr(reply: Reply, key: string, def: string): string {
  return reply.map?.str(key) ?? def;
}

/** daemon_reply_int() stored into a C int: 64-bit value truncated to 32 bits. */
export function replyInt(reply: Reply, key: string, def: number): number {
  if (!reply.map) return def;
  let v = reply.map.int(key);
  if (v === undefined) {
    const s = reply.map.str(key);
    if (s !== undefined && /^[-+]?\d+$/.test(s.trim())) v = BigInt(s.trim());
  }
  if (v === undefined) return def;
  return Number(BigInt.asIntN(32, v));
}

function errnoOf(e: unknown): number {
  const code = (e as { code?: string } | null)?.code;
  if (code && code in osConstants.errno) return (osConstants.errno as Record<string, number>)[code]!;
  const n = (e as { errno?: number } | null)?.errno;
  return typeof n === 'number' ? Math.abs(n) : 5 /* EIO */;
}

/** One libdaemon stream connection: strictly one request, one reply. */
export class LvmlockdConnection {
  private readonly decoder = new FrameDecoder();
  private pending: Array<(r: Reply) => void> = [];
  private queued: Reply[] = [];
  private dead = 0;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      for (const ev of this.decoder.push(d)) {
        const r: Reply = ev.kind === 'message'
          ? { error: 0, text: ev.text, map: parseReply(ev.text) }
          : { error: EPROTO };
        this.deliver(r);
      }
    });
    const fail = (err: number) => {
      if (!this.dead) this.dead = err;
      const waiting = this.pending;
      this.pending = [];
      for (const w of waiting) w({ error: this.dead });
    };
    sock.on('error', (e) => fail(errnoOf(e)));
    sock.on('end', () => fail(ECONNRESET));
    sock.on('close', () => fail(ECONNRESET));
  }

  private deliver(r: Reply): void {
    const w = this.pending.shift();
    if (w) w(r); else this.queued.push(r);
  }

  /** Connects; resolves with the connection or the connect errno. */
  static connect(socketPath: string): Promise<LvmlockdConnection | number> {
    return new Promise((resolve) => {
      const sock = net.createConnection({ path: socketPath });
      const onError = (e: Error) => { sock.destroy(); resolve(errnoOf(e)); };
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.removeListener('error', onError);
        resolve(new LvmlockdConnection(sock));
      });
    });
  }

  /** Sends one message body (must end in "\n") and waits for the reply. */
  send(body: string): Promise<Reply> {
    return new Promise((resolve) => {
      if (this.dead && this.queued.length === 0) { resolve({ error: this.dead }); return; }
      if (!this.dead) {
        this.sock.write(encodeFrame(body), (err) => {
          if (err && !this.dead) this.dead = errnoOf(err);
        });
      }
      // Like libdaemon, whatever message arrives next (even one that was sent
      // unsolicited before this request) is taken as the reply.
      const q = this.queued.shift();
      if (q) { resolve(q); return; }
      this.pending.push(resolve);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

/** The body daemon_send_simple() writes: `request = "name"`. */
export function simpleRequest(name: string): string {
  return `request = "${name}"\n`;
}

/** lvmlockd_open(): connect + hello. Messages of libdaemon go to stderr. */
async function lvmlockdOpen(env: CliEnv): Promise<LvmlockdConnection | null> {
  const c = await LvmlockdConnection.connect(env.socketPath);
  if (typeof c === 'number') {
    // libdaemon of 2.03.16 reports this with log_sys_error (HEAD: debug only).
    env.stderr(`${env.socketPath}: connect failed: ${sysStrerror(c)}\n`);
    return null;
  }
  const r = await c.send(simpleRequest('hello'));
  if (r.error || replyStr(r, 'response', 'unknown') !== 'OK') {
    env.stderr(`Daemon lvmlockd returned error ${r.error}\n`);
    c.close();
    return null;
  }
  const protocol = replyStr(r, 'protocol', '\0');
  if (protocol !== 'lvmlockd') {
    env.stderr(`Daemon lvmlockd: requested protocol lvmlockd != ${protocol === '\0' ? '' : protocol}\n`);
    c.close();
    return null;
  }
  const version = replyInt(r, 'version', 0);
  if (version !== 1) {
    env.stderr(`Daemon lvmlockd: requested protocol version 1 != ${version}\n`);
    c.close();
    return null;
  }
  return c;
}

// ---------------------------------------------------------------------------
// `info` text -> lvmlockctl --info output (C-compatible)

/** A sscanf work-alike for the %s/%u/%d formats lvmlockctl uses. %s reads at most
 *  size-1 bytes and skips the rest of the word (HEAD's szscanf; 2.03.16 overflowed).
 *  Returns the converted values in order; missing ones are undefined (the C
 *  variable keeps its zero initialiser). */
export function cScan(input: string, format: string, sizes: number[] = []): Array<string | number | undefined> {
  const out: Array<string | number | undefined> = [];
  let fi = 0;
  let ii = 0;
  let si = 0;
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
  const conversions = (format.match(/%[sud]/g) ?? []).length;
  let stopped = false;
  while (fi < format.length && !stopped) {
    const f = format[fi]!;
    if (f === '%') {
      const conv = format[fi + 1];
      fi += 2;
      if (conv === 's') {
        const size = sizes[si++] ?? 65;
        while (isSpace(input[ii])) ii++;
        let word = '';
        while (ii < input.length && !isSpace(input[ii])) word += input[ii++];
        if (!word) { stopped = true; break; }
        out.push(word.slice(0, size - 1));
      } else {
        const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(input.slice(ii));
        if (!m) { stopped = true; break; }
        ii += m[0].length;
        let v = BigInt(m[2]!);
        if (conv === 'u') {
          const max = (1n << 64n) - 1n;
          if (v > max) v = max;
          else if (m[1] === '-') v = BigInt.asUintN(64, -v);
          out.push(Number(BigInt.asUintN(32, v)));
        } else {
          if (m[1] === '-') v = -v;
          const max = (1n << 63n) - 1n;
          const min = -(1n << 63n);
          if (v > max) v = max;
          if (v < min) v = min;
          out.push(Number(BigInt.asIntN(32, v)));
        }
      }
    } else if (isSpace(f)) {
      while (isSpace(input[ii])) ii++;
      fi++;
    } else if (input[ii] === f) {
      fi++;
      ii++;
    } else {
      break;
    }
  }
  while (out.length < conversions) out.push(undefined);
  return out;
}

const S = (v: string | number | undefined): string => (typeof v === 'string' ? v : '');
const U = (v: string | number | undefined): number => (typeof v === 'number' ? v : 0);

const NAME = 65; // MAX_NAME + 1
const SHORT = 4; // r_type, mode, rt

/** Formats the raw `info` text exactly like C lvmlockctl --info. Input bytes are
 *  taken as latin1 so the output is byte-exact; write the result as latin1. */
export function formatInfo(raw: Buffer | string): string {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const clients: Array<{ id: number; pid: number; name: string }> = [];
  let firstLs = true;
  let rName = '';
  let rType = '';
  let out = '';

  const findClient = (id: number): [number, string] => {
    for (const c of clients) if (c.id === id) return [c.pid, c.name];
    return [0, ''];
  };

  const lineOf = (line: string): void => {
    // `line` is the C string: up to the first NUL, a '\n' terminator included.
    if (line.startsWith('info=structs ')) {
      // only in the raw form
    } else if (line.startsWith('info=client ')) {
      const v = cScan(line, 'info=client pid=%u fd=%d pi=%d id=%u name=%s', [NAME]);
      clients.push({ pid: U(v[0]), id: U(v[3]), name: S(v[4]) });
    } else if (line.startsWith('info=ls ')) {
      // 2.03.16 lines carry vg_sysid (and the 2.03.16 tool scans it); HEAD lines do not.
      const legacy = / vg_sysid=/.test(line);
      const v = legacy
        ? cScan(line, 'info=ls ls_name=%s vg_name=%s vg_uuid=%s vg_sysid=%s vg_args=%s lm_type=%s', [NAME, NAME, NAME, NAME, NAME, NAME])
        : cScan(line, 'info=ls ls_name=%s vg_name=%s vg_uuid=%s vg_args=%s lm_type=%s', [NAME, NAME, NAME, NAME, NAME]);
      const lmType = S(legacy ? v[5] : v[4]);
      if (!firstLs) out += '\n';
      firstLs = false;
      out += `VG ${S(v[1])} lock_type=${lmType} ${S(v[2])}\n`;
      out += `LS ${lmType} ${S(v[0])}\n`;
    } else if (line.startsWith('info=ls_action ')) {
      const v = cScan(line, 'info=ls_action client_id=%u %s %s op=%s', [NAME, NAME, NAME]);
      const [pid, name] = findClient(U(v[0]));
      out += `OP ${S(v[3])} pid ${pid} (${name})\n`;
    } else if (line.startsWith('info=ls_fence_history ')) {
      const v = cScan(line,
        'info=ls_fence_history op=%s result=%d msg_id=%u owner_host_id=%u owner_generation=%u ourkey=%s remkey=%s',
        [NAME, NAME, NAME]);
      const op = S(v[0]);
      if (op === 'fence_result') {
        out += `PR host_id ${U(v[3])} generation ${U(v[4])} key ${S(v[6])} ${U(v[1]) === 0 ? 'removed' : 'failed'}\n`;
      } else if (op === 'fence') {
        out += `PR host_id ${U(v[3])} generation ${U(v[4])} key ${S(v[6])} waiting\n`;
      }
    } else if (line.startsWith('info=r ')) {
      const v = cScan(line, 'info=r name=%s type=%s mode=%s %s version=%u', [NAME, SHORT, SHORT, NAME]);
      rName = S(v[0]);
      rType = S(v[1]);
      if (S(v[2]) !== 'un') return;
      const ver = U(v[4]);
      if (rType === 'gl') out += `LK GL un ver ${ver}\n`;
      else if (rType === 'vg') out += `LK VG un ver ${ver}\n`;
      else if (rType === 'lv') out += `LK LV un ${rName}\n`;
    } else if (line.startsWith('info=lk ')) {
      if (!rName || !rType) {
        out += `format_info_lk error r_name ${rName} r_type ${rType}\n${line}\n`;
        return;
      }
      const v = cScan(line, 'info=lk mode=%s version=%u %s client_id=%u', [SHORT, NAME]);
      const mode = S(v[0]);
      const [pid, name] = findClient(U(v[3]));
      if (rType === 'gl') out += `LK GL ${mode} ver ${U(v[1])} pid ${pid} (${name})\n`;
      else if (rType === 'vg') out += `LK VG ${mode} ver ${U(v[1])} pid ${pid} (${name})\n`;
      else if (rType === 'lv') out += `LK LV ${mode} ${rName}\n`;
    } else if (line.startsWith('info=r_action ')) {
      if (!rName || !rType) {
        out += `format_info_r_action error r_name ${rName} r_type ${rType}\n${line}\n`;
        return;
      }
      const v = cScan(line, 'info=r_action client_id=%u %s %s op=%s rt=%s mode=%s %s %s %s',
        [NAME, NAME, NAME, SHORT, SHORT, NAME, NAME, NAME]);
      const [pid, name] = findClient(U(v[0]));
      const op = S(v[3]);
      const mode = S(v[5]);
      if (op !== 'lock') { out += `OP ${op} pid ${pid} (${name})\n`; return; }
      if (rType === 'gl') out += `LW GL ${mode} ver 0 pid ${pid} (${name})\n`;
      else if (rType === 'vg') out += `LW VG ${mode} ver 0 pid ${pid} (${name})\n`;
      else if (rType === 'lv') out += `LW LV ${mode} ${rName}\n`;
    } else if (line.startsWith('info=r_fence_wait_action ')) {
      if (!rName || !rType) {
        out += `format_info_r_fence_wait_action error r_name ${rName} r_type ${rType}\n${line}\n`;
        return;
      }
      const v = cScan(line,
        'info=r_fence_wait_action client_id=%u flags=%s version=%s op=%s rt=%s mode=%s lm_type=%s result=%d lm_rv=%d owner_host_id=%u owner_generation=%u',
        [NAME, NAME, NAME, SHORT, SHORT, NAME]);
      const [pid, name] = findClient(U(v[0]));
      const op = S(v[3]);
      const mode = S(v[5]);
      const owner = `${U(v[9])}.${U(v[10])}`;
      if (op !== 'lock') { out += `OP ${op} pid ${pid} (${name})\n`; return; }
      if (rType === 'gl') out += `LW GL ${mode} ver 0 pid ${pid} (${name}) fence_owner ${owner}\n`;
      else if (rType === 'vg') out += `LW VG ${mode} ver 0 pid ${pid} (${name}) fence_owner ${owner}\n`;
      else if (rType === 'lv') out += `LW LV ${mode} ${rName} fence_owner ${owner}\n`;
    } else {
      out += `UN ${line}\n`;
    }
  };

  // C splits at '\n' or NUL; the terminator stays in the line (a NUL ends the C
  // string), and an unterminated last piece is dropped.
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || c === '\0') {
      const piece = text.slice(start, i + 1);
      const nul = piece.indexOf('\0');
      lineOf(nul >= 0 ? piece.slice(0, nul) : piece);
      start = i + 1;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// `info` text -> JSON (our extension)

export type InfoValue = string | number;
export interface InfoClientRef { pid: number; name: string }
export interface InfoAction { [k: string]: InfoValue | InfoClientRef | null; client: InfoClientRef | null }
export interface InfoLock { [k: string]: InfoValue | boolean | InfoClientRef | null; persistent: boolean; client: InfoClientRef | null }
export interface InfoResource {
  [k: string]: unknown;
  locks: InfoLock[];
  actions: InfoAction[];
  fence_wait_actions: InfoAction[];
}
export interface InfoLockspace {
  [k: string]: unknown;
  removing: boolean;
  actions: InfoAction[];
  fence_history: Array<Record<string, InfoValue>>;
  resources: InfoResource[];
}
export interface InfoDocument {
  lvmlockctl_json: 1;
  /** "2.03.16" when the lockspace lines carry vg_sysid, "head" when they carry generation, else "unknown". */
  daemon_format: '2.03.16' | 'head' | 'unknown';
  structs: Record<string, InfoValue> | null;
  clients: Array<Record<string, InfoValue>>;
  lockspaces: InfoLockspace[];
  /** Lines that were not understood or appeared out of context, verbatim. */
  unknown_lines: string[];
}

const STRING_KEYS = new Set([
  'ls_name', 'vg_name', 'vg_uuid', 'vg_sysid', 'vg_args', 'lm_type', 'name', 'type', 'mode', 'op', 'rt', 'ourkey', 'remkey',
]);

function typedValue(key: string, v: string): InfoValue {
  if (STRING_KEYS.has(key)) return v;
  if (/^-?\d+$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  if (/^0x[0-9a-f]+$/i.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  return v;
}

/** `info=kind k=v k=v ...` -> [kind, fields]; a word without '=' continues the previous value. */
function splitInfoLine(line: string): [string, Array<[string, string]>] | null {
  const words = line.split(' ').filter((w) => w.length > 0);
  const head = words.shift();
  if (!head || !head.startsWith('info=')) return null;
  const fields: Array<[string, string]> = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) {
      if (fields.length) fields[fields.length - 1]![1] += ' ' + w;
      continue;
    }
    fields.push([w.slice(0, eq), w.slice(eq + 1)]);
  }
  return [head.slice(5), fields];
}

/** Parses the raw `info` text (either daemon version) into a document. */
export function parseInfo(raw: Buffer | string): InfoDocument {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  const doc: InfoDocument = {
    lvmlockctl_json: 1, daemon_format: 'unknown', structs: null, clients: [], lockspaces: [], unknown_lines: [],
  };
  const byId = new Map<number, InfoClientRef>();
  const ref = (id: InfoValue | undefined): InfoClientRef | null =>
    typeof id === 'number' && id !== 0 ? byId.get(id) ?? null : null;
  let ls: InfoLockspace | undefined;
  let r: InfoResource | undefined;

  for (const rawLine of text.split(/[\n\0]/)) {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const split = splitInfoLine(line);
    if (!split) { doc.unknown_lines.push(line); continue; }
    const [kind, pairs] = split;
    const obj: Record<string, InfoValue> = {};
    for (const [k, v] of pairs) if (!(k in obj)) obj[k] = typedValue(k, v);
    switch (kind) {
      case 'structs':
        doc.structs = obj;
        break;
      case 'client': {
        doc.clients.push(obj);
        if (typeof obj['id'] === 'number' && !byId.has(obj['id'])) {
          byId.set(obj['id'], { pid: typeof obj['pid'] === 'number' ? obj['pid'] : 0, name: String(obj['name'] ?? '') });
        }
        break;
      }
      case 'ls': {
        if ('vg_sysid' in obj) doc.daemon_format = '2.03.16';
        else if ('generation' in obj && doc.daemon_format === 'unknown') doc.daemon_format = 'head';
        const name = String(obj['ls_name'] ?? '');
        ls = { ...obj, removing: name.startsWith('REM:'), actions: [], fence_history: [], resources: [] };
        doc.lockspaces.push(ls);
        r = undefined;
        break;
      }
      case 'ls_action':
        if (!ls) { doc.unknown_lines.push(line); break; }
        ls.actions.push({ ...obj, client: ref(obj['client_id']) });
        break;
      case 'ls_fence_history':
        if (!ls) { doc.unknown_lines.push(line); break; }
        ls.fence_history.push(obj);
        break;
      case 'r':
        if (!ls) { doc.unknown_lines.push(line); break; }
        r = { ...obj, locks: [], actions: [], fence_wait_actions: [] };
        ls.resources.push(r);
        break;
      case 'lk': {
        if (!r) { doc.unknown_lines.push(line); break; }
        const flags = typeof obj['flags'] === 'number' ? obj['flags'] : 0;
        r.locks.push({ ...obj, persistent: (flags & 1) !== 0, client: ref(obj['client_id']) });
        break;
      }
      case 'r_action':
        if (!r) { doc.unknown_lines.push(line); break; }
        r.actions.push({ ...obj, client: ref(obj['client_id']) });
        break;
      case 'r_fence_wait_action':
        if (!r) { doc.unknown_lines.push(line); break; }
        r.fence_wait_actions.push({ ...obj, client: ref(obj['client_id']) });
        break;
      default:
        doc.unknown_lines.push(line);
    }
  }
  return doc;
}

export function infoToJson(raw: Buffer | string): string {
  return JSON.stringify(parseInfo(raw), null, 2) + '\n';
}

// ---------------------------------------------------------------------------
// kill command helpers

/** lvmlockctl's own argv splitting of a command string (no shell): words of
 *  alnum/punct characters separated by white space, `\\` and `\<space>` escapes;
 *  any other byte (or a bad escape) ends the parse. Null when there are more
 *  than 32 words (C then runs nothing). */
export function parseKillCommandLine(cmd: string): string[] | null {
  const av: string[] = [];
  let arg = '';
  const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
  const isGraph = (c: string) => { const n = c.charCodeAt(0); return n > 0x20 && n < 0x7f; };
  for (let i = 0; i < cmd.length; i++) {
    if (av.length === 32) return null;
    let c = cmd[i]!;
    if (c === '\0') break;
    if (c === '\\') {
      if (i === cmd.length - 1) break;
      i++;
      c = cmd[i]!;
      if (c === '\\' || isSpace(c)) { arg += c; continue; }
      break;
    }
    if (isGraph(c)) {
      arg += c;
    } else if (isSpace(c)) {
      if (arg) av.push(arg);
      arg = '';
    } else {
      break;
    }
  }
  if (arg) {
    if (av.length >= 32) return null;
    av.push(arg);
  }
  return av;
}

interface CommandRun { started: boolean; output: string; status: 'ok' | 'exit' | 'signal'; code: number }

/** _run_command_pipe + _close_command_pipe: stdin /dev/null, stdout captured, stderr inherited. */
function runCommandPipe(cmd: string, env: CliEnv): CommandRun {
  const av = parseKillCommandLine(cmd);
  if (av === null) return { started: false, output: '', status: 'exit', code: 0 };
  let output = '';
  let status: CommandRun['status'] = 'ok';
  let code = 0;
  if (av.length === 0) {
    // execvp(NULL) in the child fails with EFAULT; the child reports it on the pipe.
    output = 'execvp error 14\n';
    status = 'exit';
    code = 14;
  } else {
    const r = spawnSync(av[0]!, av.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
    if (r.error) {
      const e = errnoOf(r.error);
      output = `execvp error ${e}\n`;
      status = 'exit';
      code = e;
    } else {
      output = (r.stdout ?? Buffer.alloc(0)).toString('latin1');
      if (r.signal) { status = 'signal'; code = 0; }
      else if (r.status) { status = 'exit'; code = r.status; }
    }
  }
  if (status === 'exit') env.stdout(`child exit error ${code}\n`);
  else if (status === 'signal') env.stdout('child exit from signal\n');
  return { started: true, output, status, code };
}

function getKillCommand(env: CliEnv, vgName: string): string | null {
  const configCmd = `${env.lvmPath} config --typeconfig full global/lvmlockctl_kill_command`.slice(0, PATH_MAX - 1);
  // In C the "child exit ..." note of the config command is printed after the
  // verdict on its output; collect it and print it at the end.
  const held: string[] = [];
  const sub: CliEnv = { ...env, stdout: (s) => held.push(s) };
  const run = runCommandPipe(configCmd, sub);
  const flush = () => { for (const s of held) env.stdout(s); };
  if (!run.started) {
    env.stdout(`failed to run ${configCmd}\n`);
    return null;
  }
  const nl = run.output.indexOf('\n');
  const line = (nl >= 0 ? run.output.slice(0, nl + 1) : run.output).slice(0, PATH_MAX - 1);
  if (line.length === 0) {
    env.stdout(`no output from ${configCmd}\n`);
    flush();
    return null;
  }
  const m = /^lvmlockctl_kill_command="([^\n"]{1,256})/.exec(line);
  if (!m) {
    env.stdout(`unrecognized config value from ${configCmd}\n`);
    flush();
    return null;
  }
  const val = m[1]!;
  if (val[0] === ' ') {
    env.stdout(`invalid config value from ${configCmd}\n`);
    flush();
    return null;
  }
  if (val[0] !== '/') {
    env.stdout('lvmlockctl_kill_command must be full path\n');
    flush();
    return null;
  }
  env.stdout(`Found lvmlockctl_kill_command: ${val}\n`);
  flush();
  return `${val} ${vgName}`.slice(0, PATH_MAX - 1);
}

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
    this.sysWarn(`Dropping locks for VG ${this.o.vgName}.`);
    return this.vgRequest(c, 'drop_vg');
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

type ParseOutcome = { exit: number } | { options: Options };

function readOptions(args: readonly string[], env: CliEnv): ParseOutcome {
  const o: Options = {
    quit: false, info: false, dump: false, json: false, metrics: false, holders: false, waitOpt: 1, forceOpt: 0,
    killVg: false, dropVg: false, glEnable: false, glDisable: false, useStderr: false,
    stopLockspaces: false, setLock: false, vgName: undefined, lvUuid: undefined, lockMode: undefined,
  };
  if (args.length === 0) {
    env.stdout(USAGE);
    return { exit: 0 };
  }
  const g = new Getopt(args, { shortopts: SHORT_OPTIONS, longopts: LONG_OPTIONS, progName: env.progName });
  for (let ev = g.next(); ev.kind !== 'end'; ev = g.next()) {
    if (ev.kind === 'error') {
      env.stderr(ev.message);
      env.stdout(USAGE);
      return { exit: 1 };
    }
    if (ev.kind !== 'option') continue;
    const arg = ev.arg ?? '';
    switch (ev.opt) {
      case 'h': env.stdout(USAGE); return { exit: 0 };
      case 'q': o.quit = true; break;
      case 'i': o.info = true; break;
      case 'd': o.dump = true; break;
      case 'w': o.waitOpt = cAtoi(arg); break;
      case 'k': o.killVg = true; o.vgName = arg; break;
      case 'r': o.dropVg = true; o.vgName = arg; break;
      case 'E': o.glEnable = true; o.vgName = arg; break;
      case 'D': o.glDisable = true; o.vgName = arg; break;
      case 'S': o.stopLockspaces = true; break;
      case 'e': o.useStderr = true; break;
      case OPT_SET_REMOTE_LV_LOCK: o.setLock = true; o.vgName = arg; break;
      case OPT_LV_UUID: o.lvUuid = arg; break;
      case OPT_LOCK_MODE: o.lockMode = arg; break;
      case OPT_JSON: o.json = true; o.info = true; break;
      case OPT_METRICS: o.metrics = true; break;
      case OPT_HOLDERS: o.holders = true; o.vgName = arg; break;
      default:
        // includes 'f' / --force: listed in the help text, never handled (as in C)
        env.stdout(USAGE);
        return { exit: 1 };
    }
  }
  return { options: o };
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
