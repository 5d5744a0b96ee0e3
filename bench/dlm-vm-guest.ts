// Guest side of the dlm VM bench (bench/dlm-vm.ts): runs inside a VM of the
// VM tier with the repo's node, and speaks the libdaemon protocol to the
// lvmlockd of that VM (ours or C, whichever runs) on its socket.
//
//   node /repo/dist/bench/dlm-vm-guest.js '<json GuestJob>'
// prints one line of JSON (LoopResult or PingPongResult) and exits 0, or a
// message on stderr and exits 1.
//
// Modes:
//  - loop, expect "granted": lock_lv ex, lock_lv un, ex, un, ... on one
//    connection for `seconds` after `warmupSeconds`; every reply must be
//    op_result 0. The VM's own lock path with no other holder.
//  - loop, expect "refused": lock_lv ex over and over while the other VM
//    holds the LV lock ex; every reply must be a refusal (op_result != 0).
//  - pingpong: the LV lock goes back and forth between the two VMs. Role "a"
//    listens on a TCP port of its VM's address, role "b" connects; then a: ex,
//    un, "go" to b; b: ex, un, "go" to a; ... Each ex is the acquisition of a
//    lock that the other VM released just before (its un had returned).

import * as fs from 'node:fs';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeFrame } from '../src/protocol/framing';
import { OneRequestClient, cpuSeconds, lockLvFrame, replyResult, type LockLvTarget } from './lockd-client';

export interface LoopJob {
  mode: 'loop';
  label: string;
  sockPath: string;
  /** pid file of the VM's lvmlockd (CPU time is read from /proc/<pid>/stat) */
  pidFile: string;
  target: LockLvTarget;
  expect: 'granted' | 'refused';
  warmupSeconds: number;
  seconds: number;
  /** upper bound on measured round trips */
  maxOps: number;
  /** more processes of the VM whose CPU time over the measured window is wanted, by group (IDM: ILM, TCMU, drives) */
  cpuPids?: Record<string, number[]>;
}

export interface PingPongJob {
  mode: 'pingpong';
  label: string;
  role: 'a' | 'b';
  sockPath: string;
  target: LockLvTarget;
  /** a: the address to listen on; b: the address of a */
  address: string;
  port: number;
  /** measured hand-overs (each side does one ex + un per hand-over) */
  handovers: number;
  /** hand-overs before the measured ones */
  warmup: number;
  /** the whole job's limit, seconds */
  timeoutSeconds: number;
}

export type GuestJob = LoopJob | PingPongJob;

export interface LoopResult {
  /** latencies in microseconds, rounded to 0.1 */
  exUs: number[];
  unUs: number[];
  seconds: number;
  /** [op_result, count] of the measured ex replies */
  exResults: Array<[number, number]>;
  /** lvmlockd utime+stime over the measured window, seconds (10 ms ticks) */
  daemonCpuSeconds: number;
  clientCpuSeconds: number;
  /** utime+stime over the measured window per group of LoopJob.cpuPids, seconds */
  groupCpuSeconds?: Record<string, number>;
}

export interface PingPongResult {
  exUs: number[];
  unUs: number[];
  /** ex refused (op_result != 0) before the grant, over measured hand-overs */
  refusals: number;
  seconds: number;
}

const HELLO = encodeFrame('request = "hello"\n');

/** One connection to the daemon, one request at a time, opened with a hello. */
export class DaemonConn {
  private constructor(private readonly conn: OneRequestClient) {}

  get label(): string {
    return this.conn.label;
  }

  static async open(sockPath: string, label: string): Promise<DaemonConn> {
    const c = new DaemonConn(await OneRequestClient.connect(sockPath, label));
    const r = await c.request(HELLO);
    if (!r.includes('response = "OK"')) throw new Error(`${label}: hello refused: ${JSON.stringify(r)}`);
    return c;
  }

  request(frame: Buffer, timeoutMs = 60_000): Promise<string> {
    return this.conn.request(frame, timeoutMs);
  }

