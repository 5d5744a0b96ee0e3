// The `info` text that lvmlockctl --info parses. Lines follow lvmlockd 2.03.16
// (the version Debian ships), so that release's lvmlockctl formats them right.

import type { Lockspace } from './lockspace';
import type { Action } from './model';

interface ClientInfo { pid: number; fd: number; pi: number; id: number; name: string }

function actionLine(prefix: string, a: Action): string {
  const o = a.owner;
  return `info=${prefix} client_id=${a.clientId} flags=0x${a.flags.toString(16)} version=${a.version} ` +
    `op=${a.op} rt=${a.rt ?? '.'} mode=${a.mode} lm_type=${a.lmType} result=${a.result} ` +
    `lm_rv=${a.lmResult} owner_host_id=${o?.hostId ?? 0} owner_generation=${o?.generation ?? 0}\n`;
}

export function formatInfo(clients: ClientInfo[], lockspaces: Lockspace[]): string {
  let out = 'info=structs unused_action_count=0 unused_client_count=0 unused_resource_count=0 unused_lock_count=0\n';
  for (const c of clients) {
    out += `info=client pid=${c.pid} fd=${c.fd} pi=${c.pi} id=${c.id} name=${c.name || '.'}\n`;
  }
  for (const ls of lockspaces) {
    out += `info=ls ls_name=${ls.name} vg_name=${ls.vgName} vg_uuid=${ls.vgUuid} vg_sysid=. ` +
      `vg_args=${ls.vgArgs} lm_type=${ls.lmType} host_id=${ls.hostId} create_fail=${+ls.createFail} ` +
      `create_done=${+ls.createDone} thread_work=${+ls.threadWork} thread_stop=${+ls.threadStop} ` +
      `thread_done=${+ls.threadDone} kill_vg=${+ls.killVg} drop_vg=${+ls.dropVgFlag} ` +
      `sanlock_gl_enabled=${+ls.glEnabled}\n`;
    for (const a of ls.actions) out += actionLine('ls_action', a);
    for (const r of ls.resources) {
      out += `info=r name=${r.name} type=${r.type} mode=${r.mode} sh_count=${r.shCount} version=${r.version}\n`;
      for (const lk of r.locks) {
        out += `info=lk mode=${lk.mode} version=${lk.version} flags=0x${lk.persistent ? 1 : 0} client_id=${lk.clientId}\n`;
      }
      for (const a of r.actions) out += actionLine('r_action', a);
    }
  }
  return out;
}
