// C-reference comparison: run the same scripted command sequence on a fresh
// cluster with daemon A and on another fresh cluster with daemon B, normalize
// the run-specific parts of the output (UUIDs, pids, loop device names,
// timestamps, temp paths) and report per-step differences.

import { Cluster, ClusterOptions, DaemonKind, DiskSpec } from './cluster';
import { RunResult, shellQuote, sleep } from './exec';

export interface Step {
  /** 1-based host number. */
  host: number;
  /**
   * Command line. Placeholders: `{disk0}`, `{disk1}`, ... → loop device of
   * that disk. argv[0] === 'lvmlockctl' → the daemon spec's lvmlockctl.
   */
  argv: string[];
  /** Free text shown in reports. */
  label?: string;
  /** Fields not compared for this step. */
  ignore?: Array<'code' | 'stdout' | 'stderr'>;
  /** Per-step timeout (ms). */
  timeoutMs?: number;
  /**
   * Sleep this long before the step. E.g. the C daemon lists stopped
   * lockspaces as `REM:<name>` only until it frees them 1-2 s after the stop,
   * so an --info right after a stop is racy; wait ~3 s for a stable view.
   */
  waitMs?: number;
  /** Sort `LK` lines inside each lockspace block before comparing (lvmlockctl --info). */
  sortInfo?: boolean;
  /**
   * Lines of stdout/stderr matching this are dropped before comparing (after
   * normalization), for deliberate differences, e.g. /^LK LV un / (2.03.16
   * keeps unlocked LV resources listed; ours frees them like newer lvmlockd).
   */
  dropLines?: RegExp;
}

export interface DaemonSpec {
  kind: DaemonKind;
  binary?: string;
  /** Daemon arguments, e.g. ['-T']. */
  args?: string[];
  env?: Record<string, string>;
  /** lvmlockctl binary for steps whose argv[0] is 'lvmlockctl'; default the cluster's (C). */
  lvmlockctl?: string;
  /** Start the real sanlock daemon on every host before lvmlockd. */
  sanlock?: boolean;
}

export interface ScriptOptions {
  hosts?: number;
  disks?: DiskSpec[];
  /** Other cluster options (network, extra lvm.conf, ...). */
  cluster?: Omit<ClusterOptions, 'hosts' | 'disks'>;
  /** Hosts whose daemon is started before the script (default: all). */
  daemonHosts?: number[];
  /** Called after the daemons started, before the first step. */
  setup?: (c: Cluster) => Promise<void>;
  /** Pause after each step, ms (default 0). */
  settleMs?: number;
  /** Default per-step timeout, ms (default 30000). */
  stepTimeoutMs?: number;
  /**
   * Learn VG/LV/PV UUIDs after every step (`lvm lvs/vgs/pvs --nolocking` on
   * host 1, which does not contact lvmlockd) so normalization can name them
   * {vg1.uuid}, {vg1/lv1.uuid}, {pv:{disk0}.uuid}. Default true.
   */
  learnUuids?: boolean;
  /**
   * compareDaemons: run the A and B clusters one after the other instead of
   * at the same time. Default false: the two clusters share nothing (own
   * disks, lvm.conf filters, namespaces, /dev/mapper dir), and most of each
   * run is spent waiting (lease timings, the C daemon's sleeps).
   */
  sequential?: boolean;
}

