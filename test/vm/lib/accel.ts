// Which accelerator the VM tier boots its guests with: KVM when a guest really
// boots under it on this machine, TCG otherwise.
//
// A /dev/kvm that exists proves nothing: on some machines of our kind qemu
// aborts at once under KVM (an MSR it cannot set), on others a KVM guest runs
// at 100% CPU and never writes a byte to its serial console. So the choice is
// made from a real boot: the guest kernel is started under KVM with its
// console on qemu's stdout, and KVM is taken only if the kernel prints within
// a few seconds. The verdict is kept in the VM cache (per host boot, qemu
// binary and guest kernel), so the tier's test files, each a process of its
// own, probe once per run, and a cluster whose KVM guests stay silent writes
// a TCG verdict there before it boots again under TCG (vm.ts).
//
// LVMLOCKD_VM_ACCEL=kvm|tcg forces the choice; nothing is probed or cached.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Accel = 'kvm' | 'tcg';

export interface AccelVerdict {
  accel: Accel;
  /** Why, in words for the test log. */
  reason: string;
  /** Set by LVMLOCKD_VM_ACCEL: never overridden by a fallback. */
  forced?: boolean;
}

/** What one probe boot under KVM did. */
export type KvmProbeOutcome =
  | { kind: 'booted'; ms: number }
  | { kind: 'silent'; ms: number }
  | { kind: 'exited'; code: number | null; signal: string | null; stderr: string }
  | { kind: 'spawn-failed'; message: string };

/** How long a KVM guest may stay silent on its console before KVM is judged broken. */
export const KVM_CONSOLE_TIMEOUT_MS = 20_000;

/** The verdict for a probe outcome (pure: the decision the tests pin down). */
export function verdictFromProbe(o: KvmProbeOutcome): AccelVerdict {
  switch (o.kind) {
    case 'booted':
      return { accel: 'kvm', reason: `a guest kernel booted under KVM (first console output after ${o.ms} ms)` };
    case 'silent':
      return { accel: 'tcg', reason: `a guest under KVM wrote nothing to its console in ${o.ms} ms (KVM hangs here)` };
    case 'exited': {
      const why = o.stderr.trim().split('\n').filter(Boolean).slice(-2).join(' / ') || 'no message';
      return { accel: 'tcg', reason: `qemu under KVM exited before the guest printed anything (${o.signal ?? `exit ${o.code}`}: ${why})` };
    }
    case 'spawn-failed':
      return { accel: 'tcg', reason: `qemu could not be started for the KVM probe: ${o.message}` };
  }
}

/** A forced choice from the environment, or null; throws on a value that is neither. */
export function forcedAccel(value: string | undefined): AccelVerdict | null {
  if (value === undefined || value === '' || value === 'auto') return null;
  if (value === 'kvm' || value === 'tcg') return { accel: value, reason: `forced by LVMLOCKD_VM_ACCEL=${value}`, forced: true };
  throw new Error(`LVMLOCKD_VM_ACCEL=${value}: expected kvm, tcg or auto`);
}

export interface KvmProbeOptions {
  qemu?: string;
  kernel: string;
  initrd: string;
  timeoutMs?: number;
}

/**
 * Boot the guest kernel under KVM with its console on stdout; 'booted' on the
 * first byte the guest writes. qemu is killed by pid in every case.
 */
export function probeKvmBoot(opts: KvmProbeOptions): Promise<KvmProbeOutcome> {
  const timeoutMs = opts.timeoutMs ?? KVM_CONSOLE_TIMEOUT_MS;
  const args = [
    '-accel', 'kvm', '-cpu', 'host', '-machine', 'pc', '-smp', '1', '-m', '256',
    '-nodefaults', '-display', 'none', '-no-reboot',
    '-kernel', opts.kernel, '-initrd', opts.initrd,
    '-append', 'console=ttyS0 earlyprintk=ttyS0 loglevel=8 panic=-1',
    '-serial', 'stdio',
  ];
  const t0 = Date.now();
  return new Promise((resolve) => {
    let done = false;
    let stderr = '';
    const child = spawn(opts.qemu ?? 'qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const finish = (o: KvmProbeOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'silent', ms: Date.now() - t0 }), timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      if (d.length > 0) finish({ kind: 'booted', ms: Date.now() - t0 });
    });
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString('utf8')).slice(-4000); });
    child.on('error', (e) => finish({ kind: 'spawn-failed', message: e.message }));
    // 'close' comes after the last stdout chunk: a guest that printed and then died still booted
    child.on('close', (code, signal) => finish({ kind: 'exited', code, signal, stderr }));
  });
}

