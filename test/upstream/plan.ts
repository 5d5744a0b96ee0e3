// What an upstream-suite run does, without I/O: the flavours, the command
// line, which (flavour, test) items run, how they are split over VMs, and
// how the runner's verdicts become RESULT lines. The VM side is run.ts.

export type Daemon = 'c' | 'ours';
export type Verdict = 'pass' | 'fail' | 'skip' | '-';

export interface Flavour {
  name: string;
  /** Why it is not run (yet); null when it runs. */
  notRun: string | null;
  /**
   * Tests that start the flavour's daemons and leave them running for the
   * tests in between, and the test that stops them (upstream's
   * check_lvmlockd_sanlock: aa-...-prepare.sh, the tests, zz-...-remove.sh).
   * Absent for the --test flavours, whose every test starts and kills lvmlockd.
   */
  prepare?: string;
  remove?: string;
  /** How the suite starts lvmlockd in this flavour (aux.sh prepare_lvmlockd), for the docs. */
  starts: string;
  /**
   * Daemons that cannot run this flavour here, and why: their RESULT field
   * is `-` and the run says why once. Absent: every daemon runs it.
   */
  notRunWith?: Partial<Record<Daemon, string>>;
  /**
   * The flavour's lock manager keeps its locks in SCSI drives: the VM gets
   * IDM drives as TCMU SCSI disks (test/vm/lib/idm-scsi.ts), and the suite
   * gets their PV partitions as LVM_TEST_BACKING_DEVICE.
   */
  idmDrives?: boolean;
}

export const FLAVOURS: Flavour[] = [
  { name: 'udev-lvmlockd-test', notRun: null, starts: 'lvmlockd --test -g dlm (per test)' },
  {
    name: 'udev-lvmlockd-test-sanlock', notRun: null,
    starts: 'lvmlockd --test -g sanlock -o 2 (per test; LVM_TEST_LVMLOCKD_TEST_SANLOCK, a flavour file we derive from udev-lvmlockd-test)',
  },
  {
    name: 'udev-lvmlockd-sanlock', notRun: null, prepare: 'aa-lvmlockd-sanlock-prepare.sh', remove: 'zz-lvmlockd-sanlock-remove.sh',
    starts: 'sanlock daemon + lvmlockd -o 2 (once, by aa-lvmlockd-sanlock-prepare.sh)',
  },
  {
    name: 'udev-lvmlockd-dlm', prepare: 'aa-lvmlockd-dlm-prepare.sh', remove: 'zz-lvmlockd-dlm-remove.sh',
    notRun: null,
    starts: 'corosync + dlm_controld (the systemctl stand-in, with the suite\'s corosync.conf and dlm.conf) + lvmlockd (once, by aa-lvmlockd-dlm-prepare.sh)',
  },
  {
    name: 'udev-lvmlockd-idm', prepare: 'aa-lvmlockd-idm-prepare.sh', remove: 'zz-lvmlockd-idm-remove.sh',
    notRun: null, idmDrives: true,
    notRunWith: { c: 'Debian\'s lvmlockd 2.03.16 is built without IDM support (its binary says "idm not supported"; --help offers -g dlm|sanlock only)' },
    starts: 'seagate_ilm (ours, bin/seagate_ilm) + lvmlockd -g idm (once, by aa-lvmlockd-idm-prepare.sh), on 3 emulated IDM drives as TCMU SCSI disks',
  },
];

/** The daemons of `wanted` that run `flavour` (see Flavour.notRunWith). */
export function daemonsFor(flavour: Flavour, wanted: Daemon[]): Daemon[] {
  return wanted.filter((d) => !flavour.notRunWith?.[d]);
}

export const DEFAULT_FLAVOURS = FLAVOURS.filter((f) => f.notRun === null).map((f) => f.name);

/** The CI subset: every lvmlockd test, and the shared-VG tests of lvchange/lvextend/vgremove/vgchange that run with lvmlockd. */
export const CI_FLAVOURS = ['udev-lvmlockd-test', 'udev-lvmlockd-sanlock'];
export const CI_SUBSET = 'lvmlockd*,lvchange-partial.sh,lvextend-percent-extents.sh,vgremove-corrupt-vg.sh,vgchange-usage.sh';

export interface Options {
  flavours: string[];
  only: string | null;
  daemons: Daemon[];
  jobs: number;
  from: number;
  list: boolean;
  keep: boolean;
  memMiB: number;
  /** The CI run: the CI subset in the CI flavours; a VM tier that cannot start is a loud skip, as in test:vm. */
  ci: boolean;
  /** How items are split over the VMs: round robin, or whole flavours per VM (see shardByFlavour). */
  shardBy: 'item' | 'flavour';
  /**
   * Start no test at or after this time (ms since the epoch); null: no limit.
   * What is left is reported as not run (time budget), loudly. CI sets it so
   * that a slow machine ends the run with results instead of a timeout.
   */
  stopAtMs: number | null;
  /** LVM_TEST_FAILURE=1 for the tests: the fault tests that skip without it (idm_*.sh, lvmlockd_failure.sh). */
  failure: boolean;
}

