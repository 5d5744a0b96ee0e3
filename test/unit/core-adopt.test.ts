// The core's startup adoption (lvmlockd's adopt_locks) with the test-mode
// managers: lockspaces started with adopt_only, LV locks adopted persistent in
// their recorded mode (retried once in the other mode), the VG and global
// locks tried sh then ex and released, orphans purged, failures counted.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CoreHarness, lockLv, startVg } from '../helpers/core-harness';
import { AF, E } from '../../src/core/constants';
import type { AdoptSummary, AdoptVg } from '../../src/core/adopt';
import type { LockResult, ManagedLockspace, ResourceView } from '../../src/lm/types';

const LV1 = 'uRgWe9-Ldt7-EKWj-dv0Z-Uhht-5eDW-ckQEub';
const LV2 = 'aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg';
const LV3 = 'hhhhhh-iiii-jjjj-kkkk-llll-mmmm-nnnnnn';
const VGU = 'Ome5tJ-6Zke-NCGg-9vgT-8pJf-XqVK-DuueRK';
const DEV = '/dev/mapper/vgs-lvmlock';

interface Call { res: string; mode: string; adoptOnly: boolean }

/**
 * A harness whose sanlock lockspaces answer adopt requests from `orphans`
 * (resource name → mode held by the "previous instance"), as the sanlock
 * manager does: other mode → -EADOPT_RETRY, none → -EADOPT_NONE.
 */
function harness(orphans: Record<string, 'sh' | 'ex'>, joinRv = 0) {
  const h = new CoreHarness({ devices: [DEV], hostId: 1 });
  const calls: Call[] = [];
  const purged: string[] = [];
  const m = h.managers.sanlock!;
  const create = m.createLockspace.bind(m);
  m.createLockspace = (view, events) => {
    const inner = create(view, events);
    const wrapped: ManagedLockspace = Object.create(inner) as ManagedLockspace;
    wrapped.join = async (o) => (o.adoptOnly && joinRv ? joinRv : inner.join(o));
    wrapped.lock = async (res: ResourceView, mode, o): Promise<LockResult> => {
      calls.push({ res: res.name, mode, adoptOnly: o.adoptOnly });
      if (o.adoptOnly) {
        const held = orphans[res.name];
        if (!held) return { rv: -E.ADOPT_NONE };
        if (held !== mode) return { rv: -E.ADOPT_RETRY };
        delete orphans[res.name];
      }
      return inner.lock(res, mode, o);
    };
    wrapped.purgeOrphans = async () => { purged.push(...Object.keys(orphans)); const n = Object.keys(orphans).length; for (const k of Object.keys(orphans)) delete orphans[k]; return n; };
    return wrapped;
  };
  return { h, calls, purged };
}

async function run(h: CoreHarness, vgs: AdoptVg[]): Promise<AdoptSummary> {
  let out: AdoptSummary | undefined;
  void h.core.adoptLocks(vgs).then((s) => { out = s; });
  for (let i = 0; i < 20 && !out; i++) await h.settle();
  assert.ok(out, 'adoption finished\n' + h.log.slice(-30).join('\n'));
  return out;
}

const vgs = (): AdoptVg[] => [{
  vgUuid: VGU, vgName: 'vgs', lmType: 'sanlock', vgArgs: '1.0.0:lvmlock', hostId: 1,
  lvs: [{ uuid: LV1, lvArgs: '1.0.0:70254592', mode: 'ex' }, { uuid: LV2, lvArgs: '1.0.0:71303168', mode: 'ex' }],
}];

