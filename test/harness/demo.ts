// Demo: a 2-host cluster (namespaces on this machine) sharing one loop disk,
// driven by the real, unmodified LVM2 commands and lvmlockctl. By default each
// host runs our lvmlockd with its native sanlock lock manager (real leases on
// the shared disk, no sanlock daemon); --lock-type dlm runs the test-mode demo
// (`-T`, no real lock manager).
//
//   node dist/test/harness/demo.js [--lock-type sanlock|dlm] [--daemon ts|c] [--binary PATH] [--keep] [--quiet-warnings]
//
// --daemon c runs the same demo against the C lvmlockd for comparison (with
// the real sanlock daemon on each host for sanlock).

import { Cluster, DaemonKind, DaemonOptions, Host, tsLvmlockdPath, C_LVMLOCKD } from './cluster';
import { shellQuote } from './exec';

interface Args {
  kind: DaemonKind;
  lockType: 'sanlock' | 'dlm';
  binary?: string;
  keep: boolean;
  hideNoDmWarning: boolean;
}

function usage(): never {
  process.stdout.write(
    'usage: demo [--lock-type sanlock|dlm] [--daemon ts|c] [--binary PATH] [--keep] [--quiet-warnings]\n' +
      '  --lock-type sanlock  leases on the shared disk (default; C: with the sanlock daemon)\n' +
      '  --lock-type dlm      test mode (-T): lock requests are answered without a lock manager\n' +
      '  --daemon ts   our TypeScript lvmlockd (default, <repo>/bin/lvmlockd)\n' +
      '  --daemon c    the C lvmlockd (/usr/sbin/lvmlockd), for comparison\n' +
      '  --binary PATH lvmlockd binary to run instead of the default of the kind\n' +
      '  --keep        keep the temp dir (confs, daemon logs, command log)\n' +
      '  --quiet-warnings  hide the "Activation disabled" warning every command prints\n',
  );
  process.exit(0);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { kind: 'ts', lockType: 'sanlock', keep: false, hideNoDmWarning: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i]!;
    if (v === '--lock-type' || v.startsWith('--lock-type=')) {
      const t = v === '--lock-type' ? argv[++i] : v.slice(12);
      if (t !== 'sanlock' && t !== 'dlm') usage();
      a.lockType = t;
      continue;
    }
    if (v === '--daemon' || v === '-d') {
      const k = argv[++i];
      if (k !== 'ts' && k !== 'c') usage();
      a.kind = k;
    } else if (v.startsWith('--daemon=')) {
      const k = v.slice(9);
      if (k !== 'ts' && k !== 'c') usage();
      a.kind = k;
    } else if (v === '--binary') a.binary = argv[++i];
    else if (v.startsWith('--binary=')) a.binary = v.slice(9);
    else if (v === '--keep') a.keep = true;
    else if (v === '--quiet-warnings') a.hideNoDmWarning = true;
    else usage();
  }
  return a;
}

const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
const NO_DM = 'WARNING: Activation disabled. No device-mapper interaction will be attempted.';

let failures = 0;
let opts: Args;

function say(s = ''): void {
  process.stdout.write(s + '\n');
}

function section(title: string): void {
  say('');
  say(bold(`=== ${title}`));
}

/** Run one command on a host, print it with its output; count unexpected exit codes. */
async function step(h: Host, argv: string[], expect = 0, why?: string): Promise<string> {
  say('');
  say(bold(`[${h.name}]$ ${shellQuote(argv)}`) + (why ? dim(`   # ${why}`) : ''));
  const r = await h.run(argv);
  const indent = (t: string) => t.replace(/\n$/, '').split('\n').map((l) => `    ${l}`).join('\n');
  if (r.stdout.trim()) say(indent(r.stdout));
  let err = r.stderr;
  if (opts.hideNoDmWarning) err = err.split('\n').filter((l) => l.trim() !== NO_DM).join('\n');
  if (err.trim()) say(dim(indent(err)));
  const ok = r.code === expect;
  if (!ok) failures++;
  const note = ok ? dim(`exit ${r.code}`) : red(`exit ${r.code}, expected ${expect}${r.timedOut ? ' (timed out)' : ''}`);
  say(`    ${note}`);
  return r.stdout;
}

