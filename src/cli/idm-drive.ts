// An emulated IDM drive: `idm-drive --socket PATH --state FILE [--wwn HEX]
// [--delay-ms N] [--drop-lvb-on-destroy]`, or with an NVMe/TCP front end
// instead of the socket: `idm-drive --nvme-tcp ADDR:PORT --nqn NQN --backing
// FILE --state FILE [--wwn HEX]`. Runs in the foreground until SIGTERM/SIGINT;
// the state file keeps the mutex table across restarts.

import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { DriveServer } from '../idm/drive-server';
import { startNvmeTcpDrive } from '../idm/nvme-tcp/drive-process';

export async function runIdmDrive(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        socket: { type: 'string' },
        state: { type: 'string' },
        wwn: { type: 'string' },
        'delay-ms': { type: 'string' },
        'drop-lvb-on-destroy': { type: 'boolean' },
        'nvme-tcp': { type: 'string' },
        nqn: { type: 'string' },
        backing: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`idm-drive: ${(e as Error).message}\n`);
    process.exit(2);
  }
  if (values['nvme-tcp'] !== undefined) {
    await runNvmeTcp(values);
    return;
  }
  if (values.help || !values.socket || !values.state) {
    process.stderr.write('usage: idm-drive --socket PATH --state FILE [--wwn HEX] [--delay-ms N] [--drop-lvb-on-destroy]\n');
    process.exit(values.help ? 0 : 2);
  }
  const wwn = values.wwn ?? createHash('sha256').update(values.state).digest('hex').slice(0, 16);
  if (!/^[0-9a-fA-F]{1,16}$/.test(wwn)) {
    process.stderr.write('idm-drive: --wwn takes up to 16 hex digits\n');
    process.exit(2);
  }
  const server = new DriveServer({
    socketPath: values.socket,
    statePath: values.state,
    wwn,
    delayMs: values['delay-ms'] ? Number(values['delay-ms']) : 0,
    firmware: { keepLvbOnDestroy: values['drop-lvb-on-destroy'] !== true },
    log: (l) => process.stderr.write(`idm-drive: ${l}\n`),
  });
  await server.listen();
  process.stdout.write(`idm-drive: ${values.socket} ready (wwn ${wwn})\n`);
  const stop = (): void => { void server.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function runNvmeTcp(v: Record<string, string | boolean | undefined>): Promise<void> {
  const addr = /^(.*):(\d+)$/.exec(String(v['nvme-tcp']));
  if (!addr || !v.nqn || !v.backing || !v.state || v.socket) {
    process.stderr.write('usage: idm-drive --nvme-tcp ADDR:PORT --nqn NQN --backing FILE --state FILE [--wwn HEX] [--drop-lvb-on-destroy]\n');
    process.exit(2);
  }
  const state = String(v.state);
  const wwn = typeof v.wwn === 'string' ? v.wwn : createHash('sha256').update(state).digest('hex').slice(0, 16);
  if (!/^[0-9a-fA-F]{1,16}$/.test(wwn)) {
    process.stderr.write('idm-drive: --wwn takes up to 16 hex digits\n');
    process.exit(2);
  }
  const log = (l: string): void => { process.stderr.write(`idm-drive: ${l}\n`); };
  const { target, port } = await startNvmeTcpDrive({
    host: addr[1]!, port: Number(addr[2]), nqn: String(v.nqn), backingPath: String(v.backing), statePath: state, wwn,
    firmware: { keepLvbOnDestroy: v['drop-lvb-on-destroy'] !== true }, log,
  });
  process.stdout.write(`idm-drive: nvme-tcp ${addr[1]}:${port} ${String(v.nqn)} ready (wwn ${wwn})\n`);
  const stop = (): void => { void target.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
