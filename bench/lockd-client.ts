// The lock_lv load generator of bench/lockd.ts, run as a process of its own.
//
// It shares the 2 CPUs with the daemon it measures, so it is kept as cheap per
// round trip as a client can be in Node: frames encoded once per client, one
// write per request, the reply checked by a scan for `response = "OK"` and
// `op_result = N` instead of a parse into a tree, callbacks instead of a promise
// per request, and nothing else in its event loop (the bench runner's syslog
// receivers, /proc sampling and reporting stay in the runner process).
//
//   node dist/bench/lockd-client.js '<json ClientJob>'
// prints one line of JSON (ClientResult) and exits 0, or a message on stderr and exits 1.

import * as fs from 'node:fs';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameDecoder, encodeFrame } from '../src/protocol/framing';
import { formatRequest } from '../src/protocol/config-tree';
import { nearestRank } from './stats';

export interface ClientTarget {
  lv: string;
  lvUuid: string;
  lockType: LockType;
  lvArgs: string;
  /** the PVs under the LV (IDM: sent as path[N] keys, as lvm does) */
  pvs?: string[];
}

export interface ClientJob {
  label: string;
  sockPath: string;
  daemonPid: number;
  clients: number;
  contended: boolean;
  /** makes the LV uuids of this case and round unique */
  tag: number;
  warmupSeconds: number;
  seconds: number;
  maxOps: number;
  vg: string;
  vgLockArgs: string;
  /** one LV for every client (default: a test-mode dlm LV per client, see lvUuid) */
  target?: ClientTarget;
  /** client i locks targets[i % length] (overrides target): real LVs, one per client */
  targets?: ClientTarget[];
  /** also return every measured round trip (latency and mode) in ClientResult.samples */
  keepSamples?: boolean;
}

export type LockType = 'dlm' | 'sanlock' | 'idm';

export interface ClientResult {
  ops: number;
  seconds: number;
  p50us: number;
  p90us: number;
  p99us: number;
  maxUs: number;
  acquired: number;
  /** with keepSamples: measured round trips in order, [microseconds, 1 = ex / 0 = un] */
  samples?: Array<[number, number]>;
  /** [op_result, count] over measured round trips */
  results: Array<[number, number]>;
  /** daemon utime+stime over the measured window, seconds (10 ms ticks) */
  daemonCpuSeconds: number;
  /** this process's CPU over the measured window, seconds */
  clientCpuSeconds: number;
}

/** A `lock_lv` request with the keys `lvchange` sends (2.03.16), without the persistent flag. */
export interface LockLvTarget {
  vg: string;
  lv: string;
  lvUuid: string;
  lockType: LockType;
  vgArgs: string;
  lvArgs: string;
  /** IDM: the PVs under the LV, sent as lvm sends them (see pathFields) */
  pvs?: readonly string[];
}

/**
 * The PV list of an IDM request in the order lvm 2.03.16 writes it (seen in an
 * strace of `lvchange -aey` and `vgchange --lock-start` on an IDM VG: `request`,
 * then `path[N-1]` ... `path[0]`, then `path_num`, then the other keys in
 * their usual order). A path lvm does not know is sent as "none".
 */
export function pathFields(pvs: readonly string[] | undefined): Array<[string, string | number]> {
  if (!pvs || pvs.length === 0) return [];
  const out: Array<[string, string | number]> = [];
  for (let i = pvs.length - 1; i >= 0; i--) out.push([`path[${i}]`, pvs[i] || 'none']);
  out.push(['path_num', pvs.length]);
  return out;
}

export function lockLvFrame(t: LockLvTarget, mode: 'ex' | 'un', pid = process.pid): Buffer {
  return encodeFrame(formatRequest([
    ['request', 'lock_lv'],
    ...pathFields(t.pvs),
    ['cmd', 'bench'],
    ['pid', pid],
    ['mode', mode],
    ['opts', 'none'],
    ['vg_name', t.vg],
    ['lv_name', t.lv],
    ['lv_uuid', t.lvUuid],
    ['vg_lock_type', t.lockType],
    ['vg_lock_args', t.vgArgs],
    ['lv_lock_args', t.lvArgs],
  ]));
}

export function lvUuid(tag: number, i: number): string {
  // 38 characters, LVM's 6-4-4-4-4-4-6 layout
  const s = `B${tag.toString(36).padStart(2, '0')}${i.toString(36).padStart(3, '0')}`.padEnd(6, 'x');
  return `${s}-Bnch-LvUu-idAa-Bbbb-Cccc-Dd${String(i).padStart(4, '0')}`;
}

