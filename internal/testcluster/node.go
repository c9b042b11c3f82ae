package testcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/servertest"
)

// Node is a node of the world: its namespaces and its agent.
type Node struct {
	w *World
	// Name is the node name.
	Name string
	// IP is the node's LAN address (its InternalIP).
	IP netip.Addr
	// DataDir is the agent's --data-dir.
	DataDir string
	// NetNS is the node's network namespace.
	NetNS string
	// Args are the node's extra agent flags.
	Args []string

	holder *proc // unshare: holds the namespaces; its child is the node's PID 1
	init   int
	agent  *proc // nsenter running the agent
	dead   bool
}

// AddNode starts a node with the next LAN address and its agent, and waits until the agent
// is ready. args are extra agent flags for this node.
func (w *World) AddNode(name string, args ...string) *Node {
	w.t.Helper()
	n := w.newNode(name, args)
	n.StartAgent()
	return n
}

// newNode starts the namespaces of a node on the LAN, without agent.
func (w *World) newNode(name string, args []string) *Node {
	w.t.Helper()
	w.mu.Lock()
	ip := w.nextIP
	w.nextIP = w.nextIP.Next()
	w.mu.Unlock()
	n := &Node{w: w, Name: name, IP: ip, DataDir: filepath.Join(w.dir, "nodes", name), Args: args}
	var err error
	n.holder, err = startProc(filepath.Join(n.DataDir, "init.log"),
		"unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--mount-proc",
		"--", w.Bin, "toolbox", "pause")
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(n.cleanup)
	if n.init, err = childOf(n.holder.pid(), 10*time.Second); err != nil {
		w.t.Fatal(err)
	}
	n.NetNS = nsPath(n.holder.pid())
	waitNetns(w.t, n.NetNS)
	if err := netns.LoopbackUp(n.NetNS); err != nil {
		w.t.Fatal(err)
	}
	if err := w.connect(n.NetNS, "eth0", ip); err != nil {
		w.t.Fatalf("connect node %s: %v", name, err)
	}
	w.mu.Lock()
	w.nodes = append(w.nodes, n)
	w.mu.Unlock()
	return n
}

// Nodes returns the world's nodes.
func (w *World) Nodes() []*Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Node(nil), w.nodes...)
}

func (n *Node) logPath() string { return filepath.Join(n.DataDir, "agent.log") }

// AgentLog returns the agent's output so far.
func (n *Node) AgentLog() string { return readFile(n.logPath()) }

// StartAgent starts the node's agent and waits until it is ready.
func (n *Node) StartAgent() {
	t := n.w.t
	t.Helper()
	before := len(readFile(n.logPath()))
	if strings.HasPrefix(readFile(n.logPath()), "(") {
		before = 0
	}
	args := []string{
		"nsenter", "-t", strconv.Itoa(n.init), "-n", "-m", "-p", "--",
		n.w.Bin, "agent", "--server", n.w.Server.URL, "--token", n.w.Token,
		"--node-name", n.Name, "--node-ip", n.IP.String(), "--data-dir", n.DataDir,
		"--resolv-conf", n.w.ResolvConf,
	}
	args = append(append(args, n.w.opts.AgentArgs...), n.Args...)
	var err error
	if n.agent, err = startProc(n.logPath(), args...); err != nil {
		t.Fatal(err)
	}
	marker := "kubesvc agent: node " + n.Name + " "
	servertest.WaitFor(t, 2*time.Minute, "agent of node "+n.Name+" ready", func() error {
		log := readFile(n.logPath())
		if len(log) > before && strings.Contains(log[before:], marker) {
			return nil
		}
		if n.agent.exited() {
			t.Fatalf("agent of node %s exited:\n%s", n.Name, tail(log, 40))
		}
		return fmt.Errorf("log so far:\n%s", tail(log, 10))
	})
}

// ServerNode is a node running `kubesvc server` with its built-in agent, on port 6443 of its
// LAN address.
type ServerNode struct {
	*Node
	// URL is the server's URL on the LAN.
	URL string
	// Kubeconfig is the server's admin kubeconfig.
	Kubeconfig string
}

