// Knobs of the IDM bench (bench/idm.ts): defaults, command-line parsing and
// validation, apart from the bench so that a bad value is refused with one
// sentence and exit 2 before any namespace host or drive starts.

import { parseKillDrive, type KillDrive } from './idm-report';
import { describeKnob, knobValue, type NumberKnob } from './number-knob';

export interface IdmBenchOptions {
  /** drive counts of the IDM VGs */
  drives: number[];
  /** also measure a sanlock VG (our daemon, own lease engine) */
  sanlock: boolean;
  /** lvchange hand-overs per config (A -aey, A -an, B -aey, B -an) */
  lvReps: number;
  /** lock_lv loop rounds per config */
  rawRounds: number;
  /** seconds per lock_lv round */
  rawSeconds: number;
  /** sanlock io_timeout of the sanlock side (-o) */
  io: number;
  /** fault injection to check the section's failure path */
  killDrive: KillDrive | null;
  keep: boolean;
  verbose: boolean;
}

export const IDM_DEFAULTS: IdmBenchOptions = {
  drives: [1, 3, 5],
  sanlock: true,
  lvReps: 10,
  rawRounds: 2,
  rawSeconds: 2,
  io: 1,
  killDrive: null,
  keep: false,
  verbose: true,
};

/** The most drives one VG of the bench may have: each is a process and a file. */
export const IDM_DRIVES_MAX = 16;

export const IDM_USAGE = [
  'usage: node dist/bench/idm.js [--drives N,N,...] [--lv-reps N] [--raw-rounds N] [--raw-seconds S] [--io S]',
  '                              [--kill-drive N:I:S] [--no-sanlock] [--keep] [--quiet]',
  `  --drives N,...     drive counts of the IDM VGs; distinct integers 1-${IDM_DRIVES_MAX}, default ${IDM_DEFAULTS.drives.join(',')}`,
  `  --lv-reps N        lvchange hand-overs per VG (4 commands each); integer 1-1000, default ${IDM_DEFAULTS.lvReps}`,
  `  --raw-rounds N     lock_lv loop rounds per VG; integer 1-100, default ${IDM_DEFAULTS.rawRounds}`,
  `  --raw-seconds S    seconds per lock_lv round; number > 0 and <= 600, default ${IDM_DEFAULTS.rawSeconds}`,
  `  --io S             sanlock io_timeout of the sanlock VG; integer 1-60, default ${IDM_DEFAULTS.io}`,
  '  --kill-drive N:I:S kill drive I of the N-drive VG S seconds into its lock_lv loop (checks the failure path)',
  '  --no-sanlock       leave out the sanlock VG measured for comparison',
  '  --keep             keep the temp dir (logs, drive state files)',
  '  --quiet            no progress lines on stderr',
].join('\n');

/** A knob value or flag that the bench refuses; the message says which and why. */
export class IdmBenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdmBenchUsageError';
  }
}

const RULES: Array<NumberKnob<'lvReps' | 'rawRounds' | 'rawSeconds' | 'io'>> = [
  { key: 'lvReps', flag: '--lv-reps', integer: true, min: 1, exclusiveMin: false, max: 1000 },
  { key: 'rawRounds', flag: '--raw-rounds', integer: true, min: 1, exclusiveMin: false, max: 100 },
  { key: 'rawSeconds', flag: '--raw-seconds', integer: false, min: 0, exclusiveMin: true, max: 600 },
  { key: 'io', flag: '--io', integer: true, min: 1, exclusiveMin: false, max: 60 },
];

/** `--drives 1,3,5`: distinct integers 1-`max`; throws IdmBenchUsageError. */
export function parseDrives(text: string, max = IDM_DRIVES_MAX): number[] {
  const bad = (why: string): never => {
    throw new IdmBenchUsageError(`--drives wants distinct integers 1-${max} separated by commas (${why}), got ${JSON.stringify(text)}`);
  };
  const parts = text.split(',');
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) bad(p === '' ? 'an empty item' : `${JSON.stringify(p)} is not an integer`);
    const n = Number(p);
    if (n < 1 || n > max) bad(`${n} is out of range`);
    if (out.includes(n)) bad(`${n} twice`);
    out.push(n);
  }
  return out;
}

/** The options both IDM benches (socket and VM) share, as the argument parser sees them. */
export interface IdmArgsShape {
  drives: number[];
  sanlock: boolean;
  killDrive: KillDrive | null;
  keep: boolean;
  verbose: boolean;
}

/**
 * Command-line arguments over `defaults`, every value checked against `rules`
 * (and --drives against `drivesMax`); throws IdmBenchUsageError. Shared by the
 * socket bench and the VM bench, which differ only in knobs and limits.
 */
export function parseIdmBenchArgs<O extends IdmArgsShape & Record<K, number>, K extends keyof O & string>(
  argv: string[], defaults: O, rules: Array<NumberKnob<K>>, drivesMax: number,
): O {
  const o: O = { ...defaults, drives: [...defaults.drives] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--keep') { o.keep = true; continue; }
    if (a === '--quiet') { o.verbose = false; continue; }
    if (a === '--no-sanlock') { o.sanlock = false; continue; }
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const known = flag === '--drives' || flag === '--kill-drive' || rules.some((r) => r.flag === flag);
    if (!known) throw new IdmBenchUsageError(`unknown argument ${JSON.stringify(a)}`);
    let text: string | undefined;
    if (eq > 0 && a.startsWith('--')) text = a.slice(eq + 1);
    else {
      text = argv[i + 1];
      if (text === undefined || text.startsWith('--')) throw new IdmBenchUsageError(`${flag} needs a value`);
      i++;
    }
    if (flag === '--drives') { o.drives = parseDrives(text, drivesMax); continue; }
    if (flag === '--kill-drive') {
      try { o.killDrive = parseKillDrive(text); } catch (e) { throw new IdmBenchUsageError((e as Error).message); }
      continue;
    }
    const rule = rules.find((r) => r.flag === flag)!;
    const v = knobValue(rule, text);
    if (v === null) throw new IdmBenchUsageError(`${rule.flag} must be ${describeKnob(rule)}, got ${JSON.stringify(text)}`);
    o[rule.key] = v as O[K];
  }
  checkKillDriveInRun(o);
  return o;
}

/** --kill-drive must name a VG of this run. */
export function checkKillDriveInRun(o: { drives: number[]; killDrive: KillDrive | null }): void {
  if (o.killDrive && !o.drives.includes(o.killDrive.drives)) {
    throw new IdmBenchUsageError(`--kill-drive ${o.killDrive.drives}:…: no VG of ${o.killDrive.drives} drives in this run (--drives ${o.drives.join(',')})`);
  }
}

/** Command-line arguments to options, every value checked; throws IdmBenchUsageError. */
export function parseIdmArgs(argv: string[]): IdmBenchOptions {
  return parseIdmBenchArgs(argv, IDM_DEFAULTS, RULES, IDM_DRIVES_MAX);
}
