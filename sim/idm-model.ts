/**
 * The IDM world of the core-level cluster (`--lm idm`): emulated drives that
 * run the real firmware model (src/idm/firmware.ts behind the real SCSI
 * target, src/idm/scsi-target.ts) on the simulator's time, and per host an
 * ILM daemon that runs the real ILM lockspace and raid-lock code
 * (src/ilm/lockspace.ts, src/ilm/raid-lock.ts, src/ilm/drive-commands.ts)
 * for the real IDM lock manager of that host's lvmlockd (src/lm/idm).
 *
 * What is the simulator's own here: the drive transport (SCSI commands with
 * a seeded latency, drive outages, per-host path failures, slow drives, the
 * SG_IO timeout), the ILM's request dispatch (what src/ilm/server.ts does
 * for each command, without its socket), and the hosts' wall clocks (which
 * can step backwards). The ILM is a process of its own on each machine: a
 * pause of lvmlockd does not pause it; a machine crash ends both, and the
 * drive entries of the dead ILM stay until their countdown runs out.
 */
import { E } from '../src/core/constants';
import { IdmFirmware } from '../src/idm/firmware';
import { ScsiTarget } from '../src/idm/scsi-target';
import { SCSI_TIMEOUT_MS } from '../src/idm/scsi';
import type { DriveTransport, ScsiCommand, ScsiReply } from '../src/idm/transport';
import { DriveCommands } from '../src/ilm/drive-commands';
import { IlmLockspace } from '../src/ilm/lockspace';
import { RaidLock, type LockDrive, type RaidEnv } from '../src/ilm/raid-lock';
import type { IlmConnection } from '../src/lm/idm/idm-session';
import { SimHost } from './kernel/host';
import type { Rng } from './kernel/rng';
import type { Scheduler } from './kernel/scheduler';

/** The wall clock's epoch in the simulation (µs): 2026-12-01 00:00 UTC. */
const EPOCH_US = 1_764_547_200_000_000n;

export type DriveFault = 'none' | 'eio' | 'hang';

/** One emulated IDM drive, shared by every host. */
export class SimIdmDrive {
  readonly firmware = new IdmFirmware();
  readonly target: ScsiTarget;
  /** The drive is gone for every host: commands fail (eio) or never complete (hang). */
  fault: DriveFault = 'none';
  /** Extra latency of each command while the drive is slow (ms); 0 = normal. */
  slowMs = 0;
  /** Hosts whose path to this drive failed (fabric failure of one host). */
  readonly cutOff = new Map<number, Exclude<DriveFault, 'none'>>();

  constructor(readonly index: number, readonly path: string) {
    this.target = new ScsiTarget(this.firmware, { wwn: (0x5000c500_00000000n + BigInt(index)).toString(16), versionMajor: 8 });
  }
}

export interface IdmModelOptions {
  sim: Scheduler;
  rng: Rng;
  drives: number;
  log(line: string): void;
  /** Trace every ILM request and its answer (replays). */
  verbose?: boolean;
  /** An ILM request or renewal threw (the server would log it and answer -EIO): a simulator finding. */
  onException(where: string, e: unknown): void;
  /** --inject-bug idm-break-live-holder: the firmware's BREAK ignores whether holders are alive. */
  bugBreakLiveHolders?: boolean;
}

/** The drives, the hosts' ILM processes and wall clocks of one IDM schedule. */
export class IdmClusterModel {
  readonly drives: SimIdmDrive[];
  /** Upper bound of a command's one-way latency on a healthy drive (ms). */
  readonly latencyMaxMs: number;
  readonly stats = { commands: 0, timeouts: 0, kills: 0 };
  private readonly procs = new Map<number, SimHost>();
  /** Per host: wall clock offset from the simulation's UTC (µs); a step back makes it negative. */
  private readonly wallOffsetUs = new Map<number, bigint>();
  private readonly latencyRng: Rng;
  private nextPid = 1000;

