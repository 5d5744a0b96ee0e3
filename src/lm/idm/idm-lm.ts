// The IDM lock manager for the core: each lockspace (a VG, or lvm_global)
// is an IdmSession with its own connection to the ILM daemon (seagate_ilm or
// ours). Nothing is created on disk by init_vg/init_lv; the drives themselves
// arbitrate. The global lock has a lockspace of its own (lvm_global), as with
// dlm. None of the optional capabilities: no global lock inside VGs, no lock
// slots, no adoption after a daemon restart (C: "TODO: adoption").

import type {
  InitVgRequest, LockManager, LockResult, LockspaceEvents, LockspaceView, ManagedLockspace,
  LockOptions, PrepareResult, ResourceView,
} from '../types';
import { IdmSession, type IdmResource, type IdmSessionDeps } from './idm-session';

/** What every lockspace's session needs, plus the running check. */
export type IdmManagerDeps = Omit<IdmSessionDeps, 'lsName' | 'vgName' | 'vgUuid'> & {
  /** Whether an ILM daemon answers here (lm_is_running_idm). */
  ilmRunning(): boolean;
};

export class IdmLockManager implements LockManager {
  readonly type = 'idm' as const;

  constructor(private readonly deps: IdmManagerDeps) {}

  isRunning(): boolean {
    return this.deps.ilmRunning();
  }

  /** Nothing to create: the VG keeps the lock_args the command sent. */
  async initVg(req: InitVgRequest): Promise<{ rv: number; vgArgs: string }> {
    return { rv: 0, vgArgs: req.vgArgs };
  }

  async initLv(): Promise<{ rv: number; lvArgs: string }> {
    return { rv: 0, lvArgs: '' };
  }

  async renameVg(): Promise<number> {
    return 0;
  }

  createLockspace(view: LockspaceView, _events: LockspaceEvents): ManagedLockspace {
    return new IdmLockspace(view, this.deps);
  }
}

class IdmLockspace implements ManagedLockspace {
  private readonly session: IdmSession;
  /** IDM has no host ids: the ILM makes its own from the lvmlockd pid and a per-start uuid. */
  readonly hostId = 0;

  constructor(private readonly view: LockspaceView, deps: IdmManagerDeps) {
    this.session = new IdmSession({ ...deps, lsName: view.name, vgName: view.vgName, vgUuid: view.vgUuid });
  }

  async prepare(): Promise<PrepareResult> {
    return { rv: 0 };
  }

  async join(): Promise<number> {
    this.session.vgDrives = [...(this.view.pvs ?? [])];
    return this.session.start();
  }

  async leave(): Promise<number> {
    return this.session.stop();
  }

  async lock(res: ResourceView, mode: 'sh' | 'ex', opts: LockOptions): Promise<LockResult> {
    // The VG's PV list may have been replaced by a later start_vg (C: add_lockspace_thread).
    this.session.vgDrives = [...(this.view.pvs ?? [])];
    const r = await this.session.lock(idmResource(res), mode, res.name, [...(opts.pvs ?? [])]);
    return r.vb ? { rv: r.rv, vb: r.vb, ...(r.vbLost ? { vbLost: true } : {}) } : { rv: r.rv };
  }

  convert(res: ResourceView, mode: 'sh' | 'ex', rVersion: number): Promise<number> {
    return this.session.convert(idmResource(res), mode, rVersion);
  }

  unlock(res: ResourceView, rVersion: number): Promise<number> {
    return this.session.unlock(idmResource(res), rVersion);
  }

  forget(resName: string): void {
    this.session.forget(resName);
  }

  async otherHosts(): Promise<{ rv: number; hostsUnknown: boolean }> {
    return { rv: await this.session.hosts(), hostsUnknown: false };
  }
}

/** The core's view of a resource as the session needs it (a held mode is un, sh or ex). */
function idmResource(res: ResourceView): IdmResource {
  return { name: res.name, type: res.type, mode: res.mode === 'sh' || res.mode === 'ex' ? res.mode : 'un' };
}
