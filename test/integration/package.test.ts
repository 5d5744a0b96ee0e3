// `npm run package` builds a .deb that installs next to lvm2-lockd, switches
// between the C daemon and ours with one update-alternatives command each way,
// runs with its own Node runtime (the system's node hidden), and leaves the C
// daemon working after a purge.
//
// The package is installed into a throwaway copy of this machine: an overlay
// of / (writes go to a temp dir) in a private mount and network namespace,
// entered with chroot. The machine's own /sbin, dpkg database and abstract
// sockets are never touched.
//
// Needs root, dpkg-deb, unshare, overlayfs, lvm2-lockd installed (the C
// daemon to switch from), and `npm run build` first. Adds ~1 min (packing).

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, makeTempDir, removeDir } from '../helpers/daemon-process';
import { lvmConf, lvmLocalConf } from '../harness/lvmconf';
import { SystemdContainer, sleep, systemdContainerWhyNot } from '../helpers/systemd-container';

function whyNot(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (unshare, overlay mount, chroot)';
  for (const tool of ['dpkg-deb', 'unshare', 'chroot']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (!fs.existsSync('/sbin/lvmlockd') || fs.lstatSync('/sbin/lvmlockd').isSymbolicLink()) return 'lvm2-lockd (the C /sbin/lvmlockd) is not installed as a plain file';
  if (!fs.readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'the kernel has no overlayfs';
  return null;
}

const skip = whyNot();
const HAVE_MAN = spawnSync('sh', ['-c', 'command -v man']).status === 0;
if (!skip && !HAVE_MAN) console.error('package: man (man-db) is not installed: the man page checks of this test are SKIPPED');
if (skip) console.error(`SKIPPED package: ${skip}`);

// Runs in the chroot; prints "key=value" facts.
const INSIDE = String.raw`
set -u
fact() { printf '%s=%s\n' "$1" "$2"; }
cdaemon_info() {  # start whatever /sbin/lvmlockd is in test mode, ask it, stop it
  /sbin/lvmlockd -T >/dev/null 2>&1; fact "$1_start" $?
  /sbin/lvmlockctl --info >/dev/null 2>&1; fact "$1_info" $?
  fact "$1_pgrep" "$(pgrep -x lvmlockd | wc -l)"
  /sbin/lvmlockctl --quit >/dev/null 2>&1
  i=0; while pgrep -x lvmlockd >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
}
fact before "$(readlink -f /sbin/lvmlockd)"
dpkg -i /pkg.deb >/tmp/dpkg.log 2>&1; fact install $?
fact installed_target "$(readlink -f /sbin/lvmlockd)"
fact installed_version "$(/sbin/lvmlockd --version)"
update-alternatives --set lvmlockd /usr/lib/lvmlockd-ts/bin/lvmlockd >/dev/null 2>&1; fact switch $?
fact switched_target "$(readlink -f /sbin/lvmlockd)"
fact switched_version "$(/sbin/lvmlockd --version)"
fact man_path "$(man -w lvmlockd 2>&1)"
fact man_warnings "$(MANWIDTH=80 man --warnings lvmlockd 2>&1 >/dev/null | wc -l)"
fact man_ours "$(MANWIDTH=80 man lvmlockd 2>/dev/null | grep -c -- '--metrics-file')"
fact leasectl_man "$(man -w leasectl 2>&1)"
mv /usr/bin/node /usr/bin/node.hidden   # ours must run on its own runtime
cdaemon_info ours
/sbin/lvmlockd -T >/dev/null 2>&1
fact ours_metrics "$(/sbin/lvmlockctl --metrics 2>&1 | grep -c '^lvmlockd_clients_connected ')"
/sbin/lvmlockctl --quit >/dev/null 2>&1; sleep 1
mv /usr/bin/node.hidden /usr/bin/node
update-alternatives --set lvmlockd /sbin/lvmlockd.lvm2-lockd >/dev/null 2>&1; fact switch_back $?
fact back_version "$(/sbin/lvmlockd --version)"
update-alternatives --set lvmlockd /usr/lib/lvmlockd-ts/bin/lvmlockd >/dev/null 2>&1
dpkg --purge lvmlockd-ts >>/tmp/dpkg.log 2>&1; fact purge $?
fact purged_symlink "$([ -L /sbin/lvmlockd ] && echo yes || echo no)"
fact purged_version "$(/sbin/lvmlockd --version)"
fact purged_diversions "$(dpkg-divert --list '*lvm*' | wc -l)"
fact purged_alternative "$(update-alternatives --query lvmlockd >/dev/null 2>&1 && echo yes || echo no)"
fact purged_man "$(man -w lvmlockd 2>&1)"
cdaemon_info c
`;

describe('Debian package', { skip: skip ?? false }, () => {
  let deb = '';
  before(() => {
    const built = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'package.sh')], {
      encoding: 'utf8', cwd: REPO_ROOT, env: { ...process.env, LVMLOCKD_PACKAGE_NO_BUILD: '1' }, timeout: 300_000,
    });
    assert.equal(built.status, 0, built.stderr);
    deb = path.join(REPO_ROOT, built.stdout.trim().split('\n').at(-1)!);
  });

  test('install next to lvm2-lockd, switch both ways, run on its own runtime, purge', { timeout: 600_000 }, () => {
    assert.match(deb, /lvmlockd-ts_[\d.]+_amd64\.deb$/);
    const info = spawnSync('dpkg-deb', ['-f', deb, 'Package', 'Architecture', 'Depends'], { encoding: 'utf8' }).stdout;
    assert.match(info, /Package: lvmlockd-ts\nArchitecture: amd64\nDepends: .*lvm2-lockd/);

    const dir = makeTempDir('lvmlockd-pkg-');
    try {
      for (const d of ['upper', 'work', 'root']) fs.mkdirSync(path.join(dir, d));
      fs.writeFileSync(path.join(dir, 'inside.sh'), INSIDE);
      const setup = `set -e
        T="${dir}"
        mount --make-rprivate /
        mount -t overlay overlay -o lowerdir=/,upperdir=$T/upper,workdir=$T/work $T/root
        mount --bind /proc $T/root/proc
        mount --rbind /dev $T/root/dev
        mount --bind /sys $T/root/sys
        mount -t tmpfs tmpfs $T/root/run
        mount -t tmpfs tmpfs $T/root/tmp
        cp "${deb}" $T/root/pkg.deb
        cp $T/inside.sh $T/root/inside.sh
        exec chroot $T/root sh /inside.sh`;
      const r = spawnSync('unshare', ['--mount', '--net', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', setup], { encoding: 'utf8', timeout: 300_000 });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      const f = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const all = JSON.stringify(f, null, 1);
      assert.equal(f.install, '0', all);
      // Installing keeps the C daemon in service (moved aside by dpkg-divert, chosen by the alternative).
      assert.equal(f.installed_target, f.before + '.lvm2-lockd', all);
      assert.doesNotMatch(f.installed_version!, /lvmlockd-ts/, 'installing must not switch the daemon');
      assert.equal(f.switch, '0');
      assert.equal(f.switched_target, '/usr/lib/lvmlockd-ts/bin/lvmlockd');
      assert.match(f.switched_version!, /\[lvmlockd-ts /);
      if (HAVE_MAN) {
        assert.equal(f.man_path, '/usr/lib/lvmlockd-ts/man/lvmlockd.8.gz');
        assert.equal(f.man_warnings, '0');
        assert.notEqual(f.man_ours, '0');
        assert.equal(f.leasectl_man, '/usr/share/man/man8/leasectl.8.gz');
      }
      assert.deepEqual([f.ours_start, f.ours_info, f.ours_pgrep, f.ours_metrics], ['0', '0', '1', '1'], all);
      assert.equal(f.switch_back, '0');
      assert.doesNotMatch(f.back_version!, /lvmlockd-ts/);
      assert.equal(f.purge, '0', all);
      assert.equal(f.purged_symlink, 'no');
      assert.doesNotMatch(f.purged_version!, /lvmlockd-ts/);
      assert.match(f.purged_version!, /^lvmlockd version: /);
      assert.equal(f.purged_diversions, '0');
      assert.equal(f.purged_alternative, 'no');
      if (HAVE_MAN) assert.equal(f.purged_man, '/usr/share/man/man8/lvmlockd.8.gz');
      assert.deepEqual([f.c_start, f.c_info, f.c_pgrep], ['0', '0', '1'], all);
    } finally {
      removeDir(dir);
    }
  });
  // systemd as PID 1 (test/helpers/systemd-container.ts) runs Debian's unmodified units.
  test('systemd runs ours through the unmodified lvmlockd.service and lvmlocks.service; switch back and purge give C', {
    timeout: 600_000, skip: systemdContainerWhyNot() ?? false,
  }, async () => {
    const dir = makeTempDir('lvmlockd-sd-');
    let box: SystemdContainer | null = null;
    let loop = '';
    try {
      // A PV for a shared VG. There is no lock manager on this machine, so the
      // daemon runs in test mode through a drop-in (the unit files stay Debian's).
      const img = path.join(dir, 'pv.img');
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 64 * 1024 * 1024);
      const lo = spawnSync('losetup', ['-f', '--show', img], { encoding: 'utf8' });
      assert.equal(lo.status, 0, lo.stderr);
      loop = lo.stdout.trim();
      box = await SystemdContainer.boot({
        dir: path.join(dir, 'c'), hostname: 'lvmlockd-ts-systemd', devices: [path.basename(loop)],
        files: {
          '/etc/lvm/lvm.conf': lvmConf({ devices: [loop] }),
          '/etc/systemd/system/lvmlockd.service.d/test-mode.conf': '[Service]\nExecStart=\nExecStart=/sbin/lvmlockd --foreground -T\n',
        },
        copies: { '/pkg.deb': deb },
      });
      const c = box;
      c.ok('dpkg -i /pkg.deb >/dev/null 2>&1');
      c.ok('update-alternatives --set lvmlockd /usr/lib/lvmlockd-ts/bin/lvmlockd');
      c.ok('systemctl enable --now lvmlockd lvmlocks');
      let d = c.show('lvmlockd');
      assert.deepEqual([d.ActiveState, d.SubState, d.StatusText], ['active', 'running', 'no lockspaces'], JSON.stringify(d));
      assert.equal(c.show('lvmlocks').ActiveState, 'active');
      const mainPid = d.MainPID!;
      assert.equal(c.ok(`cat /proc/${mainPid}/comm`), 'lvmlockd');
      assert.equal(c.ok(`readlink /proc/${mainPid}/exe`), '/usr/lib/lvmlockd-ts/node');
      assert.equal(c.ok(`tr '\\0' ' ' < /proc/${mainPid}/cmdline`).trim(), 'lvmlockd --foreground -T');
      assert.match(c.ok('systemctl status lvmlockd --no-pager || true'), /Status: "no lockspaces"/);
      // An error line of ours (an unknown VG) goes through /dev/log into the journal of the unit.
      c.sh('lvmlockctl --holders novg');
      await sleep(500);
      assert.match(c.ok('journalctl -u lvmlockd --no-pager -o cat'), /holders report failed: VG novg has no lockspace started here/);

      // A shared VG: STATUS= names its lockspace; lvmlocks.service brings it
      // back after the daemon is restarted.
      c.ok(`lvm vgcreate --shared --lock-type dlm vgsd ${loop} >/dev/null 2>&1`);
      const statusWith = async (want: RegExp) => {
        let text = '';
        for (let i = 0; i < 30 && !want.test(text); i++) { await sleep(200); text = c.show('lvmlockd').StatusText ?? ''; }
        assert.match(text, want);
      };
      await statusWith(/^2 lockspaces: lvm_global lvm_vgsd$/);
      c.ok('systemctl stop lvmlocks');
      await statusWith(/^no lockspaces$/);
      c.ok('systemctl restart lvmlockd');
      d = c.show('lvmlockd');
      assert.equal(d.ActiveState, 'active');
      assert.notEqual(d.MainPID, mainPid);
      c.ok('systemctl start lvmlocks');
      await statusWith(/^\d lockspaces?: .*lvm_vgsd/);
      assert.match(c.ok('lvmlockctl --info'), /^LS dlm lvm_vgsd$/m);
      c.ok('lvm vgchange --lock-stop vgsd');

      c.ok('systemctl stop lvmlocks lvmlockd');
      c.ok('update-alternatives --set lvmlockd /sbin/lvmlockd.lvm2-lockd');
      const unitRuns = (exe: string) => {
        const u = c.show('lvmlockd');
        assert.equal(u.ActiveState, 'active');
        assert.equal(c.ok(`readlink /proc/${u.MainPID}/exe`), exe);
      };
      c.ok('systemctl start lvmlockd');
      unitRuns('/usr/sbin/lvmlockd.lvm2-lockd');

      c.ok('systemctl stop lvmlockd');
      c.ok('update-alternatives --set lvmlockd /usr/lib/lvmlockd-ts/bin/lvmlockd');
      c.ok('dpkg --purge lvmlockd-ts >/dev/null 2>&1');
      c.ok('systemctl start lvmlockd lvmlocks');
      unitRuns('/usr/sbin/lvmlockd');
      assert.match(c.ok('lvmlockctl --info; echo rc=$?'), /rc=0/);
    } finally {
      await box?.stop();
      if (loop) spawnSync('losetup', ['-d', loop]);
      removeDir(dir);
    }
  });
  // Two hosts, each a systemd container with the package and Debian's units,
  // sharing a sanlock VG (no sanlock daemon, no -T): the lvmlock LV is an
  // offset loop device where lvm puts it, as in the namespace harness.
  test('a sanlock VG on two systemd hosts with unit-started daemons: refusal names the holder, lvmlocks brings the lockspace back', {
    timeout: 600_000, skip: systemdContainerWhyNot() ?? false,
  }, async () => {
    const dir = makeTempDir('lvmlockd-sd2-');
    const boxes: SystemdContainer[] = [];
    const loops: string[] = [];
    try {
      const img = path.join(dir, 'pv.img');
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 512 * 1024 * 1024);
      for (const extra of [[], ['--offset', String(1024 * 1024), '--sizelimit', String(256 * 1024 * 1024)]]) {
        const lo = spawnSync('losetup', ['-f', '--show', ...extra, img], { encoding: 'utf8' });
        assert.equal(lo.status, 0, lo.stderr);
        loops.push(lo.stdout.trim());
      }
      const [pv, lockLv] = loops as [string, string];
      for (const i of [1, 2]) {
        boxes.push(await SystemdContainer.boot({
          dir: path.join(dir, `host${i}`), hostname: `sdhost${i}`, devices: [path.basename(pv)],
          blockNodes: { '/dev/mapper/vgsan-lvmlock': lockLv },
          files: { '/etc/lvm/lvm.conf': lvmConf({ devices: [pv] }), '/etc/lvm/lvmlocal.conf': lvmLocalConf({ hostId: i }) },
          copies: { '/pkg.deb': deb },
        }));
      }
      const [h1, h2] = boxes as [SystemdContainer, SystemdContainer];
      for (const h of boxes) {
        h.ok('dpkg -i /pkg.deb >/dev/null 2>&1');
        h.ok('update-alternatives --set lvmlockd /usr/lib/lvmlockd-ts/bin/lvmlockd');
        h.ok('systemctl enable --now lvmlockd lvmlocks');
      }
      h1.ok(`lvm vgcreate --shared --lock-type sanlock vgsan ${pv} 2>&1`);
      h1.ok('lvm lvcreate -an -n lv1 -L 8M vgsan 2>&1');
      h1.ok('lvm lvchange -aey vgsan/lv1 2>&1');
      const lockspaceUp = async (h: SystemdContainer) => {
        for (let i = 0; i < 150; i++) {
          if (/lvm_vgsan/.test(h.show('lvmlockd').StatusText ?? '')) return;
          await sleep(400);
        }
        assert.fail(`lockspace lvm_vgsan not started: ${h.show('lvmlockd').StatusText}`);
      };
      h2.ok('systemctl restart lvmlocks');  // vgchange --lock-start --lock-opt auto, now that the VG exists
      await lockspaceUp(h2);

      const refused = h2.sh('lvm lvchange -aey vgsan/lv1');
      assert.equal(refused.status, 5, refused.stderr); // lvm's ECMD_FAILED
      assert.match(refused.stderr, /LV locked by other host: vgsan\/lv1/);
      await sleep(500);
      assert.match(h2.ok('journalctl -u lvmlockd --no-pager -o cat'), /LV vgsan\/lv1 ex for lvchange\[\d+\] refused: held by host_id 1 \(\S*sdhost1\) generation \d+/);
      assert.match(h2.ok('lvmlockctl --holders vgsan'), /^\S+\s+lv\s+ex\s+1\s+\S*sdhost1\s+\d+\s+yes\s+LIVE$/m);

      // host1 restarts its daemon; lvmlocks.service starts the lockspace again.
      h1.ok('lvm lvchange -an vgsan/lv1 2>&1');
      h1.ok('systemctl stop lvmlocks');
      h1.ok('systemctl restart lvmlockd');
      assert.equal(h1.show('lvmlockd').StatusText, 'no lockspaces');
      h1.ok('systemctl start lvmlocks');
      await lockspaceUp(h1);
      h2.ok('lvm lvchange -aey vgsan/lv1 2>&1');
      const nowRefused = h1.sh('lvm lvchange -aey vgsan/lv1');
      assert.match(nowRefused.stderr, /LV locked by other host: vgsan\/lv1/);
      h2.ok('lvm lvchange -an vgsan/lv1 2>&1');
      for (const h of boxes) h.ok('systemctl stop lvmlocks');
    } finally {
      for (const b of boxes) await b.stop();
      for (const l of loops.reverse()) spawnSync('losetup', ['-d', l]);
      removeDir(dir);
    }
  });
});
