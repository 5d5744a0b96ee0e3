// The command line of a VM-tier bench section (bench/dlm-vm.ts, bench/idm-vm.ts),
// run as a program of its own: a bad knob is refused with the usage and exit 2
// before anything boots; a section that could not run exits 3 (its NOT RUN
// text printed); a failed section prints its report and exits 1.

export interface VmBenchCli<O> {
  /** "dlm-vm", "idm-vm": the prefix of its messages */
  name: string;
  parse: (argv: string[]) => O;
  /** The error class `parse` throws for a bad knob. */
  usageError: new (...args: never[]) => Error;
  usage: string;
  run: (o: O) => Promise<string>;
  /** How the section's text starts when it could not run. */
  notRun: string;
  /** The error class `run` throws for a failed section, with its report. */
  failure: new (...args: never[]) => Error & { report: string };
}

export function runVmBenchCli<O>(cli: VmBenchCli<O>, argv: string[] = process.argv.slice(2)): void {
  let o: O;
  try {
    o = cli.parse(argv);
  } catch (e) {
    if (!(e instanceof cli.usageError)) throw e;
    process.stderr.write(`${cli.name} bench: ${e.message}\n${cli.usage}\n`);
    process.exitCode = 2;
    return;
  }
  cli.run(o).then((t) => {
    process.stdout.write(t);
    if (t.startsWith(cli.notRun)) process.exitCode = 3;
  }, (e: unknown) => {
    if (e instanceof cli.failure) process.stdout.write(e.report);
    else process.stderr.write(`${cli.name} bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
