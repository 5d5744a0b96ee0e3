// init_vg, init_lv and rename_vg of the sanlock manager: writing the lockspace
// and the lease slots of a VG's lvmlock LV (lvmlockd's *_san functions).

import { E, AF, MAX_ARGS, R_NAME_GL, R_NAME_VG } from '../../core/constants';
import type { InitLvRequest, InitVgRequest } from '../types';
import type { Disk } from '../../io/disk';
import * as L from '../../leases';
import { lockLvName } from '../lvm-names';
import { leaseRv } from './errors';
import {
  ARGS_VERSION, GL_LOCK_BEGIN, LV_LOCK_BEGIN, LV_UNUSED, ONE_MB, R_NAME_GL_DISABLED, VG_LOCK_BEGIN,
  readSlot, sizesForDevice, type SlotState,
} from './layout';
import { SanlockLockspace } from './lockspace';
import type { SanlockLockManager } from './sanlock-lm';

export async function initVg(m: SanlockLockManager, req: InitVgRequest): Promise<{ rv: number; vgArgs: string }> {
  const d = m.deps;
  const ls = req.lsName;
  const lockLv = req.vgArgs;
  if (!lockLv) {
    d.error(`S ${ls} init_vg_san vg_args missing`);
    return { rv: -E.ARGS, vgArgs: '' };
  }
  if (lockLv.length + ARGS_VERSION.length + 2 > MAX_ARGS) return { rv: -E.ARGS, vgArgs: '' };
  const path = m.devicePath(req.vgName, lockLv);
  d.debug(`S ${ls} init_vg_san path ${path} align ${req.alignMb}`);
  let sizes: { sectorSize: number; alignSize: number } | null;
  try {
    const bs = d.blockSizes(path);
    sizes = sizesForDevice(bs.physical, bs.logical, (w) => d.debug(`${w} for ${path}`));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    d.error(`Failed to stat device to get block size ${path} ${code ?? ''}`);
    return { rv: code === 'EACCES' ? -E.DEVOPEN : -E.ARGS, vgArgs: '' };
  }
  if (!sizes) {
    d.error(`S ${ls} init_vg_san error trying to get sector/align size of ${path}`);
    return { rv: -E.ARGS, vgArgs: '' };
  }
  if (sizes.sectorSize === 4096 && req.alignMb && req.alignMb !== 8) {
    if (![1, 2, 4].includes(req.alignMb)) {
      d.error(`S ${ls} init_vg_sanlock invalid align input ${req.alignMb}`);
      return { rv: -E.ARGS, vgArgs: '' };
    }
    sizes.alignSize = req.alignMb * ONE_MB;
  }
  const { sectorSize, alignSize } = sizes;
  let disk: Disk;
  try {
    disk = await d.openDisk(path);
  } catch (e) {
    d.error(`S ${ls} init_vg_san cannot open ${path}: ${(e as Error).message}`);
    return { rv: -E.DEVOPEN, vgArgs: '' };
  }
  try {
    d.debug(`S ${ls} init_vg_san ${path} sector_size ${sectorSize} align_size ${alignSize}`);
    try {
      await L.initLockspace(disk, 0, ls, { sectorSize, alignSize, ioTimeout: m.ioTimeout });
    } catch (e) {
      d.error(`S ${ls} init_vg_san write_lockspace error ${(e as Error).message}`);
      return { rv: leaseRv(e), vgArgs: '' };
    }
    let glName: string;
    if (req.flags & AF.ENABLE) glName = R_NAME_GL;
    else if (req.flags & AF.DISABLE) glName = R_NAME_GL_DISABLED;
    else if (d.glChoice.manager !== 'sanlock' || m.glInVg.glLockspace || d.lockspaceCount() > 0) glName = R_NAME_GL_DISABLED;
    else glName = R_NAME_GL;
    try {
      await L.initResource(disk, alignSize * GL_LOCK_BEGIN, ls, glName, { sectorSize, alignSize });
      await L.initResource(disk, alignSize * VG_LOCK_BEGIN, ls, R_NAME_VG, { sectorSize, alignSize });
    } catch (e) {
      d.error(`S ${ls} init_vg_san write_resource error ${(e as Error).message}`);
      return { rv: leaseRv(e), vgArgs: '' };
    }
    if (glName === R_NAME_GL) m.glInVg.glLockspace = ls;
    const vgArgs = `${ARGS_VERSION}:${lockLv}`;
    d.debug(`S ${ls} init_vg_san done vg_args ${vgArgs}`);
    d.debug(`S ${ls} init_vg_san clearing lv lease areas`);
    const size = await disk.size();
    for (let off = alignSize * LV_LOCK_BEGIN; off + alignSize <= size; off += alignSize) {
      try {
        await L.initResource(disk, off, ls, LV_UNUSED, { sectorSize, alignSize });
      } catch (e) {
        d.error(`clear lv resource area ${off} error ${(e as Error).message}`);
        return { rv: leaseRv(e), vgArgs: '' };
      }
    }
    return { rv: 0, vgArgs };
  } finally {
    await disk.close().catch(() => undefined);
  }
}

