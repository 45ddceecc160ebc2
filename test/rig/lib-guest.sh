# Shared by build-guest.sh and build-installer.sh (sourced, after `set -euo
# pipefail`): the steps both take to make a busybox initramfs boot a Debian
# cloud kernel, and to cache the result by its inputs. Each build:
#
#   guest_inputs [pkg …]         resolve the kernel; inputs=(kernel=ver busybox-static=ver pkg=ver …)
#   guest_cache_dir NAME FILE …  out=<cache>/NAME/<key>; if the FILEs are there, print out and exit
#   guest_fetch_kernel           the kernel package unpacked in $work/kernel
#   busybox_root DIR [SUBDIR …]  a root with /bin/busybox and the usual directories
#   write_init FILE [heartbeat]  FILE: the init's mounts, then stdin, then the ready marker and heartbeat
#   pack_initramfs DIR FILE      DIR as a gzipped newc cpio
#   guest_cache_publish          $out.tmp (with an inputs file) becomes $out; print out
#
# <key> hashes the inputs, the calling script and this file.

log() { printf '==> %s\n' "$*" >&2; }
guest_builder=$(basename "$0" .sh)

# The versioned kernel package the cloud-amd64 meta package points at (the
# cloud flavour boots in ~1.3 s under TCG; it has the 8250 UART built in).
resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# Sets kernel_pkg, kernel_ver, busybox_ver and inputs (one "package=version"
# a word: the kernel, busybox-static and the installed packages named).
guest_inputs() {
  kernel_pkg=$(resolve_kernel)
  if [ -z "$kernel_pkg" ] && [ "$(id -u)" -eq 0 ]; then
    apt-get update -q >&2
    kernel_pkg=$(resolve_kernel)
  fi
  if [ -z "$kernel_pkg" ]; then
    echo "$guest_builder: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2
    exit 1
  fi
  kernel_ver=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ { print $2 }')
  busybox_ver=$(dpkg-query -W -f='${Version}' busybox-static)
  inputs=("$kernel_pkg=$kernel_ver" "busybox-static=$busybox_ver")
  local pkg
  for pkg in "$@"; do
    inputs+=("$pkg=$(dpkg-query -W -f='${Version}' "$pkg")")
  done
}

# Sets out; prints it and exits when every file named is in it already.
guest_cache_dir() {
  local name=$1 key file
  shift
  key=$(printf '%s\n' "${inputs[@]}" "$(cat "$0" "${BASH_SOURCE[0]}" | sha256sum)" | sha256sum | cut -c1-16)
  out="${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/$name/$key"
  for file in "$@"; do
    [ -f "$out/$file" ] || return 0
  done
  echo "$out"
  exit 0
}

# Sets work (a temp dir, removed on exit) and unpacks the kernel package in $work/kernel.
guest_fetch_kernel() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kernel_pkg" >&2)
  dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
}

busybox_root() {
  local root=$1 dir
  shift
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,root}
  for dir in "$@"; do mkdir -p "$root/$dir"; done
  cp /bin/busybox "$root/bin/busybox"
}

# An init: busybox's applets, proc, sys and dev mounted, then what stdin says;
# with "heartbeat", then the guest's ready marker on the console and a
# heartbeat there every second.
write_init() {
  local file=$1 heartbeat=${2:-}
  {
    cat <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
INIT
    cat
    if [ "$heartbeat" = heartbeat ]; then
      cat <<'INIT'
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
    fi
  } > "$file"
  chmod 755 "$file"
}

pack_initramfs() {
  (cd "$1" && find . -print0 | cpio --null -o -H newc --quiet | gzip -9) > "$2"
}

# $out.tmp, with the inputs written into it, becomes $out: a cache entry is whole or absent.
guest_cache_publish() {
  printf '%s\n' "${inputs[@]}" > "$out.tmp/inputs"
  rm -rf "$out"
  mv "$out.tmp" "$out"
  echo "$out"
}
