#!/usr/bin/env bash
# Builds the VM tier's guest: a Debian bookworm root filesystem image with
# LVM2, the C lvmlockd, sanlock, corosync, dlm_controld, a kernel + a small
# initramfs, the host's node binary and a stub init that runs
# test/vm/guest/vm-init.sh from the repo share.
#
# usage: build-image.sh OUT_DIR NODE_BINARY
# Writes OUT_DIR/{rootfs.img,vmlinuz,initrd.img,manifest.txt}; called by
# test/vm/lib/image.ts, which picks OUT_DIR from a hash of every input (this
# script with its package list, the node binary), so the image is only
# rebuilt when one of them changes. Needs root, debootstrap, mkfs.ext4.
set -euo pipefail

OUT=${1:?out dir}
NODE_BIN=${2:?node binary}
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=bookworm
# Kernel in the image itself (its modules match), dm + dlm + 9p are modules.
PKGS=lvm2,lvm2-lockd,dlm-controld,corosync,sanlock,kmod,iproute2,udev,iputils-ping,procps,util-linux,psmisc,linux-image-amd64,initramfs-tools,zstd

mirror() {
  local m=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    m=$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && !/security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

TMP="$OUT.tmp.$$"
ROOT="$TMP/root"
cleanup() {
  # never leave mounts behind (debootstrap mounts proc/sys in the chroot)
  for m in proc sys dev/pts dev; do
    mountpoint -q "$ROOT/$m" 2>/dev/null && umount -l "$ROOT/$m" || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
rm -rf "$TMP"; mkdir -p "$ROOT"

MIRROR=$(mirror)
echo "[vm-image] debootstrap $SUITE from $MIRROR"
t0=$(date +%s)
debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$ROOT" "$MIRROR" > "$TMP/debootstrap.log" 2>&1 || {
  tail -40 "$TMP/debootstrap.log" >&2; exit 1; }
echo "[vm-image] debootstrap done in $(( $(date +%s) - t0 ))s"

# A small initramfs: only what mounting root on virtio-blk ext4 needs.
sed -i 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
sed -i 's/^COMPRESS=.*/COMPRESS=gzip/' "$ROOT/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic > "$ROOT/etc/initramfs-tools/modules"
chroot "$ROOT" update-initramfs -u -k all > "$TMP/initramfs.log" 2>&1 || { cat "$TMP/initramfs.log" >&2; exit 1; }
KVER=$(ls "$ROOT/lib/modules" | head -1)

# Node (same Debian 12 base as the host, dynamically linked against libc/libstdc++).
install -m 0755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
# The real init lives in the repo (test/vm/guest/vm-init.sh, shared read-only
# over virtio-9p), so changing it does not rebuild the image.
cat > "$ROOT/sbin/vm-init" <<'EOS'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
modprobe 9pnet_virtio; modprobe 9p
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none repo /repo
[ -f /repo/test/vm/guest/vm-init.sh ] && exec /bin/sh /repo/test/vm/guest/vm-init.sh
echo "vm-init: /repo/test/vm/guest/vm-init.sh not found" > /dev/console
exec /bin/sh
EOS
chmod 0755 "$ROOT/sbin/vm-init"
mkdir -p "$ROOT/repo" "$ROOT/out" "$ROOT/etc/lvm/backup" "$ROOT/etc/lvm/archive"
echo vm > "$ROOT/etc/hostname"
# Services never start by themselves: tests start each daemon explicitly.
rm -f "$ROOT"/etc/systemd/system/multi-user.target.wants/* 2>/dev/null || true
# Trim.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* \
       "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/*

mkdir -p "$TMP/out"
cp "$ROOT/boot/vmlinuz-$KVER" "$TMP/out/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$TMP/out/initrd.img"
rm -f "$ROOT"/boot/initrd.img-* "$ROOT"/boot/vmlinuz-*
for m in proc sys dev/pts dev; do
  mountpoint -q "$ROOT/$m" 2>/dev/null && umount -l "$ROOT/$m" || true
done

SIZE_MB=$(( $(du -sm "$ROOT" | cut -f1) + 384 ))
mkfs.ext4 -q -F -L vmroot -E lazy_itable_init=0 -d "$ROOT" "$TMP/out/rootfs.img" "${SIZE_MB}M"
{
  echo "suite=$SUITE"
  echo "mirror=$MIRROR"
  echo "kernel=$KVER"
  echo "packages=$PKGS"
  echo "node=$("$NODE_BIN" --version)"
  echo "built=$(date -u +%FT%TZ)"
  chroot "$ROOT" dpkg-query -W -f='${Package}=${Version}\n' lvm2 lvm2-lockd sanlock corosync dlm-controld linux-image-amd64 2>/dev/null || true
} > "$TMP/out/manifest.txt"
rm -rf "$OUT"
mv "$TMP/out" "$OUT"
echo "[vm-image] built $OUT in $(( $(date +%s) - t0 ))s"