export interface StepResult {
  index: number;
  step: Step;
  /** argv after placeholder expansion (raw, not normalized). */
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Everything run-specific that normalization should replace. */
export interface NormalizeContext {
  /** Literal strings → placeholder (e.g. '/dev/loop3' → '{disk0}'). */
  literals: Array<[string, string]>;
  /** First-seen numbering of LVM UUIDs (shared by all steps of a run). */
  uuids: Map<string, string>;
  /** First-seen numbering of RFC-4122 style UUIDs (sanlock host names). */
  guids: Map<string, string>;
}

export function newNormalizeContext(literals: Array<[string, string]> = []): NormalizeContext {
  // Longest first so /dev/loop10 is replaced before /dev/loop1.
  const lits = [...literals].sort((a, b) => b[0].length - a[0].length);
  return { literals: lits, uuids: new Map(), guids: new Map() };
}

/** Context for a cluster: its loop devices, mapper loops and temp dir. */
export function contextForCluster(c: Cluster): NormalizeContext {
  const lits: Array<[string, string]> = [];
  c.disks.forEach((d) => lits.push([d.path, `{disk${d.index}}`]));
  c.mappers.forEach((m, i) => lits.push([m.loop, `{maploop${i}}`]));
  lits.push([c.dir, '{clusterdir}']);
  return newNormalizeContext(lits);
}

const LVM_UUID = /\b[A-Za-z0-9]{6}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{6}\b/g;
const GUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
const MONTHS = 'Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec';
const DAYS = 'Mon|Tue|Wed|Thu|Fri|Sat|Sun';

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/**
 * Replace run-specific parts of command output with stable tokens:
 * disk/loop paths → {diskN}; LVM UUIDs → the name the context knows
 * ({vg1/lv1.uuid}, see learnUuids) or {UUID1}, {UUID2}... in first-seen
 * order (so identity is preserved); other UUIDs → {GUIDn}; pids → PID;
 * unix-time prefixes and dates → TS / DATE; remaining /dev/loopN → /dev/loopX.
 */
export function normalize(text: string, ctx: NormalizeContext = newNormalizeContext()): string {
  let t = text;
  for (const [lit, rep] of ctx.literals) {
    if (!lit) continue;
    // Avoid replacing /dev/loop1 inside /dev/loop12.
    t = t.replace(new RegExp(escapeRe(lit) + '(?![0-9])', 'g'), rep);
  }
  t = t.replace(LVM_UUID, (u) => {
    let v = ctx.uuids.get(u);
    if (!v) {
      v = `{UUID${[...ctx.uuids.values()].filter((x) => x.startsWith('{UUID')).length + 1}}`;
      ctx.uuids.set(u, v);
    }
    return v;
  });
  t = t.replace(GUID, (u) => {
    const k = u.toLowerCase();
    let v = ctx.guids.get(k);
    if (!v) {
      v = `{GUID${ctx.guids.size + 1}}`;
      ctx.guids.set(k, v);
    }
    return v;
  });
  t = t.replace(/\/dev\/loop\d+/g, '/dev/loopX');
  // pids: "pid 1234", "pid=1234", "pid =1234", "cmd[1234]", "Parent PID 1234"
  t = t.replace(/\b(pid\s*=?\s*)\d+/gi, '$1PID');
  t = t.replace(/\[\d+\]/g, '[PID]');
  // unix time at line start (daemon debug/dump log), ISO and ctime dates
  t = t.replace(/^\d{9,11}(?= )/gm, 'TS');
  t = t.replace(/\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?/g, 'DATE');
  t = t.replace(new RegExp(`\\b(${DAYS}) (${MONTHS}) +\\d+ \\d\\d:\\d\\d:\\d\\d \\d{4}`, 'g'), 'DATE');
  return t;
}

export interface InfoNormalizeOptions {
  /** Sort lock lines (LK/LW) within each lockspace block. */
  sort?: boolean;
  /** Also sort the lockspace blocks by their VG line. */
  sortLockspaces?: boolean;
}

/**
 * Normalize `lvmlockctl --info` output (formatted or raw `--info --dump`):
 * the general normalization plus client fd/id/unused counters of raw info,
 * and optional sorting of lock lines/lockspace blocks whose order is an
 * implementation detail.
 */
export function normalizeInfo(text: string, ctx: NormalizeContext = newNormalizeContext(), opts: InfoNormalizeOptions = {}): string {
  let t = normalize(text, ctx);
  t = t.replace(/^info=structs .*$/gm, 'info=structs');
  t = t.replace(/^(info=client pid=)\S+ fd=\d+ pi=\d+ id=\d+/gm, '$1PID fd=N pi=N id=N');
  t = t.replace(/\bclient_id=(\d+)/g, (m, id: string) => (id === '0' ? m : 'client_id=N'));
  if (!opts.sort && !opts.sortLockspaces) return t;
  const trailingNl = t.endsWith('\n');
  const lines = (trailingNl ? t.slice(0, -1) : t).split('\n');
  // Formatted output: blocks separated by blank lines. Raw: blocks start at info=ls.
  const raw = lines.some((l) => l.startsWith('info='));
  const blocks: string[][] = [];
  let cur: string[] = [];
  for (const l of lines) {
    const starts = raw ? l.startsWith('info=ls ') : l === '';
    if (starts && cur.length) {
      blocks.push(cur);
      cur = [];
    }
    if (!raw && l === '') continue;
    cur.push(l);
  }
  if (cur.length) blocks.push(cur);
  const sorted = blocks.map((b) => {
    if (!opts.sort) return b;
    const head = b.filter((l) => !/^(LK|LW) /.test(l));
    const locks = b.filter((l) => /^(LK|LW) /.test(l)).sort();
    return raw ? b : [...head, ...locks];
  });
  if (opts.sortLockspaces) sorted.sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
  const out = raw ? sorted.map((b) => b.join('\n')).join('\n') : sorted.map((b) => b.join('\n')).join('\n\n');
  return out + (trailingNl ? '\n' : '');
}

function expand(argv: string[], c: Cluster, spec?: DaemonSpec): string[] {
  const out = argv.map((a) => a.replace(/\{disk(\d+)\}/g, (_, i: string) => {
    const d = c.disks[Number(i)];
    if (!d) throw new Error(`script uses {disk${i}} but the cluster has ${c.disks.length} disks`);
    return d.path;
  }));
  if (out[0] === 'lvmlockctl') out[0] = spec?.lvmlockctl ?? c.lvmlockctlBinary;
  return out;
}

/**
 * Record names for the UUIDs currently in the metadata (uuid → token), read on
 * one host with --nolocking (no lvmlockd traffic). Existing entries are kept.
 */
export async function learnUuids(c: Cluster, names: Map<string, string>, hostIndex = 1): Promise<void> {
  const h = c.host(hostIndex);
  const lits: Array<[string, string]> = c.disks.map((d) => [d.path, `{disk${d.index}}`]);
  const pvName = (p: string) => lits.find(([l]) => l === p)?.[1] ?? p;
  const set = (u: string | undefined, token: string) => {
    if (u && /^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/.test(u) && !names.has(u)) names.set(u, token);
  };
  // One `lvm fullreport` (VGs, all LVs, PVs incl. orphans) instead of vgs + lvs -a + pvs:
  // this runs after every step of every comparison, so it is a good part of their CPU time.
  const full = await h.lvm(['fullreport', '-a', '--nolocking', '--reportformat', 'json',
    '--configreport', 'vg', '-o', 'vg_name,vg_uuid', '--configreport', 'lv', '-o', 'vg_name,lv_name,lv_uuid',
    '--configreport', 'pv', '-o', 'pv_name,pv_uuid', '--configreport', 'pvseg', '-o', 'pv_name', '--configreport', 'seg', '-o', 'lv_name']);
  type Row = Record<string, string | undefined>;
  let report: Array<Record<string, Row[] | undefined>> | null = null;
  try {
    if (full.code === 0) report = (JSON.parse(full.stdout) as { report: Array<Record<string, Row[] | undefined>> }).report;
  } catch {
    report = null;
  }
  if (report) {
    for (const part of report) {
      for (const r of part.vg ?? []) if (r.vg_name) set(r.vg_uuid, `{${r.vg_name}.uuid}`);
      for (const r of part.lv ?? []) if (r.vg_name && r.lv_name) set(r.lv_uuid, `{${r.vg_name}/${r.lv_name.replace(/^\[|\]$/g, '')}.uuid}`);
      for (const r of part.pv ?? []) if (r.pv_name) set(r.pv_uuid, `{pv:${pvName(r.pv_name)}.uuid}`);
    }
    return;
  }
  // Fallback: the three plain reports.
  const common = ['--nolocking', '--noheadings', '--separator', '|'];
  const vgs = await h.lvm(['vgs', ...common, '-o', 'vg_name,vg_uuid']);
  for (const l of vgs.stdout.split('\n')) {
    const [vg, vu] = l.trim().split('|');
    if (vg) set(vu, `{${vg}.uuid}`);
  }
  const lvs = await h.lvm(['lvs', '-a', ...common, '-o', 'vg_name,lv_name,lv_uuid']);
  for (const l of lvs.stdout.split('\n')) {
    const [vg, lv, lu] = l.trim().split('|');
    if (vg && lv) set(lu, `{${vg}/${lv.replace(/^\[|\]$/g, '')}.uuid}`);
  }
  const pvs = await h.lvm(['pvs', ...common, '-o', 'pv_name,pv_uuid']);
  for (const l of pvs.stdout.split('\n')) {
    const [pv, pu] = l.trim().split('|');
    if (pv) set(pu, `{pv:${pvName(pv)}.uuid}`);
  }
}

export interface ScriptRun {
  results: StepResult[];
  /** uuid → token learned during the run (see ScriptOptions.learnUuids). */
  names: Map<string, string>;
}

/** Run steps in order on an existing cluster (raw results, nothing normalized). */
export async function runScript(
  c: Cluster,
  steps: Step[],
  o: { spec?: DaemonSpec; settleMs?: number; stepTimeoutMs?: number; learnUuids?: boolean } = {},
): Promise<ScriptRun> {
  const results: StepResult[] = [];
  const names = new Map<string, string>();
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const argv = expand(step.argv, c, o.spec);
    if (step.waitMs) await sleep(step.waitMs);
    const r: RunResult = await c.host(step.host).run(argv, { timeoutMs: step.timeoutMs ?? o.stepTimeoutMs ?? 30_000 });
    results.push({ index: i, step, argv, code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut });
    if (o.settleMs) await sleep(o.settleMs);
    if (o.learnUuids !== false) await learnUuids(c, names);
  }
  return { results, names };
}

