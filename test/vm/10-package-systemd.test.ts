// VM tier, issue #16: the Debian package under systemd on two VMs, as an
// administrator would use it. The guests boot the systemd image (systemd as
// PID 1, Debian's lvm2-lockd and sanlock, no network beyond the test hub).
//  - the README's "Installing" commands (lib/readme-install.ts): the host
//    builds the .deb once with `npm run package`; each guest installs it with
//    `apt install ./dist/…deb` from the repo share (C stays selected), then
//    switches to ours with the documented commands;
//  - Debian's unmodified lvmlockd.service (Type=notify) and lvmlocks.service
//    run our daemon: /proc/PID/exe and comm, `systemctl status`, STATUS= from
//    sd_notify, `lvmlockctl --metrics`, our lines in the unit's journal;
//  - a shared sanlock VG across both VMs with the unit-started daemons (no
//    sanlock daemon): lock-start on both, -aey exclusion with lvm's message;
//  - `systemctl kill` with an LV active (the daemon stays, as C's does),
//    `stop`/`start` of both units, and a guest reboot after which
//    lvmlocks.service has the lockspace back;
//  - the documented switch back to C: C's daemon runs under the same unit
//    (with sanlock.service) and serves the VG; `apt purge` of our package
//    puts lvm2-lockd's files back and C still serves the VG.
// Steps run in order on one cluster; a failed step fails the ones after it.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { it, before, after } from 'node:test';
import { runCommand, sleep } from '../harness/exec';
import { repoRoot } from '../harness/cluster';
import { Vm, VmCluster } from './lib/vm';
import { describeVm, tsSanlockSkipReason, vmLog } from './lib/gate';
import { mapperExists, setupLvm, waitFor } from './lib/stack';
import { LOCKED_BY_OTHER, Steps, lockStart } from './lib/scenarios';
import { InstallCommands, parseInstallCommands } from './lib/readme-install';

const skip = tsSanlockSkipReason();
const VG = 'vgpk';
const OUR_NODE = '/usr/lib/lvmlockd-ts/node';

type Unit = Record<string, string>;

/** `systemctl show` properties of a unit. */
async function show(vm: Vm, unit: string): Promise<Unit> {
  const r = await vm.execOk(['systemctl', 'show', unit, '--no-pager',
    '-p', 'ActiveState', '-p', 'SubState', '-p', 'MainPID', '-p', 'StatusText', '-p', 'Type',
    '-p', 'FragmentPath', '-p', 'DropInPaths', '-p', 'Result']);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Wait until lvmlockd.service's STATUS= (sd_notify) matches. */
async function statusText(vm: Vm, want: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await show(vm, 'lvmlockd')).StatusText ?? '';
    if (want.test(last)) return last;
    await sleep(1000);
  }
  assert.fail(`${vm.name}: lvmlockd.service STATUS= ${JSON.stringify(last)} does not match ${want}`);
}

/** The unit's main process: pid, executable, comm. */
async function mainProcess(vm: Vm): Promise<{ pid: number; exe: string; comm: string }> {
  const u = await show(vm, 'lvmlockd');
  const pid = Number(u.MainPID);
  assert.ok(pid > 0, `${vm.name}: lvmlockd.service has no main process: ${JSON.stringify(u)}`);
  const r = await vm.execOk(['sh', '-c', `readlink /proc/${pid}/exe; cat /proc/${pid}/comm`]);
  const [exe, comm] = r.stdout.trim().split('\n') as [string, string];
  return { pid, exe, comm };
}

/**
 * Run one of the README's commands in the guest, from the checkout (/repo),
 * with `answer` on its standard input (apt asks before it removes a package).
 */
async function readmeCmd(vm: Vm, cmd: string, answer = ''): Promise<void> {
  await vm.shOk(`cd /repo && ${cmd}`, { timeoutMs: 180_000, input: answer });
}

