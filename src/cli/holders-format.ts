// `lvmlockctl --holders VG` output: the daemon's holders report (JSON) as a
// table, or passed through (pretty-printed) with --json.

interface HolderRow {
  host_id: number;
  host: string;
  generation: number;
  local: boolean;
  live: boolean | null;
  state: string;
}

interface Report {
  vg: string;
  lockspace: string;
  lock_type: string;
  source: string;
  locks: Array<{ resource: string; type: string; mode: string; holders: HolderRow[] }>;
}

function liveText(live: boolean | null): string {
  return live === null ? '?' : live ? 'yes' : 'no';
}

export function formatHolders(text: string, json: boolean): string {
  const r = JSON.parse(text) as Report;
  if (json) return JSON.stringify(r, null, 2) + '\n';
  const rows: string[][] = [['RESOURCE', 'TYPE', 'MODE', 'HOST_ID', 'HOST', 'GENERATION', 'LIVE', 'DELTA_LEASE']];
  for (const l of r.locks) {
    if (l.holders.length === 0) rows.push([l.resource, l.type, l.mode, '-', '-', '-', '-', '-']);
    for (const h of l.holders) {
      rows.push([l.resource, l.type, l.mode, h.host_id ? String(h.host_id) : '-', h.host + (h.local ? ' (this host)' : ''),
        h.generation ? String(h.generation) : '-', liveText(h.live), h.state || '-']);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
  const head = `VG ${r.vg}: lockspace ${r.lockspace}, lock type ${r.lock_type}, ${r.locks.length} lock${r.locks.length === 1 ? '' : 's'} held (${r.source === 'disk' ? 'from the lease area on disk' : "from the daemon's state"})`;
  return [head, ...lines].join('\n') + '\n';
}
