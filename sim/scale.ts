/**
 * Scale mode: one lockspace with up to 2000 hosts (512-byte sectors, 1 MiB
 * align: sanlock's 2000-host layout) and up to 10,000 LV leases at
 * lvmlockd's offsets (LV_LOCK_BEGIN + i MiB) on a sparse simulated LUN.
 * Every host runs the real delta lease with its renewal loop; random hosts
 * acquire and release random LV leases (ex, as `lvchange -aey` does).
 *
 * Costs are process CPU time: joining every host; one simulated second of
 * the renewal load of every host (idle phase); and per acquire+release pair
 * of an LV lease (renewal loops stopped, so the figure is the ops' own),
 * with the I/O each op does. Both are printed for a grid of host counts and LV counts.
 */
import { Lockspace, initLockspace } from '../src/leases/delta-lease';
import { LV_LOCK_BEGIN } from '../src/leases/direct';
import { acquireResource, initResource, paxosHostFor, releaseResource } from '../src/leases/paxos-lease';
import { LeaseError, SANLK } from '../src/leases/errors';
import { SimHost } from './kernel/host';
import { Rng } from './kernel/rng';
import { Scheduler } from './kernel/scheduler';
import { SimStorage } from './kernel/storage';

const MiB = 1 << 20;
const SECTOR = 512;
const ALIGN = MiB;
/** Ops start within this many ms after the renewals stopped (see the op phase). */
const OP_WINDOW_MS = 40_000;
/** Lease results meaning "another host holds (or just took) this lease". */
const HELD_ELSEWHERE = new Set<number>([SANLK.ACQUIRE_IDLIVE, SANLK.ACQUIRE_OWNED, SANLK.ACQUIRE_OTHER, SANLK.ACQUIRE_OWNED_RETRY, SANLK.EAGAIN]);