/** Normalize a run's results with one context (UUID numbering spans the run). */
export function normalizeResults(results: StepResult[], ctx: NormalizeContext): StepResult[] {
  return results.map((r) => {
    const isInfo = /lvmlockctl$/.test(r.argv[0] ?? '') && r.argv.some((a) => a === '--info' || a === '-i');
    const isReport = isLvmReport(r.argv);
    const drop = r.step.dropLines;
    const filt = (s: string) => (drop ? s.split('\n').filter((l) => !drop.test(l)).join('\n') : s);
    const f = (s: string) => filt(isInfo ? normalizeInfo(s, ctx, { sort: r.step.sortInfo }) : normalize(s, ctx));
    const out = (s: string) => (isReport ? collapseColumns(f(s)) : f(s));
    return { ...r, argv: r.argv.map((a) => normalize(a, ctx)), stdout: out(r.stdout), stderr: f(r.stderr) };
  });
}

/** `lvm pvs|vgs|lvs ...` (or the bare command name): an aligned lvm report table on stdout. */
export function isLvmReport(argv: string[]): boolean {
  const a = argv[0] === 'lvm' ? argv.slice(1) : argv;
  return /^(pvs|vgs|lvs|fullreport)$/.test(a[0] ?? '');
}

/**
 * One space between the columns of an lvm report table. lvm pads each column
 * to its widest value, and a loop device name is part of some values
 * (/dev/loop9 vs /dev/loop10 in the two clusters of a comparison, which run at
 * the same time), so the padding differs after the names are normalized. The
 * values themselves are still compared; the padding is lvm's, not the daemon's.
 */
