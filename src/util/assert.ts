/**
 * Assertions for invariants: a failure means a bug in this program, never
 * bad input or a failed I/O (those are handled and reported as results).
 * They stay on in production, so keep each check cheap: a violation stops at
 * its cause instead of turning into two hosts writing one LV later.
 */

/** Thrown by assert(): a broken invariant. */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

/**
 * Throws AssertionError when `cond` is falsy. `msg` may be a function, so a
 * message built from state costs nothing while the invariant holds.
 */
export function assert(cond: unknown, msg?: string | (() => string)): asserts cond {
  if (!cond) {
    const text = typeof msg === 'function' ? msg() : msg;
    throw new AssertionError(text ? `assertion failed: ${text}` : 'assertion failed');
  }
}
