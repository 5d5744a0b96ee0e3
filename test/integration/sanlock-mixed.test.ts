// Mixed clusters: host1 runs the C lvmlockd with the real sanlock daemon,
// host2 runs our daemon (its own lease engine, no sanlock daemon). Both use
// the same sanlock VGs on shared storage, in both directions: a VG created
// by the C host and started by ours, and one created by ours and started by C.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, type DiskSpec, type Host } from '../harness/cluster';
import { sleep } from '../harness/exec';

const IO = '2';

async function ok(h: Host, args: string[]): Promise<void> {
  const r = await h.lvm(args);
  assert.equal(r.code, 0, `${h.name}: lvm ${args.join(' ')}\n${r.stdout}${r.stderr}`);
}

async function refused(h: Host, args: string[], vglv: string): Promise<void> {
  const r = await h.lvm(args);
  assert.equal(r.code, 5, `${h.name}: lvm ${args.join(' ')} should be refused\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr, new RegExp(`LV locked by other host: ${vglv.replace('/', '\\/')}`));
}

/** LV locks held (C 2.03.16 also lists unlocked LVs as "LK LV un": left out). */
async function lvModes(h: Host): Promise<string[]> {
  const info = await h.lvmlockctl(['--info']);
  return [...info.stdout.matchAll(/^LK LV (\w+) \S+$/gm)].map((m) => m[1]!).filter((m) => m !== 'un');
}

/** Both hosts have the VG started: LVs made on either side, ex/sh exclusion in both directions. */
async function exercise(vg: string, a: Host, b: Host): Promise<void> {
  await ok(a, ['lvcreate', '-an', '-n', 'la', '-L', '8M', vg]);
  await ok(b, ['lvcreate', '-an', '-n', 'lb', '-L', '8M', vg]);
  for (const h of [a, b]) {
    const lvs = await h.lvm(['lvs', '--noheadings', '-o', 'lv_name,lock_args', vg]);
    assert.equal(lvs.code, 0, lvs.stderr);
    assert.match(lvs.stdout, /\bla\s+1\.0\.0:\d+/);
    assert.match(lvs.stdout, /\blb\s+1\.0\.0:\d+/);
  }
  for (const [x, y] of [[a, b], [b, a]] as const) {
    // ex on x refuses ex and sh on y
    await ok(x, ['lvchange', '-aey', `${vg}/la`]);
    await refused(y, ['lvchange', '-aey', `${vg}/la`], `${vg}/la`);
    await refused(y, ['lvchange', '-asy', `${vg}/la`], `${vg}/la`);
    assert.deepEqual(await lvModes(x), ['ex']);
    assert.deepEqual(await lvModes(y), []);
    // released: granted to y
    await ok(x, ['lvchange', '-an', `${vg}/la`]);
    await ok(y, ['lvchange', '-aey', `${vg}/la`]);
    await ok(y, ['lvchange', '-an', `${vg}/la`]);
    // sh on both, ex refused on both
    await ok(x, ['lvchange', '-asy', `${vg}/lb`]);
    await ok(y, ['lvchange', '-asy', `${vg}/lb`]);
    assert.deepEqual(await lvModes(x), ['sh']);
    assert.deepEqual(await lvModes(y), ['sh']);
    await ok(x, ['lvchange', '-an', `${vg}/lb`]);
    await refused(x, ['lvchange', '-aey', `${vg}/lb`], `${vg}/lb`);
    await ok(y, ['lvchange', '-an', `${vg}/lb`]);
  }
  // lvremove on one side frees the slot for the other
  await ok(b, ['lvremove', '-y', `${vg}/la`]);
  await ok(a, ['lvcreate', '-an', '-n', 'lc', '-L', '8M', vg]);
  const lvs = await b.lvm(['lvs', '--noheadings', '-o', 'lv_name', vg]);
  assert.deepEqual(lvs.stdout.trim().split(/\s+/).sort(), ['lb', 'lc']);
}

/** vgremove on `remover` is refused while `other` has the lockspace started, then works. */
async function removeVg(vg: string, remover: Host, other: Host): Promise<void> {
  const busy = await remover.lvm(['vgremove', '-y', vg]);
  assert.equal(busy.code, 5, busy.stdout + busy.stderr);
  assert.match(busy.stderr, new RegExp(`Lockspace for "${vg}" not stopped on other hosts`));
  await ok(other, ['vgchange', '--lock-stop', vg]);
  let rm = await remover.lvm(['vgremove', '-y', vg]);
  for (let i = 0; i < 20 && rm.code !== 0; i++) {
    assert.match(rm.stderr, /not stopped on other hosts/);
    await sleep(1000);
    rm = await remover.lvm(['vgremove', '-y', vg]);
  }
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, new RegExp(`Volume group "${vg}" successfully removed`));
}

// Each scenario gets its own cluster (host1 C + sanlock daemon, host2 ours)
// and the three run at the same time: they mostly wait for lease timings.
// Every scenario removes its VG at the end, so it sees the same world as
// when they shared one cluster one after the other (in particular each
// vgcreate finds no other sanlock VG and enables the global lock).
describe('mixed cluster: C lvmlockd + sanlock daemon beside our daemon', { concurrency: true }, () => {
  const clusters: Cluster[] = [];

  async function mixed(name: string, disk: DiskSpec): Promise<{ c: Cluster; hc: Host; hts: Host }> {
    const c = await Cluster.create({ hosts: 2, disks: [disk], name });
    clusters.push(c);
    const [hc, hts] = [c.host(1), c.host(2)];
    await hc.startSanlock();
    await hc.startDaemon({ kind: 'c', args: ['-o', IO] });
    await hts.startDaemon({ kind: 'ts', args: ['-o', IO] });
    return { c, hc, hts };
  }

  after(async () => {
    for (const c of clusters) await c.destroy();
  });

  test('VG created by the C host, started by ours', { timeout: 180_000 }, async () => {
    const { c, hc, hts } = await mixed('san-mixed1', { sizeMiB: 512 });
    await c.emulateLvmlock('vgm1', { disk: 0 });
    const vg = await hc.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgm1', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.match(vg.stdout, /Enabling sanlock global lock/);
    const st = await hts.lvm(['vgchange', '--lock-start', 'vgm1']);
    assert.equal(st.code, 0, st.stderr);
    assert.match((await hts.lvmlockctl(['--info'])).stdout, /^LS sanlock lvm_vgm1$/m);
    // the sanlock daemon on the C host sees our host's delta lease
    const hosts = await hc.run(['sanlock', 'client', 'host_status', '-s', 'lvm_vgm1']);
    assert.match(hosts.stdout, /^2 timestamp [1-9]/m, hosts.stdout);
    await exercise('vgm1', hc, hts);
    await removeVg('vgm1', hc, hts);
  });

  test('VG created by our host, started by C', { timeout: 180_000 }, async () => {
    const { c, hc, hts } = await mixed('san-mixed2', { sizeMiB: 512 });
    await c.emulateLvmlock('vgm2', { disk: 0 });
    const vg = await hts.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgm2', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    assert.match(vg.stdout, /VG vgm2 starting sanlock lockspace/);
    const st = await hc.lvm(['vgchange', '--lock-start', 'vgm2']);
    assert.equal(st.code, 0, st.stderr);
    const status = await hc.run(['sanlock', 'client', 'status']);
    assert.match(status.stdout, /^s lvm_vgm2:1:\/dev\/mapper\/vgm2-lvmlock:0/m);
    await exercise('vgm2', hts, hc);
    await removeVg('vgm2', hts, hc);
  });

  test('4K-sector storage: VG created by ours (4096/8M layout), used by C', { timeout: 180_000 }, async () => {
    const { c, hc, hts } = await mixed('san-mixed4k', { sizeMiB: 2048, sectorSize: 4096 });
    await c.emulateLvmlock('vgm4', { disk: 0 });
    const vg = await hts.lvm(['vgcreate', '--shared', '--lock-type', 'sanlock', 'vgm4', c.disks[0]!.path]);
    assert.equal(vg.code, 0, vg.stderr);
    const dump = await hts.run(['sanlock', 'direct', 'dump', '/dev/mapper/vgm4-lvmlock:0:600M']);
    assert.match(dump.stdout, /^\s*545259520\s+lvm_vgm4\s+GLLK\b/m, dump.stdout); // no other sanlock VG left: it gets the GL
    assert.match(dump.stdout, /^\s*553648128\s+lvm_vgm4\s+VGLK/m);
    assert.match(dump.stdout, /^\s*562036736\s+lvm_vgm4\s+#unused/m);
    await ok(hc, ['vgchange', '--lock-start', 'vgm4']);
    await ok(hc, ['lvcreate', '-an', '-n', 'l4', '-L', '8M', 'vgm4']);
    const lvs = await hts.lvm(['lvs', '--noheadings', '-o', 'lv_name,lock_args', 'vgm4']);
    assert.match(lvs.stdout, /l4\s+1\.0\.0:562036736/);
    await ok(hc, ['lvchange', '-aey', 'vgm4/l4']);
    await refused(hts, ['lvchange', '-aey', 'vgm4/l4'], 'vgm4/l4');
    await ok(hc, ['lvchange', '-an', 'vgm4/l4']);
    await ok(hts, ['lvchange', '-aey', 'vgm4/l4']);
    await refused(hc, ['lvchange', '-asy', 'vgm4/l4'], 'vgm4/l4');
    await ok(hts, ['lvchange', '-an', 'vgm4/l4']);
    await removeVg('vgm4', hts, hc);
  });
});
