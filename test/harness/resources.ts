// Bookkeeping of everything a harness cluster creates (processes, loop
// devices, its temp dir), so that it can be torn down by pid/device even
// after failures, from a synchronous process 'exit' handler, or by a later
// run when the owning process died (stale-run reaper).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killPid, pidAlive, pidStartTime, descendants, runCommandSync, waitPidGoneSync } from './exec';

export const DIR_PREFIX = 'lvmlockd-harness-';

export interface TrackedPid {
  pid: number;
  start: string | null;
  what: string;
}

export interface TrackedLoop {
  device: string;
  backingFile: string;
}

interface StateFile {
  ownerPid: number;
  ownerStart: string | null;
  pids: TrackedPid[];
  loops: TrackedLoop[];
}

/** Backing file of a loop device according to sysfs, or null if unbound. */
export function loopBackingFile(device: string): string | null {
  const name = path.basename(device);
  try {
    return fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
  } catch {
    return null;
  }
}

export class ResourceTracker {
  readonly pids: TrackedPid[] = [];
  readonly loops: TrackedLoop[] = [];
  private released = false;

  constructor(readonly dir: string, readonly keepDir = false) {
    this.save();
  }

  addPid(pid: number, what: string): void {
    this.pids.push({ pid, start: pidStartTime(pid), what });
    this.save();
  }

  forgetPid(pid: number): void {
    const i = this.pids.findIndex((p) => p.pid === pid);
    if (i >= 0) this.pids.splice(i, 1);
    this.save();
  }

  addLoop(device: string, backingFile: string): void {
    this.loops.push({ device, backingFile });
    this.save();
  }

  forgetLoop(device: string): void {
    const i = this.loops.findIndex((l) => l.device === device);
    if (i >= 0) this.loops.splice(i, 1);
    this.save();
  }

  private save(): void {
    if (this.released) return;
    const st: StateFile = {
      ownerPid: process.pid,
      ownerStart: pidStartTime(process.pid),
      pids: this.pids,
      loops: this.loops,
    };
    try {
      fs.writeFileSync(path.join(this.dir, 'resources.json'), JSON.stringify(st, null, 1));
    } catch {
      /* dir gone */
    }
  }

  /** Synchronous, idempotent teardown of everything still tracked. */
  releaseSync(): string[] {
    const errors = releaseState({ pids: this.pids, loops: this.loops }, this.dir, this.keepDir);
    this.pids.length = 0;
    this.loops.length = 0;
    this.released = true;
    if (this.keepDir) fs.rmSync(path.join(this.dir, 'resources.json'), { force: true });
    return errors;
  }
}

/** Kill a tracked pid (and its descendants) if it is still the same process. */
export function killTrackedSync(p: TrackedPid, graceMs = 300): void {
  if (!pidAlive(p.pid)) return;
  if (p.start !== null && pidStartTime(p.pid) !== p.start) return; // pid reused
  const kids = descendants(p.pid);
  killPid(p.pid, 'SIGTERM');
  if (!waitPidGoneSync(p.pid, graceMs)) killPid(p.pid, 'SIGKILL');
  waitPidGoneSync(p.pid, 2000);
  for (const k of kids) if (pidAlive(k)) killPid(k, 'SIGKILL');
}

/** Detach a loop device only if it is still bound to our backing file. */
export function detachLoopSync(l: TrackedLoop): string | null {
  const backing = loopBackingFile(l.device);
  if (backing === null) return null;
  const want = l.backingFile;
  if (backing !== want && backing !== `${want} (deleted)`) return null; // not ours any more
  for (let i = 0; i < 10; i++) {
    const r = runCommandSync(['losetup', '-d', l.device], { timeoutMs: 10_000 });
    if (r.code === 0 || loopBackingFile(l.device) === null) return null;
    const sab = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(sab, 0, 0, 100);
  }
  return `losetup -d ${l.device} failed`;
}

function releaseState(st: { pids: TrackedPid[]; loops: TrackedLoop[] }, dir: string, keepDir: boolean): string[] {
  const errors: string[] = [];
  // Daemons before holders: reverse creation order.
  for (const p of [...st.pids].reverse()) {
    try {
      killTrackedSync(p);
    } catch (e) {
      errors.push(`kill ${p.pid} (${p.what}): ${String(e)}`);
    }
  }
  // Mapper emulation loops were created after the disks: reverse order.
  for (const l of [...st.loops].reverse()) {
    const e = detachLoopSync(l);
    if (e) errors.push(e);
  }
  if (!keepDir) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      errors.push(`rm ${dir}: ${String(e)}`);
    }
  }
  return errors;
}

/**
 * Tear down what harness runs left behind when their owning process died
 * (SIGKILL, crash). Runs of live processes (other test files, other
 * engineers) are left alone.
 */
export function reapStaleRuns(tmpRoot = os.tmpdir()): string[] {
  const reaped: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(tmpRoot);
  } catch {
    return reaped;
  }
  for (const n of names) {
    if (!n.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(tmpRoot, n);
    let st: StateFile;
    try {
      st = JSON.parse(fs.readFileSync(path.join(dir, 'resources.json'), 'utf8')) as StateFile;
    } catch {
      continue;
    }
    const ownerAlive = pidAlive(st.ownerPid) && (st.ownerStart === null || pidStartTime(st.ownerPid) === st.ownerStart);
    if (ownerAlive) continue;
    releaseState(st, dir, false);
    reaped.push(dir);
  }
  return reaped;
}
