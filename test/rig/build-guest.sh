#!/usr/bin/env bash
# Builds the tiny test guest from Debian packages only: a Debian cloud kernel
# (linux-image-*-cloud-amd64, unpacked with dpkg -x) and a ~1 MB initramfs of
# busybox-static (packed with cpio -H newc, gzip). Its init mounts proc, sys
# and dev, prints "VIRTFLEET-GUEST-READY uptime=<s>" on ttyS0 (the console),
# then "VIRTFLEET-GUEST-HEARTBEAT n=<1,2,3…> uptime=<s>" there every second,
# reads commands typed on ttyS0 (`virtfleet vm console`), and serves commands
# on ttyS1: each line read is run by sh, its output is
# written back, then "VIRTFLEET-CMD-END rc=<n>".
# The virtio disk and NIC modules (virtio_pci, virtio_blk, virtio_net and what
# they need) are in /modules, in load order, NOT loaded at boot (boot time
# stays as it was): `vf-disks` loads them and waits for /dev/vda (tests that
# use a disk); `vf-net ADDR/PREFIX` loads them and puts ADDR on eth0;
# `vf-messages NAME PEER…` exchanges numbered messages with peers (TCP port
# 7000), printing each one sent and received on the console. With
# vf.diskwriter on the kernel command line, `vf-diskwriter` runs from boot:
# it writes a numbered pattern to /dev/vda without end and prints
# "VIRTFLEET-DISKCHECK n=<written> lines=<read back> bad=<wrong>" every 3 s.
# isofs is in /modules too: with vf.cidata on the kernel command line,
# `vf-cidata` loads them, finds the cloud-init seed by its label cidata, mounts
# it and prints "VIRTFLEET-CIDATA user-data sha256=<hex> device=<dev>".
#
# Output: ${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/guest/<key>/{vmlinuz,initramfs.gz}
# where <key> hashes the kernel and busybox versions, this script and
# lib-guest.sh (the steps it shares with build-installer.sh); a second run with
# the same inputs only prints the directory. Prints the directory on
# stdout (last line). Needs root for nothing but apt-get (busybox-static and
# cpio come from APT_PACKAGES in hack/setup.sh).
set -euo pipefail
. "$(dirname "$0")/lib-guest.sh"

guest_inputs
guest_cache_dir guest vmlinuz initramfs.gz

log "building the test guest ($kernel_pkg $kernel_ver, busybox $busybox_ver) in $out"
guest_fetch_kernel

