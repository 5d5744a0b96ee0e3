// A GUID partition table written from the host onto a VM's raw disk file, for
// guests without sfdisk (the base image has util-linux but not fdisk): a
// protective MBR, the primary header and entries, and the backup copies at the
// end, with the CRC32s the kernel's efi partition code checks. Partition names
// are what the kernel reports as PARTNAME (the IDM global-lock drives are the
// SCSI disks with a partition named "propeller").

import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';

const SECTOR = 512;
const ENTRIES = 128;
const ENTRY_BYTES = 128;
const ENTRY_SECTORS = (ENTRIES * ENTRY_BYTES) / SECTOR;
/** Linux LVM partition type. */
export const GPT_TYPE_LVM = 'e6d6d379-f507-44c2-a23c-238f2a3df928';
/** Linux filesystem data. */
export const GPT_TYPE_LINUX = '0fc63daf-8483-4772-8e79-3d69d8477de4';

let table: Uint32Array | null = null;
export function crc32(b: Buffer): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const x of b) c = table[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** GUID text -> its on-disk bytes (first three fields little-endian). */
export function guidBytes(g: string): Buffer {
  const h = g.replace(/-/g, '');
  const b = Buffer.from(h, 'hex');
  return Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]);
}

export interface GptPartition { name: string; type: string; firstLba: number; lastLba: number }

function header(sectors: number, current: number, backup: number, entriesLba: number, diskGuid: Buffer, entriesCrc: number): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write('EFI PART', 0, 'ascii');
  h.writeUInt32LE(0x00010000, 8);
  h.writeUInt32LE(92, 12);
  h.writeBigUInt64LE(BigInt(current), 24);
  h.writeBigUInt64LE(BigInt(backup), 32);
  h.writeBigUInt64LE(BigInt(2 + ENTRY_SECTORS), 40);
  h.writeBigUInt64LE(BigInt(sectors - 2 - ENTRY_SECTORS), 48);
  diskGuid.copy(h, 56);
  h.writeBigUInt64LE(BigInt(entriesLba), 72);
  h.writeUInt32LE(ENTRIES, 80);
  h.writeUInt32LE(ENTRY_BYTES, 84);
  h.writeUInt32LE(entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

/** Writes a GPT with these partitions onto a disk image of `bytes` bytes. */
export function writeGpt(file: string, bytes: number, parts: GptPartition[]): void {
  const sectors = Math.floor(bytes / SECTOR);
  const mbr = Buffer.alloc(SECTOR);
  mbr.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], 446);
  mbr.writeUInt32LE(1, 454);
  mbr.writeUInt32LE(Math.min(sectors - 1, 0xffffffff), 458);
  mbr.writeUInt16LE(0xaa55, 510);
  const entries = Buffer.alloc(ENTRIES * ENTRY_BYTES);
  parts.forEach((p, i) => {
    const e = entries.subarray(i * ENTRY_BYTES, (i + 1) * ENTRY_BYTES);
    guidBytes(p.type).copy(e, 0);
    randomBytes(16).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.firstLba), 32);
    e.writeBigUInt64LE(BigInt(p.lastLba), 40);
    e.write(p.name.slice(0, 36), 56, 'utf16le');
  });
  const crc = crc32(entries);
  const diskGuid = randomBytes(16);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, mbr, 0, SECTOR, 0);
    fs.writeSync(fd, header(sectors, 1, sectors - 1, 2, diskGuid, crc), 0, SECTOR, SECTOR);
    fs.writeSync(fd, entries, 0, entries.length, 2 * SECTOR);
    fs.writeSync(fd, entries, 0, entries.length, (sectors - 1 - ENTRY_SECTORS) * SECTOR);
    fs.writeSync(fd, header(sectors, sectors - 1, 1, sectors - 1 - ENTRY_SECTORS, diskGuid, crc), 0, SECTOR, (sectors - 1) * SECTOR);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
