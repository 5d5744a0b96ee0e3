#!/bin/sh
# The agent of a systemd guest (image from build-image-systemd.sh): run by
# vm-agent.service through the image's /sbin/vm-agent-start, which mounts the
# repo share at /repo. systemd, as PID 1, has already mounted /proc, /sys,
# /dev, /run and started udev; this sets the name and address from the kernel
# command line (vm.name=, vm.ip=), loads the modules the tests use, mounts the
# VM's log dir (/out) and runs the agent in the foreground (the unit restarts
# it). Runs again at every boot of the VM (its root disk persists).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
stage() { echo "vm-systemd: +$(cut -d' ' -f1 /proc/uptime)s $*" > /dev/console; }
stage start
arg() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
NAME=$(arg vm.name); IP=$(arg vm.ip)
hostname "${NAME:-vm}"
echo "${NAME:-vm}" > /etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "${NAME:-vm}" > /etc/hosts

for m in virtio_console virtio_net dm_mod dm_snapshot; do
  modprobe "$m" 2>/dev/null
done
ip link set lo up
if [ -n "$IP" ] && ip link show eth0 >/dev/null 2>&1; then
  ip addr replace "$IP" dev eth0
  ip link set eth0 up
fi
mkdir -p /out
mountpoint -q /out || mount -t 9p -o trans=virtio,version=9p2000.L,cache=none out /out 2>/dev/null || stage "no out share"

PORT=""
for d in /sys/class/virtio-ports/*; do
  [ -f "$d/name" ] && [ "$(cat "$d/name")" = agent ] && PORT=/dev/$(basename "$d")
done
stage "${NAME} ip=${IP} agent=${PORT:-none} kernel=$(uname -r)"
if [ -z "$PORT" ] || [ ! -f /repo/dist/test/vm/guest/agent.js ]; then
  stage "cannot start the agent"
  exit 1
fi
exec /usr/local/bin/node /repo/dist/test/vm/guest/agent.js "$PORT" >> /out/agent.log 2>&1 < /dev/null
