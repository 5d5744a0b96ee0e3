// The keys of an lvm request that lvmlockd reads, taken from the parsed entries
// in one pass. Looking each key up in turn (about twenty lookups, half of them
// for keys a lock_lv does not carry) compared every lookup key with every entry;
// here each entry is compared only with the known keys of its own length.
// The values are exactly what ConfigMap's lookups give (first occurrence, an
// array's first item, strings and integers only): a property test compares them.

import type { ConfigValue } from './config-tree';

export interface RequestFields {
  request: string | undefined;
  cmd: string | undefined;
  pid: bigint | undefined;
  mode: string | undefined;
  opts: string | undefined;
  vgName: string | undefined;
  vgUuid: string | undefined;
  lvName: string | undefined;
  lvUuid: string | undefined;
  vgLockType: string | undefined;
  vgLockArgs: string | undefined;
  lvLockArgs: string | undefined;
  setLockArgs: string | undefined;
  prevLvArgs: string | undefined;
  version: bigint | undefined;
  hostId: bigint | undefined;
  alignMb: bigint | undefined;
  lvSizeBytes: bigint | undefined;
  path: string | undefined;
  pathNum: bigint | undefined;
  maxRetries: bigint | undefined;
}

/** Each field's wire key (the property test and the unit test read it). */
export const REQUEST_FIELD_KEYS: Readonly<Record<keyof RequestFields, string>> = {
  request: 'request', cmd: 'cmd', pid: 'pid', mode: 'mode', opts: 'opts', vgName: 'vg_name', vgUuid: 'vg_uuid',
  lvName: 'lv_name', lvUuid: 'lv_uuid', vgLockType: 'vg_lock_type', vgLockArgs: 'vg_lock_args',
  lvLockArgs: 'lv_lock_args', setLockArgs: 'set_lock_args', prevLvArgs: 'prev_lv_args', version: 'version',
  hostId: 'host_id', alignMb: 'align_mb', lvSizeBytes: 'lv_size_bytes', path: 'path', pathNum: 'path_num',
  maxRetries: 'max_retries',
};

/** Which field a key names (its bit in requestFields' mask, 0-20), or -1; compared only with the keys of its length. */
function fieldCode(k: string): number {
  switch (k.length) {
    case 3: return k === 'cmd' ? 1 : k === 'pid' ? 2 : -1;
    case 4: return k === 'mode' ? 3 : k === 'opts' ? 4 : k === 'path' ? 18 : -1;
    case 7:
      return k === 'vg_name' ? 5 : k === 'lv_name' ? 7 : k === 'lv_uuid' ? 8 : k === 'request' ? 0
        : k === 'vg_uuid' ? 6 : k === 'version' ? 14 : k === 'host_id' ? 15 : -1;
    case 8: return k === 'align_mb' ? 16 : k === 'path_num' ? 19 : -1;
    case 11: return k === 'max_retries' ? 20 : -1;
    case 12:
      return k === 'vg_lock_type' ? 9 : k === 'vg_lock_args' ? 10 : k === 'lv_lock_args' ? 11
        : k === 'prev_lv_args' ? 13 : -1;
    case 13: return k === 'set_lock_args' ? 12 : k === 'lv_size_bytes' ? 17 : -1;
    default: return -1;
  }
}

/** Every field undefined, in one object shape. */
function emptyFields(): RequestFields {
  return {
    request: undefined, cmd: undefined, pid: undefined, mode: undefined, opts: undefined, vgName: undefined,
    vgUuid: undefined, lvName: undefined, lvUuid: undefined, vgLockType: undefined, vgLockArgs: undefined,
    lvLockArgs: undefined, setLockArgs: undefined, prevLvArgs: undefined, version: undefined, hostId: undefined,
    alignMb: undefined, lvSizeBytes: undefined, path: undefined, pathNum: undefined, maxRetries: undefined,
  };
}

/** Stores the value of field `code`: strings for string fields, integers (libdm's find_int) for the others. */
function setField(f: RequestFields, code: number, v: ConfigValue | undefined): void {
  const s = typeof v === 'string' ? v : undefined;
  const n = typeof v === 'bigint' ? v : undefined;
  switch (code) {
    case 0: f.request = s; return;
    case 1: f.cmd = s; return;
    case 2: f.pid = n; return;
    case 3: f.mode = s; return;
    case 4: f.opts = s; return;
    case 5: f.vgName = s; return;
    case 6: f.vgUuid = s; return;
    case 7: f.lvName = s; return;
    case 8: f.lvUuid = s; return;
    case 9: f.vgLockType = s; return;
    case 10: f.vgLockArgs = s; return;
    case 11: f.lvLockArgs = s; return;
    case 12: f.setLockArgs = s; return;
    case 13: f.prevLvArgs = s; return;
    case 14: f.version = n; return;
    case 15: f.hostId = n; return;
    case 16: f.alignMb = n; return;
    case 17: f.lvSizeBytes = n; return;
    case 18: f.path = s; return;
    case 19: f.pathNum = n; return;
    case 20: f.maxRetries = n; return;
  }
}

/** The fields of a request, from its parsed entries in wire order. */
export function requestFields(entries: ReadonlyArray<readonly [string, ConfigValue]>): RequestFields {
  const f = emptyFields();
  // The first entry of each key decides, whatever its type (as ConfigMap's first-match find).
  let seen = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const code = fieldCode(e[0]);
    if (code < 0 || (seen & (1 << code)) !== 0) continue;
    seen |= 1 << code;
    const raw = e[1];
    setField(f, code, Array.isArray(raw) ? raw[0] : raw);
  }
  return f;
}
