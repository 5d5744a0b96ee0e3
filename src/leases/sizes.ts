/**
 * Sector size / align size / max_hosts combinations that sanlock accepts,
 * and the leader-record flag bits that encode the align size.
 */
import { SizeError } from './errors';

export type SectorSize = 512 | 4096;

export const MIB = 1024 * 1024;
export const ALIGN_1M = 1 * MIB;
export const ALIGN_2M = 2 * MIB;
export const ALIGN_4M = 4 * MIB;
export const ALIGN_8M = 8 * MIB;
export type AlignSize = typeof ALIGN_1M | typeof ALIGN_2M | typeof ALIGN_4M | typeof ALIGN_8M;

/** Leader flag bits. */
export const LFL_SHORT_HOLD = 0x1;
export const LFL_ALIGN_1M = 0x10;
export const LFL_ALIGN_2M = 0x20;
export const LFL_ALIGN_4M = 0x40;
export const LFL_ALIGN_8M = 0x80;
export const LFL_ALIGN_MASK = 0xf0;

/** Default number of hosts sanlock assumes (and the size of the host-id bitmap in bits, rounded). */
export const DEFAULT_MAX_HOSTS = 2000;

export { SizeError };

export function isSectorSize(n: number): n is SectorSize {
  return n === 512 || n === 4096;
}

export function isAlignSize(n: number): n is AlignSize {
  return n === ALIGN_1M || n === ALIGN_2M || n === ALIGN_4M || n === ALIGN_8M;
}

/** max_hosts for a sector/align pair; throws SizeError for combinations sanlock rejects. */
export function maxHostsFor(sectorSize: number, alignSize: number): number {
  if (sectorSize === 512) {
    if (alignSize === ALIGN_1M) return 2000;
  } else if (sectorSize === 4096) {
    switch (alignSize) {
      case ALIGN_1M:
        return 250;
      case ALIGN_2M:
        return 500;
      case ALIGN_4M:
        return 1000;
      case ALIGN_8M:
        return 2000;
    }
  }
  throw new SizeError(`invalid sector size ${sectorSize} / align size ${alignSize} combination`);
}

export function alignFlag(alignSize: number): number {
  switch (alignSize) {
    case ALIGN_1M:
      return LFL_ALIGN_1M;
    case ALIGN_2M:
      return LFL_ALIGN_2M;
    case ALIGN_4M:
      return LFL_ALIGN_4M;
    case ALIGN_8M:
      return LFL_ALIGN_8M;
  }
  throw new SizeError(`invalid align size ${alignSize}`);
}

/** Align size from leader flags, or 0 if no align bit is set. */
export function alignFromFlags(flags: number): number {
  if (flags & LFL_ALIGN_1M) return ALIGN_1M;
  if (flags & LFL_ALIGN_2M) return ALIGN_2M;
  if (flags & LFL_ALIGN_4M) return ALIGN_4M;
  if (flags & LFL_ALIGN_8M) return ALIGN_8M;
  return 0;
}

/** Rule for leases written before align flags existed (and the default for init without -A). */
export function alignSizeOld(sectorSize: number): number {
  if (sectorSize === 512) return ALIGN_1M;
  if (sectorSize === 4096) return ALIGN_8M;
  throw new SizeError(`invalid sector size ${sectorSize}`);
}

/** Parse "1M".."8M" or a byte count. */
export function parseAlignSize(s: string): AlignSize {
  const m = /^([1248])M$/.exec(s);
  const n = m ? Number(m[1]) * MIB : Number(s);
  if (!isAlignSize(n)) throw new SizeError(`invalid align size "${s}" (use 1M, 2M, 4M or 8M)`);
  return n;
}

export interface LeaseGeometry {
  sectorSize: SectorSize;
  alignSize: AlignSize;
  maxHosts: number;
}

export function geometry(sectorSize: number, alignSize?: number): LeaseGeometry {
  if (!isSectorSize(sectorSize)) throw new SizeError(`invalid sector size ${sectorSize} (must be 512 or 4096)`);
  const a = alignSize ?? alignSizeOld(sectorSize);
  const maxHosts = maxHostsFor(sectorSize, a);
  return { sectorSize, alignSize: a as AlignSize, maxHosts };
}

/** Smallest power of two >= n (sanlock's roundup_power_of_two). */
export function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