async function infoAll(c: Cluster, title: string): Promise<void> {
  section(title);
  for (const h of c.hosts) await step(h, ['lvmlockctl', '--info'], 0, `locks held by ${h.name}'s daemon`);
}

async function main(): Promise<number> {
  opts = parseArgs(process.argv.slice(2));
  const binary = opts.binary ?? (opts.kind === 'c' ? C_LVMLOCKD : tsLvmlockdPath());
  say(bold(`lvmlockd multi-host demo (${opts.lockType === 'sanlock' ? 'sanlock leases' : 'test mode'})`));
  const c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 1024 }], name: 'demo', keep: opts.keep });
  try {
    if (opts.lockType === 'sanlock') await sanlockDemo(c, binary);
    else await testModeDemo(c, binary);
  } finally {
    section('cleanup');
    await c.destroy();
    say(opts.keep ? `stopped daemons and namespaces, detached loop devices; kept ${c.dir}` : 'stopped daemons and namespaces, detached loop devices, removed temp dir');
  }
  say('');
  say(failures === 0 ? bold('demo finished: every command gave the expected exit code') : red(`demo finished with ${failures} unexpected exit code(s)`));
  return failures === 0 ? 0 : 1;
}

/** sanlock io_timeout of the demo (-o): short, so that joining a lockspace takes seconds. */
const DEMO_IO_TIMEOUT = '1';

/** Prints what runs where, starts each host's daemon (and sanlock daemon); returns the shared disk. */
async function setUpHosts(c: Cluster, daemon: string, notes: string[], d: DaemonOptions, withSanlock: boolean): Promise<string> {
  say(`daemon: ${daemon}`);
  say('hosts: 2 network+mount namespaces on this machine, each with its own /etc/lvm (host_id),');
  say('       /run (daemon socket, pid file) and daemon; they share one loop device as "SAN" disk.');
  say('lvm.conf sets global/activation=0 (no device-mapper here): activation only takes/releases LV locks.');
  for (const n of notes) say(n);

  section('setting up the cluster');
  const disk = c.disks[0]!.path;
  say(`shared disk: ${disk} (1 GiB sparse file)`);
  for (const h of c.hosts) {
    if (withSanlock) await h.startSanlock();
    const p = await h.startDaemon(d);
    say(`${h.name}: host_id ${h.hostId}, lvmlockd pid ${p.pid}, log ${p.logPath}`);
  }
  return disk;
}

