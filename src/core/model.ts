// The records the core keeps: actions (one per request or internal job),
// resources (GL, VG, LV locks of one lockspace) and the locks held on them.

import type { LmType, Mode, OpName, ResourceType } from './constants';
import type { LockOwner } from '../lm/types';

export interface Action {
  readonly id: number;          // unique per daemon run, for tracing
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

let nextActionId = 1;

export function newAction(fields: Partial<Action> & Pick<Action, 'op' | 'clientId'>): Action {
  return {
    id: nextActionId++,
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
