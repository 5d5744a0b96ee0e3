// IDM VGs with real LVM2 commands: three namespace hosts, each running our
// lvmlockd and our ILM daemon (bin/ilmd); three loop devices as the PVs, each
// backed for locking by an emulated IDM drive process (the ILMs' drive map
// sends the loop device's IDM SCSI commands to that drive's socket).
// global/activation = 0. The ILMs' renewal-failure period is shortened to
// 4 s (ILM_TS_QUIESCENT_MS; 50 s in propeller) so the kill path fires fast,
// and lvmlockd's lock timeout (the drives' membership countdown) to 10 s
// (LVMLOCKD_IDM_TIMEOUT_MS; 60 s in C), so a crashed host's locks expire fast.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster, C_LVMLOCKCTL, tsLvmlockctlPath, type Host } from '../harness/cluster';
import { sleep } from '../harness/exec';
import { IdmRig } from '../helpers/idm-rig';
import type { FirmwareState } from '../../src/idm/firmware';

const STORAGE_ERRORS = /LV vgi\/lv1 lock failed: storage errors for sanlock leases/;
const ILM_ENV = { ILM_TS_QUIESCENT_MS: '4000' };
// Longer than the ILM's 5 s of lock retries, so a lock asked for right after the crash is refused.
const LOCK_TIMEOUT_MS = 10000;

function driveState(rig: IdmRig, drive: number): FirmwareState {
  return JSON.parse(fs.readFileSync(rig.drives[drive]!.state, 'utf8')) as FirmwareState;
}

/** The mutex a drive's state file holds for a lock id (64 ASCII bytes, hex). */
function mutex(rig: IdmRig, drive: number, lockIdHex: string): FirmwareState['mutexes'][number] | undefined {
  return driveState(rig, drive).mutexes.find((m) => m.lockId === lockIdHex);
}

/** The LVB a drive keeps for a lock id: on the mutex, or kept after the release destroyed it. */
function lvbMicros(rig: IdmRig, drive: number, lockIdHex: string): bigint {
  const st = driveState(rig, drive);
  const hex = st.mutexes.find((m) => m.lockId === lockIdHex)?.lvb ?? st.keptLvbs[lockIdHex];
  return hex ? Buffer.from(hex, 'hex').readBigUInt64LE(0) : 0n;
}

function lockIdHex(vgUuid: string, lvUuid = ''): string {
  const id = Buffer.alloc(64);
  id.write(vgUuid.replace(/-/g, ''), 0, 'ascii');
  if (lvUuid) id.write(lvUuid.replace(/-/g, ''), 32, 'ascii');
  return id.toString('hex');
}


