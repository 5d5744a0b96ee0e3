/**
 * leasectl: inspect and repair sanlock-format leases without any daemon.
 *
 *   leasectl direct <init|dump|read_leader|acquire_id|release_id|renew_id|acquire|release> [options]
 *
 * Same argument syntax and output as `sanlock direct`:
 *   -s LOCKSPACE:HOST_ID:PATH:OFFSET     lockspace (delta leases)
 *   -r LOCKSPACE:RESOURCE:PATH:OFFSET[:LVER]   resource (paxos lease)
 *   -i HOST_ID  -g GENERATION            identity for acquire/release
 *   -Z 512|4096  -A 1M|2M|4M|8M          sector and align size
 *   -o IO_TIMEOUT  -n NUM_HOSTS  -e HOST_NAME  -f FORCE_MODE (dump detail)  -z 1 (init: clear)
 */
import * as os from 'node:os';
import { RealClock } from '../io/clock';
import { DirectDisk } from '../io/direct-disk';
import { Disk, DiskError } from '../io/disk';
import { Lockspace, initLockspace, readDeltaLeader, readLeaseSizes } from '../leases/delta-lease';
import {
  directDump,
  formatLeader,
  parseDumpPath,
  parseLockspaceArg,
  parseResourceArg,
  LockspaceArg,
  ResourceArg,
} from '../leases/direct';
import { LeaseError, SANLK } from '../leases/errors';
import { decodeLeader, emptyLeader, LeaderRecord } from '../leases/ondisk';
import { acquireResource, directHost, initResource, readResourceLeader, releaseResourceDirect } from '../leases/paxos-lease';
import { systemRandom } from '../io/system-random';
import { SizeError, alignSizeOld, parseAlignSize } from '../leases/sizes';

interface Opts {
  action: string;
  dumpPath?: string;
  ls?: LockspaceArg;
  res?: ResourceArg;
  hostId: number;
  generation: number;
  sectorSize: number;
  alignSize: number;
  ioTimeout: number;
  numHosts: number;
  hostName?: string;
  forceMode: number;
  clear: boolean;
}

const USAGE = `Usage: leasectl direct <action> [options]
actions: init, dump, read_leader, acquire_id, release_id, renew_id, acquire, release
  -s LOCKSPACE:HOST_ID:PATH:OFFSET
  -r LOCKSPACE:RESOURCE:PATH:OFFSET[:LVER]
  -i HOST_ID -g GENERATION -Z SECTOR_SIZE -A ALIGN_SIZE(1M|2M|4M|8M)
  -o IO_TIMEOUT -n NUM_HOSTS -e HOST_NAME -f FORCE_MODE -z 1
dump: leasectl direct dump PATH[:OFFSET[:SIZE]] [-f N]
`;

class UsageError extends Error {}

export function parseArgs(argv: string[]): Opts {
  if (argv[0] !== 'direct' || !argv[1]) throw new UsageError(USAGE);
  const o: Opts = { action: argv[1], hostId: 0, generation: 0, sectorSize: 0, alignSize: 0, ioTimeout: 10, numHosts: 0, forceMode: 0, clear: false };
  let i = 2;
  if (o.action === 'dump') {
    if (!argv[i]) throw new UsageError('dump needs a path');
    o.dumpPath = argv[i++];
  }
  while (i < argv.length) {
    const p = argv[i++]!;
    if (p.length !== 2 || p[0] !== '-') throw new UsageError(`unknown option ${p}\nspace required before option value`);
    const v = argv[i++];
    if (v === undefined) throw new UsageError(`option '${p[1]}' requires arg`);
    switch (p[1]) {
      case 's':
        o.ls = parseLockspaceArg(v);
        break;
      case 'r':
        o.res = parseResourceArg(v);
        break;
      case 'i':
        o.hostId = Number(v);
        break;
      case 'g':
        o.generation = Number(v);
        break;
      case 'Z':
        o.sectorSize = Number(v);
        break;
      case 'A':
        o.alignSize = parseAlignSize(v);
        break;
      case 'o': {
        const n = Number(v);
        if (n > 0) o.ioTimeout = n;
        break;
      }
      case 'n':
        o.numHosts = Number(v);
        break;
      case 'e':
        o.hostName = v;
        break;
      case 'f':
        o.forceMode = Number(v);
        break;
      case 'z':
        o.clear = Number(v) !== 0;
        break;
      default:
        throw new UsageError(`unknown option: ${p[1]}`);
    }
  }
  for (const [k, n] of [['-i', o.hostId], ['-g', o.generation], ['-n', o.numHosts], ['-Z', o.sectorSize]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`invalid ${k} value`);
  }
  return o;
}