  constructor(readonly o: IdmModelOptions) {
    this.drives = Array.from({ length: o.drives }, (_, i) => new SimIdmDrive(i, `/dev/sd${String.fromCharCode(98 + i)}`));
    // The ILM retries a refused lock every 0.5–1 ms for 5 s, as propeller does: drive
    // latency bounds how many commands that costs (and the simulator's time).
    this.latencyMaxMs = o.rng.pick([1, 4, 15]);
    this.latencyRng = o.rng.fork('latency');
    if (o.bugBreakLiveHolders) {
      for (const d of this.drives) {
        // A broken firmware: BREAK (and DESTROY) take every holder for expired.
        (d.firmware as unknown as { expired: () => boolean }).expired = () => true;
      }
    }
  }

  get sim(): Scheduler { return this.o.sim; }

  drive(path: string): SimIdmDrive | undefined {
    return this.drives.find((d) => d.path === path);
  }

  /** The ILM process of a machine (its clock is the machine's: same offset and rate as lvmlockd's). */
  ilmProcess(machine: SimHost): SimHost {
    let p = this.procs.get(machine.id);
    if (!p) {
      p = new SimHost(this.sim, machine.id, machine.clock.nowMs() - this.sim.now, 1);
      this.procs.set(machine.id, p);
    }
    if (p.crashed) p.restart();
    return p;
  }

  /** The machine is off: its ILM dies with lvmlockd, without releasing anything on the drives. */
  machineCrashed(hostId: number): void {
    this.procs.get(hostId)?.crash(() => undefined);
  }

  /** CLOCK_REALTIME of a host in µs (the simulation's UTC plus the host's offset). */
  wallUs(hostId: number): bigint {
    return EPOCH_US + BigInt(Math.floor(this.sim.now * 1000)) + (this.wallOffsetUs.get(hostId) ?? 0n);
  }
  setWallOffset(hostId: number, us: bigint): void {
    this.wallOffsetUs.set(hostId, us);
  }
  wallOffset(hostId: number): bigint {
    return this.wallOffsetUs.get(hostId) ?? 0n;
  }

  pid(): number {
    return this.nextPid++;
  }

  /** One-way latency of a command to or from a drive. */
  latency(d: SimIdmDrive): number {
    const base = 0.02 + this.latencyRng.next() * this.latencyMaxMs;
    return d.slowMs ? base + d.slowMs * (0.5 + this.latencyRng.next()) : base;
  }

  transport(d: SimIdmDrive, proc: SimHost): DriveTransport {
    return new SimDriveTransport(d, proc, this);
  }
}

/**
 * A drive as one host's ILM reaches it: SG_IO with propeller's 15 s timeout.
 * The command reaches the drive after a latency and runs there at that
 * moment (whatever became of the sender); the reply travels back to the ILM
 * process (dropped if it crashed). A command not answered within the timeout
 * fails with -EIO (SG_IO's DID_TIME_OUT as the ILM maps it); one that reached
 * the drive ran there (the abort came too late), one that had not yet
 * reached it never runs.
 */
class SimDriveTransport implements DriveTransport {
  constructor(private readonly d: SimIdmDrive, private readonly proc: SimHost, private readonly m: IdmClusterModel) {}

  get path(): string { return this.d.path; }

  execute(cmd: ScsiCommand): Promise<ScsiReply> {
    const { d, proc, m } = this;
    const sim = m.sim;
    return new Promise<ScsiReply>((resolve) => {
      const inc = proc.incarnation;
      const sent = sim.now;
      const deadline = sent + Math.min(cmd.timeoutMs, SCSI_TIMEOUT_MS);
      // One event per outcome (no timer per command): the reply, or the timeout when the
      // reply cannot come before it.
      const replyAt = (t: number, r: ScsiReply) => {
        if (t > deadline) return timeout();
        sim.at(t, () => proc.deliver(inc, () => resolve(r)));
      };
      const timeout = () => {
        sim.at(deadline, () => proc.deliver(inc, () => {
          m.stats.timeouts++;
          resolve({ ok: false, errno: -E.IO, message: `${d.path}: SG_IO timed out` });
        }));
      };
      const eio = (): ScsiReply => ({ ok: false, errno: -E.IO, message: `${d.path}: I/O error` });
      const path = d.cutOff.get(proc.id);
      if (path === 'eio') return replyAt(sim.now + m.latency(d), eio());
      if (path === 'hang') return timeout();
      const arrive = sim.now + m.latency(d);
      // A command that would arrive after the timeout is aborted before it reaches the drive.
      if (arrive > deadline) return timeout();
      sim.at(arrive, () => {
        if (d.fault === 'eio') return replyAt(sim.now + m.latency(d), eio());
        if (d.fault === 'hang') return timeout();
        m.stats.commands++;
        const c = d.target.execute(cmd.cdb, cmd.dataOut, cmd.dataInBytes, sim.now);
        replyAt(sim.now + m.latency(d), { ok: true, status: c.status, sense: c.sense, dataIn: c.dataIn });
      });
    });
  }

