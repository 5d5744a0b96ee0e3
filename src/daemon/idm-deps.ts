// The IDM manager's ties to this machine, made in the composition root: the
// ILM socket (ILM_RUN_DIR as libseagate_ilm honours it), the kill path, the
// wall clock in microseconds and the global-lock drives (a sysfs scan, plus
// LVMLOCKD_IDM_GL_DRIVES for emulated drives, which are not SCSI disks).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { IlmClient, ilmSocketPath } from '../ilm/client';
import { tryLockFd } from '../util/libc';
import { scsiPropellerDrives, extraGlDrives, type SysfsReader } from '../lm/idm/gl-drives';
import type { IdmManagerDeps } from '../lm/idm/idm-lm';

/** C builds it from LVM_PATH (Debian: /sbin/lvm) + "lockctl". */
export const DEFAULT_IDM_KILL_PATH = '/sbin/lvmlockctl';

const sysfs: SysfsReader = {
  listDir: (p) => { try { return fs.readdirSync(p); } catch { return null; } },
  readFile: (p) => { try { return fs.readFileSync(p, 'utf8'); } catch { return null; } },
};

export function idmManagerDeps(log: { debug(l: string): void; error(l: string): void }): IdmManagerDeps {
  const socket = ilmSocketPath();
  // LVMLOCKD_IDM_TIMEOUT_MS: a test knob (C has the 60 s compiled in) so host-crash tests need not wait a minute.
  const timeout = Number(process.env.LVMLOCKD_IDM_TIMEOUT_MS);
  return {
    ...(Number.isInteger(timeout) && timeout > 0 ? { lockTimeoutMs: timeout } : {}),
    connect: () => IlmClient.connect(socket),
    ilmRunning: () => ilmRunning(socket),
    killPath: process.env.LVMLOCKD_IDM_KILL_PATH || DEFAULT_IDM_KILL_PATH,
    utcUs: () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)),
    glDrives: () => {
      const scanned = scsiPropellerDrives(sysfs);
      const extra = extraGlDrives(process.env.LVMLOCKD_IDM_GL_DRIVES);
      if (!scanned && extra.length === 0) return null;
      return [...(scanned ?? []), ...extra.filter((p) => !(scanned ?? []).includes(p))];
    },
    debug: (l) => log.debug(l),
    error: (l) => log.error(l),
  };
}

/**
 * lm_is_running_idm without creating an ILM lockspace (C connects and
 * disconnects): the socket exists and a live daemon holds the lock on main.pid.
 */
function ilmRunning(socket: string): boolean {
  try {
    if (!fs.statSync(socket).isSocket()) return false;
  } catch {
    return false;
  }
  let fd = -1;
  try {
    fd = fs.openSync(path.join(path.dirname(socket), 'main.pid'), fs.constants.O_RDWR);
    return !tryLockFd(fd); // got it: nobody holds it (closing gives it back)
  } catch {
    return false;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}
