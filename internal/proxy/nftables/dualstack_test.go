package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"kubesvc/internal/proxy"
)

// Dual-stack cases. The single-family cases of proxier_test.go run for IPv4 and for IPv6
// (families); these need both at once, on a dual-stack node (newDualWorld): pods
// 10.244.0.2.. and fd00:10:244::2.., node 198.51.100.11 and 2001:db8:1::11, LAN client
// 198.51.100.2 and 2001:db8:1::2, Services 10.96.0.0/12 and fd00:10:96::/112.

// TestProxier_DualStack: a dual-stack Service (clusterIPs of both families, one EndpointSlice
// per family merged in one ServiceState) answers on both cluster IPs and on the NodePort of
// both node addresses, each family DNATing to its own endpoints only (PX-02); a family
// without endpoints of its own is rejected although the other has some (PX-02, PX-T-01);
// each family falls back to its own serving-terminating endpoints (PX-E-01 per family);
// single-stack Services of either family answer on their family's node address only; a
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
	v6only := svc("v6only", "fd00:10:96::43", 80, w.ep6("a", true))
	v6only.NodePort = 30043
	v4only := svc("v4only", "10.96.0.44", 80, w.ep("a", true))
	v4only.NodePort = 30044
	var log []string
	w.dp.SetOpLog(&log)
	w.sync(snapshot6(both, onlyV4, fallback, v6only, v4only), true)

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
	t.Run("PX-02 single-stack Services on a dual-stack node: NodePort on their family only", func(t *testing.T) {
		reach(t, w.client, hostPort(nodeIP6, 30043), "", "a")
		reach(t, w.client, hostPort(nodeIP, 30044), "", "a")
		for _, target := range []string{hostPort(nodeIP, 30043), hostPort(nodeIP6, 30044)} {
			if pod, _, err := dial(w.client, target, 2*time.Second); err == nil {
				t.Errorf("%s answered (%s): a single-stack Service's NodePort on the other family's address", target, pod)
			}
		}
	})
	t.Run("NFT-S-02 a partial sync changes both families", func(t *testing.T) {
		both2 := dualSvc("both", []string{"10.96.0.40", "fd00:10:96::40"}, 80, w.ep("b", true), w.ep6("b", true))
		both2.NodePort = 30040
		w.sync(snapshot6(both2, onlyV4, fallback, v6only, v4only), false, both2.Name)
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

// TestProxier_DualStackFromAPI runs the whole proxy on the dual-stack node: API objects (a
// dual-stack Service with a NodePort and its IPv4 and IPv6 EndpointSlices, as the endpointslice
// controller makes them) through the generic proxier serving both families of its NodeIPs
// (PX-02) into this dataplane: both cluster IPs and the NodePort on both node addresses reach
// the endpoints of their family.
func TestProxier_DualStackFromAPI(t *testing.T) {
	w := newDualWorld(t, "a", "b", "client")
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.60", ClusterIPs: []string{"10.96.0.60", "fd00:10:96::60"},
			IPFamilies:     []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyRequireDualStack),
			Ports:          []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30060, Protocol: corev1.ProtocolTCP}}},
	}
	slice := func(at discoveryv1.AddressType, ips ...netip.Addr) *discoveryv1.EndpointSlice {
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-" + strings.ToLower(string(at)), Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: at,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for _, ip := range ips {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip.String()}, NodeName: ptr.To("node1")})
		}
		return es
	}
	client := fake.NewClientset(svc,
		slice(discoveryv1.AddressTypeIPv4, w.ips["a"], w.ips["b"]),
		slice(discoveryv1.AddressTypeIPv6, w.ips6["a"], w.ips6["b"]))
	dp, err := New(Config{NetNS: w.node, IPv4: true, IPv6: true})
	must(t, err)
	p, err := proxy.New(proxy.Config{Client: client, Dataplane: dp, NodeName: "node1", NodeIPs: []netip.Addr{nodeIP, nodeIP6},
		ClusterCIDRs: []netip.Prefix{clusterNW, clusterNW6}, SyncPeriod: time.Minute})
	must(t, err)
	must(t, p.Start(context.Background()))
	t.Cleanup(p.Close) // before the world's cleanup: the dataplane stops, then the tables go
	select {
	case <-p.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("no first sync")
	}
	for _, tc := range []struct {
		from, target, src string
	}{
		{from: w.pods["client"], target: "10.96.0.60:80", src: w.ips["client"].String()},
		{from: w.pods["client"], target: "[fd00:10:96::60]:80", src: w.ips6["client"].String()},
		{from: w.client, target: hostPort(nodeIP, 30060), src: "10.244.0.1"},
		{from: w.client, target: hostPort(nodeIP6, 30060), src: gateway6.String()},
	} {
		t.Run("PX-02 "+tc.target, func(t *testing.T) {
			seen := map[string]bool{}
			for i := 0; i < 40 && len(seen) < 2; i++ {
				pod, src, err := dial(tc.from, tc.target, dialTimeout)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				if src != tc.src {
					t.Fatalf("pod %s saw %s, want %s (the target's family)", pod, src, tc.src)
				}
				seen[pod] = true
			}
			if !seen["a"] || !seen["b"] {
				t.Fatalf("reached %v, want a and b", seen)
			}
		})
	}
}
