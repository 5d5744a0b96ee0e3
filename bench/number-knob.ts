// A numeric command-line knob of a bench: its flag and the range it accepts,
// shared by the benches' option parsers so that they describe and check a
// range the same way.

export interface NumberKnob<K extends string = string> {
  key: K;
  flag: string;
  integer: boolean;
  /** smallest value; excluded itself when exclusiveMin */
  min: number;
  exclusiveMin: boolean;
  max: number;
}

/** "an integer >= 1 and <= 20", "a number > 0 and <= 600" */
export function describeKnob(k: NumberKnob): string {
  const lo = k.exclusiveMin ? `> ${k.min}` : `>= ${k.min}`;
  return `${k.integer ? 'an integer' : 'a number'} ${lo} and <= ${k.max}`;
}

/** Whether `v` is a value the knob accepts. */
export function knobAccepts(k: NumberKnob, v: unknown): v is number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  if (k.integer && !Number.isInteger(v)) return false;
  if (k.exclusiveMin ? v <= k.min : v < k.min) return false;
  return v <= k.max;
}

// Number('') is 0 and Number(' 5') is 5: only plain decimal numbers are accepted
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** The number a command-line value stands for, or null when the knob refuses it. */
export function knobValue(k: NumberKnob, text: string): number | null {
  if (!DECIMAL.test(text)) return null;
  const v = Number(text);
  return knobAccepts(k, v) ? v : null;
}
