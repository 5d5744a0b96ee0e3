import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main, type CliEnv } from '../../src/cli/lvmlockctl';
import { FrameDecoder } from '../../src/protocol/framing';
import { sendDump } from '../../src/daemon/dump-socket';

// An in-process fake lvmlockd on a private socket path; the dump side channel uses
// a private abstract name, so nothing here touches a real daemon.

type Handler = (req: string, conn: number) => { reply?: string; close?: boolean; dump?: Buffer | string } | undefined;

const HELLO_OK = 'response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 1\n';

interface Fake {
  socketPath: string;
  dumpName: string;
  requests: Array<{ conn: number; text: string }>;
  close(): Promise<void>;
}

let seq = 0;
async function fakeDaemon(handler: Handler, hello: string | null = HELLO_OK): Promise<Fake> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockctl-test-'));
  const socketPath = path.join(dir, 'lvmlockd.socket');
  const dumpName = `lvmlockctl-cli-test-${process.pid}-${seq++}`;
  const requests: Fake['requests'] = [];
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    const id = ++conns;
    const dec = new FrameDecoder();
    s.on('data', (d) => {
      for (const ev of dec.push(d)) {
        if (ev.kind !== 'message') continue;
        // the decoder keeps the first '\n' of the terminator; store the exact wire bytes
        requests.push({ conn: id, text: ev.text + '##\n' });
        if (ev.text.startsWith('request = "hello"')) {
          if (hello === null) s.destroy(); else s.write(hello + '\n##\n');
          continue;
        }
        const r = handler(ev.text, id);
        if (!r) continue;
        if (r.reply !== undefined) s.write(r.reply + '\n##\n');
        if (r.close) s.end();
        if (r.dump !== undefined) void sendDump(r.dump, { name: dumpName });
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((res) => server.listen(socketPath, res));
  return {
    socketPath, dumpName, requests,
    close: () => new Promise<void>((res) => {
      for (const s of sockets) s.destroy();
      server.close(() => { fs.rmSync(dir, { recursive: true, force: true }); res(); });
    }),
  };
}

interface RunResult { rv: number; stdout: string; stderr: string; syslog: string[] }

async function runCli(fake: Fake | { socketPath: string; dumpName: string }, args: string[], extra: Partial<CliEnv> = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const syslog: string[] = [];
  const rv = await main(args, {
    stdout: (s) => { stdout += s; },
    stderr: (s) => { stderr += s; },
    syslog: (p, m) => { syslog.push(`${p}:${m}`); },
    socketPath: fake.socketPath,
    dumpSocketName: fake.dumpName,
    dumpTimeoutMs: 300,
    progName: 'lvmlockctl',
    pid: 4242,
    ...extra,
  });
  return { rv, stdout, stderr, syslog };
}

const OP_REPLY = (op: number, r: number) => `response = "OK"\nop = ${op}\nlock_type = "none"\nop_result = ${r}\nlm_result = 0\nresult_flags = "none"\n`;

test('--gl-enable: request bytes as in trace 10; a negative op_result still exits 0', async () => {
  const f = await fakeDaemon(() => ({ reply: OP_REPLY(10, -210) }));
  try {
    const r = await runCli(f, ['--gl-enable', 'vgs1']);
    assert.deepEqual(r, { rv: 0, stdout: '', stderr: '', syslog: ['6:Enabling global lock in VG vgs1.'] });
    assert.deepEqual(f.requests.map((q) => q.text), [
      'request = "hello"\n\n##\n',
      'request="enable_gl"\ncmd ="lvmlockctl"\npid =4242\nvg_name ="vgs1"\n\n##\n',
    ]);
    assert.equal(Buffer.byteLength(f.requests[1]!.text), 68); // as trace 10 (pid 9980)
    assert.equal(Buffer.byteLength(f.requests[0]!.text), 22);
  } finally { await f.close(); }
});

test('-D, -r: disable_gl / drop_vg requests; -e sends the drop notice to stderr', async () => {
  const f = await fakeDaemon((req) => ({ reply: OP_REPLY(req.includes('drop') ? 21 : 11, 0) }));
  try {
    const a = await runCli(f, ['-D', 'vgA']);
    assert.deepEqual(a, { rv: 0, stdout: '', stderr: '', syslog: ['6:Disabling global lock in VG vgA.'] });
    const b = await runCli(f, ['-e', '--drop', 'vgB']);
    assert.deepEqual(b, { rv: 0, stdout: '', stderr: 'Dropping locks for VG vgB.\n', syslog: [] });
    const c = await runCli(f, ['--drop', 'vgC']);
    assert.deepEqual(c.syslog, ['4:Dropping locks for VG vgC.']);
    assert.deepEqual(f.requests.filter((q) => !q.text.includes('hello')).map((q) => q.text), [
      'request="disable_gl"\ncmd ="lvmlockctl"\npid =4242\nvg_name ="vgA"\n\n##\n',
      'request="drop_vg"\ncmd ="lvmlockctl"\npid =4242\nvg_name ="vgB"\n\n##\n',
      'request="drop_vg"\ncmd ="lvmlockctl"\npid =4242\nvg_name ="vgC"\n\n##\n',
    ]);
  } finally { await f.close(); }
});

test('--drop refused by the daemon (EBUSY: LVs still locked): said on stderr, non-zero exit; other results exit 0 as C', async () => {
  let r = -16;
  const f = await fakeDaemon(() => ({ reply: OP_REPLY(21, r) }));
  try {
    const a = await runCli(f, ['-e', '--drop', 'vgB']);
    assert.equal(a.rv, -16);
    assert.match(a.stderr, /^Dropping locks for VG vgB\.\nlvmlockd kept the locks of VG vgB: LVs in it are still locked on this host\. .*lvmlockctl --kill vgB/);
    r = -210; // no lockspace: C's lvmlockctl says nothing and exits 0, and so do we
    const b = await runCli(f, ['-e', '--drop', 'vgB']);
    assert.deepEqual(b, { rv: 0, stdout: '', stderr: 'Dropping locks for VG vgB.\n', syslog: [] });
  } finally { await f.close(); }
});

test('reply problems: no op_result, bad response, connection closed', async () => {
  let mode = 0;
  const f = await fakeDaemon(() => {
    if (mode === 0) return { reply: 'response = "OK"\nop = 10\n' };
    if (mode === 1) return { reply: 'response = "NO"\nop_result = 0\n' };
    return { close: true };
  });
  try {
    let r = await runCli(f, ['-E', 'x']);
    assert.equal(r.stdout, 'lvmlockd_result no op_result\nlvmlockd result -1000\n');
    assert.equal(r.rv & 0xff, 24);
    mode = 1;
    r = await runCli(f, ['-E', 'x']);
    assert.equal(r.stdout, 'lvmlockd_result bad response\nlvmlockd result -1000\n');
    mode = 2;
    r = await runCli(f, ['-S']);
    assert.equal(r.stdout, 'lvmlockd_result reply error 104\nlvmlockd result -1000\n');
    assert.equal(r.rv, -1000);
  } finally { await f.close(); }
});

test('--stop-lockspaces: opts "wait " by default, "none" with -w 0', async () => {
  const f = await fakeDaemon(() => ({ reply: OP_REPLY(13, 0) }));
  try {
    assert.equal((await runCli(f, ['-S'])).rv, 0);
    assert.equal((await runCli(f, ['-S', '-w', '0'])).rv, 0);
    assert.equal((await runCli(f, ['--stop-lockspaces', '--wait=4294967296'])).rv, 0);
    assert.deepEqual(f.requests.filter((q) => !q.text.includes('hello')).map((q) => q.text), [
      'request="stop_all"\ncmd ="lvmlockctl"\npid =4242\nopts ="wait "\n\n##\n',
      'request="stop_all"\ncmd ="lvmlockctl"\npid =4242\nopts ="none"\n\n##\n',
      'request="stop_all"\ncmd ="lvmlockctl"\npid =4242\nopts ="none"\n\n##\n',
    ]);
  } finally { await f.close(); }
});

test('--set-remote-lv-lock (HEAD test option)', async () => {
  const f = await fakeDaemon(() => ({ reply: 'response = "OK"\nop = 30\nop_result = -1\n' }));
  try {
    const bad = await runCli(f, ['--set-remote-lv-lock', 'vg1', '--lv-uuid', 'U']);
    assert.equal(bad.stdout, '--set-remote-lv-lock requires --lv-uuid and --lock-mode\n');
    assert.equal(bad.rv, -22);
    const ok = await runCli(f, ['--set-remote-lv-lock=vg1', '--lv-uuid=U1', '--lock-mode', 'ex']);
    assert.equal(ok.rv, 0);
    assert.equal(f.requests.at(-1)!.text,
      'request="set_remote_lv_lock"\ncmd ="lvmlockctl"\npid =4242\nvg_name ="vg1"\nlv_uuid ="U1"\nmode ="ex"\n\n##\n');
  } finally { await f.close(); }
});

test('--quit uses the simple request form and ignores result', async () => {
  const f = await fakeDaemon(() => ({ reply: 'response = "OK"\nresult = -16\nprotocol = "lvmlockd"\nversion = 1\n' }));
  try {
    const r = await runCli(f, ['-q']);
    assert.deepEqual(r, { rv: 0, stdout: '', stderr: '', syslog: [] });
    assert.equal(f.requests.at(-1)!.text, 'request = "quit"\n\n##\n');
  } finally { await f.close(); }
});

const INFO =
  'info=structs unused_action_count=31 unused_client_count=31 unused_resource_count=29 unused_lock_count=31\n' +
  'info=client pid=5637 fd=7 pi=2 id=35 name=.\n' +
  'info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=U vg_sysid=. vg_args=1.0.0:test lm_type=dlm host_id=0 create_fail=0 create_done=1 thread_work=0 thread_stop=0 thread_done=0 kill_vg=0 drop_vg=0 sanlock_gl_enabled=0\n' +
  'info=r name=VGLK type=vg mode=un sh_count=0 version=5\n';

function dumpHandler(text: string, result = 0): Handler {
  return (req) => {
    if (req.includes('"info"') || req.includes('"dump"')) {
      return { reply: `response = "OK"\nresult = ${result}\ndump_len = ${Buffer.byteLength(text)}\n`, dump: text };
    }
    return undefined;
  };
}

test('--info formatted, --info --dump raw, --json', async () => {
  const f = await fakeDaemon(dumpHandler(INFO));
  try {
    assert.deepEqual(await runCli(f, ['-i']), { rv: 0, stdout: 'VG vg1 lock_type=dlm U\nLS dlm lvm_vg1\nLK VG un ver 5\n', stderr: '', syslog: [] });
    assert.deepEqual(await runCli(f, ['-i', '-d']), { rv: 0, stdout: INFO + '\n', stderr: '', syslog: [] });
    const j = await runCli(f, ['--json']);
    assert.equal(j.rv, 0);
    const doc = JSON.parse(j.stdout);
    assert.equal(doc.lockspaces[0].vg_name, 'vg1');
    assert.equal(doc.lockspaces[0].resources[0].version, 5);
    assert.equal(f.requests.at(-1)!.text, 'request = "info"\n\n##\n');
  } finally { await f.close(); }
});

test('--dump: prints up to the first NUL plus a newline; negative result is reported', async () => {
  const f = await fakeDaemon(dumpHandler('1 a\n2 b\0junk', -5));
  try {
    const r = await runCli(f, ['--dump']);
    assert.deepEqual(r, { rv: 0, stdout: 'result -5\n1 a\n2 b\n', stderr: '', syslog: [] });
    assert.equal(f.requests.at(-1)!.text, 'request = "dump"\n\n##\n');
  } finally { await f.close(); }
});

test('--json keeps stdout a pure document (diagnostics on stderr)', async () => {
  const f = await fakeDaemon(dumpHandler(INFO, -3));
  try {
    const r = await runCli(f, ['--json']);
    assert.equal(r.rv, 0);
    assert.equal(r.stderr, 'result -3\n');
    assert.equal(JSON.parse(r.stdout).lockspaces.length, 1);
  } finally { await f.close(); }
});

test('dump_len 0: nothing printed; --json prints an empty document', async () => {
  const f = await fakeDaemon(() => ({ reply: 'response = "OK"\nresult = 0\ndump_len = 0\n' }));
  try {
    assert.deepEqual(await runCli(f, ['-i']), { rv: 0, stdout: '', stderr: '', syslog: [] });
    assert.equal(JSON.parse((await runCli(f, ['--json'])).stdout).lockspaces.length, 0);
  } finally { await f.close(); }
});

test('datagrams never arrive: times out instead of hanging', async () => {
  const f = await fakeDaemon(() => ({ reply: 'response = "OK"\nresult = 0\ndump_len = 100\n' }));
  try {
    const r = await runCli(f, ['-i']);
    assert.deepEqual(r, { rv: -11, stdout: 'recvfrom error -1 11\n', stderr: '', syslog: [] });
  } finally { await f.close(); }
});

test('hello failures and no daemon', async () => {
  for (const [hello, err] of [
    ['response = "OK"\nresult = 0\nprotocol = "other"\nversion = 1\n', 'Daemon lvmlockd: requested protocol lvmlockd != other\n'],
    ['response = "OK"\nresult = 0\nprotocol = "lvmlockd"\nversion = 2\n', 'Daemon lvmlockd: requested protocol version 1 != 2\n'],
    ['response = "NO"\n', 'Daemon lvmlockd returned error 0\n'],
    [null, 'Daemon lvmlockd returned error 104\n'],
  ] as Array<[string | null, string]>) {
    const f = await fakeDaemon(() => undefined, hello);
    try {
      const r = await runCli(f, ['-i']);
      assert.deepEqual(r, { rv: -1, stdout: 'Cannot connect to lvmlockd.\n', stderr: err, syslog: [] }, String(hello));
    } finally { await f.close(); }
  }
  const r = await runCli({ socketPath: path.join(os.tmpdir(), `no-such-${process.pid}.socket`), dumpName: 'x' }, ['-S']);
  assert.equal(r.rv, -1);
  assert.equal(r.stdout, 'Cannot connect to lvmlockd.\n');
  assert.match(r.stderr, /: connect failed: No such file or directory\n$/);
});

test('usage, --force quirk, getopt errors', async () => {
  const none = { socketPath: '/nonexistent', dumpName: 'x' };
  const u = await runCli(none, []);
  assert.equal(u.rv, 0);
  assert.match(u.stdout, /^lvmlockctl options\nOptions:\n--help \| -h\n/);
  assert.match(u.stdout, /--force \| -f 0\|1>\n      Force option for other commands.\n/);
  for (const args of [['--force', '1'], ['-f', '1'], ['-x']]) {
    const r = await runCli(none, args);
    assert.equal(r.rv, 1, args.join(' '));
    assert.equal(r.stdout, u.stdout);
  }
  assert.equal((await runCli(none, ['-f', '1'])).stderr, "lvmlockctl: invalid option -- 'f'\n");
  assert.equal((await runCli(none, ['--force', '1'])).stderr, '');
  assert.equal((await runCli(none, ['-h', '-x'])).rv, 0);
});

function script(dir: string, name: string, body: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, '#!/bin/sh\n' + body + '\n', { mode: 0o755 });
  return p;
}

test('--kill: kill_vg, run the configured command, then drop_vg', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvmlockctl-kill-'));
  const f = await fakeDaemon((req) => ({ reply: OP_REPLY(req.includes('kill_vg') ? 20 : 21, 0) }));
  try {
    const marker = path.join(dir, 'ran');
    const killer = script(dir, 'killer', `echo "$@" > ${marker}`);
    const lvm = script(dir, 'lvm', `echo 'lvmlockctl_kill_command="${killer}"'`);
    const r = await runCli(f, ['-e', '--kill', 'vg9'], { lvmPath: lvm });
    assert.equal(r.rv, 0);
    assert.equal(r.stdout, `Found lvmlockctl_kill_command: ${killer}\n`);
    assert.equal(r.stderr, `lvmlockd lost access to locks in VG vg9.\nSuccessful VG vg9 kill command ${killer} vg9\n`);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'vg9\n');
    const reqs = f.requests.map((q) => [q.conn, q.text]);
    assert.deepEqual(reqs, [
      [1, 'request = "hello"\n\n##\n'],
      [1, 'request="kill_vg"\ncmd ="lvmlockctl"\npid =4242\nvg_name ="vg9"\n\n##\n'],
      [2, 'request = "hello"\n\n##\n'],
      [2, 'request="drop_vg"\ncmd ="lvmlockctl"\npid =4242\nvg_name ="vg9"\n\n##\n'],
    ]);

    // The default (empty) setting: no command, kill_vg only.
    const lvm2 = script(dir, 'lvm2', `echo 'lvmlockctl_kill_command=""'`);
    const r2 = await runCli(f, ['--kill', 'vg8'], { lvmPath: lvm2 });
    assert.equal(r2.rv, 0);
    assert.equal(r2.stdout, `unrecognized config value from ${lvm2} config --typeconfig full global/lvmlockctl_kill_command\n`);
    assert.deepEqual(r2.syslog, ['0:lvmlockd lost access to locks in VG vg8.', '0:Immediately deactivate LVs in VG vg8.', '0:Once VG is unused, run lvmlockctl --drop vg8.']);

    // A failing kill command: no drop, exit status 255.
    const lvm3 = script(dir, 'lvm3', `echo 'lvmlockctl_kill_command="/bin/false"'`);
    const r3 = await runCli(f, ['-e', '-k', 'vg7'], { lvmPath: lvm3 });
    assert.equal(r3.rv, -1);
    assert.equal(r3.stdout, 'Found lvmlockctl_kill_command: /bin/false\nchild exit error 1\n');
    assert.equal(r3.stderr, 'lvmlockd lost access to locks in VG vg7.\nFailed to run VG vg7 kill command /bin/false vg7\nImmediately deactivate LVs in VG vg7.\nOnce VG is unused, run lvmlockctl --drop vg7.\n');

    // A relative path is refused.
    const lvm4 = script(dir, 'lvm4', `echo 'lvmlockctl_kill_command="true"'; exit 3`);
    const r4 = await runCli(f, ['-e', '-k', 'vg6'], { lvmPath: lvm4 });
    assert.equal(r4.rv, 0);
    assert.equal(r4.stdout, 'lvmlockctl_kill_command must be full path\nchild exit error 3\n');
  } finally {
    await f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kill command word splitting follows the C tool (no shell)', async () => {
  const { parseKillCommandLine } = await import('../../src/cli/lvmlockctl');
  assert.deepEqual(parseKillCommandLine('/usr/bin/kill-vg  --now vg1'), ['/usr/bin/kill-vg', '--now', 'vg1']);
  assert.deepEqual(parseKillCommandLine('/a\\ b c\\\\d'), ['/a b', 'c\\d']);
  assert.deepEqual(parseKillCommandLine('/a b\\x c'), ['/a', 'b']); // bad escape ends the parse
  assert.deepEqual(parseKillCommandLine('/a b\u00e9c d'), ['/a', 'b']); // non-ASCII ends the parse
  assert.deepEqual(parseKillCommandLine('/a "q" \'s\''), ['/a', '"q"', "'s'"]); // quotes are plain punctuation
  assert.equal(parseKillCommandLine(Array.from({ length: 33 }, (_, i) => `w${i}`).join(' ')), null);
  assert.deepEqual(parseKillCommandLine(''), []);
});

test('replies are parsed leniently', async () => {
  const { parseReply } = await import('../../src/cli/lvmlockctl');
  const m = parseReply('response = "OK"\nop_result = -210\nbroken = "x\nresult_flags = none\n');
  assert.equal(m.str('response'), 'OK');
  assert.equal(m.int('op_result'), -210n);
  assert.equal(m.str('result_flags'), 'none');
});
