// Package testcluster builds namespaced test worlds (DESIGN §7) for integration and end-to-end
// tests on the real kernel: a LAN bridge (198.51.100.0/24) in its own network namespace, the
// test process attached to it as 198.51.100.1 (where the in-process API server listens), a
// client host (198.51.100.2) and nodes (198.51.100.11, .12, ...). Each node is a network,
// mount and PID namespace whose PID 1 is `kubesvc toolbox pause`; its agent is the built
// kubesvc binary entered into those namespaces, so killing a node's PID 1 kills everything of
// that node, as a crashed machine would. Nothing has a route out.
//
// Every process is started with Pdeathsig from a dedicated thread, and every namespace is held
// by a process, so a crashed test leaves nothing behind; t.Cleanup removes it all in order on
// the normal path. The harness refuses to run in a namespace with a default route (the
// host's): run tests under `unshare --net` (hack/test.sh).
//
// Only _test.go files import this package.
package testcluster

import (
	"context"
	"fmt"
	"net"
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

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/netns/netnstest"
	"kubesvc/internal/server"
	"kubesvc/internal/servertest"
)

// Addresses of the test LAN (RFC 5737 TEST-NET-2).
var (
	LAN        = netip.MustParsePrefix("198.51.100.0/24")
	ServerIP   = netip.MustParseAddr("198.51.100.1")
	ClientIP   = netip.MustParseAddr("198.51.100.2")
	firstNode  = netip.MustParseAddr("198.51.100.11")
	bridgeName = "lan0"
)

// worlds serializes worlds in one test process: they share the LAN addresses.
var worlds sync.Mutex

// Options configure a World.
type Options struct {
	// Nodes are the node names to start (default: none; add with AddNode).
	Nodes []string
	// ServerOptions change the in-process server's configuration.
	ServerOptions []servertest.Option
	// AgentArgs are extra `kubesvc agent` flags for every node (e.g. --container-backoff=1s).
	AgentArgs []string
	// ResolvConf is the nodes' resolver configuration (--resolv-conf), default
	// "nameserver 203.0.113.53\nsearch lan.test\n".
	ResolvConf string
}

// World is a running test world. Its methods fail the test on errors.
type World struct {
	t   testing.TB
	dir string
	// Bin is the kubesvc binary agents and kubectl run from.
	Bin string
	// Server is the in-process API server on ServerIP.
	Server *server.Server
	// Client is an admin client.
	Client kubernetes.Interface
	// Kubeconfig is the admin kubeconfig path.
	Kubeconfig string
	// Token is the join token.
	Token string
	// ResolvConf is the path of the nodes' --resolv-conf.
	ResolvConf string

	opts   Options
	lan    *proc
	client *Host
	mu     sync.Mutex
	nodes  []*Node
	nextIP netip.Addr
	links  []string // links in the test's own namespace
}

// Host is a network namespace on the LAN (the client host).
type Host struct {
	Name string
	IP   netip.Addr
	// NetNS is the host's network namespace (/proc/<pid>/ns/net of its holder).
	NetNS  string
	holder *proc
}

// New builds a world: the LAN, the test process's link to it, the client host, the server
// and the nodes of opts. Everything is removed when the test ends.
func New(t testing.TB, opts Options) *World {
	t.Helper()
	netnstest.RequireIsolated(t)
	worlds.Lock()
	t.Cleanup(worlds.Unlock)
	w := &World{t: t, dir: t.TempDir(), Bin: Binary(t), opts: opts, nextIP: firstNode}
	t.Cleanup(w.cleanupLinks)
	var err error
	w.lan, err = startProc(filepath.Join(w.dir, "lan.log"), "unshare", "--net", "--kill-child", "--", w.Bin, "toolbox", "pause")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.lan.kill(syscall.SIGKILL, 5*time.Second) })
	lanNS := nsPath(w.lan.pid())
	waitNetns(t, lanNS)
	if err := netns.Do(lanNS, func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		return netlink.LinkSetUp(br)
	}); err != nil {
		t.Fatalf("LAN bridge: %v", err)
	}
	if err := netns.LoopbackUp(lanNS); err != nil {
		t.Fatal(err)
	}
	// The test process itself: the server's address.
	if err := w.connect("", "kst-lan0", ServerIP); err != nil {
		t.Fatalf("connect the test process to the LAN: %v", err)
	}
	w.links = append(w.links, "kst-lan0")
	w.client = w.newHost("client", ClientIP)

	w.ResolvConf = filepath.Join(w.dir, "resolv.conf")
	rc := opts.ResolvConf
	if rc == "" {
		rc = "nameserver 203.0.113.53\nsearch lan.test\n"
	}
	if err := os.WriteFile(w.ResolvConf, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	sopts := append([]servertest.Option{func(c *server.Config) {
		c.BindAddress = ServerIP.String()
		c.DisableAgent = true
	}}, opts.ServerOptions...)
	w.Server = servertest.StartTestServer(t, sopts...)
	w.Kubeconfig = w.Server.Kubeconfig
	w.Token = w.Server.Token()
	if w.Client, err = kubernetes.NewForConfig(w.Server.RESTConfig); err != nil {
		t.Fatal(err)
	}
	for _, n := range opts.Nodes {
		w.AddNode(n)
	}
	return w
}

