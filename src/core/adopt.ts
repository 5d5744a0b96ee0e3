// Lock adoption at daemon start (lvmlockd's adopt_locks with --adopt 1): the
// lockspaces and LV locks a previous daemon instance recorded in its adopt
// file are taken back before any client is served. The shell reads the file
// and filters out inactive LVs; this runs the lockspace starts and lock
// requests through the normal core paths, as internal actions.

import { AF, E, INTERNAL_CLIENT_ID, type LmType } from './constants';
import { newAction, type Action } from './model';
import type { Lockspace } from './lockspace';

export interface AdoptLv { uuid: string; lvArgs: string; mode: 'sh' | 'ex' }
export interface AdoptVg {
  vgUuid: string;
  vgName: string;
  lmType: LmType;
  vgArgs: string;
  /** host_id the previous instance used here (0: the daemon's default). */
  hostId?: number;
  lvs: AdoptLv[];
}

export interface AdoptSummary {
  /** Lockspaces started (continued) for adoption. */
  started: number;
  /** LV locks adopted. */
  adopted: number;
  /** Orphan leases released afterwards. */
  purged: number;
  /** Lockspace or lock adoptions that failed (lvmlockd: "adopt_locks failed, reset host"). */
  failures: number;
}

/** What the adoption needs from the core. */
export interface AdoptHost {
  debug(msg: string): void;
  error(msg: string): void;
  /** Runs an internal action; resolves with it once its result is set. */
  submit(act: Action): Promise<Action>;
  findLockspace(name: string): Lockspace | undefined;
  lsName(vgName: string): string;
  /** The manager of this lock type can continue lockspaces and adopt locks. */
  adoptsLocks(lm: LmType): boolean;
  /** Lockspaces of this lock type were continued: serve the global lock with it unless chosen. */
  useGlOf(lm: LmType): void;
}

const MODE_NAME = { sh: 'sh', ex: 'ex' } as const;

