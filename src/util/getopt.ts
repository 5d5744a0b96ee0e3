// A getopt_long(3) work-alike with the observable behaviour of GNU libc
// (2.26 and later, as shipped in Debian 12): the same option matching, the
// same argument permutation and the same diagnostic texts. Our lvmlockctl and
// lvmlockd front ends use it so that odd command lines are treated exactly as
// the C tools treat them (e.g. `lvmlockd -i 1` is an invalid option there,
// because 'i' is not in lvmlockd's short option string).
//
// API
// ---
//   const g = new Getopt(args, { shortopts: 'hqidE:D:w:k:r:Se', longopts, progName: 'lvmlockctl' });
//   for (let ev = g.next(); ev.kind !== 'end'; ev = g.next()) { ... }
//   g.operands       // non-option arguments, in glibc's final order
//
// or, all at once:  getoptLong(args, config) -> { events, operands }.
//
// `args` are the command line arguments WITHOUT the program name (argv[1..]).
//
// Events returned by next():
//   { kind: 'option', opt, arg?, name?, longIndex? }
//        opt  = the short option character, or the `val` of the long option
//               (a string or a number; numbers model C's `val >= 128` codes)
//        arg  = the option's argument (undefined when none)
//        name = the long option's full name when it was given in long form
//   { kind: 'operand', arg }
//        only when shortopts starts with '-' (glibc RETURN_IN_ORDER: C gets 1)
//   { kind: 'error', code, optopt, message }
//        code: 'unknown-short'  -> glibc "invalid option -- 'x'"           (C gets '?')
//              'unknown-long'   -> "unrecognized option '--foo'"           ('?')
//              'ambiguous'      -> "option '--s' is ambiguous; ..."        ('?')
//              'missing-arg'    -> "option requires an argument -- 'x'" /
//                                  "option '--kill' requires an argument" ('?', or ':'
//                                  when shortopts starts with ':')
//              'unexpected-arg' -> "option '--info' doesn't allow an argument" ('?')
//        optopt: as glibc's optopt (the short char, the long option's val, or 0)
//        ret:    '?' or ':' (what C's getopt_long would have returned)
//        message: the exact text glibc prints on stderr (with the trailing
//                 newline), or '' when glibc would be silent (shortopts starts
//                 with ':' or config.printErrors === false). Nothing is printed
//                 by this module; errors are values, never exceptions.
//   { kind: 'end' }   (C gets -1); afterwards `operands` is final.
//
// Supported: short option clusters (-iq), attached or separate arguments
// (-wvalue, -w value), optional arguments ("x::" and has_arg 'optional', only
// attached / `--opt=value`), `--opt=value`, unique abbreviations of long
// options, glibc's ambiguity rules, "--" end of options, "-" as an operand,
// PERMUTE (default), REQUIRE_ORDER ('+' prefix or POSIXLY_CORRECT in the
// environment) and RETURN_IN_ORDER ('-' prefix), getopt_long_only (longOnly).
// Not supported: the "W;" extension.

export type HasArg = 'none' | 'required' | 'optional';

export interface LongOption {
  name: string;
  hasArg: HasArg;
  /** Returned as `opt` when this option is matched (C's `val`). */
  val: string | number;
}

export interface GetoptConfig {
  /** C's optstring, including an optional leading '+', '-' and/or ':'. */
  shortopts: string;
  longopts?: readonly LongOption[];
  /** argv[0] as used in the messages; glibc prints argv[0] verbatim. */
  progName?: string;
  /** getopt_long_only(): long options may also start with a single '-'. */
  longOnly?: boolean;
  /** Default: true when POSIXLY_CORRECT is set in process.env (as glibc). */
  posixlyCorrect?: boolean;
  /** C's opterr; false makes every `message` empty. Default true. */
  printErrors?: boolean;
}

export type ErrorCode = 'unknown-short' | 'unknown-long' | 'ambiguous' | 'missing-arg' | 'unexpected-arg';

export type GetoptEvent =
  | { kind: 'option'; opt: string | number; arg?: string; name?: string; longIndex?: number }
  | { kind: 'operand'; arg: string }
  | { kind: 'error'; code: ErrorCode; optopt: string | number; ret: '?' | ':'; message: string }
  | { kind: 'end' };

