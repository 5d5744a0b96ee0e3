// Our bin/lvmlockctl against the real C lvmlockd (2.03.16, `-T -f -D` test
// mode), compared with the real C lvmlockctl. Everything runs in a private
// mount+net namespace: /run is a fresh tmpfs (socket, pid file, adopt file) and
// the abstract dump socket lives in the private network namespace.
//
// A "driver" client in this process creates state through the daemon's socket
// (reached via /proc/<ns pid>/root): a dlm lockspace (test mode), the global
// lock held sh, the VG lock sh, one persistent ex LV lock and one transient sh
// LV lock. Read-only commands are compared on the same daemon; commands that
// change state (--stop-lockspaces, --quit, --kill, --drop) are compared on two
// identically prepared daemons.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { LvmlockdConnection, replyInt, parseInfo } from '../../src/cli/lvmlockctl';
import { formatRequest } from '../../src/protocol/config-tree';

interface RunOut { code: number | null; stdout: string; stderr: string }

const BIN = path.resolve(__dirname, '../../../bin/lvmlockctl');
const VG_UUID = 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK';
const LV1 = 'uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub';
const LV2 = 'AAAAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGGGG';

class Namespace {
  private readonly children: ChildProcess[] = [];
  daemon: ChildProcess | undefined;
  daemonLog = '';
  driver: LvmlockdConnection | undefined;
  private constructor(readonly holder: ChildProcess) {}

  static async create(): Promise<Namespace> {
    const holder = spawn('unshare', ['-m', '-n', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs tmpfs /run && mkdir -p /run/lvm && echo ready && exec sleep infinity'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    const ns = new Namespace(holder);
    live.add(ns);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      holder.stdout!.on('data', (d) => { buf += d; if (buf.includes('ready')) resolve(); });
      holder.on('exit', (c) => reject(new Error(`namespace holder exited ${c}`)));
      setTimeout(() => reject(new Error('namespace holder not ready')), 5000);
    });
    return ns;
  }

  /** The daemon socket as seen from outside the namespace. */
  get socketPath(): string {
    return `/proc/${this.holder.pid}/root/run/lvm/lvmlockd.socket`;
  }

