// A LockdCore with fake ports, for driving the daemon core without sockets.
// Replies are recorded per client; `defer` callbacks are queued and run by
// settle(); `sleep` either resolves at once or waits for release() (a manual
// scheduler for the lock retry delay and stop_all polling).

import { LockdCore, newGlobalLockChoice, type MutableGlobalLockChoice } from '../../src/core/lockd';
import type { LmType } from '../../src/core/constants';
import type { LockManager } from '../../src/lm/types';
import { TestLockManager } from '../../src/lm/test/test-lm';
import { ConfigMap, formatRequest, parseConfigTree, type WireValue } from '../../src/protocol/config-tree';

export type Fields = ReadonlyArray<readonly [string, WireValue]>;

export interface HarnessOptions {
  /** 'immediate': sleep resolves at once; 'manual': sleeps wait for releaseSleeps(). */
  sleep?: 'immediate' | 'manual';
  glType?: LmType | null;
  /** Which test managers to build (default dlm and sanlock, as `-T` does). */
  managers?: Array<'dlm' | 'sanlock'>;
  /** Paths that exist for the sanlock test manager's lvmlock LV check. */
  devices?: string[];
  hostId?: number;
}

export class CoreHarness {
  readonly core: LockdCore;
  readonly gl: MutableGlobalLockChoice;
  readonly replies = new Map<number, string[]>();
  readonly log: string[] = [];
  readonly dumps: string[] = [];
  readonly devices: Set<string>;
  /** The lock managers the core uses (tests may wrap their lockspaces). */
  readonly managers: Partial<Record<LmType, LockManager>> = {};
  quitCalled = 0;
  /** Clients whose socket write fails (reply lost, as when the peer vanished). */
  readonly unwritable = new Set<number>();
  private deferred: Array<() => void> = [];
  private sleeps: Array<{ ms: number; resolve: () => void }> = [];
  private readonly manualSleep: boolean;
  /** Virtual monotonic clock (ms); advanced by the sleeps that end. */
  now = 1_000_000;
  private nextPid = 1000;


  /** VGs whose kill procedure the core started (lease storage failure). */
  readonly killed: string[] = [];

  constructor(opts: HarnessOptions = {}) {
    this.gl = newGlobalLockChoice();
    this.devices = new Set(opts.devices ?? []);
    const hooks = { deviceExists: (p: string) => this.devices.has(p), log: (l: string) => this.log.push(l) };
    const managers = this.managers;
    for (const t of opts.managers ?? ['dlm', 'sanlock']) {
      managers[t] = new TestLockManager(t, this.gl, hooks, () => opts.hostId ?? 0);
    }
    this.manualSleep = opts.sleep === 'manual';
    // Not annotated as CorePorts on purpose: the literal may carry ports that a
    // newer or older CorePorts does not list (no excess-property error either way).
    const ports = {
      send: (id: number, text: string): boolean => {
        if (this.unwritable.has(id)) return false;
        const list = this.replies.get(id) ?? [];
        list.push(text);
        this.replies.set(id, list);
        return true;
      },
      sendDump: async (text: string): Promise<number> => { this.dumps.push(text); return Buffer.byteLength(text); },
      dumpLog: (): string => this.log.join('\n') + '\n',
      debug: (l: string): void => { this.log.push(l); },
      error: (l: string): void => { this.log.push('ERROR ' + l); },
      // Sleeps never resolve synchronously: a retry loop must not spin in microtasks.
      sleep: (ms: number): Promise<void> => new Promise<void>((resolve) => { this.sleeps.push({ ms, resolve }); }),
      defer: (fn: () => void): void => { this.deferred.push(fn); },
      nowMs: (): number => this.now,
      quit: (): void => { this.quitCalled++; },
      locksChanged: (): void => undefined,
      killVg: (vg: string): void => { this.killed.push(vg); },
    };
    this.core = new LockdCore(ports, {
      testMode: true, glType: opts.glType ?? null, managers, glChoice: this.gl,
    });
  }

  /** A new client connection (what the socket shell does on accept). */
  connect(pid = this.nextPid++): number {
    return this.core.addClient(pid, 10, 2);
  }

  disconnect(id: number): void {
    this.core.removeClient(id);
  }

  /** Sends one request without waiting. */
  send(id: number, fields: Fields | string): void {
    this.core.request(id, typeof fields === 'string' ? fields : formatRequest(fields));
  }

