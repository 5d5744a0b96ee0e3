// Daemon logging: every debug line goes to a 4 MiB in-memory ring (lvmlockctl
// --dump), to stdout with -D, and lines at or above the -S level to syslog.

import { sysLog, LOG_DAEMON } from '../util/libc';

export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

const PRIORITY_NAMES: Record<string, number> = {
  emerg: 0, alert: 1, crit: 2, err: 3, error: 3, warning: 4, warn: 4, notice: 5, info: 6, debug: 7,
};

export function syslogPriority(name: string): number {
  return Object.hasOwn(PRIORITY_NAMES, name) ? PRIORITY_NAMES[name]! : LOG_WARNING;
}

export const LOG_DUMP_SIZE = 4 * 1024 * 1024;
/** UTF-16 units of log text gathered before they are copied into the ring. */
const PENDING_FLUSH = 16 * 1024;

/**
 * A byte ring of LOG_DUMP_SIZE: the newest lines overwrite the oldest, as
 * lvmlockd's log_dump buffer. Writing a line is a copy into a preallocated
 * buffer, so logging stays cheap on the lock path however long the daemon runs.
 */
export class LogRing {
  private readonly buf: Buffer;
  private end = 0;          // next write position
  private wrapped = false;

  constructor(readonly capacity = LOG_DUMP_SIZE) {
    this.buf = Buffer.alloc(capacity);
  }

  /** Lines not yet copied into buf: copying a few kilobytes at a time costs less than a copy per line. */
  private pending = '';

  append(text: string): void {
    this.pending += text;
    if (this.pending.length >= PENDING_FLUSH) this.flush();
  }

  /** The ring holds the last `capacity` bytes of the log whatever pieces they were appended in. */
  private flush(): void {
    if (!this.pending) return;
    const text = this.pending;
    this.pending = '';
    if (text.length * 3 <= this.capacity - this.end) {
      // Fits whatever it encodes to (UTF-8 takes at most 3 bytes per UTF-16 unit): no copy.
      this.end += this.buf.write(text, this.end, 'utf8');
      return;
    }
    let data = Buffer.from(text);
    if (data.length > this.capacity) {
      data = data.subarray(data.length - this.capacity);
      data.copy(this.buf, 0);
      this.end = this.capacity;
      this.wrapped = true;
      return;
    }
    const room = this.capacity - this.end;
    if (data.length <= room) {
      data.copy(this.buf, this.end);
      this.end += data.length;
      return;
    }
    data.copy(this.buf, this.end, 0, room);
    data.copy(this.buf, 0, room);
    this.end = data.length - room;
    this.wrapped = true;
  }

  /** Oldest first; the line cut by the wrap point is dropped. */
  text(): string {
    this.flush();
    if (!this.wrapped) return this.buf.toString('utf8', 0, this.end);
    const all = Buffer.concat([this.buf.subarray(this.end), this.buf.subarray(0, this.end)]);
    const firstNewline = all.indexOf(0x0a);
    return firstNewline < 0 ? '' : all.subarray(firstNewline + 1).toString('utf8');
  }
}

export type LogFormat = 'text' | 'json';

const LEVEL_NAMES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

export interface DaemonLogOptions {
  debugToStdout: boolean;
  syslogPriority: number;
  nowSeconds: () => number;
  useSyslog: boolean;
  /** --log-format json: stdout and syslog get one JSON object per line (the ring keeps C's text). */
  format?: LogFormat;
  /** Where syslog lines go; default syslog(3) as "lvmlockd", facility daemon. */
  syslog?: (priority: number, msg: string) => void;
}

export class DaemonLog {
  private readonly ring = new LogRing();
  private prefixSecond = -1;
  private prefix = '';
  private readonly json: boolean;
  private readonly toSyslog: (priority: number, msg: string) => void;

  constructor(private readonly opts: DaemonLogOptions) {
    this.json = opts.format === 'json';
    this.toSyslog = opts.syslog ?? ((p, m) => sysLog('lvmlockd', p, m, LOG_DAEMON));
  }

  debug(msg: string): void { this.line(LOG_DEBUG, msg); }
  error(msg: string): void { this.line(LOG_ERR, msg); }
  warn(msg: string): void { this.line(LOG_WARNING, msg); }

  /** Whether a line of this priority goes anywhere beyond the ring (skip building costly ones). */
  wants(priority: number): boolean {
    return this.opts.debugToStdout || (this.opts.useSyslog && priority <= this.opts.syslogPriority);
  }

  /**
   * A line with structured fields (requests): `msg` in the ring and the text
   * form, msg and fields as one JSON object with --log-format json.
   */
  event(priority: number, msg: string, fields: Record<string, string | number | boolean>): void {
    this.line(priority, msg, fields);
  }

  private line(priority: number, msg: string, fields?: Record<string, string | number | boolean>): void {
    const now = this.opts.nowSeconds();
    if (now !== this.prefixSecond) { this.prefixSecond = now; this.prefix = `${now} `; }
    const text = this.prefix + msg + '\n';
    this.ring.append(text);
    const toSyslog = this.opts.useSyslog && priority <= this.opts.syslogPriority;
    if (!this.opts.debugToStdout && !toSyslog) return;
    const out = this.json ? JSON.stringify({ time: now, level: LEVEL_NAMES[priority] ?? String(priority), msg, ...fields }) : msg;
    if (this.opts.debugToStdout) process.stdout.write(this.json ? out + '\n' : text);
    if (toSyslog) this.toSyslog(priority, out);
  }

  dump(): string {
    return this.ring.text();
  }
}
