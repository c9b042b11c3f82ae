package nftables_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"kubesvc/internal/agent"
	"kubesvc/internal/peertest"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/netns/netnstest"
	"kubesvc/internal/runtime/podnet"
)

// TestKubeAPIServer_ServicesOnly runs the node's service part (`kubesvc agent --kubeconfig`,
// agent.StartServices) against the real kube-apiserver v1.37.2 (issue 6 item 5): the test
// process's namespace is the node, with a pod on kubesvc0 and a client host on a LAN veth; a
// NodePort Service with a hand-made EndpointSlice is reached through its ClusterIP from a pod
// (PX-E-05) and through its NodePort from the client host (PX-T-05).
func TestKubeAPIServer_ServicesOnly(t *testing.T) {
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

	// The node: this namespace. Pod "web" on the bridge, pod "client", LAN host "lan".
	bridge, err := podnet.EnsureBridge("kubesvc0", netip.MustParsePrefix("10.244.0.0/24"), netip.MustParseAddr("10.244.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = podnet.RemovePod("kubesvc0") })
	web, client1 := netnstest.New(t), netnstest.New(t)
	webIP := netip.MustParseAddr("10.244.0.2")
	for i, p := range []struct {
		ns string
		ip netip.Addr
	}{{web, webIP}, {client1, netip.MustParseAddr("10.244.0.3")}} {
		if err := bridge.AddPod(p.ns, fmt.Sprintf("vethk%d", i), p.ip); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = podnet.RemovePod(fmt.Sprintf("vethk%d", i)) })
	}
	lan := netnstest.New(t)
	nodeIP, lanIP := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.2")
	fd, err := unix.Open(lan, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lank0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(fd)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = podnet.RemovePod("lank0") })
	up := func(name string, ip netip.Addr) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}
	if err := up("lank0", nodeIP); err != nil {
		t.Fatal(err)
	}
	if err := netns.Do(lan, func() error { return up("eth0", lanIP) }); err != nil {
		t.Fatal(err)
	}
	l, err := netns.Listen(web, "tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "web %s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()

	ctx := context.Background()
	svc, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{webIP.String()}, NodeName: ptr.To("node1")}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := agent.NewConfig()
	cfg.NodeName, cfg.NodeIP = "node1", nodeIP.String()
	cfg.Proxy = agent.NewProxyConfig()
	cfg.Proxy.Mode, cfg.Proxy.Kubeconfig = agent.ProxyModeNFTables, api.Kubeconfig
	cfg.Proxy.ClusterCIDR, cfg.Proxy.ServiceCIDR = "10.244.0.0/16", peertest.DefaultServiceCIDR
	cfg.Proxy.HealthzBindAddress, cfg.Proxy.MetricsBindAddress = "", ""
	cfg.Proxy.MinSyncPeriod = 50 * time.Millisecond
	cfg.DNS.Disable = true // the services-only DNS: internal/agent TestServices_KubeAPIServerDNS
	s, err := agent.StartServices(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := agent.CleanupProxy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("proxy did not sync")
	}

	dial := func(ns, addr string) (string, error) {
		var last error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			c, err := netns.DialTimeout(ns, "tcp", addr, 5*time.Second)
			if err != nil {
				last = err
				continue
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil {
				last = err
				continue
			}
			return strings.TrimSpace(line), nil
		}
		return "", last
	}
	t.Run("PX-E-05 ClusterIP from a pod", func(t *testing.T) {
		got, err := dial(client1, net.JoinHostPort(svc.Spec.ClusterIP, "80"))
		if err != nil || got != "web 10.244.0.3" {
			t.Fatalf("got %q, %v; want web seeing the client pod's address", got, err)
		}
	})
	t.Run("PX-T-05 NodePort from the LAN", func(t *testing.T) {
		got, err := dial(lan, net.JoinHostPort(nodeIP.String(), fmt.Sprint(svc.Spec.Ports[0].NodePort)))
		if err != nil || !strings.HasPrefix(got, "web ") || got == "web "+lanIP.String() {
			t.Fatalf("got %q, %v; want web seeing a masqueraded address", got, err)
		}
	})
}