  /** Lets every pending promise chain and deferred job run until nothing moves. */
  async settle(rounds = 50): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      await new Promise<void>((r) => setImmediate(r));
      const jobs = this.deferred.splice(0);
      for (const fn of jobs) fn();
      const slept = this.manualSleep ? 0 : this.endSleeps();
      if (jobs.length === 0 && slept === 0 && i >= 2) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.deferred.length === 0 && (this.manualSleep || this.sleeps.length === 0)) return;
      }
    }
  }

  /** Ends every pending sleep, advancing the virtual clock; returns how many. */
  private endSleeps(): number {
    const s = this.sleeps.splice(0);
    if (s.length) this.now += Math.max(...s.map((x) => x.ms));
    for (const x of s) x.resolve();
    return s.length;
  }

  pendingSleeps(): number { return this.sleeps.length; }

  /** Manual sleep mode: end every pending sleep, then settle. */
  async releaseSleeps(): Promise<void> {
    this.endSleeps();
    await this.settle();
  }

  /** Replies sent to a client and not yet taken. */
  take(id: number): string[] {
    const list = this.replies.get(id) ?? [];
    this.replies.set(id, []);
    return list;
  }

  /** Sends a request, settles, and returns its single reply (fails if not exactly one). */
  async req(id: number, fields: Fields | string): Promise<Reply> {
    this.take(id);
    this.send(id, fields);
    await this.settle();
    const got = this.take(id);
    if (got.length !== 1) {
      throw new Error(`expected one reply for client ${id}, got ${got.length}: ${JSON.stringify(got)}\nlog tail:\n${this.log.slice(-30).join('\n')}`);
    }
    return new Reply(got[0]!);
  }

  /** The `info` dump text, as lvmlockctl --info would receive it. */
  info(): string { return this.core.info(); }
}

export class Reply {
  readonly map: ConfigMap;
  constructor(readonly text: string) {
    const p = parseConfigTree(text);
    if (!p.ok) throw new Error(`unparsable reply: ${text}`);
    this.map = new ConfigMap(p.entries);
  }
  get opResult(): number { return Number(this.map.int('op_result') ?? NaN); }
  get flags(): string { return this.map.str('result_flags') ?? ''; }
  str(k: string): string | undefined { return this.map.str(k); }
  int(k: string): number | undefined { const v = this.map.int(k); return v === undefined ? undefined : Number(v); }
}

// ---- request builders, spelled as lvm commands send them ----

export function hello(): string { return 'request = "hello"\n'; }

export function lockGl(mode: string, extra: Fields = [], cmd = 'test'): Fields {
  return [['request', 'lock_gl'], ['cmd', cmd], ['pid', 1], ['mode', mode], ['opts', 'none'], ['vg_lock_type', 'none'], ...extra];
}

export function startVg(vg: string, lockType: 'dlm' | 'sanlock' | string, extra: Fields = []): Fields {
  return [['request', 'start_vg'], ['pid', 1], ['vg_name', vg], ['vg_lock_type', lockType],
    ['vg_lock_args', lockType === 'sanlock' ? '1.0.0:lvmlock' : '1.0.0:test'],
    ['vg_uuid', 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK'], ['version', 1], ['host_id', lockType === 'sanlock' ? 1 : 0],
    ['opts', 'none'], ...extra];
}

export function lockVg(vg: string, mode: string, opts = 'none'): Fields {
  return [['request', 'lock_vg'], ['cmd', 'test'], ['pid', 1], ['vg_name', vg], ['mode', mode], ['opts', opts]];
}

export function lockLv(vg: string, lvUuid: string, mode: string, opts = 'none', lvName = 'lv' + lvUuid.slice(0, 4)): Fields {
  return [['request', 'lock_lv'], ['cmd', 'test'], ['pid', 1], ['vg_name', vg], ['lv_name', lvName],
    ['lv_uuid', lvUuid], ['mode', mode], ['opts', opts], ['lv_lock_args', 'dlm']];
}

export function vgUpdate(vg: string, version: number): Fields {
  return [['request', 'vg_update'], ['pid', 1], ['vg_name', vg], ['version', version]];
}

export function simpleVg(request: string, vg: string, opts = 'none'): Fields {
  return [['request', request], ['pid', 1], ['vg_name', vg], ['opts', opts]];
}
