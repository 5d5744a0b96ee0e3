// Knobs of the dlm VM bench (bench/dlm-vm.ts): defaults, command-line parsing
// and validation. Kept apart from the bench so that a bad value is refused
// with a clear message before anything boots (and is testable without VMs).

import { describeKnob, knobAccepts, knobValue, type NumberKnob } from './number-knob';

export interface DlmVmBenchOptions {
  /** rounds; each round runs both daemons, the first daemon alternating */
  rounds: number;
  /** measured seconds of each lock_lv loop (local, refused) per side and round */
  seconds: number;
  /** warm-up seconds before each measured loop */
  warmupSeconds: number;
  /** measured lock_lv hand-overs between the VMs per side and round */
  handovers: number;
  /** lvchange hand-overs per side and round (vm1 -aey, -an, vm2 -aey, -an) */
  lvchangeReps: number;
  /** keep the cluster's temp dir (guest logs, commands.log) */
  keep: boolean;
  /** progress lines on stderr */
  verbose: boolean;
}

export const DLM_VM_DEFAULTS: DlmVmBenchOptions = {
  rounds: 2,
  seconds: 5,
  warmupSeconds: 1,
  handovers: 200,
  lvchangeReps: 10,
  keep: false,
  verbose: true,
};

export const DLM_VM_USAGE = [
  'usage: node dist/bench/dlm-vm.js [--rounds R] [--seconds S] [--warmup S] [--handovers N] [--lvchange-reps N] [--keep] [--quiet]',
  `  --rounds R         rounds, each runs ours and C (first daemon alternates); integer 1-20, default ${DLM_VM_DEFAULTS.rounds}`,
  `  --seconds S        measured seconds of each lock_lv loop; number > 0 and <= 600, default ${DLM_VM_DEFAULTS.seconds}`,
  `  --warmup S         warm-up seconds before each loop; number >= 0 and <= 60, default ${DLM_VM_DEFAULTS.warmupSeconds}`,
  `  --handovers N      lock_lv hand-overs between the VMs per side and round; integer 1-100000, default ${DLM_VM_DEFAULTS.handovers}`,
  `  --lvchange-reps N  lvchange hand-overs per side and round (4 commands each); integer 1-1000, default ${DLM_VM_DEFAULTS.lvchangeReps}`,
  '  --keep             keep the VM cluster temp dir (logs)',
  '  --quiet            no progress lines on stderr',
].join('\n');

/** A knob value or flag that the bench refuses; the message says which and why. */
export class DlmBenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DlmBenchUsageError';
  }
}

const RULES: Array<NumberKnob<keyof DlmVmBenchOptions>> = [
  { key: 'rounds', flag: '--rounds', integer: true, min: 1, exclusiveMin: false, max: 20 },
  { key: 'seconds', flag: '--seconds', integer: false, min: 0, exclusiveMin: true, max: 600 },
  { key: 'warmupSeconds', flag: '--warmup', integer: false, min: 0, exclusiveMin: false, max: 60 },
  { key: 'handovers', flag: '--handovers', integer: true, min: 1, exclusiveMin: false, max: 100_000 },
  { key: 'lvchangeReps', flag: '--lvchange-reps', integer: true, min: 1, exclusiveMin: false, max: 1000 },
];

function checkNumber(r: NumberKnob, v: unknown): number {
  if (!knobAccepts(r, v)) throw new DlmBenchUsageError(`${r.flag} must be ${describeKnob(r)}, got ${JSON.stringify(v) ?? String(v)}`);
  return v;
}

/** Defaults merged with `o`, every value checked; throws DlmBenchUsageError on the first bad one. */
export function validateDlmVmOptions(o: Partial<DlmVmBenchOptions> = {}): DlmVmBenchOptions {
  const out: DlmVmBenchOptions = { ...DLM_VM_DEFAULTS };
  for (const [k, v] of Object.entries(o) as Array<[keyof DlmVmBenchOptions, unknown]>) {
    if (v === undefined) continue;
    if (!(k in DLM_VM_DEFAULTS)) throw new DlmBenchUsageError(`unknown option ${JSON.stringify(k)}`);
    const rule = RULES.find((r) => r.key === k);
    if (rule) (out as unknown as Record<string, unknown>)[k] = checkNumber(rule, v);
    else if (typeof v !== 'boolean') throw new DlmBenchUsageError(`option ${k} must be true or false, got ${JSON.stringify(v)}`);
    else (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** Command-line arguments to options (validated); throws DlmBenchUsageError. */
export function parseDlmVmArgs(argv: string[]): DlmVmBenchOptions {
  const o: Partial<DlmVmBenchOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--keep') { o.keep = true; continue; }
    if (a === '--quiet') { o.verbose = false; continue; }
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const rule = RULES.find((r) => r.flag === flag);
    if (!rule) throw new DlmBenchUsageError(`unknown argument ${JSON.stringify(a)}`);
    let text: string | undefined;
    if (eq > 0 && a.startsWith('--')) text = a.slice(eq + 1);
    else {
      text = argv[i + 1];
      if (text === undefined || text.startsWith('--')) throw new DlmBenchUsageError(`${flag} needs a value (${describeKnob(rule)})`);
      i++;
    }
    // the message quotes what was typed, not the number it became
    const n = knobValue(rule, text);
    if (n === null) throw new DlmBenchUsageError(`${flag} must be ${describeKnob(rule)}, got ${JSON.stringify(text)}`);
    (o as Record<string, unknown>)[rule.key] = n;
  }
  return validateDlmVmOptions(o);
}
