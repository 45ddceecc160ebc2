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
# <key> hashes the kernel, busybox and syslinux versions, this script and
# lib-guest.sh (the steps it shares with build-guest.sh); a second run only
# prints the directory (last line of stdout). Needs
# busybox-static, cpio, dosfstools, mtools and syslinux (hack/setup.sh).
set -euo pipefail
. "$(dirname "$0")/lib-guest.sh"

for tool in mkfs.vfat mcopy syslinux cpio; do
  if ! command -v "$tool" > /dev/null; then
    echo "build-installer: $tool is missing: install dosfstools, mtools, syslinux and cpio (hack/setup.sh)" >&2
    exit 1
  fi
done

guest_inputs syslinux
syslinux_ver=$(dpkg-query -W -f='${Version}' syslinux)
guest_cache_dir installer vmlinuz installer.gz disk.img

log "building the rig installer ($kernel_pkg $kernel_ver, busybox $busybox_ver, syslinux $syslinux_ver) in $out"
guest_fetch_kernel
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
  busybox_root "$root" modules
  local i=0
  for path in "${ordered[@]}"; do
    i=$((i + 1))
    cp "$path" "$root/modules/$(printf '%02d' "$i")-$(basename "$path")"
  done
}

# ---- the installed OS: os.gz and disk.img ----
os_root="$work/os"
make_root "$os_root"
write_init "$os_root/init" heartbeat <<'INIT'
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
n=0
while [ ! -b /dev/vda ] && [ "$n" -lt 100 ]; do n=$((n + 1)); sleep 0.1; done
marker=$(dd if=/dev/vda bs=1048576 skip=32 count=1 2>/dev/null | head -n 1 | tr -d '\000')
echo "VIRTFLEET-BOOTED-FROM-DISK ${marker:-no marker on /dev/vda}"
INIT
pack_initramfs "$os_root" "$work/os.gz"
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
write_init "$inst_root/init" <<'INIT'
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

mkdir -p "$out.tmp"
pack_initramfs "$inst_root" "$out.tmp/installer.gz"
cp "$work/vmlinuz" "$out.tmp/vmlinuz"
cp "$work/disk.img" "$out.tmp/disk.img"
guest_cache_publish
