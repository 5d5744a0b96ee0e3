// The summary table of `perf trace -s` or `strace -c -f`, read back into counts
// (bench/lockd.ts --syscalls).

/** One tracer's count of system calls: name -> calls, per thread name (comm) or summed. */
export interface SyscallCounts {
  /** thread name (perf trace) or '*' (strace -c -f sums all threads) -> syscall -> calls */
  byThread: Map<string, Map<string, number>>;
}

/**
 * Parses the summary of `perf trace -s` (a table per thread, headed
 * `name (tid), N events, P%`) or of `strace -c -f` (one table for all threads);
 * threads of the same name are summed.
 */
export function parseSyscallSummary(text: string): SyscallCounts {
  const byThread = new Map<string, Map<string, number>>();
  const add = (thread: string, sys: string, n: number): void => {
    let m = byThread.get(thread);
    if (!m) { m = new Map(); byThread.set(thread, m); }
    m.set(sys, (m.get(sys) ?? 0) + n);
  };
  let thread: string | null = null;
  let strace = false;
  for (const line of text.split('\n')) {
    const head = /^\s*(.+?) \((\d+)\), \d+ events/.exec(line);
    if (head) { thread = head[1]!; continue; }
    if (/^% time\s+seconds\s+usecs\/call\s+calls/.test(line)) { strace = true; thread = '*'; continue; }
    if (thread === null) continue;
    if (strace) {
      // % time  seconds  usecs/call  calls  [errors]  syscall
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
      if (m && m[2] !== 'total') add(thread, m[2]!, Number(m[1]));
    } else {
      // syscall  calls  errors  total  min  avg  max  stddev
      const m = /^\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s+[\d.]+\s/.exec(line);
      if (m) add(thread, m[1]!, Number(m[2]));
    }
  }
  return { byThread };
}
