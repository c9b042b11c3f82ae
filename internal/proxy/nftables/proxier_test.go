package nftables

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"kubesvc/internal/proxy"
	"kubesvc/internal/runtime/netns"
)

const dialTimeout = 5 * time.Second

// TestProxier_ClusterIP covers the cluster-IP cases on one node, for each family (PX-02):
// every endpoint gets connections (PX-E-05), the client's pod IP is kept (PX-M-03: no
// masquerade from pods), zero endpoints are rejected at once (PX-T-01; ICMPv6 for IPv6), an
// undefined port is rejected, ClientIP affinity sticks (PX-A-02), traffic from off the cluster
// is masqueraded (PX-M-03b), a pod reaches itself through the VIP (hairpin, PX-M-03a), UDP
// works.
func TestProxier_ClusterIP(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testClusterIP(t, f) })
	}
}

func testClusterIP(t *testing.T, f family) {
	w := f.world(t, "a", "b", "c", "client")
	ep := func(pod string) proxy.Endpoint { return f.ep(w, pod, true) }
	web := svc("web", f.vip(10), 80, ep("a"), ep("b"), ep("c"))
	empty := svc("empty", f.vip(11), 80)
	sticky := svc("sticky", f.vip(12), 80, ep("a"), ep("b"), ep("c"))
	sticky.AffinityTimeout = time.Hour
	dns := svc("dns", f.vip(13), 53, ep("a"), ep("b"))
	dns.Name.Protocol, dns.Protocol = corev1.ProtocolUDP, corev1.ProtocolUDP
	w.sync(f.snapshot(web, empty, sticky, dns), true)
	client := f.ip(w, "client").String()

	t.Run("PX-E-05 every endpoint gets traffic", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 60 && len(seen) < 3; i++ {
			pod, src, err := dial(w.pods["client"], f.at(10, 80), dialTimeout)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if src != client {
				t.Fatalf("pod %s saw source %s, want the client pod's %s (no masquerade)", pod, src, client)
			}
			seen[pod]++
		}
		if len(seen) != 3 {
			t.Fatalf("endpoints reached: %v, want a, b and c", seen)
		}
	})
	t.Run("PX-T-01 no endpoints is connection refused", func(t *testing.T) {
		start := time.Now()
		_, _, err := dial(w.pods["client"], f.at(11, 80), dialTimeout)
		if !isRefused(err) {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
		if d := time.Since(start); d > f.refuseWithin {
			t.Fatalf("refusal took %s", d)
		}
	})
	t.Run("NFT cluster-ips-check rejects undefined ports", func(t *testing.T) {
		if _, _, err := dial(w.pods["client"], f.at(10, 81), dialTimeout); !isRefused(err) {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
	})
	t.Run("PX-A-02 affinity sticks", func(t *testing.T) {
		first, _, err := dial(w.pods["client"], f.at(12, 80), dialTimeout)
		must(t, err)
		for i := 0; i < 20; i++ {
			pod, _, err := dial(w.pods["client"], f.at(12, 80), dialTimeout)
			must(t, err)
			if pod != first {
				t.Fatalf("connection %d reached %s, first reached %s", i, pod, first)
			}
		}
	})
	t.Run("PX-M-03b off-cluster client to a cluster IP is masqueraded", func(t *testing.T) {
		pod, src, err := dial(w.client, f.at(10, 80), dialTimeout)
		must(t, err)
		if src != f.bridgeIP.String() {
			t.Fatalf("pod %s saw %s, want the node's bridge address %s (not the LAN client's %s)", pod, src, f.bridgeIP, f.clientIP)
		}
	})
	t.Run("PX-M-03a hairpin", func(t *testing.T) {
		// A pod reaching a VIP whose only endpoint is itself: masqueraded, so the reply
		// comes back through the node.
		self := svc("self", f.vip(14), 80, ep("a"))
		w.sync(f.snapshot(web, empty, sticky, dns, self), false, self.Name)
		pod, src, err := dial(w.pods["a"], f.at(14, 80), dialTimeout)
		must(t, err)
		if pod != "a" || src == f.ip(w, "a").String() {
			t.Fatalf("hairpin reached %s from %s, want a from a masqueraded address", pod, src)
		}
	})
	t.Run("UDP", func(t *testing.T) {
		pod, err := dialUDP(w.pods["client"], f.at(13, 53), dialTimeout)
		must(t, err)
		if pod != "a" && pod != "b" {
			t.Fatalf("UDP reached %q", pod)
		}
	})
}

// TestProxier_External covers, for each family (PX-02), NodePort from the LAN (PX-T-05:
// masqueraded), externalTrafficPolicy Local (PX-T-03: the client's source kept; dropped
// without a local endpoint), a NodePort without endpoints (PX-T-01) and an externalIP.
func TestProxier_External(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testExternal(t, f) })
	}
}

