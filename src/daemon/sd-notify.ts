// systemd's readiness protocol (sd_notify(3)), which Debian's unmodified
// lvmlockd.service (Type=notify) waits for: newline-separated KEY=VALUE
// fields in one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET
// (a path, or "@name" for the abstract namespace).
//
// The daemon sends READY=1 with MAINPID once its socket accepts, STATUS= with
// its lockspaces whenever their number or names change, and STOPPING=1 when it
// shuts down. Sends are non-blocking and best effort: a missing or full
// receiver never holds the daemon up. Node has no AF_UNIX datagram sockets, so
// this goes through koffi like the dump socket (../util/libc.ts).

import {
  AF_UNIX, SOCK_DGRAM, SOCK_CLOEXEC, MSG_DONTWAIT, MSG_NOSIGNAL,
  sysSocket, sysSendto, sysClose, sysStrerror,
} from '../util/libc';

/** sizeof(sun_path) */
const SUN_PATH_MAX = 108;

/** The sockaddr_un for $NOTIFY_SOCKET, or an error text. */
export function notifyAddress(value: string): Buffer | string {
  if (value.startsWith('@')) {
    const name = Buffer.from(value.slice(1), 'utf8');
    if (name.length === 0 || name.length > SUN_PATH_MAX - 1) return `NOTIFY_SOCKET "${value}": bad abstract name length`;
    const addr = Buffer.alloc(3 + name.length);
    addr.writeUInt16LE(AF_UNIX, 0);
    name.copy(addr, 3);
    return addr;
  }
  if (!value.startsWith('/')) return `NOTIFY_SOCKET "${value}": neither an absolute path nor an @abstract name`;
  const p = Buffer.from(value, 'utf8');
  if (p.length > SUN_PATH_MAX - 1) return `NOTIFY_SOCKET "${value}": path too long`;
  const addr = Buffer.alloc(2 + p.length + 1);
  addr.writeUInt16LE(AF_UNIX, 0);
  p.copy(addr, 2);
  return addr;
}

export class SdNotifier {
  private fd = -1;
  private lastStatus = '';

  private constructor(private readonly addr: Buffer, private readonly onError: (msg: string) => void) {}

  /**
   * The notifier for $NOTIFY_SOCKET, or null when not run by systemd with
   * Type=notify. The variable is removed from `env`, as sd_notify(3)'s
   * unset_environment does, so programs we start (the kill helper) do not
   * notify in our name.
   */
  static fromEnv(env: NodeJS.ProcessEnv, onError: (msg: string) => void): SdNotifier | null {
    const value = env.NOTIFY_SOCKET;
    if (!value) return null;
    delete env.NOTIFY_SOCKET;
    const addr = notifyAddress(value);
    if (typeof addr === 'string') { onError(addr); return null; }
    return new SdNotifier(addr, onError);
  }

  /** Sends the fields as one datagram; false when it could not be sent. */
  send(fields: readonly string[]): boolean {
    if (this.fd < 0) {
      const s = sysSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (s.rv < 0) { this.onError(`sd_notify socket failed: ${sysStrerror(s.errno)}`); return false; }
      this.fd = s.rv;
    }
    const r = sysSendto(this.fd, Buffer.from(fields.join('\n') + '\n', 'utf8'), MSG_DONTWAIT | MSG_NOSIGNAL, this.addr);
    if (r.rv < 0) { this.onError(`sd_notify send failed: ${sysStrerror(r.errno)}`); return false; }
    return true;
  }

  ready(pid: number, status: string): void {
    this.lastStatus = status;
    this.send(['READY=1', `MAINPID=${pid}`, `STATUS=${status}`]);
  }

  /** STATUS=, only when it changed since the last one sent. */
  status(status: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this.send([`STATUS=${status}`]);
  }

  stopping(): void {
    this.send(['STOPPING=1', 'STATUS=stopping']);
  }

  close(): void {
    if (this.fd >= 0) sysClose(this.fd);
    this.fd = -1;
  }
}

/** At most this many lockspace names in STATUS= (systemctl status shows one line). */
const STATUS_NAMES_MAX = 8;

/** "no lockspaces", "1 lockspace: vg1", "3 lockspaces: vg1 vg2 vg3". */
export function lockspaceStatus(vgNames: readonly string[]): string {
  const n = vgNames.length;
  if (n === 0) return 'no lockspaces';
  const shown = vgNames.slice(0, STATUS_NAMES_MAX).join(' ');
  return `${n} lockspace${n === 1 ? '' : 's'}: ${shown}${n > STATUS_NAMES_MAX ? ' …' : ''}`;
}

/** What the notifier needs to see of the daemon. */
export interface NotifiedDaemon {
  /** Names (lvm_<vg>, lvm_global) of the lockspaces that are not stopping. */
  lockspaceNames(): string[];
}

/** How often STATUS= is brought up to date (a timer, never the lock path). */
export const STATUS_INTERVAL_MS = 1000;

/**
 * Tells systemd the daemon is ready and keeps STATUS= current until stop()
 * (which sends STOPPING=1). Nothing happens without $NOTIFY_SOCKET.
 */
export function notifySystemd(daemon: NotifiedDaemon, env: NodeJS.ProcessEnv, pid: number, onError: (msg: string) => void): { stop(): void } {
  const n = SdNotifier.fromEnv(env, onError);
  if (!n) return { stop: () => undefined };
  n.ready(pid, lockspaceStatus(daemon.lockspaceNames()));
  const timer = setInterval(() => n.status(lockspaceStatus(daemon.lockspaceNames())), STATUS_INTERVAL_MS);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      n.stopping();
      n.close();
    },
  };
}
