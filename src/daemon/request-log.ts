// What the daemon says about each answered request, beyond C's debug lines:
// - an LV lock refused because another host holds it names that host
//   (host_id, host name, generation, as the lock manager reports it) at
//   warning level, so it reaches syslog/journald by default: lvm's "LV locked
//   by other host" then has an answer in the journal;
// - with --log-format json, every answered request is one JSON line at info
//   level (-S info to see them) with lockspace, resource, mode, client pid
//   and command, result and duration.

import { E, LS_PREFIX } from '../core/constants';
import type { Action } from '../core/model';
import { LOG_INFO, LOG_WARNING, type DaemonLog } from './log';
import { requestName, resultName } from './metrics';

/** The resource a request is about: "GL", "VG", or the LV (name, else uuid). */
export function resourceOf(act: Pick<Action, 'rt' | 'lvName' | 'lvUuid'>): string {
  if (act.rt === 'gl') return 'GL';
  if (act.rt === 'vg') return 'VG';
  if (act.rt === 'lv') return act.lvName || act.lvUuid;
  return '';
}

/** "held by host_id 2 (host-b) generation 7, its delta lease live", or null without a known holder. */
export function holderText(act: Pick<Action, 'owner'>): string | null {
  const o = act.owner;
  if (!o || !o.hostId) return null;
  const name = o.name && o.name !== 'none' ? ` (${o.name})` : '';
  const state = o.state && o.state !== 'none' ? `, host state ${o.state}` : '';
  return `held by host_id ${o.hostId}${name} generation ${o.generation}${state}`;
}

export class RequestLog {
  constructor(private readonly log: DaemonLog, private readonly json: boolean) {}

  answered(act: Action, client: { readonly pid: number; readonly name: string }, seconds: number): void {
    // LV locks only: lvm retries GL/VG contention by itself, and those would flood the journal.
    const refusedByHolder = act.op === 'lock' && act.rt === 'lv' && act.mode !== 'un' && act.result === -E.AGAIN;
    if (refusedByHolder) {
      const holder = holderText(act) ?? 'held by another host (the lock manager did not name it)';
      const what = `LV ${act.vgName}/${resourceOf(act)}`;
      this.log.event(LOG_WARNING, `${what} ${act.mode} for ${client.name || 'client'}[${client.pid}] refused: ${holder}`,
        this.json ? this.fields(act, client, seconds) : {});
      return;
    }
    if (!this.json || !this.log.wants(LOG_INFO)) return;
    const f = this.fields(act, client, seconds);
    this.log.event(LOG_INFO, `${f.op} ${f.lockspace || '-'} ${f.resource || '-'} ${f.mode || '-'} ${f.result}`, f);
  }

  private fields(act: Action, client: { readonly pid: number; readonly name: string }, seconds: number): Record<string, string | number> {
    const f: Record<string, string | number> = {
      event: 'request',
      op: requestName(act),
      lockspace: act.rt === 'gl' ? '' : act.vgName ? LS_PREFIX + act.vgName : '',
      vg: act.vgName,
      resource: resourceOf(act),
      mode: act.op === 'lock' ? act.mode : '',
      lock_type: act.lmType,
      pid: client.pid,
      cmd: client.name,
      result: resultName(act.result),
      op_result: act.result,
      seconds: Math.round(seconds * 1e6) / 1e6,
    };
    if (act.lvUuid) f.lv_uuid = act.lvUuid;
    const o = act.owner;
    if (o && o.hostId) {
      f.holder_host_id = o.hostId;
      f.holder_generation = o.generation;
      if (o.name && o.name !== 'none') f.holder_name = o.name;
      if (o.state && o.state !== 'none') f.holder_state = o.state;
    }
    return f;
  }
}
