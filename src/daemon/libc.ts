// The few libc calls Node does not offer: lockf on the pid file, the peer's
// pid of a unix socket (SO_PEERCRED) and syslog. Loaded lazily through koffi.

import koffi from 'koffi';

let lib: ReturnType<typeof koffi.load> | null = null;
let fns: {
  lockf: (fd: number, cmd: number, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
  openlog: (ident: string | null, option: number, facility: number) => void;
  syslog: (prio: number, fmt: string, ...args: unknown[]) => void;
  umask: (mask: number) => number;
} | null = null;

function load(): NonNullable<typeof fns> {
  if (fns) return fns;
  lib = koffi.load('libc.so.6');
  fns = {
    lockf: lib.func('int lockf(int fd, int cmd, long len)'),
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint8_t *len)'),
    openlog: lib.func('void openlog(const char *ident, int option, int facility)'),
    syslog: lib.func('void syslog(int prio, const char *fmt, ...)'),
    umask: lib.func('uint32_t umask(uint32_t mask)'),
  };
  return fns;
}

const F_TLOCK = 2;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/** Takes a non-blocking exclusive lockf lock; false when another process holds it. */
export function tryLockFd(fd: number): boolean {
  return load().lockf(fd, F_TLOCK, 0) === 0;
}

/** The pid of the process at the other end of a connected unix socket, or 0. */
export function peerPid(fd: number): number {
  if (fd < 0) return 0;
  const cred = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(12);
  if (load().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) return 0;
  return cred.readInt32LE(0);
}

export function setUmask(mask: number): number {
  return load().umask(mask);
}

const LOG_DAEMON = 3 << 3;
let syslogOpen = false;
export function syslog(priority: number, message: string): void {
  const f = load();
  if (!syslogOpen) {
    f.openlog('lvmlockd', 0, LOG_DAEMON);
    syslogOpen = true;
  }
  f.syslog(priority, '%s', 'str', message);
}
