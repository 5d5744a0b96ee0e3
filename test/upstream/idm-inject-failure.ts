// `idm_inject_failure PERCENT` for LVM2's idm_ilm_failure.sh, run in the VM
// from the ours PATH dir. Upstream builds it (make check_lvmlockd_idm) from
// test/lib/idm_inject_failure.c against propeller's libseagate_ilm, which the
// VMs do not have: ilm_connect, ilm_inject_fault(percent), ilm_disconnect,
// one line after each, exit 255 (its exit(-1)) at the first failure. This is
// the same sequence through our ILM client, with the same lines.

import { IlmClient, ilmSocketPath } from '../../src/ilm/client';

/** atoi: leading digits (with a sign), 0 when none. */
export function atoi(s: string | undefined): number {
  const m = /^\s*([+-]?\d+)/.exec(s ?? '');
  return m ? Number.parseInt(m[1]!, 10) : 0;
}

async function main(): Promise<number> {
  const percent = atoi(process.argv[2]);
  const con = await IlmClient.connect(ilmSocketPath());
  if (con.rv !== 0 || !con.client) { console.log('ilm_connect: FAIL'); return 255; }
  console.log('ilm_connect: SUCCESS');
  const c = con.client;
  // the C program prints "(100)" whatever the percentage
  if (await c.injectFault(percent) !== 0) { console.log('ilm_inject_fault (100): FAIL'); c.close(); return 255; }
  console.log('ilm_inject_fault (100): SUCCESS');
  if (await c.disconnect() !== 0) { console.log('ilm_disconnect: FAIL'); c.close(); return 255; }
  console.log('ilm_disconnect: SUCCESS');
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (e: unknown) => { console.error(e); process.exit(255); });
}
