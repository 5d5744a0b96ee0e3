// The daemon's brain: clients, lockspaces, the global lock and the "worker"
// jobs (init, start_wait, stop_all, gl search). It reads requests as parsed
// text and answers through ports; it never touches a socket, file or clock.

import { ConfigMap, formatReply, parseConfigTree, type ConfigValue, type WireValue } from '../protocol/config-tree';
import { requestFields, type RequestFields } from '../protocol/request-fields';
import {
  AF, DEFAULT_MAX_RETRIES, E, GL_LOCKSPACE, GL_PREFERENCE, INTERNAL_CLIENT_ID, LM_NUMBER, LM_TYPES, LS_PREFIX,
  MAX_ARGS, MAX_NAME, Op, REQUESTS, errnoName, parseLmType, parseMode, parseOpts,
  type LmType, type Mode,
} from './constants';
import { Lockspace, type LockspaceHost } from './lockspace';
import { newAction, type Action } from './model';
import type { GlobalLockChoice, LockManager, ManagerGlobalLock } from '../lm/types';
import { infoLines } from './info';
import { adoptLocks, type AdoptHost, type AdoptSummary, type AdoptVg } from './adopt';

export interface CorePorts {
  /** Write a reply; false when the client is gone. */
  send(clientId: number, text: string): boolean;
  /** Send text on the dump datagram socket, after the reply was written. */
  sendDump(text: string): Promise<number>;
  /** The in-memory debug log, oldest first. */
  dumpLog(): string;
  debug(line: string): void;
  error(line: string): void;
  sleep(ms: number): Promise<void>;
  /** Run fn soon, after the current work (a macrotask in the shell). */
  defer(fn: () => void): void;
  /** Monotonic milliseconds; only paces background work. */
  nowMs(): number;
  quit(): void;
  /** The set of LV locks held changed (adopt file). */
  locksChanged(): void;
  /**
   * A lockspace's lock manager failed (lease storage lost): start the kill
   * procedure for the VG (lvmlockctl --kill <vg>, as sanlock's kill helper).
   */
  killVg(vgName: string): void;
  /**
   * A client's request is answered (its reply is about to be written), for
   * metrics and the structured log. Optional; must be cheap, it is on the lock path.
   */
  answered?(act: Action, client: { readonly pid: number; readonly name: string }): void;
  /** Text for the dump_metrics/dump_holders requests (the shell owns metrics and disk views). */
  report?(kind: 'metrics' | 'holders', vgName: string): Promise<string>;
}

export interface CoreOptions {
  testMode: boolean;
  /** -g: the global lock manager, fixed at start. */
  glType: LmType | null;
  managers: Partial<Record<LmType, LockManager>>;
  /** The core writes its global-lock choice here; the lock managers may read it. */
  glChoice: MutableGlobalLockChoice;
}

export interface MutableGlobalLockChoice extends GlobalLockChoice { manager: LmType | null }

export function newGlobalLockChoice(): MutableGlobalLockChoice {
  return { manager: null };
}

interface Client {
  id: number;
  pid: number;
  fd: number;
  pi: number;
  name: string;
  dead: boolean;
  lockOps: boolean;
  /** `name[pid][id]` of the debug lines, and the name it was built for (the name is set by the first request). */
  who: string;
  whoName: string | null;
}