interface CachedVerdict extends AccelVerdict {
  key: string;
  at: string;
}

/**
 * What the verdict depends on: this host's boot (module state, a kernel
 * update), the qemu binary and the guest kernel.
 */
export function verdictKey(kernel: string, qemuPath = findQemu()): string {
  const parts: string[] = [];
  try { parts.push(fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()); } catch { parts.push('no-boot-id'); }
  for (const f of [qemuPath, kernel]) {
    try {
      const st = fs.statSync(f);
      parts.push(`${f}:${st.size}:${Math.floor(st.mtimeMs)}`);
    } catch {
      parts.push(`${f}:missing`);
    }
  }
  return parts.join('|');
}

function findQemu(): string {
  for (const dir of (process.env.PATH ?? '/usr/bin').split(':')) {
    const p = path.join(dir, 'qemu-system-x86_64');
    if (fs.existsSync(p)) return p;
  }
  return 'qemu-system-x86_64';
}

export function readCachedVerdict(file: string, key: string): AccelVerdict | null {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as CachedVerdict;
    if (c.key !== key || (c.accel !== 'kvm' && c.accel !== 'tcg') || typeof c.reason !== 'string') return null;
    return { accel: c.accel, reason: `${c.reason} [cached ${c.at}]` };
  } catch {
    return null;
  }
}

export function writeCachedVerdict(file: string, key: string, v: AccelVerdict): void {
  const c: CachedVerdict = { ...v, key, at: new Date().toISOString() };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(c) + '\n');
  fs.renameSync(tmp, file);
}

export interface ChooseAccelOptions {
  kernel: string;
  initrd: string;
  /** File that keeps the verdict between the tier's processes. */
  cacheFile: string;
  env?: string | undefined;
  kvmDevice?: string;
  probe?: (o: KvmProbeOptions) => Promise<KvmProbeOutcome>;
  log?: (s: string) => void;
}

/** The accelerator for this run: forced, cached, or from a probe boot. */
export async function chooseAccel(o: ChooseAccelOptions): Promise<AccelVerdict> {
  const log = o.log ?? (() => {});
  const forced = forcedAccel(o.env);
  if (forced) return forced;
  try {
    fs.accessSync(o.kvmDevice ?? '/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: `${o.kvmDevice ?? '/dev/kvm'} is missing or not read-write` };
  }
  const key = verdictKey(o.kernel);
  const cached = readCachedVerdict(o.cacheFile, key);
  if (cached) return cached;
  log('VM tier: probing KVM with a real guest boot');
  const verdict = verdictFromProbe(await (o.probe ?? probeKvmBoot)({ kernel: o.kernel, initrd: o.initrd }));
  writeCachedVerdict(o.cacheFile, key, verdict);
  return verdict;
}

/** Record that KVM guests stayed silent: later clusters of this run use TCG. */
export function recordKvmBroken(cacheFile: string, kernel: string, reason: string): void {
  writeCachedVerdict(cacheFile, verdictKey(kernel), { accel: 'tcg', reason });
}

/**
 * Wait until every file has at least one byte; resolves with the indexes of
 * the files still empty after timeoutMs (empty list: all wrote something).
 * `alive(i)` false stops waiting for file i (its qemu is gone).
 */
export async function waitFirstBytes(files: string[], timeoutMs: number, alive: (i: number) => boolean = () => true): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const size = (f: string): number => { try { return fs.statSync(f).size; } catch { return 0; } };
  for (;;) {
    const silent = files.map((f, i) => (size(f) > 0 || !alive(i) ? -1 : i)).filter((i) => i >= 0);
    if (silent.length === 0 || Date.now() >= deadline) return silent;
    await new Promise((r) => setTimeout(r, 200));
  }
}
