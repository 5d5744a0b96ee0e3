// The records the core keeps: actions (one per request or internal job),
// resources (GL, VG, LV locks of one lockspace) and the locks held on them.

import type { LmType, Mode, OpName, ResourceType } from './constants';
import type { LockOwner } from '../lm/types';
import { assert } from '../util/assert';

export interface Action {
  clientId: number;
  op: OpName;
  rt: ResourceType | null;
  mode: Mode;
  flags: number;
  lmType: LmType;
  vgName: string;
  vgUuid: string;
  lvName: string;
  lvUuid: string;
  vgArgs: string;
  lvArgs: string;
  otherArgs: string;
  version: number;
  hostId: number;
  alignMb: number;
  lvSizeBytes: bigint;
  path: string;
  /** path[0..path_num-1]: the PVs an IDM start_vg or lock_lv is about. */
  pvs: string[];
  maxRetries: number;
  retries: number;
  result: number;
  lmResult: number;
  owner: LockOwner | null;
  prevGeneration: number;
  /** Internal actions (adoption): called with the result instead of replying to a client. */
  done?: (act: Action) => void;
}

export interface Lock {
  mode: Mode;
  version: number;
  persistent: boolean;
  clientId: number;             // 0 for persistent locks
}

export interface Resource {
  readonly name: string;
  readonly type: ResourceType;
  mode: Mode;
  shCount: number;
  version: number;
  versionZeroValid: boolean;
  readonly useValueBlock: boolean;
  lvArgs: string;
  lastClientId: number;
  disposeClientId: number;
  testRemote: 'ex' | 'sh' | null;
  locks: Lock[];
  actions: Action[];
}

export function newAction(fields: Partial<Action> & Pick<Action, 'op' | 'clientId'>): Action {
  return {
    rt: null, mode: 'un', flags: 0, lmType: 'none', vgName: '', vgUuid: '', lvName: '',
    lvUuid: '', vgArgs: '', lvArgs: '', otherArgs: '', version: 0, hostId: 0, alignMb: 0,
    lvSizeBytes: 0n, path: '', pvs: [], maxRetries: 4, retries: 0, result: 0, lmResult: 0, owner: null,
    prevGeneration: 0,
    ...fields,
  };
}

export function newResource(type: ResourceType, name: string): Resource {
  return {
    name, type, mode: 'un', shCount: 0, version: 0, versionZeroValid: false,
    useValueBlock: type !== 'lv', lvArgs: '', lastClientId: 0, disposeClientId: 0,
    testRemote: null, locks: [], actions: [],
  };
}

/**
 * A held resource's lock list agrees with its mode: every lock has the
 * resource's mode (so an ex lock excludes sh locks), and an ex resource has
 * exactly one lock. Checked where a lock is granted or converted.
 */
export function assertHeldLocksMatchMode(r: Resource): void {
  assert(r.mode === 'sh' || r.mode === 'ex', () => `resource ${r.name} has mode ${r.mode} after a grant`);
  assert(r.locks.length > 0, () => `resource ${r.name} is held ${r.mode} with no lock`);
  for (const lk of r.locks) {
    assert(lk.mode === r.mode, () => `resource ${r.name} is held ${r.mode} and has a ${lk.mode} lock (client ${lk.clientId})`);
  }
  if (r.mode === 'ex') assert(r.locks.length === 1, () => `resource ${r.name} has ${r.locks.length} ex locks`);
}
