// The sanlock manager's ties to this machine, made in the composition root:
// the host name its delta leases carry, the block sizes of a new VG's lvmlock
// device (sysfs) and the device check before a lockspace starts.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { SanlockLmDeps } from '../lm/sanlock/sanlock-lm';

/** sanlock's host name for this daemon: "<uuid>.<nodename>", at most 47 characters. */
export function sanlockHostName(): string {
  return `${randomUUID()}.${os.hostname()}`.slice(0, 47);
}

/** Reads /sys/dev/block/M:m/queue/{physical,logical}_block_size of a device node (0 when unknown). */
export function sysfsBlockSizes(path: string): { physical: number; logical: number } {
  const st = fs.statSync(path);
  const rdev = st.rdev;
  const major = Math.floor(rdev / 256) & 0xfff | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff);
  const read = (name: string): number => {
    try {
      const n = parseInt(fs.readFileSync(`/sys/dev/block/${major}:${minor}/queue/${name}`, 'utf8').trim(), 10);
      return Number.isFinite(n) ? n : 0;
    } catch {
      return 0;
    }
  };
  return { physical: read('physical_block_size'), logical: read('logical_block_size') };
}

/** The machine-bound part of SanlockLmDeps. */
export function sanlockMachineDeps(): Pick<SanlockLmDeps, 'blockSizes' | 'deviceExists' | 'hostName'> {
  return { blockSizes: sysfsBlockSizes, deviceExists: fs.existsSync, hostName: sanlockHostName() };
}
