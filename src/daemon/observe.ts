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
  holders: Array<{ host_id: number; host: string; generation: number; local: boolean; live: boolean | null; since: number | null }>;
}

export interface HoldersReport {
  vg: string;
  lockspace: string;
  lock_type: string;
  source: 'daemon';
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
    return JSON.stringify(this.holders(vgName)) + '\n';
  }

  /** The locks of a VG as this daemon knows them (its own, and test mode's injected remote ones). */
  holders(vgName: string): HoldersReport {
    const lsName = LS_PREFIX + vgName;
    const ls = this.d.lockspaces().find((l) => l.name === lsName);
    if (!ls) throw new Error(`VG ${vgName} has no lockspace started here`);
    const me = this.d.localHost(ls);
    const locks: HolderRecord[] = [];
    for (const r of ls.resources) {
      const remote = r.testRemote;
      if ((r.mode === 'un' || r.mode === 'iv') && !remote) continue;
      const rec: HolderRecord = { resource: r.name, type: r.type, mode: remote ?? r.mode, holders: [] };
      if (r.mode !== 'un' && r.mode !== 'iv') {
        rec.holders.push({ host_id: me.hostId, host: this.hostName, generation: me.generation, local: true, live: true, since: null });
      }
      if (remote) rec.holders.push({ host_id: 0, host: 'remote (test mode --set-remote-lv-lock)', generation: 0, local: false, live: null, since: null });
      locks.push(rec);
    }
    return { vg: vgName, lockspace: lsName, lock_type: ls.lmType, source: 'daemon', locks };
  }
}
