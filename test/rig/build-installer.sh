#!/usr/bin/env bash
# Builds the rig's pretend OS installer, for the PXE install test (issue 7), from
# Debian packages only: the same cloud kernel as build-guest.sh, and
#
#   installer.gz  an initramfs (busybox-static, cpio -H newc, gzip) that plays
#                 Anaconda: it loads the virtio modules, takes an address by
#                 DHCP, reads inst.ks=<url> from /proc/cmdline, fetches the
#                 Kickstart with busybox wget, prints
#                   VIRTFLEET-INSTALLER-KS sha256=<hex> bytes=<n>
#                 on ttyS0, writes "the OS" to /dev/vda (dd of disk.img, below),
#                 writes the marker
#                   VIRTFLEET-DISK-MARKER ks-sha256=<hex>
#                 at 32 MiB into the disk, prints VIRTFLEET-INSTALLER-DONE and
#                 powers the VM off, as a Kickstart's `poweroff` would.
#                 Anything that fails prints VIRTFLEET-INSTALLER-FAILED <what>
#                 and stops without powering off (the controller's timeout
#                 catches it, as it would a failed Anaconda).
#   disk.img      the installed OS: a FAT file system over the whole image
#                 (mkfs.vfat -C, files copied in with mtools' mcopy) made
#                 bootable by syslinux (its mtools installer: no loop mount,
#                 no root), holding the kernel and os.gz, an initramfs that
#                 loads virtio_blk, reads the marker from 32 MiB into /dev/vda
#                 and prints it on ttyS0, then VIRTFLEET-GUEST-READY
#                 uptime=<s> and a heartbeat every second, as the rig's guest
#                 does.
#   vmlinuz       the kernel (PXE loads it; disk.img holds a copy).
#
# Output: ${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/installer/<key>/ where
# <key> hashes the kernel, busybox and syslinux versions and this script; a
# second run only prints the directory (last line of stdout). Needs
# busybox-static, cpio, dosfstools, mtools and syslinux (hack/setup.sh).
set -euo pipefail

