// dlm_controld's configfs (/sys/kernel/config/dlm/...) as the dlm lock manager
// reads it: whole small files and directory listings, errors as -errno.

import * as fs from 'node:fs';
import * as os from 'node:os';
import type { DlmConfigfs } from '../lm/dlm/kernel';

function errno(e: unknown): number {
  const code = (e as NodeJS.ErrnoException).code;
  const n = code ? (os.constants.errno as Record<string, number>)[code] : undefined;
  return -(n ?? 5);
}

export const systemConfigfs: DlmConfigfs = {
  readFile(path: string): string | number {
    try { return fs.readFileSync(path, 'utf8'); } catch (e) { return errno(e); }
  },
  readDir(path: string): string[] | number {
    try { return fs.readdirSync(path); } catch (e) { return errno(e); }
  },
};
