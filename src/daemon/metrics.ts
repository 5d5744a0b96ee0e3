// Daemon metrics in the Prometheus text format, through prom-client.
//
// Cost on the lock path: per answered request one Map lookup (label set →
// its counters, made once per distinct label set), a count, a sum and one
// bucket increment in plain arrays; prom-client renders them only when the
// metrics are read. (prom-client's own Counter/Histogram children hash their
// labels on every call: about 5 µs per request here, a fifth of a lock_lv's
// whole CPU cost, so they are used for nothing on the lock path.) Everything
// else (lockspaces by state, renewal figures, hosts, clients) is read from the
// daemon's state when the metrics are collected (`lvmlockctl --metrics`,
// --metrics-file).
//
// Read by `lvmlockctl --metrics` over the daemon's socket, or written to a file
// for node_exporter's textfile collector. No network listener.
//
// prom-client (with its dependencies, 90 of the daemon's 160 modules) is loaded
// when the metrics are first read, not at start: LVM2's test suite starts
// lvmlockd for every test, and in a VM without KVM each module costs.

import * as fs from 'node:fs';
import type { Registry } from 'prom-client';
import { Op, errnoName, type LmType, type Mode, type ResourceType } from '../core/constants';
import type { Action } from '../core/model';
import type { Lockspace } from '../core/lockspace';

/** What metrics read from the daemon at collection time. */
export interface MetricsSource {
  lockspaces(): readonly Lockspace[];
  clientsConnected(): number;
  /** LV locks taken back by the startup adoption (-A 1). */
  adoptedLocks(): number;
}

/** Request latency buckets, seconds: from a test-mode round trip to a slow sanlock paxos acquire. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const RT_CODE: Record<ResourceType | 'none', number> = { none: 0, gl: 1, vg: 2, lv: 3 };
const LM_CODE: Record<LmType, number> = { none: 0, dlm: 1, sanlock: 2, idm: 3 };
const MODE_CODE: Record<Mode, number> = { un: 0, nl: 1, sh: 2, ex: 3, iv: 4 };

interface RequestSeries {
  labels: { op: string; lock_type: string; mode: string; result: string };
  count: number;
  sum: number;
  /** Per bucket (not cumulative); the last slot is +Inf. */
  buckets: Float64Array;
}

/** The request's name as lvm sends it ("lock_lv", "start_vg", "info"). */
export function requestName(act: Pick<Action, 'op' | 'rt'>): string {
  if (act.op === 'dump_info') return 'info';
  if (act.op === 'dump_log') return 'dump';
  if (act.op === 'dump_metrics') return 'metrics';
  return act.rt ? `${act.op}_${act.rt}` : act.op;
}

/** "ok" or the errno-style name lvm would print ("EAGAIN", "ENOLS"…). */
export function resultName(result: number): string {
  if (result === 0) return 'ok';
  if (result === -210) return 'ENOLS';
  const n = errnoName(result);
  return /^\d|^-/.test(n) ? `error${Math.abs(result)}` : n;
}

export class DaemonMetrics {
  private registryMade: Registry | null = null;
  private readonly series = new Map<number, RequestSeries>();

  constructor(private readonly src: MetricsSource) {}

  /** The prom-client registry that renders the metrics, made on first use. */
  get registry(): Registry {
    this.registryMade ??= this.makeRegistry();
    return this.registryMade;
  }