type Ordering = 'permute' | 'require' | 'in-order';

export class Getopt {
  private readonly args: readonly string[];
  private readonly shortSpec: string;
  private readonly longopts: readonly LongOption[];
  private readonly prog: string;
  private readonly longOnly: boolean;
  private readonly ordering: Ordering;
  private readonly printErrors: boolean;
  private readonly colonMode: boolean;

  /** Index of the next argument to look at. */
  private idx = 0;
  /** Position inside a short option cluster (0 = not inside one). */
  private charPos = 0;
  private readonly skipped: string[] = [];
  private readonly trailing: string[] = [];
  private finished = false;

  constructor(args: readonly string[], config: GetoptConfig) {
    this.args = args.slice();
    let spec = config.shortopts;
    let ordering: Ordering;
    if (spec.startsWith('-')) { ordering = 'in-order'; spec = spec.slice(1); }
    else if (spec.startsWith('+')) { ordering = 'require'; spec = spec.slice(1); }
    else {
      const posix = config.posixlyCorrect ?? process.env['POSIXLY_CORRECT'] !== undefined;
      ordering = posix ? 'require' : 'permute';
    }
    this.ordering = ordering;
    this.colonMode = spec.startsWith(':');
    this.shortSpec = spec;
    this.longopts = config.longopts ?? [];
    this.prog = config.progName ?? 'getopt';
    this.longOnly = config.longOnly ?? false;
    this.printErrors = (config.printErrors ?? true) && !this.colonMode;
  }

  /** Non-option arguments in glibc's final (permuted) order. Complete after 'end'. */
  get operands(): string[] {
    return [...this.skipped, ...this.trailing];
  }

  /** Equivalent of C's optind after the last next(), counted in `args` (argv[1..]). */
  get optind(): number {
    return this.idx;
  }

  next(): GetoptEvent {
    if (this.finished) return { kind: 'end' };
    if (this.charPos === 0) {
      // Find the next option element.
      while (true) {
        if (this.idx >= this.args.length) return this.end();
        const a = this.args[this.idx]!;
        if (a === '--') {
          this.idx++;
          this.trailing.push(...this.args.slice(this.idx));
          this.idx = this.args.length;
          return this.end();
        }
        if (isOperand(a)) {
          if (this.ordering === 'require') {
            this.trailing.push(...this.args.slice(this.idx));
            this.idx = this.args.length;
            return this.end();
          }
          this.idx++;
          if (this.ordering === 'in-order') return { kind: 'operand', arg: a };
          this.skipped.push(a);
          continue;
        }
        break;
      }
      const a = this.args[this.idx]!;
      const isDoubleDash = a[1] === '-';
      if (this.longopts.length > 0 &&
          (isDoubleDash || (this.longOnly && (a.length > 2 || !this.shortSpec.includes(a[1]!))))) {
        const ev = this.longOption(a, isDoubleDash ? 2 : 1);
        if (ev) return ev;
        // getopt_long_only fallback: treat it as short options.
      }
      this.charPos = 1;
    }
    return this.shortOption();
  }

  private end(): GetoptEvent {
    this.finished = true;
    return { kind: 'end' };
  }

  private err(code: ErrorCode, optopt: string | number, ret: '?' | ':', text: string): GetoptEvent {
    return { kind: 'error', code, optopt, ret, message: this.printErrors ? `${this.prog}: ${text}\n` : '' };
  }

