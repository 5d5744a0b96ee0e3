// `info` text -> lvmlockctl --info output (C-compatible): a sscanf work-alike
// and the formatting of each line as the C tool prints it.

/** A sscanf work-alike for the %s/%u/%d formats lvmlockctl uses. %s reads at most
 *  size-1 bytes and skips the rest of the word (HEAD's szscanf; 2.03.16 overflowed).
 *  Returns the converted values in order; missing ones are undefined (the C
 *  variable keeps its zero initialiser). */
export function cScan(input: string, format: string, sizes: number[] = []): Array<string | number | undefined> {
  const out: Array<string | number | undefined> = [];
  let fi = 0;
  let ii = 0;
  let si = 0;
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
  const conversions = (format.match(/%[sud]/g) ?? []).length;
  let stopped = false;
  while (fi < format.length && !stopped) {
    const f = format[fi]!;
    if (f === '%') {
      const conv = format[fi + 1];
      fi += 2;
      if (conv === 's') {
        const size = sizes[si++] ?? 65;
        while (isSpace(input[ii])) ii++;
        let word = '';
        while (ii < input.length && !isSpace(input[ii])) word += input[ii++];
        if (!word) { stopped = true; break; }
        out.push(word.slice(0, size - 1));
      } else {
        const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(input.slice(ii));
        if (!m) { stopped = true; break; }
        ii += m[0].length;
        let v = BigInt(m[2]!);
        if (conv === 'u') {
          const max = (1n << 64n) - 1n;
          if (v > max) v = max;
          else if (m[1] === '-') v = BigInt.asUintN(64, -v);
          out.push(Number(BigInt.asUintN(32, v)));
        } else {
          if (m[1] === '-') v = -v;
          const max = (1n << 63n) - 1n;
          const min = -(1n << 63n);
          if (v > max) v = max;
          if (v < min) v = min;
          out.push(Number(BigInt.asIntN(32, v)));
        }
      }
    } else if (isSpace(f)) {
      while (isSpace(input[ii])) ii++;
      fi++;
    } else if (input[ii] === f) {
      fi++;
      ii++;
    } else {
      break;
    }
  }
  while (out.length < conversions) out.push(undefined);
  return out;
}

const S = (v: string | number | undefined): string => (typeof v === 'string' ? v : '');
const U = (v: string | number | undefined): number => (typeof v === 'number' ? v : 0);

const NAME = 65; // MAX_NAME + 1
const SHORT = 4; // r_type, mode, rt

/** Formats the raw `info` text exactly like C lvmlockctl --info. Input bytes are
 *  taken as latin1 so the output is byte-exact; write the result as latin1. */