cache_root=${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/installer
log() { printf '==> %s\n' "$*" >&2; }

for tool in mkfs.vfat mcopy syslinux cpio; do
  if ! command -v "$tool" > /dev/null; then
    echo "build-installer: $tool is missing: install dosfstools, mtools, syslinux and cpio (hack/setup.sh)" >&2
    exit 1
  fi
done

resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
kernel_pkg=$(resolve_kernel)
if [ -z "$kernel_pkg" ] && [ "$(id -u)" -eq 0 ]; then
  apt-get update -q >&2
  kernel_pkg=$(resolve_kernel)
fi
if [ -z "$kernel_pkg" ]; then
  echo "build-installer: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2
  exit 1
fi
kernel_ver=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ { print $2 }')
busybox_ver=$(dpkg-query -W -f='${Version}' busybox-static)
syslinux_ver=$(dpkg-query -W -f='${Version}' syslinux)
key=$(printf '%s\n' "$kernel_pkg=$kernel_ver" "busybox-static=$busybox_ver" "syslinux=$syslinux_ver" "$(sha256sum < "$0")" |
  sha256sum | cut -c1-16)
out="$cache_root/$key"
if [ -f "$out/vmlinuz" ] && [ -f "$out/installer.gz" ] && [ -f "$out/disk.img" ]; then
  echo "$out"
  exit 0
fi

log "building the rig installer ($kernel_pkg $kernel_ver, busybox $busybox_ver, syslinux $syslinux_ver) in $out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kernel_pkg" >&2)
dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
moddir=$(echo "$work"/kernel/lib/modules/*)

# The modules a virtio NIC and disk need, dependencies first. No depmod here:
# each module names its dependencies in its .modinfo section ("depends=a,b").
ordered=()
module_path() {
  find "$moddir/kernel" -name "$1.ko" | head -n 1
}
add_module() {
  local name=$1 path dep seen
  for seen in "${ordered[@]:-}"; do [ "$(basename "$seen" .ko)" = "$name" ] && return 0; done
  path=$(module_path "$name")
  if [ -z "$path" ]; then echo "build-installer: module $name not in $moddir" >&2; exit 1; fi
  for dep in $(tr '\0' '\n' < "$path" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '); do
    add_module "$dep"
  done
  ordered+=("$path")
}
for name in virtio_pci virtio_net virtio_blk; do add_module "$name"; done

# A busybox root with the modules, in load order (modules.order).
make_root() {
  local root=$1
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,root,modules}
  cp /bin/busybox "$root/bin/busybox"
  local i=0
  for path in "${ordered[@]}"; do
    i=$((i + 1))
    cp "$path" "$root/modules/$(printf '%02d' "$i")-$(basename "$path")"
  done
}

# ---- the installed OS: os.gz and disk.img ----
os_root="$work/os"
make_root "$os_root"
cat > "$os_root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
n=0
while [ ! -b /dev/vda ] && [ "$n" -lt 100 ]; do n=$((n + 1)); sleep 0.1; done
marker=$(dd if=/dev/vda bs=1048576 skip=32 count=1 2>/dev/null | head -n 1 | tr -d '\000')
echo "VIRTFLEET-BOOTED-FROM-DISK ${marker:-no marker on /dev/vda}"
read -r up _ < /proc/uptime
echo "VIRTFLEET-GUEST-READY uptime=$up"
n=0
while true; do
  sleep 1
  n=$((n + 1))
  read -r up _ < /proc/uptime
  echo "VIRTFLEET-GUEST-HEARTBEAT n=$n uptime=$up"
done
INIT
chmod 755 "$os_root/init"
(cd "$os_root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -9) > "$work/os.gz"
cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"

cat > "$work/syslinux.cfg" <<'CFG'
SERIAL 0 115200
DEFAULT os
PROMPT 0
TIMEOUT 0
LABEL os
  KERNEL vmlinuz
  INITRD os.gz
  APPEND console=ttyS0 quiet
CFG
kib=$(( ( $(stat -c %s "$work/vmlinuz") + $(stat -c %s "$work/os.gz") ) / 1024 + 2048 ))
mkfs.vfat -C -n VFOS "$work/disk.img" "$kib" > /dev/null
mcopy -i "$work/disk.img" "$work/vmlinuz" "$work/os.gz" "$work/syslinux.cfg" ::/
syslinux --install "$work/disk.img"
if [ "$(stat -c %s "$work/disk.img")" -ge $((32 * 1048576)) ]; then
  echo "build-installer: disk.img reaches the marker at 32 MiB" >&2
  exit 1
fi

# ---- the installer: installer.gz ----
inst_root="$work/installer"
make_root "$inst_root"
cp "$work/disk.img" "$inst_root/disk.img"
cat > "$inst_root/udhcpc.script" <<'DHCP'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then ip route add default via "${router%% *}" dev "$interface"; fi
    ;;
esac
DHCP
chmod 755 "$inst_root/udhcpc.script"
cat > "$inst_root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() {
  echo "VIRTFLEET-INSTALLER-FAILED $*"
  exec sh -c 'while true; do sleep 3600; done'
}
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
echo "VIRTFLEET-INSTALLER-START"
ks=
for word in $(cat /proc/cmdline); do
  case "$word" in inst.ks=*) ks=${word#inst.ks=} ;; esac
done
[ -n "$ks" ] || fail "no inst.ks= on the kernel command line"
n=0
while [ ! -e /sys/class/net/eth0 ] && [ "$n" -lt 100 ]; do n=$((n + 1)); sleep 0.1; done
ip link set lo up
ip link set eth0 up || fail "no eth0"
udhcpc -i eth0 -s /udhcpc.script -q -n -t 20 -T 1 > /dev/null 2>&1 || fail "no DHCP answer on eth0"
wget -q -O /tmp/ks.cfg "$ks" || fail "cannot fetch the Kickstart"
sum=$(sha256sum /tmp/ks.cfg | cut -d ' ' -f 1)
echo "VIRTFLEET-INSTALLER-KS sha256=$sum bytes=$(wc -c < /tmp/ks.cfg)"
n=0
while [ ! -b /dev/vda ] && [ "$n" -lt 100 ]; do n=$((n + 1)); sleep 0.1; done
[ -b /dev/vda ] || fail "no disk /dev/vda"
dd if=/disk.img of=/dev/vda bs=1048576 conv=fsync 2>/dev/null || fail "cannot write the OS to /dev/vda"
printf 'VIRTFLEET-DISK-MARKER ks-sha256=%s\n' "$sum" | dd of=/dev/vda bs=1048576 seek=32 conv=fsync 2>/dev/null || fail "cannot write the marker"
sync
echo "VIRTFLEET-INSTALLER-DONE"
poweroff -f
INIT
chmod 755 "$inst_root/init"

mkdir -p "$out.tmp"
(cd "$inst_root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -9) > "$out.tmp/installer.gz"
cp "$work/vmlinuz" "$out.tmp/vmlinuz"
cp "$work/disk.img" "$out.tmp/disk.img"
printf '%s\n' "$kernel_pkg=$kernel_ver" "busybox-static=$busybox_ver" "syslinux=$syslinux_ver" > "$out.tmp/inputs"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
