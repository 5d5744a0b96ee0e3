// Watches the processes a bench section depends on (emulated drives, ILM
// daemons, lvmlockd) and turns the death of any of them into a failure of the
// section. A drive that dies mid-run would otherwise go unnoticed on a VG of 3
// or 5 drives: the remaining majority keeps granting locks, and the figures
// would silently be those of a smaller set. Tested in test/unit/bench-proc-watch.test.ts.

export class ProcessDied extends Error {
  /** `failedNext`: the error that surfaced after the death (a lock refused, an lvm command failing) */
  constructor(readonly deaths: readonly string[], failedNext?: string) {
    super(`${deaths.join('; ')} during the run${failedNext ? `; what failed next: ${failedNext}` : ''}`);
    this.name = 'ProcessDied';
  }
}

export class ProcessWatch {
  private readonly dead: string[] = [];
  private armed = true;
  private wake: (() => void) | null = null;
  private readonly died: Promise<void>;

  constructor() {
    this.died = new Promise<void>((resolve) => { this.wake = resolve; });
  }

  /**
   * Watch one process. `exited` resolves when it ends; `status` says how (read then).
   * A process that ends while the watch is armed is a death.
   */
  watch(label: string, exited: Promise<unknown>, status: () => string): void {
    void exited.then(() => {
      if (!this.armed) return;
      this.dead.push(`${label} exited (${status()})`);
      this.wake?.();
    });
  }

  /** Deaths so far, in the order they were seen. */
  get deaths(): readonly string[] {
    return this.dead;
  }

  /** Throws ProcessDied when a watched process died. */
  check(): void {
    if (this.dead.length) throw new ProcessDied([...this.dead]);
  }

  /** `p`, or ProcessDied as soon as a watched process dies (whichever comes first). */
  race<T>(p: Promise<T>): Promise<T> {
    if (this.dead.length) return Promise.reject(new ProcessDied([...this.dead]));
    return Promise.race([p, this.died.then((): never => { throw new ProcessDied([...this.dead]); })]);
  }

  /** Processes stopped from here on (clean-up) are not deaths. */
  disarm(): void {
    this.armed = false;
  }
}

/** How a child process ended, for messages: "code 1", "signal SIGKILL". */
export function exitStatus(p: { exitCode: number | null; signalCode: NodeJS.Signals | null }): string {
  if (p.signalCode) return `signal ${p.signalCode}`;
  if (p.exitCode !== null) return `code ${p.exitCode}`;
  return 'status unknown';
}
