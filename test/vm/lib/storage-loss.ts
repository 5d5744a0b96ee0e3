// Scenario 2, storage loss: vm1 reaches the PV through a device-mapper layer
// (/dev/mapper/pv0, linear over /dev/vdb); vm2 uses /dev/vdb directly. With
// an LV active exclusively on vm1, pv0's table is switched to `error` (every
// I/O fails, as when a SAN path dies) or to `delay` with a 10-minute hold
// (every I/O hangs far beyond io_timeout, as a path that stops answering). vm1's lease renewals fail; sanlock runs
// the killpath lvmlockd registered (`lvmlockctl --kill <vg>`), which runs the
// configured lvmlockctl_kill_command (a script that wipes the VG's LV tables
// and logs when) and drops the VG's locks. vm2 retries `lvchange -aey` until
// it gets the lock, which sanlock allows once vm1's delta lease has expired.
//
// Measured (seconds after the failure): vm1's kill command start/end, the
// end of the lockspace on vm1, and vm2's first successful -aey. Checked:
// vm1's LVs are offline before vm2 gets the lock.

import assert from 'node:assert/strict';
import { sleep } from '../../harness/exec';
import { VmCluster } from './vm';
import { DaemonKind, lvm, setupLvm, startHost } from './stack';
import { Steps, lockStart, firstLine } from './scenarios';

export const KILL_SCRIPT = `#!/bin/sh
# lvmlockctl_kill_command of the VM tier: force the VG's LVs offline and log when.
vg="$1"
now() { cut -d' ' -f1 /proc/uptime; }
echo "$(now) start $*" >> /out/kill.log
for d in $(dmsetup ls | awk '{print $1}' | grep "^$vg-" | grep -v -- "-lvmlock$"); do
  dmsetup wipe_table "$d" >> /out/kill.log 2>&1 && echo "$(now) wiped $d" >> /out/kill.log
done
echo "$(now) done" >> /out/kill.log
exit 0
`;

/** dm-delay's hold time for the `hang` fault: far longer than any scenario. */
const HANG_MS = 600_000;

export interface StorageLossResult {
  ioTimeout: number;
  fault: 'error' | 'hang';
  killStartS: number | null;
  killDoneS: number | null;
  wipedS: number | null;
  lockspaceGoneS: number | null;
  /** host clock: first poll that saw vm1's LV no longer a linear mapping */
  wipedHostS: number | null;
  otherAcquiredS: number | null;
  killLog: string;
  vm1Info: string;
  vm1LvsAfter: string;
  vm1SanlockLog: string;
  vm1LvmlockdLog: string;
  vm2Attempts: number;
}

export interface StorageLossOptions {
  /** lvmlockd of vm1 (the one that loses its PV) and of vm2; a C host also runs the sanlock daemon. */
  daemons: [DaemonKind, DaemonKind];
  /** sanlock io_timeout given to lvmlockd with -o (seconds). */
  ioTimeout: number;
  /** Give up waiting for vm2 after this long (ms). */
  maxWaitMs?: number;
  /** How pv0 fails: `error` (every I/O fails at once, as a dead SAN path) or
   *  `hang` (dm-delay holds every I/O for 10 minutes, far beyond io_timeout). */
  fault?: 'error' | 'hang';
  log: (s: string) => void;
}

