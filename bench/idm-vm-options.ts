// Knobs of the IDM VM bench (bench/idm-vm.ts): defaults, command-line parsing
// and validation, apart from the bench so that a bad value is refused with one
// sentence and exit 2 before any VM boots (tested in test/unit/bench-idm-vm.test.ts).

import { IdmBenchUsageError, checkKillDriveInRun, parseDrives, parseIdmBenchArgs } from './idm-options';
import { parseKillDrive, type KillDrive } from './idm-report';
import { describeKnob, knobAccepts, type NumberKnob } from './number-knob';

export { IdmBenchUsageError } from './idm-options';

export interface IdmVmBenchOptions {
  /** drive counts of the IDM VGs; the VGs share the first max(drives) TCMU disks */
  drives: number[];
  /** also measure a sanlock VG (our daemon, own lease engine) in the same VMs */
  sanlock: boolean;
  /** lvchange hand-overs per config (vm1 -aey, -an, vm2 -aey, -an) */
  lvReps: number;
  /** lock_lv loop rounds per config */
  rawRounds: number;
  /** measured seconds per lock_lv round */
  rawSeconds: number;
  /** warm-up seconds before each lock_lv round */
  warmupSeconds: number;
  /** sanlock io_timeout of the daemons (-o) */
  io: number;
  /** fault injection to check the section's failure path */
  killDrive: KillDrive | null;
  keep: boolean;
  verbose: boolean;
}

export const IDM_VM_DEFAULTS: IdmVmBenchOptions = {
  drives: [1, 3, 5],
  sanlock: true,
  lvReps: 5,
  rawRounds: 2,
  rawSeconds: 5,
  warmupSeconds: 1,
  io: 2,
  killDrive: null,
  keep: false,
  verbose: true,
};

/** One virtio disk per drive (vdb...) and WWNs with a one-digit drive index: at most 8 drives. */
export const IDM_VM_DRIVES_MAX = 8;

export const IDM_VM_USAGE = [
  'usage: node dist/bench/idm-vm.js [--drives N,N,...] [--lv-reps N] [--raw-rounds N] [--raw-seconds S] [--warmup S]',
  '                                 [--io S] [--kill-drive N:I:S] [--no-sanlock] [--keep] [--quiet]',
  `  --drives N,...     drive counts of the IDM VGs (TCMU SCSI disks); distinct integers 1-${IDM_VM_DRIVES_MAX}, default ${IDM_VM_DEFAULTS.drives.join(',')}`,
  `  --lv-reps N        lvchange hand-overs per VG (4 commands each); integer 1-1000, default ${IDM_VM_DEFAULTS.lvReps}`,
  `  --raw-rounds N     lock_lv loop rounds per VG; integer 1-100, default ${IDM_VM_DEFAULTS.rawRounds}`,
  `  --raw-seconds S    measured seconds per lock_lv round; number > 0 and <= 600, default ${IDM_VM_DEFAULTS.rawSeconds}`,
  `  --warmup S         warm-up seconds before each lock_lv round; number >= 0 and <= 60, default ${IDM_VM_DEFAULTS.warmupSeconds}`,
  `  --io S             sanlock io_timeout of the daemons (-o); integer 1-60, default ${IDM_VM_DEFAULTS.io}`,
  '  --kill-drive N:I:S kill drive I of the N-drive VG (its firmware process in vm1) S seconds into the measurements',
  '  --no-sanlock       leave out the sanlock VG measured for comparison',
  '  --keep             keep the VM cluster temp dir (guest logs)',
  '  --quiet            no progress lines on stderr',
].join('\n');

type Key = 'lvReps' | 'rawRounds' | 'rawSeconds' | 'warmupSeconds' | 'io';
const RULES: Array<NumberKnob<Key>> = [
  { key: 'lvReps', flag: '--lv-reps', integer: true, min: 1, exclusiveMin: false, max: 1000 },
  { key: 'rawRounds', flag: '--raw-rounds', integer: true, min: 1, exclusiveMin: false, max: 100 },
  { key: 'rawSeconds', flag: '--raw-seconds', integer: false, min: 0, exclusiveMin: true, max: 600 },
  { key: 'warmupSeconds', flag: '--warmup', integer: false, min: 0, exclusiveMin: false, max: 60 },
  { key: 'io', flag: '--io', integer: true, min: 1, exclusiveMin: false, max: 60 },
];

/** Command-line arguments to options, every value checked; throws IdmBenchUsageError. */
export function parseIdmVmArgs(argv: string[]): IdmVmBenchOptions {
  return parseIdmBenchArgs(argv, IDM_VM_DEFAULTS, RULES, IDM_VM_DRIVES_MAX);
}

/** Defaults merged with `o` (from a caller, not the command line), every value checked; throws IdmBenchUsageError. */
export function validateIdmVmOptions(o: Partial<IdmVmBenchOptions> = {}): IdmVmBenchOptions {
  const out: IdmVmBenchOptions = { ...IDM_VM_DEFAULTS, drives: [...IDM_VM_DEFAULTS.drives] };
  for (const [k, v] of Object.entries(o) as Array<[keyof IdmVmBenchOptions, unknown]>) {
    if (v === undefined) continue;
    if (!(k in IDM_VM_DEFAULTS)) throw new IdmBenchUsageError(`unknown option ${JSON.stringify(k)}`);
    const rule = RULES.find((r) => r.key === k);
    if (rule) {
      if (!knobAccepts(rule, v)) throw new IdmBenchUsageError(`${rule.flag} must be ${describeKnob(rule)}, got ${JSON.stringify(v) ?? String(v)}`);
      out[rule.key] = v;
    } else if (k === 'drives') {
      if (!Array.isArray(v)) throw new IdmBenchUsageError(`drives must be a list of drive counts, got ${JSON.stringify(v)}`);
      out.drives = parseDrives(v.map(String).join(','), IDM_VM_DRIVES_MAX);
    } else if (k === 'killDrive') {
      const kd = v as Partial<KillDrive> | null;
      if (kd !== null) {
        try { out.killDrive = parseKillDrive(`${kd.drives}:${kd.index}:${kd.afterSeconds}`); } catch (e) { throw new IdmBenchUsageError((e as Error).message); }
      }
    } else if (typeof v !== 'boolean') {
      throw new IdmBenchUsageError(`option ${k} must be true or false, got ${JSON.stringify(v)}`);
    } else {
      (out as unknown as Record<string, unknown>)[k] = v;
    }
  }
  checkKillDriveInRun(out);
  return out;
}
