package nftables

import (
	"fmt"
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

// The IPv6 half of the cases of proxier_test.go, on a dual-stack node (newDualWorld) with
// single-stack IPv6 Services (PX-02: the ip6 table is a proxier of its own), then dual-stack
// Services. Addresses: pods fd00:10:244::2.., bridge fd00:10:244::1, node 2001:db8:1::11,
// LAN client 2001:db8:1::2, Services fd00:10:96::/112.

// refuseWithin6 bounds an IPv6 TCP refusal: one SYN retransmission (1 s) plus slack for a
// loaded machine (see "PX-T-01 no endpoints is connection refused (ICMPv6)").
const refuseWithin6 = 3 * time.Second

func hostPort(ip netip.Addr, port int) string { return netip.AddrPortFrom(ip, uint16(port)).String() }

// TestProxier_IPv6ClusterIP is TestProxier_ClusterIP for IPv6 (PX-02): every endpoint gets
// connections and the client pod's IPv6 source is kept (PX-E-05, PX-M-03), no endpoints is
// refused at once by ICMPv6 port unreachable (PX-T-01), an undefined port is rejected
// (cluster-ips-check), ClientIP affinity sticks (PX-A-02), hairpin (PX-M-03a), UDP; and
// traffic from off the cluster (the LAN host) to an IPv6 cluster IP is masqueraded (PX-M-03b).
func TestProxier_IPv6ClusterIP(t *testing.T) {
	w := newDualWorld(t, "a", "b", "c", "client")
	web := svc("web", "fd00:10:96::10", 80, w.ep6("a", true), w.ep6("b", true), w.ep6("c", true))
	empty := svc("empty", "fd00:10:96::11", 80)
	sticky := svc("sticky", "fd00:10:96::12", 80, w.ep6("a", true), w.ep6("b", true), w.ep6("c", true))
	sticky.AffinityTimeout = time.Hour
	dns := svc("dns", "fd00:10:96::13", 53, w.ep6("a", true), w.ep6("b", true))
	dns.Name.Protocol, dns.Protocol = corev1.ProtocolUDP, corev1.ProtocolUDP
	w.sync(snapshot6(web, empty, sticky, dns), true)

	t.Run("PX-E-05 every IPv6 endpoint gets traffic, source kept", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 60 && len(seen) < 3; i++ {
			pod, src, err := dial(w.pods["client"], "[fd00:10:96::10]:80", dialTimeout)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if src != w.ips6["client"].String() {
				t.Fatalf("pod %s saw source %s, want the client pod's %s (no masquerade)", pod, src, w.ips6["client"])
			}
			seen[pod]++
		}
		if len(seen) != 3 {
			t.Fatalf("endpoints reached: %v, want a, b and c", seen)
		}
	})
	t.Run("PX-T-01 no endpoints is connection refused (ICMPv6)", func(t *testing.T) {
		start := time.Now()
		_, _, err := dial(w.pods["client"], "[fd00:10:96::11]:80", dialTimeout)
		if !isRefused(err) {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
		// Over IPv6 the refusal comes with the SYN's first retransmission, 1 s after connect:
		// the ICMPv6 error for the first SYN reaches the client's socket while connect(2)
		// still holds its lock (the veths deliver it in the same softirq), and tcp_v6_err
		// only records it as a soft error (TcpExt LockDroppedIcmps; IPv4 is refused at once
		// here). A dropped SYN would time out after dialTimeout instead.
		if d := time.Since(start); d > refuseWithin6 {
			t.Fatalf("refusal took %s", d)
		}
	})
	t.Run("NFT cluster-ips-check rejects undefined IPv6 ports", func(t *testing.T) {
		if _, _, err := dial(w.pods["client"], "[fd00:10:96::10]:81", dialTimeout); !isRefused(err) {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
	})
	t.Run("PX-A-02 affinity sticks on the IPv6 source", func(t *testing.T) {
		first, _, err := dial(w.pods["client"], "[fd00:10:96::12]:80", dialTimeout)
		must(t, err)
		for i := 0; i < 20; i++ {
			pod, _, err := dial(w.pods["client"], "[fd00:10:96::12]:80", dialTimeout)
			must(t, err)
			if pod != first {
				t.Fatalf("connection %d reached %s, first reached %s", i, pod, first)
			}
		}
	})
	t.Run("PX-M-03b off-cluster IPv6 client to a cluster IP is masqueraded", func(t *testing.T) {
		pod, src, err := dial(w.client, "[fd00:10:96::10]:80", dialTimeout)
		must(t, err)
		if src == clientIP6.String() {
			t.Fatalf("pod %s saw the LAN client's own address %s: not masqueraded", pod, src)
		}
		if src != gateway6.String() {
			t.Fatalf("pod %s saw %s, want the node's bridge address %s", pod, src, gateway6)
		}
	})
	t.Run("PX-M-03a IPv6 hairpin", func(t *testing.T) {
		self := svc("self", "fd00:10:96::14", 80, w.ep6("a", true))
		w.sync(snapshot6(web, empty, sticky, dns, self), false, self.Name)
		pod, src, err := dial(w.pods["a"], "[fd00:10:96::14]:80", dialTimeout)
		must(t, err)
		if pod != "a" || src == w.ips6["a"].String() {
			t.Fatalf("hairpin reached %s from %s, want a from a masqueraded address", pod, src)
		}
	})
	t.Run("UDP over IPv6", func(t *testing.T) {
		pod, err := dialUDP(w.pods["client"], "[fd00:10:96::13]:53", dialTimeout)
		must(t, err)
		if pod != "a" && pod != "b" {
			t.Fatalf("UDP reached %q", pod)
		}
	})
}

// TestProxier_IPv6External is TestProxier_External on the node's IPv6 address: NodePort from
// the LAN is masqueraded (PX-T-05), externalTrafficPolicy Local keeps the client's IPv6
// source (PX-T-03) and drops without a local endpoint, a NodePort without endpoints is refused
// (PX-T-01), an IPv6 externalIP.
func TestProxier_IPv6External(t *testing.T) {
	w := newDualWorld(t, "a", "b")
	remoteEP := proxy.Endpoint{IP: netip.MustParseAddr("fd00:10:244:1::9"), Port: 8080, Ready: true, Serving: true, NodeName: "node2"}
	np := svc("np", "fd00:10:96::20", 80, w.ep6("a", true), w.ep6("b", true))
	np.NodePort = 30080
	local := svc("local", "fd00:10:96::21", 80, w.ep6("a", true), remoteEP)
	local.NodePort, local.ExternalPolicyLocal = 30081, true
	remote := svc("remote", "fd00:10:96::22", 80, remoteEP)
	remote.NodePort, remote.ExternalPolicyLocal = 30082, true
	ext := svc("ext", "fd00:10:96::23", 80, w.ep6("b", true))
	ext.ExternalIPs = []netip.Addr{nodeIP6}
	ext.Port = 8888
	empty := svc("emptynp", "fd00:10:96::24", 80)
	empty.NodePort = 30083
	w.sync(snapshot6(np, local, remote, ext, empty), true)

	t.Run("PX-T-05 NodePort on the node's IPv6 address is masqueraded", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			pod, src, err := dial(w.client, hostPort(nodeIP6, 30080), dialTimeout)
			must(t, err)
			if pod != "a" && pod != "b" {
				t.Fatalf("reached %q", pod)
			}
			if src == clientIP6.String() {
				t.Fatalf("pod saw the client's own address %s: not masqueraded", src)
			}
		}
	})
	t.Run("PX-T-03 eTP Local keeps the client's IPv6 source", func(t *testing.T) {
		pod, src, err := dial(w.client, hostPort(nodeIP6, 30081), dialTimeout)
		must(t, err)
		if pod != "a" || src != clientIP6.String() {
			t.Fatalf("reached %s from %s, want a from %s", pod, src, clientIP6)
		}
	})
	t.Run("PX-T-03 eTP Local without local endpoint drops", func(t *testing.T) {
		_, _, err := dial(w.client, hostPort(nodeIP6, 30082), 2*time.Second)
		if err == nil || isRefused(err) {
			t.Fatalf("dial: %v, want a timeout (dropped, not rejected)", err)
		}
	})
	t.Run("PX-T-01 IPv6 NodePort without endpoints is refused", func(t *testing.T) {
		if _, _, err := dial(w.client, hostPort(nodeIP6, 30083), dialTimeout); !isRefused(err) {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
	})
	t.Run("IPv6 externalIP", func(t *testing.T) {
		pod, _, err := dial(w.client, hostPort(nodeIP6, 8888), dialTimeout)
		must(t, err)
		if pod != "b" {
			t.Fatalf("reached %q", pod)
		}
	})
	t.Run("PX-02 single-stack IPv6 NodePort is not served on the node's IPv4 address", func(t *testing.T) {
		if _, _, err := dial(w.client, hostPort(nodeIP, 30080), 2*time.Second); err == nil {
			t.Fatal("an IPv6-only Service answered on the node's IPv4 address")
		}
	})
}

// TestProxier_IPv6UDPConntrackCleanup is TestProxier_UDPConntrackCleanup for IPv6: the stale
// AF_INET6 conntrack entry of a UDP flow is deleted when its endpoint goes (PX-C-01), so the
// flow moves to the new endpoint; TEST_SKIP_CONNTRACK_CLEANUP=1 shows it does not without.
func TestProxier_IPv6UDPConntrackCleanup(t *testing.T) {
	w := newDualWorld(t, "a", "b", "client")
	udp := func(eps ...proxy.Endpoint) *proxy.ServiceState {
		st := svc("dns", "fd00:10:96::53", 53, eps...)
		st.Name.Protocol, st.Protocol = corev1.ProtocolUDP, corev1.ProtocolUDP
		return st
	}
	before := snapshot6(udp(w.ep6("a", true)))
	name := udp().Name
	w.sync(before, true)
	c, err := netns.DialTimeout(w.pods["client"], "udp", "[fd00:10:96::53]:53", dialTimeout)
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
	// The first datagrams may wait for neighbour discovery on a loaded machine: retry.
	for got, start := "", time.Now(); got != "a"; got = ask() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("first datagrams answered by %q", got)
		}
	}
	after := snapshot6(udp(w.ep6("b", true)))
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
	t.Fatalf("the IPv6 UDP flow did not move to b within 1 s of the sync")
}