function rvOf(e: unknown): number {
  if (e instanceof LeaseError) return e.rv;
  if (e instanceof DiskError) return e.code === 'ENODEV' ? SANLK.ENODEV : e.code === 'ETIMEDOUT' ? SANLK.AIO_TIMEOUT : e.code === 'EINVAL' ? SANLK.EINVAL : SANLK.EIO;
  if (e instanceof SizeError || e instanceof RangeError) return SANLK.EINVAL;
  return -1;
}

async function withDisk<T>(path: string, fn: (d: Disk) => Promise<T>): Promise<T> {
  const d = await DirectDisk.open(path);
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

/** Run one command; returns exit code and writes output through `out`/`err`. */
export async function run(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  let o: Opts;
  try {
    o = parseArgs(argv);
  } catch (e) {
    err(`${(e as Error).message}\n`);
    return 1;
  }
  const clock = new RealClock();
  const random = systemRandom();
  let rv = 0;
  const report = (what: string, r: number, e?: unknown) => {
    out(`${what} done ${r}\n`);
    if (e && !(e instanceof LeaseError && e.rv === r && r === 0)) err(`${(e as Error).message}\n`);
  };
  try {
    switch (o.action) {
      case 'init': {
        try {
          if (o.ls) {
            const ls = o.ls;
            await withDisk(ls.path, async (d) => {
              const sector = o.sectorSize || d.sectorSize;
              await initLockspace(d, ls.offset, ls.name, { sectorSize: sector, alignSize: o.alignSize || alignSizeOld(sector), ioTimeout: o.ioTimeout });
            });
          } else if (o.res) {
            const r = o.res;
            await withDisk(r.path, async (d) => {
              const sector = o.sectorSize || d.sectorSize;
              await initResource(d, r.offset, r.lockspace, r.resource, {
                sectorSize: sector,
                alignSize: o.alignSize || alignSizeOld(sector),
                numHosts: o.numHosts,
                clear: o.clear,
                clock,
              });
            });
          } else {
            rv = SANLK.EINVAL;
            report('init', rv);
            break;
          }
          report('init', 0);
        } catch (e) {
          rv = rvOf(e);
          report('init', rv, e);
        }
        break;
      }
      case 'dump': {
        const dp = parseDumpPath(o.dumpPath!);
        try {
          await withDisk(dp.path, async (d) => {
            const r = await directDump(d, dp.offset, dp.size, {
              forceMode: o.forceMode,
              ...(o.sectorSize ? { sectorSize: o.sectorSize } : {}),
              ...(o.alignSize ? { alignSize: o.alignSize } : {}),
              ioTimeout: o.ioTimeout,
            });
            out(r.text);
            rv = r.rv;
          });
        } catch (e) {
          out(`Device ${dp.path} not found.\n`);
          err(`${(e as Error).message}\n`);
          rv = SANLK.ENODEV;
        }
        break;
      }
      case 'read_leader': {
        let leader: LeaderRecord = emptyLeader();
        const isLs = !!o.ls;
        try {
          if (o.ls) {
            const ls = o.ls;
            if (!ls.hostId) throw new LeaseError(SANLK.EINVAL, 'read_leader -s needs a host_id');
            await withDisk(ls.path, async (d) => {
              const g = o.sectorSize ? { sectorSize: o.sectorSize } : await readLeaseSizes(d, ls.offset, o.ioTimeout);
              try {
                leader = (await readDeltaLeader(d, ls.offset, g.sectorSize, ls.name, ls.hostId, o.ioTimeout)).leader;
              } catch (e) {
                // still print what is on disk, as sanlock does
                const raw = await d.read(ls.offset + (ls.hostId - 1) * g.sectorSize, g.sectorSize).catch(() => undefined);
                if (raw) leader = decodeLeader(raw);
                throw e;
              }
            });
          } else if (o.res) {
            const r = o.res;
            await withDisk(r.path, async (d) => {
              const sector = o.sectorSize || 4096;
              const ref = { disk: d, offset: r.offset, lockspace: r.lockspace, resource: r.resource, sectorSize: Math.max(sector, d.sectorSize), alignSize: o.alignSize || alignSizeOld(sector) };
              try {
                leader = (await readResourceLeader(ref, 0, o.ioTimeout)).leader;
              } catch (e) {
                const raw = await d.read(r.offset, Math.max(sector, d.sectorSize)).catch(() => undefined);
                if (raw) leader = decodeLeader(raw);
                throw e;
              }
            });
          } else throw new LeaseError(SANLK.EINVAL, 'read_leader needs -s or -r');
        } catch (e) {
          rv = rvOf(e);
          err(`${(e as Error).message}\n`);
        }
        out(`read_leader done ${rv}\n`);
        out(formatLeader(leader, isLs));
        break;
      }
      case 'acquire_id':
      case 'release_id':
      case 'renew_id': {
        const label = o.action === 'renew_id' ? 'rewew_id' : o.action; // sanlock 3.8.5 prints "rewew_id"
        try {
          const ls = o.ls;
          if (!ls) throw new LeaseError(SANLK.ENODEV, `${o.action} needs -s`);
          if (!ls.hostId) throw new LeaseError(SANLK.EINVAL, `${o.action} needs a host_id`);
          await withDisk(ls.path, async (d) => {
            const lsp = new Lockspace({
              disk: d,
              offset: ls.offset,
              name: ls.name,
              hostId: ls.hostId,
              clock,
              random,
              ioTimeout: o.ioTimeout,
              nodeName: os.hostname(),
              ...(o.hostName ? { hostName: o.hostName } : {}),
              ...(o.sectorSize && o.alignSize ? { sectorSize: o.sectorSize, alignSize: o.alignSize } : {}),
            });
            if (o.action === 'acquire_id') await lsp.acquire();
            else if (o.action === 'release_id') await lsp.release();
            else {
              await lsp.adoptCurrent();
              await lsp.renew();
            }
          });
          report(label, 0);
        } catch (e) {
          rv = rvOf(e);
          report(label, rv, e);
        }
        break;
      }
      case 'acquire':
      case 'release': {
        try {
          const r = o.res;
          if (!r) throw new LeaseError(SANLK.ENODEV, `${o.action} needs -r`);
          await withDisk(r.path, async (d) => {
            const ref = {
              disk: d,
              offset: r.offset,
              lockspace: r.lockspace,
              resource: r.resource,
              ...(o.sectorSize && o.alignSize ? { sectorSize: o.sectorSize, alignSize: o.alignSize } : {}),
            };
            const host = directHost(o.hostId, o.generation, clock, random, o.ioTimeout);
            if (o.action === 'acquire') {
              if (!o.hostId) throw new LeaseError(SANLK.EINVAL, 'acquire needs -i HOST_ID');
              await acquireResource(host, ref, { directMode: true, ...(r.lver ? { lver: r.lver } : {}), ...(o.numHosts ? { numHosts: o.numHosts } : {}) });
            } else {
              await releaseResourceDirect(host, ref);
            }
          });
          report(o.action, 0);
        } catch (e) {
          rv = rvOf(e);
          report(o.action, rv, e);
        }
        break;
      }
      default:
        err(`direct action "${o.action}" is unknown\n`);
        return 1;
    }
  } catch (e) {
    err(`${(e as Error).message}\n`);
    return 1;
  }
  return rv === 0 ? 0 : 1;
}

export function main(argv: string[]): void {
  run(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) main(process.argv.slice(2));