// AddServerNode starts a node whose namespaces run `kubesvc server` (API server, etcd,
// controllers and this node's agent) and waits until the server reports ready.
func (w *World) AddServerNode(name string, args ...string) *ServerNode {
	w.t.Helper()
	n := &ServerNode{Node: w.newNode(name, args)}
	n.URL = "https://" + n.IP.String() + ":6443"
	n.Kubeconfig = filepath.Join(n.DataDir, "admin.kubeconfig")
	n.StartServer()
	return n
}

// StartServer starts (or restarts) the node's `kubesvc server` and waits until it is ready.
func (n *ServerNode) StartServer() {
	t := n.w.t
	t.Helper()
	before := len(readFile(n.logPath()))
	if strings.HasPrefix(readFile(n.logPath()), "(") {
		before = 0
	}
	args := append([]string{
		"nsenter", "-t", strconv.Itoa(n.init), "-n", "-m", "-p", "--",
		n.w.Bin, "server", "--data-dir", n.DataDir, "--bind-address", n.IP.String(),
		"--node-name", n.Name, "--node-ip", n.IP.String(), "--etcd-client-port", "0", "--etcd-peer-port", "0",
	}, n.Args...)
	var err error
	if n.agent, err = startProc(n.logPath(), args...); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 3*time.Minute, "server on "+n.Name+" ready", func() error {
		log := readFile(n.logPath())
		if len(log) > before && strings.Contains(log[before:], "kubesvc: ready") {
			return nil
		}
		if n.agent.exited() {
			t.Fatalf("server on %s exited:\n%s", n.Name, tail(log, 40))
		}
		return fmt.Errorf("log so far:\n%s", tail(log, 10))
	})
}

// Kubectl runs `kubesvc kubectl` against this node's server.
func (n *ServerNode) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.w.Bin, append([]string{"kubectl", "--kubeconfig", n.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// AgentPID returns the agent's PID (the child of nsenter) in the test's PID namespace.
func (n *Node) AgentPID() (int, error) { return childOf(n.agent.pid(), 5*time.Second) }

// StopAgent stops the agent with sig (SIGTERM: a clean stop; SIGKILL: a crash) and waits for
// it; the node's pods keep running.
func (n *Node) StopAgent(sig syscall.Signal) {
	n.w.t.Helper()
	if n.agent == nil || n.agent.exited() {
		return
	}
	pid, err := n.AgentPID()
	if err == nil {
		_ = syscall.Kill(pid, sig)
	}
	select {
	case <-n.agent.done:
	case <-time.After(30 * time.Second):
		n.w.t.Errorf("agent of %s did not stop after %v", n.Name, sig)
		n.agent.kill(syscall.SIGKILL, time.Second)
	}
}

// Kill kills the node like a crashed machine: its PID 1 and so every process of the node
// (agent, shims, containers), and its network namespace with its links.
func (n *Node) Kill() {
	n.dead = true
	n.holder.kill(syscall.SIGKILL, 10*time.Second)
	if n.agent != nil {
		<-n.agent.done
	}
}

func (n *Node) cleanup() {
	if !n.dead {
		if n.w.t.Failed() {
			n.w.t.Logf("agent log of %s:\n%s", n.Name, tail(n.AgentLog(), 60))
		}
		n.Kill()
	}
}

// Exec runs args in the node's network, mount and PID namespaces and returns the combined
// output.
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(n.init), "-n", "-m", "-p", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// Binary returns the kubesvc binary: $KUBESVC_BIN, or one built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("KUBESVC_BIN"); b != "" {
		return b
	}
	buildOnce.Do(func() {
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildOnce.err = err
			return
		}
		dir, err := os.MkdirTemp("", "kubesvc-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "kubesvc")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "./cmd/kubesvc")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatalf("kubesvc binary (set KUBESVC_BIN to skip the build): %v", buildOnce.err)
	}
	return buildOnce.path
}

func httpGet(ctx context.Context, ns, url string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return netns.Dial(ctx, ns, network, addr)
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}
