// Self cost per function of a callgrind dump (`positions: line`, one event:
// Ir), to split a daemon's instructions per round trip into V8's optimizing
// compiler, the garbage collector and the rest (the request path), so that a
// recompilation or a major GC that falls into the measured window shows as
// such instead of as a step of the request path (bench/lockd.ts --instructions).

export interface InstructionSplit {
  total: number;
  /** TurboFan/Maglev/Sparkplug and the bytecode compiler (background and main thread) */
  compiler: number;
  /** scavenger, mark-compact, sweeper, heap verification and root visiting */
  gc: number;
}

const COMPILER = /compiler::|turboshaft|[Mm]aglev|baseline::|interpreter::Bytecode|\bZone\b|Zone::|RegisterAllocat|InstructionSelector|CodeGenerator|OptimizedCompilationJob|PipelineImpl|LiveRange/;
const GC = /Scaveng|MarkCompact|Sweeper|Marking|Evacuat|IterateObjectCache|RootVisitor|ConcurrentMark|heap::base::|Heap::Collect|Heap::Scavenge/;

/**
 * Self cost of every function (by name) in the dump's text; call lines'
 * inclusive costs are left out. `total` is the dump's `summary:` line (what
 * the bench reports); the self costs add up to its `totals:` line, which
 * callgrind writes after the costs and which is a little larger (work done
 * while the dump was written).
 */
export function callgrindSelfCosts(text: string): { total: number; byFn: Map<string, number> } {
  const names = new Map<string, string>();
  const byFn = new Map<string, number>();
  let fn = '?';
  let afterCalls = false;
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('summary:')) { total = Number(line.split(/\s+/)[1]); continue; }
    const m = /^(c?fn)=\((\d+)\)(?: (.*))?$/.exec(line);
    if (m) {
      if (m[3] !== undefined) names.set(m[2]!, m[3]);
      if (m[1] === 'fn') fn = names.get(m[2]!) ?? m[2]!;
      continue;
    }
    if (line.startsWith('calls=')) { afterCalls = true; continue; }
    const c = line.charCodeAt(0);
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42) {
      if (afterCalls) { afterCalls = false; continue; }
      const parts = line.split(' ');
      if (parts.length >= 2) byFn.set(fn, (byFn.get(fn) ?? 0) + Number(parts[1]));
    }
  }
  return { total, byFn };
}

/** The dump's `summary:` total split into compiler, GC and (total - both), by their shares of the self costs. */
export function splitInstructions(text: string): InstructionSplit {
  const { total, byFn } = callgrindSelfCosts(text);
  let compiler = 0;
  let gc = 0;
  let all = 0;
  for (const [name, v] of byFn) {
    all += v;
    if (COMPILER.test(name)) compiler += v;
    else if (GC.test(name)) gc += v;
  }
  const scale = all > 0 ? total / all : 0;
  return { total, compiler: compiler * scale, gc: gc * scale };
}