// TestProxier_DualStack: a dual-stack Service (clusterIPs of both families, one EndpointSlice
// per family merged in one ServiceState) answers on both cluster IPs and on the NodePort of
// both node addresses, each family DNATing to its own endpoints only (PX-02); a family
// without endpoints of its own is rejected although the other has some (PX-02, PX-T-01);
// each family falls back to its own serving-terminating endpoints (PX-E-01 per family); a
// partial sync updates both families; one Sync programs table kubesvc in ip and ip6.
func TestProxier_DualStack(t *testing.T) {
	w := newDualWorld(t, "a", "b", "client")
	both := dualSvc("both", []string{"10.96.0.40", "fd00:10:96::40"}, 80,
		w.ep("a", true), w.ep("b", true), w.ep6("a", true), w.ep6("b", true))
	both.NodePort = 30040
	onlyV4 := dualSvc("onlyv4", []string{"10.96.0.41", "fd00:10:96::41"}, 80, w.ep("a", true))
	term := w.ep6("b", true)
	term.Ready, term.Terminating = false, true
	fallback := dualSvc("fallback", []string{"10.96.0.42", "fd00:10:96::42"}, 80, w.ep("a", true), term)
	var log []string
	w.dp.SetOpLog(&log)
	w.sync(snapshot6(both, onlyV4, fallback), true)

	t.Run("one sync programs ip and ip6", func(t *testing.T) {
		text := strings.Join(log, "\n")
		for _, want := range []string{"recreate table ip kubesvc", "recreate table ip6 kubesvc",
			"add element ip cluster-ips { 10.96.0.40 }", "add element ip6 cluster-ips { fd00:10:96::40 }"} {
			if !strings.Contains(text, want) {
				t.Errorf("the sync did not send %q", want)
			}
		}
		if strings.Contains(text, "ip6 cluster-ips { 10.") || strings.Contains(text, "ip cluster-ips { fd00") {
			t.Errorf("an address went to the other family's table:\n%s", text)
		}
		families := map[nftables.TableFamily]bool{}
		for _, tb := range listTables(t, w.node) {
			if tb.Name == TableName {
				families[tb.Family] = true
			}
		}
		if !families[nftables.TableFamilyIPv4] || !families[nftables.TableFamilyIPv6] {
			t.Fatalf("tables %s: %v, want ip and ip6", TableName, families)
		}
	})
	reach := func(t *testing.T, from, target string, wantSrc string, wantPods ...string) {
		t.Helper()
		seen := map[string]bool{}
		for i := 0; i < 40 && len(seen) < len(wantPods); i++ {
			pod, src, err := dial(from, target, dialTimeout)
			if err != nil {
				t.Fatalf("%s: connection %d: %v", target, i, err)
			}
			if wantSrc != "" && src != wantSrc {
				t.Fatalf("%s: pod %s saw source %s, want %s", target, pod, src, wantSrc)
			}
			seen[pod] = true
		}
		for _, p := range wantPods {
			if !seen[p] {
				t.Fatalf("%s: reached %v, want %v", target, seen, wantPods)
			}
		}
	}
	t.Run("PX-02 both cluster IPs, each to its own family", func(t *testing.T) {
		// The source a pod sees is of the VIP's family: the IPv4 VIP DNATs to IPv4 endpoints.
		reach(t, w.pods["client"], "10.96.0.40:80", w.ips["client"].String(), "a", "b")
		reach(t, w.pods["client"], "[fd00:10:96::40]:80", w.ips6["client"].String(), "a", "b")
	})
	t.Run("PX-02 NodePort on both node addresses", func(t *testing.T) {
		reach(t, w.client, hostPort(nodeIP, 30040), "10.244.0.1", "a", "b")
		reach(t, w.client, hostPort(nodeIP6, 30040), gateway6.String(), "a", "b")
	})
	t.Run("PX-02 PX-T-01 IPv6 cluster IP without IPv6 endpoints is refused", func(t *testing.T) {
		reach(t, w.pods["client"], "10.96.0.41:80", "", "a")
		if _, _, err := dial(w.pods["client"], "[fd00:10:96::41]:80", dialTimeout); !isRefused(err) {
			t.Fatalf("dial: %v, want ECONNREFUSED (no IPv6 endpoint)", err)
		}
	})
	t.Run("PX-E-01 per family: IPv6 falls back to its terminating endpoint", func(t *testing.T) {
		reach(t, w.pods["client"], "10.96.0.42:80", "", "a")
		reach(t, w.pods["client"], "[fd00:10:96::42]:80", "", "b")
	})
	t.Run("NFT-S-02 a partial sync changes both families", func(t *testing.T) {
		both2 := dualSvc("both", []string{"10.96.0.40", "fd00:10:96::40"}, 80, w.ep("b", true), w.ep6("b", true))
		both2.NodePort = 30040
		w.sync(snapshot6(both2, onlyV4, fallback), false, both2.Name)
		text := strings.Join(log, "\n")
		if !strings.Contains(text, "flush chain ip service-") || !strings.Contains(text, "flush chain ip6 service-") ||
			strings.Contains(text, "recreate table") {
			t.Fatalf("partial sync sent:\n%s", text)
		}
		for i := 0; i < 10; i++ {
			for _, target := range []string{"10.96.0.40:80", "[fd00:10:96::40]:80"} {
				pod, _, err := dial(w.pods["client"], target, dialTimeout)
				must(t, err)
				if pod != "b" {
					t.Fatalf("%s reached %s after a reaches no more", target, pod)
				}
			}
		}
	})
}