const SHORT_DELAY_PERIOD_MS = 2000;
const VG_NAME_RE = /^[A-Za-z0-9+_.-]+$/;
const UUID_RE = /^[A-Za-z0-9-]+$/;
// Printable, no space, no double quote or backslash: args are echoed raw in replies (libdaemon does
// not escape), where a quote would make the reply unparsable for the command.
const ARGS_RE = /^[\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * lvm's requests are a few KiB (the largest, with PV path lists, tens of KiB). A
 * bigger one is refused unparsed: parsing millions of tokens takes seconds in the
 * one thread that serves every client and renews every lease. (C parses any size.)
 */
export const MAX_PARSED_REQUEST = 1024 * 1024;

/** A client-supplied name made safe to echo inside a quoted reply string. */
function printable(name: string): string {
  const safe = name.slice(0, 64).replace(/[^A-Za-z0-9_.:+-]/g, '?');
  return name.length > 64 ? safe + '...' : safe;
}

export class LockdCore implements LockspaceHost {
  /** lvmlockd's gl_use_dlm / gl_use_sanlock / gl_use_idm, as one value. */
  private readonly glChoice: MutableGlobalLockChoice;
  /** lvmlockd's sanlock_gl_dup: more than one VG lockspace has the global lock enabled. */
  glInVgDup = false;
  glVgRemoved = false;
  readonly lockspaces: Lockspace[] = [];
  private readonly clients = new Map<number, Client>();
  private nextClientId = 1;
  private readonly delayed: Action[] = [];
  private passScheduled = false;
  private lastPassMs = Number.NEGATIVE_INFINITY;
  private readonly glTypeStatic: boolean;

  constructor(private readonly ports: CorePorts, private readonly opts: CoreOptions) {
    this.glChoice = opts.glChoice;
    this.glTypeStatic = opts.glType !== null;
    if (opts.glType !== null && opts.glType !== 'none') this.glChoice.manager = opts.glType;
  }

  /** The manager chosen for the global lock, when it keeps the lock in a VG lockspace. */
  private glInVg(): ManagerGlobalLock | undefined {
    const t = this.glChoice.manager;
    return t ? this.opts.managers[t]?.glInVg : undefined;
  }

  /** The manager chosen for the global lock, when the lock has a lockspace of its own (lvm_global). */
  private glOwnLockspaceType(): LmType | null {
    const t = this.glChoice.manager;
    if (!t || this.opts.managers[t]?.glInVg) return null;
    return t;
  }

  get testMode(): boolean { return this.opts.testMode; }
  debug(msg: string): void { this.ports.debug(msg); }
  error(msg: string): void { this.ports.error(msg); }
  sleep(ms: number): Promise<void> { return this.ports.sleep(ms); }

  // ---- clients ----

  addClient(pid: number, fd: number, pi: number): number {
    let id = this.nextClientId++;
    if (id === INTERNAL_CLIENT_ID || id === 0) id = this.nextClientId++;
    this.clients.set(id, { id, pid, fd, pi, name: '', dead: false, lockOps: false, who: '', whoName: null });
    this.debug(`new cl ${id} pi ${pi} fd ${fd}`);
    return id;
  }

  /** The client's connection closed: release its transient locks everywhere. */
  removeClient(id: number): void {
    const cl = this.clients.get(id);
    if (!cl) return;
    this.debug(`client recv ${id} ECONNRESET`);
    cl.dead = true;
    if (cl.lockOps) {
      for (const ls of this.lockspaces) {
        if (ls.threadStop) continue;
        ls.enqueue(newAction({ op: 'close', clientId: id }));
      }
    }
    this.debug(`client close ${id} pi ${cl.pi} fd ${cl.fd}`);
    this.clients.delete(id);
  }

  // ---- requests ----

  /** One whole message from a client. */
  request(clientId: number, text: string): void {
    const cl = this.clients.get(clientId);
    if (!cl) return;
    if (text.length > MAX_PARSED_REQUEST) {
      this.error(`client recv ${clientId} request of ${text.length} characters refused (limit ${MAX_PARSED_REQUEST})`);
      this.refuse(clientId, 'request too large');
      return;
    }
    const parsed = parseConfigTree(text, { libdmOpenQuotes: true });
    if (!parsed.ok) {
      this.error(`client recv ${clientId} config_from_string error: ${parsed.error}`);
      this.refuse(clientId, 'unparsable request');
      return;
    }
    const req = requestFields(parsed.entries);
    const name = req.request;
    const kind = name !== undefined ? REQUESTS.get(name) : undefined;
    if (!kind) {
      this.error(`client recv ${clientId} bad request name "${(name ?? '').slice(0, 80)}"`);
      this.refuse(clientId, name === undefined ? 'no request name' : name === '' ? 'empty request name' : `unknown request ${printable(name)}`);
      return;
    }
    if (kind.op === 'hello' || kind.op === 'quit') {
      let result = 0;
      if (kind.op === 'quit') {
        this.debug('op quit');
        if (this.lockspaces.length) result = -E.BUSY;
      }
      this.ports.send(clientId, formatReply([
        ['response', 'OK'], ['result', result], ['protocol', 'lvmlockd'], ['version', 1],
      ]));
      if (kind.op === 'quit' && result === 0) this.ports.quit();
      return;
    }

    const act = this.actionFromRequest(cl, req, parsed.entries, kind.op, kind.rt ?? null);
    if (typeof act === 'number') {
      // Invalid input that lvmlockd would have truncated or misparsed: refuse it clearly.
      const bad = newAction({ op: kind.op, clientId, rt: kind.rt ?? null, result: act });
      this.deliver(bad);
      return;
    }
    this.dispatch(cl, act);
  }

  /**
   * libdaemon's error reply for a frame that names no request we know or cannot
   * be parsed (lvmlockd 2.03.16 sends nothing, which hangs the client: an lvm
   * newer than this daemon would wait forever on a request it added).
   */
  private refuse(clientId: number, reason: string): void {
    this.ports.send(clientId, formatReply([['response', 'failed'], ['reason', reason]]));
  }

  private actionFromRequest(
    cl: Client, req: RequestFields, entries: ReadonlyArray<readonly [string, ConfigValue]>, op: Action['op'], rt: Action['rt'],
  ): Action | number {
    const str = (v: string | undefined): string => (v === undefined || v === 'none' ? '' : v);
    const int = (v: bigint | undefined, dflt: number): number => (v === undefined ? dflt : Number(BigInt.asIntN(32, v)));
    const cmd = req.cmd;
    const pid = int(req.pid, 0);
    if (pid && pid !== cl.pid) this.error(`client recv bad message pid ${pid} client ${cl.pid}`);
    if (!cl.name && cmd) cl.name = cmd.slice(0, MAX_NAME);

    const lm = parseLmType(req.vgLockType);
    // Every field written out (newAction's defaults for the rest, in its order): an
    // object literal of one shape, without the spread of newAction on every request.
    const act: Action = {
      rt,
      mode: parseMode(req.mode),
      flags: parseOpts(req.opts),
      lmType: lm ?? 'none',
      vgName: str(req.vgName), vgUuid: str(req.vgUuid), lvName: str(req.lvName), lvUuid: str(req.lvUuid),
      vgArgs: str(req.vgLockArgs), lvArgs: str(req.lvLockArgs),
      otherArgs: str(req.setLockArgs) || str(req.prevLvArgs),
      version: (int(req.version, 0) >>> 0),
      hostId: Math.max(0, int(req.hostId, 0)),
      alignMb: int(req.alignMb, 0),
      lvSizeBytes: req.lvSizeBytes ?? 0n,
      path: str(req.path),
      pvs: pathList(req.pathNum, entries),
      maxRetries: int(req.maxRetries, DEFAULT_MAX_RETRIES),
      retries: 0, result: 0, lmResult: 0, owner: null, prevGeneration: 0,
      op, clientId: cl.id,
    };

    const who = clientWho(cl);
    const lvPart = act.lvName || act.lvUuid ? ` lv=${act.lvName}${act.lvUuid ? ':' + act.lvUuid : ''}` : '';
    this.debug(`recv ${who} ${op}${rt ? '_' + rt : ''}${op === 'lock' ? ' ' + act.mode : ''}${act.vgName ? ' vg=' + act.vgName : ''}${lvPart} opts=0x${act.flags.toString(16)}`);

    if (lm === null) {
      this.error(`recv ${who} unknown vg_lock_type "${req.vgLockType}"`);
      return -E.INVAL;
    }
    const problem = this.validate(act);
    if (problem) {
      this.error(`recv ${who} refused: ${problem}`);
      return -E.INVAL;
    }
    if (this.glChoice.manager === null && lm !== 'none' && this.opts.managers[lm]) {
      this.glChoice.manager = lm;
      this.debug(`set gl_use_${lm}`);
    }
    return act;
  }

  /** Names and args go into lockspace names, info lines and on-disk lease names. */
  private validate(act: Action): string | null {
    if (act.vgName && (act.vgName.length > MAX_NAME - LS_PREFIX.length - 1 || !VG_NAME_RE.test(act.vgName))) {
      return `invalid vg_name "${act.vgName.slice(0, 80)}"`;
    }
    if (act.lvUuid && (act.lvUuid.length > MAX_NAME || !UUID_RE.test(act.lvUuid))) {
      return `invalid lv_uuid "${act.lvUuid.slice(0, 80)}"`;
    }
    if (act.vgUuid && (act.vgUuid.length > MAX_NAME || !UUID_RE.test(act.vgUuid))) {
      return `invalid vg_uuid "${act.vgUuid.slice(0, 80)}"`;
    }
    if (act.lvName && (act.lvName.length > MAX_NAME || !VG_NAME_RE.test(act.lvName))) {
      return `invalid lv_name "${act.lvName.slice(0, 80)}"`;
    }
    for (const [k, v] of [['vg_lock_args', act.vgArgs], ['lv_lock_args', act.lvArgs], ['lock args', act.otherArgs]] as const) {
      if (v.length > MAX_ARGS || !ARGS_RE.test(v)) return `invalid ${k}`;
    }
    if (act.path.length > 4096) return 'path too long';
    if ((act.op === 'lock' || act.op === 'set_remote_lv_lock') && act.rt === 'lv' && !act.lvUuid) {
      return 'lv_uuid missing';
    }
    if (act.rt === 'vg' && !act.vgName && act.op !== 'start_wait') return 'vg_name missing';
    if (act.rt === 'lv' && act.op !== 'refresh_lv' && !act.vgName) return 'vg_name missing';
    return null;
  }

  private dispatch(cl: Client, act: Action): void {
    const lm = act.lmType;
    if (lm !== 'none' && !this.opts.managers[lm]) {
      this.debug(`${lm} not supported`);
      act.result = -E.PROTONOSUPPORT;
      this.deliver(act);
      return;
    }
    if (act.op === 'lock' && act.mode !== 'un') cl.lockOps = true;
    let rv = 0;
    switch (act.op) {
      case 'start': rv = this.addLockspace(act); break;
      case 'stop': rv = this.remLockspace(act); break;
      case 'dump_info': case 'dump_log': this.deliver(act); return;
      case 'dump_metrics': case 'dump_holders': this.report(act); return;
      case 'init': case 'start_wait': case 'vg_status': case 'stop_all': case 'rename_final':
      case 'running_lm': case 'refresh_lv': case 'setlockargs_final':
        this.addWork(act); return;
      default: rv = this.addLockAction(act); break;
    }
    if (rv < 0) {
      act.result = rv;
      this.deliver(act);
    }
  }

  // ---- lockspaces ----

  private lsName(vgName: string): string { return LS_PREFIX + vgName; }

  private glLsName(): string {
    if (this.glOwnLockspaceType()) return GL_LOCKSPACE;
    return this.glInVg()?.glLockspace ?? '';
  }

  /** lvmlockd's find_lockspace_name, which also re-checks duplicate GLs in VG lockspaces. */
  findLockspace(name: string): Lockspace | undefined {
    let found: Lockspace | undefined;
    let glCount = 0;
    for (const ls of this.lockspaces) {
      if (ls.name === name) found = ls;
      if (!this.glInVgDup && found) return found;
      if (this.glInVgDup && ls.glEnabled) glCount++;
    }
    if (this.glInVgDup && glCount < 2) this.glInVgDup = false;
    return found;
  }

  private addLockspaceThread(name: string, vgName: string, vgUuid: string, lmType: LmType, vgArgs: string, act: Action | null): number {
    this.debug(`add_lockspace_thread ${lmType} ${name} version ${act ? act.version : 0} vg_args ${vgArgs}`);
    const manager = this.opts.managers[lmType];
    if (!manager) return -E.PROTONOSUPPORT;
    const existing = this.findLockspace(name);
    if (existing) {
      // lvmlockd replaces the PV list of a running lockspace with the newest one.
      if (act && act.pvs.length) existing.pvs = [...act.pvs];
      if (existing.threadStop) { this.debug(`add_lockspace_thread ${name} exists and stopping`); return -E.AGAIN; }
      if (!existing.createFail && !existing.createDone) { this.debug(`add_lockspace_thread ${name} exists and starting`); return -E.STARTING; }
      this.debug(`add_lockspace_thread ${name} exists`);
      return -E.EXIST;
    }
    const ls = new Lockspace(
      { name, vgName, vgUuid, vgArgs, lmType, hostId: act ? act.hostId : 0, manager },
      (l) => manager.createLockspace(
        { name: l.name, vgName, vgUuid, vgArgs, hostId: l.hostId, get pvs() { return l.pvs; } },
        { failed: (reason) => this.lockspaceFailed(l, reason) },
      ),
      this,
    );
    if (act) ls.startClientId = act.clientId;
    if (act) ls.pvs = [...act.pvs];
    this.lockspaces.push(ls);
    void ls.run(act).catch((e: unknown) => {
      this.error(`S ${name} lockspace loop failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    });
    return 0;
  }

  private addGlobalLockspace(lmType: LmType, act: Action | null): number {
    const existing = this.lockspaces.find((l) => l.name === GL_LOCKSPACE);
    if (existing) return 0;
    const rv = this.addLockspaceThread(GL_LOCKSPACE, '', '', lmType, '', act);
    if (rv < 0) this.debug(`add_global_lockspace add_lockspace_thread ${rv}`);
    return rv;
  }

  private remGlobalLockspace(): void {
    let gl: Lockspace | undefined;
    for (const ls of this.lockspaces) {
      if (ls.name === GL_LOCKSPACE) { gl = ls; continue; }
      if (!ls.threadStop) return;
    }
    if (!gl) return;
    gl.threadStop = true;
    gl.signal();
  }

  private addLockspace(act: Action): number {
    if (act.rt !== 'vg') return -E.INVAL;
    const glType = this.glOwnLockspaceType();
    if (glType) this.addGlobalLockspace(glType, null);
    const lmType = act.lmType;
    if (lmType === 'none') return -E.INVAL;
    const rv = this.addLockspaceThread(this.lsName(act.vgName), act.vgName, act.vgUuid, lmType, act.vgArgs, act);
    if (rv) this.debug(`add_lockspace ${this.lsName(act.vgName)} add_lockspace_thread ${rv}`);
    return rv;
  }

  private remLockspace(act: Action): number {
    const ls = this.findLockspace(this.lsName(act.vgName));
    if (!ls) return -E.NOLS;
    if (ls.threadStop) return -E.STALE;
    if (!(act.flags & AF.FORCE) && ls.hasLocks('lv')) return -E.BUSY;
    ls.threadStop = true;
    ls.enqueue(act);
    if (this.glOwnLockspaceType()) this.remGlobalLockspace();
    return 0;
  }

  private addLockAction(act: Action): number {
    let name: string;
    if (act.rt === 'gl') {
      if (this.glInVg() && (act.op === 'enable' || act.op === 'disable')) {
        name = this.lsName(act.vgName);
      } else {
        if (this.glChoice.manager === null) this.chooseGlByRunningManager(act);
        name = this.glLsName();
      }
    } else {
      name = this.lsName(act.vgName);
    }
    let ls = name ? this.findLockspace(name) : undefined;
    if (!ls) {
      if (act.op === 'update' && act.rt === 'vg') {
        this.debug(`lockspace "${name}" not found ignored for vg update`);
        return -E.NOLS;
      } else if (act.flags & AF.SEARCH_LS) {
        this.debug(`lockspace "${name}" not found after search`);
        return -E.NOLS;
      } else if (act.op === 'lock' && act.rt === 'gl' && this.glInVg()) {
        this.debug(`lockspace "${name}" not found for ${this.glChoice.manager} gl, searching...`);
        act.flags |= AF.SEARCH_LS;
        this.addWork(act);
        return 0;
      } else if (act.op === 'lock' && act.rt === 'gl' && act.mode !== 'un' && this.glOwnLockspaceType()) {
        const t = this.glOwnLockspaceType()!;
        this.debug(`lockspace "${name}" not found for ${t} gl, adding...`);
        act.flags |= AF.SEARCH_LS | AF.WAIT_STARTING;
        this.addGlobalLockspace(t, null);
        ls = this.findLockspace(name);
        if (!ls) return -E.NOLS;
      } else if (act.op === 'lock' && act.mode === 'un') {
        this.debug(`lockspace "${name}" not found for unlock ignored`);
        return -E.NOLS;
      } else {
        this.debug(`lockspace "${name}" not found`);
        return -E.NOLS;
      }
    }
    if (act.lmType === 'none') {
      act.lmType = ls.lmType;
    } else if (act.lmType !== ls.lmType) {
      this.error(`S ${name} add_lock_action bad lm_type ${act.lmType} ls ${ls.lmType}`);
      return -E.INVAL;
    }
    if (ls.threadStop) {
      this.error(`lockspace is stopping ${name}`);
      return -E.STALE;
    }
    if (!ls.createFail && !ls.createDone && !(act.flags & AF.WAIT_STARTING)) {
      this.debug(`lockspace is starting ${name}`);
      return -E.STARTING;
    }
    ls.enqueue(act);
    return 0;
  }

  private chooseGlByRunningManager(act: Action): void {
    const running = this.runningManagers();
    if (running.length >= 2) {
      const each = LM_TYPES.map((t) => `${t}=${+running.includes(t)}`).join(' ');
      this.error(`global lock op ${act.op} mode ${act.mode}: multiple lock managers running ${each}`);
    } else if (running.length === 0) {
      this.debug(`global lock op ${act.op} mode ${act.mode}: no lock manager running`);
    } else {
      this.glChoice.manager = running[0]!;
    }
  }

  /**
   * The managers running here, in lvmlockd's order of preference for the
   * global lock; a manager embedded in the daemon only when no other runs.
   */
  private runningManagers(): LmType[] {
    const running = GL_PREFERENCE.filter((t) => this.opts.managers[t]?.isRunning() ?? false);
    const external = running.filter((t) => !this.opts.managers[t]!.embedded);
    return external.length ? external : running;
  }

  /**
   * The manager lost this host's hold on the lockspace. New lock requests are
   * refused at once (as after kill_vg) and the kill procedure deactivates the
   * VG's LVs and drops its locks before other hosts can be granted them.
   */
  private lockspaceFailed(ls: Lockspace, reason: string): void {
    if (ls.threadStop || ls.killVg) return;
    this.error(`S ${ls.name} lock manager failed: ${reason}; killing VG ${ls.vgName}`);
    ls.killVg = true;
    this.ports.killVg(ls.vgName);
  }

  otherVgsOfSameManager(rem: Lockspace): boolean {
    for (const ls of this.lockspaces) {
      if (ls.lmType !== rem.lmType || ls === rem || ls.name === rem.name) continue;
      this.debug(`other ${ls.lmType} vg exists ${ls.name}`);
      return true;
    }
    return false;
  }

  lockspaceDone(_ls: Lockspace): void {
    this.wakeWorker();
  }

  /**
   * lvmlockd's worker runs its "delayed work" (pending start_wait/stop_all, and
   * freeing stopped lockspaces, listed as REM:<name> until then) when it wakes
   * and at least SHORT_DELAY_PERIOD has passed since the previous pass, else it
   * retries a second later. Commands can observe that pacing (a listed REM:
   * lockspace means no NO_LOCKSPACES flag), so it is kept here.
   */
  private wakeWorker(): void {
    if (this.passScheduled) return;
    this.passScheduled = true;
    this.ports.defer(() => this.workerPass());
  }

  private workerPass(): void {
    const now = this.ports.nowMs();
    if (now - this.lastPassMs < SHORT_DELAY_PERIOD_MS) {
      void this.ports.sleep(1000).then(() => this.workerPass());
      return;
    }
    this.lastPassMs = now;
    for (const act of [...this.delayed]) {
      if (this.delayedDone(act)) this.delayed.splice(this.delayed.indexOf(act), 1);
    }
    this.forEachLockspace(false, true, false);
    if (this.delayed.length) {
      void this.ports.sleep(1000).then(() => this.workerPass());
      return;
    }
    this.passScheduled = false;
  }

  lockspaceChanged(): void {
    // start_wait and stop_all are re-checked by the paced worker pass.
  }

  // ---- worker jobs ----

  private addWork(act: Action): void {
    void this.runWork(act).then(
      () => this.wakeWorker(),
      (e: unknown) => {
        this.error(`work ${act.op} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        act.result = -E.INVAL;
        this.deliver(act);
      },
    );
  }

  private async runWork(act: Action): Promise<void> {
    switch (act.op) {
      case 'running_lm': {
        const running = this.runningManagers();
        if (running.length >= 2) act.result = -E.XFULL;
        else if (running.length === 0) act.result = -E.NOLCK;
        else act.result = LM_NUMBER[running[0]!];
        this.deliver(act);
        return;
      }
      case 'lock': {
        this.debug('work search for gl');
        await this.searchGl();
        const rv = this.addLockAction(act);
        if (rv < 0) { act.result = rv; this.deliver(act); }
        return;
      }
      case 'init':
        if (act.rt === 'vg') {
          this.debug(`work init_vg ${act.vgName}`);
          act.result = await this.initVg(act);
        } else {
          this.debug(`work init_lv ${act.vgName}/${act.lvName} uuid ${act.lvUuid}`);
          act.result = await this.initLv(act);
        }
        this.deliver(act);
        return;
      case 'rename_final': {
        this.debug(`work rename_vg ${act.vgName}`);
        const m = this.opts.managers[act.lmType];
        act.result = m ? await m.renameVg(this.lsName(act.vgName), act.vgName, act.vgArgs) : -E.INVAL;
        this.deliver(act);
        return;
      }
      case 'setlockargs_final':
        act.result = -E.PROTONOSUPPORT;
        this.deliver(act);
        return;
      case 'vg_status': {
        const ls = this.findLockspace(this.lsName(act.vgName));
        if (ls) { act.vgArgs = ls.vgArgs; act.lmType = ls.lmType; act.result = 0; }
        else act.result = -E.NOENT;
        this.deliver(act);
        return;
      }
      case 'refresh_lv': {
        // Only a manager that can run commands on other hosts (dlm, through dlm_controld) can.
        this.debug(`work refresh_lv ${act.lvUuid} ${act.path}`);
        const m = LM_TYPES.map((t) => this.opts.managers[t]).find((x) => x?.refreshLv);
        act.result = m?.refreshLv ? await m.refreshLv({ lvUuid: act.lvUuid, path: act.path }) : -E.PROTONOSUPPORT;
        this.deliver(act);
        return;
      }
      case 'start_wait':
      case 'stop_all':
        if (!this.delayedDone(act)) this.delayed.push(act);
        return;
      default:
        this.error(`work unknown op ${act.op}`);
        act.result = -E.INVAL;
        this.deliver(act);
    }
  }

  /** start_wait and stop_all complete once no lockspace is in the way. */
  private delayedDone(act: Action): boolean {
    if (act.op === 'start_wait') {
      const starting = this.countStarting();
      if (starting) return false;
      act.result = 0;
      this.deliver(act);
      return true;
    }
    const remaining = this.forEachLockspace(true, true, (act.flags & AF.FORCE) !== 0);
    if (remaining && (act.flags & AF.WAIT)) return false;
    act.result = remaining;
    this.deliver(act);
    return true;
  }

  private countStarting(): number {
    let count = 0, done = 0, fail = 0;
    for (const ls of this.lockspaces) {
      if (!ls.createDone && !ls.createFail) count++;
      if (ls.createDone) done++;
      if (ls.createFail) fail++;
    }
    this.debug(`count_lockspace_starting client 0 count ${count} done ${done} fail ${fail}`);
    return count;
  }

  /** Stop (and/or free finished) lockspaces; returns how many are still in the way. */
  forEachLockspace(doStop: boolean, doFree: boolean, force: boolean): number {
    let needStop = 0, needFree = 0, stopCount = 0, freeCount = 0;
    if (doStop) {
      for (const ls of this.lockspaces) {
        if (ls.threadStop) continue;
        if (!force && ls.hasLocks('any')) { needStop++; continue; }
        ls.threadStop = true;
        ls.signal();
        stopCount++;
      }
    }
    if (doFree) {
      for (const ls of [...this.lockspaces]) {
        if (!ls.threadStop) continue;
        if (ls.threadDone) {
          this.debug(`free ls ${ls.name}`);
          this.lockspaces.splice(this.lockspaces.indexOf(ls), 1);
          freeCount++;
        } else {
          needFree++;
        }
      }
    }
    if (this.lockspaces.length === 0 && !this.glTypeStatic) {
      this.glChoice.manager = null;
    }
    if (stopCount || freeCount || needStop || needFree) {
      this.debug(`for_each_lockspace do_stop ${+doStop} do_free ${+doFree} stop_count ${stopCount} free_count ${freeCount} need_stop ${needStop} need_free ${needFree}`);
    }
    return needStop + needFree;
  }

  private async searchGl(): Promise<void> {
    let found = false;
    for (const ls of this.lockspaces) {
      const gl = ls.managed.glInVg;
      if (!gl || !ls.createDone || ls.threadStop) continue;
      if (await gl.refreshGlEnabled()) {
        this.debug(`S ${ls.name} worker found gl_is_enabled`);
        this.opts.managers[ls.lmType]?.glInVg?.setGlLockspace(ls.name);
        found = true;
        break;
      }
    }
    if (!found) this.debug('worker found no gl_is_enabled');
  }

  private async initVg(act: Action): Promise<number> {
    const name = this.lsName(act.vgName);
    const clash = this.lockspaces.find((ls) => {
      const n = this.opts.managers[ls.lmType]?.lockspaceNameLength ?? MAX_NAME;
      return ls.name.slice(0, n) === name.slice(0, n);
    });
    if (clash) {
      this.error(`Existing lockspace name ${clash.name} matches new ${name} VG names ${clash.vgName} ${act.vgName}`);
      return -E.EXIST;
    }
    const m = this.opts.managers[act.lmType];
    if (!m || act.lmType === 'none') return -E.INVAL;
    const out = await m.initVg({ lsName: name, vgName: act.vgName, flags: act.flags, vgArgs: act.vgArgs, alignMb: act.alignMb, otherArgs: act.otherArgs });
    act.vgArgs = out.vgArgs;
    act.lvArgs = '';
    return out.rv;
  }

  private async initLv(act: Action): Promise<number> {
    const name = this.lsName(act.vgName);
    const ls = this.findLockspace(name);
    const lmType = ls ? ls.lmType : act.lmType;
    const vgArgs = ls ? ls.vgArgs : act.vgArgs;
    if (act.lmType !== lmType) {
      this.error(`init_lv ls_name ${name} wrong lm_type ${act.lmType} ${lmType}`);
      return -E.INVAL;
    }
    const m = this.opts.managers[lmType];
    if (!m || lmType === 'none') {
      this.error(`init_lv ls_name ${name} bad lm_type ${act.lmType}`);
      return -E.INVAL;
    }
    const out = await m.initLv({ lsName: name, vgName: act.vgName, lvUuid: act.lvUuid, vgArgs, prevArgs: act.otherArgs, lockspace: ls ? ls.managed : null });
    act.lvArgs = out.lvArgs;
    return out.rv;
  }

  // ---- results ----

  /** lvmlockd's add_client_result + client_send_result. */
  deliver(act: Action): void {
    if (act.done) {
      const done = act.done;
      delete act.done;
      done(act);
      return;
    }
    if (act.flags & AF.NO_CLIENT) {
      this.debug(`internal action done op ${act.op} mode ${act.mode} result ${act.result} vg ${act.vgName}`);
      return;
    }
    const cl = this.clients.get(act.clientId);
    if (!cl || cl.dead) {
      if (act.op !== 'close') this.debug(`send cl ${act.clientId} skip dead`);
      this.failedClient(act);
      return;
    }
    const { text, dump } = this.formatResult(cl, act);
    this.ports.answered?.(act, cl);
    const ok = this.ports.send(cl.id, text);
    if (act.flags & AF.LV_LOCK) this.ports.locksChanged();
    if (!ok) { this.failedClient(act); return; }
    if (dump !== null) void this.ports.sendDump(dump);
  }

  /** A reply could not be sent: undo an LV lock that was taken only for it. */
  private failedClient(act: Action): void {
    if (act.op !== 'lock' || act.rt !== 'lv' || !(act.flags & AF.LV_LOCK) || act.result < 0) return;
    this.debug(`auto unlock lv for failed client ${act.clientId}`);
    const unlock = newAction({
      op: 'lock', rt: 'lv', mode: 'un', clientId: act.clientId, vgName: act.vgName, lvName: act.lvName,
      lvUuid: act.lvUuid, lvArgs: act.lvArgs, lmType: act.lmType,
      flags: AF.LV_UNLOCK | AF.NO_CLIENT | (act.flags & AF.PERSISTENT),
    });
    const rv = this.addLockAction(unlock);
    if (rv < 0) this.debug(`auto unlock lv for failed client ${act.clientId} error ${rv}`);
  }

  private resultFlags(act: Action): string {
    let flags = '';
    if (act.result === -E.UNATCH) act.result = -E.NOLS;
    if (act.result === -E.NOLS) {
      if (this.lockspaces.length === 0) flags += 'NO_LOCKSPACES,';
      const inVg = this.glInVg();
      if (inVg) { if (!inVg.glLockspace) flags += 'NO_GL_LS,'; }
      else if (this.glOwnLockspaceType()) {
        // lvmlockd tests its dlm/idm global lockspace *name*, set once at start: never NO_GL_LS.
      }
      else {
        const found = this.runningManagers().length > 0;
        flags += found ? 'NO_GL_LS' : 'NO_GL_LS,NO_LM';
      }
    }
    if (act.flags & AF.DUP_GL_LS) flags += 'DUP_GL_LS,';
    if ((act.flags & AF.WARN_GL_REMOVED) || this.glVgRemoved) flags += 'WARN_GL_REMOVED,';
    if (act.flags & AF.SH_EXISTS) flags += 'SH_EXISTS,';
    if (act.flags & AF.HOSTS_UNKNOWN) flags += 'HOSTS_UNKNOWN,';
    return flags;
  }

  /** Reports made by the shell, waiting for their action's reply. */
  private readonly reports = new Map<Action, string>();

  private report(act: Action): void {
    const kind = act.op === 'dump_metrics' ? 'metrics' : 'holders';
    const made = this.ports.report ? this.ports.report(kind, act.vgName) : Promise.reject(new Error('not available'));
    made.then(
      (text) => { this.reports.set(act, text); this.deliver(act); },
      (e: unknown) => {
        this.error(`${kind} report failed: ${e instanceof Error ? e.message : String(e)}`);
        act.result = -E.INVAL;
        this.deliver(act);
      },
    );
  }

  private formatResult(cl: Client, act: Action): { text: string; dump: string | null } {
    const flags = this.resultFlags(act) || 'none';
    const who = clientWho(cl);
    const opNum = Op[act.op];
    const rtPart = act.rt ? '_' + act.rt : '';
    let fields: Array<[string, WireValue]>;
    let dump: string | null = null;
    if (act.op === 'init' || act.op === 'setlockargs_final') {
      const vgArgs = act.vgArgs || 'none';
      const lvArgs = act.lvArgs || 'none';
      this.debug(`send ${who} ${act.op}${rtPart} result ${act.result} vg_args ${vgArgs} lv_args ${lvArgs}`);
      fields = [['op', opNum], ['op_result', act.result], ['lm_result', act.lmResult],
        ['vg_lock_args', vgArgs], ['lv_lock_args', lvArgs], ['result_flags', flags]];
    } else if (act.op === 'query_lock') {
      this.debug(`send ${who} query_lock${rtPart} result ${act.result} mode ${act.mode}`);
      fields = [['op', opNum], ['op_result', act.result], ['lock_type', act.lmType], ['mode', act.mode as Mode]];
    } else if (act.op === 'set_remote_lv_lock') {
      fields = [['op', opNum], ['op_result', act.result]];
    } else if ((act.op === 'dump_metrics' || act.op === 'dump_holders') && act.result === 0) {
      dump = this.reports.get(act) ?? '';
      this.reports.delete(act);
      const len = Buffer.byteLength(dump);
      this.debug(`send ${who} ${act.op} result 0 dump_len ${len}`);
      return { text: formatReply([['response', 'OK'], ['result', 0], ['dump_len', len]]), dump };
    } else if (act.op === 'dump_info' || act.op === 'dump_log') {
      dump = act.op === 'dump_info' ? this.info() : this.ports.dumpLog();
      const len = Buffer.byteLength(dump);
      this.debug(`send ${who} dump result 0 dump_len ${len}`);
      return { text: formatReply([['response', 'OK'], ['result', 0], ['dump_len', len]]), dump };
    } else if (act.op === 'lock' && act.owner && act.owner.hostId) {
      const o = act.owner;
      this.debug(`send ${who} lock${rtPart} result ${act.result} owner ${o.hostId} ${o.generation} ${o.timestamp} ${o.state} ${o.name}`);
      fields = [['op', opNum], ['lock_type', act.lmType], ['op_result', act.result], ['lm_result', act.lmResult],
        ['owner_host_id', o.hostId], ['owner_generation', o.generation], ['owner_timestamp', o.timestamp],
        ['owner_state', o.state || 'none'], ['owner_name', o.name || 'none'], ['result_flags', flags]];
    } else if (act.op === 'start' && act.prevGeneration) {
      this.debug(`send ${who} start${rtPart} result ${act.result} prev_generation ${act.prevGeneration}`);
      fields = [['op', opNum], ['lock_type', act.lmType], ['op_result', act.result], ['lm_result', act.lmResult],
        ['prev_generation', act.prevGeneration], ['result_flags', flags]];
    } else {
      const modePart = act.op === 'lock' ? ` ${act.mode}` : '';
      this.debug(`send ${who} ${act.op}${rtPart}${modePart} rv ${act.result} ${act.result === -E.NOLS ? 'ENOLS ' : act.result < 0 ? errnoName(act.result) + ' ' : ''}${flags === 'none' ? '' : flags}`);
      return { text: commonReply(opNum, act.lmType, act.result, act.lmResult, flags), dump };
    }
    return { text: formatReply([['response', 'OK'], ...fields]), dump };
  }

  /**
   * lvmlockd's adopt_locks (--adopt 1): start the recorded lockspaces and
   * adopt the recorded LV locks. The shell calls it before serving clients.
   */
  adoptLocks(vgs: readonly AdoptVg[]): Promise<AdoptSummary> {
    const host: AdoptHost = {
      debug: (m) => this.debug(m),
      error: (m) => this.error(m),
      submit: (act) => this.submitInternal(act),
      findLockspace: (n) => this.findLockspace(n),
      lsName: (vg) => this.lsName(vg),
      adoptsLocks: (lm) => !!this.opts.managers[lm]?.adoptsLocks,
      useGlOf: (lm) => { if (this.glChoice.manager === null) this.glChoice.manager = lm; },
    };
    return adoptLocks(host, vgs);
  }

  /** Runs an internal start or lock action; resolves once its result is set. */
  private submitInternal(act: Action): Promise<Action> {
    return new Promise((resolve) => {
      act.done = resolve;
      const rv = act.op === 'start' ? this.addLockspace(act) : this.addLockAction(act);
      if (rv < 0 || (act.op === 'start' && rv > 0)) {
        delete act.done;
        act.result = rv;
        resolve(act);
      }
    });
  }

  info(): string {
    return infoLines([...this.clients.values()], this.lockspaces);
  }

  /** The adopt file (lvmlockd's format 1.0): lockspaces and the LV locks held in them. */
  adoptFileText(pid: number, updates: number, ctime: string): string {
    let out = `lvmlockd adopt_version 1.0 pid ${pid} updates ${updates} ${ctime}\n`;
    for (const ls of this.lockspaces) {
      if (ls.vgName === '') continue;  // a global lockspace (lvm_global) belongs to no VG
      out += `VG: ${ls.vgUuid.padStart(38)} ${ls.vgName} ${ls.lmType} ${ls.vgArgs}\n`;
      for (const r of ls.resources) {
        if (r.type !== 'lv' || (r.mode !== 'ex' && r.mode !== 'sh')) continue;
        for (let i = 0; i < r.locks.length; i++) {
          out += `LV: ${ls.vgUuid.padStart(38)} ${r.name} ${r.lvArgs} ${r.mode} ${r.version}\n`;
        }
      }
    }
    return out;
  }
}

/** `name[pid][id]` of a client in the debug lines, built again only when its name changed. */
function clientWho(cl: Client): string {
  if (cl.whoName !== cl.name) {
    cl.who = `${cl.name || 'client'}[${cl.pid}][${cl.id}]`;
    cl.whoName = cl.name;
  }
  return cl.who;
}

/** `response = "OK"` through `lock_type = "<lm>"` per op number and lock type, built once. */
const replyHeads: Array<Partial<Record<string, string>>> = [];
/** What follows `op_result = ` when the result, lm_result and flags are 0, 0, none: most replies. */
const REPLY_TAIL_OK = '0\nlm_result = 0\nresult_flags = "none"\n';

/**
 * The reply with op, lock_type, op_result, lm_result and result_flags (most
 * replies): the text formatReply gives for these fields, from pieces built
 * once instead of a line per field.
 */
export function commonReply(opNum: number, lmType: string, result: number, lmResult: number, flags: string): string {
  const heads = replyHeads[opNum] ??= {};
  const head = heads[lmType] ??= `response = "OK"\nop = ${opNum}\nlock_type = "${lmType}"\nop_result = `;
  if (result === 0 && lmResult === 0 && flags === 'none') return head + REPLY_TAIL_OK;
  return head + result + '\nlm_result = ' + lmResult + '\nresult_flags = "' + flags + '"\n';
}

/** lvm's path_num / path[i] fields (sent for IDM VGs); a missing path is "none" in C. */
function pathList(pathNum: bigint | undefined, entries: ReadonlyArray<readonly [string, ConfigValue]>): string[] {
  if (pathNum === undefined || pathNum <= 0n) return [];
  const req = new ConfigMap(entries);
  const out: string[] = [];
  for (let i = 0; i < Number(pathNum) && i < 1024; i++) out.push(req.str(`path[${i}]`) ?? 'none');
  return out;
}
