// Thin koffi bindings to the few libc calls Node does not expose: AF_UNIX
// datagram sockets (socket/bind/sendto/recvfrom/poll/close), syslog(3),
// lockf(3) on the pid file, SO_PEERCRED and umask(2).
// The library is loaded lazily, on first use, so that importing this module
// costs nothing for code paths that never need it.
//
// Every wrapper returns the raw C result; when it is negative the errno of
// that very call is returned alongside (koffi keeps errno per call).

/* eslint-disable @typescript-eslint/no-explicit-any */

export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_WAITALL = 0x100;
export const POLLIN = 0x1;

export const LOG_EMERG = 0;
export const LOG_WARNING = 4;
export const LOG_INFO = 6;
export const LOG_USER = 1 << 3;
export const LOG_DAEMON = 3 << 3;

export interface SysResult {
  /** The C return value. */
  rv: number;
  /** errno when rv < 0, else 0. */
  errno: number;
}

interface Native {
  koffi: any;
  socket: any;
  bind: any;
  sendto: any;
  recvfrom: any;
  close: any;
  poll: any;
  openlog: any;
  syslog: any;
  strerror: any;
  lockf: any;
  getsockopt: any;
  umask: any;
}

let native: Native | undefined;

function lib(): Native {
  if (native) return native;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const koffi = require('koffi');
  const c = koffi.load('libc.so.6');
  native = {
    koffi,
    socket: c.func('int socket(int domain, int type, int protocol)'),
    bind: c.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
    sendto: c.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
    recvfrom: c.func('intptr_t recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *addrlen)'),
    close: c.func('int close(int fd)'),
    poll: c.func('int poll(void *fds, uint64_t nfds, int timeout)'),
    openlog: c.func('void openlog(const void *ident, int option, int facility)'),
    syslog: c.func('void syslog(int priority, const char *format, ...)'),
    strerror: c.func('const char *strerror(int errnum)'),
    lockf: c.func('int lockf(int fd, int cmd, long len)'),
    getsockopt: c.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint8_t *len)'),
    umask: c.func('uint32_t umask(uint32_t mask)'),
  };
  return native;
}

function result(rv: number | bigint): SysResult {
  const n = Number(rv);
  return { rv: n, errno: n < 0 ? lib().koffi.errno() : 0 };
}

export function sysSocket(domain: number, type: number, protocol: number): SysResult {
  return result(lib().socket(domain, type, protocol));
}

export function sysBind(fd: number, addr: Buffer): SysResult {
  return result(lib().bind(fd, addr, addr.length));
}

export function sysSendto(fd: number, data: Buffer, flags: number, addr: Buffer): SysResult {
  return result(lib().sendto(fd, data, data.length, flags, addr, addr.length));
}

/** recvfrom(fd, buf, buf.length, flags, NULL, NULL). */
export function sysRecv(fd: number, buf: Buffer, flags: number): SysResult {
  return result(lib().recvfrom(fd, buf, buf.length, flags, null, null));
}

export function sysClose(fd: number): SysResult {
  return result(lib().close(fd));
}

/** poll() on one fd for POLLIN, run on a koffi worker thread so the event loop
 *  stays free. Resolves with poll's return value (>0 readable, 0 timeout, <0 error). */
export function pollInAsync(fd: number, timeoutMs: number): Promise<number> {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  return new Promise((resolve, reject) => {
    lib().poll.async(pfd, 1, Math.max(0, Math.floor(timeoutMs)), (err: unknown, rv: number) => {
      // keep pfd referenced until the call completes
      if (pfd.length !== 8) return;
      if (err) reject(err); else resolve(Number(rv));
    });
  });
}

// openlog() keeps the ident pointer, so the bytes must outlive the call.
let syslogIdent: Buffer | undefined;

/** syslog(3) with an explicit ident (C tools get their program name by default).
 *  The first call's ident and facility stay for the life of the process. */
export function sysLog(ident: string, priority: number, message: string, facility = LOG_USER): void {
  try {
    const n = lib();
    if (!syslogIdent) {
      syslogIdent = Buffer.from(ident + '\0', 'utf8');
      n.openlog(syslogIdent, 0, facility);
    }
    n.syslog(priority, '%s', 'str', message);
  } catch {
    // syslog is best effort, exactly as in C.
  }
}

/** strerror(3) text in the C locale, e.g. "No such file or directory". */
export function sysStrerror(errnum: number): string {
  try {
    return String(lib().strerror(errnum));
  } catch {
    return `Unknown error ${errnum}`;
  }
}

const F_TLOCK = 2;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/** Takes a non-blocking exclusive lockf lock; false when another process holds it. */
export function tryLockFd(fd: number): boolean {
  return lib().lockf(fd, F_TLOCK, 0) === 0;
}

/** The pid of the process at the other end of a connected unix socket, or 0. */
export function peerPid(fd: number): number {
  if (fd < 0) return 0;
  const cred = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(12);
  if (lib().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) return 0;
  return cred.readInt32LE(0);
}

export function setUmask(mask: number): number {
  return lib().umask(mask);
}
