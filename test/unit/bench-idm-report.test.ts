// bench/idm-report.ts: what the IDM section parses (lvs devices, --kill-drive)
// and the table it prints.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driveOwners, parseLvDevices, parseKillDrive, formatIdmReport, rawOpsPerSec, emptyResult, type ReportContext } from '../../bench/idm-report';

test('parseLvDevices: the PVs of `lvs -o devices`, each once, in the printed order', () => {
  assert.deepEqual(parseLvDevices('  /dev/loop1(0),/dev/loop2(0),/dev/loop3(0)\n'), ['/dev/loop1', '/dev/loop2', '/dev/loop3']);
  assert.deepEqual(parseLvDevices('  /dev/loop4(0)\n'), ['/dev/loop4']);
  assert.deepEqual(parseLvDevices('/dev/sdb(0),/dev/sdb(12)'), ['/dev/sdb'], 'two segments on one PV');
  assert.throws(() => parseLvDevices('  \n'), /no devices/);
  assert.throws(() => parseLvDevices('lv1 /dev/loop1(0)'), /cannot parse/);
});

test('parseKillDrive: N:I:S with the drive index below the VG\'s drive count', () => {
  assert.deepEqual(parseKillDrive('3:1:5'), { drives: 3, index: 1, afterSeconds: 5 });
  assert.deepEqual(parseKillDrive('5:4:0.5'), { drives: 5, index: 4, afterSeconds: 0.5 });
  assert.throws(() => parseKillDrive('3:3:5'), /not below 3/);
  assert.throws(() => parseKillDrive('0:0:1'), /at least one drive/);
  assert.throws(() => parseKillDrive('3:1'), /N:I:S/);
  assert.throws(() => parseKillDrive('a:1:2'), /N:I:S/);
});

test('driveOwners: VG vgi<N> gets the next N disks, in the order of the drive counts', () => {
  assert.deepEqual(driveOwners([1, 3]), [{ vg: 'vgi1', j: 0 }, { vg: 'vgi3', j: 0 }, { vg: 'vgi3', j: 1 }, { vg: 'vgi3', j: 2 }]);
  assert.equal(driveOwners([1, 3, 5]).length, 9);
  assert.deepEqual(driveOwners([]), []);
});

const CTX: ReportContext = {
  date: '2026-12-03T08:00:00.000Z', commit: 'abc1234', load0: '0.50 0.40 0.30', load1: '1.00 0.80 0.60', seconds: 71.4,
  cpus: 2, node: 'v20.0.0', lvReps: 10, rawRounds: 2, rawSeconds: 2, io: 1, notes: ['FAULT INJECTED (test)'],
};

test('rawOpsPerSec counts ex and un round trips over the measured seconds', () => {
  const r = { ...emptyResult('idm x1', 1), rawExUs: [100, 200], rawUnUs: [50, 60], rawSeconds: 0.5 };
  assert.equal(rawOpsPerSec(r), 8);
  assert.ok(Number.isNaN(rawOpsPerSec(emptyResult('sanlock', 0))), 'no loop ran: no rate');
});

test('formatIdmReport: one row per config with p50 / p90 (n), the ratios to sanlock, date, commit, load', () => {
  const idm = {
    ...emptyResult('idm x3', 3),
    lvAcquireMs: [200, 220, 240, 260, 280, 300, 320, 340, 360, 380],
    lvReleaseMs: [100, 100, 100, 100, 100],
    rawExUs: [4000, 5000, 6000], rawUnUs: [2000, 3000], rawSeconds: 1,
    rawCpu: { lvmlockd: 0.005, ilm: 0.0025, drives: 0.01 },
  };
  const san = {
    ...emptyResult('sanlock', 0),
    lvAcquireMs: [100, 110, 120, 130, 140, 150, 160, 170, 180, 190],
    lvReleaseMs: [50, 50, 50, 50, 50],
    rawExUs: [2000, 2500, 3000], rawUnUs: [1000, 1000], rawSeconds: 0.5,
  };
  const text = formatIdmReport([idm, san], CTX);
  assert.match(text, /vs a sanlock VG \(our lvmlockd, -o 1\), same run; 2026-12-03T08:00:00.000Z, commit abc1234/);
  assert.match(text, /load average 0\.50 0\.40 0\.30 at start, 1\.00 0\.80 0\.60 at end; section took 71 s/);
  const row = text.split('\n').find((l) => l.startsWith('idm x3'))!;
  assert.ok(row, text);
  // -aey p50 = 280 ms (5th of 10), p90 = 360 ms (9th); -an 100 / 100; ex 5.00 / 6.00 ms; un 2.00 / 3.00 ms; 5 round trips / 1 s
  assert.match(row, /280 ms \/ 360 ms \(10\)\s+100 ms \/ 100 ms \(5\)\s+5\.00 ms \/ 6\.00 ms \(3\)\s+2\.00 ms \/ 3\.00 ms \(2\)\s+5$/);
  assert.match(text, /idm x3\s+lvchange -aey 2\.00x, lvchange -an 2\.00x, lock_lv ex 2\.00x, lock_lv un 2\.00x, lock_lv\/s 0\.50x/);
  // CPU per round trip: 5 ms / 5, 2.5 ms / 5, 10 ms / 5; wall 1 s / 5; sanlock has no ILM or drives
  assert.match(text, /^  idm x3   1\.00 ms \/ 0\.50 ms \/ 2\.00 ms, together 3\.50 ms of 200 ms wall time per round trip$/m);
  assert.match(text, /^  sanlock  0\.00 ms \/ - \/ -, together 0\.00 ms of 100 ms wall time per round trip$/m);
  assert.match(text, /note: FAULT INJECTED \(test\)/);
});

test('formatIdmReport without a sanlock row prints no ratios; empty configs print dashes', () => {
  const text = formatIdmReport([emptyResult('idm x1', 1)], CTX);
  assert.doesNotMatch(text, /relative to/);
  assert.match(text, /^IDM VGs \(our lvmlockd \+ our ILM \+ emulated drives over their sockets\) \(no sanlock VG in this run\);/);
  assert.match(text.split('\n').find((l) => l.startsWith('idm x1'))!, /- \/ - \(0\).*-$/);
});
