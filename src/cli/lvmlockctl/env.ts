// lvmlockctl's environment: where it writes, the daemon's socket, the lvm
// binary for the kill command; injectable for tests.

import * as path from 'node:path';
import { DEFAULT_RECEIVE_TIMEOUT_MS } from '../../daemon/dump-socket';
import { sysLog } from '../../util/libc';

export const LVMLOCKD_SOCKET = '/run/lvm/lvmlockd.socket';
export const LVM_PATH = '/sbin/lvm';

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

export function defaultEnv(): CliEnv {
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
