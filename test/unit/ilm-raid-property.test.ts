// Safety of the ILM's majority locking over emulated drives, under faults:
// random schedules of three hosts locking, renewing, unlocking and crashing
// (a crashed host just stops renewing; its entries stay on the drives), drives
// going down and coming back, and time passing. The property: when a host is
// granted ex, every other host that still believes it holds ex has not
// renewed successfully for a whole countdown (measured from the start of its
// last successful acquire or renewal, when its drive entries were refreshed).
// That is what lets the kill path (50 s of failed renewal, plus at most 5 s of
// retries) stop the old holder before the 60 s countdown lets another host in.
// The same schedule against a firmware that breaks live holders must fail,
// which shows the property can catch a broken drive.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RaidLock } from '../../src/ilm/raid-lock';
import { ManualClock, inProcessDrives } from '../helpers/idm-inprocess';

const EX = 1;
const COUNTDOWN_MS = 3000;
const LOCK_ID = Buffer.alloc(64, 0x51);

type Step =
  | { kind: 'lock' | 'renew' | 'unlock' | 'crash'; host: number }
  | { kind: 'drive'; drive: number; down: boolean }
  | { kind: 'wait'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constantFrom('lock' as const, 'renew' as const, 'renew' as const, 'unlock' as const, 'crash' as const), host: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('drive' as const), drive: fc.integer({ min: 0, max: 4 }), down: fc.boolean() }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 4000 }) }),
);

interface HostState { raid: RaidLock; holding: boolean; crashed: boolean; refreshedFrom: number }

/** Runs a schedule; returns a description of the first violation, or null. */
async function run(driveCount: number, steps: Step[], breakLiveHolders: boolean): Promise<string | null> {
  const clock = new ManualClock();
  const { drives, lockDrives } = inProcessDrives(driveCount, clock);
  if (breakLiveHolders) {
    for (const d of drives) {
      // A broken firmware: BREAK ignores whether the holders are still alive.
      const fw = d.target.firmware as unknown as { expired: () => boolean };
      fw.expired = () => true;
    }
  }
  const hosts: HostState[] = [0, 1, 2].map((h) => ({
    raid: new RaidLock({ lockId: LOCK_ID, hostId: Buffer.alloc(32, h + 1), mode: EX, timeoutMs: COUNTDOWN_MS, drives: lockDrives, failedDrives: 0 }, clock),
    holding: false, crashed: false, refreshedFrom: 0,
  }));
  for (const s of steps) {
    if (s.kind === 'wait') { clock.ms += s.ms; continue; }
    if (s.kind === 'drive') { const d = drives[s.drive % driveCount]!; d.down = s.down; continue; }
    const h = hosts[s.host]!;
    if (h.crashed) continue;
    const started = clock.ms;
    if (s.kind === 'crash') { h.crashed = true; continue; }
    if (s.kind === 'lock' && !h.holding) {
      if (await h.raid.lock() === 0) {
        for (const [i, other] of hosts.entries()) {
          if (other === h || !other.holding) continue;
          if (clock.ms <= other.refreshedFrom + COUNTDOWN_MS) {
            return `host ${s.host} got ex at ${clock.ms} while host ${i} holds it, refreshed from ${other.refreshedFrom}`;
          }
        }
        h.holding = true;
        h.refreshedFrom = started;
      }
    } else if (s.kind === 'renew' && h.holding) {
      if (await h.raid.renew() === 0) h.refreshedFrom = started;
    } else if (s.kind === 'unlock' && h.holding) {
      await h.raid.unlock();
      await h.raid.destroy();
      h.holding = false;
    }
  }
  return null;
}

const schedule = fc.record({ driveCount: fc.integer({ min: 1, max: 5 }), steps: fc.array(step, { minLength: 5, maxLength: 40 }) });

test('ILM raid lock: no host is granted ex while another holder\'s last refresh is younger than the countdown (drive loss, crashes, time)', async () => {
  await fc.assert(fc.asyncProperty(schedule, async ({ driveCount, steps }) => {
    const v = await run(driveCount, steps, false);
    assert.equal(v, null);
  }), { numRuns: 100 });
});

test('the property catches a firmware that breaks live holders', async () => {
  const found = await fc.check(fc.asyncProperty(schedule, async ({ driveCount, steps }) => {
    return (await run(driveCount, steps, true)) === null;
  }), { numRuns: 200 });
  assert.equal(found.failed, true, 'a schedule where the broken firmware lets two hosts hold ex');
});