export interface ScaleRow {
  hosts: number;
  lvs: number;
  joinWallMs: number;
  idleWallMsPerSimS: number;
  ops: number;
  opWallUs: number;
  readsPerOp: number;
  writesPerOp: number;
  kibReadPerOp: number;
  errors: number;
  /** Acquires refused because another host held or was taking the same LV lease at that moment. */
  busy: number;
  /** Each distinct error message of the op phase, with its count. */
  errorKinds: string[];
  allocatedMiB: number;
  /** Process RSS and V8 heap in use right after every host joined. */
  rssMiB: number;
  heapMiB: number;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** One measurement: `hosts` hosts joined to one lockspace, `lvs` LV leases, `ops` acquire+release pairs. */
export async function scalePoint(hosts: number, lvs: number, ops: number, seed: number): Promise<ScaleRow> {
  const sim = new Scheduler();
  sim.traceLimit = 100;
  const rng = new Rng(seed).fork(`scale-${hosts}-${lvs}`);
  const io = 10;
  const storage = new SimStorage(sim, rng.fork('disk'), (LV_LOCK_BEGIN + lvs) * ALIGN, SECTOR, 4096);
  const setup = new SimHost(sim, 0, 0, 1);
  const disk0 = storage.diskFor(setup, 'sim:setup');
  let ready = false;
  void (async () => {
    await initLockspace(disk0, 0, 'lvm_scale', { sectorSize: SECTOR, alignSize: ALIGN, ioTimeout: io });
    for (let i = 0; i < lvs; i++) {
      await initResource(disk0, (LV_LOCK_BEGIN + i) * ALIGN, 'lvm_scale', `lv${i}`, { sectorSize: SECTOR, alignSize: ALIGN });
    }
    ready = true;
  })();
  await sim.run(Number.MAX_SAFE_INTEGER, () => undefined, () => ready);

  // Join every host (staggered over 10 s, as lock-start on a cluster would be).
  const t0 = cpuMs();
  const spaces: Lockspace[] = [];
  let joined = 0;
  for (let h = 1; h <= hosts; h++) {
    const host = new SimHost(sim, h, rng.range(0, 1e9), 1);
    const ls = new Lockspace({
      disk: storage.diskFor(host), offset: 0, name: 'lvm_scale', hostId: h, clock: host.clock, random: rng.fork(`h${h}`),
      hostName: `scale-host-${h}`, ioTimeout: io, sectorSize: SECTOR, alignSize: ALIGN,
    });
    spaces.push(ls);
    host.at(sim.now + rng.range(0, 10_000), () => {
      void ls.acquire().then(() => {
        joined++;
        ls.startRenewal();
      });
    });
  }
  await sim.run(sim.now + 600_000, () => undefined, () => joined === hosts);
  if (joined !== hosts) throw new Error(`scale: only ${joined}/${hosts} hosts joined`);
  const joinWallMs = cpuMs() - t0;
  const mem = process.memoryUsage();

  // Idle phase: renewals only.
  const phaseMs = 60_000;
  let w = cpuMs();
  await sim.run(sim.now + phaseMs, () => undefined);
  const idleMs = cpuMs() - w;

  // Op phase: `ops` acquire+release pairs with the renewal loops stopped, so
  // that the CPU time measured is the operations' own (renewal cost is the idle figure).
  // The ops start within OP_WINDOW_MS: a host whose last renewal is
  // id_renewal_fail_seconds old (8 * io = 80 s) refuses to acquire ("our host_id
  // lease is not current", as it must), and the last renewal before the stop can
  // be id_renewal_seconds (2 * io = 20 s) old, so 20 + 5 + 40 s leaves 15 s.
  for (const ls of spaces) void ls.stopRenewal();
  await sim.run(sim.now + 5000, () => undefined);
  const s0 = { ...storage.stats };
  let done = 0;
  let errors = 0;
  let busy = 0;
  const errorKinds = new Map<string, number>();
  for (let i = 0; i < ops; i++) {
    const ls = spaces[rng.int(hosts)]!;
    const lv = rng.int(lvs);
    sim.at(sim.now + rng.range(0, OP_WINDOW_MS), () => {
      const px = paxosHostFor(ls);
      const ref = { disk: ls.disk, offset: (LV_LOCK_BEGIN + lv) * ALIGN, lockspace: 'lvm_scale', resource: `lv${lv}`, sectorSize: SECTOR, alignSize: ALIGN };
      void acquireResource(px, ref, { mode: 'ex', ownerNowait: true })
        .then((lease) => releaseResource(px, lease))
        .catch((e: unknown) => {
          // Two hosts that pick the same LV at the same time: one gets it, the other is told
          // who holds it (lvmlockd answers "held by another host"). That is contention, not an error.
          if (e instanceof LeaseError && HELD_ELSEWHERE.has(e.rv)) {
            busy++;
            return;
          }
          errors++;
          const msg = e instanceof Error ? e.message : String(e);
          errorKinds.set(msg, (errorKinds.get(msg) ?? 0) + 1);
        })
        .finally(() => {
          done++;
        });
    });
  }
  w = cpuMs();
  await sim.run(sim.now + phaseMs, () => undefined);
  const opsMs = cpuMs() - w;
  const s2 = storage.stats;
  const opReads = s2.reads - s0.reads;
  const opWrites = s2.writes - s0.writes;
  const opBytes = s2.bytesRead - s0.bytesRead;
  return {
    hosts,
    lvs,
    joinWallMs,
    idleWallMsPerSimS: idleMs / (phaseMs / 1000),
    ops: done,
    opWallUs: (opsMs / Math.max(1, done)) * 1000,
    readsPerOp: opReads / Math.max(1, done),
    writesPerOp: opWrites / Math.max(1, done),
    kibReadPerOp: opBytes / 1024 / Math.max(1, done),
    errors,
    busy,
    errorKinds: [...errorKinds].map(([m, n]) => `${n}x ${m}`),
    allocatedMiB: storage.allocatedBytes() / MiB,
    rssMiB: mem.rss / MiB,
    heapMiB: mem.heapUsed / MiB,
  };
}

export async function runScale(o: { hosts: number; lvs: number; seed: number; json: boolean; ops?: number }): Promise<ScaleRow[]> {
  const hostSteps = [...new Set([10, 100, 500, Math.min(2000, o.hosts), o.hosts].filter((h) => h <= o.hosts && h >= 1))].sort((a, b) => a - b);
  const lvSteps = [...new Set([100, 1000, o.lvs].filter((l) => l <= o.lvs && l >= 1))].sort((a, b) => a - b);
  const ops = o.ops ?? 400;
  const rows: ScaleRow[] = [];
  const print = (r: ScaleRow) => {
    if (o.json) return;
    console.log(
      `${String(r.hosts).padStart(5)} ${String(r.lvs).padStart(6)} ${r.joinWallMs.toFixed(0).padStart(8)} ${r.idleWallMsPerSimS.toFixed(1).padStart(10)} ` +
        `${String(r.ops).padStart(5)} ${r.opWallUs.toFixed(0).padStart(9)} ${r.readsPerOp.toFixed(1).padStart(6)} ${r.writesPerOp.toFixed(1).padStart(6)} ${r.kibReadPerOp.toFixed(0).padStart(8)} ${String(r.errors).padStart(5)} ${String(r.busy).padStart(5)} ${r.rssMiB.toFixed(0).padStart(6)} ${r.heapMiB.toFixed(0).padStart(7)}`,
    );
    for (const k of r.errorKinds) console.log(`      error: ${k}`);
  };
  if (!o.json) console.log('hosts    LVs  join_ms  idle_ms/s   ops  op_cpu_us reads writes  KiB_read  errs  busy rss_MiB heap_MiB');
  // Grow hosts at the largest LV count, then LVs at the largest host count.
  for (const h of hostSteps) {
    const r = await scalePoint(h, o.lvs, ops, o.seed);
    rows.push(r);
    print(r);
  }
  for (const l of lvSteps) {
    if (l === o.lvs) continue;
    const r = await scalePoint(o.hosts, l, ops, o.seed);
    rows.push(r);
    print(r);
  }
  if (o.json) console.log(JSON.stringify(rows));
  return rows;
}