describe('IDM VGs with our lvmlockd and ILM (3 hosts, 3 emulated drives)', { timeout: 300_000 }, () => {
  let c: Cluster;
  let rig: IdmRig;
  let h1: Host, h2: Host, h3: Host;
  let driveMap: string;
  let vgUuid = '';
  let lvUuid = '';

  const daemonEnv = (): Record<string, string> => ({
    LVMLOCKD_IDM_GL_DRIVES: c.disks.map((d) => d.path).join(','),
    LVMLOCKD_IDM_TIMEOUT_MS: String(LOCK_TIMEOUT_MS),
  });

  before(async () => {
    c = await Cluster.create({ hosts: 3, disks: [{ sizeMiB: 64 }, { sizeMiB: 64 }, { sizeMiB: 64 }], name: 'idm' });
    [h1, h2, h3] = [c.host(1), c.host(2), c.host(3)];
    rig = new IdmRig();
    const lines: string[] = [];
    for (const [i, d] of c.disks.entries()) lines.push(`${d.path} ${await rig.startDrive(i)}`);
    driveMap = path.join(rig.dir, 'drives.map');
    fs.writeFileSync(driveMap, lines.join('\n') + '\n');
    for (const h of c.hosts) {
      await h.startIlm({ env: { ILM_DRIVE_MAP: driveMap, ...ILM_ENV } });
      await h.startDaemon({ kind: 'ts', env: daemonEnv() });
    }
  });

  after(async () => {
    if (c) await c.destroy();
    if (rig) await rig.cleanup();
  });

  test('vgcreate on 3 drives, lock-start on 3 hosts, ex/sh exclusion, the LVB timestamp', async () => {
    const vg = await h1.lvm(['vgcreate', '--shared', '--lock-type', 'idm', 'vgi', ...c.disks.map((d) => d.path)]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.match(vg.stdout, /VG vgi starting idm lockspace/);
    for (const h of [h2, h3]) {
      const st = await h.lvm(['vgchange', '--lock-start', 'vgi']);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, /VG vgi starting idm lockspace/);
    }
    for (const h of c.hosts) {
      // lvmlockctl parses the dump as C's does (empty vg_args shift the fields, as with C's daemon).
      assert.match((await h.lvmlockctl(['--info'])).stdout, /^LS \S* ?lvm_vgi$/m, h.name);
    }
    vgUuid = (await h1.lvm(['vgs', '--noheadings', '-o', 'vg_uuid', 'vgi'])).stdout.trim();
    // Striped over the three PVs: an LV lock goes to the drives under the LV only.
    const lc = await h1.lvm(['lvcreate', '-an', '-n', 'lv1', '-i', '3', '-I', '64k', '-L', '12M', 'vgi']);
    assert.equal(lc.code, 0, lc.stderr);
    lvUuid = (await h2.lvm(['lvs', '--noheadings', '-o', 'lv_uuid', 'vgi/lv1'])).stdout.trim();
    assert.match(lvUuid, /^\w{6}(-\w{4}){5}-\w{6}$/);

    // ex on host1: the mutex is held on all three drives; ex and sh refused elsewhere
    assert.equal((await h1.lvm(['lvchange', '-aey', 'vgi/lv1'])).code, 0);
    const cInfo = await h1.lvmlockctl(['--info'], { binary: C_LVMLOCKCTL });
    assert.match(cInfo.stdout, new RegExp(`^LK LV ex ${lvUuid}$`, 'm'));
    assert.equal((await h1.lvmlockctl(['--info'], { binary: tsLvmlockctlPath() })).stdout, cInfo.stdout, 'our lvmlockctl prints what C\'s prints');
    for (let d = 0; d < 3; d++) {
      const m = mutex(rig, d, lockIdHex(vgUuid, lvUuid));
      assert.equal(m?.entries.filter((e) => e.locked).length, 1, `drive ${d}`);
      assert.equal(m?.entries[0]?.mutexClass, 0, 'class EXCLUSIVE');
    }
    for (const [h, flag] of [[h2, '-aey'], [h3, '-asy']] as const) {
      const r = await h.lvm(['lvchange', flag, 'vgi/lv1']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, STORAGE_ERRORS);
    }
    assert.equal((await h1.lvm(['lvchange', '-an', 'vgi/lv1'])).code, 0);

    // sh on two hosts; ex refused while they share
    assert.equal((await h2.lvm(['lvchange', '-asy', 'vgi/lv1'])).code, 0);
    assert.equal((await h3.lvm(['lvchange', '-asy', 'vgi/lv1'])).code, 0);
    for (const h of [h2, h3]) assert.match((await h.lvmlockctl(['--info'])).stdout, new RegExp(`^LK LV sh ${lvUuid}$`, 'm'));
    assert.equal(mutex(rig, 0, lockIdHex(vgUuid, lvUuid))?.entries.filter((e) => e.locked).length, 2);
    const ex = await h1.lvm(['lvchange', '-aey', 'vgi/lv1']);
    assert.equal(ex.code, 5);
    assert.match(ex.stderr, STORAGE_ERRORS);
    assert.equal((await h2.lvm(['lvchange', '-an', 'vgi/lv1'])).code, 0);
    assert.equal((await h3.lvm(['lvchange', '-an', 'vgi/lv1'])).code, 0);

    // A metadata change releases the VG lock from ex with a new version: a fresh
    // microsecond timestamp goes into the VG lock's LVB on the drives; the
    // other hosts see the change.
    const before = lvbMicros(rig, 0, lockIdHex(vgUuid));
    const t0 = BigInt(Date.now()) * 1000n;
    assert.equal((await h1.lvm(['lvcreate', '-an', '-n', 'lv2', '-L', '8M', 'vgi'])).code, 0);
    const t1 = BigInt(Date.now()) * 1000n;
    const after1 = lvbMicros(rig, 0, lockIdHex(vgUuid));
    assert.ok(after1 > before && after1 >= t0 - 1_000_000n && after1 <= t1, `LVB ${after1} in [${t0}, ${t1}]`);
    for (let d = 1; d < 3; d++) assert.equal(lvbMicros(rig, d, lockIdHex(vgUuid)), after1, `drive ${d}`);
    assert.match((await h2.lvm(['lvs', '--noheadings', '-o', 'lv_name', 'vgi'])).stdout, /lv2/);
    assert.equal((await h3.lvm(['lvremove', '-y', 'vgi/lv2'])).code, 0);
    const after2 = lvbMicros(rig, 0, lockIdHex(vgUuid));
    assert.ok(after2 > after1);
    assert.doesNotMatch((await h1.lvm(['lvs', '--noheadings', '-o', 'lv_name', 'vgi'])).stdout, /lv2/);
  });

  test('a minority of drives lost: locks still work; a majority lost: lock errors, then the kill path', async () => {
    await rig.stopDrive(2);
    try {
      assert.equal((await h1.lvm(['lvchange', '-aey', 'vgi/lv1'])).code, 0, 'two of three drives are a majority');
      assert.equal((await h1.lvm(['lvchange', '-an', 'vgi/lv1'])).code, 0);
      // host1 holds lv1 ex, then the second drive goes: renewals lose the majority
      assert.equal((await h1.lvm(['lvchange', '-aey', 'vgi/lv1'])).code, 0);
      await rig.stopDrive(1);
      const r = await h2.lvm(['lvchange', '-asy', 'vgi/lv1']);
      assert.equal(r.code, 5);
      assert.match(r.stderr, /VG vgi lock skipped: storage errors for sanlock leases/, 'the VG lock is on the lost drives too');
      // ILM renewals fail for 4 s -> "lvmlockctl --kill vgi" on host1 -> lvmlockd kills the VG
      let killed = false;
      for (let i = 0; i < 60 && !killed; i++) {
        killed = /^\S+ S lvm_vgi kill_vg$/m.test((await h1.lvmlockctl(['--dump'])).stdout);
        if (!killed) await sleep(500);
      }
      assert.ok(killed, 'lvmlockd got kill_vg from the ILM kill path');
      const create = await h1.lvm(['lvcreate', '-an', '-n', 'lvx', '-L', '4M', 'vgi']);
      assert.equal(create.code, 5, create.stderr); // lvm's ECMD_FAILED
      assert.match(create.stderr, /VG vgi lock failed: storage failed for sanlock leases/);
      // what the admin does after a kill: deactivate, then drop the lockspace
      const deact = await h1.lvm(['lvchange', '-an', 'vgi/lv1']);
      assert.equal(deact.code, 0, deact.stderr);
      assert.match(deact.stderr, /VG vgi lock skipped: storage failed for sanlock leases/);
      const drop = await h1.lvmlockctl(['--drop', 'vgi']);
      assert.equal(drop.code, 0, drop.stdout + drop.stderr);
    } finally {
      await rig.startDrive(1);
      await rig.startDrive(2);
    }
    const st = await h1.lvm(['vgchange', '--lock-start', 'vgi']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /VG vgi starting idm lockspace/);
  });

  test('the ILM killed and restarted: the lockspace is restarted and works again', async () => {
    await h3.stopIlm({ signal: 'SIGKILL' });
    const r = await h3.lvm(['lvchange', '-asy', 'vgi/lv1']);
    assert.equal(r.code, 5, r.stderr); // lvm's ECMD_FAILED
    await h3.startIlm({ env: { ILM_DRIVE_MAP: driveMap, ...ILM_ENV } });
    assert.equal((await h3.lvm(['vgchange', '--lock-stop', 'vgi'])).code, 0);
    const st = await h3.lvm(['vgchange', '--lock-start', 'vgi']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal((await h3.lvm(['lvcreate', '-an', '-n', 'lv3', '-L', '8M', 'vgi'])).code, 0);
    assert.equal((await h3.lvm(['lvchange', '-aey', 'vgi/lv3'])).code, 0);
    assert.equal((await h3.lvm(['lvchange', '-an', 'vgi/lv3'])).code, 0);
  });

  test('a host crash: its mutexes outlive it until their countdown, then another host breaks them', async () => {
    assert.equal((await h2.lvm(['lvchange', '-aey', 'vgi/lv1'])).code, 0);
    await h2.stopIlm({ signal: 'SIGKILL' });
    await h2.stopDaemon({ signal: 'SIGKILL' });
    const early = await h1.lvm(['lvchange', '-aey', 'vgi/lv1']);
    assert.equal(early.code, 5);
    assert.match(early.stderr, STORAGE_ERRORS);
    await sleep(LOCK_TIMEOUT_MS + 1000);
    const late = await h1.lvm(['lvchange', '-aey', 'vgi/lv1']);
    assert.equal(late.code, 0, late.stderr);
    assert.match((await h1.lvmlockctl(['--info'])).stdout, new RegExp(`^LK LV ex ${lvUuid}$`, 'm'));
    assert.equal((await h1.lvm(['lvchange', '-an', 'vgi/lv1'])).code, 0);
    await h2.startIlm({ env: { ILM_DRIVE_MAP: driveMap, ...ILM_ENV } });
    await h2.startDaemon({ kind: 'ts', env: daemonEnv() });
    const st = await h2.lvm(['vgchange', '--lock-start', 'vgi']);
    assert.equal(st.code, 0, st.stderr);
  });

  test('clock behind: a stored LVB timestamp ahead of this host\'s clock is moved on by one', async () => {
    // Another host whose clock runs an hour ahead wrote the VG lock's LVB.
    const ahead = BigInt(Date.now()) * 1000n + 3_600_000_000n;
    for (let d = 0; d < 3; d++) await rig.stopDrive(d, 'SIGTERM');
    for (let d = 0; d < 3; d++) {
      const st = driveState(rig, d);
      const id = lockIdHex(vgUuid);
      const lvb = Buffer.alloc(8);
      lvb.writeBigUInt64LE(ahead);
      const m = st.mutexes.find((x) => x.lockId === id);
      if (m) m.lvb = lvb.toString('hex'); else st.keptLvbs[id] = lvb.toString('hex');
      fs.writeFileSync(rig.drives[d]!.state, JSON.stringify(st));
    }
    for (let d = 0; d < 3; d++) await rig.startDrive(d);
    const lc = await h1.lvm(['lvcreate', '-an', '-n', 'lv4', '-L', '4M', 'vgi']);
    assert.equal(lc.code, 0, lc.stderr);
    assert.equal(lvbMicros(rig, 0, lockIdHex(vgUuid)), ahead + 1n);
    assert.equal((await h2.lvm(['lvremove', '-y', 'vgi/lv4'])).code, 0);
    assert.equal(lvbMicros(rig, 1, lockIdHex(vgUuid)), ahead + 2n);
  });

  test('vgremove once the other hosts stopped the VG', async () => {
    for (const h of [h2, h3]) assert.equal((await h.lvm(['vgchange', '--lock-stop', 'vgi'])).code, 0);
    const rm = await h1.lvm(['vgremove', '-y', 'vgi']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /Volume group "vgi" successfully removed/);
    assert.doesNotMatch((await h1.lvmlockctl(['--info'])).stdout, /lvm_vgi/);
  });
});
