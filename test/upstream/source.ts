// LVM2's own test suite, built on the host for the VMs: the Debian source
// package of the lvm2 that the guest image has installed, fetched through a
// private apt configuration (a deb-src entry for the mirror the host already
// uses; the machine's own apt sources are not touched), configured, the
// suite's helpers built (runner, not), and laid out the way upstream's
// `make -C test install` does, under a prefix the VMs mount read-only at
// GUEST_PREFIX. Cached outside the repo, keyed by the lvm2 version.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where the VMs mount the installed suite (the prefix it is configured for). */
export const GUEST_PREFIX = '/opt/lvm2-testsuite';
export const GUEST_DATADIR = `${GUEST_PREFIX}/share/lvm2-testsuite`;
export const GUEST_RUNNER = `${GUEST_PREFIX}/bin/lvm2-testsuite`;

/** Bumped when the build or the installed layout changes (part of the cache key). */
const LAYOUT = 6;

export function upstreamCacheRoot(): string {
  if (process.env.LVMLOCKD_UPSTREAM_CACHE) return process.env.LVMLOCKD_UPSTREAM_CACHE;
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'lvmlockd-ts-upstream');
  return '/var/cache/lvmlockd-ts-upstream';
}

function suiteRoot(version: string): string {
  return path.join(upstreamCacheRoot(), `lvm2-${version}-l${LAYOUT}`);
}

export interface BuiltSuite {
  /** Debian version of lvm2, e.g. 2.03.16-2 */
  version: string;
  /** Host dir holding the installed tree (mounted at GUEST_PREFIX). */
  prefixDir: string;
  /** Names of the shell tests, e.g. lvmlockd-hello-world.sh, sorted. */
  tests: string[];
}

/** `lvm2=2.03.16-2` from the guest image's manifest. */
export function lvm2VersionFromManifest(manifest: string): string | null {
  const m = /^lvm2=(\S+)$/m.exec(manifest);
  return m ? m[1]! : null;
}

export interface AptMirror {
  uri: string;
  suite: string;
  keyring: string | null;
}

/**
 * The Debian mirror and release of the host's apt sources (one-line
 * sources.list or deb822 .sources): the first `deb` entry whose suite is the
 * release itself (not -updates/-security).
 */
export function parseAptSources(files: Array<{ name: string; text: string }>, codename: string): AptMirror | null {
  for (const f of files) {
    if (f.name.endsWith('.sources')) {
      for (const stanza of f.text.split(/\n\s*\n/)) {
        const field = (k: string): string | null => {
          const m = new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(stanza);
          return m ? m[1]!.trim() : null;
        };
        const types = (field('Types') ?? '').split(/\s+/);
        const suites = (field('Suites') ?? '').split(/\s+/);
        const uri = (field('URIs') ?? '').split(/\s+/)[0];
        if (types.includes('deb') && suites.includes(codename) && uri) {
          return { uri, suite: codename, keyring: field('Signed-By') };
        }
      }
    } else {
      for (const line of f.text.split('\n')) {
        const m = /^\s*deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s/.exec(line);
        if (m && m[3] === codename) {
          const key = /signed-by=(\S+)/.exec(m[1] ?? '');
          return { uri: m[2]!, suite: codename, keyring: key ? key[1]! : null };
        }
      }
    }
  }
  return null;
}

function hostAptSources(): Array<{ name: string; text: string }> {
  const out: Array<{ name: string; text: string }> = [];
  const read = (p: string): void => {
    try { out.push({ name: p, text: fs.readFileSync(p, 'utf8') }); } catch { /* absent */ }
  };
  read('/etc/apt/sources.list');
  try {
    for (const f of fs.readdirSync('/etc/apt/sources.list.d').sort()) {
      if (f.endsWith('.list') || f.endsWith('.sources')) read(path.join('/etc/apt/sources.list.d', f));
    }
  } catch { /* none */ }
  return out;
}

function codename(): string {
  const m = /^VERSION_CODENAME=(\S+)$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
  if (!m) throw new Error('no VERSION_CODENAME in /etc/os-release');
  return m[1]!;
}

