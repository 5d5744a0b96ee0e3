// Whether the VM tier runs: only when asked for (npm run test:vm sets
// LVMLOCKD_VM_TIER=1; plain `npm test` walks dist/test/ and must not boot
// VMs), and only where qemu can start. A skip always says why.

import * as fs from 'node:fs';
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
 * Scenarios with OUR daemon managing sanlock VGs (no -T) run once the daemon
 * has the sanlock lock manager (dist/src/daemon/server.js wires
 * lm/sanlock/sanlock-lm). LVMLOCKD_VM_TS_SANLOCK=1 forces them, =0 skips them.
 */
export function tsSanlockSkipReason(): string | false {
  const base = vmSkipReason();
  if (base) return base;
  const env = process.env.LVMLOCKD_VM_TS_SANLOCK;
  if (env === '1') return false;
  if (env === '0') return 'LVMLOCKD_VM_TS_SANLOCK=0';
  const server = path.join(repoRoot(), 'dist', 'src', 'daemon', 'server.js');
  const lm = path.join(repoRoot(), 'dist', 'src', 'lm', 'sanlock', 'sanlock-lm.js');
  try {
    if (fs.existsSync(lm) && fs.readFileSync(server, 'utf8').includes('sanlock-lm')) return false;
  } catch { /* not built */ }
  return 'our lvmlockd has no sanlock lock manager in this build yet (dist/src/lm/sanlock/sanlock-lm.js not wired into the daemon); LVMLOCKD_VM_TS_SANLOCK=1 forces';
}
