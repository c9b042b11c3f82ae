package dnsdiff

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/servertest"
)

// startUpstream runs the test's upstream DNS server on 127.0.0.1 (UDP and TCP, one port).
// Its answers are a pure function of the question: names under example.com. have A and AAAA
// records, nx.example.com. does not exist, and everything else is NXDOMAIN in the root zone.
func startUpstream(t *testing.T) string {
	t.Helper()
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		soa := func(zone string) mdns.RR {
			return &mdns.SOA{Hdr: mdns.RR_Header{Name: zone, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: 60},
				Ns: "ns.example.net.", Mbox: "hostmaster.example.net.", Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: 60}
		}
		switch {
		case name == "nx.example.com.":
			m.Rcode = mdns.RcodeNameError
			m.Ns = []mdns.RR{soa("example.com.")}
		case mdns.IsSubDomain("example.com.", name) && q.Qtype == mdns.TypeA:
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300}, A: net.ParseIP("93.184.216.34")}}
		case mdns.IsSubDomain("example.com.", name) && q.Qtype == mdns.TypeAAAA:
			m.Answer = []mdns.RR{&mdns.AAAA{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: 300}, AAAA: net.ParseIP("2606:2800:220:1::1")}}
		case mdns.IsSubDomain("example.com.", name):
			m.Ns = []mdns.RR{soa("example.com.")}
		default:
			m.Rcode = mdns.RcodeNameError
			m.Ns = []mdns.RR{soa(".")}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("upstream: %v", err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatalf("upstream: %v", err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// freeUDPPort returns a port that is free on 127.0.0.1 for UDP and TCP a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// corefile is kubeadm's CoreDNS configuration, pointed at our API server, without the
// cache (so every answer reflects the API state) and with the test's upstream.
const corefile = `.:%d {
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . %s
}
`

// startCoreDNS runs the peer CoreDNS and returns its address; the process is killed when the
// test ends.
func startCoreDNS(t *testing.T, bin, kubeconfig, upstream string) (addr, logPath string) {
	t.Helper()
	dir := t.TempDir()
	port := freeUDPPort(t)
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(corefile, port, kubeconfig, upstream)), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "coredns.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coredns: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	// Ready: it answers a cluster name (the kubernetes Service) from synced caches.
	err = servertest.Poll(2*time.Minute, func() error {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("coredns exited:\n%s", b)
		default:
		}
		m, err := exchange(addr, "udp", "kubernetes.default.svc.cluster.local.", mdns.TypeA, true)
		if err != nil {
			return err
		}
		if m.Rcode != mdns.RcodeSuccess || len(m.Answer) == 0 {
			return fmt.Errorf("kubernetes.default: %s", mdns.RcodeToString[m.Rcode])
		}
		return nil
	})
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("coredns not ready: %v\nlog:\n%s", err, b)
	}
	return addr, logPath
}

// exchange sends one question; edns adds an OPT record with a 4096-byte buffer.
func exchange(addr, proto, name string, qtype uint16, edns bool) (*mdns.Msg, error) {
	req := new(mdns.Msg)
	req.SetQuestion(name, qtype)
	if edns {
		req.SetEdns0(4096, false)
	}
	c := &mdns.Client{Net: proto, Timeout: 2 * time.Second}
	m, _, err := c.Exchange(req, addr)
	return m, err
}

// State builders.

const (
	nsA = "dnsdiff"
	nsB = "dnsdiff-b"
)

func ptr[T any](v T) *T { return &v }

func ports(ps ...corev1.ServicePort) []corev1.ServicePort { return ps }

func sp(name string, proto corev1.Protocol, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port, TargetPort: intstr.FromInt32(port)}
}

func esPort(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr(name), Protocol: ptr(proto), Port: ptr(port)}
}

// endpoint: ready is "true", "false" or "" (nil).
func endpoint(ip, hostname, ready string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}}
	if hostname != "" {
		e.Hostname = ptr(hostname)
	}
	if ready != "" {
		e.Conditions.Ready = ptr(ready == "true")
	}
	return e
}

