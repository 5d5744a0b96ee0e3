#!/bin/sh
# PID 1 of a test VM: the image's stub /sbin/vm-init mounts the repo share
# (virtio-9p tag "repo", read-only, at /repo) and execs this script.
# Reads vm.name=, vm.ip= from /proc/cmdline, mounts the VM's log dir (tag
# "out", at /out), configures eth0 and starts the agent (dist/test/vm/guest/agent.js)
# on the virtio-serial port named "agent". Then reaps orphans forever.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
mountpoint -q /dev/shm || mount -t tmpfs tmpfs /dev/shm
mountpoint -q /run || mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw / 2>/dev/null
mkdir -p /run/lvm /run/lock/lvm /run/sanlock /run/dlm_controld /var/log/cluster
mount -t configfs none /sys/kernel/config 2>/dev/null
mount -t debugfs none /sys/kernel/debug 2>/dev/null

stage() { echo "vm-init: +$(cut -d' ' -f1 /proc/uptime)s $*" > /dev/console; }
stage start
arg() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
NAME=$(arg vm.name); IP=$(arg vm.ip)
hostname "${NAME:-vm}"
echo "${NAME:-vm}" > /etc/hostname

# udev: lvm (udev_sync = 1) waits for it to create the /dev/mapper nodes;
# dlm_controld and libdlm want /dev/misc/dlm-* (51-dlm.rules)
[ -x /lib/systemd/systemd-udevd ] && /lib/systemd/systemd-udevd --daemon >/dev/null 2>&1

for m in virtio_console virtio_net 9pnet_virtio 9p dm_mod dm_flakey dm_delay dm_snapshot dlm configfs; do
  modprobe "$m" 2>/dev/null
done
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config 2>/dev/null
stage modules loaded
udevadm trigger --action=add --subsystem-match=block --subsystem-match=misc >/dev/null 2>&1
udevadm settle -t 20 >/dev/null 2>&1

stage udev settled
ip link set lo up
if [ -n "$IP" ] && ip link show eth0 >/dev/null 2>&1; then
  ip addr add "$IP" dev eth0
  ip link set eth0 up
fi
echo "127.0.0.1 localhost" > /etc/hosts

mount -t 9p -o trans=virtio,version=9p2000.L,cache=none out /out 2>/dev/null || echo "vm-init: no out share" > /dev/console

PORT=""
for d in /sys/class/virtio-ports/*; do
  [ -f "$d/name" ] && [ "$(cat "$d/name")" = agent ] && PORT=/dev/$(basename "$d")
done
# no udev: create the device node if devtmpfs did not
if [ -n "$PORT" ] && [ ! -e "$PORT" ]; then
  mknod "$PORT" c $(tr ':' ' ' < "/sys/class/virtio-ports/$(basename "$PORT")/dev")
fi
echo "vm-init: ${NAME} ip=${IP} agent=${PORT:-none} kernel=$(uname -r)" > /dev/console

if [ -n "$PORT" ] && [ -f /repo/dist/test/vm/guest/agent.js ]; then
  ( while :; do
      /usr/local/bin/node /repo/dist/test/vm/guest/agent.js "$PORT" >> /out/agent.log 2>&1 < /dev/null
      echo "vm-init: agent exited $?, restarting" > /dev/console
      sleep 1
    done ) &
else
  echo "vm-init: cannot start the agent" > /dev/console
fi

# PID 1: reap whatever gets re-parented to us.
trap '' TERM INT HUP
while :; do
  wait 2>/dev/null
  sleep 5
done
