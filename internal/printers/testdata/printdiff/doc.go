// Package printdiff is a differential test of kubesvc's internal/printers against
// kube-apiserver v1.37.2's own printers (k8s.io/kubernetes pkg/printers/internalversion), over
// randomly filled v1 objects of every kind kubesvc serves.
//
// The product module must not import k8s.io/kubernetes, so this lives under testdata (ignored
// by the go tool) and run.sh assembles a throw-away module from hack/peers' go.mod (which pins
// k8s.io/kubernetes v1.37.2), this package, and a copy of internal/printers as printdiff/ours:
//
//	internal/printers/testdata/printdiff/run.sh [-iterations=3000] [-raw]
//
// It needs no network once hack/peers/build.sh has filled the module cache.
//
// Upstream prints the object after v1 defaulting and conversion to the internal type, as
// kube-apiserver does after decoding from storage; kubesvc prints the v1 object, either
// defaulted too or, with -raw, as stored without defaults.
package printdiff