func testExternal(t *testing.T, f family) {
	w := f.world(t, "a", "b")
	remoteEP := proxy.Endpoint{IP: f.remoteEP, Port: 8080, Ready: true, Serving: true, NodeName: "node2"}
	np := svc("np", f.vip(20), 80, f.ep(w, "a", true), f.ep(w, "b", true))
	np.NodePort = 30080
	local := svc("local", f.vip(21), 80, f.ep(w, "a", true), remoteEP)
	local.NodePort, local.ExternalPolicyLocal = 30081, true
	remote := svc("remote", f.vip(22), 80, remoteEP)
	remote.NodePort, remote.ExternalPolicyLocal = 30082, true
	ext := svc("ext", f.vip(23), 80, f.ep(w, "b", true))
	ext.ExternalIPs = []netip.Addr{f.nodeIP}
	ext.Port = 8888
	empty := svc("emptynp", f.vip(24), 80)
	empty.NodePort = 30083
	allowed := svc("allowed", f.vip(25), 80, f.ep(w, "a", true))
	allowed.LoadBalancerIPs = []netip.Addr{f.lbIP}
	allowed.LoadBalancerSourceRanges = []netip.Prefix{netip.PrefixFrom(f.clientIP, f.clientIP.BitLen())}
	denied := svc("denied", f.vip(26), 80, f.ep(w, "a", true))
	denied.Port, denied.NodePort = 81, 30086
	denied.LoadBalancerIPs = []netip.Addr{f.lbIP}
	denied.LoadBalancerSourceRanges = []netip.Prefix{podCIDR, podCIDR6}
	w.sync(f.snapshot(np, local, remote, ext, empty, allowed, denied), true)

	t.Run("PX-T-05 NodePort from the LAN is masqueraded", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			pod, src, err := dial(w.client, f.node(30080), dialTimeout)
			must(t, err)
			if pod != "a" && pod != "b" {
				t.Fatalf("reached %q", pod)
			}
			if src == f.clientIP.String() {
				t.Fatalf("pod saw the client's own address %s: not masqueraded", src)
			}
		}
	})
	t.Run("PX-T-03 eTP Local keeps the source IP", func(t *testing.T) {
		pod, src, err := dial(w.client, f.node(30081), dialTimeout)
		must(t, err)
		if pod != "a" || src != f.clientIP.String() {
			t.Fatalf("reached %s from %s, want a from %s", pod, src, f.clientIP)
		}
	})
	t.Run("PX-T-03 eTP Local without local endpoint drops", func(t *testing.T) {
		_, _, err := dial(w.client, f.node(30082), 2*time.Second)
		if err == nil || isRefused(err) {
			t.Fatalf("dial: %v, want a timeout (dropped, not rejected)", err)
		}
	})
	t.Run("PX-T-01 NodePort without endpoints is refused", func(t *testing.T) {
		if _, _, err := dial(w.client, f.node(30083), dialTimeout); !isRefused(err) {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
	})
	t.Run("externalIP", func(t *testing.T) {
		pod, _, err := dial(w.client, f.node(8888), dialTimeout)
		must(t, err)
		if pod != "b" {
			t.Fatalf("reached %q", pod)
		}
	})
	t.Run("PX-F-01 loadBalancerSourceRanges", func(t *testing.T) {
		if pod, _, err := dial(w.client, hostPort(f.lbIP, 80), dialTimeout); err != nil || pod != "a" {
			t.Fatalf("client inside the ranges: %q, %v", pod, err)
		}
		if _, _, err := dial(w.client, hostPort(f.lbIP, 81), 2*time.Second); err == nil || isRefused(err) {
			t.Fatalf("client outside the ranges: %v, want a timeout (dropped)", err)
		}
		if pod, _, err := dial(w.client, f.node(30086), dialTimeout); err != nil || pod != "a" {
			t.Fatalf("the ranges must not apply to the NodePort: %q, %v", pod, err)
		}
	})
}

