// An emulated IDM drive with an NVMe/TCP front end: one firmware (state file
// as the socket drive's) and one namespace backed by a file, served to every
// host that connects (`idm-drive --nvme-tcp ADDR:PORT --nqn NQN --backing FILE`).
// The drive's identifiers derive from its WWN, so each drive is distinct and
// stays the same across restarts. Only an EUI-64 (= the WWN) names the
// namespace: the kernel then shows wwid "eui.<16 hex>", which is what
// propeller parses from udev's ID_WWN (it strips "eui." and reads the rest as
// one 64-bit number; a UUID or a 128-bit NGUID would break that).

import { IdmFirmware, type FirmwareOptions } from '../firmware';
import { loadFirmwareState } from '../drive-server';
import { NvmeDrive } from './controller';
import { NvmeTcpTarget } from './target';
import type { DriveIdentity } from './identify';

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
  return {
    serial: `IDM${wwn.slice(-12).toUpperCase()}`,
    model: 'LVMLKDTS IDM EMULATED NVMe',
    firmwareRev: '0001',
    subnqn: nqn,
    eui64: w,
    nguid: Buffer.alloc(16),
    uuid: Buffer.alloc(16),
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
