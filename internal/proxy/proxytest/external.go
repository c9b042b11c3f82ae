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

// External reports the PROXYTEST_EXTERNAL harness mode: the agents run without
// --proxy-mode and the test binary itself runs the proxy (proxy.Proxier with the mode's
// dataplane) in every node's network namespace, as kube-proxy runs beside a kubelet. It
// exercises the dataplanes apart from their wiring into the agent; "agent restarted" then
// restarts that proxy process.
func External() bool { return os.Getenv("PROXYTEST_EXTERNAL") != "" }

// extProxy is the test binary running as one node's proxy.
type extProxy struct {
	mode string
	node *testcluster.Node
	log  string
	kcfg string
	cmd  *exec.Cmd
	done chan struct{}
}

// startExternalProxies starts the test binary as the proxy of each node.
func (e *Env) startExternalProxies(t *testing.T, mode string) {
	t.Helper()
	e.ext = map[string]*extProxy{}
	for _, n := range e.Nodes {
		p := &extProxy{mode: mode, node: n, log: filepath.Join(e.World.Dir(), "proxy-"+n.Name+".log"), kcfg: e.World.Kubeconfig}
		e.ext[n.Name] = p
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				b, _ := os.ReadFile(p.log)
				t.Logf("proxy log of %s:\n%s", n.Name, b)
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
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "--", os.Args[0])
	cmd.Env = append(os.Environ(), runProxyEnv+"="+p.mode, "PROXYTEST_KUBECONFIG="+p.kcfg,
		"PROXYTEST_NODE_NAME="+p.node.Name, "PROXYTEST_NODE_IP="+p.node.IP.String())
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
		if !strings.Contains(string(b), "first sync done") {
			return fmt.Errorf("log: %s", b)
		}
		return nil
	})
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

// stopProxy stops node n's proxy: its agent, or in the External harness mode the proxy
// process.
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