export async function initLv(m: SanlockLockManager, req: InitLvRequest): Promise<{ rv: number; lvArgs: string }> {
  const d = m.deps;
  const lockLv = lockLvName(req.vgArgs);
  if (lockLv === null) {
    d.error(`S ${req.lsName} init_lv_san lock_lv_name_from_args error ${req.vgArgs}`);
    return { rv: -E.ARGS, lvArgs: '' };
  }
  const managed = req.lockspace instanceof SanlockLockspace ? req.lockspace : null;
  const path = managed?.diskPath ?? m.devicePath(req.vgName, lockLv);
  let disk: Disk;
  let own = false;
  if (managed?.disk) disk = await managed.refreshDisk();
  else {
    try { disk = await d.openDisk(path); own = true; } catch (e) {
      d.error(`S ${req.lsName} init_lv_san cannot open ${path}: ${(e as Error).message}`);
      return { rv: -E.DEVOPEN, lvArgs: '' };
    }
  }
  try {
    let sectorSize = managed?.sectorSize ?? 0;
    let alignSize = managed?.alignSize ?? 0;
    if (!sectorSize || !alignSize) {
      try {
        const g = await L.readLeaseSizes(disk, 0, m.ioTimeout);
        sectorSize = g.sectorSize;
        alignSize = g.alignSize;
      } catch (e) {
        d.error(`S ${req.lsName} init_lv_san read_lockspace error ${(e as Error).message}`);
        return { rv: leaseRv(e), lvArgs: '' };
      }
    }
    const size = await disk.size();
    let off = managed?.freeLockOffset || alignSize * LV_LOCK_BEGIN;
    for (;; off += alignSize) {
      if (off + alignSize > size) {
        d.debug(`S ${req.lsName} init_lv_san read limit offset ${off}`);
        return { rv: -E.MSGSIZE, lvArgs: '' };
      }
      let slot: SlotState;
      try {
        slot = await readSlot(disk, off, sectorSize, m.ioTimeout);
      } catch (e) {
        d.error(`S ${req.lsName} init_lv_san read error ${(e as Error).message} offset ${off}`);
        return { rv: leaseRv(e), lvArgs: '' };
      }
      if (slot.kind === 'lease' && slot.name === req.lvUuid) {
        d.error(`S ${req.lsName} init_lv_san resource name ${req.lvUuid} already exists at ${off}`);
        return { rv: -E.EXIST, lvArgs: '' };
      }
      if (slot.kind === 'empty' || (slot.kind === 'lease' && slot.name === LV_UNUSED)) {
        d.debug(`S ${req.lsName} init_lv_san ${req.lvUuid} found unused area at ${off}`);
        try {
          await L.initResource(disk, off, req.lsName, req.lvUuid, { sectorSize, alignSize });
        } catch (e) {
          d.error(`S ${req.lsName} init_lv_san write error ${(e as Error).message} offset ${off}`);
          return { rv: leaseRv(e), lvArgs: '' };
        }
        return { rv: 0, lvArgs: `${ARGS_VERSION}:${off}` };
      }
    }
  } finally {
    if (own) await disk.close().catch(() => undefined);
  }
}

export async function renameVg(m: SanlockLockManager, lsName: string, vgName: string, vgArgs: string): Promise<number> {
  const d = m.deps;
  if (!vgArgs) { d.error(`S ${lsName} rename_vg_san vg_args missing`); return -E.INVAL; }
  const lockLv = lockLvName(vgArgs);
  if (lockLv === null) return -E.ARGS;
  const path = m.devicePath(vgName, lockLv);
  d.debug(`S ${lsName} rename_vg_san path ${path}`);
  await d.sleep(1000); // as lvmlockd: the renamed device may not be ready at once
  let disk: Disk;
  try { disk = await d.openDisk(path); } catch (e) {
    d.error(`S ${lsName} rename_vg_san cannot open ${path}: ${(e as Error).message}`);
    return -E.DEVOPEN;
  }
  try {
    let g: { sectorSize: number; alignSize: number };
    try {
      g = await L.readLeaseSizes(disk, 0, m.ioTimeout);
    } catch (e) {
      d.error(`S ${lsName} rename_vg_san read_lockspace error ${(e as Error).message}`);
      return leaseRv(e);
    }
    const { sectorSize, alignSize } = g;
    try {
      await L.initLockspace(disk, 0, lsName, { sectorSize, alignSize, ioTimeout: m.ioTimeout });
    } catch (e) {
      d.error(`S ${lsName} rename_vg_san write_lockspace error ${(e as Error).message}`);
      return leaseRv(e);
    }
    const size = await disk.size();
    for (let off = alignSize * GL_LOCK_BEGIN; off + alignSize <= size; off += alignSize) {
      let slot: SlotState;
      try { slot = await readSlot(disk, off, sectorSize, m.ioTimeout); } catch (e) {
        d.error(`S ${lsName} rename_vg_san read_resource area ${off} error ${(e as Error).message}`);
        return off < alignSize * LV_LOCK_BEGIN ? leaseRv(e) : 0;
      }
      if (slot.kind !== 'lease') {
        if (off < alignSize * LV_LOCK_BEGIN) return -E.LMERR;
        break;
      }
      try {
        await L.initResource(disk, off, lsName, slot.name, { sectorSize, alignSize });
      } catch (e) {
        d.error(`S ${lsName} rename_vg_san write_resource area ${off} error ${(e as Error).message}`);
        return off < alignSize * LV_LOCK_BEGIN ? leaseRv(e) : 0;
      }
    }
    return 0;
  } finally {
    await disk.close().catch(() => undefined);
  }
}
