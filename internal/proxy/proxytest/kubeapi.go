package proxytest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"kubesvc/internal/peertest"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/server"
	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

// API servers the proxies can read (Env.APIServer).
const (
	// APIKubesvc: the proxies read the world's own kubesvc server.
	APIKubesvc = "kubesvc"
	// APIKube: the proxies are `kubesvc agent --kubeconfig` processes reading only the real
	// kube-apiserver v1.37.2, which a syncer fills from the world (issue 6 item 5).
	APIKube = "kube-apiserver"
)

// KubeAPIServerMissing reports why the KubeAPIServer variant cannot run ("" when it can): the
// peer binaries are built by hack/peers/build.sh (CI does).
func KubeAPIServerMissing() string {
	for _, b := range []string{peertest.EtcdBinary, peertest.KubeAPIServerBinary} {
		if _, ok := peertest.Path(b); !ok {
			dir, _ := peertest.Dir()
			return "peer binary " + b + " not found in " + dir + ": run hack/peers/build.sh etcd kube-apiserver (or set " + peertest.DirEnv + ")"
		}
	}
	return ""
}

// worldRanges are the world server's ranges, which kube-apiserver and the proxies get too:
// the syncer copies the world's ClusterIPs and NodePorts, so kube-apiserver must accept them.
func worldRanges() (serviceCIDR, nodePorts, clusterCIDR, clusterDNS string) {
	c := server.NewConfig() // testcluster worlds run with the defaults
	return c.ServiceCIDR, c.NodePortRange, c.ClusterCIDR, c.ClusterDNS
}

// kubeAPI is kube-apiserver (on its own etcd) on the world's LAN address of the test process,
// where the nodes' proxies reach it.
type kubeAPI struct {
	client     kubernetes.Interface
	kubeconfig string
}

// startKubeAPI starts etcd and kube-apiserver listening on testcluster.ServerIP with the
// world's Service and NodePort ranges, and creates Namespace there. Both stop when t ends.
func startKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	svcCIDR, nodePorts, _, _ := worldRanges()
	api, err := peertest.StartKubeAPIServerOnEtcd(t, peertest.APIServerConfig{
		BindAddress: testcluster.ServerIP.String(), ServiceCIDR: svcCIDR, NodePortRange: nodePorts,
	})
	if err != nil {
		t.Fatal(err)
	}
	rc := rest.CopyConfig(api.Config)
	rc.QPS, rc.Burst = 500, 1000 // the syncer copies the whole world at once
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &kubeAPI{client: client, kubeconfig: api.Kubeconfig}
}

// checkKubeAPIServerWorld proves what the variant claims before the cases run: the proxies
// read kube-apiserver, not the world (a Service and EndpointSlice that exist only in
// kube-apiserver are served on both nodes, then deleted again so that their ClusterIP is free
// for the world), and each proxy agent's cluster DNS answers a pod with the A record of a
// Service from kube-apiserver (DNS-02) on its node IP.
func (e *Env) checkKubeAPIServerWorld(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c := e.kube.client
	const name = "kube-only"
	svc, err := c.CoreV1().Services(Namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "proxytest"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(httpPort)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{e.podIP("p1").String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("node1")}},
	}
	if _, err := c.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.setService(svc)
	defer func() {
		e.mu.Lock()
		delete(e.Services, name)
		e.mu.Unlock()
		_ = c.CoreV1().Services(Namespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = c.DiscoveryV1().EndpointSlices(Namespace).Delete(ctx, slice.Name, metav1.DeleteOptions{})
	}()
	if _, err := e.World.Client.CoreV1().Services(Namespace).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("service %s in the world: %v; want it only in kube-apiserver", name, err)
	}
	for n := 1; n <= 2; n++ {
		servertest.WaitFor(t, time.Minute, fmt.Sprintf("node%d's proxy serving %s, which exists only in kube-apiserver", n, name), func() error {
			a, err := e.probe(PodOn(n), ClusterIP(name, "http"), answerWait)
			if err != nil {
				return err
			}
			if a.fail != ok || a.pod != "p1" {
				return fmt.Errorf("%v, want p1", a)
			}
			return nil
		})
	}

	// DNS-02 through the proxy agents' DNS on the node IPs, from the pods c1 and c2.
	want := e.Services["spread"].Spec.ClusterIP
	for n := 1; n <= 2; n++ {
		ns, _, err := e.source(PodOn(n))
		if err != nil {
			t.Fatal(err)
		}
		server := net.JoinHostPort(e.Nodes[n-1].IP.String(), "53")
		servertest.WaitFor(t, 30*time.Second, "A of spread from node"+strconv.Itoa(n)+"'s DNS at "+server, func() error {
			conn, err := netns.DialTimeout(ns, "udp", server, answerWait)
			if err != nil {
				return err
			}
			defer conn.Close()
			m := new(mdns.Msg)
			m.SetQuestion("spread."+Namespace+".svc.cluster.local.", mdns.TypeA)
			r, _, err := (&mdns.Client{Timeout: 5 * time.Second}).ExchangeWithConn(m, &mdns.Conn{Conn: conn})
			if err != nil {
				return err
			}
			if len(r.Answer) != 1 {
				return fmt.Errorf("answer %v", r.Answer)
			}
			if a, isA := r.Answer[0].(*mdns.A); !isA || a.A.String() != want {
				return fmt.Errorf("answer %v, want A %s", r.Answer[0], want)
			}
			return nil
		})
	}
}
