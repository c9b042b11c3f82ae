package agent_test

// The services-only mode's cluster DNS against the real kube-apiserver v1.37.2 (issue 6 item
// 5): `kubesvc agent --kubeconfig` (agent.StartServices) serves the cluster zone from
// kube-apiserver's Services and EndpointSlices on the node IP, answering real DNS packets in
// the test's network namespace, and publishes kube-system/kube-dns-<node> only once the Node
// exists there.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"kubesvc/internal/agent"
	"kubesvc/internal/peertest"
	"kubesvc/internal/runtime/netns/netnstest"
	"kubesvc/internal/servertest"
)

func TestServices_KubeAPIServerDNS(t *testing.T) {
	peertest.SkipIfMissing(t, peertest.EtcdBinary, peertest.KubeAPIServerBinary)
	netnstest.RequireIsolated(t)
	api, err := peertest.StartKubeAPIServerOnEtcd(t, peertest.APIServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The node IP on a link of the test's namespace (a bridge: the kernel has no dummy links).
	const nodeIP = "198.51.100.11"
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "kst-node0"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	addr, _ := netlink.ParseAddr(nodeIP + "/24")
	if err := netlink.AddrAdd(br, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil { // never asked: only cluster names are queried
		t.Fatal(err)
	}

	cfg := agent.NewConfig()
	cfg.NodeName, cfg.NodeIP, cfg.ResolvConf = "node1", nodeIP, resolv
	cfg.ClusterDNS = "10.96.0.10"
	cfg.Proxy = agent.NewProxyConfig()
	cfg.Proxy.Mode, cfg.Proxy.Kubeconfig = agent.ProxyModeNone, api.Kubeconfig
	s, err := agent.StartServices(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if got := s.DNSAddr().String(); got != nodeIP {
		t.Fatalf("DNS on %q, want the node IP %s (the default of --dns-bind-address in services-only mode)", got, nodeIP)
	}

	// Objects as kube-controller-manager would have them: a Service with a named port and
	// its EndpointSlice, created after the DNS started (it follows the watch).
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dnstest"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services("dnstest").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("dnstest").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	server := net.JoinHostPort(nodeIP, "53")
	ask := func(network, name string, qtype uint16) (*mdns.Msg, error) {
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
		r, _, err := c.Exchange(m, server)
		return r, err
	}
	const name = "web.dnstest.svc.cluster.local."
	t.Run("DNS-02 A record of a Service created in kube-apiserver", func(t *testing.T) {
		for _, network := range []string{"udp", "tcp"} {
			servertest.WaitFor(t, 30*time.Second, network+" A "+name, func() error {
				r, err := ask(network, name, mdns.TypeA)
				if err != nil {
					return err
				}
				if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
					return fmt.Errorf("rcode %s, answer %v", mdns.RcodeToString[r.Rcode], r.Answer)
				}
				a, ok := r.Answer[0].(*mdns.A)
				if !ok || a.A.String() != svc.Spec.ClusterIP || a.Hdr.Name != name || a.Hdr.Ttl != 30 {
					return fmt.Errorf("answer %v, want %s 30 IN A %s", r.Answer[0], name, svc.Spec.ClusterIP)
				}
				return nil
			})
		}
	})
	t.Run("DNS-02 SRV of a named port", func(t *testing.T) {
		r, err := ask("udp", "_http._tcp."+name, mdns.TypeSRV)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("rcode %s, answer %v", mdns.RcodeToString[r.Rcode], r.Answer)
		}
		srv, ok := r.Answer[0].(*mdns.SRV)
		if !ok || srv.Target != name || srv.Port != 80 || srv.Priority != 0 || srv.Weight != 100 {
			t.Fatalf("answer %v, want SRV 0 100 80 %s (DNS-C-05)", r.Answer[0], name)
		}
		r, err = ask("udp", "_dns._udp."+name, mdns.TypeSRV)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*mdns.SRV).Port != 53 {
			t.Fatalf("_dns._udp: %v, want SRV port 53", r.Answer)
		}
	})
	t.Run("DNS-C-02 NXDOMAIN for a Service that does not exist", func(t *testing.T) {
		for _, q := range []string{"nosuch.dnstest.svc.cluster.local.", "web.nosuchns.svc.cluster.local.", "_https._tcp." + name} {
			r, err := ask("udp", q, mdns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != mdns.RcodeNameError || len(r.Answer) != 0 {
				t.Errorf("%s: rcode %s, answer %v; want NXDOMAIN", q, mdns.RcodeToString[r.Rcode], r.Answer)
			}
			if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA {
				t.Errorf("%s: authority %v, want the zone's SOA (DNS-C-01)", q, r.Ns)
			}
		}
	})
	t.Run("an address the node does not have fails the start, naming --dns-bind-address", func(t *testing.T) {
		bad := *cfg
		bad.NodeName, bad.NodeIP = "node9", "198.51.100.99"
		s, err := agent.StartServices(ctx, &bad)
		if err == nil {
			s.Close()
			t.Fatal("StartServices on an address of no interface: no error")
		}
		if !strings.Contains(err.Error(), "--dns-bind-address") {
			t.Fatalf("error %q does not name --dns-bind-address", err)
		}
	})
	t.Run("kube-dns EndpointSlice published once the Node exists, removed with it", func(t *testing.T) {
		slices := client.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem)
		sliceName := agent.DNSEndpointSliceName("node1")
		// No kubelet registered node1: nothing is published, and the DNS keeps serving.
		time.Sleep(2 * time.Second) // a few of the publisher's retry periods
		if _, err := slices.Get(ctx, sliceName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("slice %s without a Node: %v; want NotFound (no owner, no slice)", sliceName, err)
		}
		if r, err := ask("udp", name, mdns.TypeA); err != nil || len(r.Answer) != 1 {
			t.Fatalf("DNS without a Node: %v, %v", r, err)
		}
		node, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		servertest.WaitFor(t, 30*time.Second, "slice "+sliceName, func() error {
			sl, err := slices.Get(ctx, sliceName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(sl.OwnerReferences) != 1 || sl.OwnerReferences[0].UID != node.UID || sl.OwnerReferences[0].Kind != "Node" {
				return fmt.Errorf("owners %v, want Node node1 %s", sl.OwnerReferences, node.UID)
			}
			if sl.Labels[discoveryv1.LabelServiceName] != agent.DNSService || len(sl.Endpoints) != 1 ||
				len(sl.Endpoints[0].Addresses) != 1 || sl.Endpoints[0].Addresses[0] != nodeIP {
				return fmt.Errorf("slice %+v, want kube-dns endpoint %s", sl, nodeIP)
			}
			return nil
		})
		// No garbage collector runs here: the agent itself removes the slice of a deleted Node.
		if err := client.CoreV1().Nodes().Delete(ctx, "node1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		servertest.WaitFor(t, 30*time.Second, "slice "+sliceName+" gone with its Node", func() error {
			if _, err := slices.Get(ctx, sliceName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("get: %v; want NotFound", err)
			}
			return nil
		})
	})
}