// Dir returns the world's temporary directory.
func (w *World) Dir() string { return w.dir }

// ClientHost returns the client host.
func (w *World) ClientHost() *Host { return w.client }

func nsPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/ns/net" }

// waitNetns waits until the holder at path has left the test's network namespace.
func waitNetns(t testing.TB, path string) {
	t.Helper()
	self, err := netns.Inode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 10*time.Second, "namespace holder "+path, func() error {
		ino, err := netns.Inode(path)
		if err != nil {
			return err
		}
		if ino == self {
			return fmt.Errorf("still in the test's namespace")
		}
		return nil
	})
}

// connect links the namespace ns ("" is the test's own) to the LAN bridge with a veth whose
// end in ns is named ifname and has ip/24.
func (w *World) connect(ns, ifname string, ip netip.Addr) error {
	lanNS := nsPath(w.lan.pid())
	lanFD, err := syscall.Open(lanNS, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(lanFD)
	peer := "p" + strconv.Itoa(int(ip.As4()[3])) + "-" + strconv.Itoa(os.Getpid()%100000)
	attrs := netlink.LinkAttrs{Name: ifname}
	if ns != "" {
		fd, err := syscall.Open(ns, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		attrs.Namespace = netlink.NsFd(fd)
	}
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peer, PeerNamespace: netlink.NsFd(lanFD)}); err != nil {
		return fmt.Errorf("veth %s: %w", ifname, err)
	}
	if err := netns.Do(lanNS, func() error {
		br, err := netlink.LinkByName(bridgeName)
		if err != nil {
			return err
		}
		l, err := netlink.LinkByName(peer)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(l, br); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}); err != nil {
		return fmt.Errorf("LAN side of %s: %w", ifname, err)
	}
	configure := func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(LAN.Bits(), 32)}}
		if err := netlink.AddrAdd(l, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}
	if ns == "" {
		return configure()
	}
	return netns.Do(ns, configure)
}

func (w *World) cleanupLinks() {
	for _, l := range w.links {
		if link, err := netlink.LinkByName(l); err == nil {
			_ = netlink.LinkDel(link)
		}
	}
}

// newHost starts a plain network namespace on the LAN.
func (w *World) newHost(name string, ip netip.Addr) *Host {
	w.t.Helper()
	p, err := startProc(filepath.Join(w.dir, name+".log"), "unshare", "--net", "--kill-child", "--", w.Bin, "toolbox", "pause")
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { p.kill(syscall.SIGKILL, 5*time.Second) })
	h := &Host{Name: name, IP: ip, NetNS: nsPath(p.pid()), holder: p}
	waitNetns(w.t, h.NetNS)
	if err := netns.LoopbackUp(h.NetNS); err != nil {
		w.t.Fatal(err)
	}
	if err := w.connect(h.NetNS, "eth0", ip); err != nil {
		w.t.Fatalf("connect %s: %v", name, err)
	}
	return h
}

// HTTPGet GETs url from inside the namespace ns ("" is the test's) and returns the body.
func HTTPGet(ctx context.Context, ns, url string) (string, error) {
	return httpGet(ctx, ns, url)
}

// Kubectl runs `kubesvc kubectl` with the admin kubeconfig and returns its combined output.
func (w *World) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, w.Bin, append([]string{"kubectl", "--kubeconfig", w.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// KubectlCmd returns an unstarted `kubesvc kubectl` command with the admin kubeconfig.
func (w *World) KubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, w.Bin, append([]string{"kubectl", "--kubeconfig", w.Kubeconfig}, args...)...)
}

// WaitPod waits until cond accepts the pod namespace/name and returns it.
func (w *World) WaitPod(timeout time.Duration, namespace, name string, what string, cond func(*corev1.Pod) error) *corev1.Pod {
	w.t.Helper()
	var pod *corev1.Pod
	servertest.WaitFor(w.t, timeout, fmt.Sprintf("pod %s/%s %s", namespace, name, what), func() error {
		p, err := w.Client.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = p
		return cond(p)
	})
	return pod
}

// PodReady accepts a pod whose Ready condition is True.
func PodReady(p *corev1.Pod) error {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("not ready: phase %s, conditions %v, containers %v", p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
}

// readFile returns the file's content, or a note when it cannot be read.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
