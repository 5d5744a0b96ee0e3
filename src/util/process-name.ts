// Makes a Node process look like the C program it replaces: `ps`, `pgrep`,
// `killall`, `systemctl status` and /proc/PID/comm show "lvmlockd", not "node".
//
// Two names matter. The kernel's comm (15 bytes, /proc/PID/comm, what pgrep,
// killall and `ps -o comm` match) and the command line (/proc/PID/cmdline,
// what `ps -o args`, `pgrep -a` and systemd show). Node's process.title
// rewrites the command line in place and also sets comm from it, truncated:
// a title with arguments would leave comm as "lvmlockd -f -g " and break
// `pgrep -x lvmlockd`. So the title carries the arguments and comm is then
// written on its own through /proc/self/comm (allowed for one's own thread
// group since Linux 2.6.33; no FFI needed, so it costs the CLIs nothing).
//
// Only the main thread is renamed; libuv's pool threads keep their names,
// which is what pgrep and killall expect (they read the thread group leader).

import * as fs from 'node:fs';

/** The kernel keeps at most TASK_COMM_LEN - 1 = 15 bytes of comm. */
export const COMM_MAX = 15;

/**
 * Names this process `name` (comm) with `name args...` as its command line.
 * Best effort: a failure leaves at worst the title, never throws.
 */
export function setProcessName(name: string, args: readonly string[] = []): void {
  try {
    process.title = [name, ...args].join(' ');
  } catch {
    // no title support on this platform: comm below still matters most
  }
  try {
    fs.writeFileSync('/proc/self/comm', name.slice(0, COMM_MAX));
  } catch {
    // no /proc (or not Linux): the title alone has to do
    try { process.title = name; } catch { /* nothing left to try */ }
  }
}
