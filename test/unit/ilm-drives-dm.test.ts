// The ILM's drive lookup for device-mapper paths. LVM2's own test suite makes
// every PV a dm linear device on the drive (aux.sh prepare_devs with
// LVM_TEST_BACKING_DEVICE), so lvm sends /dev/mapper/... paths; propeller
// follows them to the drive with `dmsetup deps -o devname`. A fake /dev and
// sysfs in a temp dir: /dev/mapper/LVMTESTpv1 -> dm-3, whose slave is dm-1,
// whose slave is sdc2; the drive map names sdc.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DriveRegistry, deepestDevice } from '../../src/ilm/drives';
import { NO_FAULTS } from '../../src/ilm/drive-commands';

let tmp = '';
let dev = '';
let sys = '';

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ilm-dm-'));
  dev = path.join(tmp, 'dev');
  sys = path.join(tmp, 'sys');
  fs.mkdirSync(path.join(dev, 'mapper'), { recursive: true });
  for (const f of ['dm-3', 'dm-1', 'sdc2', 'sdb']) fs.writeFileSync(path.join(dev, f), '');
  fs.symlinkSync('../dm-3', path.join(dev, 'mapper', 'LVMTESTpv1'));
  fs.mkdirSync(path.join(sys, 'dm-3', 'slaves', 'dm-1'), { recursive: true });
  fs.mkdirSync(path.join(sys, 'dm-1', 'slaves', 'sdc2'), { recursive: true });
  fs.mkdirSync(path.join(sys, 'dm-7', 'slaves'), { recursive: true });
  fs.writeFileSync(path.join(dev, 'dm-7'), '');
  fs.writeFileSync(path.join(tmp, 'drives'), `${dev}/sdc ${tmp}/drive-c.sock\n${dev}/sdb ${tmp}/drive-b.sock\n`);
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('deepestDevice follows dm slaves down to the drive partition', () => {
  assert.equal(deepestDevice(path.join(dev, 'mapper', 'LVMTESTpv1'), sys), path.join(dev, 'sdc2'));
  assert.equal(deepestDevice(path.join(dev, 'dm-1'), sys), path.join(dev, 'sdc2'));
  assert.equal(deepestDevice(path.join(dev, 'sdb'), sys), path.join(dev, 'sdb'), 'not dm: unchanged');
  assert.equal(deepestDevice(path.join(dev, 'dm-7'), sys), path.join(dev, 'dm-7'), 'dm without slaves: unchanged');
});

test('a /dev/mapper path resolves to the drive of the device under it', () => {
  const logs: string[] = [];
  const reg = new DriveRegistry(path.join(tmp, 'drives'), NO_FAULTS, (l) => logs.push(l), sys);
  const d = reg.resolve(path.join(dev, 'mapper', 'LVMTESTpv1'));
  assert.equal(d?.id, `${tmp}/drive-c.sock`, logs.join('\n'));
  assert.equal(reg.resolve(path.join(dev, 'sdb'))?.id, `${tmp}/drive-b.sock`);
  const both = reg.resolveAll([path.join(dev, 'mapper', 'LVMTESTpv1'), path.join(dev, 'dm-1'), path.join(dev, 'sdc2')]);
  assert.equal(both.drives.length, 1, 'three paths to one drive are one drive');
  assert.equal(both.failed, 0);
  assert.equal(reg.resolve(path.join(dev, 'dm-7')), null);
  assert.match(logs.join('\n'), /dm-7: neither/);
  reg.close();
});

// lvchange-partial (LVM2's suite) replaces a PV's dm table with an error
// target (aux disable_dev): the path has no device under it any more. As
// propeller (its cached device mapping), the ILM keeps using the drive that
// path named, so the VG's other PVs on that drive still carry its lock.
test('a path that stops resolving keeps the drive it resolved to last', () => {
  const logs: string[] = [];
  const reg = new DriveRegistry(path.join(tmp, 'drives'), NO_FAULTS, (l) => logs.push(l), sys);
  const pv = path.join(dev, 'mapper', 'LVMTESTpv2');
  fs.symlinkSync('../dm-9', pv);
  fs.writeFileSync(path.join(dev, 'dm-9'), '');
  fs.mkdirSync(path.join(sys, 'dm-9', 'slaves', 'sdc2'), { recursive: true });
  assert.equal(reg.resolve(pv)?.id, `${tmp}/drive-c.sock`);
  fs.rmSync(path.join(sys, 'dm-9', 'slaves', 'sdc2'), { recursive: true });
  const again = reg.resolve(pv);
  assert.equal(again?.id, `${tmp}/drive-c.sock`, logs.join('\n'));
  assert.match(logs.join('\n'), /LVMTESTpv2.*not a drive now; using its last mapping/);
  const all = reg.resolveAll([pv, path.join(dev, 'mapper', 'LVMTESTpv1')]);
  assert.deepEqual([all.drives.length, all.failed], [1, 0], 'the VG lock still has its one drive, no failed path');
  assert.equal(reg.resolve(path.join(dev, 'dm-7')), null, 'a path never resolved stays failed');
  reg.close();
});
