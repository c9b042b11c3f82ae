// Package kubectl holds the kubectl compatibility suite: Go tests that drive real kubectl
// binaries as processes against an in-process kubesvc server and check their output the way a
// user sees it (exact table headers and column layout, messages, exit codes).
//
// Two kubectl builds run the same steps: `$KUBESVC_BIN kubectl` (k8s.io/kubectl v1.37, built
// by `make build`) and the newest prebuilt kubectl.1.3x next to the kubectl on PATH (the
// google-cloud-cli package). A missing binary skips its runner with the reason.
//
// The package has no non-test code; nothing imports it. Run it in a private network namespace
// (hack/test.sh).
package kubectl
