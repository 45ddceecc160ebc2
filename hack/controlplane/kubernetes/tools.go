//go:build tools

// Package controlplane pins the Kubernetes release whose kube-apiserver,
// kube-controller-manager and kubectl the tests and the local stack run. Nothing here is shipped: it only
// exists so that `go build k8s.io/kubernetes/cmd/...` resolves real modules.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
