#!/usr/bin/env bash
# Installs everything `make test` and `make run` need on a fresh Debian 12
# machine (as root): Debian packages, npm dependencies, and the control-plane
# binaries. Idempotent: a second run checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# Debian packages: openssl makes the local control plane's certificates;
# procps and iproute2 are used by tests that look at processes and ports.
# libvirt-dev, pkg-config, g++ and python3 (for node-gyp) build the libvirt
# binding; libvirt-clients gives virsh, the baseline the libvirt bench compares with.
# The end-to-end rig (test/rig) runs real libvirtd + QEMU/TCG hosts:
# libvirt-daemon(-driver-qemu) gives libvirtd and virtlockd, qemu-system-x86
# and qemu-utils the guests, iptables partitions hosts, tini reaps each rig
# host's QEMU processes at once; busybox-static and cpio build the test guest.
# prometheus gives promtool, which checks /metrics and the alert rules;
# libxml2-utils gives xmllint, without which virt-xml-validate cannot run.
# isolinux, syslinux-common and xorriso build the bootable ISO the images rig test boots a
# VM from through its CD-ROM (test/e2e/images-rig.test.ts); virtfleet itself uses none of them.
# chromium is the real browser the web console's tests drive through playwright-core
# (Playwright's own browser download is not used).
APT_PACKAGES=(ca-certificates openssl make procps iproute2 git
  libvirt-dev libvirt-clients pkg-config g++ python3
  libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils iptables tini
  busybox-static cpio
  dnsmasq-base ipxe-qemu dosfstools mtools syslinux isolinux syslinux-common xorriso
  prometheus libxml2-utils chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or later is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# Install only when package-lock.json changed since the last install, so a
# running test or dev stack never has node_modules changed under it. `npm ci`
# cannot be used: this registry lacks some optional platform packages (e.g.
# @unrs/resolver-binding-android-arm-eabi) that npm ci insists the lock lists;
# `npm install --no-save` installs the locked versions without touching the lock.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.virtfleet-lock-hash
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  log "installing npm dependencies (locked versions)"
  npm install --no-save --no-audit --no-fund
  echo "$lock_hash" > "$stamp"
fi

hack/build-controlplane.sh

# The e2e rig's tiny guest (Debian kernel + busybox initramfs), cached under
# ${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/guest by its inputs. The rig
# (namespaces, libvirtd) needs root, so only root builds it.
# The PXE install test's pretend installer (build-installer.sh) is cached the same way.
if [ "$(id -u)" -eq 0 ]; then
  test/rig/build-guest.sh >/dev/null
  test/rig/build-installer.sh >/dev/null
fi