describeVm('vm tier: the Debian package under systemd, 2 VMs (README install, Debian units, sanlock VG, reboot, back to C, purge)', {
  skip, timeout: 25 * 60_000,
}, () => {
  let c: VmCluster | null = null;
  let cmds: InstallCommands;
  let steps: Steps;
  let failed = '';
  const t0 = Date.now();
  const phase = async (name: string, t: { diagnostic: (s: string) => void }, fn: () => Promise<void>): Promise<void> => {
    if (failed) assert.fail(`not run: the earlier step "${failed}" failed`);
    const p0 = Date.now();
    try {
      await fn();
    } catch (e) {
      failed = name;
      throw e;
    } finally {
      t.diagnostic(`${name}: ${((Date.now() - p0) / 1000).toFixed(1)} s (at +${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  };

  before(async () => {
    cmds = parseInstallCommands(fs.readFileSync(path.join(repoRoot(), 'README.md'), 'utf8'));
    // The host builds the .deb once (the project is already built by the tier)
    // while the guests boot.
    const pack = (async () => {
      const p0 = Date.now();
      const r = await runCommand(['sh', '-c', cmds.build], {
        cwd: repoRoot(), env: { ...process.env, LVMLOCKD_PACKAGE_NO_BUILD: '1' }, timeoutMs: 600_000,
      });
      assert.equal(r.code, 0, `${cmds.build}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      assert.equal(r.stdout.trim().split('\n').at(-1), cmds.debPath, 'npm run package built another file than the README installs');
      vmLog(`package: ${cmds.debPath} built in ${((Date.now() - p0) / 1000).toFixed(1)} s`);
    })();
    const boot = VmCluster.create({ vms: 2, disks: [{ sizeMiB: 1024 }], name: 'pkg-systemd', init: 'systemd', log: vmLog });
    const [pr, br] = await Promise.allSettled([pack, boot]);
    if (br.status === 'fulfilled') c = br.value;
    if (pr.status === 'rejected') throw pr.reason;
    if (br.status === 'rejected') throw br.reason;
    steps = new Steps(c!, 'pkg-systemd', vmLog);
  });

  after(async () => {
    steps?.save();
    // the journal is volatile (/run/log/journal): keep this boot's in /out
    if (c) await Promise.all(c.vms.map((vm) => vm.sh('journalctl -b --no-pager -o short-monotonic > /out/journal-boot.txt 2>&1; sync', { timeoutMs: 30_000 }).catch(() => undefined)));
    if (c) await c.destroy();
    vmLog(`10-package-systemd: ${((Date.now() - t0) / 1000).toFixed(0)} s in all`);
  });

  it('systemd is PID 1; the README\'s apt install puts the package next to lvm2-lockd and keeps C selected', async (t) => {
    await phase('install', t, async () => {
      await Promise.all(c!.vms.map(async (vm) => {
        assert.equal((await vm.execOk(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
        await setupLvm(vm);
        await readmeCmd(vm, cmds.install);
        assert.equal((await vm.execOk(['dpkg-query', '-W', '-f', '${Status}', 'lvmlockd-ts'])).stdout, 'install ok installed');
        assert.match((await vm.execOk(['readlink', '-f', '/sbin/lvmlockd'])).stdout.trim(), /\/sbin\/lvmlockd\.lvm2-lockd$/);
        assert.doesNotMatch((await vm.exec(['/sbin/lvmlockd', '--version'])).stdout, /lvmlockd-ts/);
      }));
    });
  });

  it('the README switch to ours: Debian\'s unmodified units run our daemon (READY=1, STATUS=, comm, exe, metrics, journal)', async (t) => {
    await phase('switch to ours', t, async () => {
      await Promise.all(c!.vms.map(async (vm) => {
        await readmeCmd(vm, cmds.stopLockspaces);
        await readmeCmd(vm, cmds.switchToOurs);
        await readmeCmd(vm, cmds.restart);
        await vm.execOk(['systemctl', 'enable', '--now', 'lvmlockd', 'lvmlocks']);
        // the unit files are lvm2-lockd's, unchanged, without drop-ins
        const u = await show(vm, 'lvmlockd');
        assert.equal(u.FragmentPath, '/lib/systemd/system/lvmlockd.service');
        assert.equal(u.DropInPaths, '');
        assert.equal((await show(vm, 'lvmlocks')).DropInPaths, '');
        const verify = await vm.exec(['dpkg', '--verify', 'lvm2-lockd']);
        assert.doesNotMatch(verify.stdout, /lvmlock[ds]\.service/, `lvm2-lockd's unit files were modified:\n${verify.stdout}`);
        // Type=notify and active: systemd got our READY=1; STATUS= is ours
        assert.deepEqual([u.Type, u.ActiveState, u.SubState], ['notify', 'active', 'running'], JSON.stringify(u));
        assert.equal(u.StatusText, 'no lockspaces');
        const p = await mainProcess(vm);
        assert.equal(p.exe, OUR_NODE);
        assert.equal(p.comm, 'lvmlockd');
        assert.equal((await vm.execOk(['pgrep', '-x', 'lvmlockd'])).stdout.trim(), String(p.pid));
        const st = await vm.exec(['systemctl', 'status', 'lvmlockd', '--no-pager']);
        assert.match(st.stdout, /Active: active \(running\)/);
        assert.match(st.stdout, /Status: "no lockspaces"/);
        assert.match(st.stdout, new RegExp(`Main PID: ${p.pid} \\(lvmlockd\\)`));
        assert.match((await vm.execOk(['lvmlockctl', '--metrics'])).stdout, /^lvmlockd_clients_connected \d+$/m);
        assert.match((await vm.execOk(['/sbin/lvmlockd', '--version'])).stdout, /\[lvmlockd-ts /);
        assert.equal((await show(vm, 'lvmlocks')).ActiveState, 'active');
        // our log lines reach the unit's journal (syslog through /dev/log)
        await vm.exec(['lvmlockctl', '--holders', 'novg']);
        await waitFor(vm, "journalctl -u lvmlockd --no-pager -o cat -b | grep -q 'holders report failed: VG novg has no lockspace'", 20_000, 'our log line in the journal');
      }));
    });
  });

  it('a shared sanlock VG: vgcreate on vm1, lock-start on vm2, -aey refused across VMs with lvm\'s message and the holder in our journal', async (t) => {
    await phase('sanlock VG', t, async () => {
      const [v1, v2] = [c!.vm(1), c!.vm(2)];
      await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'sanlock', VG, '/dev/vdb']);
      await lockStart(steps, v2, VG);
      for (const vm of [v1, v2]) {
        await statusText(vm, new RegExp(`lvm_${VG}`));
        assert.match((await vm.execOk(['lvmlockctl', '--info'])).stdout, new RegExp(`^LS sanlock lvm_${VG}$`, 'm'));
      }
      assert.equal((await v1.exec(['pidof', 'sanlock'])).code, 1, 'no sanlock daemon runs for ours');
      await steps.run(v1, ['lvcreate', '-n', 'lv1', '-L', '64M', VG]);
      assert.ok(await mapperExists(v1, `${VG}-lv1`));
      const r = await steps.run(v2, ['lvchange', '-aey', `${VG}/lv1`], 5);
      assert.match(r.stderr, LOCKED_BY_OTHER);
      assert.ok(!(await mapperExists(v2, `${VG}-lv1`)));
      await waitFor(v2, `journalctl -u lvmlockd --no-pager -o cat -b | grep -Eq 'LV ${VG}/lv1 ex .*refused: held by host_id 1 \\(\\S*vm1\\)'`, 20_000, 'the holder named in vm2\'s journal');
    });
  });

  it('systemctl kill with an LV active leaves the daemon serving; stop and start of both units bring the lockspace back', async (t) => {
    await phase('kill/stop/start', t, async () => {
      const [v1, v2] = [c!.vm(1), c!.vm(2)];
      const p0 = await mainProcess(v1);
      // SIGTERM while a lockspace holds an LV lock: ignored (as C's "ignore
      // shutdown for N lockspaces"), the LV stays active and locked.
      await v1.execOk(['systemctl', 'kill', 'lvmlockd']);
      await sleep(3000);
      const u = await show(v1, 'lvmlockd');
      assert.deepEqual([u.ActiveState, u.MainPID], ['active', String(p0.pid)], JSON.stringify(u));
      assert.match((await v1.execOk(['lvmlockctl', '--info'])).stdout, new RegExp(`^LS sanlock lvm_${VG}$`, 'm'));
      assert.ok(await mapperExists(v1, `${VG}-lv1`));
      assert.match((await steps.run(v2, ['lvchange', '-aey', `${VG}/lv1`], 5)).stderr, LOCKED_BY_OTHER);

      // An administrator's stop and start: LV off, lockspaces stopped, daemon restarted.
      await steps.run(v1, ['lvchange', '-an', `${VG}/lv1`]);
      await v1.execOk(['systemctl', 'stop', 'lvmlocks']);
      assert.equal((await show(v1, 'lvmlockd')).StatusText, 'no lockspaces');
      const s0 = Date.now();
      await v1.execOk(['systemctl', 'stop', 'lvmlockd']);
      const stopMs = Date.now() - s0;
      assert.ok(stopMs < 20_000, `systemctl stop lvmlockd took ${stopMs} ms (SIGTERM not honoured without lockspaces?)`);
      assert.equal((await show(v1, 'lvmlockd')).ActiveState, 'inactive');
      assert.equal((await v1.exec(['kill', '-0', String(p0.pid)])).code, 1, 'the stopped daemon is gone');
      await v1.execOk(['systemctl', 'start', 'lvmlockd']);
      const p1 = await mainProcess(v1);
      assert.notEqual(p1.pid, p0.pid);
      assert.deepEqual([p1.exe, p1.comm], [OUR_NODE, 'lvmlockd']);
      await v1.execOk(['systemctl', 'start', 'lvmlocks'], { timeoutMs: 180_000 });
      await statusText(v1, new RegExp(`lvm_${VG}`));
      await steps.run(v1, ['lvchange', '-aey', `${VG}/lv1`]);
      assert.match((await steps.run(v2, ['lvchange', '-aey', `${VG}/lv1`], 5)).stderr, LOCKED_BY_OTHER);
      t.diagnostic(`systemctl stop lvmlockd (no lockspaces): ${stopMs} ms`);
    });
  });

  it('vm2 reboots: the enabled units start our daemon and lvmlocks.service brings the lockspace back', async (t) => {
    await phase('reboot', t, async () => {
      const [v1, v2] = [c!.vm(1), c!.vm(2)];
      const bootId = async (): Promise<string> => (await v2.execOk(['cat', '/proc/sys/kernel/random/boot_id'])).stdout.trim();
      const before = await bootId();
      const ms = await v2.reboot();
      t.diagnostic(`vm2 reboot to a ready agent: ${(ms / 1000).toFixed(1)} s`);
      assert.notEqual(await bootId(), before, 'vm2 did not boot again');
      assert.equal((await v2.execOk(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
      await waitFor(v2, 'systemctl is-active lvmlocks >/dev/null', 240_000, 'lvmlocks.service active after the reboot');
      const p = await mainProcess(v2);
      assert.deepEqual([p.exe, p.comm], [OUR_NODE, 'lvmlockd']);
      await statusText(v2, new RegExp(`lvm_${VG}`));
      assert.match((await v2.execOk(['lvmlockctl', '--info'])).stdout, new RegExp(`^LS sanlock lvm_${VG}$`, 'm'));
      // the lockspace works: refused while vm1 holds the LV, granted after
      assert.match((await steps.run(v2, ['lvchange', '-aey', `${VG}/lv1`], 5)).stderr, LOCKED_BY_OTHER);
      await steps.run(v1, ['lvchange', '-an', `${VG}/lv1`]);
      await steps.run(v2, ['lvchange', '-aey', `${VG}/lv1`]);
      assert.ok(await mapperExists(v2, `${VG}-lv1`));
      assert.match((await steps.run(v1, ['lvchange', '-aey', `${VG}/lv1`], 5)).stderr, LOCKED_BY_OTHER);
      await steps.run(v2, ['lvchange', '-an', `${VG}/lv1`]);
    });
  });

  it('the README switch back to C: C\'s daemon runs under the same unit and serves the VG; apt purge leaves C working', async (t) => {
    await phase('back to C, purge', t, async () => {
      const [v1, v2] = [c!.vm(1), c!.vm(2)];
      await Promise.all(c!.vms.map(async (vm) => {
        await readmeCmd(vm, cmds.stopLockspaces);
        await readmeCmd(vm, cmds.switchToC);
        // C's lvmlockd needs the sanlock daemon for sanlock VGs (Debian's
        // /etc/default/sanlock runs it with -w 0: no wdmd needed)
        await vm.execOk(['systemctl', 'start', 'sanlock']);
        await readmeCmd(vm, cmds.restart);
        const p = await mainProcess(vm);
        assert.equal(p.exe, '/usr/sbin/lvmlockd.lvm2-lockd');
        assert.doesNotMatch((await vm.exec(['/sbin/lvmlockd', '--version'])).stdout, /lvmlockd-ts/);
        assert.match((await vm.execOk(['lvmlockctl', '--info'])).stdout, new RegExp(`^LS sanlock lvm_${VG}$`, 'm'));
      }));
      await steps.run(v1, ['lvchange', '-aey', `${VG}/lv1`]);
      assert.match((await steps.run(v2, ['lvchange', '-aey', `${VG}/lv1`], 5)).stderr, LOCKED_BY_OTHER);

      // purge on vm2 (C selected): lvm2-lockd's files are back, C serves the VG from them
      await readmeCmd(v2, cmds.purge, 'y\n');
      const f = await v2.execOk(['sh', '-c', [
        'test -L /sbin/lvmlockd && echo symlink || echo file',
        "dpkg-divert --list '*lvmlock*' | wc -l",
        'update-alternatives --query lvmlockd >/dev/null 2>&1 && echo alternative || echo no-alternative',
        "dpkg-query -W -f '${Status}' lvmlockd-ts 2>&1 || true",
      ].join('; ')]);
      const [kind, diversions, alt] = f.stdout.trim().split('\n') as [string, string, string];
      assert.deepEqual([kind, diversions, alt], ['file', '0', 'no-alternative'], f.stdout);
      assert.doesNotMatch(f.stdout, /install ok installed/);
      await v2.execOk(['systemctl', 'stop', 'lvmlocks']);
      await v2.execOk(['systemctl', 'restart', 'lvmlockd']);
      await v2.execOk(['systemctl', 'start', 'lvmlocks'], { timeoutMs: 180_000 });
      const p = await mainProcess(v2);
      assert.equal(p.exe, '/usr/sbin/lvmlockd');
      assert.match((await v2.execOk(['lvmlockctl', '--info'])).stdout, new RegExp(`^LS sanlock lvm_${VG}$`, 'm'));
      await steps.run(v1, ['lvchange', '-an', `${VG}/lv1`]);
      await steps.run(v2, ['lvchange', '-aey', `${VG}/lv1`]);
      assert.match((await steps.run(v1, ['lvchange', '-aey', `${VG}/lv1`], 5)).stderr, LOCKED_BY_OTHER);
      await steps.run(v2, ['lvchange', '-an', `${VG}/lv1`]);
      t.diagnostic(`steps:\n${steps.table()}`);
    });
  });
});
