#!/usr/bin/env bash
# `make image`: builds the Dockerfile with buildah (vfs storage, chroot isolation: no daemon, no
# privileges beyond root). BASE and BUILD_BASE are the Dockerfile's base images; by default the
# local base hack/image/make-base.sh makes (no image registry is reachable here). With a registry:
#   BASE=node:20-bookworm-slim BUILD_BASE=node:20-bookworm make image
set -euo pipefail
cd "$(dirname "$0")"
. ./common.sh
need buildah buildah
if [ -z "${BASE:-}" ] || [ -z "${BUILD_BASE:-}" ]; then
  ./make-base.sh
  BASE=${BASE:-$BASE_IMAGE}
  BUILD_BASE=${BUILD_BASE:-$BASE_IMAGE}
fi
log "building $IMAGE (BUILD_BASE=$BUILD_BASE, BASE=$BASE)"
start=$SECONDS
# --network host: the build stage's npm install reaches the npm registry as this machine does.
# The machine's CA bundle (it may trust a TLS-inspecting proxy on the way to the npm registry)
# is lent to the build stage's RUN steps, not copied into any layer.
ca=()
bundle=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
if [ -f "$bundle" ]; then
  ca=(--volume "$bundle:/run/virtfleet-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/virtfleet-build-ca.crt)
fi
buildah bud --quiet --layers=false --network host --pull=false "${ca[@]}" \
  --build-arg "BASE=$BASE" --build-arg "BUILD_BASE=$BUILD_BASE" -t "$IMAGE" -f ../../Dockerfile ../..
log "built $IMAGE in $((SECONDS - start)) s"
