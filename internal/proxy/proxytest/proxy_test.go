package proxytest

import (
	"os"
	"strings"
	"testing"
)

// TestProxy runs the behaviour table against every proxy mode (TestProxy/<mode>/<case>):
// first the dynamic cases that change the world, one at a time, then the table in parallel.
// PROXYTEST_MODES (comma-separated) narrows the modes; "none" runs the world without a proxy
// (only the control cases can pass: a check of the harness itself). PROXYTEST_AGENT_ARGS adds
// agent flags.
func TestProxy(t *testing.T) {
	runTable(t, Setup)
}

// TestProxyKubeAPIServer runs the same table with proxies that read only the real
// kube-apiserver v1.37.2 (`kubesvc agent --kubeconfig`, issue 6 item 5; SetupKubeAPIServer):
// TestProxyKubeAPIServer/<mode>/<case>. It needs the peer binaries of hack/peers/build.sh
// (CI builds them) and skips, naming the build command, without them.
func TestProxyKubeAPIServer(t *testing.T) {
	if why := KubeAPIServerMissing(); why != "" {
		t.Skip(why)
	}
	runTable(t, SetupKubeAPIServer)
}

func runTable(t *testing.T, setup func(t *testing.T, mode string, agentArgs ...string) *Env) {
	modes := Modes
	if m := os.Getenv("PROXYTEST_MODES"); m != "" {
		modes = strings.Split(m, ",")
	}
	only := os.Getenv("PROXYTEST_CASES") // substring filter for debugging
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			var extra []string
			if a := os.Getenv("PROXYTEST_AGENT_ARGS"); a != "" {
				extra = strings.Fields(a) // e.g. --masquerade-all, to see the table catch it
			}
			e := setup(t, mode, extra...)
			if mode != "none" && only == "" {
				// After every case (Cleanup runs once the parallel cases are done, before
				// the world's teardown).
				t.Cleanup(func() { e.CheckAgentCleanup(t) })
			}
			for _, d := range Dynamic() {
				if only != "" && !strings.Contains(d.Name, only) {
					continue
				}
				t.Run(d.Name, func(t *testing.T) {
					if !d.Sequential {
						t.Parallel()
					}
					t.Logf("%s", d.Rule)
					d.Run(t, e)
				})
			}
			for _, c := range Cases() {
				if only != "" && !strings.Contains(c.Name, only) {
					continue
				}
				t.Run(c.Name, func(t *testing.T) {
					t.Parallel()
					e.Run(t, c)
				})
			}
		})
	}
}