root="$work/root"
busybox_root "$root" modules
# The modules a virtio disk needs, dependencies first. No depmod here: each
# module names its dependencies in its .modinfo section ("depends=a,b").
moddir=$(echo "$work"/kernel/lib/modules/*)
ordered=()
add_module() {
  local name=$1 path dep seen
  for seen in "${ordered[@]:-}"; do [ "$(basename "$seen" .ko)" = "$name" ] && return 0; done
  path=$(find "$moddir/kernel" -name "$name.ko" | head -n 1)
  if [ -z "$path" ]; then echo "build-guest: module $name not in $moddir" >&2; exit 1; fi
  for dep in $(tr '\0' '\n' < "$path" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '); do
    add_module "$dep"
  done
  ordered+=("$path")
}
for name in virtio_pci virtio_blk virtio_net isofs; do add_module "$name"; done
i=0
for path in "${ordered[@]}"; do
  i=$((i + 1))
  cp "$path" "$root/modules/$(printf '%02d' "$i")-$(basename "$path")"
done
cat > "$root/bin/vf-disks" <<'SCRIPT'
#!/bin/sh
# Loads the virtio disk modules (once) and waits up to 10 s for /dev/vda.
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
n=0
while [ ! -b /dev/vda ] && [ "$n" -lt 100 ]; do n=$((n + 1)); sleep 0.1; done
[ -b /dev/vda ] || { echo "vf-disks: no /dev/vda"; exit 1; }
SCRIPT
chmod 755 "$root/bin/vf-disks"
cat > "$root/bin/vf-diskwriter" <<'SCRIPT'
#!/bin/sh
# Writes sector i of /dev/vda ("VFBLK <i, 8 digits>"), fsync'ed, one after the other, until the
# disk ends; every 3 s it drops the page cache, reads back every sector written so far from the
# disk and prints on the console: VIRTFLEET-DISKCHECK n=<written> lines=<read back> bad=<wrong>.
vf-disks >/dev/null || exit 1
( i=0; while printf 'VFBLK %08d\n' $i | dd of=/dev/vda bs=512 seek=$i conv=notrunc,fsync 2>/dev/null; do
    i=$((i + 1)); echo $i > /tmp/vf-written
  done ) &
while sleep 3; do
  n=$(cat /tmp/vf-written 2>/dev/null || echo 0)
  sync; echo 3 > /proc/sys/vm/drop_caches
  dd if=/dev/vda bs=512 count="$n" 2>/dev/null | tr -d '\000' |
    awk -v n="$n" '{ if ($0 != sprintf("VFBLK %08d", NR - 1)) bad++ }
      END { printf "VIRTFLEET-DISKCHECK n=%d lines=%d bad=%d\n", n, NR, bad }' > /dev/console
done
SCRIPT
chmod 755 "$root/bin/vf-diskwriter"
cat > "$root/bin/vf-cidata" <<'SCRIPT'
#!/bin/sh
# Finds the cloud-init NoCloud seed as cloud-init does, by its label cidata on any block device
# (busybox findfs), mounts it (iso9660) and prints on the console
# "VIRTFLEET-CIDATA user-data sha256=<hex> device=<dev>", or "VIRTFLEET-CIDATA none: <why>"; the
# same line every 2 s, so that a reader who attached to the console late still sees it.
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
n=0
while ! dev=$(findfs LABEL=cidata 2>/dev/null) && [ "$n" -lt 100 ]; do n=$((n + 1)); sleep 0.1; done
mkdir -p /cidata
if [ -z "$dev" ]; then
  line="VIRTFLEET-CIDATA none: no block device labelled cidata"
elif ! mount -t iso9660 -o ro "$dev" /cidata 2>/dev/null; then
  line="VIRTFLEET-CIDATA none: $dev does not mount as iso9660"
elif [ ! -f /cidata/user-data ]; then
  line="VIRTFLEET-CIDATA none: $dev has no user-data"
else
  line="VIRTFLEET-CIDATA user-data sha256=$(sha256sum < /cidata/user-data | cut -d' ' -f1) device=$dev"
fi
while true; do echo "$line"; sleep 2; done
SCRIPT
chmod 755 "$root/bin/vf-cidata"
cat > "$root/bin/vf-net" <<'SCRIPT'
#!/bin/sh
# vf-net ADDR/PREFIX: loads the virtio modules (once), waits up to 10 s for eth0, puts ADDR on it.
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ "$n" -lt 100 ]; do n=$((n + 1)); sleep 0.1; done
[ -e /sys/class/net/eth0 ] || { echo "vf-net: no eth0"; exit 1; }
ip link set lo up && ip addr add "$1" dev eth0 && ip link set eth0 up
SCRIPT
chmod 755 "$root/bin/vf-net"
cat > "$root/bin/vf-messages" <<'SCRIPT'
#!/bin/sh
# vf-messages NAME PEER_ADDR…: numbered messages between guests over TCP port 7000 (busybox nc).
# To each peer, one connection (made again after a failure) carrying "NAME <n>", n = 1, 2, 3…
# every 0.2 s; before message n leaves, the console gets "VFM sent to=<peer> n=<n>". For each
# message received: "VFM recv from=<name> n=<n> prev=<the n received before from that name>".
# Counters live in /tmp/vfmsg (RAM), so a memory snapshot holds them; the first line printed
# after a restore shows the restored counter (sent: n-1; recv: prev).
me=$1
shift
mkdir -p /tmp/vfmsg
nc -ll -p 7000 -e vf-messages-recv </dev/null >/dev/null 2>&1 &
for peer in "$@"; do
  ( while true; do vf-messages-send "$me" "$peer" | nc "$peer" 7000 >/dev/null 2>&1; sleep 1; done ) </dev/null >/dev/null 2>&1 &
done
SCRIPT
chmod 755 "$root/bin/vf-messages"
cat > "$root/bin/vf-messages-send" <<'SCRIPT'
#!/bin/sh
# Message stream of vf-messages from $1 to $2 on stdout; the count goes on across reconnects.
f=/tmp/vfmsg/sent-$2
n=0
[ -s "$f" ] && read -r n < "$f"
while sleep 0.2; do
  n=$((n + 1))
  echo "$n" > "$f"
  echo "VFM sent to=$2 n=$n" > /dev/ttyS0
  echo "$1 $n" || exit 0
done
SCRIPT
chmod 755 "$root/bin/vf-messages-send"
cat > "$root/bin/vf-messages-recv" <<'SCRIPT'
#!/bin/sh
# One connection of vf-messages' server (nc -e): stdin is the peer's "NAME <n>" lines. The last
# n is kept in a variable (a file rewritten under a snapshot could be caught empty), and in a
# file for the next connection from that peer.
prev=
while read -r from n; do
  f=/tmp/vfmsg/recv-$from
  if [ -z "$prev" ]; then prev=0; [ -s "$f" ] && read -r prev < "$f"; fi
  echo "VFM recv from=$from n=$n prev=$prev" > /dev/ttyS0
  prev=$n
  echo "$n" > "$f"
done
SCRIPT
chmod 755 "$root/bin/vf-messages-recv"
write_init "$root/init" heartbeat <<'INIT'
# The command server: one command per line on ttyS1, started before the
# marker so that a client that saw the marker is never early. fd 3 keeps the
# port open from here on, so input is buffered even before the loop reads.
if [ -e /dev/ttyS1 ]; then
  stty -F /dev/ttyS1 raw -echo 2>/dev/null
  exec 3<>/dev/ttyS1
  (
    while read -r line; do
      sh -c "$line" 2>&1
      echo "VIRTFLEET-CMD-END rc=$?"
    done
  ) <&3 >&3 &
fi
# A shell on the console for `virtfleet vm console`: not interactive, so it prints nothing
# until a command is typed (heartbeat lines stay whole); the tty echoes what is typed.
( while true; do sh </dev/ttyS0 >/dev/ttyS0 2>&1; sleep 1; done ) &
# vf.diskwriter on the kernel command line: write a pattern to /dev/vda and check it (vf-diskwriter).
if grep -qw vf.diskwriter /proc/cmdline; then vf-diskwriter </dev/null >/dev/null 2>&1 & fi
# vf.cidata on the kernel command line: print the sha256 of the NoCloud seed's user-data (vf-cidata).
if grep -qw vf.cidata /proc/cmdline; then vf-cidata </dev/null >/dev/console 2>&1 & fi
INIT

mkdir -p "$out.tmp"
pack_initramfs "$root" "$out.tmp/initramfs.gz"
cp "$work"/kernel/boot/vmlinuz-* "$out.tmp/vmlinuz"
guest_cache_publish
