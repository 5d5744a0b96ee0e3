// Whether the VM tier runs: only when asked for (npm run test:vm sets
// LVMLOCKD_VM_TIER=1; plain `npm test` walks dist/test/ and must not boot
// VMs), and only where qemu can start. A skip always says why.

import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import * as path from 'node:path';
import { qemuUnavailable } from './vm';
import { repoRoot } from '../../harness/cluster';

let reported = false;

export function vmSkipReason(): string | false {
  if (process.env.LVMLOCKD_VM_TIER !== '1') return 'VM tier not requested (run: npm run test:vm)';
  const why = qemuUnavailable();
  if (why) {
    if (!reported) {
      reported = true;
      process.stderr.write(`\n*** VM tier SKIPPED: qemu cannot start here: ${why} ***\n\n`);
    }
    return `VM tier: qemu cannot start here: ${why}`;
  }
  return false;
}

/** Log to stderr with a timestamp (shows up in the test output). */
export function vmLog(s: string): void {
  process.stderr.write(`[vm ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
}

/**
 * Scenarios with OUR daemon running a real lock manager (no -T) run when the
 * daemon says it has that manager: `lvmlockd --version` lists them
 * ("lock managers: sanlock dlm"). LVMLOCKD_VM_TS_SANLOCK / LVMLOCKD_VM_TS_DLM
 * =1 forces them, =0 skips them.
 */
export function tsLmSkipReason(lm: 'sanlock' | 'dlm'): string | false {
  const base = vmSkipReason();
  if (base) return base;
  const envName = `LVMLOCKD_VM_TS_${lm.toUpperCase()}`;
  const env = process.env[envName];
  if (env === '1') return false;
  if (env === '0') return `${envName}=0`;
  const managers = tsLockManagers();
  if (managers === null) return `our lvmlockd --version failed (not built?); ${envName}=1 forces`;
  if (managers.includes(lm)) return false;
  return `our lvmlockd has no ${lm} lock manager (lvmlockd --version lists: ${managers.join(' ') || 'none'}); ${envName}=1 forces`;
}

/** The lock managers our lvmlockd reports in --version, or null when it cannot run. */
export function tsLockManagers(): string[] | null {
  const bin = path.join(repoRoot(), 'bin', 'lvmlockd');
  try {
    const out = execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8', timeout: 30_000 });
    const m = /lock managers: ([a-z ]*)\]/.exec(out);
    return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
  } catch {
    return null;
  }
}

export function tsSanlockSkipReason(): string | false {
  return tsLmSkipReason('sanlock');
}

/**
 * describe() for a VM scenario file. When skipped, it registers one skipped
 * test carrying the reason, so the runner counts "skipped 1" (a skipped
 * describe() alone would close with "tests 0").
 */
export function describeVm(name: string, opts: { skip: string | false; timeout: number }, fn: () => void): void {
  if (opts.skip) {
    test(name, { skip: opts.skip }, () => {});
    return;
  }
  describe(name, { timeout: opts.timeout }, fn);
}
