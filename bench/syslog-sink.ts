// A syslog receiver for the lock_lv bench: an AF_UNIX datagram socket bound at
// a path, drained all the time, counting what arrives. Each daemon runs in a
// mount namespace whose /dev/log leads to one of these, so glibc's syslog()
// (C lvmlockd, and ours through koffi) finds a receiver instead of falling back
// to writing /dev/console, which costs some machines ~1 ms per line.
//
// Node has no AF_UNIX datagram sockets: the socket goes through koffi
// (src/util/libc.ts), and waiting is a poll() on a koffi worker thread.

import * as fs from 'node:fs';
import {
  AF_UNIX, SOCK_DGRAM, SOCK_CLOEXEC, MSG_DONTWAIT,
  sysSocket, sysBind, sysRecv, sysClose, pollInAsync,
} from '../src/util/libc';
import { Errno } from '../src/util/errno';

const { EAGAIN, EINTR } = Errno;

/** sockaddr_un for a filesystem path: family, path bytes, NUL. */
function pathAddress(p: string): Buffer {
  const bytes = Buffer.from(p, 'utf8');
  if (bytes.length > 107) throw new RangeError(`socket path too long (${bytes.length} bytes): ${p}`);
  const addr = Buffer.alloc(2 + bytes.length + 1);
  addr.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(addr, 2);
  return addr;
}

export class SyslogSink {
  /** Datagrams (syslog lines) received so far. */
  lines = 0;
  bytes = 0;
  /** The last lines received, for the report. */
  readonly recent: string[] = [];
  private closed = false;
  private readonly loop: Promise<void>;

  private constructor(private readonly fd: number, readonly path: string) {
    this.loop = this.drain();
  }

  static bind(p: string): SyslogSink {
    try { fs.unlinkSync(p); } catch { /* not there */ }
    const s = sysSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s.rv < 0) throw new Error(`syslog sink: socket() failed, errno ${s.errno}`);
    const b = sysBind(s.rv, pathAddress(p));
    if (b.rv < 0) {
      sysClose(s.rv);
      throw new Error(`syslog sink: bind(${p}) failed, errno ${b.errno}`);
    }
    fs.chmodSync(p, 0o666);
    return new SyslogSink(s.rv, p);
  }

  private async drain(): Promise<void> {
    const buf = Buffer.alloc(64 * 1024);
    while (!this.closed) {
      const r = sysRecv(this.fd, buf, MSG_DONTWAIT);
      if (r.rv >= 0) {
        this.lines++;
        this.bytes += r.rv;
        this.recent.push(buf.toString('utf8', 0, r.rv));
        if (this.recent.length > 5) this.recent.shift();
        continue;
      }
      if (r.errno !== EAGAIN && r.errno !== EINTR) throw new Error(`syslog sink: recv failed, errno ${r.errno}`);
      await pollInAsync(this.fd, 100);
    }
  }

  /** Stops draining and closes the socket (waits for the pending poll slice). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.loop.catch(() => undefined);
    sysClose(this.fd);
    try { fs.unlinkSync(this.path); } catch { /* gone */ }
  }
}
