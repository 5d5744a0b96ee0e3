// An emulated IDM drive with an NVMe/TCP front end: one firmware (state file
// as the socket drive's) and one namespace backed by a file, served to every
// host that connects (`idm-drive --nvme-tcp ADDR:PORT --nqn NQN --backing FILE`).
// The drive's identifiers (serial, EUI-64, NGUID, UUID) derive from its WWN,
// so each drive is distinct and stays the same across restarts.

import { IdmFirmware, type FirmwareOptions } from '../firmware';
import { loadFirmwareState } from '../drive-server';
import { NvmeDrive } from './controller';
import { NvmeTcpTarget } from './target';
import type { DriveIdentity } from './identify';
import { createHash } from 'node:crypto';

export interface NvmeTcpDriveOptions {
  host: string;
  port: number;
  nqn: string;
  backingPath: string;
  statePath: string;
  /** 16 hex digits. */
  wwn: string;
  versionMajor?: number;
  firmware?: Partial<FirmwareOptions>;
  log?: (line: string) => void;
}

export function identityFromWwn(wwn: string, nqn: string, versionMajor = 8): DriveIdentity {
  const w = Buffer.from(wwn.padStart(16, '0').slice(-16), 'hex');
  const h = createHash('sha256').update(`${wwn}\0${nqn}`).digest();
  const uuid = Buffer.from(h.subarray(16, 32));
  uuid[6] = (uuid[6]! & 0x0f) | 0x40;
  uuid[8] = (uuid[8]! & 0x3f) | 0x80;
  return {
    serial: `IDM${wwn.slice(-12).toUpperCase()}`,
    model: 'LVMLKDTS IDM EMULATED NVMe',
    firmwareRev: '0001',
    subnqn: nqn,
    eui64: w,
    nguid: Buffer.concat([w, h.subarray(0, 8)]),
    uuid,
    idmVersionMajor: versionMajor,
    idmVersionMinor: 0,
  };
}

export async function startNvmeTcpDrive(o: NvmeTcpDriveOptions): Promise<{ target: NvmeTcpTarget; port: number }> {
  const firmware = new IdmFirmware(loadFirmwareState(o.statePath), o.firmware ?? {});
  const drive = new NvmeDrive({
    identity: identityFromWwn(o.wwn, o.nqn, o.versionMajor), firmware, statePath: o.statePath, backingPath: o.backingPath, log: o.log,
  });
  const target = new NvmeTcpTarget(drive, o.log);
  const port = await target.listen(o.port, o.host);
  return { target, port };
}