  spawn(cmd: string, args: string[]): ChildProcess {
    const c = spawn('nsenter', ['-t', String(this.holder.pid), '-m', '-n', cmd, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' } });
    this.children.push(c);
    return c;
  }

  run(cmd: string, args: string[], timeoutMs = 20000): Promise<RunOut> {
    return new Promise((resolve) => {
      const c = this.spawn(cmd, args);
      let stdout = '';
      let stderr = '';
      c.stdout!.setEncoding('latin1').on('data', (d) => { stdout += d; });
      c.stderr!.setEncoding('latin1').on('data', (d) => { stderr += d; });
      const t = setTimeout(() => { if (c.pid) process.kill(c.pid, 'SIGKILL'); }, timeoutMs);
      c.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
    });
  }

  async startDaemon(): Promise<void> {
    const d = this.spawn('lvmlockd', ['-T', '-f', '-D']);
    this.daemon = d;
    const keep = (x: Buffer) => { this.daemonLog = (this.daemonLog + x.toString('latin1')).slice(-65536); };
    d.stdout!.on('data', keep);
    d.stderr!.on('data', keep);
    const t0 = Date.now();
    while (Date.now() - t0 < 10000) {
      if (d.exitCode !== null) throw new Error(`lvmlockd exited ${d.exitCode}: ${this.daemonLog}`);
      if (fs.existsSync(this.socketPath)) {
        const c = await LvmlockdConnection.connect(this.socketPath);
        if (typeof c !== 'number') {
          const r = await c.send('request = "hello"\n');
          if (!r.error && replyInt(r, 'version', 0) === 1) { this.driver = c; return; }
          c.close();
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`lvmlockd did not come up: ${this.daemonLog}`);
  }

  /** Sends one request on the driver connection and checks op_result. */
  async req(fields: Array<[string, string | number]>, expect: number | null = 0): Promise<number> {
    const r = await this.driver!.send(formatRequest(fields));
    assert.equal(r.error, 0, `transport error for ${fields[0]![1]}`);
    const res = replyInt(r, 'op_result', -1000);
    if (expect !== null) assert.equal(res, expect, `${String(fields[0]![1])}: ${r.text}\n--- daemon log:\n${this.daemonLog}`);
    return res;
  }

  /** A dlm lockspace vg1 (plus lvm_global); with `lvLocks`, locks held by the driver. */
  async prepare(lvLocks = true): Promise<void> {
    const pid = process.pid;
    await this.req([['request', 'lock_gl'], ['cmd', 'drv'], ['pid', pid], ['mode', 'ex'], ['opts', 'none'], ['vg_lock_type', 'dlm']]);
    await this.req([['request', 'start_vg'], ['pid', pid], ['vg_name', 'vg1'], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test'],
      ['vg_uuid', VG_UUID], ['version', 2], ['host_id', 0], ['opts', 'none']]);
    await this.req([['request', 'start_wait'], ['pid', pid]]);
    if (!lvLocks) {
      // lockspaces only, nothing held
      await this.req([['request', 'lock_gl'], ['cmd', 'drv'], ['pid', pid], ['mode', 'un'], ['opts', 'none'], ['vg_lock_type', 'none']]);
      return;
    }
    await this.req([['request', 'lock_gl'], ['cmd', 'drv'], ['pid', pid], ['mode', 'sh'], ['opts', 'none'], ['vg_lock_type', 'none']]);
    await this.req([['request', 'lock_vg'], ['cmd', 'drv'], ['pid', pid], ['mode', 'sh'], ['opts', 'none'], ['vg_name', 'vg1'],
      ['vg_lock_type', 'none'], ['vg_lock_args', 'none']]);
    for (const [lv, name, mode, opts] of [[LV1, 'lv1', 'ex', 'persistent'], [LV2, 'lv2', 'sh', 'none']] as const) {
      await this.req([['request', 'lock_lv'], ['cmd', 'drv'], ['pid', pid], ['mode', mode], ['opts', opts], ['vg_name', 'vg1'],
        ['lv_name', name], ['lv_uuid', lv], ['vg_lock_type', 'dlm'], ['vg_lock_args', '1.0.0:test'], ['lv_lock_args', 'dlm']]);
    }
  }

  destroy(): void {
    this.driver?.close();
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    if (this.holder.pid && this.holder.exitCode === null) {
      try { process.kill(this.holder.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    live.delete(this);
  }
}

const live = new Set<Namespace>();
function destroyAll(): void { for (const ns of [...live]) ns.destroy(); }
process.on('exit', destroyAll);
after(destroyAll);

function canRun(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const b of ['unshare', 'nsenter', 'lvmlockctl', 'lvmlockd']) {
    if (spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0) return `${b} not installed`;
  }
  return false;
}
const opts = { skip: canRun(), timeout: 120000 };

/** Raw info with the lvmlockctl clients' own lines (pid/id differ per run) masked. */
function maskSelf(raw: string): string {
  return raw.replace(new RegExp(`^info=client pid=(?!${process.pid} )\\d+ fd=\\d+ pi=\\d+ id=\\d+ name=\\S*$`, 'gm'), 'info=client <lvmlockctl>');
}

async function both(ns: Namespace, args: string[]): Promise<[RunOut, RunOut]> {
  const c = await ns.run('lvmlockctl', args);
  // let the daemon retire the previous client before the next snapshot
  await new Promise((r) => setTimeout(r, 200));
  const ours = await ns.run(BIN, args);
  return [c, ours];
}

function assertSame(c: RunOut, ours: RunOut, what: string): void {
  assert.equal(ours.stdout, c.stdout, `${what}: stdout`);
  assert.equal(ours.stderr, c.stderr, `${what}: stderr`);
  assert.equal(ours.code, c.code, `${what}: exit status`);
}

test('read-only commands against one C daemon: --info, --info --dump, --json, --dump, gl/drop errors', opts, async () => {
  const ns = await Namespace.create();
  try {
    await ns.startDaemon();
    {
      // no lockspaces yet
      const [c, ours] = await both(ns, ['--info']);
      assertSame(c, ours, '--info (idle)');
      assert.equal(ours.stdout, '');
    }
    await ns.prepare();

    const [ci, oi] = await both(ns, ['--info']);
    assertSame(ci, oi, '--info');
    // sanity: the state we built is what we see
    assert.match(oi.stdout, /^VG vg_uuid= lock_type= \nLS  lvm_global\n/);
    assert.ok(oi.stdout.includes(`LK GL sh ver `), oi.stdout);
    assert.ok(oi.stdout.includes(`VG vg1 lock_type=dlm ${VG_UUID}\nLS dlm lvm_vg1\n`), oi.stdout);
    assert.ok(oi.stdout.includes(`LK VG sh ver 0 pid ${process.pid} (drv)\n`), oi.stdout);
    assert.ok(oi.stdout.includes(`LK LV ex ${LV1}\n`), oi.stdout);
    assert.ok(oi.stdout.includes(`LK LV sh ${LV2}\n`), oi.stdout);

    const [cr, or] = await both(ns, ['--info', '--dump']);
    assert.equal(or.code, cr.code);
    assert.equal(or.stderr, cr.stderr);
    assert.equal(maskSelf(or.stdout), maskSelf(cr.stdout), '--info --dump');
    assert.match(or.stdout, /^info=structs /);
    assert.ok(or.stdout.endsWith('\n\n'));

    // JSON view of the same state
    const j = await ns.run(BIN, ['--info', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as ReturnType<typeof parseInfo>;
    assert.equal(doc.daemon_format, '2.03.16');
    assert.deepEqual(doc.lockspaces.map((l) => l['ls_name']), ['lvm_global', 'lvm_vg1']);
    const vg1 = doc.lockspaces[1]!;
    assert.equal(vg1['vg_uuid'], VG_UUID);
    const lv1 = vg1.resources.find((r) => r['name'] === LV1)!;
    assert.deepEqual(lv1.locks.map((l) => [l['mode'], l.persistent, l.client]), [['ex', true, null]]);
    const lv2 = vg1.resources.find((r) => r['name'] === LV2)!;
    assert.deepEqual(lv2.locks.map((l) => [l['mode'], l.persistent, l.client]), [['sh', false, { pid: process.pid, name: 'drv' }]]);
    // the lockspace part equals the C tool's raw text parsed (clients differ per run)
    assert.deepEqual(doc.lockspaces, parseInfo(cr.stdout).lockspaces);

    // gl enable/disable in a dlm VG, drop of an unknown VG: results are compared
    for (const args of [['--gl-enable', 'vg1'], ['--gl-disable', 'x'], ['-e', '--drop', 'nosuchvg'], ['-E', 'x']]) {
      const [c, ours] = await both(ns, args);
      assertSame(c, ours, args.join(' '));
    }

    // grow the debug log past one datagram, then compare --dump (C first; the log only grows)
    for (let i = 0; i < 400; i++) {
      await ns.req([['request', 'enable_gl'], ['cmd', 'drv'], ['pid', process.pid], ['vg_name', `v${i}-${'n'.repeat(50)}`]], null);
    }
    const [cd, od] = await both(ns, ['--dump']);
    assert.equal(od.code, 0);
    assert.equal(cd.code, 0);
    assert.equal(od.stderr, cd.stderr);
    assert.ok(cd.stdout.length > 65536, `dump is ${cd.stdout.length} bytes`);
    assert.ok(od.stdout.endsWith('\n') && cd.stdout.endsWith('\n'));
    assert.ok(od.stdout.startsWith(cd.stdout.slice(0, -1)), 'our dump continues the C one');
    assert.match(od.stdout, /lvmlockd started/);
  } finally {
    ns.destroy();
  }
});

/** Runs `args` with one tool on a freshly prepared daemon; returns its result and the state after. */
async function onFreshDaemon(tool: 'c' | 'ours', args: string[], prepare: 'none' | 'vg' | 'locks' = 'locks'): Promise<{ out: RunOut; after: string; daemonExited: boolean }> {
  const ns = await Namespace.create();
  try {
    await ns.startDaemon();
    if (prepare !== 'none') await ns.prepare(prepare === 'locks');
    const out = await ns.run(tool === 'c' ? 'lvmlockctl' : BIN, args);
    await new Promise((r) => setTimeout(r, 300));
    const daemonExited = ns.daemon!.exitCode !== null || ns.daemon!.signalCode !== null;
    const after = daemonExited ? '' : maskSelf((await ns.run('lvmlockctl', ['--info', '--dump'])).stdout);
    return { out, after, daemonExited };
  } finally {
    ns.destroy();
  }
}

async function compareFresh(args: string[], prepare: 'none' | 'vg' | 'locks' = 'locks'): Promise<{ out: RunOut; after: string; daemonExited: boolean }> {
  const c = await onFreshDaemon('c', args, prepare);
  const ours = await onFreshDaemon('ours', args, prepare);
  const what = args.join(' ');
  assertSame(c.out, ours.out, what);
  assert.equal(ours.daemonExited, c.daemonExited, `${what}: daemon exited`);
  assert.equal(ours.after, c.after, `${what}: state afterwards`);
  return ours;
}

test('state-changing commands on identical fresh daemons: --stop-lockspaces, --quit, --kill, --drop', opts, async () => {
  // (while a client holds locks, stop_all "wait" does not answer, so use lockspaces with nothing held)
  const s = await compareFresh(['--stop-lockspaces'], 'vg');
  assert.equal(s.out.code, 0);
  assert.ok(!s.after.includes('info=ls '), s.after);
  await compareFresh(['-S', '-w', '0'], 'vg');

  const busy = await compareFresh(['--quit']);
  assert.equal(busy.daemonExited, false, 'quit refused while lockspaces exist');
  const idle = await compareFresh(['--quit'], 'none');
  assert.equal(idle.daemonExited, true, 'quit with no lockspaces');
  assert.equal(idle.out.code, 0);

  const k = await compareFresh(['-e', '--kill', 'vg1']);
  assert.match(k.after, /ls_name=lvm_vg1 .* kill_vg=1 /);
  const d = await compareFresh(['-e', '--drop', 'vg1']);
  assert.equal(d.out.stderr, 'Dropping locks for VG vg1.\n');
});

test('no daemon: Cannot connect to lvmlockd.', opts, async () => {
  const ns = await Namespace.create();
  try {
    for (const args of [['--info'], ['--dump'], ['--gl-enable', 'x'], ['--stop-lockspaces'], ['--quit'], ['-e', '-k', 'vg1']]) {
      const [c, ours] = await both(ns, args);
      assertSame(c, ours, args.join(' '));
    }
  } finally {
    ns.destroy();
  }
});