async function sanlockDemo(c: Cluster, binary: string): Promise<void> {
  const daemon = opts.kind === 'ts' ? 'our TypeScript lvmlockd, native sanlock leases (no sanlock daemon)' : 'C lvmlockd + the sanlock daemon (reference)';
  const disk = await setUpHosts(c, `${daemon}: ${binary} -o ${DEMO_IO_TIMEOUT}`,
    ['The hidden lvmlock LV (/dev/mapper/demo_vg-lvmlock) is an offset loop device over the PV.'],
    { kind: opts.kind, binary, args: ['-o', DEMO_IO_TIMEOUT] }, opts.kind === 'c');
  const [h1, h2] = [c.host(1), c.host(2)];
  await c.emulateLvmlock('demo_vg');
  const lvmlock = '/dev/mapper/demo_vg-lvmlock';

  section('create a shared VG (lock type sanlock) on host1');
  await step(h1, ['lvm', 'vgcreate', '--shared', '--lock-type', 'sanlock', 'demo_vg', disk], 0,
    'creates the lvmlock LV, writes the lease areas, joins host_id 1, enables the global lock');
  await step(h1, ['sanlock', 'direct', 'dump', `${lvmlock}:0:70M`], 0, 'the real sanlock tool reads our on-disk leases');
  await step(h2, ['lvm', 'vgchange', '--lock-start', 'demo_vg'], 0, 'host2 acquires host_id 2 (a delta lease)');

  section('create LVs (VG lock ex); each gets its own paxos lease');
  for (const lv of ['lv_ex', 'lv_sh', 'lv_tmp']) await step(h1, ['lvm', 'lvcreate', '-an', '-n', lv, '-L', '16M', 'demo_vg']);
  await step(h2, ['lvm', 'lvs', '-o', 'lv_name,lv_size,lv_lock_args', 'demo_vg'], 0, 'host2 sees them; lock_args = lease offset');

  section('exclusive and shared activation across hosts');
  await step(h1, ['lvm', 'lvchange', '-aey', 'demo_vg/lv_ex'], 0, 'paxos lease ex for host1');
  await step(h2, ['lvm', 'lvchange', '-aey', 'demo_vg/lv_ex'], 5, 'refused: host1 holds it');
  await step(h1, ['lvm', 'lvchange', '-asy', 'demo_vg/lv_sh']);
  await step(h2, ['lvm', 'lvchange', '-asy', 'demo_vg/lv_sh'], 0, 'shared on both hosts');
  await step(h2, ['lvm', 'lvchange', '-aey', 'demo_vg/lv_sh'], 5, 'refused: host1 shares it');
  await infoAll(c, 'lock state on each host');
  await step(h2, ['sanlock', 'direct', 'dump', `${lvmlock}:70254592:3M`], 0, 'lease owners on disk (host_id, generation)');

  section('metadata change seen by the other host');
  await step(h2, ['lvm', 'lvextend', '-L', '+8M', 'demo_vg/lv_tmp'], 0, 'VG lock ex from host2');
  await step(h1, ['lvm', 'lvs', '-o', 'lv_name,lv_size', 'demo_vg/lv_tmp'], 0, 'host1 rereads the metadata (VG lock version changed)');

  section('the lease moves between hosts');
  await step(h1, ['lvm', 'lvchange', '-an', 'demo_vg/lv_ex'], 0, 'host1 releases lv_ex');
  await step(h2, ['lvm', 'lvchange', '-aey', 'demo_vg/lv_ex'], 0, 'now host2 gets it');
  await step(h1, ['lvm', 'vgchange', '--lock-stop', 'demo_vg'], 5, 'refused: lv_sh is active on host1');

  section('deactivate and tear down');
  await step(h1, ['lvm', 'lvchange', '-an', 'demo_vg/lv_sh']);
  await step(h2, ['lvm', 'lvchange', '-an', 'demo_vg/lv_ex', 'demo_vg/lv_sh']);
  await step(h1, ['lvm', 'lvremove', '-y', 'demo_vg/lv_tmp'], 0, 'frees its lease for the next LV');
  await step(h2, ['lvm', 'vgchange', '--lock-stop', 'demo_vg'], 0, 'host2 releases host_id 2 (vgremove needs every other host stopped)');
  await waitLockspaceGone(h2, 'demo_vg');
  if (opts.kind === 'c') {
    // The sanlock daemon on host1 rereads the other hosts' delta leases at its
    // next renewal (every 2 x io_timeout); until then it still counts host2.
    say(dim('    (waiting 4 s for host1\'s sanlock daemon to see host_id 2 released)'));
    await new Promise((r) => setTimeout(r, 4000));
  }
  await step(h1, ['lvm', 'vgremove', '-y', 'demo_vg'], 0, 'frees the LV leases and the lockspace');
  await step(h1, ['lvmlockctl', '--info']);
}

