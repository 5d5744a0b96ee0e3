// In-process emulated IDM drives on one manual clock, for tests of the ILM's
// raid layer without sockets or sleeping: every command costs a millisecond;
// a drive marked down fails every command with -EIO, like a pulled disk.

import { IdmFirmware } from '../../src/idm/firmware';
import { ScsiTarget } from '../../src/idm/scsi-target';
import { DriveCommands } from '../../src/ilm/drive-commands';
import type { LockDrive, RaidEnv } from '../../src/ilm/raid-lock';
import type { DriveTransport, ScsiCommand, ScsiReply } from '../../src/idm/transport';

const EIO = 5;

export class ManualClock implements RaidEnv {
  ms = 10_000;
  nowMs(): number { return this.ms; }
  utcMs(): bigint { return BigInt(this.ms); }
  async sleep(ms: number): Promise<void> { this.ms += Math.max(ms, 1); }
  randomInt(lo: number): number { return lo; }
}

export class InProcessDrive implements DriveTransport {
  down = false;
  readonly target = new ScsiTarget(new IdmFirmware(), { wwn: '1', versionMajor: 8 });
  constructor(readonly path: string, private readonly clock: ManualClock) {}
  async execute(cmd: ScsiCommand): Promise<ScsiReply> {
    this.clock.ms += 1;
    if (this.down) return { ok: false, errno: -EIO, message: 'down' };
    return { ok: true, ...this.target.execute(cmd.cdb, cmd.dataOut, cmd.dataInBytes, this.clock.ms) };
  }
  close(): void {}
}

export function inProcessDrives(n: number, clock: ManualClock): { drives: InProcessDrive[]; lockDrives: LockDrive[] } {
  const drives = Array.from({ length: n }, (_, i) => new InProcessDrive(`d${i}`, clock));
  return { drives, lockDrives: drives.map((d) => ({ id: d.path, cmds: new DriveCommands(d) })) };
}
