// A TCMU backstore that makes an emulated IDM drive a real SCSI disk of this
// machine: `idm-tcmu --name N --hba H --backing DEV --size BYTES --wwn HEX
// --firmware ADDR [--offset BYTES]`. Blocks live on DEV (a disk shared by
// every host, opened O_DIRECT) from --offset; the IDM commands go to the
// drive's firmware at ADDR (tcp:HOST:PORT or a unix socket of bin/idm-drive).
// Needs root, configfs and the target_core_user, tcm_loop and sg modules.
// Prints "idm-tcmu: ready sdX sgN hostN" once the kernel has scanned the disk;
// on SIGTERM removes the loopback target and the backstore.

import { parseArgs } from 'node:util';
import { DirectDisk } from '../io/direct-disk';
import { SocketTransport } from '../idm/socket-transport';
import { TcmuDisk, type BlockBackend } from '../idm/tcmu/disk';
import { IdmForwarder } from '../idm/tcmu/idm-forward';
import { Backstore } from '../idm/tcmu/backstore';
import { UioDevice, findUio } from '../idm/tcmu/uio';
import { createBackstore, exportLoopback, removeAll, scsiNodes, uioName, type TcmuConfig } from '../idm/tcmu/configfs';

function fail(msg: string): never {
  process.stderr.write(`idm-tcmu: ${msg}\n`);
  process.exit(1);
}

async function waitFor<T>(what: string, ms: number, f: () => T | null): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== null) return v;
    if (Date.now() > end) fail(`${what} did not appear within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runIdmTcmu(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        name: { type: 'string' }, hba: { type: 'string' }, backing: { type: 'string' }, size: { type: 'string' },
        offset: { type: 'string' }, wwn: { type: 'string' }, firmware: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  const usage = 'usage: idm-tcmu --name N --hba H --backing DEV --size BYTES --wwn HEX --firmware ADDR [--offset BYTES]';
  if (values.help) { process.stdout.write(`${usage}\n`); process.exit(0); }
  if (!values.name || !values.backing || !values.size || !values.wwn || !values.firmware) fail(usage);
  if (!/^[0-9a-fA-F]{16}$/.test(values.wwn)) fail('--wwn takes 16 hex digits');
  const cfg: TcmuConfig = { hba: Number(values.hba ?? 0), name: values.name, sizeBytes: Number(values.size), wwn: values.wwn.toLowerCase() };
  const offset = Number(values.offset ?? 0);
  const log = (l: string): void => { process.stderr.write(`idm-tcmu ${cfg.name}: ${l}\n`); };

  const dev = await DirectDisk.open(values.backing);
  const backend: BlockBackend = {
    read: (off, len) => dev.read(offset + off, len),
    write: (off, data) => dev.write(offset + off, data),
  };
  const firmware = new SocketTransport(values.firmware);
  const disk = new TcmuDisk(backend, cfg.sizeBytes, { wwn: cfg.wwn, serial: `IDM${cfg.wwn}` }, new IdmForwarder(firmware));

  createBackstore(cfg);
  const stop = (code: number): void => {
    removeAll(cfg, log);
    process.exit(code);
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  const uio = await waitFor(`uio device "${uioName(cfg)}"`, 10_000, () => findUio(uioName(cfg)));
  const ring = UioDevice.open(uio);
  const store = new Backstore(ring, disk, log);
  store.run().catch((e) => { log(`serving stopped: ${(e as Error).message}`); stop(1); });
  await exportLoopback(cfg);
  const nodes = await waitFor('the SCSI disk', 120_000, () => {
    const n = scsiNodes(cfg);
    return n.sd && n.sg ? n : null;
  });
  process.stdout.write(`idm-tcmu: ready ${nodes.sd} ${nodes.sg} ${nodes.host} /dev/${uio}\n`);
  if (process.env.IDM_TCMU_STATS === '1') {
    setInterval(() => log(`${store.stats.commands} commands: ${[...store.stats.byOpcode].map(([o, n]) => `${o.toString(16)}:${n}`).join(' ')}`), 10_000).unref();
  }
}