// TestProxier_DualStackCleanup: what one Sync programmed in ip and ip6 is removed by Cleanup
// from a fresh Proxier, as `kubesvc agent --cleanup` runs it (nftables.New with both
// families, no committed state): no kubesvc table is left in either family and neither
// cluster IP answers.
func TestProxier_DualStackCleanup(t *testing.T) {
	w := newDualWorld(t, "a", "client")
	w.sync(snapshot6(dualSvc("web", []string{"10.96.0.50", "fd00:10:96::50"}, 80, w.ep("a", true), w.ep6("a", true))), true)
	for _, target := range []string{"10.96.0.50:80", "[fd00:10:96::50]:80"} {
		if _, _, err := dial(w.pods["client"], target, dialTimeout); err != nil {
			t.Fatalf("before cleanup, %s: %v", target, err)
		}
	}
	must(t, w.dp.Close())
	fresh, err := New(Config{NetNS: w.node, IPv4: true, IPv6: true})
	must(t, err)
	w.dp = fresh
	must(t, fresh.Cleanup())
	for _, tb := range listTables(t, w.node) {
		if strings.HasPrefix(tb.Name, TableName) {
			t.Fatalf("table %s left in family %d", tb.Name, tb.Family)
		}
	}
	for _, target := range []string{"10.96.0.50:80", "[fd00:10:96::50]:80"} {
		if pod, _, err := dial(w.pods["client"], target, 2*time.Second); err == nil {
			t.Fatalf("after cleanup %s still reaches %s", target, pod)
		}
	}
}

func listTables(t *testing.T, ns string) []*nftables.Table {
	t.Helper()
	fd, err := unix.Open(ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	conn, err := nftables.New(nftables.WithNetNSFd(fd))
	must(t, err)
	tables, err := conn.ListTables()
	if err != nil {
		t.Fatal(fmt.Errorf("list tables: %w", err))
	}
	return tables
}