  close(): void {}
}

/**
 * The ILM daemon of one machine, for one boot: ilm_uuid made at start (a
 * restarted daemon is a new host to the drives), one lockspace per client
 * connection, renewals on the process's timers, the kill path handed to the
 * simulator. Each request crosses the socket: it runs in the ILM process and
 * its answer is delivered to lvmlockd's.
 */
export class SimIlm {
  readonly uuid: Buffer;
  readonly env: RaidEnv;
  private readonly channels = new Map<SimIdmDrive, LockDrive>();

  constructor(
    private readonly m: IdmClusterModel,
    readonly proc: SimHost,
    private readonly lvmlockd: SimHost,
    rng: Rng,
    private readonly onKillPath: (path: string, args: string) => void,
  ) {
    this.uuid = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) this.uuid[i] = rng.int(256);
    this.env = {
      nowMs: () => Math.floor(proc.clock.nowMs()),
      utcMs: () => m.wallUs(proc.id) / 1000n,
      sleep: (ms) => proc.clock.sleep(ms),
      randomInt: (lo, hi) => rng.intIn(lo, hi),
    };
  }

  private log(line: string): void {
    this.m.o.log(`h${this.proc.id} ilm ${line}`);
  }
  get verbose(): boolean { return !!this.m.o.verbose; }
  trace(line: string): void { this.log(line); }

  /** Run fn in the ILM process and hand its result back to lvmlockd (neither if either died). */
  call<T>(fn: () => Promise<T>): Promise<T> {
    const sim = this.m.sim;
    return new Promise<T>((resolve) => {
      this.proc.at(sim.now, () => {
        fn().then(
          (r) => this.lvmlockd.at(sim.now, () => resolve(r)),
          (e: unknown) => this.m.o.onException(`h${this.proc.id} ILM request`, e),
        );
      });
    });
  }

  /** DriveRegistry.resolveAll: a path names a drive or counts as failed. */
  resolveAll(paths: string[]): { drives: LockDrive[]; failed: number } {
    const drives: LockDrive[] = [];
    let failed = 0;
    for (const p of paths) {
      const d = this.m.drive(p);
      if (!d) { failed++; continue; }
      let ch = this.channels.get(d);
      if (!ch) {
        ch = { id: d.path, cmds: new DriveCommands(this.m.transport(d, this.proc)) };
        this.channels.set(d, ch);
      }
      if (!drives.includes(ch)) drives.push(ch);
    }
    return { drives, failed };
  }

  /** ilm_connect: a new connection with its lockspace (ADD_LOCKSPACE). */
  connect(): Promise<{ rv: number; client?: IlmConnection }> {
    return this.call(async () => {
      const pid = this.m.pid();
      const hostId = Buffer.alloc(32);
      hostId.writeInt32LE(pid, 0);
      this.uuid.copy(hostId, 16);
      const proc = this.proc;
      const sim = this.m.sim;
      const ls = new IlmLockspace(hostId, pid, {
        env: this.env,
        log: (level, line) => this.log(`${level} ${line}`),
        runKillPath: (path, args) => {
          this.m.stats.kills++;
          this.onKillPath(path, args);
        },
        setTimer: (fn, ms) => {
          const inc = proc.incarnation;
          const t = Math.max(proc.clock.toGlobal(proc.clock.nowMs() + ms), sim.now + 1);
          return sim.at(t, () => proc.deliver(inc, fn));
        },
      });
      this.log(`client pid ${pid}: lockspace added`);
      return { rv: 0, client: new SimIlmConnection(this, ls) };
    });
  }
}

