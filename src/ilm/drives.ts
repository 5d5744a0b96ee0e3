// Which drive a client's path names, and one command channel per drive for
// the whole daemon (propeller: src/lock.c ilm_alloc, src/drive.c).
//
// Emulated drives: a drive map (file named by ILM_DRIVE_MAP, or --drive-map)
// has lines "<device path> <drive socket>"; a path resolves when it, its real
// path, or its real path without a partition suffix (sdb1 -> sdb, loop3p1 ->
// loop3, nvme0n1p2 -> nvme0n1) is in the map. A path that is itself a unix
// socket is taken as an emulated drive directly. Paths that resolve to the
// same drive are one drive (propeller merges them by WWN).
//
// Real SCSI disks: /dev/sdX (or a partition of it) is reached through its SCSI
// generic node (sysfs device/scsi_generic) with SG_IO, one drive per sysfs
// wwid; when the node goes away (device deleted, then rescanned) the drive is
// found again by that wwid among /sys/class/scsi_generic.
//
// NVMe namespaces: as propeller, a device whose name contains "nvme"
// (/dev/nvmeXnY, partition suffix pY stripped) is sent NVMe admin passthrough
// commands on its own node (nvme-passthru.ts), one drive per sysfs wwid
// ("eui." stripped as propeller strips it from udev's ID_WWN).
//
// Device-mapper paths (/dev/mapper/X, /dev/dm-N: what lvm sends when the PVs
// are dm devices, as in LVM2's own test suite) are first followed down to the
// device under them, as propeller does with `dmsetup deps -o devname` (its
// first dependency, recursively); we read the same from sysfs `slaves/`.
// When a path no longer resolves (its dm table replaced by an error target,
// its disk deleted), the drive it resolved to last time is used, as
// propeller's cached device mapping (ilm_find_cached_device_mapping): a
// drive that is really gone then fails its commands instead.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { DriveCommands, type FaultInjector } from './drive-commands';
import { SocketTransport } from '../idm/socket-transport';
import { SgIoTransport } from '../idm/sg-io';
import { NvmeIdmIo } from '../idm/nvme-idm-io';
import { NvmePassthruTransport } from '../idm/nvme-passthru';
import type { IdmIo } from '../idm/idm-io';
import type { DriveTransport } from '../idm/transport';
import type { LockDrive } from './raid-lock';

export function parseDriveMap(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [dev, sock] = line.split(/\s+/);
    if (dev && sock) map.set(dev, sock);
  }
  return map;
}

export function stripPartition(dev: string): string {
  const nvmeLike = /^(.*\/(?:nvme\d+n\d+|loop\d+|mmcblk\d+))p\d+$/.exec(dev);
  if (nvmeLike) return nvmeLike[1]!;
  const sd = /^(.*\/[a-z]+[a-z])\d+$/.exec(dev);
  return sd ? sd[1]! : dev;
}

function realpath(p: string): string {
  try { return fs.realpathSync(p); } catch { return p; }
}

function isSocket(p: string): boolean {
  try { return fs.statSync(p).isSocket(); } catch { return false; }
}

/**
 * The device under a device-mapper path, followed through sysfs `slaves/`
 * (first entry in name order) until a device that is not dm-N; any other path
 * is returned as it is. Propeller takes the first dependency `dmsetup deps -o
 * devname` lists, recursively; for the linear one-device tables of lvm's test
 * PVs both are the one device.
 */
export function deepestDevice(path: string, sysBlock = '/sys/class/block'): string {
  let dev = path;
  for (let depth = 0; depth < 16; depth++) {
    const real = realpath(dev);
    const name = nodePath.basename(real);
    if (!/^dm-\d+$/.test(name)) return dev;
    let slaves: string[];
    try { slaves = fs.readdirSync(`${sysBlock}/${name}/slaves`).sort(); } catch { return dev; }
    if (slaves.length === 0) return dev;
    dev = nodePath.join(nodePath.dirname(real), slaves[0]!);
  }
  return dev;
}

export class DriveRegistry {
  private readonly channels = new Map<string, LockDrive>();
  /** The drive each path string resolved to last (propeller's dev_map_list). */
  private readonly lastGood = new Map<string, LockDrive>();
  private map = new Map<string, string>();

  constructor(
    private readonly mapFile: string | null, private readonly faults: FaultInjector, private readonly log: (l: string) => void,
    private readonly sysBlock = '/sys/class/block',
  ) {
    this.reload();
  }