  private makeRegistry(): Registry {
    const { Gauge, Registry } = require('prom-client') as typeof import('prom-client');
    const registry = new Registry();
    const registers = [registry];
    const all = () => [...this.series.values()];
    registry.registerMetric(customMetric('lvmlockd_requests_total', 'Requests answered, by request, lock type, mode and result.', 'counter',
      () => all().map((r) => ({ labels: r.labels, value: r.count }))));
    registry.registerMetric(customMetric('lvmlockd_request_duration_seconds', 'Time from reading a request to writing its reply.', 'histogram',
      () => all().flatMap((r) => histogramValues('lvmlockd_request_duration_seconds', r))));
    const s = this.src;
    new Gauge({
      name: 'lvmlockd_clients_connected', help: 'Client connections open now.', registers,
      collect() { this.set(s.clientsConnected()); },
    });
    new Gauge({
      name: 'lvmlockd_adopted_locks', help: 'LV locks taken back from the previous daemon instance at startup (-A 1).', registers,
      collect() { this.set(s.adoptedLocks()); },
    });
    new Gauge({
      name: 'lvmlockd_lockspaces', help: 'Lockspaces by lock type and state.', labelNames: ['lock_type', 'state'], registers,
      collect() {
        this.reset();
        for (const ls of s.lockspaces()) this.inc({ lock_type: ls.lmType, state: lockspaceState(ls) });
      },
    });
    const perLockspace = (name: string, help: string, pick: (st: NonNullable<ReturnType<typeof statsOf>>) => number | null) =>
      new Gauge({
        name, help, labelNames: ['lockspace', 'lock_type'], registers,
        collect() {
          this.reset();
          for (const ls of s.lockspaces()) {
            const st = statsOf(ls);
            const v = st ? pick(st) : null;
            if (v !== null) this.set({ lockspace: ls.name, lock_type: ls.lmType }, v);
          }
        },
      });
    perLockspace('lvmlockd_lockspace_renewal_age_seconds', 'Seconds since the last successful delta lease renewal.', (st) => st.renewalAgeSeconds);
    perLockspace('lvmlockd_lockspace_renewal_last_seconds', 'Duration of the last successful delta lease renewal (its disk I/O).',
      (st) => (st.renewalLastMs === null ? null : st.renewalLastMs / 1000));
    perLockspace('lvmlockd_lockspace_renewals_total', 'Successful delta lease renewals.', (st) => st.renewals);
    perLockspace('lvmlockd_lockspace_renewal_failures_total', 'Failed delta lease renewal attempts.', (st) => st.renewalFailures);
    perLockspace('lvmlockd_lockspace_hosts_live', 'Other hosts holding a live host_id in the lockspace.', (st) => st.hostsLive);
    perLockspace('lvmlockd_lockspace_hosts_dead', 'Other hosts whose host_id lease has gone silent past host_dead_seconds.', (st) => st.hostsDead);
    new Gauge({
      name: 'lvmlockd_locks_held', help: 'Resources of a lockspace held by this host, by resource type and mode.',
      labelNames: ['lockspace', 'type', 'mode'], registers,
      collect() {
        this.reset();
        for (const ls of s.lockspaces()) {
          for (const r of ls.resources) {
            if (r.mode === 'un' || r.mode === 'iv') continue;
            this.inc({ lockspace: ls.name, type: r.type, mode: r.mode });
          }
        }
      },
    });
    return registry;
  }

  /** A request was answered after `seconds`. On the lock path: keep it cheap. */
  answered(act: Action, seconds: number): void {
    // A number, not a string: no allocation per request.
    const key = ((((Op[act.op] * 4 + RT_CODE[act.rt ?? 'none']) * 5 + (LM_CODE[act.lmType] ?? 4)) * 5 + (MODE_CODE[act.mode] ?? 4)) * 65536) + (act.result & 0xffff);
    let r = this.series.get(key);
    if (!r) {
      const labels = { op: requestName(act), lock_type: act.lmType, mode: act.op === 'lock' ? act.mode : '', result: resultName(act.result) };
      r = { labels, count: 0, sum: 0, buckets: new Float64Array(LATENCY_BUCKETS.length + 1) };
      this.series.set(key, r);
    }
    r.count++;
    r.sum += seconds;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    r.buckets[i]!++;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

type MetricValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/** A metric prom-client renders from values we keep ourselves. */
function customMetric(name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[]) {
  return {
    name,
    help,
    type,
    get: () => ({ name, help, type, values: values(), aggregator: 'sum' }),
  } as unknown as Parameters<Registry['registerMetric']>[0];
}

function histogramValues(name: string, r: RequestSeries): MetricValue[] {
  const out: MetricValue[] = [];
  let cumulative = 0;
  for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
    cumulative += r.buckets[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...r.labels, le: i < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[i]! : '+Inf' }, value: cumulative });
  }
  out.push({ metricName: `${name}_sum`, labels: r.labels, value: r.sum });
  out.push({ metricName: `${name}_count`, labels: r.labels, value: r.count });
  return out;
}

function statsOf(ls: Lockspace) {
  return ls.createDone && !ls.createFail ? ls.managed.stats?.() ?? null : null;
}

/** starting, running, stopping, failed (join failed) or killed (lease storage lost). */
export function lockspaceState(ls: Lockspace): string {
  if (ls.killVg) return 'killed';
  if (ls.createFail) return 'failed';
  if (ls.threadStop) return 'stopping';
  if (!ls.createDone) return 'starting';
  return 'running';
}

/**
 * Writes the metrics to `file` every `intervalS` seconds, atomically (a
 * temporary file renamed over it), as node_exporter's textfile collector
 * requires. Returns a stop function.
 */
export function writeMetricsFile(metrics: DaemonMetrics, file: string, intervalS: number, onError: (msg: string) => void): () => void {
  let running = false;
  let failedBefore = false;
  const write = async () => {
    if (running) return;
    running = true;
    try {
      const text = await metrics.text();
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, file);
      failedBefore = false;
    } catch (e) {
      if (!failedBefore) onError(`cannot write metrics file ${file}: ${(e as Error).message}`);
      failedBefore = true;
    } finally {
      running = false;
    }
  };
  void write();
  const timer = setInterval(() => void write(), Math.max(1, intervalS) * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
