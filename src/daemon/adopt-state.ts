// With --adopt 1, the sanlock host name (and host_id) of our delta lease in
// each joined lockspace, kept in a small file next to the adopt file so that
// a restarted daemon can tell its previous instance's delta lease from
// another host's. Our own format (the adopt file stays exactly lvmlockd's):
//   # lvmlockd-ts adopt state 1
//   lockspace <ls name> <host_id> <host name>
// Unusable lines are skipped: a lockspace without a usable line is simply
// not adopted.

import * as fs from 'node:fs';
import type { AdoptName, AdoptNameStore } from '../lm/sanlock/sanlock-lm';

const HEADER = '# lvmlockd-ts adopt state 1';

export function parseAdoptState(text: string): Map<string, AdoptName> {
  const out = new Map<string, AdoptName>();
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return out;
  for (const line of lines.slice(1)) {
    const m = /^lockspace (\S+) (\d+) (\S+)$/.exec(line);
    if (!m) continue;
    const hostId = Number(m[2]);
    if (hostId >= 1 && hostId <= 2000) out.set(m[1]!, { hostId, hostName: m[3]! });
  }
  return out;
}

export function formatAdoptState(map: ReadonlyMap<string, AdoptName>): string {
  let out = HEADER + '\n';
  for (const [ls, r] of map) out += `lockspace ${ls} ${r.hostId} ${r.hostName}\n`;
  return out;
}

/** The store, written through to `file` on every change (atomically, by rename). */
export class AdoptStateFile implements AdoptNameStore {
  private readonly map: Map<string, AdoptName>;

  private constructor(private readonly file: string, private readonly onError: (msg: string) => void, initial: Map<string, AdoptName>) {
    this.map = initial;
  }

  /** Loads what a previous instance left (nothing when the file is missing or unreadable). */
  static load(file: string, onError: (msg: string) => void): AdoptStateFile {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') onError(`cannot read adopt state ${file}: ${(e as Error).message}`);
    }
    return new AdoptStateFile(file, onError, parseAdoptState(text));
  }

  get(lsName: string): AdoptName | undefined { return this.map.get(lsName); }

  entries(): ReadonlyMap<string, AdoptName> { return this.map; }

  set(lsName: string, rec: AdoptName): void {
    this.map.set(lsName, { ...rec });
    this.save();
  }

  delete(lsName: string): void {
    if (this.map.delete(lsName)) this.save();
  }

  /** Forget entries no lockspace of this instance uses (after adoption). */
  retain(lsNames: ReadonlySet<string>): void {
    let changed = false;
    for (const k of [...this.map.keys()]) if (!lsNames.has(k)) { this.map.delete(k); changed = true; }
    if (changed) this.save();
  }

  private save(): void {
    try {
      const tmp = this.file + '.tmp';
      fs.writeFileSync(tmp, formatAdoptState(this.map), { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    } catch (e) {
      this.onError(`cannot write adopt state ${this.file}: ${(e as Error).message}`);
    }
  }
}
