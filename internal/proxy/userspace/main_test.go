package userspace

import (
	"os"
	"testing"

	"kubesvc/internal/runtime/netns/netnstest"
)

// TestMain runs the tests as PID 1 of private mount and PID namespaces, so the namespaces
// they bind-mount end with the test binary even when it crashes. The network tests also need
// a private network namespace: run under `unshare --net` (hack/test.sh).
func TestMain(m *testing.M) {
	if code, child := netnstest.PrivateNamespaces(); !child {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