/** One lvmlockd lockspace's connection: what src/ilm/server.ts does for each command. */
class SimIlmConnection implements IlmConnection {
  private dead = false;
  /** One request at a time per connection, as the server runs them. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly ilm: SimIlm, private readonly ls: IlmLockspace) {}

  get alive(): boolean { return !this.dead; }

  private req<T>(fn: () => Promise<T>, gone: T, what?: () => string): Promise<T> {
    const run = this.queue.then(() => {
      if (what && this.ilm.verbose) this.ilm.trace(`pid ${this.ls.killPid} ${what()} ...`);
      return this.dead ? gone : this.ilm.call(fn);
    }).then((r) => {
      if (what && this.ilm.verbose) this.ilm.trace(`pid ${this.ls.killPid} ${what()} -> ${JSON.stringify(r, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v))}`);
      return r;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  disconnect(): Promise<number> {
    return this.req(async () => {
      // DEL_LOCKSPACE: held locks stay on the drives until they time out.
      await this.ls.close(false);
      return 0;
    }, -32).then((rv) => { this.dead = true; return rv; });
  }

  close(): void {
    if (this.dead) return;
    this.dead = true;
    // The client went away without DEL_LOCKSPACE: its locks are unlocked and destroyed.
    void this.ilm.call(() => this.ls.close(true));
  }

  setKillPath(path: string, args: string): Promise<number> {
    return this.req(async () => {
      this.ls.killPath = path;
      this.ls.killArgs = args;
      return 0;
    }, -32);
  }

  lock(lockId: Buffer, mode: 1 | 2, paths: string[], timeoutMs: number): Promise<number> {
    if (paths.length === 0) return Promise.resolve(-E.INVAL);
    return this.req(async () => {
      if (this.ls.find(lockId)) return -E.BUSY;
      const { drives, failed } = this.ilm.resolveAll(paths);
      if (drives.length <= Math.floor((drives.length + failed) / 2)) return -E.NOMEM;
      return this.ls.acquire({ lockId, hostId: this.ls.hostId, mode, timeoutMs, drives, failedDrives: failed });
    }, -32, () => `lock ${lockName(lockId)} mode ${mode} on ${paths.join(',')}`);
  }

  unlock(lockId: Buffer): Promise<number> {
    return this.req(() => this.ls.release(lockId), -32, () => `unlock ${lockName(lockId)}`);
  }

  convert(lockId: Buffer, mode: number): Promise<number> {
    return this.req(() => this.ls.convert(lockId, mode), -32, () => `convert ${lockName(lockId)} to ${mode}`);
  }

  writeLvb(lockId: Buffer, lvb: Buffer): Promise<number> {
    return this.req(async () => this.ls.writeLvb(lockId, lvb), -32, () => `write_lvb ${lockName(lockId)} ${lvb.toString('hex')}`);
  }

  readLvb(lockId: Buffer): Promise<{ rv: number; lvb: Buffer }> {
    return this.req(() => this.ls.readLvb(lockId), { rv: -32, lvb: Buffer.alloc(8) }, () => `read_lvb ${lockName(lockId)}`);
  }

  hostCount(lockId: Buffer, paths: string[]): Promise<{ rv: number; count: number; self: number }> {
    return this.req(async () => {
      const held = this.ls.query(lockId, (raid) => raid.count());
      if (held) return held;
      const { drives, failed } = this.ilm.resolveAll(paths);
      if (drives.length <= Math.floor((drives.length + failed) / 2)) return { rv: -E.NOMEM, count: 0, self: 0 };
      return new RaidLock({ lockId, hostId: this.ls.hostId, mode: 0, timeoutMs: 0, drives, failedDrives: failed }, this.ilm.env).count();
    }, { rv: -32, count: 0, self: 0 });
  }
}

/** A lock id for the trace: gl, VG, or the LV UUID's last characters. */
function lockName(id: Buffer): string {
  const s = id.toString('ascii');
  if (/^\0+$/.test(s)) return 'GL';
  const lv = s.slice(32);
  return /^\0+$/.test(lv) ? 'VG' : `LV..${lv.slice(-4)}`;
}