/** utime+stime of a process (all threads), in seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after ")" start at field 3 (state); utime = 14, stime = 15
    return (Number(rest[14 - 3]) + Number(rest[15 - 3])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/**
 * op_result of a reply, or a string saying what is wrong with it. Both
 * daemons answer `response = "OK"` and `op_result = N` on lines of their own.
 */
export function replyResult(text: string): number | string {
  if (!text.startsWith('response = "OK"\n') && !text.includes('\nresponse = "OK"\n')) return `not OK: ${JSON.stringify(text)}`;
  const at = text.indexOf('op_result = ');
  if (at < 0) return `no op_result: ${JSON.stringify(text)}`;
  const n = parseInt(text.slice(at + 12, at + 24), 10);
  return Number.isFinite(n) ? n : `bad op_result: ${JSON.stringify(text)}`;
}

const HELLO = encodeFrame('request = "hello"\n');

const percentile = nearestRank;

export function runClientJob(job: ClientJob): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const lat = new Float64Array(job.maxOps);
    /** 1 = the round trip was an ex, 0 = an un (kept only with keepSamples) */
    const wasEx = job.keepSamples ? new Uint8Array(job.maxOps) : null;
    let nLat = 0;
    let measuring = false;
    let stopping = false;
    let acquired = 0;
    let tStart = 0;
    let tEnd = 0;
    let daemonCpu0 = 0;
    let daemonCpu1 = 0;
    let client0 = process.cpuUsage();
    let clientCpu = 0;
    const results = new Map<number, number>();
    const socks: net.Socket[] = [];
    let running = 0;
    let failed = false;
    const timers: NodeJS.Timeout[] = [];

    const fail = (msg: string): void => {
      if (failed) return;
      failed = true;
      for (const t of timers) clearTimeout(t);
      for (const s of socks) s.destroy();
      reject(new Error(`${job.label}: ${msg} (${measuring ? 'measuring' : stopping ? 'stopping' : 'warm-up'})`));
    };

    const endMeasure = (): void => {
      if (!measuring) return;
      measuring = false;
      stopping = true;
      tEnd = performance.now();
      daemonCpu1 = cpuSeconds(job.daemonPid);
      const u = process.cpuUsage(client0);
      clientCpu = (u.user + u.system) / 1e6;
    };

    const finishOne = (): void => {
      if (--running > 0 || failed) return;
      for (const t of timers) clearTimeout(t);
      const samples: Array<[number, number]> | undefined = wasEx
        ? Array.from({ length: nLat }, (_, i) => [lat[i]!, wasEx[i]!] as [number, number])
        : undefined;
      const sorted = lat.subarray(0, nLat).sort();
      resolve({
        ops: nLat,
        seconds: (tEnd - tStart) / 1000,
        p50us: percentile(sorted, 0.5),
        p90us: percentile(sorted, 0.9),
        p99us: percentile(sorted, 0.99),
        maxUs: sorted.length ? sorted[sorted.length - 1]! : NaN,
        acquired,
        results: [...results],
        daemonCpuSeconds: daemonCpu1 - daemonCpu0,
        clientCpuSeconds: clientCpu,
        ...(samples ? { samples } : {}),
      });
    };

    const startClient = (idx: number, sock: net.Socket): void => {
      const given = job.targets?.length ? job.targets[idx % job.targets.length] : job.target;
      const lvName = given?.lv ?? (job.contended ? 'lvhot' : `lv${idx}`);
      const target: LockLvTarget = given
        ? { vg: job.vg, lv: lvName, lvUuid: given.lvUuid, lockType: given.lockType, vgArgs: job.vgLockArgs, lvArgs: given.lvArgs, pvs: given.pvs ?? [] }
        : { vg: job.vg, lv: lvName, lvUuid: lvUuid(job.tag, job.contended ? 999 : idx), lockType: 'dlm', vgArgs: job.vgLockArgs, lvArgs: 'dlm' };
      const ex = lockLvFrame(target, 'ex');
      const un = lockLvFrame(target, 'un');
      const decoder = new FrameDecoder();
      let sentEx = true;
      let t0 = 0;
      let counted = false;
      const send = (frame: Buffer): void => {
        sentEx = frame === ex;
        counted = measuring;
        t0 = performance.now();
        sock.write(frame);
      };
      sock.on('data', (d: Buffer) => {
        for (const ev of decoder.push(d)) {
          if (ev.kind === 'overflow') return fail('reply too large');
          const t1 = performance.now();
          const rv = replyResult(ev.text);
          if (typeof rv === 'string') return fail(`lock_lv ${sentEx ? 'ex' : 'un'} ${lvName}: ${rv}`);
          if (counted && measuring) {
            if (wasEx) wasEx[nLat] = sentEx ? 1 : 0;
            lat[nLat++] = (t1 - t0) * 1000;
            results.set(rv, (results.get(rv) ?? 0) + 1);
            if (sentEx && rv === 0) acquired++;
            if (nLat >= job.maxOps) endMeasure();
          }
          if (rv !== 0 && (!job.contended || !sentEx)) return fail(`lock_lv ${sentEx ? 'ex' : 'un'} ${lvName} returned op_result ${rv}`);
          if (stopping && (!sentEx || rv !== 0)) {
            // every client ends with its LV unlocked
            sock.end();
            finishOne();
            return;
          }
          // contended: an ex refused is retried; otherwise ex, un, ex, ...
          send(sentEx && rv === 0 ? un : ex);
        }
      });
      send(ex);
    };

    // One connection after the other, each with its hello answered before the next
    // (the C daemon's listen backlog is short: a burst of connects gets EAGAIN).
    const connectOne = (i: number): void => {
      if (failed) return;
      if (i === job.clients) { begin(); return; }
      const sock = net.createConnection({ path: job.sockPath });
      socks.push(sock);
      sock.on('error', (e) => fail(`client ${i + 1} of ${job.clients}: ${e.message}`));
      sock.on('close', () => { if (!failed && running > 0 && !stopping) fail(`client ${i + 1}: daemon closed the connection`); });
      sock.once('connect', () => {
        const dec = new FrameDecoder();
        const onHello = (d: Buffer): void => {
          const evs = dec.push(d);
          if (!evs.length) return;
          sock.off('data', onHello);
          const ev = evs[0]!;
          if (ev.kind !== 'message' || !ev.text.includes('response = "OK"')) return fail(`hello of client ${i + 1} refused`);
          connectOne(i + 1);
        };
        sock.on('data', onHello);
        sock.write(HELLO);
      });
    };
    const begin = (): void => {
      running = job.clients;
      timers.push(setTimeout(() => {
        measuring = true;
        tStart = performance.now();
        daemonCpu0 = cpuSeconds(job.daemonPid);
        client0 = process.cpuUsage();
      }, job.warmupSeconds * 1000));
      timers.push(setTimeout(endMeasure, (job.warmupSeconds + job.seconds) * 1000));
      timers.push(setTimeout(() => fail('did not finish (daemon stopped answering?)'), (job.warmupSeconds + job.seconds) * 1000 + 15_000));
      socks.forEach((s, i) => startClient(i, s));
    };
    connectOne(0);
  });
}

