// VM tier, infrastructure: two VMs boot the cached image, the agent runs
// commands, the kernel has device-mapper, dm-flakey/dm-delay and the DLM, the
// shared disk is shared (O_DIRECT write in vm1 read in vm2), the hub network
// works (ping) and a cut cable cuts it. Also: Node and our daemon run in the
// guest from the repo share.

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { VmCluster } from './lib/vm';
import { vmSkipReason, vmLog, describeVm } from './lib/gate';

const skip = vmSkipReason();

describeVm('vm tier: infrastructure', { skip, timeout: 15 * 60_000 }, () => {
  let c: VmCluster;

  before(async () => {
    const t0 = Date.now();
    c = await VmCluster.create({ vms: 2, disks: [{ sizeMiB: 256 }], name: 'infra', log: vmLog });
    vmLog(`infra: cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s (image ${c.image.hash}${c.image.built ? ', built now' : ', cached'}, ${c.accel})`);
  });

  after(async () => {
    if (c) await c.destroy();
  });

  it('runs commands and returns exit code, stdout, stderr', async () => {
    const r = await c.vm(1).sh('echo out; echo err >&2; exit 3');
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    const h = await c.vm(2).exec(['hostname']);
    assert.equal(h.stdout.trim(), 'vm2');
    const t = await c.vm(1).exec(['sleep', '10'], { timeoutMs: 500 });
    assert.equal(t.timedOut, true);
  });

  it('has device-mapper, dm-flakey, dm-delay and the kernel DLM', async () => {
    const vm = c.vm(1);
    const v = await vm.execOk(['dmsetup', 'version']);
    assert.match(v.stdout, /Driver version/);
    const t = await vm.execOk(['dmsetup', 'targets']);
    for (const target of ['linear', 'error', 'flakey', 'delay']) assert.match(t.stdout, new RegExp(`^${target}\\s`, 'm'));
    const m = await vm.execOk(['sh', '-c', 'grep -E "^(dlm|dm_mod|dm_flakey) " /proc/modules | cut -d" " -f1 | sort']);
    assert.match(m.stdout, /dlm/);
    await vm.execOk(['test', '-d', '/sys/kernel/config/dlm']);
  });

  it('shares the raw disk between VMs (O_DIRECT)', async () => {
    await c.vm(1).shOk('echo "hello from vm1 $$" > /tmp/m; dd if=/tmp/m of=/dev/vdb bs=4096 count=1 conv=sync oflag=direct status=none');
    const r = await c.vm(2).shOk('dd if=/dev/vdb bs=4096 count=1 iflag=direct status=none | tr -d "\\0"');
    assert.match(r.stdout, /^hello from vm1 \d+/);
  });

  it('connects the VMs on the hub and can cut a cable', async () => {
    await c.vm(1).execOk(['ping', '-c', '1', '-W', '5', c.vm(2).address], { timeoutMs: 20_000 });
    c.setLink(2, false);
    const r = await c.vm(1).exec(['ping', '-c', '1', '-W', '2', c.vm(2).address], { timeoutMs: 20_000 });
    assert.notEqual(r.code, 0);
    c.setLink(2, true);
    await c.vm(1).execOk(['ping', '-c', '1', '-W', '5', c.vm(2).address], { timeoutMs: 20_000 });
  });

  it('guest clocks run at the host\'s rate (leases depend on it)', async (t) => {
    const rates = await Promise.all(c.vms.map((vm) => vm.clockRate(10_000)));
    t.diagnostic(`guest/host clock rates: ${rates.map((r) => r.toFixed(3)).join(', ')}`);
    const cs = await c.vm(1).execOk(['cat', '/sys/devices/system/clocksource/clocksource0/current_clocksource']);
    t.diagnostic(`clocksource: ${cs.stdout.trim()}`);
    for (const r of rates) assert.ok(r > 0.9 && r < 1.1, `guest clock rate ${r}`);
  });

  it('runs Node and our lvmlockd from the repo share', async () => {
    const n = await c.vm(1).execOk(['node', '--version']);
    assert.equal(n.stdout.trim(), process.version);
    const h = await c.vm(1).execOk(['/repo/bin/lvmlockd', '--version']);
    assert.ok(h.stdout.length > 0 || h.stderr.length > 0);
  });
});
