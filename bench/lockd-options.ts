// Command line of the lock_lv bench (bench/lockd.ts): its modes and knobs,
// apart from the bench so that `--help`, an unknown flag or a bad value is
// answered (usage on stdout and exit 0; one sentence on stderr and exit 2)
// before any daemon starts.

import { describeKnob, knobValue, type NumberKnob } from './number-knob';

export type Only = 'both' | 'ours' | 'c';
export type Tracer = 'perf' | 'strace';

export type LockdCommand =
  | { mode: 'help' }
  | { mode: 'bench'; seconds?: number; rounds?: number; maxOps?: number; only?: Only }
  | { mode: 'profile'; clients: number; seconds: number; profileOut: string | null }
  | { mode: 'core-only'; clients: number; seconds: number }
  | { mode: 'instructions'; clients: number[]; ops: number; keepDumps: string | null; only: Only }
  | { mode: 'syscalls'; clients: number[]; ops: number; tracer: Tracer; only: Only };

export const LOCKD_USAGE = [
  'usage: node dist/bench/lockd.js [--seconds S] [--rounds R] [--max-ops N] [--only ours|c]',
  '       node dist/bench/lockd.js --profile [--clients N] [--seconds S] [--profile-out FILE]',
  '       node dist/bench/lockd.js --core-only [--clients N] [--seconds S]',
  '       node dist/bench/lockd.js --instructions [--clients N,N,...] [--ops N] [--only ours|c] [--keep-dumps DIR]',
  '       node dist/bench/lockd.js --syscalls [--clients N,N,...] [--ops N] [--only ours|c] [--tracer perf|strace]',
  '  (no mode)       ours against the C lvmlockd -T, uncontended x1/x8/x64 and contended x8, median of R rounds',
  '  --seconds S     measured seconds per case and round (default 3; --profile 5, --core-only 3)',
  '  --rounds R      rounds per case (default 3)',
  '  --max-ops N     upper bound on measured round trips per case and round (default 1000000)',
  '  --only ours|c   run one daemon only',
  '  --profile       our daemon under --cpu-prof, uncontended, N clients (default 64); top functions',
  '  --core-only     our request path\'s JS CPU per round trip without sockets, N clients (default 8)',
  '  --instructions  user-space instructions per round trip under callgrind (default clients 1,8,64, ops 3000)',
  '  --syscalls      system calls per round trip by kind and thread (default clients 1,8,64, ops 20000,',
  '                  tracer perf: `perf trace -s`; strace: `strace -c -f`)',
  '  --help          this text',
].join('\n');

/** A flag or value the bench refuses; the message says which and why. */
export class LockdBenchUsage extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockdBenchUsage';
  }
}

type Mode = Exclude<LockdCommand['mode'], 'help'>;
const MODE_FLAGS: Record<string, Mode> = {
  '--profile': 'profile', '--core-only': 'core-only', '--instructions': 'instructions', '--syscalls': 'syscalls',
};

type NumKey = 'seconds' | 'rounds' | 'maxOps' | 'ops' | 'client';
const NUMBERS: Record<string, NumberKnob<NumKey>> = {
  '--seconds': { key: 'seconds', flag: '--seconds', integer: false, min: 0, exclusiveMin: true, max: 3600 },
  '--rounds': { key: 'rounds', flag: '--rounds', integer: true, min: 1, exclusiveMin: false, max: 100 },
  '--max-ops': { key: 'maxOps', flag: '--max-ops', integer: true, min: 1, exclusiveMin: false, max: 1e9 },
  '--ops': { key: 'ops', flag: '--ops', integer: true, min: 1, exclusiveMin: false, max: 1e8 },
};
const CLIENT_KNOB: NumberKnob<NumKey> = { key: 'client', flag: '--clients', integer: true, min: 1, exclusiveMin: false, max: 1000 };

/** The value flags each mode takes. */
const TAKES: Record<Mode, string[]> = {
  bench: ['--seconds', '--rounds', '--max-ops', '--only'],
  profile: ['--clients', '--seconds', '--profile-out'],
  'core-only': ['--clients', '--seconds'],
  instructions: ['--clients', '--ops', '--only', '--keep-dumps'],
  syscalls: ['--clients', '--ops', '--only', '--tracer'],
};
const VALUE_FLAGS = new Set(Object.values(TAKES).flat());

