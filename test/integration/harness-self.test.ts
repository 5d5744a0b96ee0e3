// Tests of the harness mechanics themselves: teardown leaves no processes,
// loop devices or temp dirs; failures of a daemon start are reported with
// its log; networking between hosts; mapper emulation; normalization and
// diffing of the compare tool.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Cluster } from '../harness/cluster';
import { pidAlive } from '../harness/exec';
import { loopBackingFile } from '../harness/resources';
import { normalize, normalizeInfo, normalizeResults, collapseColumns, newNormalizeContext, diffRuns, formatComparison, lineDiff, StepResult, Comparison } from '../harness/compare';

describe('cluster lifecycle', () => {
  test('destroy() releases every process, loop device and the temp dir', async () => {
    const c = await Cluster.create({ hosts: 3, disks: [{ sizeMiB: 64 }, { sizeMiB: 300, sectorSize: 4096 }], network: true, name: 'self' });
    let pids: number[] = [];
    let loops: Array<{ device: string; backingFile: string }> = [];
    try {
      assert.equal(c.hosts.length, 3);
      assert.equal(c.disks.length, 2);
      assert.notEqual(c.disks[0]!.path, c.disks[1]!.path);
      const bs = await c.host(1).run(['blockdev', '--getss', c.disks[1]!.path]);
      assert.equal(bs.stdout.trim(), '4096');
      await c.host(1).startDaemon({ kind: 'c', args: ['-T'] });
      await c.host(3).startDaemon({ kind: 'c', args: ['-T'] });
      await c.host(2).startSanlock();
      const m = await c.emulateLvmlock('vg-x', { disk: 0, sizeBytes: 8 * 1024 * 1024 });
      assert.equal(m.path, '/dev/mapper/vg--x-lvmlock');
      for (const i of [1, 2, 3]) {
        const r = await c.host(i).run(['blockdev', '--getsize64', m.path]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), String(8 * 1024 * 1024));
      }
      // The real /dev/mapper of the machine is not touched.
      assert.ok(!fs.existsSync('/dev/mapper/vg--x-lvmlock'));
      // Data written through the mapper node is at the offset of the disk.
      const w = await c.host(1).run(['sh', '-c', `printf HARNESS | dd of=${m.path} bs=512 seek=1 conv=notrunc,fsync 2>/dev/null`]);
      assert.equal(w.code, 0, w.stderr);
      const rd = await c.host(2).run(['dd', `if=${c.disks[0]!.path}`, 'bs=4096', 'skip=256', 'count=1', 'iflag=direct', 'status=none']);
      assert.equal(rd.stdout.slice(512, 519), 'HARNESS');

      // removeMapper detaches the loop and removes the node.
      const tmp = await c.emulateLv('vgy', 'lvz', { disk: 1, offsetBytes: 4096 * 256, sizeBytes: 4096 * 1024 });
      assert.equal((await c.host(3).run(['blockdev', '--getss', tmp.path])).stdout.trim(), '4096');
      await c.removeMapper(tmp.name);
      assert.equal(loopBackingFile(tmp.loop) === c.disks[1]!.backingFile, false);
      assert.equal((await c.host(3).run(['test', '-e', tmp.path])).code, 1);

      pids = [c.host(1).daemon!.pid, c.host(3).daemon!.pid, c.host(2).sanlock!.pid, ...c.hosts.map((h) => h.holderPid), c.switchPid!];
      loops = c.tracker.loops.map((l) => ({ ...l }));
      assert.equal(loops.length, 3);
      for (const p of pids) assert.ok(pidAlive(p), `pid ${p} alive`);
    } finally {
      await c.destroy();
    }
    for (const p of pids) assert.ok(!pidAlive(p), `pid ${p} gone after destroy`);
    for (const l of loops) assert.notEqual(loopBackingFile(l.device), l.backingFile, `${l.device} detached`);
    assert.ok(!fs.existsSync(c.dir), 'temp dir removed');
    await c.destroy(); // idempotent
  });

  test('a daemon that cannot start is reported with its log', async () => {
    const c = await Cluster.create({ hosts: 1, disks: [{ sizeMiB: 16 }], name: 'badstart' });
    try {
      await assert.rejects(c.host(1).startDaemon({ kind: 'c', args: ['--no-such-option'], readyTimeoutMs: 3000 }), /exited early[\s\S]*log tail/);
      await assert.rejects(c.host(1).startDaemon({ kind: 'ts', binary: '/nonexistent/lvmlockd' }), /binary not found/);
      // A daemon whose pid file is elsewhere is not "ready" for lvm commands.
      await assert.rejects(c.host(1).startDaemon({ kind: 'c', args: ['-T', '-p', '/run/elsewhere.pid'], readyTimeoutMs: 2000 }), /no \/run\/lvmlockd\.pid/);
      const other = await c.host(1).startDaemon({ kind: 'c', args: ['-T', '-p', '/run/elsewhere.pid'], noPidFile: true });
      const warn = await c.host(1).lvm(['vgs']);
      assert.match(warn.stderr, /lvmlockd process is not running/);
      await c.host(1).stopDaemon();
      assert.ok(!pidAlive(other.pid));
      // The host is still usable afterwards.
      const d = await c.host(1).startDaemon({ kind: 'c', args: ['-T'] });
      assert.ok(pidAlive(d.pid));
      const st = await c.host(1).stopDaemon();
      assert.ok(st);
      assert.ok(!pidAlive(d.pid));
    } finally {
      await c.destroy();
    }
  });

  test('clusters running at the same time do not see each other (test files run in parallel)', async () => {
    // Each cluster's lvm.conf filter accepts only its own loop devices, and
    // /run, /etc/lvm, /dev/mapper and the network are per host or cluster:
    // the same VG name on both is no duplicate, and neither lists the other.
    const [a, b] = await Promise.all([
      Cluster.create({ hosts: 1, disks: [{ sizeMiB: 16 }], useLvmlockd: false, name: 'iso-a' }),
      Cluster.create({ hosts: 1, disks: [{ sizeMiB: 16 }], useLvmlockd: false, name: 'iso-b' }),
    ]);
    try {
      for (const c of [a, b]) {
        const r = await c.host(1).lvm(['vgcreate', 'vgiso', c.disks[0]!.path]);
        assert.equal(r.code, 0, r.stderr);
      }
      await Promise.all([a.emulateLv('vgiso', 'lvx', { offsetBytes: 1 << 20, sizeBytes: 1 << 20 }), b.emulateLvmlock('vgiso', { sizeBytes: 1 << 20 })]);
      for (const [c, other] of [[a, b], [b, a]] as const) {
        const h = c.host(1);
        const pvs = await h.lvm(['pvs', '--noheadings', '-o', 'pv_name,vg_name']);
        assert.equal(pvs.code, 0, pvs.stderr);
        assert.deepEqual(pvs.stdout.trim().split(/\s+/), [c.disks[0]!.path, 'vgiso']);
        assert.doesNotMatch(pvs.stderr, /duplicate|VG name/i);
        const vgs = await h.lvm(['vgs', '--noheadings', '-o', 'vg_name,pv_count']);
        assert.deepEqual(vgs.stdout.trim().split(/\s+/), ['vgiso', '1']);
        const mapper = await h.run(['ls', '/dev/mapper']);
        assert.deepEqual(mapper.stdout.trim().split('\n').sort(), ['control', c === a ? 'vgiso-lvx' : 'vgiso-lvmlock']);
        assert.notEqual(c.disks[0]!.path, other.disks[0]!.path);
      }
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });

  test('hosts reach each other on the cluster network, and can be cut off', async () => {
    const c = await Cluster.create({ hosts: 2, disks: [{ sizeMiB: 16 }], network: true, name: 'net' });
    try {
      const h1 = c.host(1);
      const h2 = c.host(2);
      assert.equal(h1.address, '10.213.0.1');
      const server = h2.run(['node', '-e', `require('net').createServer((s)=>{s.end('pong');setTimeout(()=>process.exit(0),50)}).listen(7777,'${h2.address}')`], { timeoutMs: 15000 });
      const client = `const t=Date.now();(function go(){const s=require('net').connect(7777,'${h2.address}');let d='';s.on('data',(b)=>d+=b);s.on('end',()=>{console.log(d);process.exit(0)});s.on('error',()=>{if(Date.now()-t>10000)process.exit(3);setTimeout(go,100)})})()`;
      const r = await h1.run(['node', '-e', client], { timeoutMs: 15000 });
      assert.equal(r.stdout.trim(), 'pong', r.stderr);
      assert.equal((await server).code, 0);
      // Each host has its own loopback: 127.0.0.1 on host 1 is not host 2.
      const lo = await h1.run(['node', '-e', `require('net').connect(7777,'127.0.0.1').on('error',(e)=>{console.log(e.code);process.exit(0)})`]);
      assert.equal(lo.stdout.trim(), 'ECONNREFUSED');
      await h2.setNetwork(false);
      const cut = await h1.run(['node', '-e', `const s=require('net').connect(7777,'${h2.address}');s.setTimeout(1500,()=>{console.log('timeout');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)})`], { timeoutMs: 10000 });
      assert.match(cut.stdout.trim(), /^(timeout|EHOSTUNREACH)$/);
      await h2.setNetwork(true);
    } finally {
      await c.destroy();
    }
  });
});

