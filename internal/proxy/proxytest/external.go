package proxytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

// runProxyEnv makes the test binary a stand-alone proxy (see main_test.go).
const runProxyEnv = "PROXYTEST_RUN_PROXY"

// External reports the PROXYTEST_EXTERNAL harness mode: the agents run with --proxy-mode=none
// and the test binary itself runs the proxy (proxy.Proxier with the mode's dataplane) in every
// node's network namespace, as kube-proxy runs beside a kubelet. It exercises the dataplanes
// apart from their wiring into the agent; "agent restarted" then restarts that proxy process.
func External() bool { return os.Getenv("PROXYTEST_EXTERNAL") != "" }

// extProxy is a node's proxy process beside its agent: the test binary (External) or
// `kubesvc agent --kubeconfig` reading kube-apiserver (APIKube).
type extProxy struct {
	node  *testcluster.Node
	log   string
	args  []string // the command, run in the node's network namespace
	env   []string // added to the test's environment
	ready string   // the log line of its first sync
	agent bool     // a `kubesvc agent --kubeconfig` (--cleanup applies to its state)
	cmd   *exec.Cmd
	done  chan struct{}
}

// startExternalProxies starts the proxy process of each node and waits for their first
// syncs. agentArgs are extra flags of a `kubesvc agent --kubeconfig` proxy.
func (e *Env) startExternalProxies(t *testing.T, mode string, agentArgs []string) {
	t.Helper()
	e.ext = map[string]*extProxy{}
	svcCIDR, _, clusterCIDR, clusterDNS := worldRanges()
	for _, n := range e.Nodes {
		p := &extProxy{node: n, log: filepath.Join(e.World.Dir(), "proxy-"+n.Name+".log")}
		if e.kube != nil {
			p.agent = true
			p.args = append([]string{e.World.Bin, "agent", "--kubeconfig", e.kube.kubeconfig,
				"--proxy-mode=" + mode, "--node-name", n.Name, "--node-ip", n.IP.String(),
				"--cluster-cidr", clusterCIDR, "--service-cidr", svcCIDR,
				// Its cluster DNS serves on the node IP (never asked here; upstreams are the
				// world's unroutable resolver).
				"--cluster-dns", clusterDNS, "--resolv-conf", e.World.ResolvConf,
			}, agentArgs...)
			p.ready = "kubesvc agent: services of node " + n.Name + " synced"
		} else {
			p.args = []string{os.Args[0]}
			p.env = []string{runProxyEnv + "=" + mode, "PROXYTEST_KUBECONFIG=" + e.World.Kubeconfig,
				"PROXYTEST_NODE_NAME=" + n.Name, "PROXYTEST_NODE_IP=" + n.IP.String()}
			p.ready = "first sync done"
		}
		e.ext[n.Name] = p
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				b, _ := os.ReadFile(p.log)
				t.Logf("proxy log of %s:\n%s", n.Name, tailLines(string(b), 60))
			}
		})
		p.start(t)
	}
}

// start starts the proxy and waits for its first sync.
func (p *extProxy) start(t *testing.T) {
	t.Helper()
	pid, err := p.node.AgentPID()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p.log)
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "--"}, p.args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	done := p.done
	go func() { _ = cmd.Wait(); close(done) }()
	servertest.WaitFor(t, time.Minute, "external proxy on "+p.node.Name, func() error {
		b, _ := os.ReadFile(p.log)
		b = b[len(before):]
		select {
		case <-done:
			t.Fatalf("external proxy on %s exited:\n%s", p.node.Name, b)
		default:
		}
		if !strings.Contains(string(b), p.ready) {
			return fmt.Errorf("log: %s", tailLines(string(b), 10))
		}
		return nil
	})
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop stops the proxy with SIGTERM (its dataplane's Close, not Cleanup).
func (p *extProxy) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// stopProxy stops node n's proxy: its agent, or the proxy process beside it (External,
// APIKube).
func (e *Env) stopProxy(n *testcluster.Node) {
	if p := e.ext[n.Name]; p != nil {
		p.stop()
		return
	}
	n.StopAgent(syscall.SIGTERM)
}

// startProxy starts node n's proxy again (see stopProxy).
func (e *Env) startProxy(t *testing.T, n *testcluster.Node) {
	if p := e.ext[n.Name]; p != nil {
		p.start(t)
		return
	}
	n.StartAgent()
}
