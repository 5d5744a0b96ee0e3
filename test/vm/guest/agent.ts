// In-VM agent of the VM tier. vm-init.sh starts it as
//   node /repo/dist/test/vm/guest/agent.js /dev/vportNp1
// on the virtio-serial port named "agent"; the host side (test/vm/lib/vm.ts)
// talks to it through qemu's UNIX socket chardev.
//
// Protocol: one JSON object per line each way.
//   host → agent  {"id":N,"op":"ping"}
//                 {"id":N,"op":"exec","argv":[...],"timeoutMs":60000,"input":"...","env":{...}}
//   agent → host  {"id":N,"ok":true,"hostname":"vm1","uptime":12.3}            (ping)
//                 {"id":N,"code":0,"signal":null,"stdout":"","stderr":"",
//                  "timedOut":false,"durationMs":12}                          (exec)
//                 {"id":N,"error":"..."}                                       (bad request)
// Every command runs in its own process group; on timeout the whole group is
// SIGKILLed. Output is capped at 8 MiB per stream.
//
// Started without a device argument (e.g. by `node --test` over dist/test),
// it does nothing.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';

const CAP = 8 * 1024 * 1024;

interface Request {
  id: number;
  op: string;
  argv?: string[];
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
  cwd?: string;
}

const SIGNUMS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15, SIGBUS: 7 };

function baseEnv(): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LC_ALL: 'C',
    HOME: '/root',
    LVM_SUPPRESS_FD_WARNINGS: '1',
  };
}

function execReq(req: Request, reply: (o: object) => void): void {
  const started = Date.now();
  const argv = req.argv ?? [];
  if (argv.length === 0) {
    reply({ id: req.id, error: 'empty argv' });
    return;
  }
  let child;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      env: { ...baseEnv(), ...(req.env ?? {}) },
      cwd: req.cwd ?? '/',
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
  } catch (e) {
    reply({ id: req.id, code: 127, signal: null, stdout: '', stderr: String(e), timedOut: false, durationMs: 0 });
    return;
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outLen = 0;
  let errLen = 0;
  child.stdout!.on('data', (b: Buffer) => { if (outLen < CAP) { out.push(b); outLen += b.length; } });
  child.stderr!.on('data', (b: Buffer) => { if (errLen < CAP) { err.push(b); errLen += b.length; } });
  child.stdin!.on('error', () => {});
  child.stdin!.end(req.input ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
  }, req.timeoutMs ?? 60_000);
  let spawnError: Error | null = null;
  child.on('error', (e) => { spawnError = e; });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    reply({
      id: req.id,
      code: code ?? (signal ? 128 + (SIGNUMS[signal] ?? 0) : spawnError ? 127 : 255),
      signal,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8') + (spawnError ? String(spawnError) : ''),
      timedOut,
      durationMs: Date.now() - started,
    });
  });
}

function main(dev: string): void {
  const fd = fs.openSync(dev, 'r+');
  const input = fs.createReadStream('', { fd, autoClose: false, highWaterMark: 65536 });
  const queue: string[] = [];
  let writing = false;
  const flush = (): void => {
    if (writing || queue.length === 0) return;
    writing = true;
    const buf = Buffer.from(queue.join(''), 'utf8');
    queue.length = 0;
    let off = 0;
    const step = (): void => {
      fs.write(fd, buf, off, buf.length - off, null, (e, n) => {
        if (e) {
          // host not connected (EAGAIN) or a transient error: retry shortly
          setTimeout(step, 200);
          return;
        }
        off += n;
        if (off < buf.length) step();
        else { writing = false; flush(); }
      });
    };
    step();
  };
  const reply = (o: object): void => {
    queue.push(JSON.stringify(o) + '\n');
    flush();
  };
  let pending = '';
  input.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (!line) continue;
      let req: Request;
      try {
        req = JSON.parse(line) as Request;
      } catch {
        continue; // garbage from a previous host connection
      }
      if (req.op === 'ping') reply({ id: req.id, ok: true, hostname: os.hostname(), uptime: os.uptime() });
      else if (req.op === 'exec') execReq(req, reply);
      else reply({ id: req.id, error: `unknown op ${String(req.op)}` });
    }
  });
  input.on('error', (e) => {
    process.stderr.write(`agent: read error ${String(e)}\n`);
    process.exit(1);
  });
  input.on('end', () => {
    // host closed: the port stays; reopen by exiting (vm-init restarts us)
    process.exit(0);
  });
  process.stderr.write(`agent: serving on ${dev}\n`);
}

if (process.argv[2] && process.argv[2].startsWith('/dev/')) main(process.argv[2]);
