// The daemon's window for administrators: metrics, the request log and the
// holders report, wired to the server through a few calls (answered,
// report, adopted, start/stop) so the shell itself stays small.

import type { Action } from '../core/model';
import type { Lockspace } from '../core/lockspace';
import { LS_PREFIX } from '../core/constants';
import type { DaemonLog } from './log';
import { DaemonMetrics, writeMetricsFile } from './metrics';
import { RequestLog } from './request-log';

export interface ObserveConfig {
  logFormat: 'text' | 'json';
  /** --metrics-file: written every metricsInterval seconds; '' for none. */
  metricsFile: string;
  metricsInterval: number;
}

export interface ObservedDaemon {
  lockspaces(): readonly Lockspace[];
  clientsConnected(): number;
  /** Our host_id in a lockspace and the name other hosts see, when known. */
  localHost(ls: Lockspace): { hostId: number; generation: number };
}

/** One lock as `lvmlockctl --holders` shows it. */
export interface HolderRecord {
  resource: string;
  type: 'gl' | 'vg' | 'lv';
  mode: string;
  /** sanlock: the lease version. */
  lver?: number;
  holders: Array<{
    host_id: number; host: string; generation: number; local: boolean;
    /** Whether the holder's delta lease is live (null: unknown / not applicable). */
    live: boolean | null;
    /** The delta lease's state as our renewals judge it (sanlock), else ''. */
    state: string;
  }>;
}

export interface HoldersReport {
  vg: string;
  lockspace: string;
  lock_type: string;
  /** disk: the lock manager's storage (sanlock lease area), all hosts; daemon: this daemon's own locks. */
  source: 'daemon' | 'disk';
  locks: HolderRecord[];
}

export class Observer {
  readonly metrics: DaemonMetrics;
  private readonly requests: RequestLog;
  private adoptedCount = 0;
  private stopFile: (() => void) | null = null;

  constructor(private readonly d: ObservedDaemon, private readonly log: DaemonLog, private readonly cfg: ObserveConfig, private readonly hostName: string) {
    this.metrics = new DaemonMetrics({
      lockspaces: () => d.lockspaces(),
      clientsConnected: () => d.clientsConnected(),
      adoptedLocks: () => this.adoptedCount,
    });
    this.requests = new RequestLog(log, cfg.logFormat === 'json');
  }

  /** On the lock path: a request read at `startedMs` (performance.now()) is answered. */
  answered(act: Action, client: { readonly pid: number; readonly name: string }, startedMs: number): void {
    const seconds = (performance.now() - startedMs) / 1000;
    this.metrics.answered(act, seconds);
    this.requests.answered(act, client, seconds);
  }

  adopted(n: number): void { this.adoptedCount = n; }

  start(): void {
    if (this.cfg.metricsFile) {
      this.stopFile = writeMetricsFile(this.metrics, this.cfg.metricsFile, this.cfg.metricsInterval, (m) => this.log.error(m));
    }
  }

  stop(): void {
    this.stopFile?.();
    this.stopFile = null;
  }

  async report(kind: 'metrics' | 'holders', vgName: string): Promise<string> {
    if (kind === 'metrics') return this.metrics.text();
    return JSON.stringify(await this.holders(vgName)) + '\n';
  }

  /**
   * The locks of a VG: from the lock manager's storage when it can show every
   * host's (sanlock), else as this daemon knows them (its own, and test
   * mode's injected remote ones).
   */
  async holders(vgName: string): Promise<HoldersReport> {
    const lsName = LS_PREFIX + vgName;
    const ls = this.d.lockspaces().find((l) => l.name === lsName);
    if (!ls) throw new Error(`VG ${vgName} has no lockspace started here`);
    const me = this.d.localHost(ls);
    if (ls.managed.holders && ls.createDone && !ls.createFail) {
      const disk = await ls.managed.holders();
      return {
        vg: vgName, lockspace: lsName, lock_type: ls.lmType, source: 'disk',
        locks: disk.map((l) => ({
          resource: l.resource, type: l.type, mode: l.mode, lver: l.lver,
          holders: l.holders.map((h) => ({
            host_id: h.hostId, host: h.hostName, generation: h.generation, local: h.hostId === me.hostId,
            live: h.state === 'LIVE' || h.state === 'FAIL' ? true : h.state === 'DEAD' || h.state === 'FREE' ? false : null,
            state: h.state,
          })),
        })),
      };
    }
    const locks: HolderRecord[] = [];
    for (const r of ls.resources) {
      const remote = r.testRemote;
      if ((r.mode === 'un' || r.mode === 'iv') && !remote) continue;
      const rec: HolderRecord = { resource: r.name, type: r.type, mode: remote ?? r.mode, holders: [] };
      if (r.mode !== 'un' && r.mode !== 'iv') {
        rec.holders.push({ host_id: me.hostId, host: this.hostName, generation: me.generation, local: true, live: true, state: '' });
      }
      if (remote) rec.holders.push({ host_id: 0, host: 'remote (test mode --set-remote-lv-lock)', generation: 0, local: false, live: null, state: '' });
      locks.push(rec);
    }
    return { vg: vgName, lockspace: lsName, lock_type: ls.lmType, source: 'daemon', locks };
  }
}