export type Parsed = { ok: true; options: Options } | { ok: false; error: string } | { ok: false; help: string };

export const USAGE = `usage: npm run test:upstream -- [--flavour NAME[,NAME]] [--only GLOB[,GLOB]] [--daemon ours|c|both]
                              [--jobs N] [--shard-by item|flavour] [--from N] [--list] [--keep] [--mem MIB] [--failure] [--ci]
                              [--stop-at EPOCH_SECONDS]
  --flavour  flavours to run (default: ${DEFAULT_FLAVOURS.join(',')}); known: ${FLAVOURS.map((f) => f.name).join(', ')}
  --only     test names (shell/*.sh, with or without .sh; * and ? match) to run; 'ci' = ${CI_SUBSET}
  --daemon   which lvmlockd to run the tests with (default both: C then ours, per test or per shard)
  --jobs     VMs in parallel, each a shard of the tests (default 1)
  --shard-by item: round robin over the VMs (default); flavour: whole flavours per VM, fewest items first
  --from     skip the first N items (flavour × test, in the order --list prints): resume a run
  --list     print the items with their numbers and exit (builds the suite if needed)
  --keep     keep each VM's cluster dir (logs, disks)
  --stop-at  start no test at or after this time (seconds since the epoch); the tests left are
             reported as not run (c=- ours=-) with the reason, and do not fail the run.
             Default for --ci: the environment's LVMLOCKD_CI_STOP_AT, when set (.ci/run sets it)
  --failure  set LVM_TEST_FAILURE=1: the fault tests run instead of skipping (e.g. --only 'idm_*')
  --ci       the CI run: --only ci --flavour ${CI_FLAVOURS.join(',')} --shard-by flavour; when the VM tier cannot start here, say so and exit 0 (as test:vm skips)
`;

export function parseArgs(argv: string[]): Parsed {
  const o: Options = { flavours: [...DEFAULT_FLAVOURS], only: null, daemons: ['c', 'ours'], jobs: 1, from: 0, list: false, keep: false, memMiB: 1536, ci: false, shardBy: 'item', failure: false, stopAtMs: null };
  const known = new Set(FLAVOURS.map((f) => f.name));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const value = (): string | null => (a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : argv[++i] ?? null);
    const num = (what: string, min: number): number | string => {
      const v = value();
      if (v === null || !/^\d+$/.test(v) || Number(v) < min) return `${what} needs an integer >= ${min}`;
      return Number(v);
    };
    switch (name) {
      case '--help': case '-h': return { ok: false, help: USAGE };
      case '--flavour': case '--flavours': {
        const v = value();
        if (!v) return { ok: false, error: '--flavour needs a name' };
        const names = v.split(',').filter(Boolean);
        const bad = names.filter((n) => !known.has(n));
        if (bad.length) return { ok: false, error: `unknown flavour ${bad.join(', ')} (known: ${[...known].join(', ')})` };
        o.flavours = names;
        break;
      }
      case '--only': {
        const v = value();
        if (!v) return { ok: false, error: '--only needs a glob' };
        o.only = v === 'ci' ? CI_SUBSET : v;
        break;
      }
      case '--daemon': {
        const v = value();
        if (v === 'both') o.daemons = ['c', 'ours'];
        else if (v === 'c' || v === 'ours') o.daemons = [v];
        else return { ok: false, error: '--daemon must be ours, c or both' };
        break;
      }
      case '--jobs': { const n = num('--jobs', 1); if (typeof n === 'string') return { ok: false, error: n }; o.jobs = n; break; }
      case '--from': { const n = num('--from', 0); if (typeof n === 'string') return { ok: false, error: n }; o.from = n; break; }
      case '--mem': { const n = num('--mem', 512); if (typeof n === 'string') return { ok: false, error: n }; o.memMiB = n; break; }
      case '--shard-by': {
        const v = value();
        if (v !== 'item' && v !== 'flavour') return { ok: false, error: '--shard-by must be item or flavour' };
        o.shardBy = v;
        break;
      }
      case '--stop-at': {
        const n = parseStopAt(value());
        if (typeof n === 'string') return { ok: false, error: n };
        o.stopAtMs = n;
        break;
      }
      case '--list': o.list = true; break;
      case '--keep': o.keep = true; break;
      case '--failure': o.failure = true; break;
      case '--ci': o.ci = true; o.only = CI_SUBSET; o.flavours = [...CI_FLAVOURS]; o.shardBy = 'flavour'; break;
      default: return { ok: false, error: `unknown argument ${a}\n${USAGE}` };
    }
  }
  return { ok: true, options: o };
}

