// The IDM section's pure parts: parsing what lvm prints about the LVs, the
// --kill-drive option, and the report table. No I/O; tested in
// test/unit/bench-idm-report.test.ts.

import { summarize, type Summary } from './stats';

/** One measured configuration: an IDM VG on N emulated drives, or the sanlock VG. */
export interface ConfigResult {
  /** 'idm x3', 'sanlock' */
  name: string;
  /** emulated drives under the VG and its LV (0 for sanlock) */
  drives: number;
  /** wall times of `lvchange -aey` / `-an`, ms */
  lvAcquireMs: number[];
  lvReleaseMs: number[];
  /** raw lock_lv round trips, microseconds */
  rawExUs: number[];
  rawUnUs: number[];
  /** measured seconds of the raw loops (all rounds) */
  rawSeconds: number;
  /** CPU seconds over the raw loops: host A's lvmlockd, host A's ILM, the VG's drive processes */
  rawCpu: { lvmlockd: number; ilm: number; drives: number };
}

export function emptyResult(name: string, drives: number): ConfigResult {
  return { name, drives, lvAcquireMs: [], lvReleaseMs: [], rawExUs: [], rawUnUs: [], rawSeconds: 0, rawCpu: { lvmlockd: 0, ilm: 0, drives: 0 } };
}

/**
 * The PVs of `lvs --noheadings -o devices vg/lv` ("  /dev/loop1(0),/dev/loop2(0)"),
 * each once, in the order printed. Throws on text that is not such a list.
 */
