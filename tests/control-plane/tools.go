//go:build tools

// Package tools records the Kubernetes commands we build so that `go mod tidy`
// keeps their dependencies in go.mod/go.sum. It is never compiled; build.sh runs
// `go build k8s.io/kubernetes/cmd/kube-apiserver` etc. from this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