// createState creates the cluster state and returns the names of the Services created.
func createState(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	tcp, udp, sctp := corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP
	v4, v6 := discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6
	for _, n := range []string{nsA, nsB} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", n, err)
		}
	}
	type svcDef struct {
		ns, name string
		spec     corev1.ServiceSpec
	}
	headless := func(ps ...corev1.ServicePort) corev1.ServiceSpec {
		return corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: ps}
	}
	svcs := []svcDef{
		{nsA, "web", corev1.ServiceSpec{Ports: ports(sp("http", tcp, 80), sp("https", tcp, 443), sp("dns", udp, 53))}},
		{nsA, "single", corev1.ServiceSpec{Ports: ports(sp("", tcp, 8080))}},
		{nsA, "sig", corev1.ServiceSpec{Ports: ports(sp("sig", sctp, 9000))}},
		{nsA, "np", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: ports(sp("http", tcp, 80))}},
		{nsA, "lb", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: ports(sp("http", tcp, 80))}},
		{nsA, "db", headless(sp("pg", tcp, 5432))},
		{nsA, "big", headless(sp("http", tcp, 80))},
		{nsA, "empty", headless()},
		{nsA, "notready", headless(sp("http", tcp, 80))},
		{nsA, "noports", headless()},
		{nsA, "ext", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.com"}},
		{nsA, "ext-nx", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "nx.example.com"}},
		{nsA, "ext-in", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "web.dnsdiff.svc.cluster.local"}},
		{nsA, "ext-chain", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "ext.dnsdiff.svc.cluster.local."}},
		{nsA, "ext-ip", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "1.2.3.4"}},
		{nsA, "ext-ports", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "api.example.com", Ports: ports(sp("http", tcp, 80))}},
		{nsA, "sel", corev1.ServiceSpec{Selector: map[string]string{"app": "sel"}, Ports: ports(sp("http", tcp, 80))}},
		{nsA, "sel-headless", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "sel"}, Ports: ports(sp("http", tcp, 80))}},
		{nsB, "web", corev1.ServiceSpec{Ports: ports(sp("http", tcp, 80))}},
	}
	for _, d := range svcs {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: d.name}, Spec: d.spec}
		if _, err := cs.CoreV1().Services(d.ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create service %s/%s: %v", d.ns, d.name, err)
		}
	}
	slices := []*discoveryv1.EndpointSlice{
		slice(nsA, "web-1", "web", v4, []discoveryv1.EndpointPort{esPort("http", tcp, 8080), esPort("https", tcp, 8443), esPort("dns", udp, 5353)},
			endpoint("10.244.1.5", "", "true"), endpoint("10.244.1.6", "", ""), endpoint("10.244.1.7", "", "false")),
		slice(nsA, "single-1", "single", v4, []discoveryv1.EndpointPort{esPort("", tcp, 8080)}, endpoint("10.244.2.5", "", "true")),
		slice(nsA, "sig-1", "sig", v4, []discoveryv1.EndpointPort{esPort("sig", sctp, 9000)}, endpoint("10.244.2.9", "", "true")),
		slice(nsA, "db-1", "db", v4, []discoveryv1.EndpointPort{esPort("pg", tcp, 5432)},
			endpoint("10.244.3.10", "db-0", "true"), endpoint("10.244.3.11", "db-1", ""), endpoint("10.244.3.12", "db-2", "false"),
			endpoint("10.244.3.13", "", "true")),
		slice(nsA, "db-2", "db", v6, []discoveryv1.EndpointPort{esPort("pg", tcp, 5432)},
			endpoint("fd00:10:244::10", "db-0", "true"), endpoint("fd00:10:244::11", "", "true")),
		slice(nsA, "notready-1", "notready", v4, []discoveryv1.EndpointPort{esPort("http", tcp, 80)},
			endpoint("10.244.4.1", "nr-0", "false")),
		slice(nsA, "noports-1", "noports", v4, nil, endpoint("10.244.4.9", "np-0", "true")),
		slice(nsB, "web-1", "web", v4, []discoveryv1.EndpointPort{esPort("http", tcp, 8080)}, endpoint("10.244.9.5", "", "true")),
	}
	var bigEps []discoveryv1.Endpoint
	for i := range 40 {
		bigEps = append(bigEps, endpoint(fmt.Sprintf("10.244.8.%d", i+1), fmt.Sprintf("member-%d", i), "true"))
	}
	slices = append(slices, slice(nsA, "big-1", "big", v4, []discoveryv1.EndpointPort{esPort("http", tcp, 80)}, bigEps...))
	for _, es := range slices {
		if _, err := cs.DiscoveryV1().EndpointSlices(es.Namespace).Create(ctx, es, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create endpointslice %s/%s: %v", es.Namespace, es.Name, err)
		}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	for i, ip := range []string{"10.244.5.5", "10.244.5.6"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: fmt.Sprintf("sel-%d", i), Labels: map[string]string{"app": "sel"}},
			Spec:       corev1.PodSpec{NodeName: "node-1", Hostname: fmt.Sprintf("sel-%d", i), Subdomain: "sel-headless", Containers: []corev1.Container{{Name: "c", Image: "toolbox"}}},
		}
		p, err := cs.CoreV1().Pods(nsA).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod: %v", err)
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if _, err := cs.CoreV1().Pods(nsA).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update pod status: %v", err)
		}
	}
}

func slice(ns, name, svc string, t discoveryv1.AddressType, ps []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: t, Ports: ps, Endpoints: eps,
	}
}
