// Differential test: the C lvmlockctl (2.03.16, installed) and ours run against
// the same scripted fake lvmlockd, inside a private mount+net namespace (fresh
// tmpfs on /run, private abstract socket namespace). The fake daemon is this
// very file started with `--fake-daemon <dir>`; it sends the info/dump text with
// our sendDump(), so the C tool also checks our datagram sender.
//
// For every case: identical stdout, stderr, exit status, and identical request
// bytes on the wire (pid normalised).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { FrameDecoder } from '../../src/protocol/framing';
import { sendDump } from '../../src/daemon/dump-socket';

const SOCKET = '/run/lvm/lvmlockd.socket';

// ---------------------------------------------------------------------------
// Fake daemon mode

interface Scenario {
  hello?: string | null;
  /** by request name: reply body (without terminator), `close` to hang up, `dump` text (latin1) */
  replies: Record<string, { reply?: string; close?: boolean; dump?: string }>;
}

function fakeDaemonMain(dir: string): void {
  const log = path.join(dir, 'requests.log');
  const server = net.createServer((s) => {
    const dec = new FrameDecoder();
    s.on('error', () => {});
    s.on('data', (d) => {
      for (const ev of dec.push(d)) {
        if (ev.kind !== 'message') continue;
        fs.appendFileSync(log, JSON.stringify(ev.text + '##\n') + '\n');
        const sc = JSON.parse(fs.readFileSync(path.join(dir, 'scenario.json'), 'utf8')) as Scenario;
        const name = /request\s*=\s*"([^"]*)"/.exec(ev.text)?.[1] ?? '';
        if (name === 'hello') {
          const h = sc.hello === undefined ? 'response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 1\n' : sc.hello;
          if (h === null) s.destroy(); else s.write(h + '\n##\n');
          continue;
        }
        const r = sc.replies[name];
        if (!r) continue;
        if (r.reply !== undefined) s.write(r.reply + '\n##\n');
        if (r.close) s.destroy();
        if (r.dump !== undefined) void sendDump(Buffer.from(r.dump, 'latin1'));
      }
    });
  });
  server.listen(SOCKET, () => fs.writeFileSync(path.join(dir, 'ready'), 'ok'));
  process.on('SIGTERM', () => process.exit(0));
}


// ---------------------------------------------------------------------------
// Namespace helper

interface RunOut { code: number | null; stdout: string; stderr: string }

class Namespace {
  private readonly children: ChildProcess[] = [];
  private constructor(readonly holder: ChildProcess) {}

  static async create(): Promise<Namespace> {
    const holder = spawn('unshare', ['-m', '-n', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs tmpfs /run && mkdir -p /run/lvm && echo ready && exec sleep infinity'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    const ns = new Namespace(holder);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      holder.stdout!.on('data', (d) => { buf += d; if (buf.includes('ready')) resolve(); });
      holder.on('exit', (c) => reject(new Error(`namespace holder exited ${c}`)));
      setTimeout(() => reject(new Error('namespace holder not ready')), 5000);
    });
    return ns;
  }

