// Reading the adopt file that lvmlockd writes with --adopt 1 (format 1.0):
//   lvmlockd adopt_version 1.0 pid <pid> updates <n> <ctime>
//   VG: <vg_uuid> <vg_name> <lock_type> <vg_args>
//   LV: <vg_uuid> <lv_uuid> <lv_args> <mode> <version>
// Lines starting with '#' and unknown lines are skipped, as lvmlockd does; a
// bad header, VG or LV line makes the whole file unusable.

import type { LmType } from '../core/constants';
import type { AdoptVg } from '../core/adopt';

export type AdoptFileResult = { ok: true; vgs: AdoptVg[] } | { ok: false; error: string };

const LM_TYPES: ReadonlySet<string> = new Set(['dlm', 'sanlock', 'idm']);

export function parseAdoptFile(text: string): AdoptFileResult {
  const vgs: AdoptVg[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const where = `line ${i + 1}`;
    if (line.startsWith('#')) continue;
    const f = line.trim().split(/\s+/);
    if (line.startsWith('lvmlockd')) {
      const m = /^lvmlockd adopt_version (\d+)\.(\d+)/.exec(line);
      if (!m || m[1] !== '1') return { ok: false, error: `${where}: unsupported header "${line.slice(0, 80)}"` };
    } else if (line.startsWith('VG:')) {
      if (f.length < 5) return { ok: false, error: `${where}: VG line needs uuid, name, lock type and args` };
      const [, vgUuid, vgName, lm, vgArgs] = f as [string, string, string, string, string];
      if (!LM_TYPES.has(lm)) return { ok: false, error: `${where}: unknown lock type "${lm}"` };
      vgs.push({ vgUuid, vgName, lmType: lm as LmType, vgArgs, lvs: [] });
    } else if (line.startsWith('LV:')) {
      if (f.length < 6) return { ok: false, error: `${where}: LV line needs vg uuid, lv uuid, args, mode and version` };
      const [, vgUuid, uuid, lvArgs, mode] = f as [string, string, string, string, string];
      if (mode !== 'ex' && mode !== 'sh') return { ok: false, error: `${where}: LV ${uuid} has mode "${mode}"` };
      const vg = vgs.find((v) => v.vgUuid === vgUuid);
      if (!vg) return { ok: false, error: `${where}: no VG line for LV ${uuid} vg_uuid ${vgUuid}` };
      // One line per lock: an LV locked twice (sh by two commands) is adopted once.
      if (!vg.lvs.some((l) => l.uuid === uuid)) vg.lvs.push({ uuid, lvArgs, mode });
    }
  }
  return { ok: true, vgs };
}
