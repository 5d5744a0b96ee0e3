// The VM tier's accelerator choice (test/vm/lib/accel.ts), with fake qemu
// binaries standing for the three ways KVM behaves on machines of our kind:
// the guest boots and prints, the guest hangs silently, qemu aborts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  chooseAccel, forcedAccel, KvmProbeOutcome, probeKvmBoot, readCachedVerdict, recordKvmBroken,
  verdictFromProbe, verdictKey, waitFirstBytes,
} from '../vm/lib/accel';

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vm-accel-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function fakeQemu(dir: string, name: string, script: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return p;
}

test('a guest that prints on its console means KVM', async (t) => {
  const d = tmpDir(t);
  const qemu = fakeQemu(d, 'booting', 'sleep 0.2; echo "Linux version 6.1.0"; exec sleep 30');
  const o = await probeKvmBoot({ qemu, kernel: '/k', initrd: '/i', timeoutMs: 5000 });
  assert.equal(o.kind, 'booted');
  assert.equal(verdictFromProbe(o).accel, 'kvm');
});

test('a guest that stays silent means TCG, and qemu is killed', async (t) => {
  const d = tmpDir(t);
  const pidFile = path.join(d, 'pid');
  const qemu = fakeQemu(d, 'hanging', `echo $$ > ${pidFile}; exec sleep 30`);
  const o = await probeKvmBoot({ qemu, kernel: '/k', initrd: '/i', timeoutMs: 800 });
  assert.equal(o.kind, 'silent');
  const v = verdictFromProbe(o);
  assert.equal(v.accel, 'tcg');
  assert.match(v.reason, /wrote nothing to its console/);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 200));
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the silent qemu must be killed');
});

test('qemu that aborts under KVM means TCG, with its message in the reason', async (t) => {
  const d = tmpDir(t);
  const qemu = fakeQemu(d, 'aborting', 'echo "qemu-system-x86_64: error: failed to set MSR 0x10a" >&2; kill -ABRT $$');
  const o = await probeKvmBoot({ qemu, kernel: '/k', initrd: '/i', timeoutMs: 5000 });
  assert.equal(o.kind, 'exited');
  const v = verdictFromProbe(o);
  assert.equal(v.accel, 'tcg');
  assert.match(v.reason, /SIGABRT: qemu-system-x86_64: error: failed to set MSR 0x10a/);
});

test('a guest that prints and then exits still counts as booted', async (t) => {
  const d = tmpDir(t);
  const qemu = fakeQemu(d, 'printexit', 'echo "Linux version"; exit 0');
  const o = await probeKvmBoot({ qemu, kernel: '/k', initrd: '/i', timeoutMs: 5000 });
  assert.equal(o.kind, 'booted');
});

test('a qemu that cannot be started means TCG', async () => {
  const o = await probeKvmBoot({ qemu: '/nonexistent/qemu', kernel: '/k', initrd: '/i', timeoutMs: 2000 });
  assert.equal(o.kind, 'spawn-failed');
  assert.equal(verdictFromProbe(o).accel, 'tcg');
});

test('LVMLOCKD_VM_ACCEL forces the choice and rejects other values', () => {
  assert.deepEqual(forcedAccel('kvm'), { accel: 'kvm', reason: 'forced by LVMLOCKD_VM_ACCEL=kvm', forced: true });
  assert.equal(forcedAccel('tcg')?.accel, 'tcg');
  assert.equal(forcedAccel(undefined), null);
  assert.equal(forcedAccel('auto'), null);
  assert.throws(() => forcedAccel('hvf'), /expected kvm, tcg or auto/);
});

test('chooseAccel: forced skips the probe; no /dev/kvm is TCG; a verdict is probed once and cached', async (t) => {
  const d = tmpDir(t);
  const kernel = path.join(d, 'vmlinuz');
  fs.writeFileSync(kernel, 'k');
  const kvmDevice = path.join(d, 'kvm');
  fs.writeFileSync(kvmDevice, '');
  const cacheFile = path.join(d, 'cache', 'accel-verdict.json');
  let probes = 0;
  const outcomes: KvmProbeOutcome[] = [{ kind: 'silent', ms: 20000 }];
  const probe = async (): Promise<KvmProbeOutcome> => { probes++; return outcomes.shift()!; };
  const base = { kernel, initrd: '/i', cacheFile, kvmDevice, probe };

  assert.equal((await chooseAccel({ ...base, env: 'kvm' })).accel, 'kvm');
  assert.equal(probes, 0);
  const noDev = await chooseAccel({ ...base, env: undefined, kvmDevice: path.join(d, 'absent') });
  assert.equal(noDev.accel, 'tcg');
  assert.match(noDev.reason, /missing or not read-write/);
  assert.equal(probes, 0);

  const first = await chooseAccel({ ...base, env: undefined });
  assert.equal(first.accel, 'tcg');
  assert.equal(probes, 1);
  const second = await chooseAccel({ ...base, env: undefined });
  assert.equal(second.accel, 'tcg');
  assert.match(second.reason, /\[cached /);
  assert.equal(probes, 1, 'the second process reads the cached verdict');

  // a changed guest kernel invalidates the verdict
  fs.writeFileSync(kernel, 'a newer kernel');
  outcomes.push({ kind: 'booted', ms: 900 });
  const third = await chooseAccel({ ...base, env: undefined });
  assert.equal(third.accel, 'kvm');
  assert.equal(probes, 2);

  // silent KVM guests in a scenario turn the rest of the run to TCG
  recordKvmBroken(cacheFile, kernel, 'guests under KVM did not boot (vm1 silent after 20 s)');
  const after = readCachedVerdict(cacheFile, verdictKey(kernel));
  assert.equal(after?.accel, 'tcg');
  assert.equal((await chooseAccel({ ...base, env: undefined })).accel, 'tcg');
  assert.equal(probes, 2);
});

test('waitFirstBytes names the consoles that stayed empty, and stops waiting for dead VMs', async (t) => {
  const d = tmpDir(t);
  const a = path.join(d, 'a.log');
  const b = path.join(d, 'b.log');
  const c = path.join(d, 'c.log');
  for (const f of [a, b, c]) fs.writeFileSync(f, '');
  setTimeout(() => fs.writeFileSync(a, 'SeaBIOS'), 150);
  const silent = await waitFirstBytes([a, b, c], 700, (i) => i !== 2);
  assert.deepEqual(silent, [1]);
});