export async function adoptLocks(h: AdoptHost, vgs: readonly AdoptVg[]): Promise<AdoptSummary> {
  const sum: AdoptSummary = { started: 0, adopted: 0, purged: 0, failures: 0 };
  if (vgs.length === 0) {
    h.debug('No lockspaces in adopt file');
    return sum;
  }
  for (const vg of vgs) {
    h.debug(`adopt vg ${vg.vgName} lock_type ${vg.lmType} lock_args ${vg.vgArgs}`);
    for (const lv of vg.lvs) h.debug(`adopt lv ${vg.vgName} ${lv.uuid}`);
  }

  // Start (continue) the lockspaces.
  const usable = vgs.filter((vg) => {
    if (h.adoptsLocks(vg.lmType)) return true;
    if (vg.lvs.length) {
      h.error(`adopt vg ${vg.vgName}: lock type ${vg.lmType} cannot be adopted, ${vg.lvs.length} LV locks not adopted`);
      sum.failures++;
    } else {
      h.debug(`adopt skip vg ${vg.vgName} lock type ${vg.lmType}`);
    }
    return false;
  });
  const starts = usable.map(async (vg) => {
    h.debug(`adopt add ${vg.lmType} vg lockspace ${vg.vgName}`);
    const act = await h.submit(newAction({
      op: 'start', rt: 'vg', clientId: INTERNAL_CLIENT_ID, flags: AF.ADOPT_ONLY | AF.WAIT,
      lmType: vg.lmType, vgName: vg.vgName, vgUuid: vg.vgUuid, vgArgs: vg.vgArgs, hostId: vg.hostId ?? 0,
    }));
    if (act.result === -E.ADOPT_NONE) {
      if (vg.lvs.length) {
        h.error(`No lockspace ${h.lsName(vg.vgName)} ${vg.lmType} found for VG ${vg.vgName} with active LVs`);
        sum.failures++;
      } else {
        h.debug(`No ls found for vg ${vg.vgName}`);
      }
      return null;
    }
    if (act.result < 0) {
      h.error(`adopt add lockspace failed vg ${vg.vgName} ${act.result}`);
      sum.failures++;
      return null;
    }
    sum.started++;
    return vg;
  });
  h.debug(`adopt starting ${usable.length} lockspaces`);
  const started = (await Promise.all(starts)).filter((v): v is AdoptVg => v !== null);
  if (started.length) h.useGlOf(started[0]!.lmType);
  h.debug(`adopt started ${usable.length} lockspaces done ${usable.length} fail ${usable.length - started.length}`);

  // Adopt LV locks in their recorded mode; try the VG and global locks (sh, then ex).
  const jobs: Array<Promise<Action | null>> = [];
  for (const vg of started) {
    for (const lv of vg.lvs) {
      h.debug(`adopt lock for lv ${vg.vgName} ${lv.uuid}`);
      jobs.push(adoptOne(h, sum, newAction({
        op: 'lock', rt: 'lv', mode: lv.mode, clientId: INTERNAL_CLIENT_ID, flags: AF.ADOPT_ONLY | AF.PERSISTENT,
        lmType: vg.lmType, vgName: vg.vgName, lvUuid: lv.uuid, lvArgs: lv.lvArgs,
      })));
    }
    h.debug(`adopt lock for vg ${vg.vgName}`);
    jobs.push(adoptOne(h, sum, newAction({
      op: 'lock', rt: 'vg', mode: 'sh', clientId: INTERNAL_CLIENT_ID, flags: AF.ADOPT_ONLY, lmType: vg.lmType, vgName: vg.vgName,
    })));
  }
  if (started.length) {
    h.debug('adopt lock for gl');
    jobs.push(adoptOne(h, sum, newAction({
      op: 'lock', rt: 'gl', mode: 'sh', clientId: INTERNAL_CLIENT_ID, flags: AF.ADOPT_ONLY, lmType: started[0]!.lmType,
    })));
  }
  const toUnlock = (await Promise.all(jobs)).filter((a): a is Action => a !== null);

  // The adopted VG and global locks were only held by the dead instance's commands: release them.
  await Promise.all(toUnlock.map(async (act) => {
    if (act.mode === 'ex') h.error(`adopt releasing ex ${act.rt} lock ${act.vgName}`);
    h.debug(`adopt unlock for ${act.rt} ${act.vgName}`);
    act.mode = 'un';
    act.result = 0;
    const done = await h.submit(act);
    if (done.result < 0) h.error(`adopt unlock error ${done.result}`);
  }));

  // Leases the previous instance held that were not adopted (inactive LVs, locks never
  // recorded) would block other hosts for as long as we live: release them.
  for (const vg of started) {
    const ls = h.findLockspace(h.lsName(vg.vgName));
    if (!ls || !ls.createDone || ls.threadStop) continue;
    const n = ls.managed.purgeOrphans ? await ls.managed.purgeOrphans() : 0;
    if (n < 0) {
      h.error(`adopt purge orphans in ${ls.name} error ${n}`);
      sum.failures++;
    } else {
      sum.purged += n;
      h.debug(`adopt purge orphans in ${ls.name} released ${n}`);
    }
  }
  if (sum.failures) h.error(`adopt_locks failed, reset host (${sum.failures} failures)`);
  else h.debug('adopt_locks done');
  return sum;
}

/** One lock adoption, retried once in the other mode on -EADOPT_RETRY. Returns VG/GL actions to unlock. */
async function adoptOne(h: AdoptHost, sum: AdoptSummary, act: Action): Promise<Action | null> {
  let done = await h.submit(act);
  if (done.result === -E.ADOPT_RETRY) {
    if (act.rt !== 'lv' && act.mode === 'sh') act.mode = 'ex';
    else if (act.rt === 'lv') act.mode = act.mode === 'ex' ? 'sh' : 'ex';
    act.result = 0;
    act.retries = 0;
    done = await h.submit(act);
  }
  const what = act.rt === 'lv' ? `lv ${act.vgName} ${act.lvUuid}` : `${act.rt} ${act.vgName}`;
  const r = done.result;
  if (r === 0) {
    h.debug(`adopt success ${what} ${MODE_NAME[act.mode as 'sh' | 'ex']}`);
    if (act.rt === 'lv') { sum.adopted++; return null; }
    return act;
  }
  if (r === -E.ADOPT_NONE || (act.rt === 'gl' && r === -E.NOLS)) {
    if (act.rt === 'lv') {
      h.error(`Failed to adopt LV lock for ${act.vgName} ${act.lvUuid} error ${r}`);
      sum.failures++;
    } else {
      h.debug(`Did not adopt ${act.rt} lock in vg ${act.vgName} error ${r}`);
    }
    return null;
  }
  h.error(`adopt lock rt ${act.rt} vg ${act.vgName} lv ${act.lvUuid} error ${r}`);
  sum.failures++;
  return null;
}
