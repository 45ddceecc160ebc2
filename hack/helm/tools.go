//go:build tools

// Package helm pins the Helm release that the chart tests run (helm lint, template, install,
// upgrade, uninstall on the test control plane). Nothing here is shipped: it only exists so that
// `go build helm.sh/helm/v4/cmd/helm` resolves real modules, as hack/controlplane does for kubectl.
package helm

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
