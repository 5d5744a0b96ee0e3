// Daemon logging: every debug line goes to a 4 MiB in-memory ring (lvmlockctl
// --dump), to stdout with -D, and lines at or above the -S level to syslog.

import { syslog } from './libc';

export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

const PRIORITY_NAMES: Record<string, number> = {
  emerg: 0, alert: 1, crit: 2, err: 3, error: 3, warning: 4, warn: 4, notice: 5, info: 6, debug: 7,
};

export function syslogPriority(name: string): number {
  return PRIORITY_NAMES[name] ?? LOG_WARNING;
}

export const LOG_DUMP_SIZE = 4 * 1024 * 1024;

export class DaemonLog {
  private readonly chunks: string[] = [];
  private size = 0;

  constructor(
    private readonly opts: { debugToStdout: boolean; syslogPriority: number; nowSeconds: () => number; useSyslog: boolean },
  ) {}

  debug(msg: string): void { this.line(LOG_DEBUG, msg); }
  error(msg: string): void { this.line(LOG_ERR, msg); }
  warn(msg: string): void { this.line(LOG_WARNING, msg); }

  private line(priority: number, msg: string): void {
    const text = `${this.opts.nowSeconds()} ${msg}\n`;
    this.chunks.push(text);
    this.size += text.length;
    while (this.size > LOG_DUMP_SIZE && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
    if (this.opts.debugToStdout) process.stdout.write(text);
    if (this.opts.useSyslog && priority <= this.opts.syslogPriority) {
      try { syslog(priority, msg); } catch { /* syslog is best effort */ }
    }
  }

  dump(): string {
    return this.chunks.join('');
  }
}
