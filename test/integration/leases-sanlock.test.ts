/**
 * Interoperability with the real sanlock 3.8.5 (`sanlock direct`), on sparse
 * files and on loop devices with 512- and 4096-byte sectors:
 *  - init byte equality for lockspaces and resources, every sector/align size;
 *  - we init -> sanlock dumps (same text) and acquires; sanlock inits and
 *    acquires -> we dump (same text) and see the owner;
 *  - a lease held by one side is refused to the other while the holder's
 *    delta lease is live, and granted after release or expiry.
 * Needs root (losetup) and the sanlock binary; skipped otherwise.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RealClock } from '../../src/io/clock';
import { DirectDisk } from '../../src/io/direct-disk';
import { Lockspace, initLockspace } from '../../src/leases/delta-lease';
import { directDump } from '../../src/leases/direct';
import { SANLK, LeaseError } from '../../src/leases/errors';
import { acquireResource, initResource, paxosHostFor, readResourceOwners, releaseResource, ResourceRef } from '../../src/leases/paxos-lease';
import { SeededRandom } from '../../src/leases/random';
import { MIB } from '../../src/leases/sizes';

function sh(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const haveSanlock = fs.existsSync('/usr/sbin/sanlock') || fs.existsSync('/usr/bin/sanlock');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const skip = !haveSanlock ? 'sanlock binary not installed' : !isRoot ? 'needs root for loop devices' : false;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leases-it-'));
const loops: string[] = [];
after(async () => {
  for (const l of loops.splice(0)) await sh('losetup', ['-d', l]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function img(name: string, size: number): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, '');
  fs.truncateSync(p, size);
  return p;
}

async function loop(file: string, sector: 512 | 4096): Promise<string> {
  const r = await sh('losetup', ['--sector-size', String(sector), '--show', '-f', file]);
  assert.equal(r.code, 0, r.stderr);
  const dev = r.stdout.trim();
  loops.push(dev);
  return dev;
}

async function sanlock(...args: string[]) {
  return sh('sanlock', ['direct', ...args]);
}

const clock = new RealClock();

// The expiry test waits ~70 s for host_dead_seconds; it runs beside the
// others (own image, own sanlock run dir), which still run one at a time.
describe('interop with sanlock direct', { skip, concurrency: true, timeout: 240_000 }, () => {
  describe('sanlock direct', { concurrency: false }, () => {
    const geometries: Array<[512 | 4096, string, number]> = [
      [512, '1M', MIB],
      [4096, '1M', MIB],
      [4096, '2M', 2 * MIB],
      [4096, '4M', 4 * MIB],
      [4096, '8M', 8 * MIB],
    ];

    for (const [sector, alignArg, align] of geometries) {
      test(`init byte equality on files: ${sector}/${alignArg}`, async () => {
        const size = 3 * align;
        const ours = img(`ours-${sector}-${alignArg}.img`, size);
        const theirs = img(`theirs-${sector}-${alignArg}.img`, size);
        const d = await DirectDisk.open(ours);
        try {
          await initLockspace(d, 0, 'lvm_vg1', { sectorSize: sector, alignSize: align, ioTimeout: 10 });
          await initResource(d, align, 'lvm_vg1', 'VGLK', { sectorSize: sector, alignSize: align });
          await initResource(d, 2 * align, 'lvm_vg1', '#unused', { sectorSize: sector, alignSize: align, numHosts: 8 });
        } finally {
          await d.close();
        }
        for (const args of [
          ['init', '-s', `lvm_vg1:0:${theirs}:0`],
          ['init', '-r', `lvm_vg1:VGLK:${theirs}:${align}`],
          ['init', '-r', `lvm_vg1:#unused:${theirs}:${2 * align}`, '-n', '8'],
        ]) {
          const r = await sanlock(...args, '-Z', String(sector), '-A', alignArg);
          assert.match(r.stdout, /init done 0/, r.stdout + r.stderr);
        }
        assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'images differ');
      });
    }

    for (const sector of [512, 4096] as const) {
      test(`init byte equality on a ${sector}-byte-sector loop device (device defaults)`, async () => {
        const size = 24 * MIB;
        const fa = img(`la-${sector}.img`, size);
        const fb = img(`lb-${sector}.img`, size);
        const la = await loop(fa, sector);
        const lb = await loop(fb, sector);
        const d = await DirectDisk.open(la);
        assert.equal(d.sectorSize, sector, 'detected logical sector size');
        const align = sector === 512 ? MIB : 8 * MIB;
        try {
          await initLockspace(d, 0, 'LS', { sectorSize: d.sectorSize });
          await initResource(d, align, 'LS', 'RES', { sectorSize: d.sectorSize });
        } finally {
          await d.close();
        }
        assert.match((await sanlock('init', '-s', `LS:0:${lb}:0`)).stdout, /init done 0/);
        assert.match((await sanlock('init', '-r', `LS:RES:${lb}:${align}`)).stdout, /init done 0/);
        await sh('sync', []);
        const a = fs.readFileSync(fa);
        const b = fs.readFileSync(fb);
        assert.ok(a.subarray(0, 2 * align).equals(b.subarray(0, 2 * align)), 'device contents differ');
      });
    }

    for (const kind of ['file', 'loop512', 'loop4096'] as const) {
      test(`we init -> sanlock dumps the same and acquires; it acquires -> we see the owner (${kind})`, async () => {
        const f = img(`x-${kind}.img`, 40 * MIB);
        const dev = kind === 'file' ? f : await loop(f, kind === 'loop512' ? 512 : 4096);
        const d = await DirectDisk.open(dev);
        const align = d.sectorSize === 512 ? MIB : 8 * MIB;
        try {
          await initLockspace(d, 0, 'LS', { sectorSize: d.sectorSize, ioTimeout: 1 });
          await initResource(d, align, 'LS', 'R1', { sectorSize: d.sectorSize });
          await initResource(d, 2 * align, 'LS', 'R2', { sectorSize: d.sectorSize });
          // sanlock acquires our freshly initialized resource
          const r = await sanlock('acquire', '-r', `LS:R1:${dev}:${align}`, '-i', '3', '-g', '7');
          assert.match(r.stdout, /acquire done 0/, r.stdout + r.stderr);
          const owners = await readResourceOwners({ disk: d, offset: align, lockspace: 'LS', resource: 'R1' });
          assert.equal(owners.exclusive?.hostId, 3);
          assert.equal(owners.exclusive?.generation, 7);
          // a delta lease taken by sanlock is visible to us
          const a = await sanlock('acquire_id', '-s', `LS:5:${dev}:0`, '-o', '1', '-e', 'sanlock-host5');
          assert.match(a.stdout, /acquire_id done 0/, a.stdout + a.stderr);
          const ls = new Lockspace({ disk: d, offset: 0, name: 'LS', hostId: 2, clock, random: new SeededRandom(2), hostName: 'ts-host2', ioTimeout: 1 });
          const l5 = await ls.readHostLeader(5);
          assert.equal(l5.ownerId, 5);
          assert.equal(l5.ioTimeout, 1);
          // our delta lease and paxos lease are visible to sanlock
          assert.equal(await ls.acquire(), 1);
          const mine = await acquireResource(paxosHostFor(ls), { disk: d, offset: 2 * align, lockspace: 'LS', resource: 'R2' });
          assert.equal(mine.leader.ownerId, 2);
          for (const off of [0, align, 2 * align]) {
            const theirs = await sanlock('dump', `${dev}:${off}:${align}`, '-f', '2');
            const ours = await directDump(d, off, align, { forceMode: 2 });
            assert.equal(ours.text, theirs.stdout, `dump at ${off}`);
          }
          const rl = await sanlock('read_leader', '-r', `LS:R2:${dev}:${2 * align}`);
          assert.match(rl.stdout, /read_leader done 0[\s\S]*owner_id 2\n/);
          // leasectl CLI prints the same as sanlock for the whole device
          const cli = await sh(process.execPath, [path.join(__dirname, '..', '..', '..', 'bin', 'leasectl'), 'direct', 'dump', dev, '-f', '2']);
          const sl = await sanlock('dump', dev, '-f', '2');
          assert.equal(cli.stdout, sl.stdout);
          await releaseResource(paxosHostFor(ls), mine);
          await ls.release();
        } finally {
          await d.close();
        }
      });
    }

    test('lease held by sanlock: refused to us while its delta lease is live, granted after release_id', async () => {
      const f = img('hold-sl.img', 4 * MIB);
      const d = await DirectDisk.open(f);
      const ref: ResourceRef = { disk: d, offset: MIB, lockspace: 'LS', resource: 'R' };
      try {
        await initLockspace(d, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
        await initResource(d, MIB, 'LS', 'R', { sectorSize: 512 });
        assert.match((await sanlock('acquire_id', '-s', `LS:1:${f}:0`, '-o', '1', '-e', 'sl-host1')).stdout, /done 0/);
        assert.match((await sanlock('acquire', '-r', `LS:R:${f}:${MIB}`, '-i', '1', '-g', '1', '-o', '1')).stdout, /done 0/);
        const ls = new Lockspace({ disk: d, offset: 0, name: 'LS', hostId: 2, clock, random: new SeededRandom(2), hostName: 'ts-host2', ioTimeout: 1 });
        await ls.acquire();
        ls.startRenewal();
        try {
          // keep sanlock's host 1 alive with renew_id while we try
          let renewing = true;
          const renewer = (async () => {
            while (renewing) {
              await sanlock('renew_id', '-s', `LS:1:${f}:0`, '-o', '1');
              await clock.sleep(1000);
            }
          })();
          await clock.sleep(3500); // our renewal thread sees host 1 change
          for (const nowait of [true, false]) {
            await assert.rejects(acquireResource(paxosHostFor(ls), ref, { ownerNowait: nowait }), (e: unknown) => {
              assert.ok(e instanceof LeaseError);
              assert.ok(e.rv === SANLK.ACQUIRE_IDLIVE || e.rv === SANLK.ACQUIRE_OWNED_RETRY, e.message);
              assert.equal(e.holder?.hostId, 1);
              assert.match(e.message, /held by host_id 1 generation 1/);
              return true;
            });
          }
          renewing = false;
          await renewer;
          assert.match((await sanlock('release_id', '-s', `LS:1:${f}:0`)).stdout, /release_id done 0/);
          const t0 = clock.nowMs();
          const lease = await acquireResource(paxosHostFor(ls), ref, { ownerNowait: true });
          assert.equal(lease.leader.ownerId, 2);
          assert.ok(clock.nowMs() - t0 < 2000, 'granted at once after release_id');
          await releaseResource(paxosHostFor(ls), lease);
        } finally {
          await ls.stopRenewal();
        }
      } finally {
        await d.close();
      }
    });

    test('lease held by us is refused to sanlock; granted to sanlock after we release', async () => {
      const f = img('hold-ts.img', 4 * MIB);
      const d = await DirectDisk.open(f);
      try {
        await initLockspace(d, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
        await initResource(d, MIB, 'LS', 'R', { sectorSize: 512 });
        const ls = new Lockspace({ disk: d, offset: 0, name: 'LS', hostId: 1, clock, random: new SeededRandom(1), hostName: 'ts-host1', ioTimeout: 1 });
        await ls.acquire();
        ls.startRenewal();
        try {
          const lease = await acquireResource(paxosHostFor(ls), { disk: d, offset: MIB, lockspace: 'LS', resource: 'R' });
          const r = await sanlock('acquire', '-r', `LS:R:${f}:${MIB}`, '-i', '2', '-g', '1', '-o', '1');
          assert.match(r.stdout, /acquire done -241/, 'sanlock direct refuses a lease owned by another host');
          await releaseResource(paxosHostFor(ls), lease);
          const r2 = await sanlock('acquire', '-r', `LS:R:${f}:${MIB}`, '-i', '2', '-g', '1', '-o', '1');
          assert.match(r2.stdout, /acquire done 0/, r2.stdout);
          const dump = await sanlock('dump', `${f}:${MIB}:${MIB}`);
          assert.match(dump.stdout, /LS\s+R 0000\d{6} 0002 0001 2\n/);
        } finally {
          await ls.stopRenewal();
          await ls.release();
        }
      } finally {
        await d.close();
      }
    });

  });

  test('expiry both ways, with the real sanlock daemon: leases of a silent host are granted after host_dead_seconds', { timeout: 150_000 }, async () => {
    // One lockspace, io_timeout 1 everywhere (host_dead = 8 + 60 = 68 s):
    //   host 1: sanlock daemon (add_lockspace), holds RA through `client command`
    //   host 2: us, stays alive
    //   host 3: us, holds RB, then goes silent (stops renewing)
    //   host 4: `sanlock direct`, holds RC, never renews
    const f = img('daemon.img', 8 * MIB);
    const run = path.join(tmp, 'sanlock-run');
    fs.mkdirSync(run);
    const env = { ...process.env, SANLOCK_RUN_DIR: run, SANLOCK_PRIVILEGED: '0' };
    const client = (args: string[], timeoutMs = 150_000) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile('sanlock', ['client', ...args], { env, timeout: timeoutMs }, (err, so, se) => resolve({ code: err ? 1 : 0, out: String(so) + String(se) }));
      });
    const { spawn } = await import('node:child_process');
    const procs: Array<import('node:child_process').ChildProcess> = [];
    const d = await DirectDisk.open(f);
    const res = (name: string, off: number): ResourceRef => ({ disk: d, offset: off, lockspace: 'LS', resource: name });
    const spaces: Lockspace[] = [];
    try {
      await initLockspace(d, 0, 'LS', { sectorSize: 512, ioTimeout: 1 });
      await initResource(d, 1 * MIB, 'LS', 'RA', { sectorSize: 512 });
      await initResource(d, 2 * MIB, 'LS', 'RB', { sectorSize: 512 });
      await initResource(d, 3 * MIB, 'LS', 'RC', { sectorSize: 512 });
      const daemon = spawn('sanlock', ['daemon', '-D', '-w', '0', '-l', '0', '-U', 'root', '-G', 'root', '-e', 'sl-daemon-host1'], { env, stdio: 'ignore' });
      procs.push(daemon);
      let up = false;
      for (let i = 0; i < 50 && !up; i++) {
        await clock.sleep(200);
        up = (await client(['status'], 5000)).code === 0;
      }
      assert.ok(up, 'sanlock daemon started');
      const h2 = new Lockspace({ disk: d, offset: 0, name: 'LS', hostId: 2, clock, random: new SeededRandom(2), hostName: 'ts-host2', ioTimeout: 1 });
      const h3 = new Lockspace({ disk: d, offset: 0, name: 'LS', hostId: 3, clock, random: new SeededRandom(3), hostName: 'ts-host3', ioTimeout: 1 });
      spaces.push(h2, h3);
      const [add] = await Promise.all([client(['add_lockspace', '-s', `LS:1:${f}:0`, '-o', '1']), h2.acquire(), h3.acquire()]);
      assert.match(add.out, /add_lockspace_timeout done 0/, add.out);
      h2.startRenewal();
      h3.startRenewal();
      assert.match((await sanlock('acquire_id', '-s', `LS:4:${f}:0`, '-o', '1', '-e', 'sl-direct-host4')).stdout, /done 0/);
      assert.match((await sanlock('acquire', '-r', `LS:RC:${f}:${3 * MIB}`, '-i', '4', '-g', '1', '-o', '1')).stdout, /done 0/);
      const rb = await acquireResource(paxosHostFor(h3), res('RB', 2 * MIB));
      const holdA = spawn('sanlock', ['client', 'command', '-r', `LS:RA:${f}:${1 * MIB}`, '-c', '/bin/sleep', '300'], { env, stdio: 'ignore' });
      procs.push(holdA);
      for (let i = 0; i < 50; i++) {
        const o = await readResourceOwners(res('RA', MIB));
        if (o.exclusive?.hostId === 1) break;
        await clock.sleep(200);
      }
      await clock.sleep(3000); // let everyone's renewals see everyone
      // live holders are refused in both directions, naming the holder
      await assert.rejects(acquireResource(paxosHostFor(h2), res('RA', MIB), { ownerNowait: true }), (e: unknown) => {
        assert.ok(e instanceof LeaseError && (e.rv === SANLK.ACQUIRE_IDLIVE || e.rv === SANLK.ACQUIRE_OWNED_RETRY), String(e));
        assert.equal(e.holder?.hostId, 1);
        return true;
      });
      const refused = await client(['command', '-r', `LS:RB:${f}:${2 * MIB}`, '-c', '/bin/true'], 30_000);
      assert.match(refused.out, /-243|acquire.*fail|error/i, `daemon must not get RB while host 3 is live: ${refused.out}`);
      assert.equal((await readResourceOwners(res('RB', 2 * MIB))).exclusive?.hostId, 3);
      // host 3 goes silent; the daemon keeps trying RB
      await h3.stopRenewal();
      const t0 = clock.monotonicSeconds();
      // the daemon's RA holder exits: RA is released, we get it at once
      holdA.kill('SIGTERM');
      let ra;
      for (let i = 0; i < 40 && !ra; i++) {
        try {
          ra = await acquireResource(paxosHostFor(h2), res('RA', MIB), { ownerNowait: true });
        } catch (e) {
          if (!(e instanceof LeaseError)) throw e;
          await clock.sleep(250);
        }
      }
      assert.ok(ra, 'RA granted after the daemon released it');
      assert.ok(clock.monotonicSeconds() - t0 < 15);
      // wait for both expiries: RC (sanlock direct host 4 never renewed) for us, RB (our host 3) for the daemon
      let rc;
      let rbOwner = 3;
      while (clock.monotonicSeconds() - t0 < 110 && (!rc || rbOwner !== 1)) {
        if (!rc) {
          try {
            rc = await acquireResource(paxosHostFor(h2), res('RC', 3 * MIB), { ownerNowait: true });
            assert.ok(clock.monotonicSeconds() - t0 >= 55, 'RC not granted before host 4 is dead');
          } catch (e) {
            if (!(e instanceof LeaseError)) throw e;
          }
        }
        if (rbOwner !== 1) {
          // the daemon answers IDLIVE while host 3 still looks alive; like lvmlockd, retry
          const r = await client(['command', '-r', `LS:RB:${f}:${2 * MIB}`, '-c', '/bin/true'], 20_000);
          const owner = (await readResourceOwners(res('RB', 2 * MIB))).leader;
          if (r.code === 0 && owner.ownerId === 1) {
            rbOwner = 1;
            assert.ok(clock.monotonicSeconds() - t0 >= 60, `daemon got RB after only ${clock.monotonicSeconds() - t0}s`);
          }
        }
        await clock.sleep(1000);
      }
      assert.ok(rc, 'RC granted to us after sanlock host 4 stopped renewing');
      assert.equal(rbOwner, 1, 'RB granted to the sanlock daemon after our host 3 stopped renewing');
      void rb;
    } finally {
      for (const s of spaces) await s.stopRenewal();
      await client(['rem_lockspace', '-s', `LS:1:${f}:0`], 10_000);
      for (const p of procs.reverse()) {
        if (p.exitCode === null && p.pid) {
          try {
            process.kill(p.pid, 'SIGTERM');
          } catch {
            /* gone */
          }
        }
      }
      await clock.sleep(1500);
      for (const p of procs) {
        if (p.exitCode === null && p.signalCode === null && p.pid) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      await d.close();
    }
  });
});
