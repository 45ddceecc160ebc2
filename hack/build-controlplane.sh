#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from Go modules (versions pinned by
# the go.mod files under hack/controlplane/) into a cache outside the work
# tree, keyed by version. Go's module and build caches are kept, so a rebuild
# after a version bump is incremental; an existing binary is reused at once.
set -euo pipefail
cd "$(dirname "$0")/controlplane"

export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
if ! command -v go >/dev/null; then
  echo "build-controlplane: Go is required to build kube-apiserver and etcd (expected at /usr/local/go/bin/go)" >&2
  exit 1
fi

cache="${VIRTFLEET_CACHE:-$HOME/.cache/virtfleet}/bin"
mkdir -p "$cache"

module_version() { # go.mod file, module path
  awk -v m="$2" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' "$1" | head -n1
}
k8s_version=$(module_version kubernetes/go.mod k8s.io/kubernetes)
etcd_version=$(module_version etcd/go.mod go.etcd.io/etcd/server/v3)

# Without these, the binaries and the API server's /version say v0.0.0-master.
k8s_ldflags() {
  local minor
  minor=$(echo "$k8s_version" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
      "$pkg" "$k8s_version" "$pkg" "$pkg" "$minor" "$pkg"
  done
}

build() { # module dir, package, output name, [ldflags]
  local dir=$1 pkg=$2 out="$cache/$3" ldflags=${4:-}
  if [ -x "$out" ]; then
    return
  fi
  echo "==> building $3 from Go modules (first build takes several minutes; progress below)"
  local start=$SECONDS
  local log="$cache/$3.build.log"
  # -v lists each package as it is compiled: print every 100th as progress.
  if ! (cd "$dir" && go build -v -ldflags "$ldflags" -o "$out.tmp" "$pkg") 2>&1 | tee "$log" |
      awk '{ n++; if (n % 100 == 0) { printf "    %d packages compiled (%s)\n", n, $0; fflush() } }' ||
      [ ! -x "$out.tmp" ]; then
    tail -n 30 "$log" >&2
    echo "build-controlplane: building $pkg failed (full log: $log)" >&2
    exit 1
  fi
  mv "$out.tmp" "$out"
  echo "    built $out in $((SECONDS - start)) s"
}

build etcd virtfleet.io/hack/controlplane/etcd "etcd-$etcd_version"
build kubernetes k8s.io/kubernetes/cmd/kube-apiserver "kube-apiserver-$k8s_version" "$(k8s_ldflags)"
build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager "kube-controller-manager-$k8s_version" "$(k8s_ldflags)"
build kubernetes k8s.io/kubernetes/cmd/kubectl "kubectl-$k8s_version" "$(k8s_ldflags)"

# helm (issue 19: the chart's tests), pinned by hack/helm/go.mod, cached by version like kubectl.
helm_version=$(module_version ../helm/go.mod helm.sh/helm/v4)
build ../helm helm.sh/helm/v4/cmd/helm "helm-$helm_version" \
  "-X helm.sh/helm/v4/internal/version.version=$helm_version -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

# argocd-health (issue 19: the Argo CD health checks' runner, hack/argocd-health): our own source,
# so cached by the hash of its files (src/devstack/binaries.ts computes the same name).
source_hash() { # dir: sha256 of go.mod, go.sum and the .go files, by name
  (cd "$1" && cat $(LC_ALL=C ls go.mod go.sum ./*.go | sed 's#^\./##' | LC_ALL=C sort) | sha256sum | cut -c1-16)
}
build ../argocd-health virtfleet.io/hack/argocd-health "argocd-health-$(source_hash ../argocd-health)"

# kstatus-check (issue 19: what Flux and kubectl-based waits compute for our kinds, hack/kstatus):
# our own source on sigs.k8s.io/cli-utils, cached by the hash of its files like argocd-health.
build ../kstatus virtfleet.io/hack/kstatus "kstatus-check-$(source_hash ../kstatus)"