export function parseLvDevices(text: string): string[] {
  const t = text.trim();
  if (!t) throw new Error('lvs printed no devices');
  const out: string[] = [];
  for (const part of t.split(',')) {
    const m = /^(\/\S+?)\(\d+\)$/.exec(part.trim());
    if (!m) throw new Error(`cannot parse LV device ${JSON.stringify(part)} in ${JSON.stringify(text)}`);
    if (!out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

/** The IDM VG of each emulated drive, in disk order: VG vgi<N> gets the next N disks; j = index in its VG. */
export function driveOwners(drives: readonly number[]): Array<{ vg: string; j: number }> {
  return drives.flatMap((n) => Array.from({ length: n }, (_, j) => ({ vg: `vgi${n}`, j })));
}

/** `--kill-drive N:I:S`: kill drive I (0-based) of the N-drive VG S seconds into the measurements. */
export interface KillDrive {
  drives: number;
  index: number;
  afterSeconds: number;
}

export function parseKillDrive(arg: string): KillDrive {
  const m = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(arg);
  if (!m) throw new Error(`--kill-drive wants N:I:S (drives of the VG, drive index, seconds), not ${JSON.stringify(arg)}`);
  const k = { drives: Number(m[1]), index: Number(m[2]), afterSeconds: Number(m[3]) };
  if (k.drives < 1) throw new Error(`--kill-drive ${arg}: a VG has at least one drive`);
  if (k.index >= k.drives) throw new Error(`--kill-drive ${arg}: drive index ${k.index} is not below ${k.drives}`);
  return k;
}

// ---------------------------------------------------------------- report

export interface ReportContext {
  date: string;
  commit: string;
  load0: string;
  load1: string;
  seconds: number;
  cpus: number;
  node: string;
  lvReps: number;
  rawRounds: number;
  rawSeconds: number;
  io: number;
  notes: string[];
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

function ratio(a: number, b: number): string {
  const r = a / b;
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : '-';
}

function pad(s: string, n: number, left = true): string {
  return left ? s.padStart(n) : s.padEnd(n);
}

interface Column {
  head: string;
  pick: (r: ConfigResult) => Summary;
  /** samples are in microseconds */
  us: boolean;
}

const COLUMNS: Column[] = [
  { head: 'lvchange -aey', pick: (r) => summarize(r.lvAcquireMs), us: false },
  { head: 'lvchange -an', pick: (r) => summarize(r.lvReleaseMs), us: false },
  { head: 'lock_lv ex', pick: (r) => summarize(r.rawExUs), us: true },
  { head: 'lock_lv un', pick: (r) => summarize(r.rawUnUs), us: true },
];

/** Round trips (ex and un) per second of the raw loops. */
export function rawOpsPerSec(r: ConfigResult): number {
  return r.rawSeconds > 0 ? (r.rawExUs.length + r.rawUnUs.length) / r.rawSeconds : NaN;
}

/** The table (p50 / p90 (n) per config and column, lock_lv/s) and, with a sanlock config, the IDM / sanlock p50 ratios. */
export function idmResultTable(results: ConfigResult[]): string[] {
  const out: string[] = [];
  const head = [pad('config', 10, false), ...COLUMNS.map((c) => pad(`${c.head} p50 / p90 (n)`, 30)), pad('lock_lv/s', 10)].join(' ');
  out.push(head);
  out.push('-'.repeat(head.length));
  const base = results.find((r) => r.drives === 0);
  for (const r of results) {
    const cells = COLUMNS.map((c) => {
      const s = c.pick(r);
      const k = c.us ? 1 / 1000 : 1;
      return pad(`${fmtMs(s.p50 * k)} / ${fmtMs(s.p90 * k)} (${s.n})`, 30);
    });
    const ops = rawOpsPerSec(r);
    out.push([pad(r.name, 10, false), ...cells, pad(Number.isFinite(ops) ? String(Math.round(ops)) : '-', 10)].join(' '));
  }
  if (base) {
    out.push('');
    out.push(`p50 relative to ${base.name} (IDM / sanlock):`);
    for (const r of results) {
      if (r === base) continue;
      const cells = COLUMNS.map((c) => `${c.head} ${ratio(c.pick(r).p50, c.pick(base).p50)}`);
      out.push(`  ${pad(r.name, 8, false)} ${cells.join(', ')}, lock_lv/s ${ratio(rawOpsPerSec(r), rawOpsPerSec(base))}`);
    }
  }
  return out;
}

export function formatIdmReport(results: ConfigResult[], ctx: ReportContext): string {
  const out: string[] = [];
  const vs = results.some((r) => r.drives === 0) ? ` vs a sanlock VG (our lvmlockd, -o ${ctx.io}), same run` : ' (no sanlock VG in this run)';
  out.push(`IDM VGs (our lvmlockd + our ILM + emulated drives over their sockets)${vs}; ` +
    `${ctx.date}, commit ${ctx.commit}, ${ctx.cpus} CPUs, node ${ctx.node}`);
  out.push(`load average ${ctx.load0} at start, ${ctx.load1} at end; section took ${ctx.seconds.toFixed(0)} s`);
  out.push('');
  out.push(...idmResultTable(results));
  out.push('');
  out.push('CPU per lock_lv round trip over the lock_lv loops (host A\'s lvmlockd / its ILM / the VG\'s drive processes; 10 ms ticks):');
  for (const r of results) {
    const n = r.rawExUs.length + r.rawUnUs.length;
    const per = (s: number) => (n ? fmtMs(1000 * s / n) : '-');
    const total = r.rawCpu.lvmlockd + r.rawCpu.ilm + r.rawCpu.drives;
    out.push(`  ${pad(r.name, 8, false)} ${per(r.rawCpu.lvmlockd)} / ${r.drives ? per(r.rawCpu.ilm) : '-'} / ${r.drives ? per(r.rawCpu.drives) : '-'}` +
      `, together ${per(total)} of ${n ? fmtMs(1000 * r.rawSeconds / n) : '-'} wall time per round trip`);
  }
  out.push('');
  out.push(`lvchange: host A -aey, -an, host B -aey, -an, ${ctx.lvReps} times per config (configs take turns), wall time of the lvm command;`);
  out.push('the IDM -aey takes the VG lock sh and the LV lock ex on every drive of the VG (the LV is striped over all of them).');
  out.push(`lock_lv: ${ctx.rawRounds} rounds of ${ctx.rawSeconds} s per config on host A, one client of bench/lockd-client.ts looping`);
  out.push('lock_lv ex / un on the LV (IDM requests carry path[N] and path_num as lvm sends them), timed in the client;');
  out.push('lock_lv/s = round trips (ex + un) per second. p50/p90 = nearest rank.');
  for (const n of ctx.notes) out.push(`note: ${n}`);
  return out.join('\n') + '\n';
}
