// An Ethernet hub for the VMs of one cluster, in the test process: every qemu
// connects with `-netdev socket,connect=127.0.0.1:PORT` (frames carried as
// 4-byte big-endian length + frame), and each frame is repeated to every other
// connected VM. Nothing leaves the loopback. `setLink(i, false)` drops all
// frames from and to port i (a cable pull, for partitions).

import * as net from 'node:net';

interface Port {
  sock: net.Socket;
  buf: Buffer;
  index: number;
}

export class Hub {
  private server: net.Server;
  private ports: Port[] = [];
  private down = new Set<number>();
  private nextIndex = 0;
  /** Port of the hub on 127.0.0.1 (after start()). */
  port = 0;
  frames = 0;

  constructor() {
    this.server = net.createServer((sock) => this.attach(sock));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /**
   * VMs are numbered by the order they connect; the cluster starts qemu
   * processes one by one and waits for each connection, so index i is VM i+1.
   */
  connections(): number {
    return this.ports.length;
  }

  setLink(index: number, up: boolean): void {
    if (up) this.down.delete(index);
    else this.down.add(index);
  }

  private attach(sock: net.Socket): void {
    sock.setNoDelay(true);
    const p: Port = { sock, buf: Buffer.alloc(0), index: this.nextIndex++ };
    this.ports.push(p);
    sock.on('data', (d: Buffer) => {
      p.buf = p.buf.length ? Buffer.concat([p.buf, d]) : d;
      while (p.buf.length >= 4) {
        const len = p.buf.readUInt32BE(0);
        if (p.buf.length < 4 + len) break;
        const frame = p.buf.subarray(0, 4 + len);
        p.buf = p.buf.subarray(4 + len);
        this.forward(p, frame);
      }
    });
    const drop = (): void => {
      const i = this.ports.indexOf(p);
      if (i >= 0) this.ports.splice(i, 1);
    };
    sock.on('close', drop);
    sock.on('error', drop);
  }

  private forward(from: Port, frame: Buffer): void {
    if (this.down.has(from.index)) return;
    this.frames++;
    for (const p of this.ports) {
      if (p === from || this.down.has(p.index)) continue;
      p.sock.write(frame);
    }
  }

  async close(): Promise<void> {
    for (const p of this.ports) p.sock.destroy();
    this.ports = [];
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
