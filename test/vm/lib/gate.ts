// Whether the VM tier runs: only when asked for (npm run test:vm sets
// LVMLOCKD_VM_TIER=1; plain `npm test` walks dist/test/ and must not boot
// VMs), and only where qemu can start. A skip always says why.

import { qemuUnavailable } from './vm';

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