// TestProxier_IncrementalSync asserts on what a sync sends (NFT-S-02, NFT-S-03): adding one
// endpoint to one service rewrites that service's chains and sends only its changed
// elements; an unchanged snapshot sends nothing but the empty batch; removing a service
// deletes its objects; traffic follows.
func TestProxier_IncrementalSync(t *testing.T) {
	w := newWorld(t, "a", "b", "client")
	var sts []*proxy.ServiceState
	for i := 0; i < 50; i++ {
		sts = append(sts, svc("s"+itoa(i), "10.96.1."+itoa(i+1), 80, w.ep("a", true)))
	}
	w.sync(snapshot(sts...), true)
	var log []string
	w.dp.SetOpLog(&log)

	w.sync(snapshot(sts...), false)
	if len(log) != 0 {
		t.Fatalf("unchanged sync sent %d operations:\n%s", len(log), strings.Join(log, "\n"))
	}

	changed := svc("s7", "10.96.1.8", 80, w.ep("a", true), w.ep("b", true))
	sts[7] = changed
	w.sync(snapshot(sts...), false, changed.Name)
	text := strings.Join(log, "\n")
	for _, line := range log {
		if !strings.Contains(line, "default/s7/") && !strings.Contains(line, "element") {
			t.Fatalf("operation on another service: %q\n%s", line, text)
		}
	}
	// The service's chain is rewritten; of the elements, only the new endpoint's hairpin entry
	// is sent (the service-ips element keeps pointing at the chain).
	if n := strings.Count(text, "element"); n != 1 ||
		!strings.Contains(text, "add element ip hairpin-endpoints { 10.244.0.3 }") || !strings.Contains(text, "flush chain ip service-") {
		t.Fatalf("adding one endpoint sent:\n%s", text)
	}
	seen := map[string]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		pod, _, err := dial(w.pods["client"], "10.96.1.8:80", dialTimeout)
		must(t, err)
		seen[pod] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("after the incremental sync reached %v, want a and b", seen)
	}

	// Emptying the service: its element moves from service-ips to no-endpoint-services, b
	// leaves hairpin-endpoints (a stays: 49 other services use it), its chain goes.
	gone := svc("s7", "10.96.1.8", 80)
	sts[7] = gone
	w.sync(snapshot(sts...), false, gone.Name)
	text = strings.Join(log, "\n")
	for _, want := range []string{
		"delete element ip service-ips { 10.96.1.8 . 6 . 80 }",
		"add element ip no-endpoint-services { 10.96.1.8 . 6 . 80 : goto reject-chain }",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("missing %q in:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "element"); n != 3 || !strings.Contains(text, "delete element ip hairpin-endpoints { 10.244.0.3 }") ||
		!strings.Contains(text, "delete chain ip service-") {
		t.Fatalf("emptying the service sent:\n%s", text)
	}
	if _, _, err := dial(w.pods["client"], "10.96.1.8:80", dialTimeout); !isRefused(err) {
		t.Fatalf("dial emptied service: %v, want ECONNREFUSED", err)
	}
	// Removing a service whose cluster IP another port shares keeps the cluster-ips element.
	delete(snapshot().Services, gone.Name)
	snap := snapshot(append(sts[:7:7], sts[8:]...)...)
	w.sync(snap, false, gone.Name)
	text = strings.Join(log, "\n")
	if !strings.Contains(text, "delete element ip cluster-ips { 10.96.1.8 }") || !strings.Contains(text, "delete element ip no-endpoint-services") {
		t.Fatalf("removing the service:\n%s", text)
	}
}

// TestProxier_Cleanup: Cleanup leaves no kubesvc table (issue item 4), and is safe twice.
func TestProxier_Cleanup(t *testing.T) {
	w := newWorld(t)
	w.sync(snapshot(svc("x", "10.96.0.1", 80)), true)
	must(t, w.dp.Cleanup())
	must(t, w.dp.Cleanup())
	fd, err := unix.Open(w.node, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	conn, err := nftables.New(nftables.WithNetNSFd(fd))
	must(t, err)
	tables, err := conn.ListTables()
	must(t, err)
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, TableName) {
			t.Fatalf("table %s left in family %d", tb.Name, tb.Family)
		}
	}
}

