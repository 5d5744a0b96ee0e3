#!/bin/bash
# npm run package: builds dist/lvmlockd-ts_<version>_amd64.deb with dpkg-deb.
#
# The package carries the Node.js 20 runtime that runs this build (Debian 12's
# nodejs is 18), the compiled JavaScript, the production node_modules (koffi
# with its linux-x64 binary, prom-client and its dependencies), the man pages
# made from docs/man, and maintainer scripts that offer the C daemon and ours
# through one "lvmlockd" alternative (packaging/debian/README.Debian).
# Nothing is fetched: no network at build or install time.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
VERSION=$(node -p 'require("./package.json").version')
NODE_BIN=${LVMLOCKD_PACKAGE_NODE:-$(command -v node)}
NODE_VERSION=$("$NODE_BIN" --version)
case "$NODE_VERSION" in
    v20.*) ;;
    *) echo "package: $NODE_BIN is Node $NODE_VERSION; the package must carry Node 20" >&2; exit 1 ;;
esac
ARCH=$(dpkg --print-architecture)
[ "$ARCH" = amd64 ] || { echo "package: builds amd64 only (this is $ARCH)" >&2; exit 1; }

[ -n "${LVMLOCKD_PACKAGE_NO_BUILD:-}" ] || npm run build --silent

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/lvmlockd-ts-pkg.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
LIB=$STAGE/usr/lib/lvmlockd-ts
DOC=$STAGE/usr/share/doc/lvmlockd-ts
mkdir -p "$LIB/bin" "$LIB/man" "$LIB/node_modules" "$STAGE/usr/sbin" "$STAGE/usr/share/man/man8" "$DOC" "$STAGE/DEBIAN"

# Runtime: the node binary, its licence (MIT, with the licences of what it bundles).
install -m 755 "$NODE_BIN" "$LIB/node"
NODE_DOC=/usr/share/doc/nodejs
if [ -f "$NODE_DOC/LICENSE" ]; then install -m 644 "$NODE_DOC/LICENSE" "$DOC/LICENSE.nodejs"; fi

# Our code: compiled src only (no tests, simulator or benchmarks).
mkdir -p "$LIB/dist"
cp -r dist/src "$LIB/dist/src"
install -m 644 package.json "$LIB/package.json"
for prog in lvmlockd lvmlockctl leasectl; do
    sed "1s|^#!.*|#!/usr/lib/lvmlockd-ts/node|" "bin/$prog" > "$LIB/bin/$prog"
    chmod 755 "$LIB/bin/$prog"
done
ln -s ../lib/lvmlockd-ts/bin/leasectl "$STAGE/usr/sbin/leasectl"

# Production dependencies, as npm resolved them.
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
    rel=${dir#"$ROOT"/node_modules/}
    mkdir -p "$LIB/node_modules/$(dirname "$rel")"
    cp -r "$dir" "$LIB/node_modules/$rel"
done

# Man pages: lvmlockd(8) and lvmlockctl(8) are alternatives' slaves, leasectl(8) is ours alone.
MANTMP=$STAGE/man.tmp
node scripts/md2man.js docs/man "$MANTMP"
for page in lvmlockd.8 lvmlockctl.8; do gzip -9n < "$MANTMP/$page" > "$LIB/man/$page.gz"; done
gzip -9n < "$MANTMP/leasectl.8" > "$STAGE/usr/share/man/man8/leasectl.8.gz"
rm -rf "$MANTMP"

install -m 644 packaging/debian/README.Debian "$DOC/README.Debian"
cat > "$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lvmlockd-ts

Files: *
License: GPL-2.0-only
Comment: lvmlockd-ts itself. On Debian systems the full text of the GPL 2 is in
 /usr/share/common-licenses/GPL-2.

Files: usr/lib/lvmlockd-ts/node
License: MIT
Comment: Node.js $NODE_VERSION (binary as built by NodeSource, from the host's nodejs
 package); its licence and those of the libraries it bundles are in LICENSE.nodejs.

Files: usr/lib/lvmlockd-ts/node_modules/*
License: MIT or Apache-2.0
Comment: koffi (MIT), prom-client (Apache-2.0), tdigest (MIT), bintrees (MIT),
 @opentelemetry/api (Apache-2.0); each directory carries its licence file.
EOF

install -m 755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$STAGE/DEBIAN/"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: lvmlockd-ts
Version: $VERSION
Architecture: amd64
Maintainer: lvmlockd-ts developers <lvmlockd-ts@localhost>
Installed-Size: $SIZE
Depends: libc6 (>= 2.28), libstdc++6 (>= 9), libgcc-s1, lvm2, lvm2-lockd
Suggests: sanlock-wdmd | sanlock, prometheus-node-exporter
Section: admin
Priority: optional
Description: LVM lock daemon lvmlockd in TypeScript, with its own sanlock leases
 A drop-in replacement for LVM2's lvmlockd and lvmlockctl: same socket, same
 protocol, same answers to lvm commands. sanlock VGs are served by a native
 implementation of sanlock's on-disk leases (no sanlock daemon needed), with
 the host watchdog through wdmd. Adds Prometheus metrics, a JSON log format,
 lvmlockctl --holders and leasectl. Carries its own Node.js 20 runtime.
 .
 Installed next to lvm2-lockd; "update-alternatives --set lvmlockd ..." switches
 between the two daemons (see README.Debian).
EOF

mkdir -p dist
OUT=dist/lvmlockd-ts_${VERSION}_amd64.deb
dpkg-deb --root-owner-group -Zgzip -z6 --build "$STAGE" "$OUT" >/dev/null
echo "$OUT"
