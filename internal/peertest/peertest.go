// Package peertest runs the reference peers built by hack/peers/build.sh (upstream etcd,
// kube-apiserver, kube-controller-manager, kube-proxy and CoreDNS) as child processes, so
// differential tests and benchmarks can give kubesvc and the real components the same input.
//
// It is test support: only _test.go files and benchmark programs under cmd/ or hack/ may
// import it. It never imports k8s.io/kubernetes; it only execs the prebuilt binaries found in
// Dir. Every process binds 127.0.0.1 only (unless a test gives kube-apiserver a BindAddress of
// its own network namespace), on ports picked at start, runs in its own process
// group and receives SIGKILL if the thread that started it dies (Linux Pdeathsig), so a
// crashed or timed-out test does not leak servers.
//
// Two flavours exist for each peer: StartX(tb, ...) ties the process to a test through
// tb.Cleanup and reports the peer's log tail when the test failed; RunX(ctx, ...) returns a
// handle whose Stop the caller owns and which also stops when ctx is done.
package peertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// KubeVersion is the Kubernetes release the peers are built from.
const KubeVersion = "v1.37.2"

// DirEnv names the environment variable that overrides the peer binary directory.
const DirEnv = "KUBESVC_PEERS_DIR"

// Names of the peer binaries produced by hack/peers/build.sh.
const (
	EtcdBinary                  = "etcd"
	KubeAPIServerBinary         = "kube-apiserver"
	KubeControllerManagerBinary = "kube-controller-manager"
	KubeProxyBinary             = "kube-proxy"
	CoreDNSBinary               = "coredns"
)

// Dir returns the peer binary directory ($KUBESVC_PEERS_DIR, or
// $HOME/.cache/kubesvc/peers/v1.37.2) and whether kube-apiserver and etcd are present there.
func Dir() (string, bool) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".cache", "kubesvc", "peers", KubeVersion)
	}
	return dir, isExecutable(filepath.Join(dir, KubeAPIServerBinary)) &&
		isExecutable(filepath.Join(dir, EtcdBinary))
}

// Path returns the full path of the named peer binary in Dir and whether it exists and is
// executable.
func Path(name string) (string, bool) {
	dir, _ := Dir()
	p := filepath.Join(dir, name)
	return p, isExecutable(p)
}

// SkipIfMissing skips the test unless every named peer binary (all five when names is
// empty) has been built, naming the build command in the skip message.
func SkipIfMissing(tb testing.TB, names ...string) {
	tb.Helper()
	if len(names) == 0 {
		names = []string{EtcdBinary, KubeAPIServerBinary, KubeControllerManagerBinary, KubeProxyBinary, CoreDNSBinary}
	}
	var missing []string
	for _, n := range names {
		if _, ok := Path(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		dir, _ := Dir()
		tb.Skipf("peer binaries %v not found in %s: run hack/peers/build.sh %s first (or set %s)",
			missing, dir, strings.Join(missing, " "), DirEnv)
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