// TestProxier_RestartKeepsRules: a new Proxier (an agent restart) takes over the table the old
// one left with a full sync; traffic flows before, between and after.
func TestProxier_RestartKeepsRules(t *testing.T) {
	w := newWorld(t, "a", "client")
	snap := snapshot(svc("web", "10.96.0.30", 80, w.ep("a", true)))
	w.sync(snap, true)
	_, _, err := dial(w.pods["client"], "10.96.0.30:80", dialTimeout)
	must(t, err)
	must(t, w.dp.Close())
	_, _, err = dial(w.pods["client"], "10.96.0.30:80", dialTimeout)
	must(t, err) // rules stay while no agent runs
	dp2, err := New(Config{NetNS: w.node})
	must(t, err)
	w.dp = dp2
	w.sync(snap, true)
	_, _, err = dial(w.pods["client"], "10.96.0.30:80", dialTimeout)
	must(t, err)
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

// TestProxier_UDPConntrackCleanup: a UDP flow (one client socket, so one conntrack entry)
// moves to another endpoint when its endpoint goes, once the stale entry is deleted
// (PX-C-01; AF_INET6 entries for IPv6, PX-02); without the cleanup it keeps going to the old
// endpoint's address.
func TestProxier_UDPConntrackCleanup(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { testUDPConntrackCleanup(t, f) })
	}
}

func testUDPConntrackCleanup(t *testing.T, f family) {
	w := f.world(t, "a", "b", "client")
	udp := func(eps ...proxy.Endpoint) *proxy.ServiceState {
		st := svc("dns", f.vip(53), 53, eps...)
		st.Name.Protocol, st.Protocol = corev1.ProtocolUDP, corev1.ProtocolUDP
		return st
	}
	before := f.snapshot(udp(f.ep(w, "a", true)))
	name := udp().Name
	w.sync(before, true)
	c, err := netns.DialTimeout(w.pods["client"], "udp", f.at(53, 53), dialTimeout)
	must(t, err)
	defer c.Close()
	ask := func() string {
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("hi")); err != nil {
			return err.Error()
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return err.Error()
		}
		return strings.Fields(string(buf[:n]))[0]
	}
	// The first datagrams may wait for ARP or neighbour discovery on a loaded machine: retry
	// for a while.
	for got, start := "", time.Now(); got != "a"; got = ask() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("first datagrams answered by %q", got)
		}
	}
	after := f.snapshot(udp(f.ep(w, "b", true)))
	w.sync(after, false, name)
	if os.Getenv("TEST_SKIP_CONNTRACK_CLEANUP") == "" { // proves the test can fail
		must(t, netns.Do(w.node, func() error {
			return proxy.CleanStaleUDP(before, after, sets.New(name), false)
		}))
	}
	start := time.Now()
	for time.Since(start) < time.Second {
		if got := ask(); got == "b" {
			return
		}
	}
	t.Fatalf("the UDP flow did not move to b within 1 s of the sync")
}
