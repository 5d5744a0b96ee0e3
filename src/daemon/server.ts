// The daemon shell: pid file, listening socket, client connections, signals.
// It turns socket bytes into core requests and core replies into socket bytes.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { FrameDecoder, frameText } from '../protocol/framing';
import { LockdCore, newGlobalLockChoice, type CorePorts } from '../core/lockd';
import { DlmLockManager } from '../lm/dlm/dlm-lm';
import { LibDlm, LibDlmControl, onLibdlmLoadError } from '../lm/dlm/libdlm';
import { systemConfigfs } from './configfs';
import type { LmType } from '../core/constants';
import type { LockManager } from '../lm/types';
import { TestLockManager } from '../lm/test/test-lm';
import { SanlockLockManager } from '../lm/sanlock/sanlock-lm';
import { sanlockMachineDeps } from './sanlock-deps';
import { IdmLockManager } from '../lm/idm/idm-lm';
import { idmManagerDeps } from './idm-deps';
import { DirectDisk } from '../io/direct-disk';
import { RealClock } from '../io/clock';
import { systemRandom } from '../io/system-random';
import { DaemonLog } from './log';
import { AdoptStateFile } from './adopt-state';
import { parseAdoptFile } from './adopt-file';
import { lvDmUuid, readActiveLvs } from './dm-active';
import type { AdoptVg } from '../core/adopt';
import { peerPid, tryLockFd } from '../util/libc';
import { WdmdWatchdog, type WatchdogMode } from './wdmd';
import { Observer, type ObserveConfig } from './observe';
import * as os from 'node:os';

export interface DaemonConfig {
  testMode: boolean;
  socketPath: string;
  pidFile: string;
  adoptFile: string;
  adopt: boolean;
  glType: LmType | null;
  hostId: number;
  hostIdFile: string;
  sanlockTimeout: number;
  debugToStdout: boolean;
  syslogPriority: number;
  /** --watchdog: arm wdmd for sanlock lockspaces (auto: when wdmd runs). */
  watchdog: WatchdogMode;
  wdmdSocket: string;
  /** Program run with `--kill <vg>` when a lockspace's lease storage fails. */
  killHelper: string;
  /** --log-format, --metrics-file, --metrics-interval (defaults: text, none, 15 s). */
  observe?: Partial<ObserveConfig>;
}

export type StartError = { exitCode: number; message: string };

/** Connections beyond this are closed at once: the daemon must stay responsive. */
const MAX_CLIENTS = 4096;
/** Requests a client may have queued while one is being served. */
const MAX_QUEUED_PER_CLIENT = 16;

interface Conn {
  id: number;
  socket: net.Socket;
  decoder: FrameDecoder;
  queue: string[];
  busy: boolean;
  closed: boolean;
  /** performance.now() when the request being served was read (metrics). */
  startedMs: number;
}

export class Daemon {
  readonly log: DaemonLog;
  readonly core: LockdCore;
  readonly observer: Observer;
  private server: net.Server | null = null;
  private pidFd = -1;
  private readonly conns = new Map<number, Conn>();
  private nextPi = 2;
  private stopping = false;
  /** --adopt 1: sanlock host names of our delta leases, for the next instance. */
  private adoptState: AdoptStateFile | null = null;
  /** Client requests wait while the startup adoption runs (lvmlockd serves none meanwhile). */
  private adopting = false;
  /** Resolves when the startup adoption (if any) is over. */
  adoptionDone: Promise<void> = Promise.resolve();
  private exitResolve: ((code: number) => void) | null = null;
  readonly exited: Promise<number>;