function sr(i: number, stdout: string, code = 0, stderr = ''): StepResult {
  return { index: i, step: { host: 1, argv: ['lvm', 'x'] }, argv: ['lvm', 'x'], code, stdout, stderr, timedOut: false };
}

describe('normalization and diffs', () => {
  test('normalize replaces run-specific parts consistently', () => {
    const ctx = newNormalizeContext([['/dev/loop7', '{disk0}'], ['/dev/loop1', '{disk1}']]);
    const a = normalize('PV /dev/loop7 /dev/loop1 /dev/loop12 VG vg1 Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK pid 5637 cmd[6401]\n1795609884 new cl 3', ctx);
    assert.equal(a, 'PV {disk0} {disk1} /dev/loopX VG vg1 {UUID1} pid PID cmd[PID]\nTS new cl 3');
    // The same UUID keeps its number within a context; a new one gets the next.
    const b = normalize('uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK', ctx);
    assert.equal(b, '{UUID2} {UUID1}');
    assert.equal(normalize('daemon c6bc556c-cb06-4c58-b73f-59ca064af944.host1'), 'daemon {GUID1}.host1');
  });

  test('lvm report tables: column padding does not depend on the loop device name length', () => {
    const table = (dev: string, w: number) => `  ${'PV'.padEnd(w)} VG  Fmt  Attr PSize   PFree  \n  ${dev} vg1 lvm2 a--  508.00m 508.00m\n`;
    const a = normalizeResults([{ ...sr(0, table('/dev/loop9', 10)), argv: ['lvm', 'pvs'] }], newNormalizeContext([['/dev/loop9', '{disk0}']]));
    const b = normalizeResults([{ ...sr(0, table('/dev/loop10', 11)), argv: ['lvm', 'pvs'] }], newNormalizeContext([['/dev/loop10', '{disk0}']]));
    assert.equal(a[0]!.stdout, '  PV VG Fmt Attr PSize PFree\n  {disk0} vg1 lvm2 a-- 508.00m 508.00m\n');
    assert.equal(a[0]!.stdout, b[0]!.stdout);
    // Other commands keep their spacing.
    assert.equal(normalizeResults([{ ...sr(0, 'a  b'), argv: ['lvm', 'lvchange'] }], newNormalizeContext())[0]!.stdout, 'a  b');
    assert.equal(collapseColumns('x   y  \n  z'), 'x y\n  z');
  });

  test('normalizeInfo handles the global lockspace quirk and optional sorting', () => {
    const info = [
      'VG vg_uuid= lock_type= ',
      'LS  lvm_global',
      'LK VG un ver 0',
      '',
      'VG vg1 lock_type=dlm Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK',
      'LS dlm lvm_vg1',
      'LK VG un ver 3',
      'LK LV sh uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub',
      'LK LV ex aaaaaa-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub',
      '',
    ].join('\n');
    const n = normalizeInfo(info, newNormalizeContext());
    assert.equal(n, info.replace('Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK', '{UUID1}').replace('uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub', '{UUID2}').replace('aaaaaa-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub', '{UUID3}'));
    const s = normalizeInfo(info, newNormalizeContext(), { sort: true });
    const lines = s.split('\n');
    assert.deepEqual(lines.slice(5, 9), ['LS dlm lvm_vg1', 'LK LV ex {UUID3}', 'LK LV sh {UUID2}', 'LK VG un ver 3']);
    assert.equal(lines[3], '');
  });

  test('diffRuns/formatComparison report differing steps and fields', () => {
    const a = [sr(0, 'same\n'), sr(1, 'LK LV ex {UUID1}\n'), sr(2, '', 0)];
    const b = [sr(0, 'same\n'), sr(1, 'LK LV sh {UUID1}\n'), sr(2, '', 5, 'boom\n')];
    const diffs = diffRuns(a, b);
    assert.deepEqual(diffs.map((d) => [d.index, d.fields.map((f) => f.field)]), [[1, ['stdout']], [2, ['code', 'stderr']]]);
    const cmp: Comparison = {
      a: { spec: { kind: 'c', args: ['-T'] }, raw: a, normalized: a, daemonLogs: [] },
      b: { spec: { kind: 'ts', args: ['-T'] }, raw: b, normalized: b, daemonLogs: [] },
      diffs,
      same: false,
    };
    const text = formatComparison(cmp);
    assert.match(text, /A=c -T vs B=ts -T: 2 differing step\(s\) in 3 steps/);
    assert.match(text, /- LK LV ex \{UUID1\}\n\s+\+ LK LV sh \{UUID1\}/);
    assert.match(text, /exit code: A 0 {2}B 5/);
    assert.doesNotMatch(text, /step 1 /);
    assert.equal(lineDiff('a\nb\nc', 'a\nc\nd'), '  a\n- b\n  c\n+ d');
    const ignored = diffRuns([{ ...sr(0, 'x', 1), step: { host: 1, argv: [], ignore: ['code', 'stdout'] } }], [sr(0, 'y', 2)]);
    assert.equal(ignored.length, 0);
  });
});
