// The README's install commands as the VM tier's package test reads them
// (test/vm/lib/readme-install.ts): the real README parses into the seven
// commands, and a README that lost one of them (or has it twice) is refused
// instead of silently running less.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseInstallCommands, sectionShellLines } from '../vm/lib/readme-install';
import { repoRoot } from '../harness/cluster';

const README = fs.readFileSync(path.join(repoRoot(), 'README.md'), 'utf8');

const SAMPLE = `# x

## Installing (Debian 12)

Some text.

\`\`\`sh
npm ci && npm run package      # build
apt install ./dist/pkg_1.0_amd64.deb   # install
systemctl stop lvmlocks
update-alternatives --set lvmlockd /usr/lib/lvmlockd-ts/bin/lvmlockd    # ours
update-alternatives --set lvmlockd /sbin/lvmlockd.lvm2-lockd            # C
systemctl restart lvmlockd && systemctl start lvmlocks
apt purge lvmlockd-ts   # gone
\`\`\`

## Using it
`;

test('the README install section parses into its commands', () => {
  const c = parseInstallCommands(README);
  assert.equal(c.build, 'npm run package');
  assert.match(c.install, /^apt install \.\/dist\/lvmlockd-ts_[\d.]+_amd64\.deb$/);
  assert.equal(c.debPath, c.install.slice('apt install ./'.length));
  assert.equal(c.stopLockspaces, 'systemctl stop lvmlocks');
  assert.match(c.switchToOurs, /^update-alternatives --set lvmlockd \/usr\/lib\/lvmlockd-ts\/bin\/lvmlockd$/);
  assert.match(c.switchToC, /^update-alternatives --set lvmlockd \/sbin\/lvmlockd\.lvm2-lockd$/);
  assert.equal(c.restart, 'systemctl restart lvmlockd && systemctl start lvmlocks');
  assert.equal(c.purge, 'apt purge lvmlockd-ts');
});

test('the deb path of the install command is the one npm run package prints', () => {
  const version = (JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(parseInstallCommands(README).debPath, `dist/lvmlockd-ts_${version}_amd64.deb`);
});

test('comments are dropped, blank lines skipped, the block ends at its fence', () => {
  const lines = sectionShellLines(SAMPLE, 'Installing (Debian 12)');
  assert.equal(lines.length, 7);
  assert.equal(lines[0], 'npm ci && npm run package');
  assert.equal(lines[3], 'update-alternatives --set lvmlockd /usr/lib/lvmlockd-ts/bin/lvmlockd');
  const c = parseInstallCommands(SAMPLE);
  assert.equal(c.debPath, 'dist/pkg_1.0_amd64.deb');
});

test('a missing, doubled or unrecognised command is an error', () => {
  const without = (re: RegExp): string => SAMPLE.split('\n').filter((l) => !re.test(l)).join('\n');
  assert.throws(() => parseInstallCommands(without(/lvmlockd-ts\/bin/)), /one switch to ours and one back to C/);
  assert.throws(() => parseInstallCommands(without(/lvm2-lockd/)), /one switch to ours and one back to C/);
  assert.throws(() => parseInstallCommands(without(/^apt install/)), /installs the \.deb/);
  assert.throws(() => parseInstallCommands(without(/npm run package/)), /builds the package/);
  assert.throws(() => parseInstallCommands(without(/^systemctl stop/)), /stops the lockspaces/);
  assert.throws(() => parseInstallCommands(without(/^systemctl restart/)), /restarts the daemon/);
  assert.throws(() => parseInstallCommands(without(/purge/)), /purges the package/);
  assert.throws(() => parseInstallCommands(SAMPLE.replace('systemctl stop lvmlocks', 'systemctl stop lvmlocks\nsystemctl stop lvmlocks')), /found 2/);
  assert.throws(() => parseInstallCommands('# x\n'), /no "## Installing \(Debian 12\)" section/);
  assert.throws(() => parseInstallCommands('## Installing (Debian 12)\n\ntext\n\n## Next\n```sh\nls\n```\n'), /has no ```sh block/);
});
