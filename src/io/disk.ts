/**
 * Block storage used by the lease algorithms.
 *
 * Every read and write covers whole sectors of `sectorSize` at a
 * sector-aligned offset: the same rule O_DIRECT imposes on real devices.
 * Implementations reject anything else with a DiskError('EINVAL') before
 * touching the medium, so code that works on MemoryDisk also works on a
 * loop device.
 */
export interface IoOptions {
  /** Fail with DiskError('ETIMEDOUT') if the I/O has not completed in this many ms. */
  timeoutMs?: number;
  /** Short label for error messages (e.g. "delta_leader"). */
  label?: string;
}

export interface Disk {
  /** Path or name, for messages. */
  readonly path: string;
  /** Logical sector size of the medium (512 for regular files). */
  readonly sectorSize: number;
  /** Size in bytes. */
  size(): Promise<number>;
  read(offset: number, length: number, opts?: IoOptions): Promise<Buffer>;
  write(offset: number, data: Buffer, opts?: IoOptions): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: the caller no longer uses (and never modified) a buffer that
   * read() returned, so the disk may reuse it for a later read. Each buffer
   * is released at most once per read that returned it; callers that never
   * release are correct, only slower.
   */
  release?(buf: Buffer): void;
  /**
   * Optional (simulated disks): a version per sector of a buffer that read()
   * returned and that is not released yet (index: sector within the read).
   * Two reads from this disk whose same sector has the same version returned
   * identical bytes for that sector, so a caller may reuse what it parsed
   * from it. Undefined when unknown.
   */
  sectorVersions?(buf: Buffer): Uint32Array | undefined;
}

export type DiskErrorCode = 'EIO' | 'ETIMEDOUT' | 'EINVAL' | 'ERANGE' | 'ENODEV' | 'ECLOSED';

/** A failed disk I/O; `code` names the errno (ECLOSED: the disk was closed), `cause` the lower error. */
export class DiskError extends Error {
  readonly code: DiskErrorCode;
  constructor(code: DiskErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiskError';
    this.code = code;
  }
}

/** Shared argument check: offset/length aligned to the sector size and inside the device. */
export function checkIo(
  disk: { path: string; sectorSize: number },
  op: 'read' | 'write',
  offset: number,
  length: number,
  size: number | undefined,
): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new DiskError('EINVAL', `${op} ${disk.path}: bad offset ${offset}`);
  }
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new DiskError('EINVAL', `${op} ${disk.path}: bad length ${length}`);
  }
  if (offset % disk.sectorSize !== 0 || length % disk.sectorSize !== 0) {
    throw new DiskError(
      'EINVAL',
      `${op} ${disk.path}: offset ${offset} / length ${length} not aligned to the ${disk.sectorSize}-byte sector size`,
    );
  }
  if (size !== undefined && offset + length > size) {
    throw new DiskError(
      'ERANGE',
      `${op} ${disk.path}: ${length} bytes at offset ${offset} is past the end of the device (${size} bytes)`,
    );
  }
}