/** lvmlockd stops a lockspace in the background (REM: in --info until done); wait for the end. */
async function waitLockspaceGone(h: Host, vg: string): Promise<void> {
  const t0 = Date.now();
  for (let i = 0; i < 40; i++) {
    const info = await h.run(['lvmlockctl', '--info']);
    if (!new RegExp(`^LS \\S+ (REM:)?lvm_${vg}$`, 'm').test(info.stdout)) {
      say(dim(`    (${h.name}: lockspace lvm_${vg} stopped after ${((Date.now() - t0) / 1000).toFixed(1)} s)`));
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  say(red(`    ${h.name}: lockspace lvm_${vg} still listed after 20 s`));
}

async function testModeDemo(c: Cluster, binary: string): Promise<void> {
  const daemon = opts.kind === 'ts' ? 'our TypeScript lvmlockd' : 'C lvmlockd (reference)';
  const disk = await setUpHosts(c, `${daemon}: ${binary} -T (test mode: dlm lock type, no real dlm)`, [],
    { kind: opts.kind, binary, args: ['-T'] }, false);
  const [h1, h2] = [c.host(1), c.host(2)];

  section('create a shared VG (lock type dlm) on host1');
  await step(h1, ['lvm', 'vgcreate', '--shared', '--lock-type', 'dlm', 'demo_vg', disk], 0, 'takes the global lock, starts lockspace lvm_demo_vg');
  await step(h1, ['lvm', 'vgs', '-o', 'vg_name,vg_attr,vg_size,vg_lock_type,vg_lock_args', 'demo_vg']);

  section('create LVs (VG lock ex)');
  for (const lv of ['lv_ex', 'lv_sh', 'lv_tmp']) await step(h1, ['lvm', 'lvcreate', '-an', '-n', lv, '-L', '16M', 'demo_vg']);

  section('activate: exclusive and shared LV locks');
  await step(h1, ['lvm', 'lvchange', '-aey', 'demo_vg/lv_ex'], 0, 'persistent LV lock ex');
  await step(h1, ['lvm', 'lvchange', '-asy', 'demo_vg/lv_sh'], 0, 'persistent LV lock sh');
  await step(h2, ['lvm', 'vgchange', '--lock-start', 'demo_vg'], 0, 'host2 joins the lockspace');
  await step(h2, ['lvm', 'lvchange', '-asy', 'demo_vg/lv_sh'], 0, 'shared on host2 too');
  await infoAll(c, 'lock state on each host');

  section('resize and inspect');
  await step(h1, ['lvm', 'lvextend', '-L', '+8M', 'demo_vg/lv_ex'], 0, 'VG lock ex, version bump');
  await step(h2, ['lvm', 'lvs', '-o', 'lv_name,lv_size,lv_lock_args', 'demo_vg'], 0, 'host2 reads the new metadata under VG lock sh');
  await step(h1, ['lvm', 'vgchange', '--lock-stop', 'demo_vg'], 5, 'refused: LVs are active');

  section('deactivate and tear down');
  await step(h1, ['lvm', 'lvchange', '-an', 'demo_vg/lv_ex', 'demo_vg/lv_sh']);
  await step(h2, ['lvm', 'lvchange', '-an', 'demo_vg/lv_sh']);
  await step(h1, ['lvm', 'lvremove', '-y', 'demo_vg/lv_tmp']);
  await step(h2, ['lvm', 'vgchange', '--lock-stop', 'demo_vg']);
  await infoAll(c, 'lock state after deactivation');
  await step(h1, ['lvm', 'vgremove', '-y', 'demo_vg'], 0, 'frees the LV locks and the lockspace');
  await step(h1, ['lvmlockctl', '--info']);
}

// `node --test dist/test/` also executes every .js under a test/ folder,
// this file included: do not run the demo as a side effect of the test suite.
if (process.env.NODE_TEST_CONTEXT) {
  process.stdout.write('demo: not run under the node test runner\n');
  process.exit(0);
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(2);
  },
);
