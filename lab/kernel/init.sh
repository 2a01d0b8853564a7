#!/bin/sh
# PID 1 of a real-kernel test VM (busybox). Loads the virtio, 9p and network
# drivers, mounts the host's root read-only and the job folder read-write,
# then runs the job's script chrooted into the host's root, so the project's
# own Node and code run on the VM's kernel. Powers off when the job ends.
say() { echo "lpt-vm: $*"; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod "/mods/$m.ko" || say "cannot load $m"; done
opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro,cache=loose" hostroot /host || say "cannot mount the host's root"
mount -t 9p -o "$opts" job /job || say "cannot mount the job folder"
if [ -e /sys/class/net/eth0 ]; then
  ip link set lo up
  ip link set eth0 up
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
fi
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t securityfs securityfs /host/sys/kernel/security
mount -t devtmpfs dev /host/dev
mount -t tmpfs run /host/run
mkdir -p /host/run/job /host/run/tmp
mount --bind /job /host/run/job
say "ready after $(cut -d' ' -f1 /proc/uptime)s"
chroot /host /usr/bin/env -i HOME=/root TMPDIR=/run/tmp \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh /run/job/job.sh </dev/null >/dev/console 2>&1
say "job exit $?"
poweroff -f