describe('core: adoption at daemon start', () => {
  test('LV locks adopted persistent (other mode on -EADOPT_RETRY), VG lock adopted ex after sh and released, rest purged', async () => {
    // LV2 was recorded ex but is held sh; the VG lock was held ex; LV3 (not recorded) is an orphan too.
    const { h, calls, purged } = harness({ [LV1]: 'ex', [LV2]: 'sh', VGLK: 'ex', [LV3]: 'sh' });
    const sum = await run(h, vgs());
    assert.deepEqual(sum, { started: 1, adopted: 2, purged: 1, failures: 0 }, h.log.join('\n'));
    assert.deepEqual(purged, [LV3]);
    const start = h.log.find((l) => /lm_add_lockspace sanlock/.test(l));
    assert.match(start ?? '', /adopt_only 1/);
    assert.deepEqual(calls.filter((c) => c.res === LV2).map((c) => c.mode), ['ex', 'sh']);
    assert.deepEqual(calls.filter((c) => c.res === 'VGLK').map((c) => c.mode), ['sh', 'ex']);
    assert.ok(calls.filter((c) => c.res !== 'GLLK').every((c) => c.adoptOnly));
    assert.ok(h.log.includes(`adopt success lv vgs ${LV2} sh`));
    assert.ok(h.log.includes('ERROR adopt releasing ex vg lock vgs'));
    assert.ok(h.log.includes('adopt_locks done'));

    const info = h.info();
    assert.match(info, new RegExp(`info=r name=${LV1} type=lv mode=ex `));
    assert.match(info, new RegExp(`info=r name=${LV2} type=lv mode=sh `));
    assert.match(info, /info=r name=VGLK type=vg mode=un /);
    assert.equal((info.match(/info=lk mode=(ex|sh) version=0 flags=0x1 client_id=0/g) ?? []).length, 2, info);

    // lvchange -an (a persistent unlock) of a client releases the adopted lock.
    const a = h.connect();
    assert.equal((await h.req(a, lockLv('vgs', LV1, 'un', 'persistent'))).opResult, 0);
    assert.doesNotMatch(h.info(), new RegExp(`name=${LV1}`));
    // A client's transient lock of an adopted sh LV is answered from the existing persistent lock.
    assert.equal((await h.req(a, lockLv('vgs', LV2, 'sh'))).opResult, 0);
  });

  test('failures: an LV with no orphan, a lockspace that cannot be continued, an unusable lock type', async () => {
    const { h } = harness({ [LV1]: 'ex' });
    const sum = await run(h, vgs());
    assert.equal(sum.adopted, 1);
    assert.equal(sum.failures, 1);
    assert.ok(h.log.includes(`ERROR Failed to adopt LV lock for vgs ${LV2} error -${E.ADOPT_NONE}`), h.log.join('\n'));
    assert.ok(h.log.some((l) => /Did not adopt vg lock in vg vgs error -223/.test(l)));
    assert.ok(h.log.includes('ERROR adopt_locks failed, reset host (1 failures)'));

    const n = harness({}, -E.ADOPT_NONE);
    n.h.devices.add('/dev/mapper/quiet-lvmlock');
    const s2 = await run(n.h, [
      ...vgs(),
      { vgUuid: 'x', vgName: 'quiet', lmType: 'sanlock', vgArgs: '1.0.0:lvmlock', lvs: [] },
      { vgUuid: 'y', vgName: 'vgd', lmType: 'dlm', vgArgs: '1.0.0:test', lvs: [{ uuid: LV3, lvArgs: '', mode: 'ex' }] },
    ]);
    assert.deepEqual(s2, { started: 0, adopted: 0, purged: 0, failures: 2 }, n.h.log.join('\n'));
    assert.ok(n.h.log.includes('ERROR No lockspace lvm_vgs sanlock found for VG vgs with active LVs'));
    assert.ok(n.h.log.includes('No ls found for vg quiet'));
    assert.ok(n.h.log.some((l) => /adopt vg vgd: lock type dlm cannot be adopted/.test(l)));
    await n.h.settle();
    assert.equal(n.h.core.lockspaces.filter((l) => !l.threadDone).length, 0, 'nothing left started');
  });

  test('nothing recorded: nothing started; adopt flags from a client start reach the manager', async () => {
    const { h } = harness({});
    assert.deepEqual(await run(h, []), { started: 0, adopted: 0, purged: 0, failures: 0 });
    assert.ok(h.log.includes('No lockspaces in adopt file'));
    const a = h.connect();
    const r = await h.req(a, startVg('vgs', 'sanlock').map(([k, v]) => (k === 'opts' ? ['opts', 'adopt,nodelay'] as const : [k, v] as const)));
    assert.equal(r.opResult, 0);
    assert.ok(h.log.some((l) => /lm_add_lockspace sanlock act 1 wait 0 adopt_only 0 adopt_ok 1/.test(l)), h.log.join('\n'));
    assert.equal(AF.ADOPT_ONLY & AF.ADOPT, 0);
  });
});
