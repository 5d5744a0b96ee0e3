// The daemon's adoption inputs: lvmlockd's adopt file (what our core writes
// and what C 2.03.16 writes), our host-name state file, and the active-LV
// filter from device-mapper uuids in sysfs.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAdoptFile } from '../../src/daemon/adopt-file';
import { AdoptStateFile, formatAdoptState, parseAdoptState } from '../../src/daemon/adopt-state';
import { lvDmUuid, readActiveLvs } from '../../src/daemon/dm-active';

const VGU = 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK';
const LV1 = 'uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub';
const LV2 = 'aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg';

describe('adopt file (lvmlockd format 1.0)', () => {
  test('VG and LV lines; an LV locked twice is adopted once', () => {
    const text = 'lvmlockd adopt_version 1.0 pid 42 updates 3 Wed Nov 25 13:41:18 2026\n' +
      `VG: ${VGU.padStart(38)} vg1 sanlock 1.0.0:lvmlock\n` +
      `LV: ${VGU.padStart(38)} ${LV1} 1.0.0:70254592 ex 0\n` +
      `LV: ${VGU.padStart(38)} ${LV2} 1.0.0:71303168 sh 0\n` +
      `LV: ${VGU.padStart(38)} ${LV2} 1.0.0:71303168 sh 0\n# comment\n`;
    assert.deepEqual(parseAdoptFile(text), { ok: true, vgs: [{
      vgUuid: VGU, vgName: 'vg1', lmType: 'sanlock', vgArgs: '1.0.0:lvmlock',
      lvs: [{ uuid: LV1, lvArgs: '1.0.0:70254592', mode: 'ex' }, { uuid: LV2, lvArgs: '1.0.0:71303168', mode: 'sh' }],
    }] });
  });

  test('errors: version, lock type, mode, LV before its VG', () => {
    const bad = (t: string) => { const r = parseAdoptFile(t); assert.equal(r.ok, false, t); return r.ok ? '' : r.error; };
    assert.match(bad('lvmlockd adopt_version 2.0 pid 1\n'), /line 1: unsupported header/);
    assert.match(bad(`VG: ${VGU} vg1 gfs 1.0.0:x\n`), /unknown lock type "gfs"/);
    assert.match(bad(`VG: ${VGU} vg1 sanlock 1.0.0:x\nLV: ${VGU} ${LV1} 1.0.0:1 un 0\n`), /line 2: LV .* has mode "un"/);
    assert.match(bad(`LV: ${VGU} ${LV1} 1.0.0:1 ex 0\n`), /no VG line for LV/);
  });
});

describe('adopt state file', () => {
  test('round trip, write-through, unusable lines skipped', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adopt-state-'));
    try {
      const file = path.join(dir, 'state');
      const errors: string[] = [];
      const s = AdoptStateFile.load(file, (m) => errors.push(m));
      assert.equal(s.get('lvm_vg1'), undefined);
      s.set('lvm_vg1', { hostId: 3, hostName: 'abc.host1' });
      s.set('lvm_vg2', { hostId: 3, hostName: 'def.host1' });
      const again = AdoptStateFile.load(file, (m) => errors.push(m));
      assert.deepEqual(again.get('lvm_vg1'), { hostId: 3, hostName: 'abc.host1' });
      again.retain(new Set(['lvm_vg2']));
      assert.deepEqual([...AdoptStateFile.load(file, () => undefined).entries().keys()], ['lvm_vg2']);
      assert.deepEqual(errors, []);
      const text = formatAdoptState(new Map([['lvm_a', { hostId: 1, hostName: 'n' }]])) + 'lockspace lvm_b 0 x\ngarbage\n';
      assert.deepEqual([...parseAdoptState(text).keys()], ['lvm_a']);
      assert.equal(parseAdoptState('lockspace lvm_a 1 n\n').size, 0, 'no header: not ours');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('active LVs from sysfs', () => {
  test('top-level LVM dm uuids count; a kernel without device-mapper keeps everything', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-active-'));
    try {
      const sys = path.join(root, 'sys'), proc = path.join(root, 'proc');
      fs.mkdirSync(path.join(sys, 'block'), { recursive: true });
      fs.mkdirSync(proc);
      fs.writeFileSync(path.join(proc, 'misc'), '236 loop-control\n');
      assert.deepEqual(readActiveLvs({ sys, proc }), { kind: 'no-dm' });
      fs.writeFileSync(path.join(proc, 'misc'), '236 loop-control\n 62 device-mapper\n');
      assert.equal(readActiveLvs({ sys, proc }).kind, 'dm', '/proc/misc lists it');
      fs.writeFileSync(path.join(proc, 'misc'), '');
      fs.mkdirSync(path.join(sys, 'class/misc/device-mapper'), { recursive: true });
      const dm = (n: string, uuid: string) => {
        fs.mkdirSync(path.join(sys, 'block', n, 'dm'), { recursive: true });
        fs.writeFileSync(path.join(sys, 'block', n, 'dm/uuid'), uuid + '\n');
      };
      dm('dm-0', lvDmUuid(VGU, LV1));
      dm('dm-1', lvDmUuid(VGU, LV2) + '-real');
      dm('dm-2', 'CRYPT-LUKS2-xyz');
      const a = readActiveLvs({ sys, proc });
      assert.equal(a.kind, 'dm');
      if (a.kind !== 'dm') return;
      assert.ok(a.uuids.has(lvDmUuid(VGU, LV1)));
      assert.ok(!a.uuids.has(lvDmUuid(VGU, LV2)), 'a layer device is not the LV');
      assert.equal(a.uuids.size, 2);
      assert.equal(lvDmUuid(VGU, LV1), 'LVM-Ome5tJ6ZkeNCGg9vgT8pJfXqVKDuueRKuRgWe9Ldt7EKWjdv0ZUhht5eDWckQEub');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