/** Command-line arguments to one command, every value checked; throws LockdBenchUsage. */
export function parseLockdArgs(argv: string[]): LockdCommand {
  if (argv.includes('--help') || argv.includes('-h')) return { mode: 'help' };
  let mode: Mode = 'bench';
  let modeFlag = '';
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = MODE_FLAGS[a];
    if (m) {
      if (modeFlag && modeFlag !== a) throw new LockdBenchUsage(`${modeFlag} and ${a} cannot be combined`);
      mode = m;
      modeFlag = a;
      continue;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (!VALUE_FLAGS.has(flag)) throw new LockdBenchUsage(`unknown argument ${JSON.stringify(a)}`);
    let text: string | undefined;
    if (eq > 0) text = a.slice(eq + 1);
    else {
      text = argv[i + 1];
      if (text === undefined || text.startsWith('--')) throw new LockdBenchUsage(`${flag} needs a value`);
      i++;
    }
    if (values.has(flag)) throw new LockdBenchUsage(`${flag} given twice`);
    values.set(flag, text);
  }
  for (const flag of values.keys()) {
    if (!TAKES[mode].includes(flag)) throw new LockdBenchUsage(`${flag} does not apply to ${modeFlag || 'the main bench'}`);
  }
  const num = (flag: string): number | undefined => {
    const text = values.get(flag);
    if (text === undefined) return undefined;
    const k = NUMBERS[flag]!;
    const v = knobValue(k, text);
    if (v === null) throw new LockdBenchUsage(`${flag} must be ${describeKnob(k)}, got ${JSON.stringify(text)}`);
    return v;
  };
  const clientList = (dflt: number[], single: boolean): number[] => {
    const text = values.get('--clients');
    if (text === undefined) return dflt;
    const parts = text.split(',');
    if (single && parts.length !== 1) throw new LockdBenchUsage(`--clients takes one number with ${modeFlag}, got ${JSON.stringify(text)}`);
    return parts.map((p) => {
      const v = knobValue(CLIENT_KNOB, p);
      if (v === null) throw new LockdBenchUsage(`--clients wants ${single ? '' : 'comma-separated '}${describeKnob(CLIENT_KNOB)}s, got ${JSON.stringify(text)}`);
      return v;
    });
  };
  const only = (): Only => {
    const v = values.get('--only');
    if (v === undefined) return 'both';
    if (v !== 'ours' && v !== 'c') throw new LockdBenchUsage(`--only must be ours or c, got ${JSON.stringify(v)}`);
    return v;
  };
  switch (mode) {
    case 'bench': {
      const c: LockdCommand = { mode };
      const seconds = num('--seconds'), rounds = num('--rounds'), maxOps = num('--max-ops');
      if (seconds !== undefined) c.seconds = seconds;
      if (rounds !== undefined) c.rounds = rounds;
      if (maxOps !== undefined) c.maxOps = maxOps;
      if (values.has('--only')) c.only = only();
      return c;
    }
    case 'profile':
      return { mode, clients: clientList([64], true)[0]!, seconds: num('--seconds') ?? 5, profileOut: values.get('--profile-out') ?? null };
    case 'core-only':
      return { mode, clients: clientList([8], true)[0]!, seconds: num('--seconds') ?? 3 };
    case 'instructions':
      return { mode, clients: clientList([1, 8, 64], false), ops: num('--ops') ?? 3000, keepDumps: values.get('--keep-dumps') ?? null, only: only() };
    case 'syscalls': {
      const tracer = values.get('--tracer') ?? 'perf';
      if (tracer !== 'perf' && tracer !== 'strace') throw new LockdBenchUsage(`--tracer must be perf or strace, got ${JSON.stringify(tracer)}`);
      return { mode, clients: clientList([1, 8, 64], false), ops: num('--ops') ?? 20000, tracer, only: only() };
    }
  }
}