  constructor(readonly config: DaemonConfig, private readonly sendDump: (text: string) => Promise<number>) {
    this.exited = new Promise((resolve) => { this.exitResolve = resolve; });
    this.log = new DaemonLog({
      debugToStdout: config.debugToStdout,
      syslogPriority: config.syslogPriority,
      nowSeconds: () => Math.floor(Date.now() / 1000),
      useSyslog: !config.debugToStdout,
      format: config.observe?.logFormat ?? 'text',
    });
    this.observer = new Observer({
      lockspaces: () => this.core.lockspaces,
      clientsConnected: () => this.conns.size,
      localHost: (ls) => ({ hostId: ls.managed.hostId || ls.hostId, generation: ls.managed.stats?.().generation ?? 0 }),
    }, this.log, { logFormat: 'text', metricsFile: '', metricsInterval: 15, ...config.observe }, os.hostname());
    const glChoice = newGlobalLockChoice();
    const managers: Partial<Record<LmType, LockManager>> = {};
    if (config.testMode) {
      const hooks = {
        deviceExists: (p: string) => fs.existsSync(p),
        log: (line: string) => this.log.debug(line),
        sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
      };
      managers.dlm = new TestLockManager('dlm', glChoice, hooks, () => this.defaultHostId());
      managers.sanlock = new TestLockManager('sanlock', glChoice, hooks, () => this.defaultHostId());
    } else {
      // sanlock VGs on our own lease engine; dlm VGs on the kernel DLM (libdlm);
      // idm VGs through an ILM daemon.
      onLibdlmLoadError((m) => this.log.error(m));
      managers.dlm = new DlmLockManager({
        kernel: new LibDlm(),
        control: new LibDlmControl(),
        configfs: systemConfigfs,
        debug: (l) => this.log.debug(l),
        error: (l) => this.log.error(l),
        sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
      });
      if (config.adopt) this.adoptState = AdoptStateFile.load(adoptStatePath(config.adoptFile), (m) => this.log.error(m));
      managers.sanlock = new SanlockLockManager({
        glChoice,
        ioTimeout: config.sanlockTimeout,
        defaultHostId: () => this.defaultHostId(),
        lockspaceCount: () => this.core.lockspaces.length,
        debug: (l) => this.log.debug(l),
        error: (l) => this.log.error(l),
        sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
        clock: new RealClock(),
        random: systemRandom(),
        openDisk: (p) => DirectDisk.open(p),
        ...sanlockMachineDeps(),
        ...(this.adoptState ? { adoptNames: this.adoptState } : {}),
        watchdog: new WdmdWatchdog(config.watchdog, config.wdmdSocket, (m) => this.log.error(m)),
      });
      managers.idm = new IdmLockManager(idmManagerDeps({ debug: (l) => this.log.debug(l), error: (l) => this.log.error(l) }));
    }
    const ports: CorePorts = {
      send: (id, text) => this.sendReply(id, text),
      sendDump: (text) => this.sendDump(text),
      dumpLog: () => this.log.dump(),
      debug: (l) => this.log.debug(l),
      error: (l) => this.log.error(l),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      defer: (fn) => setImmediate(fn),
      nowMs: () => performance.now(),
      quit: () => this.shutdown(0),
      locksChanged: () => this.writeAdoptFile(),
      killVg: (vg) => this.runKillHelper(vg),
      answered: (act, cl) => this.observer.answered(act, cl, this.conns.get(act.clientId)?.startedMs ?? performance.now()),
      report: (kind, vg) => this.observer.report(kind, vg),
    };
    this.core = new LockdCore(ports, { testMode: config.testMode, glType: config.glType, managers, glChoice });
  }

  private defaultHostId(): number {
    if (this.config.hostId) return this.config.hostId;
    if (this.config.hostIdFile) return readHostIdFile(this.config.hostIdFile);
    return 0;
  }