export function collapseColumns(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/(\S) {2,}(?=\S)/g, '$1 ').replace(/ +$/, ''))
    .join('\n');
}

export interface RunOutcome {
  spec: DaemonSpec;
  raw: StepResult[];
  normalized: StepResult[];
  /** Daemon logs per host (for diagnosis), captured before teardown. */
  daemonLogs: string[];
}

/** Fresh cluster, daemons started per spec, script run, cluster destroyed. */
export async function runScriptFresh(steps: Step[], spec: DaemonSpec, o: ScriptOptions = {}): Promise<RunOutcome> {
  const c = await Cluster.create({ ...(o.cluster ?? {}), hosts: o.hosts ?? 2, disks: o.disks ?? [{ sizeMiB: 512 }], name: `cmp-${spec.kind}` });
  try {
    const hosts = o.daemonHosts ?? c.hosts.map((h) => h.index);
    for (const i of hosts) {
      if (spec.sanlock) await c.host(i).startSanlock();
      await c.host(i).startDaemon({ kind: spec.kind, binary: spec.binary, args: spec.args, env: spec.env });
    }
    if (o.setup) await o.setup(c);
    const run = await runScript(c, steps, { spec, settleMs: o.settleMs, stepTimeoutMs: o.stepTimeoutMs, learnUuids: o.learnUuids });
    const raw = run.results;
    const ctx = contextForCluster(c);
    for (const [u, t] of run.names) ctx.uuids.set(u, t);
    const normalized = normalizeResults(raw, ctx);
    return { spec, raw, normalized, daemonLogs: c.hosts.map((h) => h.daemonLog()) };
  } finally {
    await c.destroy();
  }
}

export interface FieldDiff {
  field: 'code' | 'stdout' | 'stderr';
  a: string;
  b: string;
}

export interface StepDiff {
  index: number;
  step: Step;
  fields: FieldDiff[];
}

export interface Comparison {
  a: RunOutcome;
  b: RunOutcome;
  diffs: StepDiff[];
  same: boolean;
}

