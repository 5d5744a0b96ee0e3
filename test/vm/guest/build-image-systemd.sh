#!/usr/bin/env bash
# Builds the VM tier's systemd guest from the base guest (build-image.sh): the
# same root file system plus systemd-sysv, booted with systemd as PID 1. The
# agent runs as a unit (vm-agent.service) whose script is read from the repo
# share (test/vm/guest/vm-systemd.sh), so editing it needs no rebuild. Used by
# the package test (10-package-systemd), which installs our .deb in the guests
# and runs Debian's own lvmlockd.service and lvmlocks.service.
#
# usage: build-image-systemd.sh BASE_DIR OUT_DIR
# BASE_DIR has the base image (rootfs.img, vmlinuz, initrd.img, manifest.txt);
# writes OUT_DIR/{rootfs.img,vmlinuz,initrd.img,manifest.txt}. Called by
# test/vm/lib/image.ts, which keys OUT_DIR on the base image's key and this
# script. Needs root, a loop device, e2fsck/resize2fs and the Debian mirror.
set -euo pipefail

BASE=${1:?base image dir}
OUT=${2:?out dir}
TMP="$OUT.tmp.$$"
MNT="$TMP/mnt"

unmount_all() {
  for m in proc sys dev/pts dev ""; do
    mountpoint -q "$MNT/$m" 2>/dev/null && umount -l "$MNT/$m" || true
  done
}
cleanup() {
  unmount_all
  rm -rf "$TMP"
}
trap cleanup EXIT
rm -rf "$TMP"; mkdir -p "$MNT" "$TMP/out"

t0=$(date +%s)
cp --sparse=always "$BASE/rootfs.img" "$TMP/out/rootfs.img"
# room for systemd and for what the tests install (our package: ~120 MiB)
truncate -s +768M "$TMP/out/rootfs.img"
e2fsck -fy "$TMP/out/rootfs.img" >/dev/null 2>&1 || [ $? -le 1 ]
resize2fs -f "$TMP/out/rootfs.img" >/dev/null 2>&1
mount -o loop "$TMP/out/rootfs.img" "$MNT"
mount -t proc proc "$MNT/proc"
mount -t sysfs sys "$MNT/sys"
mount --bind /dev "$MNT/dev"
mount --bind /dev/pts "$MNT/dev/pts"
cp /etc/resolv.conf "$MNT/etc/resolv.conf"

echo "[vm-image-systemd] apt-get install systemd-sysv"
{
  chroot "$MNT" apt-get update
  chroot "$MNT" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd-sysv
} > "$TMP/apt.log" 2>&1 || { tail -40 "$TMP/apt.log" >&2; exit 1; }

# The agent: a stub in the image mounts the repo share and runs the script
# from the repo (as /sbin/vm-init does for the base guest).
cat > "$MNT/sbin/vm-agent-start" <<'EOS'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
modprobe 9pnet_virtio; modprobe 9p
mountpoint -q /repo || mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none repo /repo
[ -f /repo/test/vm/guest/vm-systemd.sh ] && exec /bin/sh /repo/test/vm/guest/vm-systemd.sh
echo "vm-agent: /repo/test/vm/guest/vm-systemd.sh not found" > /dev/console
exit 1
EOS
chmod 0755 "$MNT/sbin/vm-agent-start"
cat > "$MNT/etc/systemd/system/vm-agent.service" <<'EOS'
[Unit]
Description=VM tier agent (commands from the test host over virtio-serial)
After=systemd-udevd.service systemd-modules-load.service
Wants=systemd-udevd.service

[Service]
ExecStart=/sbin/vm-agent-start
Restart=always
RestartSec=1
# commands the agent runs belong to it; systemctl reboot must not wait for them
TimeoutStopSec=5

[Install]
WantedBy=multi-user.target
EOS
mkdir -p "$MNT/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/vm-agent.service "$MNT/etc/systemd/system/multi-user.target.wants/vm-agent.service"
# No login prompts on the consoles; nothing waits for a network that is
# configured by vm-systemd.sh.
for u in serial-getty@ttyS0.service getty@tty1.service systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$MNT/etc/systemd/system/$u"
done
# Services never start by themselves (the tests enable what they use), as in
# the base image.
rm -f "$MNT"/etc/systemd/system/multi-user.target.wants/{sanlock,wdmd,corosync,dlm,lvmlockd,lvmlocks}.service 2>/dev/null || true

rm -rf "$MNT"/var/cache/apt/archives/*.deb "$MNT"/var/lib/apt/lists/* "$MNT"/usr/share/doc/* "$MNT"/usr/share/man/* \
       "$MNT"/usr/share/locale/*
echo vm > "$MNT/etc/hostname"
{
  cat "$BASE/manifest.txt"
  echo "variant=systemd"
  echo "systemd-built=$(date -u +%FT%TZ)"
  chroot "$MNT" dpkg-query -W -f='${Package}=${Version}\n' systemd systemd-sysv 2>/dev/null || true
} > "$TMP/out/manifest.txt"
unmount_all
cp "$BASE/vmlinuz" "$BASE/initrd.img" "$TMP/out/"
rm -rf "$OUT"
mv "$TMP/out" "$OUT"
echo "[vm-image-systemd] built $OUT in $(( $(date +%s) - t0 ))s"
