// `info` text -> JSON (our extension, `lvmlockctl --info --json`; see
// docs/lvmlockctl.md).

export type InfoValue = string | number;
export interface InfoClientRef { pid: number; name: string }
export interface InfoAction { [k: string]: InfoValue | InfoClientRef | null; client: InfoClientRef | null }
export interface InfoLock { [k: string]: InfoValue | boolean | InfoClientRef | null; persistent: boolean; client: InfoClientRef | null }
export interface InfoResource {
  [k: string]: unknown;
  locks: InfoLock[];
  actions: InfoAction[];
  fence_wait_actions: InfoAction[];
}
export interface InfoLockspace {
  [k: string]: unknown;
  removing: boolean;
  actions: InfoAction[];
  fence_history: Array<Record<string, InfoValue>>;
  resources: InfoResource[];
}
export interface InfoDocument {
  lvmlockctl_json: 1;
  /** "2.03.16" when the lockspace lines carry vg_sysid, "head" when they carry generation, else "unknown". */
  daemon_format: '2.03.16' | 'head' | 'unknown';
  structs: Record<string, InfoValue> | null;
  clients: Array<Record<string, InfoValue>>;
  lockspaces: InfoLockspace[];
  /** Lines that were not understood or appeared out of context, verbatim. */
  unknown_lines: string[];
}

const STRING_KEYS = new Set([
  'ls_name', 'vg_name', 'vg_uuid', 'vg_sysid', 'vg_args', 'lm_type', 'name', 'type', 'mode', 'op', 'rt', 'ourkey', 'remkey',
]);

function typedValue(key: string, v: string): InfoValue {
  if (STRING_KEYS.has(key)) return v;
  if (/^-?\d+$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  if (/^0x[0-9a-f]+$/i.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  return v;
}

/** `info=kind k=v k=v ...` -> [kind, fields]; a word without '=' continues the previous value. */
function splitInfoLine(line: string): [string, Array<[string, string]>] | null {
  const words = line.split(' ').filter((w) => w.length > 0);
  const head = words.shift();
  if (!head || !head.startsWith('info=')) return null;
  const fields: Array<[string, string]> = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) {
      if (fields.length) fields[fields.length - 1]![1] += ' ' + w;
      continue;
    }
    fields.push([w.slice(0, eq), w.slice(eq + 1)]);
  }
  return [head.slice(5), fields];
}

/** Parses the raw `info` text (either daemon version) into a document. */
export function parseInfo(raw: Buffer | string): InfoDocument {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  const doc: InfoDocument = {
    lvmlockctl_json: 1, daemon_format: 'unknown', structs: null, clients: [], lockspaces: [], unknown_lines: [],
  };
  const byId = new Map<number, InfoClientRef>();
  const ref = (id: InfoValue | undefined): InfoClientRef | null =>
    typeof id === 'number' && id !== 0 ? byId.get(id) ?? null : null;
  let ls: InfoLockspace | undefined;
  let r: InfoResource | undefined;

  for (const rawLine of text.split(/[\n\0]/)) {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const split = splitInfoLine(line);
    if (!split) { doc.unknown_lines.push(line); continue; }
    const [kind, pairs] = split;
    const obj: Record<string, InfoValue> = {};
    for (const [k, v] of pairs) if (!(k in obj)) obj[k] = typedValue(k, v);
    switch (kind) {
      case 'structs':
        doc.structs = obj;
        break;
      case 'client': {
        doc.clients.push(obj);
        if (typeof obj['id'] === 'number' && !byId.has(obj['id'])) {
          byId.set(obj['id'], { pid: typeof obj['pid'] === 'number' ? obj['pid'] : 0, name: String(obj['name'] ?? '') });
        }
        break;
      }
      case 'ls': {
        if ('vg_sysid' in obj) doc.daemon_format = '2.03.16';
        else if ('generation' in obj && doc.daemon_format === 'unknown') doc.daemon_format = 'head';
        const name = String(obj['ls_name'] ?? '');
        ls = { ...obj, removing: name.startsWith('REM:'), actions: [], fence_history: [], resources: [] };
        doc.lockspaces.push(ls);
        r = undefined;
        break;
      }
      case 'ls_action':
        if (!ls) { doc.unknown_lines.push(line); break; }
        ls.actions.push({ ...obj, client: ref(obj['client_id']) });
        break;
      case 'ls_fence_history':
        if (!ls) { doc.unknown_lines.push(line); break; }
        ls.fence_history.push(obj);
        break;
      case 'r':
        if (!ls) { doc.unknown_lines.push(line); break; }
        r = { ...obj, locks: [], actions: [], fence_wait_actions: [] };
        ls.resources.push(r);
        break;
      case 'lk': {
        if (!r) { doc.unknown_lines.push(line); break; }
        const flags = typeof obj['flags'] === 'number' ? obj['flags'] : 0;
        r.locks.push({ ...obj, persistent: (flags & 1) !== 0, client: ref(obj['client_id']) });
        break;
      }
      case 'r_action':
        if (!r) { doc.unknown_lines.push(line); break; }
        r.actions.push({ ...obj, client: ref(obj['client_id']) });
        break;
      case 'r_fence_wait_action':
        if (!r) { doc.unknown_lines.push(line); break; }
        r.fence_wait_actions.push({ ...obj, client: ref(obj['client_id']) });
        break;
      default:
        doc.unknown_lines.push(line);
    }
  }
  return doc;
}

export function infoToJson(raw: Buffer | string): string {
  return JSON.stringify(parseInfo(raw), null, 2) + '\n';
}
