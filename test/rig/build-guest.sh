#!/usr/bin/env bash
# Builds the tiny test guest from Debian packages only: a Debian cloud kernel
# (linux-image-*-cloud-amd64, unpacked with dpkg -x) and a ~1 MB initramfs of
# busybox-static (packed with cpio -H newc, gzip). Its init mounts proc, sys
# and dev, prints "VIRTFLEET-GUEST-READY uptime=<s>" on ttyS0 (the console),
# then "VIRTFLEET-GUEST-HEARTBEAT n=<1,2,3…> uptime=<s>" there every second,
# and serves commands on ttyS1: each line read is run by sh, its output is
# written back, then "VIRTFLEET-CMD-END rc=<n>".
#
# Output: ${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/guest/<key>/{vmlinuz,initramfs.gz}
# where <key> hashes the kernel and busybox versions and this script; a second
# run with the same inputs only prints the directory. Prints the directory on
# stdout (last line). Needs root for nothing but apt-get (busybox-static and
# cpio come from APT_PACKAGES in hack/setup.sh).
set -euo pipefail

cache_root=${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/guest
log() { printf '==> %s\n' "$*" >&2; }

# The versioned kernel package the cloud-amd64 meta package points at (the
# cloud flavour boots in ~1.3 s under TCG; it has the 8250 UART built in).
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
  echo "build-guest: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2
  exit 1
fi
kernel_ver=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ { print $2 }')
busybox_ver=$(dpkg-query -W -f='${Version}' busybox-static)
key=$(printf '%s\n' "$kernel_pkg=$kernel_ver" "busybox-static=$busybox_ver" "$(sha256sum "$0")" |
  sha256sum | cut -c1-16)
out="$cache_root/$key"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.gz" ]; then
  echo "$out"
  exit 0
fi

log "building the test guest ($kernel_pkg $kernel_ver, busybox $busybox_ver) in $out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kernel_pkg" >&2)
dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,root}
cp /bin/busybox "$root/bin/busybox"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
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
read -r up _ < /proc/uptime
echo "VIRTFLEET-GUEST-READY uptime=$up"
# A heartbeat on the console every second, numbered from 1 without a gap:
# a log that goes on counting shows the same guest still running (through a
# live migration, say) and that no output was lost or repeated.
n=0
while true; do
  sleep 1
  n=$((n + 1))
  read -r up _ < /proc/uptime
  echo "VIRTFLEET-GUEST-HEARTBEAT n=$n uptime=$up"
done
INIT
chmod 755 "$root/init"

mkdir -p "$out.tmp"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -9) > "$out.tmp/initramfs.gz"
cp "$work"/kernel/boot/vmlinuz-* "$out.tmp/vmlinuz"
printf '%s\n' "$kernel_pkg=$kernel_ver" "busybox-static=$busybox_ver" > "$out.tmp/inputs"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
