// Runs in a VM guest (node /repo/dist/test/vm/lib/ilm-probe.js '<json>'):
// one ILM client connection, as lvmlockd's IDM side would open it, to
// whichever ILM daemon listens on the run dir (ours or propeller's
// seagate_ilm), to look at a lock from that daemon's point of view:
//   peek:   ilm_get_host_count and ilm_get_mode of a lock on the given drives
//   lvb:    take it shared, read its LVB, release it
//   try-ex: take it exclusive (the result), release it when granted
// Prints one JSON line. Each connection is its own ILM lockspace with the
// daemon's default host id, so the probe is another host to the drives.

import { IlmClient, ilmSocketPath } from '../../../src/ilm/client';
import { IdmMode } from '../../../src/ilm/protocol';

interface ProbeArgs {
  op: 'peek' | 'lvb' | 'try-ex';
  lockId: string;
  drives: string[];
  runDir?: string;
  timeoutMs?: number;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as ProbeArgs;
  const lockId = Buffer.from(a.lockId, 'hex');
  const con = await IlmClient.connect(ilmSocketPath(a.runDir));
  if (!con.client) {
    console.log(JSON.stringify({ connect: con.rv }));
    process.exitCode = 1;
    return;
  }
  const c = con.client;
  const out: Record<string, unknown> = { connect: 0 };
  const timeoutMs = a.timeoutMs ?? 60_000;
  if (a.op === 'peek') {
    out.count = await c.hostCount(lockId, a.drives);
    out.mode = await c.mode(lockId, a.drives);
  } else if (a.op === 'lvb') {
    out.lock = await c.lock(lockId, IdmMode.SHAREABLE, a.drives, timeoutMs);
    if (out.lock === 0) {
      const r = await c.readLvb(lockId);
      out.lvb = { rv: r.rv, hex: r.lvb.toString('hex') };
      out.unlock = await c.unlock(lockId);
    }
  } else {
    out.lock = await c.lock(lockId, IdmMode.EXCLUSIVE, a.drives, timeoutMs);
    if (out.lock === 0) out.unlock = await c.unlock(lockId);
  }
  out.disconnect = await c.disconnect();
  c.close();
  console.log(JSON.stringify(out));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
