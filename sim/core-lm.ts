/**
 * The lock managers of the core-level cluster's hosts (CoreLmFactory): the
 * test-mode managers, the real sanlock manager on one shared simulated LUN,
 * the real dlm manager on the DLM model of sim/dlm-model.ts, or the real IDM
 * manager talking to a simulated ILM over emulated drives (sim/idm-model.ts).
 */
import type { MutableGlobalLockChoice } from '../src/core/lockd';
import type { LmType } from '../src/core/constants';
import type { LockManager } from '../src/lm/types';
import { TestLockManager } from '../src/lm/test/test-lm';
import { SanlockLockManager } from '../src/lm/sanlock/sanlock-lm';
import { DlmLockManager } from '../src/lm/dlm/dlm-lm';
import { IdmLockManager } from '../src/lm/idm/idm-lm';
import type { IdmBugHooks } from '../src/lm/idm/idm-session';
import type { DlmClusterModel } from './dlm-model';
import { SimIlm, type IdmClusterModel } from './idm-model';
import type { SimHost } from './kernel/host';
import type { Rng } from './kernel/rng';
import type { SimStorage } from './kernel/storage';

/** What a host's lock managers get from the simulator. */
export interface CoreHostContext {
  host: SimHost;
  gl: MutableGlobalLockChoice;
  hostId: number;
  log(line: string): void;
}

/** Builds the lock managers of one host (one daemon incarnation). */
export type CoreLmFactory = (ctx: CoreHostContext) => Partial<Record<LmType, LockManager>>;

/** Default: the test-mode managers (what `lvmlockd -T` runs). */
export const testLmFactory: CoreLmFactory = (ctx) => {
  const hooks = { deviceExists: () => true, log: (l: string) => ctx.log(l), sleep: (ms: number) => ctx.host.clock.sleep(ms) };
  return {
    sanlock: new TestLockManager('sanlock', ctx.gl, hooks, () => ctx.hostId),
    dlm: new TestLockManager('dlm', ctx.gl, hooks, () => ctx.hostId),
  };
};

/** Size of the simulated lvmlock LV: lockspace, GL, VG and 8 LV lease slots (1 MiB align, 512-byte sectors). */
export const LVMLOCK_BYTES = (67 + 8) * 1024 * 1024;

/**
 * The real sanlock lock manager (src/lm/sanlock) of one host, on the shared
 * simulated LUN: every host opens the same SimStorage through its own SimDisk,
 * with its own clock and seeded random source. The dlm VG keeps the test manager.
 */
export function sanlockLmFactory(storage: SimStorage, rng: Rng, ioTimeout: number): CoreLmFactory {
  return (ctx) => {
    const hooks = { deviceExists: () => true, log: (l: string) => ctx.log(l), sleep: (ms: number) => ctx.host.clock.sleep(ms) };
    const sanlock = new SanlockLockManager({
      glChoice: ctx.gl,
      ioTimeout,
      defaultHostId: () => ctx.hostId,
      lockspaceCount: () => 0,
      debug: (l) => ctx.log(l),
      error: (l) => ctx.log(`ERROR ${l}`),
      sleep: (ms) => ctx.host.clock.sleep(ms),
      clock: ctx.host.clock,
      random: rng.fork(`lm-h${ctx.hostId}-${ctx.host.incarnation}`),
      openDisk: async () => storage.diskFor(ctx.host),
      blockSizes: () => ({ physical: 512, logical: 512 }),
      deviceExists: () => true,
      hostName: `simhost${ctx.hostId}.inc${ctx.host.incarnation}`,
    });
    return { sanlock, dlm: new TestLockManager('dlm', ctx.gl, hooks, () => ctx.hostId) };
  };
}

/**
 * The real dlm lock manager (src/lm/dlm) of one host on the DLM model
 * (sim/dlm-model.ts): each daemon incarnation is a new process on its node.
 * The sanlock VG keeps the test manager.
 */
export function dlmLmFactory(model: DlmClusterModel): CoreLmFactory {
  return (ctx) => {
    const hooks = { deviceExists: () => true, log: (l: string) => ctx.log(l), sleep: (ms: number) => ctx.host.clock.sleep(ms) };
    const node = model.node(ctx.hostId);
    node.dead = false;
    const proc = node.process();
    const dlm = new DlmLockManager({
      kernel: proc, control: node.control(), configfs: node.configfs(),
      debug: (l) => ctx.log(l), error: (l) => ctx.log(`ERROR ${l}`), sleep: (ms) => ctx.host.clock.sleep(ms),
    });
    return { sanlock: new TestLockManager('sanlock', ctx.gl, hooks, () => ctx.hostId), dlm };
  };
}

/**
 * The real IDM lock manager (src/lm/idm) of one host, connected to the ILM of
 * its machine (sim/idm-model.ts: the real ILM lockspace and raid-lock code on
 * emulated drives). Each daemon incarnation boots a new ILM too (a machine
 * crash ends both): a new ilm_uuid, so a new host to the drives. The global
 * lock is on every drive (each has a "propeller" partition). No other manager:
 * the global lock goes to idm (lvm_global), as on a host with only IDM VGs.
 */
export function idmLmFactory(
  model: IdmClusterModel, rng: Rng, onKillPath: (hostId: number, path: string, args: string) => void, hooks?: IdmBugHooks,
  /** The manager's debug log into the trace (replays); the schedules of a run leave it out. */
  trace?: (line: string) => void,
): CoreLmFactory {
  return (ctx) => {
    const ilm = new SimIlm(model, model.ilmProcess(ctx.host), ctx.host, rng.fork(`ilm-h${ctx.hostId}-${ctx.host.incarnation}`),
      (path, args) => onKillPath(ctx.hostId, path, args));
    const idm = new IdmLockManager({
      ilmRunning: () => true,
      connect: () => ilm.connect(),
      killPath: '/usr/sbin/lvmlockctl',
      utcUs: () => model.wallUs(ctx.hostId),
      glDrives: () => model.drives.map((d) => d.path),
      debug: (l) => (trace ? trace(`h${ctx.hostId} idm ${l}`) : ctx.log(l)),
      error: (l) => (trace ? trace(`h${ctx.hostId} idm ERROR ${l}`) : ctx.log(`ERROR ${l}`)),
      ...(hooks ? { hooks } : {}),
    });
    return { idm };
  };
}
