#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian 12 machine
# with Node 20 (run as root): LVM2 with the C lvmlockd (the reference), sanlock,
# corosync, namespace tools, then the npm dependencies, then the build.
set -euo pipefail
cd "$(dirname "$0")/.."
# install_missing [apt options --] PKG...: installs the packages not yet installed
install_missing() {
  local opts=()
  if [[ " $* " == *" -- "* ]]; then
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
  fi
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${opts[@]}" "${missing[@]}" >/dev/null
  fi
}
install_missing lvm2 lvm2-lockd sanlock corosync iproute2 util-linux mount coreutils procps
# VM tier (npm run test:vm): qemu + debootstrap, without recommends (no GUI)
install_missing --no-install-recommends -- qemu-system-x86 debootstrap e2fsprogs
# LVM2's own test suite (npm run test:upstream) is built on the host from lvm2's source package
install_missing --no-install-recommends -- gcc g++ make dpkg-dev xz-utils
# node_exporter for the metrics scrape test: downloaded, never installed (its
# package would start a listener on the host); the test unpacks it.
EXPORTER_DIR=/var/cache/lvmlockd-ts-pkgs
if ! compgen -G "$EXPORTER_DIR/prometheus-node-exporter_*.deb" >/dev/null; then
  mkdir -p "$EXPORTER_DIR"
  (cd "$EXPORTER_DIR" && apt-get download -qq prometheus-node-exporter 2>/dev/null) ||
    echo "setup: could not download prometheus-node-exporter; the metrics scrape test will skip" >&2
fi
# Installed services must not run on the host itself: tests start their own per namespace.
for svc in lvmlockd sanlock wdmd corosync lvm2-lvmpolld dlm; do
  systemctl stop "$svc" >/dev/null 2>&1 || true
  pkill -x "$svc" >/dev/null 2>&1 || true
done
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
