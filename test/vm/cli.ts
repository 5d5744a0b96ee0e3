// One VM cluster by hand, for debugging (see docs/vm-tier.md):
//
//   npm run build
//   node dist/test/vm/cli.js image                 # build (or find) the cached image, print its dir
//   node dist/test/vm/cli.js image-systemd         # the same for the systemd guest (build-image-systemd.sh)
//   node dist/test/vm/cli.js up [--vms 2] [--disks 1] [--disk-mib 1024] [--systemd] [--keep]
//
// `up` boots the cluster, then reads commands on stdin, one per line:
//   1 lvs                 run `sh -c 'lvs'` on vm1, print exit code, stdout, stderr
//   all uname -r          on every VM
//   cut 2 / link 2        pull / plug vm2's network cable
//   quit                  (or EOF, Ctrl-C) tear down (qemu killed by pid, temp dir removed unless --keep)
// Logs: <dir>/vmN/console.log (serial console), <dir>/vmN/out/ (the guest's /out:
// agent, daemons), <dir>/commands.log.
//
// Run by `node --test` (which walks dist/test/), it does nothing.

import * as readline from 'node:readline';
import { VmCluster } from './lib/vm';
import { ensureImage, ensureSystemdImage } from './lib/image';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : dflt;
}

async function up(args: string[]): Promise<number> {
  const log = (s: string): void => { process.stderr.write(`${s}\n`); };
  const disks = Array.from({ length: flag(args, '--disks', 1) }, () => ({ sizeMiB: flag(args, '--disk-mib', 1024) }));
  const c = await VmCluster.create({
    vms: flag(args, '--vms', 2), disks, keep: args.includes('--keep'), name: 'cli', log,
    init: args.includes('--systemd') ? 'systemd' : 'script',
  });
  log(`cluster dir: ${c.dir}`);
  log(`shared disks (in every VM /dev/vdb, /dev/vdc, ...): ${c.disks.join(' ')}`);
  log('commands: "<n> <shell command>", "all <shell command>", "cut <n>", "link <n>", "quit"');
  const rl = readline.createInterface({ input: process.stdin, prompt: 'vm> ' });
  const done = new Promise<void>((resolve) => rl.on('close', () => resolve()));
  rl.prompt();
  for await (const line of rl) {
    const m = /^\s*(\S+)\s*(.*)$/.exec(line);
    if (!m) { rl.prompt(); continue; }
    const [, who, rest] = m as unknown as [string, string, string];
    try {
      if (who === 'quit' || who === 'exit') break;
      if (who === 'cut' || who === 'link') {
        c.setLink(Number(rest), who === 'link');
      } else {
        const targets = who === 'all' ? c.vms : [c.vm(Number(who))];
        for (const vm of targets) {
          const r = await vm.sh(rest, { timeoutMs: 600_000 });
          process.stdout.write(`--- ${vm.name}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''} (${r.durationMs} ms)\n${r.stdout}`);
          if (r.stderr) process.stdout.write(`--- stderr\n${r.stderr}`);
        }
      }
    } catch (e) {
      process.stdout.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    rl.prompt();
  }
  rl.close();
  await done;
  await c.destroy();
  log(c.tracker.keepDir ? `kept ${c.dir}` : 'torn down');
  return 0;
}

async function main(): Promise<number> {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'image' || cmd === 'image-systemd') {
    const log = (s: string): void => { process.stderr.write(`${s}\n`); };
    const img = cmd === 'image' ? await ensureImage(log) : await ensureSystemdImage(log);
    process.stdout.write(`${img.dir}\n${img.manifest}`);
    return 0;
  }
  if (cmd === 'up') return up(args);
  process.stdout.write('usage: cli.js image | image-systemd | up [--vms N] [--disks N] [--disk-mib M] [--systemd] [--keep]\n');
  return cmd === undefined ? 0 : 2;
}

if (!process.env.NODE_TEST_CONTEXT) {
  main().then((code) => process.exit(code), (e) => {
    process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