function run(argv: string[], cwd: string, logFile: string, env: NodeJS.ProcessEnv = process.env): void {
  fs.appendFileSync(logFile, `$ ${argv.join(' ')}   (in ${cwd})\n`);
  const fd = fs.openSync(logFile, 'a');
  try {
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', fd, fd], timeout: 30 * 60_000 });
    if (r.error) throw new Error(`${argv[0]}: ${r.error.message} (log: ${logFile})`);
    if (r.status !== 0) throw new Error(`${argv.join(' ')} → exit ${r.status} (log: ${logFile})`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Fixes to upstream test scripts that fail before they test anything on this
 * system, each applied to the installed copy only (and refused loudly when
 * the text is not there, e.g. in another lvm2 version).
 */
export const SCRIPT_FIXES: Array<{ file: string; from: string; to: string; why: string }> = [
  {
    file: 'shell/aa-lvmlockd-sanlock-prepare.sh',
    from: '"0 $(blockdev --getsize $GL_LOOP linear $GL_LOOP 0)"',
    to: '"0 $(blockdev --getsize $GL_LOOP) linear $GL_LOOP 0"',
    why: "the command substitution swallows the table's tail, so blockdev (util-linux 2.38) fails on the extra arguments and the sanlock flavour's global-lock VG is never made",
  },
  {
    file: 'lib/aux',
    from: 'vgremove -ff "$cfg"  \\\n',
    to: 'vgremove -ff $cfg  \\\n',
    why: 'teardown passes "--config activation{monitoring=0}" as one argument, which lvm refuses (unrecognized option), so a failed test\'s VGs are never removed; ' +
      'in the sanlock flavour (one lvmlockd for every test) the locks of their active LVs stay held, and the remove script\'s `lvmlockctl --stop-lockspaces` waits for them forever',
  },
  {
    file: 'lib/aux',
    from: '\tif [ -n "$LVM_TEST_LOCK_TYPE_IDM" ]; then\n\t\tsg_dev=`sg_map26 ${dev}`\n',
    to: '\tif [ -n "$LVM_TEST_LOCK_TYPE_IDM" ] && ! command -v sg_raw >/dev/null; then\n' +
      '\t\techo "Cleanup IDM context for drive ${dev}: NOT DONE (no sg3-utils: sg_map26, sg_raw; see docs/upstream-tests.md of lvmlockd-ts)"\n' +
      '\telif [ -n "$LVM_TEST_LOCK_TYPE_IDM" ]; then\n\t\tsg_dev=`sg_map26 ${dev}`\n',
    why: 'prepare_devs cleans each IDM backing device with two sg_raw commands (sg3-utils), which the VM image does not have: under `set -e` the missing ' +
      'sg_map26 would end every test of the idm flavour in its prepare_devs; the cleanup is skipped, with a line in the log, where sg_raw is missing',
  },
  ...['idm_fabric_failure.sh', 'idm_fabric_failure_half_brain.sh', 'idm_fabric_failure_timeout.sh'].map((t) => ({
    file: `shell/${t}`,
    from: "awk -F'/' '{print $6}'",
    to: "awk -F'/' '{for (i = 1; i <= NF; i++) if ($i ~ /^host[0-9]+$/) print $i}'",
    why: 'the SCSI host of a disk is taken as the 6th field of its /sys/block link, which is hostN under a PCI HBA ' +
      '(../devices/pci…/<dev>/<port>/hostN/…) but targetN:0:1 under tcm_loop (../devices/tcm_loop_0/tcm_loop_adapter_0/hostN/targetN:0:1/…), ' +
      'so the rescan after the fault writes to /sys/class/scsi_host/targetN:0:1/scan (fails, or is skipped) and the deleted disk never comes back; ' +
      'the fix takes the hostN field wherever it is',
  })),
];

export function applyScriptFixes(dataDir: string): void {
  for (const f of SCRIPT_FIXES) {
    const p = path.join(dataDir, f.file);
    const text = fs.readFileSync(p, 'utf8');
    if (!text.includes(f.from)) throw new Error(`${f.file}: the text to fix is not there: ${f.from}`);
    fs.writeFileSync(p, text.split(f.from).join(f.to));
  }
}

/** Tools the host needs to build the suite, with the Debian package of each. */
const BUILD_TOOLS: Array<[string, string]> = [
  ['apt-get', 'apt'], ['dpkg-source', 'dpkg-dev'], ['gcc', 'gcc'], ['g++', 'g++'], ['make', 'make'], ['xz', 'xz-utils'],
];

export function buildToolsMissing(): string[] {
  return BUILD_TOOLS.filter(([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0).map(([, pkg]) => pkg);
}

/**
 * The lvm2 test suite for `version`, built and installed in the cache (once;
 * later calls reuse it). Concurrent callers serialize on a lock file.
 */
export function ensureSuite(version: string, log: (s: string) => void = () => {}): BuiltSuite {
  const root = suiteRoot(version);
  const prefixDir = path.join(root, 'prefix');
  const stamp = path.join(root, 'installed');
  const suite = (): BuiltSuite => ({
    version,
    prefixDir,
    tests: fs.readdirSync(path.join(prefixDir, 'share', 'lvm2-testsuite', 'shell')).filter((f) => f.endsWith('.sh')).sort(),
  });
  if (fs.existsSync(stamp)) return suite();
  fs.mkdirSync(root, { recursive: true });
  const lock = path.join(root, 'build.lock');
  // the build runs under flock(1) in a child, so a second caller waits for it
  const r = spawnSync('flock', [lock, process.execPath, path.join(__dirname, 'cli.js'), '--build-suite-locked', version], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, LVMLOCKD_UPSTREAM_BUILD: '1' },
  });
  if (r.status !== 0 || !fs.existsSync(stamp)) throw new Error(`building the lvm2 ${version} test suite failed (logs in ${root})`);
  log(`lvm2 ${version} test suite ready in ${prefixDir}`);
  return suite();
}

/** The build itself (called under the lock by ensureSuite). */
export function buildSuiteLocked(version: string, log: (s: string) => void): void {
  const root = suiteRoot(version);
  const stamp = path.join(root, 'installed');
  if (fs.existsSync(stamp)) return;
  const missing = buildToolsMissing();
  if (missing.length) throw new Error(`cannot build the lvm2 test suite: install ${missing.join(' ')}`);
  const logFile = path.join(root, 'build.log');
  fs.writeFileSync(logFile, `build of the lvm2 ${version} test suite, ${new Date().toISOString()}\n`);
  const t0 = Date.now();

  // 1. the source package, through a private apt configuration
  const cn = codename();
  const mirror = parseAptSources(hostAptSources(), cn);
  if (!mirror) throw new Error(`no apt source for ${cn} in /etc/apt/sources.list*`);
  const apt = path.join(root, 'apt');
  fs.rmSync(apt, { recursive: true, force: true });
  fs.mkdirSync(path.join(apt, 'lists', 'partial'), { recursive: true });
  const opts = mirror.keyring ? `[signed-by=${mirror.keyring}] ` : '';
  fs.writeFileSync(path.join(apt, 'sources.list'), `deb-src ${opts}${mirror.uri} ${mirror.suite} main\n`);
  const aptOpts = [
    '-o', `Dir::Etc::sourcelist=${path.join(apt, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`,
    '-o', 'APT::Get::List-Cleanup=0',
    '-o', 'APT::Sandbox::User=root',
  ];
  log(`fetching the lvm2 ${version} source package (deb-src ${mirror.suite}, private apt lists)`);
  run(['apt-get', ...aptOpts, '-qq', 'update'], apt, logFile);
  const dl = path.join(root, 'dl');
  fs.rmSync(dl, { recursive: true, force: true });
  fs.mkdirSync(dl);
  run(['apt-get', ...aptOpts, '-qq', 'source', '--download-only', `lvm2=${version}`], dl, logFile);
  const dsc = fs.readdirSync(dl).find((f) => f.endsWith('.dsc'));
  if (!dsc) throw new Error(`no .dsc downloaded for lvm2=${version} (log: ${logFile})`);
  const src = path.join(root, 'src');
  fs.rmSync(src, { recursive: true, force: true });
  run(['dpkg-source', '-x', dsc, src], dl, logFile);

  // 2. configure for the guest's layout (Debian's run/pid dirs, lvmpolld), build the helpers only
  log('configuring and building the suite helpers (runner, not)');
  run(['./configure', `--prefix=${GUEST_PREFIX}`, '--with-default-pid-dir=/run', '--with-default-run-dir=/run/lvm',
    '--with-default-locking-dir=/run/lock/lvm', '--enable-lvmpolld', '--with-thin=internal', '--with-cache=internal',
    '--with-thin-check=/usr/sbin/thin_check', '--with-thin-dump=/usr/sbin/thin_dump', '--with-thin-repair=/usr/sbin/thin_repair',
    '--disable-readline', '--disable-selinux', '--disable-blkid_wiping', '--disable-udev_sync'], src, logFile);
  const jobs = '-j2';
  run(['make', jobs, '-C', 'tools', '.commands'], src, logFile);
  const test = path.join(src, 'test');
  const flavours = fs.readdirSync(path.join(test, 'lib')).filter((f) => /^flavour-.*\.sh$/.test(f)).map((f) => `lib/${f.slice(0, -3)}`);
  const shared = ['check', 'aux', 'inittest', 'utils', 'get', 'lvm-wrapper'];
  run(['make', jobs, 'lib/runner', 'lib/not', 'lib/invalid', 'lib/fail', 'lib/should', 'lib/paths-installed',
    'lib/version-expected', 'lib/dm-version-expected', ...shared.map((s) => `lib/${s}`), ...flavours], test, logFile);

  // 3. install as `make -C test install` does (without dmsecuretest/securetest,
  //    which need libdevmapper's build; only shell/dmsecuretest.sh uses them)
  const prefix = path.join(root, 'prefix');
  fs.rmSync(prefix, { recursive: true, force: true });
  const data = path.join(prefix, 'share', 'lvm2-testsuite');
  const exec = path.join(prefix, 'libexec', 'lvm2-testsuite');
  for (const d of ['shell', 'api', 'unit', 'lib', 'dbus']) fs.mkdirSync(path.join(data, d), { recursive: true });
  fs.mkdirSync(exec, { recursive: true });
  fs.mkdirSync(path.join(prefix, 'bin'), { recursive: true });
  const copyGlob = (from: string, to: string, ext: string): void => {
    for (const f of fs.readdirSync(from)) if (f.endsWith(ext)) fs.copyFileSync(path.join(from, f), path.join(to, f));
  };
  copyGlob(path.join(test, 'shell'), path.join(data, 'shell'), '.sh');
  copyGlob(path.join(test, 'api'), path.join(data, 'api'), '.sh');
  copyGlob(path.join(test, 'unit'), path.join(data, 'unit'), '.sh');
  // the guest's lvm has udev sync (Debian builds with --enable-udev_sync)
  const paths = fs.readFileSync(path.join(test, 'lib', 'paths-installed'), 'utf8').replace(/^DM_UDEV_SYNCHRONISATION=.*$/m, 'DM_UDEV_SYNCHRONISATION=1');
  fs.writeFileSync(path.join(data, 'lib', 'paths'), paths);
  const libData = [...flavours.map((f) => f.slice(4)), 'test-corosync-conf', 'test-dlm-conf', 'test-sanlock-conf', 'mke2fs.conf',
    'dm-version-expected', 'version-expected'];
  for (const f of libData) fs.copyFileSync(path.join(test, 'lib', f), path.join(data, 'lib', f));
  for (const p of ['cache-mq', 'cache-smq', 'thin-performance', 'lvmdbusd']) {
    fs.copyFileSync(path.join(src, 'conf', `${p}.profile`), path.join(data, 'lib', `${p}.profile`));
  }
  for (const s of shared) {
    fs.copyFileSync(path.join(test, 'lib', s), path.join(data, 'lib', s));
    fs.chmodSync(path.join(data, 'lib', s), 0o755);
  }
  const cmds = ['lvm', ...fs.readFileSync(path.join(src, 'tools', '.commands'), 'utf8').split('\n').filter(Boolean)];
  for (const c of cmds) fs.symlinkSync('lvm-wrapper', path.join(data, 'lib', c));
  applyScriptFixes(data);
  fs.copyFileSync(path.join(test, 'lib', 'not'), path.join(exec, 'not'));
  fs.chmodSync(path.join(exec, 'not'), 0o755);
  for (const l of ['invalid', 'fail', 'should']) fs.symlinkSync('not', path.join(exec, l));
  fs.copyFileSync(path.join(test, 'lib', 'runner'), path.join(prefix, 'bin', 'lvm2-testsuite'));
  fs.chmodSync(path.join(prefix, 'bin', 'lvm2-testsuite'), 0o755);

  // 4. our extra flavour: lvmlockd --test with sanlock (aux.sh has the branch,
  //    upstream ships no flavour file for it). LVM_TEST_LVMLOCKD_TEST_DLM stays
  //    set, empty: aux.sh tests it under `set -u` before the sanlock branch.
  const testFlavour = fs.readFileSync(path.join(test, 'lib', 'flavour-udev-lvmlockd-test.sh'), 'utf8');
  const dlmLine = /^export LVM_TEST_LVMLOCKD_TEST_DLM=1$/m;
  if (!dlmLine.test(testFlavour)) throw new Error('flavour-udev-lvmlockd-test.sh has no LVM_TEST_LVMLOCKD_TEST_DLM line to derive the sanlock --test flavour from');
  fs.writeFileSync(path.join(data, 'lib', 'flavour-udev-lvmlockd-test-sanlock'),
    testFlavour.replace(dlmLine, 'export LVM_TEST_LVMLOCKD_TEST_DLM=\nexport LVM_TEST_LVMLOCKD_TEST_SANLOCK=1'));

  fs.writeFileSync(stamp, `${new Date().toISOString()} ${version} built in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  fs.rmSync(dl, { recursive: true, force: true });
}
