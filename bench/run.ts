// `npm run bench`: the lvmlockd lock_lv benchmark (ours vs C), the leases
// benchmark from bench/leases.ts when that module is present in this build, and
// the sanlock VG benchmark (bench/sanlock.ts: ours vs C lvmlockd + sanlock daemon
// with real LVM2 commands in namespace hosts; skipped without root or packages),
// the IDM VG benchmark (bench/idm.ts: IDM VGs of 1, 3 and 5 emulated drives against
// our daemon on a sanlock VG; skipped without root or lvm2), and the dlm VG
// benchmark in the VM tier's VMs (bench/dlm-vm.ts: ours vs C on the kernel DLM),
// and the IDM VG benchmark over TCMU SCSI disks in the VMs (bench/idm-vm.ts:
// IDM VGs of 1, 3 and 5 drives against a sanlock VG in the same VMs); the VM
// sections print NOT RUN, loudly, where qemu cannot start.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLockdBench, LockdBenchFailure, describeError } from './lockd';
import { runSanlockBench, SanlockBenchFailure } from './sanlock';
import { runIdmBench, IdmBenchFailure } from './idm';
import { runDlmVmBench, DlmVmBenchFailure, DLM_VM_NOT_RUN } from './dlm-vm';
import { runIdmVmBench, IdmVmBenchFailure, IDM_VM_NOT_RUN } from './idm-vm';

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
    ['dlm VGs in VMs (bench/dlm-vm.ts)', () => runDlmVmBench()],
    ['IDM VGs over SCSI in VMs (bench/idm-vm.ts)', () => runIdmVmBench()],
  ];
  const notRun: string[] = [];
  for (const [title, fn] of sections) {
    process.stdout.write(`\n=== ${title} ===\n`);
    try {
      const text = await fn();
      process.stdout.write(text);
      if (text.startsWith(DLM_VM_NOT_RUN) || text.startsWith(IDM_VM_NOT_RUN)) notRun.push(title);
    } catch (e) {
      if (e instanceof LockdBenchFailure || e instanceof SanlockBenchFailure || e instanceof IdmBenchFailure || e instanceof DlmVmBenchFailure || e instanceof IdmVmBenchFailure) {
        process.stdout.write(e.report);
      }
      else process.stdout.write(`FAILED: ${describeError(e)}\n`);
      code = 1;
    }
  }
  if (notRun.length) process.stdout.write(`\n*** NOT RUN (no figures): ${notRun.join(', ')} ***\n`);
  return code;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`bench: ${describeError(e)}\n`);
  process.exitCode = 1;
});
