/**
 * DirectDisk I/O paths, side by side: the thread-pool path (fs.read/fs.write,
 * i.e. pread/pwrite on an O_DIRECT | O_SYNC fd) against Linux native aio
 * (io_submit + io_getevents), on one loop device.
 *
 * Two DirectDisk instances on the same device, one per path. Each round
 * alternates the paths I/O by I/O (A B A B ...), so both see the same load
 * on the machine; the starting path alternates between rounds. Reported per
 * round: p50 / p90 in ms, and the load average.
 *
 *   node dist/bench/direct-io.js [--rounds 5] [--n 200] [--sector 512] [--ops write512,read512,read1m]
 *
 * Needs root (losetup); not part of `npm run bench`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DirectDisk } from '../src/io/direct-disk';

type Op = 'write512' | 'read512' | 'read1m';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

function pct(v: number[], f: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
}

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '5'));
  const n = Number(arg('n', '200'));
  const sector = Number(arg('sector', '512'));
  const ops = arg('ops', 'write512,read512,read1m').split(',') as Op[];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'direct-io-bench-'));
  const file = path.join(tmp, 'img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 64 << 20);
  let dev: string | undefined;
  try {
    dev = execFileSync('losetup', ['--sector-size', String(sector), '--show', '-f', file], { encoding: 'utf8' }).trim();
    const paths = {
      pwrite: await DirectDisk.open(dev, { aio: 'off' }),
      aio: await DirectDisk.open(dev, { aio: 'all' }),
    };
    if (!paths.aio.aioStatus.active) throw new Error(`aio not active: ${paths.aio.aioStatus.reason}`);
    const data512 = Buffer.alloc(Math.max(512, sector), 0x5a);
    process.stdout.write(`# ${n} I/Os per path per round, ${sector}-byte sectors, paths alternated I/O by I/O\n`);
    process.stdout.write('op        round  load1  threads p50  p90    aio p50  p90    ratio p50\n');
    for (const op of ops) {
      for (let r = 0; r < rounds; r++) {
        const t: Record<'pwrite' | 'aio', number[]> = { pwrite: [], aio: [] };
        const order: Array<'pwrite' | 'aio'> = r % 2 === 0 ? ['pwrite', 'aio'] : ['aio', 'pwrite'];
        for (let i = 0; i < n; i++) {
          for (const p of order) {
            const d = paths[p];
            const off = ((i * 2 + (p === 'aio' ? 1 : 0)) % 8192) * data512.length;
            const t0 = process.hrtime.bigint();
            if (op === 'write512') await d.write(off, data512);
            else if (op === 'read512') await d.read(off, data512.length);
            else await d.read((i % 32) << 20, 1 << 20);
            t[p].push(Number(process.hrtime.bigint() - t0) / 1e6);
          }
        }
        const load = os.loadavg()[0]!;
        const a = pct(t.pwrite, 0.5);
        const b = pct(t.aio, 0.5);
        process.stdout.write(
          `${op.padEnd(9)} ${String(r + 1).padStart(5)}  ${load.toFixed(2).padStart(5)}  ` +
            `${a.toFixed(3).padStart(7)} ${pct(t.pwrite, 0.9).toFixed(3).padStart(6)}  ` +
            `${b.toFixed(3).padStart(7)} ${pct(t.aio, 0.9).toFixed(3).padStart(6)}  ${(b / a).toFixed(2).padStart(8)}\n`,
        );
      }
    }
    await paths.pwrite.close();
    await paths.aio.close();
  } finally {
    if (dev) execFileSync('losetup', ['-d', dev]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`direct-io bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