if (require.main === module) {
  const job = JSON.parse(process.argv[2] ?? '{}') as ClientJob;
  runClientJob(job).then((r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
  }, (e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}

/**
 * One connection to a daemon socket with one request at a time: every reply
 * resolves the request in flight; a reply nobody waits for, a reply over the
 * frame limit, a socket error or close fail the connection and every later
 * request. A request without a reply in `timeoutMs` fails it too.
 */
export class OneRequestClient {
  private readonly decoder = new FrameDecoder();
  private waiter: { resolve: (t: string) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  private constructor(private readonly sock: net.Socket, readonly label: string) {
    sock.setNoDelay?.(true);
    sock.on('data', (d: Buffer) => {
      for (const ev of this.decoder.push(d)) {
        const w = this.waiter;
        this.waiter = null;
        if (ev.kind === 'overflow') this.fail(new Error(`${label}: reply too large`));
        else if (w) w.resolve(ev.text);
        else this.fail(new Error(`${label}: unsolicited reply`));
      }
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error(`${label}: the daemon closed the connection`)));
  }

  static connect(sockPath: string, label: string): Promise<OneRequestClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: sockPath });
      s.once('connect', () => { s.off('error', onError); resolve(new OneRequestClient(s, label)); });
      const onError = (e: Error): void => reject(new Error(`${label}: cannot connect to ${sockPath}: ${e.message}`));
      s.once('error', onError);
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  request(frame: Buffer, timeoutMs = 30_000): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new Error(`${this.label}: request already outstanding`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`${this.label}: no reply in ${timeoutMs} ms`)), timeoutMs);
      this.waiter = {
        resolve: (t) => { clearTimeout(timer); resolve(t); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.sock.write(frame);
    });
  }

  close(): void {
    this.failure ??= new Error('closed');
    this.sock.destroy();
  }
}

/** The word after `name` on a command line, if `name` is there. */
export function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}
