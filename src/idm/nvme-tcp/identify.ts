// Identify data structures (NVMe base spec; field offsets as struct
// nvme_id_ctrl / nvme_id_ns in the Linux headers) for the emulated drive's
// NVMe front end: one controller per host connection, one namespace (NSID 1),
// NVMe 1.3, SGLs (mandatory for fabrics), keep-alive, no optional admin
// commands, no power states, no ANA. Byte 1023 of the vendor area carries the
// IDM spec version (major << 4 | minor), which propeller reads.

export const NVME_VERSION_1_3 = 0x00010300;
export const NSID = 1;
export const LBA_SHIFT = 9;

export interface DriveIdentity {
  serial: string;
  model: string;
  firmwareRev: string;
  subnqn: string;
  /** 8 bytes: the namespace's EUI-64 (udev's ID_WWN "eui.<hex>"). */
  eui64: Buffer;
  /** 16 bytes each; all zeros = not reported. */
  nguid: Buffer;
  uuid: Buffer;
  idmVersionMajor: number;
  idmVersionMinor: number;
}

export interface ControllerLimits {
  cntlid: number;
  /** Zero-based maximum queue entries (CAP.MQES). */
  mqes: number;
  /** Max data transfer, as a power of two of 4 KiB pages. */
  mdts: number;
  /** In-capsule data the I/O queues accept, bytes. */
  inCapsuleBytes: number;
}

function ascii(b: Buffer, off: number, len: number, s: string): void {
  Buffer.from(s.padEnd(len, ' ').slice(0, len), 'ascii').copy(b, off);
}

export function identifyController(id: DriveIdentity, l: ControllerLimits): Buffer {
  const b = Buffer.alloc(4096);
  b.writeUInt16LE(0x1bb1, 0);            // vid (Seagate's PCI vendor id, as the real drives)
  b.writeUInt16LE(0x1bb1, 2);
  ascii(b, 4, 20, id.serial);
  ascii(b, 24, 40, id.model);
  ascii(b, 64, 8, id.firmwareRev);
  b[72] = 6;                              // rab
  b[76] = 0;                              // cmic: one port, no ANA
  b[77] = l.mdts;
  b.writeUInt16LE(l.cntlid, 78);
  b.writeUInt32LE(NVME_VERSION_1_3, 80);
  b[111] = 1;                             // cntrltype: I/O controller
  b.writeUInt16LE(0, 256);                // oacs: none of the optional admin commands
  b[258] = 3;                             // acl (0's based)
  b[259] = 3;                             // aerl (0's based)
  b[260] = 0x02;                          // frmw: one slot
  b[261] = 0;                             // lpa: no command-effects log, no extended data
  b.writeUInt16LE(0x0157, 266);           // wctemp (343 K)
  b.writeUInt16LE(0x0175, 268);           // cctemp (373 K)
  b.writeUInt16LE(1, 320);                // kas: keep-alive, 100 ms granularity
  b[512] = 0x66;                          // sqes
  b[513] = 0x44;                          // cqes
  b.writeUInt16LE(l.mqes + 1, 514);       // maxcmd
  b.writeUInt32LE(1, 516);                // nn
  b.writeUInt16LE(0, 520);                // oncs: no optional NVM commands
  b[525] = 0x01;                          // vwc: a volatile write cache, so hosts send Flush
  b.writeUInt32LE(0x00000001, 536);       // sgls: SGLs supported, no alignment
  b.fill(0, 768, 1024);
  Buffer.from(id.subnqn, 'ascii').copy(b, 768, 0, 255);
  b.writeUInt32LE((64 + l.inCapsuleBytes) / 16, 1792); // ioccsz
  b.writeUInt32LE(1, 1796);               // iorcsz
  b.writeUInt16LE(0, 1800);               // icdoff
  b[1802] = 0;                            // ctrattr: dynamic controller model
  b[1803] = 0;                            // msdbd
  // power state 0: 9 W, operational
  b.writeUInt16LE(900, 2048);
  b[3072 + 1023] = ((id.idmVersionMajor & 0x0f) << 4) | (id.idmVersionMinor & 0x0f);
  return b;
}

export function identifyNamespace(id: DriveIdentity, blocks: bigint): Buffer {
  const b = Buffer.alloc(4096);
  b.writeBigUInt64LE(blocks, 0);          // nsze
  b.writeBigUInt64LE(blocks, 8);          // ncap
  b.writeBigUInt64LE(blocks, 16);         // nuse
  b[25] = 0;                              // nlbaf: one format
  b[26] = 0;                              // flbas: format 0
  b[30] = 1;                              // nmic: may be attached to several controllers (hosts)
  id.nguid.copy(b, 104, 0, 16);
  id.eui64.copy(b, 120, 0, 8);
  b.writeUInt16LE(0, 128);                // lbaf[0].ms
  b[130] = LBA_SHIFT;                     // lbaf[0].ds
  return b;
}

/** Active namespace list after `after` (CNS 2). */
export function activeNamespaces(after: number): Buffer {
  const b = Buffer.alloc(4096);
  if (after < NSID) b.writeUInt32LE(NSID, 0);
  return b;
}

/** Namespace identification descriptors (CNS 3): EUI-64, NGUID, UUID, command set (NVM). */
export function namespaceDescriptors(id: DriveIdentity): Buffer {
  const b = Buffer.alloc(4096);
  let o = 0;
  const put = (type: number, v: Buffer): void => {
    b[o] = type;
    b[o + 1] = v.length;
    v.copy(b, o + 4);
    o += 4 + v.length;
  };
  const set = (v: Buffer): boolean => v.some((x) => x !== 0);
  if (set(id.eui64)) put(1, id.eui64.subarray(0, 8));
  if (set(id.nguid)) put(2, id.nguid.subarray(0, 16));
  if (set(id.uuid)) put(3, id.uuid.subarray(0, 16));
  put(4, Buffer.from([0]));
  return b;
}
