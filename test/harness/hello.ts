// Minimal libdaemon client used by the harness to decide that a lock daemon
// is ready: connect to its stream socket, send `request = "hello"`, read one
// reply (terminated by "\n##\n"). Independent of src/ on purpose, so the
// harness keeps working while the daemon's own protocol code changes.

import * as net from 'node:net';

export interface HelloReply {
  ok: boolean;
  text: string;
  error?: string;
}

/** One request/reply round trip on a fresh connection. */
export function daemonRequest(socketPath: string, body: string, timeoutMs = 2000): Promise<HelloReply> {
  return new Promise((resolve) => {
    let done = false;
    let buf = '';
    const sock = net.createConnection({ path: socketPath });
    const finish = (r: HelloReply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, text: buf, error: 'timeout' }), timeoutMs);
    sock.on('error', (e) => finish({ ok: false, text: buf, error: (e as NodeJS.ErrnoException).code ?? String(e) }));
    sock.on('connect', () => {
      sock.write(body.endsWith('\n') ? body : body + '\n');
      sock.write('\n##\n');
    });
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.endsWith('\n##\n')) finish({ ok: true, text: buf.slice(0, -4) });
    });
    sock.on('close', () => finish({ ok: false, text: buf, error: 'closed' }));
  });
}

/** True when the daemon answers hello with protocol "lvmlockd" version 1. */
export async function helloOk(socketPath: string, timeoutMs = 2000): Promise<HelloReply> {
  const r = await daemonRequest(socketPath, 'request = "hello"\n', timeoutMs);
  if (!r.ok) return r;
  const okResp = /response\s*=\s*"OK"/.test(r.text);
  const okProto = /protocol\s*=\s*"lvmlockd"/.test(r.text);
  const okVer = /version\s*=\s*1\b/.test(r.text);
  if (okResp && okProto && okVer) return r;
  return { ok: false, text: r.text, error: 'unexpected hello reply' };
}