export function formatInfo(raw: Buffer | string): string {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const clients: Array<{ id: number; pid: number; name: string }> = [];
  let firstLs = true;
  let rName = '';
  let rType = '';
  let out = '';

  const findClient = (id: number): [number, string] => {
    for (const c of clients) if (c.id === id) return [c.pid, c.name];
    return [0, ''];
  };

  const lineOf = (line: string): void => {
    // `line` is the C string: up to the first NUL, a '\n' terminator included.
    if (line.startsWith('info=structs ')) {
      // only in the raw form
    } else if (line.startsWith('info=client ')) {
      const v = cScan(line, 'info=client pid=%u fd=%d pi=%d id=%u name=%s', [NAME]);
      clients.push({ pid: U(v[0]), id: U(v[3]), name: S(v[4]) });
    } else if (line.startsWith('info=ls ')) {
      // 2.03.16 lines carry vg_sysid (and the 2.03.16 tool scans it); HEAD lines do not.
      const legacy = / vg_sysid=/.test(line);
      const v = legacy
        ? cScan(line, 'info=ls ls_name=%s vg_name=%s vg_uuid=%s vg_sysid=%s vg_args=%s lm_type=%s', [NAME, NAME, NAME, NAME, NAME, NAME])
        : cScan(line, 'info=ls ls_name=%s vg_name=%s vg_uuid=%s vg_args=%s lm_type=%s', [NAME, NAME, NAME, NAME, NAME]);
      const lmType = S(legacy ? v[5] : v[4]);
      if (!firstLs) out += '\n';
      firstLs = false;
      out += `VG ${S(v[1])} lock_type=${lmType} ${S(v[2])}\n`;
      out += `LS ${lmType} ${S(v[0])}\n`;
    } else if (line.startsWith('info=ls_action ')) {
      const v = cScan(line, 'info=ls_action client_id=%u %s %s op=%s', [NAME, NAME, NAME]);
      const [pid, name] = findClient(U(v[0]));
      out += `OP ${S(v[3])} pid ${pid} (${name})\n`;
    } else if (line.startsWith('info=ls_fence_history ')) {
      const v = cScan(line,
        'info=ls_fence_history op=%s result=%d msg_id=%u owner_host_id=%u owner_generation=%u ourkey=%s remkey=%s',
        [NAME, NAME, NAME]);
      const op = S(v[0]);
      if (op === 'fence_result') {
        out += `PR host_id ${U(v[3])} generation ${U(v[4])} key ${S(v[6])} ${U(v[1]) === 0 ? 'removed' : 'failed'}\n`;
      } else if (op === 'fence') {
        out += `PR host_id ${U(v[3])} generation ${U(v[4])} key ${S(v[6])} waiting\n`;
      }
    } else if (line.startsWith('info=r ')) {
      const v = cScan(line, 'info=r name=%s type=%s mode=%s %s version=%u', [NAME, SHORT, SHORT, NAME]);
      rName = S(v[0]);
      rType = S(v[1]);
      if (S(v[2]) !== 'un') return;
      const ver = U(v[4]);
      if (rType === 'gl') out += `LK GL un ver ${ver}\n`;
      else if (rType === 'vg') out += `LK VG un ver ${ver}\n`;
      else if (rType === 'lv') out += `LK LV un ${rName}\n`;
    } else if (line.startsWith('info=lk ')) {
      if (!rName || !rType) {
        out += `format_info_lk error r_name ${rName} r_type ${rType}\n${line}\n`;
        return;
      }
      const v = cScan(line, 'info=lk mode=%s version=%u %s client_id=%u', [SHORT, NAME]);
      const mode = S(v[0]);
      const [pid, name] = findClient(U(v[3]));
      if (rType === 'gl') out += `LK GL ${mode} ver ${U(v[1])} pid ${pid} (${name})\n`;
      else if (rType === 'vg') out += `LK VG ${mode} ver ${U(v[1])} pid ${pid} (${name})\n`;
      else if (rType === 'lv') out += `LK LV ${mode} ${rName}\n`;
    } else if (line.startsWith('info=r_action ')) {
      if (!rName || !rType) {
        out += `format_info_r_action error r_name ${rName} r_type ${rType}\n${line}\n`;
        return;
      }
      const v = cScan(line, 'info=r_action client_id=%u %s %s op=%s rt=%s mode=%s %s %s %s',
        [NAME, NAME, NAME, SHORT, SHORT, NAME, NAME, NAME]);
      const [pid, name] = findClient(U(v[0]));
      const op = S(v[3]);
      const mode = S(v[5]);
      if (op !== 'lock') { out += `OP ${op} pid ${pid} (${name})\n`; return; }
      if (rType === 'gl') out += `LW GL ${mode} ver 0 pid ${pid} (${name})\n`;
      else if (rType === 'vg') out += `LW VG ${mode} ver 0 pid ${pid} (${name})\n`;
      else if (rType === 'lv') out += `LW LV ${mode} ${rName}\n`;
    } else if (line.startsWith('info=r_fence_wait_action ')) {
      if (!rName || !rType) {
        out += `format_info_r_fence_wait_action error r_name ${rName} r_type ${rType}\n${line}\n`;
        return;
      }
      const v = cScan(line,
        'info=r_fence_wait_action client_id=%u flags=%s version=%s op=%s rt=%s mode=%s lm_type=%s result=%d lm_rv=%d owner_host_id=%u owner_generation=%u',
        [NAME, NAME, NAME, SHORT, SHORT, NAME]);
      const [pid, name] = findClient(U(v[0]));
      const op = S(v[3]);
      const mode = S(v[5]);
      const owner = `${U(v[9])}.${U(v[10])}`;
      if (op !== 'lock') { out += `OP ${op} pid ${pid} (${name})\n`; return; }
      if (rType === 'gl') out += `LW GL ${mode} ver 0 pid ${pid} (${name}) fence_owner ${owner}\n`;
      else if (rType === 'vg') out += `LW VG ${mode} ver 0 pid ${pid} (${name}) fence_owner ${owner}\n`;
      else if (rType === 'lv') out += `LW LV ${mode} ${rName} fence_owner ${owner}\n`;
    } else {
      out += `UN ${line}\n`;
    }
  };

  // C splits at '\n' or NUL; the terminator stays in the line (a NUL ends the C
  // string), and an unterminated last piece is dropped.
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || c === '\0') {
      const piece = text.slice(start, i + 1);
      const nul = piece.indexOf('\0');
      lineOf(nul >= 0 ? piece.slice(0, nul) : piece);
      start = i + 1;
    }
  }
  return out;
}
