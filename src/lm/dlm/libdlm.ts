// The kernel DLM and dlm_controld through their C libraries, loaded with koffi
// on first use: libdlm_lt.so.3 (the single-threaded libdlm the C lvmlockd links;
// its *_wait calls write the request and read the completion from the
// lockspace's device in the calling thread) and libdlmcontrol.so.3 (the run
// API). Calls that wait for the cluster run on koffi's worker threads (.async),
// so the event loop never blocks; koffi hands each call's errno back with its
// result. Callers serialize the calls of one lockspace (see DlmLockspace): two
// *_wait calls reading the same device at once could take each other's
// completions.

/* eslint-disable @typescript-eslint/no-explicit-any */

import { Errno } from '../../util/errno';
import {
  DLM_LVB_LEN, type CallResult, type DlmControl, type DlmKernel, type DlmLockspaceHandle, type LockBlock,
} from './kernel';

const LKSB_SIZE = 24;            // struct dlm_lksb on 64-bit Linux
const LKSB_STATUS = 0;           // int sb_status
const LKSB_LKID = 4;             // uint32_t sb_lkid
const LKSB_FLAGS = 8;            // char sb_flags
const LKSB_LVBPTR = 16;          // char *sb_lvbptr
const RUN_UUID_LEN = 64;         // DLMC_RUN_UUID_LEN

interface Native {
  koffi: any;
  kernelVersion: any; newLockspace: any; openLockspace: any; releaseLockspace: any;
  lockWait: any; unlockWait: any; lockx: any; purge: any;
}

let native: Native | undefined;
let control: { runStart: any; runCheck: any } | undefined;

/** Why libdlm cannot be used here (not installed), or null. */
export function libdlmProblem(): string | null {
  try { load(); return null; } catch (e) { return (e as Error).message; }
}

function load(): Native {
  if (native) return native;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const koffi = require('koffi');
  let lib: any;
  try {
    lib = koffi.load('libdlm_lt.so.3');
  } catch (e) {
    throw new Error(`cannot load libdlm_lt.so.3 (Debian package libdlm3): ${(e as Error).message}`);
  }
  native = {
    koffi,
    kernelVersion: lib.func('int dlm_kernel_version(void *maj, void *min, void *patch)'),
    newLockspace: lib.func('void *dlm_new_lockspace(const char *name, uint32_t mode, uint32_t flags)'),
    openLockspace: lib.func('void *dlm_open_lockspace(const char *name)'),
    releaseLockspace: lib.func('int dlm_release_lockspace(const char *name, void *ls, int force)'),
    lockWait: lib.func('int dlm_ls_lock_wait(void *ls, uint32_t mode, void *lksb, uint32_t flags, const void *name, ' +
      'uint32_t namelen, uint32_t parent, void *bastarg, void *bastaddr, void *range)'),
    unlockWait: lib.func('int dlm_ls_unlock_wait(void *ls, uint32_t lkid, uint32_t flags, void *lksb)'),
    // cast/bast/param are passed as integers: lvmlockd gives the kernel (void *)1 for each
    // when adopting (it rejects NULL ones), and an adopted orphan queues no completion.
    lockx: lib.func('int dlm_ls_lockx(void *ls, uint32_t mode, void *lksb, uint32_t flags, const void *name, ' +
      'uint32_t namelen, uint32_t parent, uintptr_t astaddr, uintptr_t astarg, uintptr_t bastaddr, void *xid, void *timeout)'),
    purge: lib.func('int dlm_ls_purge(void *ls, int nodeid, int pid)'),
  };
  return native;
}

function loadControl(n: Native): { runStart: any; runCheck: any } {
  if (control) return control;
  let lib: any;
  try {
    lib = n.koffi.load('libdlmcontrol.so.3');
  } catch (e) {
    throw new Error(`cannot load libdlmcontrol.so.3 (Debian package libdlmcontrol3): ${(e as Error).message}`);
  }
  control = {
    runStart: lib.func('int dlmc_run_start(const char *cmd, int len, int nodeid, uint32_t flags, void *uuid)'),
    runCheck: lib.func('int dlmc_run_check(const char *uuid, int len, int wait_sec, uint32_t flags, void *status)'),
  };
  return control;
}

const { ELIBACC } = Errno;

/**
 * Runs fn on a koffi worker thread; resolves with its return value and errno.
 * A library that cannot be loaded answers as a failed call (errno ELIBACC),
 * after logging why once.
 */
function callAsync<T>(pick: (n: Native) => any, fail: T, ...args: unknown[]): Promise<{ value: T; errno: number }> {
  let fn: any;
  try {
    fn = pick(load());
  } catch (e) {
    reportLoadError(e);
    return Promise.resolve({ value: fail, errno: ELIBACC });
  }
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, value: T) => {
      if (err) { reject(err); return; }
      resolve({ value, errno: load().koffi.errno() as number });
    });
  });
}

let loadErrorSink: ((msg: string) => void) | null = null;
let loadErrorReported = false;

/** Where the first library load failure is reported (the daemon's error log). */
export function onLibdlmLoadError(sink: (msg: string) => void): void { loadErrorSink = sink; }