/** Seconds since the epoch (as `date +%s` prints them) into ms, or why not. */
export function parseStopAt(v: string | null | undefined): number | string {
  if (v === null || v === undefined || !/^\d{9,11}$/.test(v)) {
    return `--stop-at needs a time in seconds since the epoch (as \`date +%s\` prints), not ${v === null || v === undefined ? 'nothing' : JSON.stringify(v)}`;
  }
  return Number(v) * 1000;
}

function globRegex(glob: string): RegExp {
  const g = glob.endsWith('.sh') || glob.endsWith('*') ? glob : `${glob}.sh`;
  return new RegExp('^' + g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
}

export function matchesOnly(test: string, only: string | null): boolean {
  if (only === null) return true;
  return only.split(',').filter(Boolean).some((g) => globRegex(g).test(test));
}

export interface Item {
  /** Position in the full list (what --from counts). */
  index: number;
  flavour: Flavour;
  test: string;
}

/**
 * Every (flavour, test) the options select, numbered. The prepare/remove
 * tests of a flavour are not items: each shard runs them around its tests.
 */
export function planItems(allTests: string[], o: Options): Item[] {
  const items: Item[] = [];
  for (const name of o.flavours) {
    const flavour = FLAVOURS.find((f) => f.name === name)!;
    if (flavour.notRun) continue;
    for (const test of allTests) {
      if (/^(aa|zz)-/.test(test)) continue;
      if (!matchesOnly(test, o.only)) continue;
      items.push({ index: items.length, flavour, test });
    }
  }
  return items;
}

/** Round-robin over `jobs` shards, from item `from` on. */
export function shard(items: Item[], jobs: number, from: number): Item[][] {
  const rest = items.filter((i) => i.index >= from);
  const shards: Item[][] = Array.from({ length: Math.min(jobs, Math.max(rest.length, 1)) }, () => []);
  rest.forEach((it, k) => shards[k % shards.length]!.push(it));
  return shards.filter((s) => s.length > 0);
}

/**
 * Whole flavours per VM: each flavour's items stay on one VM, and each
 * flavour goes to the VM with the fewest items so far (largest flavours
 * first). A flavour with prepare/remove scripts then runs them once per
 * daemon instead of once per daemon on every VM: for the CI subset on 2 VMs
 * (the --test flavour's 7 items on one, the sanlock flavour's on the other)
 * that saves a sanlock prepare and remove per daemon (about 80 s each under
 * TCG), and the two VMs finish closer together than with round robin.
 */
export function shardByFlavour(items: Item[], jobs: number, from: number): Item[][] {
  const rest = items.filter((i) => i.index >= from);
  const groups = new Map<string, Item[]>();
  for (const it of rest) groups.set(it.flavour.name, [...(groups.get(it.flavour.name) ?? []), it]);
  const shards: Item[][] = Array.from({ length: Math.min(jobs, Math.max(groups.size, 1)) }, () => []);
  for (const g of [...groups.values()].sort((a, b) => b.length - a.length)) {
    shards.reduce((min, s) => (s.length < min.length ? s : min), shards[0]!).push(...g);
  }
  return shards.filter((s) => s.length > 0).map((s) => s.sort((a, b) => a.index - b.index));
}

/**
 * The runner's journal status (list file) as a verdict. A test that passed
 * with warnings is journalled `warnings` (brick-shelltest.h: WARNED; its
 * summary counts it as "warned", not as failed).
 */
export function verdictOf(status: string | undefined): Verdict {
  switch (status) {
    case 'passed': case 'warnings': return 'pass';
    case 'skipped': return 'skip';
    case undefined: return '-';
    default: return 'fail'; // failed, timeout, interrupted, started (runner died), retried, unknown
  }
}

/** `flavour:shell/test.sh status` lines of the runner's `list` file. */
export function parseRunnerList(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const r = /^(\S+):shell\/(\S+)\s+(\S+)$/.exec(line.trim());
    if (r) m.set(`${r[1]}:${r[2]}`, r[3]!);
  }
  return m;
}

export function resultLine(flavour: string, test: string, v: Partial<Record<Daemon, Verdict>>): string {
  return `RESULT ${flavour} ${test} c=${v.c ?? '-'} ours=${v.ours ?? '-'}`;
}

/** A RESULT line back into its parts (for scripts and the CI check). */
export function parseResultLine(line: string): { flavour: string; test: string; c: Verdict; ours: Verdict } | null {
  const m = /^RESULT (\S+) (\S+) c=(pass|fail|skip|-) ours=(pass|fail|skip|-)$/.exec(line.trim());
  return m ? { flavour: m[1]!, test: m[2]!, c: m[3] as Verdict, ours: m[4] as Verdict } : null;
}