export async function storageLoss(c: VmCluster, steps: Steps, o: StorageLossOptions): Promise<StorageLossResult> {
  const [v1, v2] = [c.vm(1), c.vm(2)];
  const vg = 'vgf';
  await v1.shOk('dmsetup create pv0 --table "0 $(blockdev --getsz /dev/vdb) linear /dev/vdb 0" && udevadm settle');
  await v1.writeFile('/usr/local/sbin/vm-kill-vg', KILL_SCRIPT);
  await v1.shOk('chmod 0755 /usr/local/sbin/vm-kill-vg');
  await setupLvm(v1, { devices: ['/dev/mapper/pv0'], killCommand: '/usr/local/sbin/vm-kill-vg' });
  await setupLvm(v2, { devices: ['/dev/vdb'] });
  await Promise.all([v1, v2].map(async (vm, i) => {
    const kind = o.daemons[i]!;
    await startHost(vm, kind, ['-o', String(o.ioTimeout)]);
  }));
  await steps.run(v1, ['vgcreate', '--shared', '--lock-type', 'sanlock', vg, '/dev/mapper/pv0']);
  await steps.run(v1, ['lvcreate', '-n', 'lv1', '-L', '64M', vg]);
  await lockStart(steps, v2, vg);
  await steps.run(v2, ['lvchange', '-aey', `${vg}/lv1`], 5);

  // the failure
  const fault = o.fault ?? 'error';
  const table = fault === 'error' ? 'error' : `delay /dev/vdb 0 ${HANG_MS}`;
  const fail = await v1.shOk(
    `dmsetup suspend --noflush pv0 && dmsetup load pv0 --table "0 $(blockdev --getsz /dev/vdb) ${table}" && dmsetup resume pv0 && cut -d" " -f1 /proc/uptime`);
  const t0 = Date.now();
  const up0 = Number(fail.stdout.trim());
  steps.note(v1, fault === 'error' ? 'pv0 switched to the error target (all I/O fails)' : `pv0 switched to dm-delay ${HANG_MS} ms (all I/O hangs)`);
  o.log(`storage-loss(${o.daemons.join('/')}): pv0 ${fault === 'error' ? 'failed' : 'hung'} on vm1 (io_timeout ${o.ioTimeout})`);

  const maxWait = o.maxWaitMs ?? 240_000;
  let lockspaceGoneS: number | null = null;
  let wipedHostS: number | null = null;
  let otherAcquiredS: number | null = null;
  let attempts = 0;
  const watchVm1 = (async () => {
    while (Date.now() - t0 < maxWait && (lockspaceGoneS === null || wipedHostS === null)) {
      // host-clock times (guest clocks are not trusted for the comparison):
      // the LV's table is gone or `error` (kill command ran), and the VG's
      // lockspace is gone from lvmlockd's list (dropped; daemon-neutral)
      const r = await v1.sh(
        `t=$(dmsetup table ${vg}-lv1 2>/dev/null); case "$t" in *linear*) echo lv=up;; *) echo lv=off;; esac; ` +
        `i=$(lvmlockctl --info 2>/dev/null) && { echo "$i" | grep -q "^VG ${vg} " && echo ls=up || echo ls=gone; }`,
        { timeoutMs: 20_000 });
      const at = (Date.now() - t0) / 1000;
      if (wipedHostS === null && /lv=off/.test(r.stdout)) {
        wipedHostS = at;
        steps.note(v1, `${vg}/lv1 offline on vm1 (table not linear) at +${at.toFixed(1)} s`);
      }
      if (lockspaceGoneS === null && /ls=gone/.test(r.stdout)) {
        lockspaceGoneS = at;
        steps.note(v1, `lockspace of ${vg} gone from vm1's lvmlockd at +${at.toFixed(1)} s`);
      }
      await sleep(1000);
    }
  })();
  const tryVm2 = (async () => {
    while (Date.now() - t0 < maxWait) {
      attempts++;
      const r = await lvm(v2, ['lvchange', '-aey', `${vg}/lv1`], 60_000);
      if (r.code === 0) {
        otherAcquiredS = (Date.now() - t0) / 1000;
        steps.note(v2, `lvchange -aey succeeded at +${otherAcquiredS.toFixed(1)} s (try ${attempts})`);
        return;
      }
      if (attempts === 1 || attempts % 10 === 0) o.log(`storage-loss: vm2 -aey try ${attempts} → ${r.code} ${firstLine(r.stderr, /^\s*$/)}`);
      await sleep(2000);
    }
  })();
  await Promise.all([watchVm1, tryVm2]);

  const kl = await v1.sh('cat /out/kill.log 2>/dev/null');
  const parseAt = (re: RegExp): number | null => {
    const m = re.exec(kl.stdout);
    return m ? Math.round((Number(m[1]) - up0) * 10) / 10 : null;
  };
  const res: StorageLossResult = {
    ioTimeout: o.ioTimeout,
    fault,
    killStartS: parseAt(/^(\S+) start/m),
    wipedS: parseAt(/^(\S+) wiped/m),
    killDoneS: parseAt(/^(\S+) done/m),
    lockspaceGoneS,
    wipedHostS,
    otherAcquiredS,
    killLog: kl.stdout,
    vm1Info: (await v1.sh('timeout 20 lvmlockctl --info 2>&1', { timeoutMs: 30_000 })).stdout,
    // lvm would scan the hung pv0 and hang with it: only dmsetup then
    vm1LvsAfter: ((r) => `exit ${r.code}\n${r.stdout}${r.stderr}`)(await v1.sh(fault === 'hang' ? 'dmsetup table' : `lvm lvs ${vg} 2>&1; dmsetup table`, { timeoutMs: 30_000 })),
    vm1SanlockLog: (await v1.sh('grep -v "^$" /out/sanlock.log | tail -40')).stdout,
    vm1LvmlockdLog: (await v1.sh('grep -i -E "kill|drop|renew|error|fail|rem_lockspace|free" /out/lvmlockd.log | tail -60', { timeoutMs: 30_000 })).stdout,
    vm2Attempts: attempts,
  };
  o.log(`storage-loss(${o.daemons.join('/')}) result: ${JSON.stringify({ ...res, killLog: undefined, vm1Info: undefined, vm1LvsAfter: undefined, vm1SanlockLog: undefined, vm1LvmlockdLog: undefined })}`);
  return res;
}

/**
 * The safety property: vm1 stopped using the VG before vm2 got its lock.
 * Both times are host-clock times of polls (vm1 once a second, vm2 every ~2 s
 * plus the lvm command), so "offline" is seen at most ~1 s late.
 */
export function assertSafeTakeover(r: StorageLossResult): void {
  assert.notEqual(r.otherAcquiredS, null, 'vm2 never got the lock');
  assert.notEqual(r.killStartS, null, `vm1's kill command never ran:\n${r.killLog}\n${r.vm1LvmlockdLog}\n${r.vm1SanlockLog}`);
  assert.notEqual(r.wipedS, null, `vm1's kill command did not wipe the LV:\n${r.killLog}`);
  assert.notEqual(r.wipedHostS, null, 'vm1\'s LV was never seen offline');
  assert.ok(r.wipedHostS! < r.otherAcquiredS!, `vm2 got the lock (+${r.otherAcquiredS} s) before vm1's LV was offline (+${r.wipedHostS} s)`);
}
