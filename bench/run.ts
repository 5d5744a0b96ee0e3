// `npm run bench`: the lvmlockd lock_lv benchmark (ours vs C), the leases
// benchmark from bench/leases.ts when that module is present in this build, and
// the sanlock VG benchmark (bench/sanlock.ts: ours vs C lvmlockd + sanlock daemon
// with real LVM2 commands in namespace hosts; skipped without root or packages), and
// the IDM VG benchmark (bench/idm.ts: IDM VGs of 1, 3 and 5 emulated drives against
// our daemon on a sanlock VG; skipped without root or lvm2).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLockdBench, LockdBenchFailure, describeError } from './lockd';
import { runSanlockBench, SanlockBenchFailure } from './sanlock';
import { runIdmBench, IdmBenchFailure } from './idm';

type LeasesModule = { runLeasesBench?: () => Promise<string> };

async function runLeases(): Promise<string> {
  // Looked up at run time so this file compiles whether or not bench/leases.ts exists.
  const file = path.join(__dirname, 'leases.js');
  const source = path.resolve(__dirname, '..', '..', 'bench', 'leases.ts');
  if (!fs.existsSync(file) || !fs.existsSync(source)) {
    return 'leases bench: skipped, bench/leases.ts is not in this tree yet.\n';
  }
  const mod = require(file) as LeasesModule;
  if (typeof mod.runLeasesBench !== 'function') {
    return 'leases bench: skipped, bench/leases.ts does not export runLeasesBench().\n';
  }
  return mod.runLeasesBench();
}

async function main(): Promise<number> {
  let code = 0;
  const sections: Array<[string, () => Promise<string>]> = [
    ['lvmlockd lock_lv (bench/lockd.ts)', () => runLockdBench()],
    ['leases (bench/leases.ts)', runLeases],
    ['sanlock VGs (bench/sanlock.ts)', () => runSanlockBench()],
    ['IDM VGs, socket transport (bench/idm.ts)', () => runIdmBench()],
  ];
  for (const [title, fn] of sections) {
    process.stdout.write(`\n=== ${title} ===\n`);
    try {
      process.stdout.write(await fn());
    } catch (e) {
      if (e instanceof LockdBenchFailure || e instanceof SanlockBenchFailure || e instanceof IdmBenchFailure) process.stdout.write(e.report);
      else process.stdout.write(`FAILED: ${describeError(e)}\n`);
      code = 1;
    }
  }
  return code;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`bench: ${describeError(e)}\n`);
  process.exitCode = 1;
});