  reload(): void {
    if (!this.mapFile) return;
    try {
      const raw = parseDriveMap(fs.readFileSync(this.mapFile, 'utf8'));
      this.map = new Map([...raw].map(([dev, sock]) => [realpath(dev), sock]));
      for (const [dev, sock] of raw) this.map.set(dev, sock);
    } catch (e) {
      this.log(`cannot read drive map ${this.mapFile}: ${(e as Error).message}`);
    }
  }

  /** The drive a path names, or null (counted as a failed drive). */
  resolve(path: string): LockDrive | null {
    const dev = deepestDevice(path, this.sysBlock);
    const sock = this.socketFor(path) ?? (dev !== path ? this.socketFor(dev) : null);
    const target = sock ? { id: sock, open: (): DriveTransport => new SocketTransport(sock) } : nvmeDeviceFor(dev) ?? scsiGenericFor(dev);
    if (!target) {
      const under = dev !== path ? ` (device-mapper, on ${dev})` : '';
      const cached = this.lastGood.get(path);
      if (cached) {
        this.log(`drive ${path}${under}: not a drive now; using its last mapping ${cached.id}`);
        return cached;
      }
      this.log(`drive ${path}${under}: neither an emulated drive, an NVMe namespace nor a SCSI disk with a generic node; counted as failed`);
      return null;
    }
    let d = this.channels.get(target.id);
    if (!d) {
      try {
        d = { id: target.id, cmds: new DriveCommands(target.open(), this.faults) };
      } catch (e) {
        this.log(`drive ${path}: ${(e as Error).message}; counted as failed`);
        return null;
      }
      this.channels.set(target.id, d);
    }
    this.lastGood.set(path, d);
    return d;
  }

  /** Distinct drives for a path list, and how many paths did not resolve. */
  resolveAll(paths: string[]): { drives: LockDrive[]; failed: number } {
    const drives: LockDrive[] = [];
    let failed = 0;
    for (const p of paths) {
      const d = this.resolve(p);
      if (!d) failed++;
      else if (!drives.includes(d)) drives.push(d);
    }
    return { drives, failed };
  }

  close(): void {
    for (const d of this.channels.values()) d.cmds.close();
    this.channels.clear();
  }

  private socketFor(path: string): string | null {
    if (isSocket(path)) return path;
    if (this.map.size === 0) this.reload();
    const real = realpath(path);
    for (const cand of [path, real, stripPartition(real), stripPartition(path)]) {
      const s = this.map.get(cand);
      if (s) return s;
    }
    return null;
  }
}

/** /dev/nvmeXnY[pZ] -> the namespace node itself and its wwid; null when not an NVMe device. */
export function nvmeDeviceFor(path: string): { id: string; open: () => IdmIo } | null {
  const node = stripPartition(realpath(path));
  const name = node.replace(/^\/dev\//, '');
  if (!name.includes('nvme') || !/^nvme\d+(n\d+)?$/.test(name)) return null;
  let wwid = '';
  try { wwid = fs.readFileSync(`/sys/class/block/${name}/wwid`, 'utf8').trim().replace(/^eui\./, ''); } catch { /* none */ }
  return { id: wwid ? `nvme:${wwid}` : node, open: () => new NvmeIdmIo(new NvmePassthruTransport(node)) };
}

/** /dev/sdX[N] -> its /dev/sgN and wwid, from sysfs; null when not a SCSI disk. */
function scsiGenericFor(path: string): { id: string; open: () => DriveTransport } | null {
  const disk = stripPartition(realpath(path)).replace(/^\/dev\//, '');
  if (!/^sd[a-z]+$/.test(disk)) return null;
  let sg: string[];
  try { sg = fs.readdirSync(`/sys/class/block/${disk}/device/scsi_generic`); } catch { return null; }
  if (sg.length !== 1) return null;
  let wwid = '';
  try { wwid = fs.readFileSync(`/sys/class/block/${disk}/device/wwid`, 'utf8').trim(); } catch { /* none */ }
  const node = `/dev/${sg[0]}`;
  return { id: wwid || node, open: () => new SgIoTransport(node, wwid ? () => sgNodeForWwid(wwid) : undefined) };
}

/** The /dev/sgN whose SCSI device has this sysfs wwid, or null. */
export function sgNodeForWwid(wwid: string, root = '/sys/class/scsi_generic'): string | null {
  let nodes: string[];
  try { nodes = fs.readdirSync(root); } catch { return null; }
  for (const n of nodes) {
    try {
      if (fs.readFileSync(`${root}/${n}/device/wwid`, 'utf8').trim() === wwid) return `/dev/${n}`;
    } catch { /* not a disk with a wwid */ }
  }
  return null;
}