  spawn(cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    // LVM_SUPPRESS_FD_WARNINGS: fds inherited from the test runner's environment would
    // otherwise make lvm print pid-specific notes.
    const c = spawn('nsenter', ['-t', String(this.holder.pid), '-m', '-n', cmd, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1', ...env } });
    this.children.push(c);
    return c;
  }

  run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 20000): Promise<RunOut> {
    return new Promise((resolve) => {
      const c = this.spawn(cmd, args, env);
      let stdout = '';
      let stderr = '';
      c.stdout!.setEncoding('latin1').on('data', (d) => { stdout += d; });
      c.stderr!.setEncoding('latin1').on('data', (d) => { stderr += d; });
      const t = setTimeout(() => { if (c.pid) process.kill(c.pid, 'SIGKILL'); }, timeoutMs);
      c.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
    });
  }

  destroy(): void {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    if (this.holder.pid && this.holder.exitCode === null) {
      try { process.kill(this.holder.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

function canRun(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const b of ['unshare', 'nsenter', 'lvmlockctl']) {
    if (spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0) return `${b} not installed`;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Tests

function defineTests(): void {
  const skip = canRun();
  const BIN = path.resolve(__dirname, '../../../bin/lvmlockctl');
  let ns: Namespace | undefined;
  let dir = '';
  let daemon: ChildProcess | undefined;
  const cleanup = () => { ns?.destroy(); };
  process.on('exit', cleanup);

  before(async () => {
    if (skip) return;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockctl-fake-'));
    fs.writeFileSync(path.join(dir, 'scenario.json'), JSON.stringify({ replies: {} }));
    ns = await Namespace.create();
    daemon = ns.spawn(process.execPath, [__filename, '--fake-daemon', dir]);
    daemon.stderr!.on('data', (d) => process.stderr.write(d));
    const t0 = Date.now();
    while (!fs.existsSync(path.join(dir, 'ready'))) {
      if (Date.now() - t0 > 10000) throw new Error('fake daemon did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  after(() => {
    cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function setScenario(sc: Scenario): void {
    fs.writeFileSync(path.join(dir, 'scenario.json'), JSON.stringify(sc));
  }
  function takeRequests(): string[] {
    const p = path.join(dir, 'requests.log');
    if (!fs.existsSync(p)) return [];
    const lines = fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string);
    fs.rmSync(p);
    return lines.map((l) => l.replace(/pid =\d+/g, 'pid =N'));
  }

  /** Runs C then ours with the same args; asserts identical results; returns ours. */
  async function compare(args: string[], sc: Scenario, opts: { sameStderr?: boolean; env?: Record<string, string> } = {}): Promise<RunOut> {
    setScenario(sc);
    takeRequests();
    const c = await ns!.run('lvmlockctl', args, opts.env);
    const cReq = takeRequests();
    const ours = await ns!.run(BIN, args, opts.env);
    const oursReq = takeRequests();
    const what = `lvmlockctl ${args.join(' ')}`;
    assert.equal(ours.stdout, c.stdout, `${what}: stdout`);
    if (opts.sameStderr !== false) assert.equal(ours.stderr, c.stderr, `${what}: stderr`);
    assert.equal(ours.code, c.code, `${what}: exit status`);
    assert.deepEqual(oursReq, cReq, `${what}: request bytes`);
    return ours;
  }

  const INFO_REPLY = (text: string, result = 0) => ({
    reply: `response = "OK"\nresult = ${result}\ndump_len = ${Buffer.byteLength(text, 'latin1')}\n`, dump: text,
  });
  const OP = (op: number, r: number) => ({ reply: `response = "OK"\nop = ${op}\nlock_type = "none"\nop_result = ${r}\nlm_result = 0\nresult_flags = "none"\n` });

  const RAW_07 =
    'info=structs unused_action_count=31 unused_client_count=31 unused_resource_count=29 unused_lock_count=31\n' +
    'info=client pid=5637 fd=7 pi=2 id=35 name=.\n' +
    'info=ls ls_name=lvm_global vg_name= vg_uuid= vg_sysid=. vg_args= lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
    'info=r name=VGLK type=vg mode=un sh_count=0 version=0\n' +
    'info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK vg_sysid=. vg_args=1.0.0:test lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
    'info=r name=VGLK type=vg mode=un sh_count=0 version=5\n' +
    'info=r name=uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub type=lv mode=ex sh_count=0 version=0\n' +
    'info=lk mode=ex version=0 flags=0x1 client_id=0\n';

  const RAW_BUSY =
    'info=structs unused_action_count=1 unused_client_count=2 unused_resource_count=3 unused_lock_count=4\n' +
    'info=client pid=700 fd=9 pi=3 id=4 name=lvcreate\n' +
    'info=client pid=701 fd=10 pi=4 id=5 name=vgs\n' +
    'info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=UUID-1 vg_sysid=. vg_args=1.0.0:test lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
    'info=ls_action client_id=5 flags=0x0 version=0 op=start rt=vg mode=iv lm_type=dlm result=0 lm_rv=0\n' +
    'info=r name=GLLK type=gl mode=sh sh_count=2 version=4\n' +
    'info=lk mode=sh version=4 flags=0x0 client_id=4\n' +
    'info=lk mode=sh version=4 flags=0x0 client_id=99\n' +
    'info=r_action client_id=5 flags=0x0 version=0 op=lock rt=gl mode=ex lm_type=dlm result=0 lm_rv=0\n' +
    'info=r name=VGLK type=vg mode=ex sh_count=0 version=7\n' +
    'info=lk mode=ex version=7 flags=0x0 client_id=4\n' +
    'info=r_action client_id=5 flags=0x0 version=0 op=update rt=vg mode=ex lm_type=dlm result=0 lm_rv=0\n' +
    'info=r name=LVUUID-2 type=lv mode=sh sh_count=1 version=0\n' +
    'info=lk mode=sh version=0 flags=0x1 client_id=0\n' +
    'info=r_action client_id=4 flags=0x0 version=0 op=lock rt=lv mode=ex lm_type=dlm result=0 lm_rv=0\n' +
    'info=r name=LVUUID-3 type=lv mode=un sh_count=0 version=0\n' +
    'info=bogus a=b\n' +
    '\n';

  const ODD =
    'info=lk mode=ex version=1 flags=0x0 client_id=1\n' +
    'info=r_action client_id=1 flags=0x0 version=0 op=lock rt=lv mode=ex lm_type=dlm result=0 lm_rv=0\n' +
    'junk\0' + 'info=r name=X type=lv mode=un sh_count=0 version=0\0' +
    'info=ls ls_name=lvm_a vg_name=a vg_uuid=UA vg_sysid=host1 vg_args=1.0.0:lvmlock lm_type=sanlock host_id=3\n' +
    'info=client pid=-1 fd=1 pi=1 id=7 name=x\n' +
    'info=r name=GLLK type=gl mode=ex sh_count=0 version=4294967296\n' +
    'info=lk mode=ex version=-2 flags=0x0 client_id=7\n' +
    'info=r name=Y type=zz mode=ex sh_count=0 version=1\n' +
    'info=lk mode=sh version=1 flags=0x0 client_id=7\n' +
    'info=ls\n' +
    'UN\n' +
    'tail-without-newline';

  const opts = { skip };

  test('--info formats like C: trace 07, busy lockspace, odd lines', opts, async () => {
    assert.equal((await compare(['--info'], { replies: { info: INFO_REPLY(RAW_07) } })).code, 0);
    await compare(['-i'], { replies: { info: INFO_REPLY(RAW_BUSY) } });
    await compare(['-i'], { replies: { info: INFO_REPLY(ODD) } });
  });

  test('--info --dump and --dump print the raw text; big dumps span many datagrams', opts, async () => {
    await compare(['--info', '--dump'], { replies: { info: INFO_REPLY(RAW_07) } });
    await compare(['-d'], { replies: { dump: INFO_REPLY('1 one\n2 two\0hidden', -5) } });
    // ~900 KiB (C 2.03.16 has a 1 MiB buffer): 14 datagrams of <= 64 KiB
    let big = '';
    for (let i = 0; big.length < 900 * 1024; i++) big += `1795609922 line ${i} ${'x'.repeat(i % 97)}\n`;
    const r = await compare(['-d'], { replies: { dump: INFO_REPLY(big) } });
    assert.equal(r.stdout, big + '\n');
  });

  test('gl enable/disable, drop, stop-lockspaces, quit, set-remote: requests and replies', opts, async () => {
    await compare(['--gl-enable', 'vgs1'], { replies: { enable_gl: OP(10, -210) } });
    await compare(['-D', 'vgs1'], { replies: { disable_gl: OP(11, 0) } });
    await compare(['-e', '-r', 'vg1'], { replies: { drop_vg: OP(21, 0) } });
    await compare(['-S'], { replies: { stop_all: OP(13, 0) } });
    await compare(['-S', '-w', '0'], { replies: { stop_all: OP(13, -16) } });
    await compare(['-q'], { replies: { quit: { reply: 'response = "OK"\nresult = -16\nprotocol = "lvmlockd"\nversion = 1\n' } } });
    await compare(['-E', 'a"b\\c'], { replies: { enable_gl: OP(10, 0) } });
    await compare(['x', '-E', 'v', 'y'], { replies: { enable_gl: OP(10, 0) } });
    await compare(['justanoperand'], { replies: {} });
  });

  test('bad replies: no op_result, bad response, hang-up', opts, async () => {
    await compare(['-E', 'vg'], { replies: { enable_gl: { reply: 'response = "OK"\nop = 10\n' } } });
    await compare(['-E', 'vg'], { replies: { enable_gl: { reply: 'response = "BAD"\nop_result = 0\n' } } });
    await compare(['-S'], { replies: { stop_all: { close: true } } });
    await compare(['-q'], { replies: { quit: { close: true } } });
    await compare(['-i'], { replies: { info: { close: true } } });
    await compare(['-i'], { replies: { info: { reply: 'response = "OK"\nresult = -12\ndump_len = 0\n' } } });
  });

  test('hello failures', opts, async () => {
    await compare(['-i'], { hello: 'response = "OK"\nresult = 0\nprotocol = "other"\nversion = 1\n', replies: {} });
    await compare(['-i'], { hello: 'response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 2\n', replies: {} });
    await compare(['-i'], { hello: 'response = "NOPE"\n', replies: {} });
    await compare(['-i'], { hello: null, replies: {} });
  });

  test('--kill with the real lvm config (empty lvmlockctl_kill_command)', opts, async () => {
    await compare(['-e', '--kill', 'vg1'], { replies: { kill_vg: OP(20, 0) } });
    await compare(['-e', '--kill', 'vg1'], { replies: { kill_vg: { reply: 'response = "OK"\n' } } });
  });

  test('--kill with a configured lvmlockctl_kill_command (LVM_SYSTEM_DIR)', opts, async () => {
    const sysdir = path.join(dir, 'lvmconf');
    fs.mkdirSync(sysdir, { recursive: true });
    const marker = path.join(dir, 'killed');
    const good = path.join(dir, 'kill-ok');
    fs.writeFileSync(good, `#!/bin/sh\necho "$@" >> ${marker}\necho noise\n`, { mode: 0o755 });
    const bad = path.join(dir, 'kill-bad');
    fs.writeFileSync(bad, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    const env = { LVM_SYSTEM_DIR: sysdir };
    const conf = (cmd: string) => fs.writeFileSync(path.join(sysdir, 'lvm.conf'), `global {\n  lvmlockctl_kill_command = "${cmd}"\n}\n`);

    conf(`${good} --flag`);
    const sc: Scenario = { replies: { kill_vg: OP(20, 0), drop_vg: OP(21, -210) } };
    const r = await compare(['-e', '--kill', 'vg1'], sc, { env });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Found lvmlockctl_kill_command: /);
    assert.equal(fs.readFileSync(marker, 'utf8'), '--flag vg1\n--flag vg1\n'); // C run + our run

    // drop_vg without op_result: "Failed to drop locks"
    await compare(['-e', '-k', 'vg1'], { replies: { kill_vg: OP(20, 0), drop_vg: { reply: 'response = "OK"\n' } } }, { env });
    // failing kill command: no drop_vg, exit 255
    conf(bad);
    const f = await compare(['-e', '-k', 'vg2'], sc, { env });
    assert.equal(f.code, 255);
    // relative path, leading space, escaped space, daemon gone
    conf('kill-it');
    await compare(['-e', '-k', 'vg3'], sc, { env });
    conf(' /bin/true');
    await compare(['-e', '-k', 'vg3'], sc, { env });
    conf(`${good}\\\\ x`);
    await compare(['-e', '-k', 'vg4'], sc, { env });
  });

  test('option handling: usage, --force quirk, getopt errors', opts, async () => {
    for (const args of [['--force', '1'], ['-f', '1'], ['-x'], ['--info=1'], ['-E'], ['--kill'], ['--gl'], ['--nope=1'], ['-h', '-x']]) {
      setScenario({ replies: {} });
      const c = await ns!.run('lvmlockctl', args);
      const ours = await ns!.run(BIN, args);
      // our usage text has HEAD's --set-remote-lv-lock lines and --json appended
      assert.ok(ours.stdout.startsWith(c.stdout), args.join(' '));
      assert.equal(ours.stderr, c.stderr, args.join(' '));
      assert.equal(ours.code, c.code, args.join(' '));
    }
  });
}

// Dispatch last: the classes above must be initialised first.
if (process.argv[2] === '--fake-daemon') {
  fakeDaemonMain(process.argv[3]!);
} else {
  defineTests();
}
