// The install commands of the README's "Installing" section, as an
// administrator would copy them: the VM tier's package test runs exactly
// these, so the documentation and the test cannot drift apart.
//
// The section's first ```sh block is read line by line (a trailing
// "# comment" is dropped) and each command is recognised by what it does, not
// by its comment: building the package, installing the .deb, stopping the
// lockspaces, the alternative set to our daemon, set back to C, restarting,
// purging.

export interface InstallCommands {
  /** `npm run package` (the part of its line that builds the .deb). */
  build: string;
  /** `apt install ./dist/<name>.deb`, run from the checkout. */
  install: string;
  /** The .deb's path relative to the checkout (from the install command). */
  debPath: string;
  /** Stops the lockspaces before a switch (`systemctl stop lvmlocks`). */
  stopLockspaces: string;
  /** update-alternatives ... to our daemon. */
  switchToOurs: string;
  /** update-alternatives ... back to the C daemon. */
  switchToC: string;
  /** Restarts the daemon and starts the lockspaces after a switch. */
  restart: string;
  /** Purges the package (`apt purge lvmlockd-ts`). */
  purge: string;
}

/** Lines of shell in the first ```sh block after the heading `## <title>`. */
export function sectionShellLines(markdown: string, title: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === `## ${title}`);
  if (start < 0) throw new Error(`README has no "## ${title}" section`);
  let i = start + 1;
  while (i < lines.length && !/^```(sh|bash|shell)\s*$/.test(lines[i]!.trim())) {
    if (/^## /.test(lines[i]!)) throw new Error(`"## ${title}" has no \`\`\`sh block`);
    i++;
  }
  if (i >= lines.length) throw new Error(`"## ${title}" has no \`\`\`sh block`);
  const out: string[] = [];
  for (i++; i < lines.length && lines[i]!.trim() !== '```'; i++) {
    const cmd = stripComment(lines[i]!).trim();
    if (cmd) out.push(cmd);
  }
  if (i >= lines.length) throw new Error(`"## ${title}": unterminated code block`);
  return out;
}

/** The line without a trailing shell comment (a '#' outside quotes, after a blank). */
function stripComment(line: string): string {
  let quote = '';
  for (let k = 0; k < line.length; k++) {
    const ch = line[k]!;
    if (quote) { if (ch === quote) quote = ''; continue; }
    if (ch === '"' || ch === "'") { quote = ch; continue; }
    if (ch === '#' && (k === 0 || /\s/.test(line[k - 1]!))) return line.slice(0, k);
  }
  return line;
}

function one(lines: string[], what: string, re: RegExp): string {
  const hits = lines.filter((l) => re.test(l));
  if (hits.length !== 1) throw new Error(`README install section: expected one command that ${what}, found ${hits.length}: ${JSON.stringify(hits)}`);
  return hits[0]!;
}

export function parseInstallCommands(markdown: string, title = 'Installing (Debian 12)'): InstallCommands {
  const lines = sectionShellLines(markdown, title);
  const buildLine = one(lines, 'builds the package', /\bnpm run package\b/);
  const build = buildLine.split('&&').map((s) => s.trim()).find((s) => /^npm run package\b/.test(s));
  if (!build) throw new Error(`README install section: no "npm run package" command in ${JSON.stringify(buildLine)}`);
  const install = one(lines, 'installs the .deb', /^apt(-get)? install .*\.\/\S+\.deb\b/);
  const deb = /\.\/(\S+\.deb)\b/.exec(install)![1]!;
  const switches = lines.filter((l) => /^update-alternatives --set lvmlockd \S+$/.test(l));
  const target = (l: string): string => l.split(/\s+/).at(-1)!;
  const ours = switches.filter((l) => target(l).includes('/lvmlockd-ts/'));
  const c = switches.filter((l) => !target(l).includes('/lvmlockd-ts/'));
  if (ours.length !== 1 || c.length !== 1) {
    throw new Error(`README install section: expected one switch to ours and one back to C, found ${JSON.stringify(switches)}`);
  }
  return {
    build,
    install,
    debPath: deb,
    stopLockspaces: one(lines, 'stops the lockspaces', /^systemctl stop lvmlocks$/),
    switchToOurs: ours[0]!,
    switchToC: c[0]!,
    restart: one(lines, 'restarts the daemon', /^systemctl restart lvmlockd\b.*\bsystemctl start lvmlocks$/),
    purge: one(lines, 'purges the package', /^(apt(-get)? purge|dpkg --purge) .*\blvmlockd-ts\b/),
  };
}