  /** op_result of one lock_lv request and its round-trip time in microseconds. */
  async lockLv(frame: Buffer): Promise<[number, number]> {
    const t0 = performance.now();
    const text = await this.request(frame);
    const us = (performance.now() - t0) * 1000;
    const rv = replyResult(text);
    if (typeof rv === 'string') throw new Error(`${this.label}: lock_lv: ${rv}`);
    return [rv, us];
  }

  close(): void {
    this.conn.close();
  }
}

const round1 = (us: number): number => Math.round(us * 10) / 10;

function readPid(pidFile: string): number {
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${pidFile}: no pid`);
  return pid;
}

/** CPU seconds so far of each group's processes (NaN when one of them is gone). */
function groupCpu(groups: Record<string, number[]> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, pids] of Object.entries(groups ?? {})) out[k] = pids.reduce((t, p) => t + cpuSeconds(p), 0);
  return out;
}

export async function runLoop(job: LoopJob): Promise<LoopResult> {
  const pid = readPid(job.pidFile);
  const conn = await DaemonConn.open(job.sockPath, job.label);
  const ex = lockLvFrame(job.target, 'ex');
  const un = lockLvFrame(job.target, 'un');
  const exUs: number[] = [];
  const unUs: number[] = [];
  const exResults = new Map<number, number>();
  const what = `${job.target.vg}/${job.target.lv}`;
  try {
    const tWarm = performance.now();
    let t0 = 0;
    let cpu0 = 0;
    let groups0: Record<string, number> = {};
    let client0 = process.cpuUsage();
    let measuring = false;
    for (;;) {
      const now = performance.now();
      if (!measuring && now - tWarm >= job.warmupSeconds * 1000) {
        measuring = true;
        t0 = now;
        cpu0 = cpuSeconds(pid);
        groups0 = groupCpu(job.cpuPids);
        client0 = process.cpuUsage();
      }
      if (measuring && (now - t0 >= job.seconds * 1000 || exUs.length + unUs.length >= job.maxOps)) break;
      const [rv, us] = await conn.lockLv(ex);
      if (job.expect === 'granted') {
        if (rv !== 0) throw new Error(`${job.label}: lock_lv ex ${what} returned op_result ${rv} with no other holder`);
        const [rvu, usu] = await conn.lockLv(un);
        if (rvu !== 0) throw new Error(`${job.label}: lock_lv un ${what} returned op_result ${rvu}`);
        if (measuring) { exUs.push(round1(us)); unUs.push(round1(usu)); }
      } else {
        if (rv === 0) {
          await conn.lockLv(un).catch(() => undefined);
          throw new Error(`${job.label}: lock_lv ex ${what} was GRANTED although the other VM should hold it ex`);
        }
        if (measuring) exUs.push(round1(us));
      }
      if (measuring) exResults.set(rv, (exResults.get(rv) ?? 0) + 1);
    }
    const seconds = (performance.now() - t0) / 1000;
    const daemonCpuSeconds = cpuSeconds(pid) - cpu0;
    const groups1 = groupCpu(job.cpuPids);
    const u = process.cpuUsage(client0);
    const out: LoopResult = { exUs, unUs, seconds, exResults: [...exResults], daemonCpuSeconds, clientCpuSeconds: (u.user + u.system) / 1e6 };
    if (job.cpuPids) out.groupCpuSeconds = Object.fromEntries(Object.keys(groups1).map((k) => [k, groups1[k]! - groups0[k]!]));
    return out;
  } finally {
    conn.close();
  }
}

/** Lines from a TCP peer, one at a time. */
class LineReader {
  private buf = '';
  private lines: string[] = [];
  private waiter: { resolve: (l: string) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(sock: net.Socket, label: string) {
    sock.setEncoding('utf8');
    sock.setNoDelay(true);
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.flush();
    });
    sock.on('error', (e) => this.fail(new Error(`${label}: peer: ${e.message}`)));
    sock.on('close', () => this.fail(new Error(`${label}: the peer closed the connection`)));
  }

  private flush(): void {
    if (this.waiter && this.lines.length) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(this.lines.shift()!);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  next(): Promise<string> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }
}

async function peerSocket(job: PingPongJob, deadline: number): Promise<net.Socket> {
  if (job.role === 'a') {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      const timer = setTimeout(() => { server.close(); reject(new Error(`${job.label}: role b did not connect to ${job.address}:${job.port}`)); }, Math.max(0, deadline - Date.now()));
      server.once('connection', (s) => { clearTimeout(timer); server.close(); resolve(s); });
      server.once('error', (e) => { clearTimeout(timer); reject(new Error(`${job.label}: listen ${job.address}:${job.port}: ${e.message}`)); });
      server.listen(job.port, job.address);
    });
  }
  // b: a may not listen yet; retry until the deadline
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection({ host: job.address, port: job.port });
        s.once('connect', () => { s.off('error', reject); resolve(s); });
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${job.label}: cannot connect to ${job.address}:${job.port}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function runPingPong(job: PingPongJob): Promise<PingPongResult> {
  const deadline = Date.now() + job.timeoutSeconds * 1000;
  const conn = await DaemonConn.open(job.sockPath, job.label);
  const ex = lockLvFrame(job.target, 'ex');
  const un = lockLvFrame(job.target, 'un');
  const what = `${job.target.vg}/${job.target.lv}`;
  const exUs: number[] = [];
  const unUs: number[] = [];
  let refusals = 0;
  let sock: net.Socket | null = null;
  const guard = setTimeout(() => {
    process.stderr.write(`${job.label}: did not finish within ${job.timeoutSeconds} s\n`);
    process.exit(1);
  }, job.timeoutSeconds * 1000);
  try {
    sock = await peerSocket(job, deadline);
    const peer = new LineReader(sock, job.label);
    const total = job.warmup + job.handovers;
    let t0 = performance.now();
    // One turn: ex until granted (a refusal means the other VM's unlock had not
    // reached this VM's lock yet: counted, retried after 1 ms), then un.
    const turn = async (i: number): Promise<void> => {
      const measured = i >= job.warmup;
      if (i === job.warmup) t0 = performance.now();
      const tEx = performance.now();
      for (;;) {
        const [rv] = await conn.lockLv(ex);
        if (rv === 0) break;
        if (measured) refusals++;
        if (Date.now() > deadline) throw new Error(`${job.label}: lock_lv ex ${what} still refused (op_result ${rv}) at the deadline`);
        await new Promise((r) => setTimeout(r, 1));
      }
      const usEx = (performance.now() - tEx) * 1000;
      const [rvu, usUn] = await conn.lockLv(un);
      if (rvu !== 0) throw new Error(`${job.label}: lock_lv un ${what} returned op_result ${rvu}`);
      if (measured) { exUs.push(round1(usEx)); unUs.push(round1(usUn)); }
    };
    if (job.role === 'a') {
      for (let i = 0; i < total; i++) {
        await turn(i);
        sock.write('go\n');
        const l = await peer.next();
        if (l !== 'go') throw new Error(`${job.label}: unexpected line from b: ${JSON.stringify(l)}`);
      }
      sock.write('end\n');
    } else {
      for (let i = 0; ; i++) {
        const l = await peer.next();
        if (l === 'end') break;
        if (l !== 'go') throw new Error(`${job.label}: unexpected line from a: ${JSON.stringify(l)}`);
        await turn(i);
        sock.write('go\n');
      }
    }
    return { exUs, unUs, refusals, seconds: (performance.now() - t0) / 1000 };
  } finally {
    clearTimeout(guard);
    sock?.end();
    conn.close();
  }
}

export function runGuestJob(job: GuestJob): Promise<LoopResult | PingPongResult> {
  if (job.mode === 'loop') return runLoop(job);
  if (job.mode === 'pingpong') return runPingPong(job);
  return Promise.reject(new Error(`unknown mode ${JSON.stringify((job as { mode?: unknown }).mode)}`));
}

if (require.main === module) {
  let job: GuestJob;
  try {
    job = JSON.parse(process.argv[2] ?? '') as GuestJob;
  } catch {
    process.stderr.write('usage: dlm-vm-guest.js \'<json job>\'\n');
    process.exit(2);
  }
  runGuestJob(job).then((r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
  }, (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
