import { randomBytes } from 'node:crypto';
import { SeededRandom, type Random } from '../leases/random';

/** Random source seeded from the OS, for the daemon and tools (the lease code takes any Random). */
export function systemRandom(): Random {
  return new SeededRandom(randomBytes(4).readUInt32LE(0));
}