function reportLoadError(e: unknown): void {
  if (loadErrorReported) return;
  loadErrorReported = true;
  loadErrorSink?.((e as Error).message);
}

class NativeLockBlock implements LockBlock {
  readonly ptr: any;
  private readonly mem: Buffer;
  readonly lvb: Buffer;
  private freed = false;

  constructor() {
    const k = load().koffi;
    this.ptr = k.alloc('uint8_t', LKSB_SIZE + DLM_LVB_LEN);
    this.mem = Buffer.from(k.view(this.ptr, LKSB_SIZE + DLM_LVB_LEN));
    this.mem.fill(0);
    this.lvb = this.mem.subarray(LKSB_SIZE);
    this.mem.writeBigUInt64LE(BigInt(k.address(this.ptr)) + BigInt(LKSB_SIZE), LKSB_LVBPTR);
  }

  get status(): number { return this.mem.readInt32LE(LKSB_STATUS); }
  get lkid(): number { return this.mem.readUInt32LE(LKSB_LKID); }
  get sbFlags(): number { return this.mem.readUInt8(LKSB_FLAGS); }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    load().koffi.free(this.ptr);
  }
}

class NativeHandle implements DlmLockspaceHandle {
  constructor(readonly name: string, readonly ptr: any) {}
}

function handleOr(name: string, r: { value: any; errno: number }): DlmLockspaceHandle | CallResult {
  return r.value ? new NativeHandle(name, r.value) : { rv: -1, errno: r.errno };
}

function result(r: { value: number; errno: number }): CallResult {
  return { rv: r.value, errno: r.value < 0 ? r.errno : 0 };
}

/** The real kernel DLM. Every method but newLockBlock runs off the event loop. */
export class LibDlm implements DlmKernel {
  async kernelVersion(): Promise<{ major: number; minor: number; patch: number } | null> {
    const v = [Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)];
    const r = await callAsync<number>((n) => n.kernelVersion, -1, v[0], v[1], v[2]);
    if (r.value < 0) return null;
    return { major: v[0]!.readUInt32LE(0), minor: v[1]!.readUInt32LE(0), patch: v[2]!.readUInt32LE(0) };
  }

  newLockBlock(): LockBlock { return new NativeLockBlock(); }

  async newLockspace(name: string, flags: number): Promise<DlmLockspaceHandle | CallResult> {
    return handleOr(name, await callAsync((n) => n.newLockspace, null, name, 0o600, flags));
  }

  async openLockspace(name: string): Promise<DlmLockspaceHandle | CallResult> {
    return handleOr(name, await callAsync((n) => n.openLockspace, null, name));
  }

  async releaseLockspace(ls: DlmLockspaceHandle, force: boolean): Promise<CallResult> {
    return result(await callAsync<number>((n) => n.releaseLockspace, -1, ls.name, (ls as NativeHandle).ptr, force ? 1 : 0));
  }

  async lockWait(ls: DlmLockspaceHandle, mode: number, lk: LockBlock, flags: number, resName: string): Promise<CallResult> {
    const name = Buffer.from(resName);
    return result(await callAsync<number>((n) => n.lockWait, -1, (ls as NativeHandle).ptr, mode, (lk as NativeLockBlock).ptr,
      flags, name, name.length, 0, null, null, null));
  }

  async unlockWait(ls: DlmLockspaceHandle, lk: LockBlock, flags: number): Promise<CallResult> {
    return result(await callAsync<number>((n) => n.unlockWait, -1, (ls as NativeHandle).ptr, lk.lkid, flags, (lk as NativeLockBlock).ptr));
  }

  async adoptOrphan(ls: DlmLockspaceHandle, mode: number, lk: LockBlock, flags: number, resName: string): Promise<CallResult> {
    const name = Buffer.from(resName);
    return result(await callAsync<number>((n) => n.lockx, -1, (ls as NativeHandle).ptr, mode, (lk as NativeLockBlock).ptr,
      flags, name, name.length, 0, 1, 1, 1, null, null));
  }

  async purge(ls: DlmLockspaceHandle, nodeid: number, pid: number): Promise<CallResult> {
    return result(await callAsync<number>((n) => n.purge, -1, (ls as NativeHandle).ptr, nodeid, pid));
  }
}

/** dlm_controld's run API. */
export class LibDlmControl implements DlmControl {
  async runStart(command: string, nodeid: number, flags: number): Promise<{ rv: number; uuid: string }> {
    const uuid = Buffer.alloc(RUN_UUID_LEN);
    const r = await callAsync<number>((n) => loadControl(n).runStart, -1, command, Buffer.byteLength(command), nodeid, flags, uuid);
    const end = uuid.indexOf(0);
    return { rv: r.value, uuid: uuid.subarray(0, end < 0 ? uuid.length : end).toString() };
  }

  async runCheck(uuid: string, waitSec: number, flags: number): Promise<{ rv: number; status: number }> {
    const status = Buffer.alloc(4);
    const r = await callAsync<number>((n) => loadControl(n).runCheck, -1, uuid, Buffer.byteLength(uuid), waitSec, flags, status);
    return { rv: r.value, status: status.readUInt32LE(0) };
  }
}