/** Compare two normalized runs of the same script. */
export function diffRuns(a: StepResult[], b: StepResult[]): StepDiff[] {
  const diffs: StepDiff[] = [];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ra = a[i];
    const rb = b[i];
    const step = (ra ?? rb)!.step;
    if (!ra || !rb) {
      diffs.push({ index: i, step, fields: [{ field: 'code', a: ra ? String(ra.code) : '(missing)', b: rb ? String(rb.code) : '(missing)' }] });
      continue;
    }
    const ignore = new Set(step.ignore ?? []);
    const fields: FieldDiff[] = [];
    const ca = String(ra.code) + (ra.timedOut ? ' (timeout)' : '');
    const cb = String(rb.code) + (rb.timedOut ? ' (timeout)' : '');
    if (!ignore.has('code') && ca !== cb) fields.push({ field: 'code', a: ca, b: cb });
    if (!ignore.has('stdout') && ra.stdout !== rb.stdout) fields.push({ field: 'stdout', a: ra.stdout, b: rb.stdout });
    if (!ignore.has('stderr') && ra.stderr !== rb.stderr) fields.push({ field: 'stderr', a: ra.stderr, b: rb.stderr });
    if (fields.length) diffs.push({ index: i, step, fields });
  }
  return diffs;
}

/**
 * Run the script with daemon A and B on fresh clusters (at the same time
 * unless `o.sequential`) and diff the outputs.
 */
export async function compareDaemons(steps: Step[], a: DaemonSpec, b: DaemonSpec, o: ScriptOptions = {}): Promise<Comparison> {
  let ra: RunOutcome;
  let rb: RunOutcome;
  if (o.sequential) {
    ra = await runScriptFresh(steps, a, o);
    rb = await runScriptFresh(steps, b, o);
  } else {
    // Both runs finish (and tear down their cluster) before an error is reported.
    const [sa, sb] = await Promise.allSettled([runScriptFresh(steps, a, o), runScriptFresh(steps, b, o)]);
    if (sa.status === 'rejected') throw sa.reason;
    if (sb.status === 'rejected') throw sb.reason;
    ra = sa.value;
    rb = sb.value;
  }
  const diffs = diffRuns(ra.normalized, rb.normalized);
  return { a: ra, b: rb, diffs, same: diffs.length === 0 };
}

/** Line diff (LCS) in unified-like form: ' ' common, '-' only A, '+' only B. */
export function lineDiff(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  const m = x.length;
  const n = y.length;
  const L: number[][] = Array.from({ length: m + 1 }, () => new Array<number>(n + 1).fill(0));
  for (let i = m - 1; i >= 0; i--) {
    for (let j = n - 1; j >= 0; j--) {
      L[i]![j] = x[i] === y[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < m && j < n) {
    if (x[i] === y[j]) {
      out.push(`  ${x[i]}`);
      i++;
      j++;
    } else if (L[i + 1]![j]! >= L[i]![j + 1]!) {
      out.push(`- ${x[i++]}`);
    } else {
      out.push(`+ ${y[j++]}`);
    }
  }
  while (i < m) out.push(`- ${x[i++]}`);
  while (j < n) out.push(`+ ${y[j++]}`);
  return out.join('\n');
}

function specName(s: DaemonSpec): string {
  return `${s.kind}${s.args?.length ? ' ' + s.args.join(' ') : ''}`;
}

/**
 * Human-readable report of a comparison: each differing step with exit codes
 * and line diffs. showAll lists equal steps too; withOutput adds their
 * (normalized) output.
 */
export function formatComparison(cmp: Comparison, opts: { showAll?: boolean; withOutput?: boolean } = {}): string {
  const an = `A=${specName(cmp.a.spec)}`;
  const bn = `B=${specName(cmp.b.spec)}`;
  const lines: string[] = [];
  lines.push(`compare ${an} vs ${bn}: ${cmp.same ? 'no differences' : `${cmp.diffs.length} differing step(s)`} in ${cmp.a.normalized.length} steps`);
  const byIndex = new Map(cmp.diffs.map((d) => [d.index, d]));
  cmp.a.normalized.forEach((r, i) => {
    const d = byIndex.get(i);
    if (!d && !opts.showAll) return;
    lines.push('');
    lines.push(`${d ? '✗' : '✓'} step ${i + 1} host${r.step.host}${r.step.label ? ` (${r.step.label})` : ''}: $ ${shellQuote(r.argv)}`);
    if (!d && opts.withOutput) {
      lines.push(`    exit code: ${r.code}`);
      for (const [name, text] of [['stdout', r.stdout], ['stderr', r.stderr]] as const) {
        if (!text) continue;
        lines.push(`    ${name}:`);
        for (const l of text.replace(/\n$/, '').split('\n')) lines.push(`      ${l}`);
      }
    }
    for (const f of d?.fields ?? []) {
      if (f.field === 'code') lines.push(`    exit code: A ${f.a}  B ${f.b}`);
      else {
        lines.push(`    ${f.field} (- A, + B):`);
        for (const l of lineDiff(f.a, f.b).split('\n')) lines.push(`      ${l}`);
      }
    }
  });
  return lines.join('\n');
}
