// Package netnstest helps tests that change the network: RequireIsolated fails a test that
// does not run in a private network namespace (hack/test.sh runs the suite under
// `unshare --net`), and New creates throw-away namespaces removed at the end of the test.
//
// Only _test.go files and internal/testcluster import this package.
package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kubesvc/internal/runtime/netns"
)

// Isolated reports whether the process runs as root in a network namespace with no route out:
// no default route for IPv4 or IPv6 (the host's namespace has one). Tests that create links,
// addresses or servers must only run there.
func Isolated() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return false, "list routes: " + err.Error()
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				return false, "the network namespace has a default route (the host's?): run under `unshare --net -- bash -c 'ip link set lo up; go test ...'` (hack/test.sh)"
			}
		}
	}
	return true, ""
}

// RequireIsolated fails (never skips) the test unless Isolated.
func RequireIsolated(tb testing.TB) {
	tb.Helper()
	if ok, why := Isolated(); !ok {
		tb.Fatalf("network test refused: %s", why)
	}
}

// New creates a network namespace (loopback up) bind-mounted in a temporary directory and
// deletes it when the test ends. It requires an isolated test process.
func New(tb testing.TB) string {
	tb.Helper()
	RequireIsolated(tb)
	path := filepath.Join(tb.TempDir(), "netns")
	if err := netns.New(path); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := netns.Delete(path); err != nil {
			tb.Errorf("delete test namespace: %v", err)
		}
	})
	return path
}

// reexecEnv marks a test binary re-run by PrivateNamespaces.
const reexecEnv = "KUBESVC_TEST_PRIVATE_NAMESPACES"

// PrivateNamespaces re-runs the test binary as PID 1 of new mount and PID namespaces
// (`unshare --mount --propagation private --pid --fork --kill-child --mount-proc`) unless it
// already is that re-run. The bind mounts its tests make (network namespace files) and every
// process they start (shims, containers) then end with the test binary, even when it crashes
// or times out. Call it first in TestMain: in the parent it returns the child's exit code and
// child=false (exit with it); in the child it returns child=true (run the tests).
func PrivateNamespaces() (code int, child bool) {
	if os.Getenv(reexecEnv) != "" {
		return 0, true
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc", "--", os.Args[0]}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), reexecEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), false
		}
		fmt.Fprintf(os.Stderr, "netnstest: re-run in private namespaces: %v\n", err)
		return 1, false
	}
	return 0, false
}