  /** Pid file and socket; an error value when another instance runs or paths are unusable. */
  async start(): Promise<StartError | null> {
    const pidErr = this.lockPidFile();
    if (pidErr) return pidErr;
    const sockErr = await this.listen();
    if (sockErr) return sockErr;
    process.on('SIGTERM', () => this.onSigterm());
    process.on('SIGINT', () => this.onSigterm());
    this.log.debug(`lvmlockd started${this.config.testMode ? ' (test mode)' : ''}`);
    this.observer.start();
    if (this.config.adopt) {
      this.adopting = true;
      this.adoptionDone = this.adoptLocks().catch((e: unknown) => {
        this.log.error(`adopt_locks failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      }).finally(() => {
        this.adopting = false;
        for (const c of this.conns.values()) this.pump(c);
      });
    }
    return null;
  }

  /**
   * --adopt 1 at start: take back the locks the previous instance recorded in
   * the adopt file (lvmlockd's adopt_locks), for LVs that are still active.
   */
  private async adoptLocks(): Promise<void> {
    const file = this.config.adoptFile;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.log.debug(`adopt_locks: no adopt file ${file}`);
      else this.log.error(`adopt_locks cannot read ${file}: ${(e as Error).message}`);
      this.adoptState?.retain(new Set());
      return;
    }
    const parsed = parseAdoptFile(text);
    if (!parsed.ok) {
      this.log.error(`adopt_locks read_adopt_file failed: ${file} ${parsed.error}`);
      try { fs.unlinkSync(file); } catch { /* gone */ }
      this.adoptState?.retain(new Set());
      return;
    }
    const vgs = this.activeOnly(parsed.vgs);
    for (const vg of vgs) {
      const rec = this.adoptState?.get('lvm_' + vg.vgName);
      if (rec) vg.hostId = rec.hostId;
    }
    const sum = await this.core.adoptLocks(vgs);
    this.observer.adopted(sum.adopted);
    this.log.debug(`adopt_locks: ${sum.started} lockspaces, ${sum.adopted} LV locks adopted, ${sum.purged} orphan locks released, ${sum.failures} failures`);
    this.adoptState?.retain(new Set(this.core.lockspaces.filter((l) => !l.threadStop).map((l) => l.name)));
    try { fs.unlinkSync(file); } catch { /* gone */ }
    this.writeAdoptFile();
  }

  /** lvmlockd's remove_inactive_lvs: keep the LV locks of LVs with a device-mapper device. */
  private activeOnly(vgs: AdoptVg[]): AdoptVg[] {
    const active = readActiveLvs();
    if (active.kind === 'no-dm') {
      const n = vgs.reduce((k, vg) => k + vg.lvs.length, 0);
      if (n) this.log.debug(`adopt: the kernel has no device-mapper, no LV can be shown inactive: keeping all ${n} recorded LV locks`);
      return vgs;
    }
    return vgs.map((vg) => ({
      ...vg,
      lvs: vg.lvs.filter((lv) => {
        const keep = active.uuids.has(lvDmUuid(vg.vgUuid, lv.uuid));
        this.log.debug(keep ? `dm device adopt in vg ${vg.vgName} lv ${lv.uuid}` : `lockd vg ${vg.vgName} remove inactive lv ${lv.uuid}`);
        return keep;
      }),
    }));
  }

  private lockPidFile(): StartError | null {
    const file = this.config.pidFile;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      this.pidFd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    } catch (e) {
      return { exitCode: 1, message: `Cannot open pid file ${file}: ${(e as Error).message}` };
    }
    if (!tryLockFd(this.pidFd)) {
      fs.closeSync(this.pidFd);
      this.pidFd = -1;
      return { exitCode: 13, message: `Cannot lock lockfile [${file}], error was [Resource temporarily unavailable]` };
    }
    fs.ftruncateSync(this.pidFd, 0);
    fs.writeSync(this.pidFd, `${process.pid}\n`, 0);
    return null;
  }

  private async listen(): Promise<StartError | null> {
    const sockPath = this.config.socketPath;
    try {
      fs.mkdirSync(path.dirname(sockPath), { recursive: true });
    } catch (e) {
      return { exitCode: 1, message: `Cannot create directory for ${sockPath}: ${(e as Error).message}` };
    }
    if (fs.existsSync(sockPath)) {
      if (await answers(sockPath)) return { exitCode: 1, message: `Socket ${sockPath} already in use` };
      try { fs.unlinkSync(sockPath); } catch { /* rebinding reports the error */ }
    }
    this.log.debug(`creating ${sockPath}`);
    const server = net.createServer({ allowHalfOpen: false }, (s) => this.accept(s));
    const old = process.umask(0o077);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: sockPath, backlog: listenBacklog() }, () => { server.off('error', reject); resolve(); });
      });
    } catch (e) {
      return { exitCode: 1, message: `Failed to create socket ${sockPath}: ${(e as Error).message}` };
    } finally {
      process.umask(old);
    }
    server.on('error', (e) => this.log.error(`listener error ${e.message}`));
    this.server = server;
    return null;
  }

  private accept(socket: net.Socket): void {
    if (this.conns.size >= MAX_CLIENTS || this.stopping) {
      this.log.error(`too many clients (${this.conns.size}), closing new connection`);
      socket.destroy();
      return;
    }
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    const pi = this.nextPi++;
    const id = this.core.addClient(peerPid(fd), fd, pi);
    const conn: Conn = { id, socket, decoder: new FrameDecoder(), queue: [], busy: false, closed: false, startedMs: 0 };
    this.conns.set(id, conn);
    socket.on('data', (data) => this.onData(conn, data));
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose(conn));
  }

  private onData(conn: Conn, data: Buffer): void {
    for (const ev of conn.decoder.push(data)) {
      if (ev.kind === 'overflow') {
        this.log.error(`client ${conn.id} message too large (${ev.bytes} bytes), closing`);
        conn.socket.destroy();
        return;
      }
      if (conn.queue.length >= MAX_QUEUED_PER_CLIENT) {
        this.log.error(`client ${conn.id} sent too many requests without waiting for replies, closing`);
        conn.socket.destroy();
        return;
      }
      // The body without the terminator's "\n", exactly what lvmlockd parses (this matters
      // for an unclosed quote, which libdm ends at the last character of the text).
      conn.queue.push(ev.body);
    }
    this.pump(conn);
  }

  private pump(conn: Conn): void {
    if (this.adopting) return;
    while (!conn.busy && !conn.closed && conn.queue.length) {
      const text = conn.queue.shift()!;
      conn.busy = true;
      conn.startedMs = performance.now();
      try {
        this.core.request(conn.id, text);
      } catch (e) {
        // A bug must not take the daemon (and every held lock) down.
        this.log.error(`client ${conn.id} request failed: ${(e as Error).stack ?? e}`);
        conn.busy = false;
        conn.socket.destroy();
      }
    }
  }

  private sendReply(id: number, text: string): boolean {
    const conn = this.conns.get(id);
    if (!conn || conn.closed || conn.socket.destroyed || !conn.socket.writable) return false;
    conn.socket.write(frameText(text));
    conn.busy = false;
    if (conn.queue.length) setImmediate(() => this.pump(conn));
    return true;
  }

  private onClose(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    this.conns.delete(conn.id);
    this.core.removeClient(conn.id);
  }

  private adoptUpdates = 0;

  /** With --adopt 1, record held LV locks so a restarted daemon can adopt them. */
  private writeAdoptFile(): void {
    if (!this.config.adopt) return;
    this.adoptUpdates++;
    const text = this.core.adoptFileText(process.pid, this.adoptUpdates, ctime(new Date()));
    try {
      const tmp = this.config.adoptFile + '.tmp';
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, this.config.adoptFile);
    } catch (e) {
      this.log.error(`cannot write adopt file ${this.config.adoptFile}: ${(e as Error).message}`);
    }
  }

  /** Runs `lvmlockctl --kill <vg>` as sanlock runs it for the C daemon. */
  private runKillHelper(vgName: string): void {
    const ctl = this.config.killHelper;
    this.log.error(`running kill helper: ${ctl} --kill ${vgName}`);
    const child = spawn(ctl, ['--kill', vgName], { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', (e) => this.log.error(`kill helper for VG ${vgName} failed to start: ${e.message}`));
    child.on('exit', (code) => {
      this.log.error(`kill helper for VG ${vgName} exited ${code}${out ? ': ' + out.trim().replace(/\n/g, ' | ') : ''}`);
    });
  }

  private onSigterm(): void {
    const remaining = this.core.forEachLockspace(true, true, false);
    if (remaining) {
      this.log.debug(`ignore shutdown for ${remaining} lockspaces`);
      // lockspaces without locks are stopping; exit once they are all gone.
      return;
    }
    this.shutdown(0);
  }

  shutdown(code: number): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log.debug('shutting down');
    this.observer.stop();
    for (const c of this.conns.values()) c.socket.destroy();
    this.server?.close();
    try { fs.unlinkSync(this.config.socketPath); } catch { /* already gone */ }
    try { fs.unlinkSync(this.config.pidFile); } catch { /* already gone */ }
    if (this.config.adopt && this.adoptUpdates) {
      try { fs.unlinkSync(this.config.adoptFile); } catch { /* already gone */ }
    }
    if (this.pidFd >= 0) { try { fs.closeSync(this.pidFd); } catch { /* closing */ } }
    this.exitResolve?.(code);
  }
}

/** Our state file beside lvmlockd's adopt file (which keeps exactly lvmlockd's format). */
export function adoptStatePath(adoptFile: string): string {
  return adoptFile + '.ts-state';
}

/** C's ctime() text without the newline: "Wed Nov 25 13:41:18 2026". */
export function ctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2)} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

/**
 * The kernel's cap on a listen backlog (net.core.somaxconn, per network
 * namespace; 4096 since Linux 5.4): a burst of connections waits in the queue
 * instead of being refused with EAGAIN.
 */
export function listenBacklog(): number {
  try {
    const n = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
    if (Number.isInteger(n) && n > 0) return n;
  } catch { /* no procfs: the default below */ }
  return 4096;
}

function answers(sockPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: sockPath });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export function readHostIdFile(file: string): number {
  try {
    const text = fs.readFileSync(file, 'utf8');
    for (const line of text.split('\n')) {
      const m = /^\s*host_id\s*=\s*(\d+)/.exec(line);
      if (m) return Number(m[1]);
    }
  } catch { /* unreadable: no host id */ }
  return 0;
}
