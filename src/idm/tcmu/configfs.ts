// Kernel setup of one TCMU disk through configfs: a user backstore
// (target/core/user_<hba>/<name>, control options dev_config=, dev_size=,
// hw_block_size=, max_data_area_mb=, nl_reply_supported=-1 so the kernel never
// waits for a netlink reply from a tcmu-runner that is not there), enabled; then
// a tcm_loop target (target/loopback/naa.<wwn>/tpgt_1) whose nexus makes a
// SCSI host and whose lun_0 links the backstore: the kernel scans it and the
// disk appears as /dev/sdX with /dev/sgN. One loopback target per disk, so a
// disk deleted through sysfs comes back by scanning its own host.

import * as fs from 'node:fs';

export const CONFIGFS = '/sys/kernel/config/target';

export interface TcmuConfig {
  hba: number;
  name: string;
  sizeBytes: number;
  /** 16 hex digits; the loopback target and initiator WWNs are derived from it. */
  wwn: string;
  maxDataAreaMb?: number;
}

export function backstoreDir(c: TcmuConfig): string {
  return `${CONFIGFS}/core/user_${c.hba}/${c.name}`;
}

/** The name the kernel gives the device's uio node (tcm-user/<hba>/<name>/<dev_config>). */
export function uioName(c: TcmuConfig): string {
  return `tcm-user/${c.hba}/${c.name}/${devConfig(c)}`;
}

function devConfig(c: TcmuConfig): string {
  return `idm/${c.name}`;
}

export function controlString(c: TcmuConfig): string {
  return [
    `dev_config=${devConfig(c)}`,
    `dev_size=${c.sizeBytes}`,
    'hw_block_size=512',
    `max_data_area_mb=${c.maxDataAreaMb ?? 16}`,
    'nl_reply_supported=-1',
  ].join(',');
}

export function loopbackWwns(c: TcmuConfig): { target: string; initiator: string } {
  const w = c.wwn.padStart(16, '0').slice(-16);
  return { target: `naa.5${w.slice(1, 16)}`, initiator: `naa.6${w.slice(1, 16)}` };
}

export function loopbackDir(c: TcmuConfig): string {
  return `${CONFIGFS}/loopback/${loopbackWwns(c).target}/tpgt_1`;
}

/** Creates and enables the backstore (its uio node appears). */
export function createBackstore(c: TcmuConfig): void {
  const dir = backstoreDir(c);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(`${dir}/control`, controlString(c));
  fs.writeFileSync(`${dir}/enable`, '1');
}

/**
 * Exports the backstore through tcm_loop. Linking the LUN makes the kernel
 * scan it inside the symlink(2) call, and the scan's INQUIRYs are answered by
 * this process's event loop: so these calls run on the thread pool, never
 * synchronously (a synchronous call deadlocks until the commands time out).
 */
export async function exportLoopback(c: TcmuConfig): Promise<void> {
  const tpg = loopbackDir(c);
  await fs.promises.mkdir(`${tpg}/lun/lun_0`, { recursive: true });
  await fs.promises.writeFile(`${tpg}/nexus`, loopbackWwns(c).initiator);
  await fs.promises.symlink(backstoreDir(c), `${tpg}/lun/lun_0/idm`);
}

/** Best-effort teardown, in the reverse order. */
export function removeAll(c: TcmuConfig, log: (l: string) => void): void {
  const tpg = loopbackDir(c);
  const steps: Array<[string, () => void]> = [
    ['lun link', () => fs.unlinkSync(`${tpg}/lun/lun_0/idm`)],
    ['lun', () => fs.rmdirSync(`${tpg}/lun/lun_0`)],
    ['nexus', () => fs.writeFileSync(`${tpg}/nexus`, 'NULL')],
    ['tpg', () => fs.rmdirSync(tpg)],
    ['target', () => fs.rmdirSync(`${CONFIGFS}/loopback/${loopbackWwns(c).target}`)],
    ['backstore', () => fs.rmdirSync(backstoreDir(c))],
  ];
  for (const [what, f] of steps) {
    try { f(); } catch (e) { log(`teardown ${what}: ${(e as Error).message}`); }
  }
}

/** The SCSI disk (sdX) and generic node (sgN) the kernel made for the loopback target, once scanned. */
export function scsiNodes(c: TcmuConfig): { sd: string | null; sg: string | null; host: string | null } {
  const wwid = `naa.${c.wwn.padStart(16, '0').slice(-16)}`;
  let sd: string | null = null;
  let sg: string | null = null;
  let host: string | null = null;
  for (const b of safeList('/sys/class/block')) {
    if (!/^sd[a-z]+$/.test(b)) continue;
    if (readTrim(`/sys/class/block/${b}/device/wwid`) !== wwid) continue;
    sd = b;
    sg = safeList(`/sys/class/block/${b}/device/scsi_generic`)[0] ?? null;
    const real = safeReal(`/sys/class/block/${b}/device`);
    host = /\/(host\d+)\//.exec(real)?.[1] ?? null;
  }
  return { sd, sg, host };
}

function safeList(d: string): string[] {
  try { return fs.readdirSync(d); } catch { return []; }
}
function readTrim(f: string): string {
  try { return fs.readFileSync(f, 'utf8').trim(); } catch { return ''; }
}
function safeReal(p: string): string {
  try { return fs.realpathSync(p); } catch { return ''; }
}