  private longOption(a: string, dashes: number): GetoptEvent | null {
    const prefix = dashes === 2 ? '--' : '-';
    const rest = a.slice(dashes);
    const eq = rest.indexOf('=');
    const name = eq < 0 ? rest : rest.slice(0, eq);
    const opts = this.longopts;

    let found = -1;
    for (let i = 0; i < opts.length; i++) {
      if (opts[i]!.name === name) { found = i; break; }
    }
    if (found < 0) {
      const ambiguous = new Set<number>();
      for (let i = 0; i < opts.length; i++) {
        const o = opts[i]!;
        if (!o.name.startsWith(name)) continue;
        if (found < 0) { found = i; continue; }
        const f = opts[found]!;
        if (this.longOnly || f.hasArg !== o.hasArg || f.val !== o.val) {
          ambiguous.add(found);
          ambiguous.add(i);
        }
      }
      if (ambiguous.size > 0) {
        this.idx++;
        const list = [...ambiguous].sort((x, y) => x - y).map((i) => ` '${prefix}${opts[i]!.name}'`).join('');
        return this.err('ambiguous', 0, '?', `option '${prefix}${rest}' is ambiguous; possibilities:${list}`);
      }
    }
    if (found < 0) {
      if (!this.longOnly || dashes === 2 || !this.shortSpec.includes(rest[0] ?? '')) {
        this.idx++;
        return this.err('unknown-long', 0, '?', `unrecognized option '${prefix}${rest}'`);
      }
      return null;
    }
    const o = opts[found]!;
    this.idx++;
    let arg: string | undefined;
    if (eq >= 0) {
      if (o.hasArg === 'none') {
        return this.err('unexpected-arg', o.val, '?', `option '${prefix}${o.name}' doesn't allow an argument`);
      }
      arg = rest.slice(eq + 1);
    } else if (o.hasArg === 'required') {
      if (this.idx < this.args.length) {
        arg = this.args[this.idx++]!;
      } else {
        return this.err('missing-arg', o.val, this.colonMode ? ':' : '?', `option '${prefix}${o.name}' requires an argument`);
      }
    }
    const ev: GetoptEvent = { kind: 'option', opt: o.val, name: o.name, longIndex: found };
    if (arg !== undefined) ev.arg = arg;
    return ev;
  }

  private shortOption(): GetoptEvent {
    const a = this.args[this.idx]!;
    const c = a[this.charPos]!;
    this.charPos++;
    const atEnd = this.charPos >= a.length;
    const pos = c === ':' || c === ';' ? -1 : this.shortSpec.indexOf(c, this.colonMode ? 1 : 0);
    if (pos < 0) {
      if (atEnd) { this.idx++; this.charPos = 0; }
      return this.err('unknown-short', c, '?', `invalid option -- '${c}'`);
    }
    const takesArg = this.shortSpec[pos + 1] === ':';
    const optional = takesArg && this.shortSpec[pos + 2] === ':';
    if (!takesArg) {
      if (atEnd) { this.idx++; this.charPos = 0; }
      return { kind: 'option', opt: c };
    }
    if (!atEnd) {
      const arg = a.slice(this.charPos);
      this.idx++;
      this.charPos = 0;
      return { kind: 'option', opt: c, arg };
    }
    this.idx++;
    this.charPos = 0;
    if (optional) return { kind: 'option', opt: c };
    if (this.idx >= this.args.length) {
      return this.err('missing-arg', c, this.colonMode ? ':' : '?', `option requires an argument -- '${c}'`);
    }
    return { kind: 'option', opt: c, arg: this.args[this.idx++]! };
  }
}

function isOperand(a: string): boolean {
  return a[0] !== '-' || a.length === 1;
}

export interface GetoptAllResult {
  /** Every event up to (not including) 'end'. */
  events: Array<Exclude<GetoptEvent, { kind: 'end' }>>;
  operands: string[];
}

/** Runs the parser to the end. Callers that must stop at the first error (as C programs
 *  that exit inside their getopt loop do) should look at the events in order. */
export function getoptLong(args: readonly string[], config: GetoptConfig): GetoptAllResult {
  const g = new Getopt(args, config);
  const events: GetoptAllResult['events'] = [];
  for (let ev = g.next(); ev.kind !== 'end'; ev = g.next()) events.push(ev);
  return { events, operands: g.operands };
}

/** C's atoi(): leading white space, optional sign, decimal digits; garbage gives 0.
 *  Out-of-range values behave as glibc (strtol clamps to the long range, then the
 *  value is truncated to a 32-bit int). */
export function cAtoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(s);
  if (!m) return 0;
  let v = BigInt(m[2]!);
  if (m[1] === '-') v = -v;
  const max = (1n << 63n) - 1n;
  const min = -(1n << 63n);
  if (v > max) v = max;
  if (v < min) v = min;
  return Number(BigInt.asIntN(32, v));
}
