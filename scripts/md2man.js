#!/usr/bin/env node
// Our man pages are markdown (docs/man/*.md, read on GitHub and linked from the
// docs) turned into roff by this small converter, so there is one source. It
// knows only the subset the pages use:
//   first line  "% NAME(SECTION) | TITLE"     → .TH
//   "# HEADING"                              → .SH (upper-cased)
//   "## Sub"                                 → .SS
//   "`-x`, `--long` *ARG*" then ":   text"    → a tagged paragraph (.TP)
//   "- item"                                 → bullet (.IP \(bu 2)
//   fenced ``` blocks                        → .EX/.EE (no filling)
//   blank line                               → paragraph break (.PP)
//   inline `code` → bold, *word* → italic, **word** → bold, [text](link) → text
// Usage: node scripts/md2man.js page.md > page.8   (or a directory: all *.md into OUTDIR)
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** Escapes roff specials in running text. */
function esc(text) {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/, '\\&$1');
}

function inline(text) {
  // Split out code spans first: their content is literal.
  const parts = text.split(/(`[^`]+`)/);
  return parts.map((p) => {
    if (p.startsWith('`') && p.endsWith('`') && p.length > 1) return `\\fB${esc(p.slice(1, -1))}\\fR`;
    let t = p.replace(/\[([^\]]+)\]\([^)]+\)/g, '$1');
    t = esc(t);
    t = t.replace(/\*\*([^*]+)\*\*/g, '\\fB$1\\fR').replace(/\*([^*\s][^*]*)\*/g, '\\fI$1\\fR');
    return t;
  }).join('');
}

function convert(md, source) {
  const lines = md.split('\n');
  const out = [];
  const head = /^% (\S+)\((\d)\) \| (.+)$/.exec(lines[0] || '');
  if (!head) throw new Error(`${source}: first line must be "% NAME(SECTION) | TITLE"`);
  out.push(`.TH ${head[1].toUpperCase()} ${head[2]} "" "lvmlockd-ts" "${head[3]}"`);
  let i = 1;
  let para = false; // inside running text that needs a break before a new paragraph
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith('```')) {
      out.push('.PP', '.EX');
      i++;
      while (i < lines.length && !lines[i].startsWith('```')) { out.push(esc(lines[i]) || '.sp'); i++; }
      out.push('.EE');
      i++;
      para = false;
      continue;
    }
    if (line.startsWith('## ')) { out.push(`.SS ${inline(line.slice(3))}`); para = false; i++; continue; }
    if (line.startsWith('# ')) { out.push(`.SH ${esc(line.slice(2).toUpperCase())}`); para = false; i++; continue; }
    if (line.trim() === '') { para = !/^\.S[HS] /.test(out[out.length - 1]); i++; continue; }
    if (lines[i + 1] !== undefined && lines[i + 1].startsWith(':   ')) {
      out.push('.TP', inline(line));
      i++;
      const body = [];
      while (i < lines.length && (lines[i].startsWith(':   ') || lines[i].startsWith('    '))) { body.push(lines[i].slice(4)); i++; }
      out.push(inline(body.join(' ')));
      para = false;
      continue;
    }
    if (line.startsWith('- ')) {
      const item = [line.slice(2)];
      i++;
      while (i < lines.length && lines[i].startsWith('  ') && lines[i].trim()) { item.push(lines[i].trim()); i++; }
      out.push('.IP \\(bu 2', inline(item.join(' ')));
      para = true;
      continue;
    }
    if (para) out.push('.PP');
    para = false;
    const text = [line];
    i++;
    while (i < lines.length && lines[i].trim() && !/^(#|- |```)/.test(lines[i]) && !(lines[i + 1] || '').startsWith(':   ')) { text.push(lines[i]); i++; }
    out.push(inline(text.join(' ')));
  }
  return out.join('\n') + '\n';
}

function main(args) {
  if (args.length === 1) { process.stdout.write(convert(fs.readFileSync(args[0], 'utf8'), args[0])); return 0; }
  if (args.length === 2) {
    fs.mkdirSync(args[1], { recursive: true });
    for (const f of fs.readdirSync(args[0]).filter((n) => n.endsWith('.md')).sort()) {
      const out = path.join(args[1], f.replace(/\.md$/, ''));
      fs.writeFileSync(out, convert(fs.readFileSync(path.join(args[0], f), 'utf8'), f));
    }
    return 0;
  }
  process.stderr.write('usage: md2man.js PAGE.md | md2man.js MDDIR OUTDIR\n');
  return 2;
}

module.exports = { convert };
if (require.main === module) process.exitCode = main(process.argv.slice(2));
