package agent_test

// Cluster DNS end to end (issue 7, DESIGN §5.4, k8s-service-spec.md §4): every agent serves
// the cluster zone on its pod gateway; pods resolve through their resolv.conf with glibc
// (getent) and with a Go DNS client in their network namespace.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"kubesvc/internal/agent"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

// worldUpstream is the upstream DNS of a test world: a server of the test process on the
// world's LAN (testcluster.ServerIP), reachable only inside the world. www.upstream.test has
// an A record, every other name is NXDOMAIN; it counts the questions it gets.
type worldUpstream struct {
	addr    string
	queries atomic.Int64
}

// upstreamIP is the address www.upstream.test resolves to.
const upstreamIP = "203.0.113.80"

func startWorldUpstream(t *testing.T) *worldUpstream {
	t.Helper()
	u := &worldUpstream{}
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		u.queries.Add(1)
		m := new(mdns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case !strings.EqualFold(q.Name, "www.upstream.test."):
			m.Rcode = mdns.RcodeNameError
			m.Ns = []mdns.RR{&mdns.SOA{Hdr: mdns.RR_Header{Name: "upstream.test.", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: 60},
				Ns: "ns.upstream.test.", Mbox: "hostmaster.upstream.test.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 60}}
		case q.Qtype == mdns.TypeA:
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300}, A: net.ParseIP(upstreamIP)}}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", net.JoinHostPort(testcluster.ServerIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	u.addr = pc.LocalAddr().String()
	return u
}

// proxyArgs returns the agent flags that run the service proxy, and whether this tree has
// one (the ClusterIP of kube-dns is reachable only through it). Once `kubesvc agent` has a
// --proxy-mode flag, the tests below query through the ClusterIP and must pass that way.
func proxyArgs(t *testing.T, bin string) ([]string, bool) {
	t.Helper()
	out, _ := exec.Command(bin, "agent", "--help").CombinedOutput()
	if strings.Contains(string(out), "--proxy-mode") {
		return []string{"--proxy-mode=nftables"}, true
	}
	return nil, false
}

// dnsWorld is a two-node world with the test's upstream DNS, the objects the DNS tests
// query, and a client pod on each node.
type dnsWorld struct {
	w        *testcluster.World
	up       *worldUpstream
	viaProxy bool
	nodes    []*testcluster.Node
	gw       []netip.Addr      // pod gateway (the DNS address) of each node
	clients  []*corev1.Pod     // dnsclient-1 on node-1, dnsclient-2 on node-2
	clientNS []string          // their network namespaces
	svcIPs   map[string]string // Service name → cluster IP
	pods     map[string]*corev1.Pod
}

// server returns the DNS address pods of node i use: the cluster DNS IP through the proxy,
// else the node's gateway.
func (d *dnsWorld) server(i int) string {
	if d.viaProxy {
		return "10.96.0.10:53"
	}
	return net.JoinHostPort(d.gw[i].String(), "53")
}

func newDNSWorld(t *testing.T) *dnsWorld {
	t.Helper()
	w := testcluster.New(t, testcluster.Options{AgentArgs: []string{"--container-backoff=1s"}})
	d := &dnsWorld{w: w, up: startWorldUpstream(t), svcIPs: map[string]string{}, pods: map[string]*corev1.Pod{}}
	pargs, viaProxy := proxyArgs(t, w.Bin)
	d.viaProxy = viaProxy
	for _, name := range []string{"node-1", "node-2"} {
		d.nodes = append(d.nodes, w.AddNode(name, append([]string{"--dns-upstream", d.up.addr}, pargs...)...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range d.nodes {
		var gw netip.Addr
		servertest.WaitFor(t, time.Minute, "kube-dns endpoint of "+n.Name, func() error {
			s, err := w.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, agent.DNSEndpointSliceName(n.Name), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(s.Endpoints) != 1 || len(s.Endpoints[0].Addresses) != 1 {
				return fmt.Errorf("endpoints %v", s.Endpoints)
			}
			gw, err = netip.ParseAddr(s.Endpoints[0].Addresses[0])
			return err
		})
		d.gw = append(d.gw, gw)
	}

	createNamespace(t, w, "other")
	mkSvc := func(ns string, s *corev1.Service) {
		t.Helper()
		got, err := w.Client.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create service %s: %v", s.Name, err)
		}
		d.svcIPs[s.Name] = got.Spec.ClusterIP
	}
	http := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}
	mkSvc("default", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubia"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "kubia"}, Ports: []corev1.ServicePort{http}}})
	mkSvc("other", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "backend-database"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5432}}}})
	mkSvc("default", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{http}}})
	mkSvc("default", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeExternalName, ExternalName: "www.upstream.test"}})

	// web-0 has a hostname in the Service's subdomain, web-1 none (an IP-dash name), web-2
	// never becomes ready.
	web := func(name, node string) *corev1.Pod {
		p := kubiaPod(name, node)
		p.Labels = map[string]string{"app": "web"}
		return p
	}
	web0, web1, web2 := web("web-0", "node-1"), web("web-1", "node-2"), web("web-2", "node-1")
	web0.Spec.Hostname, web0.Spec.Subdomain = "web-0", "web"
	web2.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}, PeriodSeconds: 1}
	pods := []*corev1.Pod{web0, web1, web2}
	for i := range d.nodes {
		p := kubiaPod(fmt.Sprintf("dnsclient-%d", i+1), d.nodes[i].Name)
		p.Labels = map[string]string{"app": "dnsclient"}
		if !d.viaProxy {
			// Without the service proxy the cluster DNS IP is unreachable: the same
			// resolv.conf as ClusterFirst (DNS-R-01), naming the node's DNS directly.
			p.Spec.DNSPolicy = corev1.DNSNone
			p.Spec.DNSConfig = &corev1.PodDNSConfig{
				Nameservers: []string{d.gw[i].String()},
				Searches:    []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
			}
		}
		pods = append(pods, p)
	}
	for _, p := range pods {
		createPod(t, w, "default", p)
	}
	for _, p := range pods {
		cond := testcluster.PodReady
		if p.Name == "web-2" {
			cond = func(p *corev1.Pod) error {
				if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
					return fmt.Errorf("phase %s, IP %q", p.Status.Phase, p.Status.PodIP)
				}
				return nil
			}
		}
		d.pods[p.Name] = w.WaitPod(2*time.Minute, "default", p.Name, "running", cond)
	}
	d.clients = []*corev1.Pod{d.pods["dnsclient-1"], d.pods["dnsclient-2"]}
	for _, c := range d.clients {
		ns, err := w.PodNetNS(c)
		if err != nil {
			t.Fatal(err)
		}
		d.clientNS = append(d.clientNS, ns)
	}
	// The headless Service's endpoints: web-0 and web-1 ready, web-2 not.
	servertest.WaitFor(t, time.Minute, "endpoints of web", func() error {
		got := d.query(t, 0, "udp", "web.default.svc.cluster.local.", mdns.TypeA)
		if n := len(got.Answer); n != 2 {
			return fmt.Errorf("%d A records: %v", n, got.Answer)
		}
		return nil
	})
	return d
}

// exchange asks server one question from inside the network namespace ns.
func exchange(ctx context.Context, ns, proto, server, name string, qtype uint16) (*mdns.Msg, error) {
	conn, err := netns.Dial(ctx, ns, proto, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	req := new(mdns.Msg)
	req.SetQuestion(name, qtype)
	req.SetEdns0(1232, false)
	c := &mdns.Client{Net: proto, Timeout: 5 * time.Second, UDPSize: 1232}
	m, _, err := c.ExchangeWithConnContext(ctx, req, &mdns.Conn{Conn: conn, UDPSize: 1232})
	return m, err
}

// query asks the DNS of client pod i one question (the Go client in the pod's netns).
func (d *dnsWorld) query(t *testing.T, i int, proto, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	var m *mdns.Msg
	var err error
	for range 3 { // UDP: a lost datagram on a loaded machine is not a failure
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err = exchange(ctx, d.clientNS[i], proto, d.server(i), name, qtype)
		cancel()
		if err == nil {
			return m
		}
	}
	t.Fatalf("%s %s from %s via %s/%s: %v", name, mdns.TypeToString[qtype], d.clients[i].Name, d.server(i), proto, err)
	return nil
}

// zoneText renders records in zone-file text with TTLs zeroed (forwarded records age in the
// cache), sorted.
func zoneText(rrs []mdns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == mdns.TypeOPT {
			continue
		}
		rr = mdns.Copy(rr)
		rr.Header().Ttl = 0
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

func dashed(ip string) string { return strings.NewReplacer(".", "-", ":", "-").Replace(ip) }

func reverse(t *testing.T, ip string) string {
	t.Helper()
	r, err := mdns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDNS_InPods resolves the Kubernetes DNS schema from inside pods on two nodes, through
// their resolv.conf with glibc and with a Go client, and checks what each node's DNS
// publishes (k8s-service-spec.md §4, DESIGN §5.4).
func TestDNS_InPods(t *testing.T) {
	d := newDNSWorld(t)
	w := d.w
	if !d.viaProxy {
		t.Log("no service proxy in this tree (no --proxy-mode): pods query their node's DNS at the pod gateway, not the kube-dns ClusterIP")
	} else {
		t.Log("pods query the kube-dns ClusterIP 10.96.0.10 (ClusterFirst resolv.conf) through the service proxy")
		for _, c := range d.clients {
			if rc := podExec(t, w, c.Namespace, c.Name, "cat", "/etc/resolv.conf"); !strings.Contains(rc, "nameserver 10.96.0.10\n") {
				t.Fatalf("resolv.conf of %s:\n%s", c.Name, rc)
			}
		}
	}
	kubiaIP, dbIP := d.svcIPs["kubia"], d.svcIPs["backend-database"]
	web0, web1 := d.pods["web-0"].Status.PodIP, d.pods["web-1"].Status.PodIP
	web2 := d.pods["web-2"].Status.PodIP
	client1 := d.clients[0].Status.PodIP

	t.Run("kube-dns endpoints: one slice per node, owned by the Node", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i, n := range d.nodes {
			s, err := w.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, agent.DNSEndpointSliceName(n.Name), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			node, err := w.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if gw := netip.MustParsePrefix(node.Spec.PodCIDR).Masked().Addr().Next(); gw != d.gw[i] {
				t.Errorf("%s: endpoint %s, want the pod gateway %s", n.Name, d.gw[i], gw)
			}
			got := fmt.Sprintf("labels=%v node=%s ready=%v ports=%s owner=%s",
				s.Labels, ptr.Deref(s.Endpoints[0].NodeName, ""), ptr.Deref(s.Endpoints[0].Conditions.Ready, false), slicePorts(s), ownerOf(s))
			want := fmt.Sprintf("labels=map[endpointslice.kubernetes.io/managed-by:agent.kubesvc.io kubernetes.io/service-name:kube-dns] node=%s ready=true ports=dns/UDP/53 dns-tcp/TCP/53 metrics/TCP/9153 owner=Node/%s/%s", n.Name, n.Name, node.UID)
			if got != want {
				t.Errorf("slice of %s:\n got %s\nwant %s", n.Name, got, want)
			}
		}
	})

	t.Run("glibc getent through resolv.conf", func(t *testing.T) {
		for _, tc := range []struct {
			name, cmd, key string
			want           []string // addresses; nil: not found
		}{
			{name: "short name (DNS-02, DNS-R-01 search path)", cmd: "hosts", key: "kubia", want: []string{kubiaIP}},
			{name: "namespace-qualified name", cmd: "hosts", key: "backend-database.other", want: []string{dbIP}},
			{name: "FQDN", cmd: "hosts", key: "kubia.default.svc.cluster.local", want: []string{kubiaIP}},
			{name: "headless: one address per ready endpoint (DNS-03)", cmd: "ahosts", key: "web", want: []string{web0, web1}},
			{name: "headless hostname.subdomain (DNS-03, DNS-R-03)", cmd: "hosts", key: "web-0.web", want: []string{web0}},
			{name: "endpoint IP-dash name (DNS-04)", cmd: "hosts", key: dashed(web1) + ".web", want: []string{web1}},
			{name: "ExternalName through the upstream (DNS-06)", cmd: "ahosts", key: "ext", want: []string{upstreamIP}},
			{name: "pod A record (DNS-07)", cmd: "hosts", key: dashed(client1) + ".default.pod.cluster.local", want: []string{client1}},
			{name: "external name forwarded upstream", cmd: "ahosts", key: "www.upstream.test", want: []string{upstreamIP}},
			{name: "no such service (DNS-C-02)", cmd: "hosts", key: "nosuch"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for i, c := range d.clients {
					got := getent(t, w, c, tc.cmd, tc.key)
					if diff := cmp.Diff(tc.want, got); diff != "" {
						t.Errorf("getent %s %s in %s (-want +got):\n%s", tc.cmd, tc.key, d.clients[i].Name, diff)
					}
				}
			})
		}
	})

	t.Run("Go client in the pod's network namespace", func(t *testing.T) {
		const soa = "cluster.local.\t0\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. "
		a := func(name, ip string) string { return name + "\t0\tIN\tA\t" + ip }
		for _, tc := range []struct {
			name  string
			proto string
			qname string
			qtype uint16
			rcode int
			want  []string // answer section
			auth  bool     // the authority section holds the zone's SOA
		}{
			{name: "A of a ClusterIP Service (DNS-02)", qname: "kubia.default.svc.cluster.local.", qtype: mdns.TypeA,
				want: []string{a("kubia.default.svc.cluster.local.", kubiaIP)}},
			{name: "A over TCP", proto: "tcp", qname: "kubia.default.svc.cluster.local.", qtype: mdns.TypeA,
				want: []string{a("kubia.default.svc.cluster.local.", kubiaIP)}},
			{name: "names are case-insensitive", qname: "KUBIA.Default.svc.cluster.local.", qtype: mdns.TypeA,
				want: []string{a("KUBIA.Default.svc.cluster.local.", kubiaIP)}},
			{name: "AAAA of an IPv4 Service is NODATA (DNS-C-03)", qname: "kubia.default.svc.cluster.local.", qtype: mdns.TypeAAAA, auth: true},
			{name: "SRV of a named port (DNS-02, DNS-C-05)", qname: "_http._tcp.kubia.default.svc.cluster.local.", qtype: mdns.TypeSRV,
				want: []string{"_http._tcp.kubia.default.svc.cluster.local.\t0\tIN\tSRV\t0 100 80 kubia.default.svc.cluster.local."}},
			{name: "headless A: ready endpoints only (DNS-03)", qname: "web.default.svc.cluster.local.", qtype: mdns.TypeA,
				want: []string{a("web.default.svc.cluster.local.", web0), a("web.default.svc.cluster.local.", web1)}},
			{name: "headless SRV: endpoint names and target ports (DNS-03, DNS-04)", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: mdns.TypeSRV,
				want: []string{
					"_http._tcp.web.default.svc.cluster.local.\t0\tIN\tSRV\t0 50 8080 " + dashed(web1) + ".web.default.svc.cluster.local.",
					"_http._tcp.web.default.svc.cluster.local.\t0\tIN\tSRV\t0 50 8080 web-0.web.default.svc.cluster.local.",
				}},
			{name: "headless hostname (DNS-03)", qname: "web-0.web.default.svc.cluster.local.", qtype: mdns.TypeA,
				want: []string{a("web-0.web.default.svc.cluster.local.", web0)}},
			{name: "not-ready endpoint has no name (DNS-03)", qname: dashed(web2) + ".web.default.svc.cluster.local.", qtype: mdns.TypeA,
				rcode: mdns.RcodeNameError, auth: true},
			{name: "ExternalName CNAME and its target's address (DNS-06)", qname: "ext.default.svc.cluster.local.", qtype: mdns.TypeA,
				want: []string{"ext.default.svc.cluster.local.\t0\tIN\tCNAME\twww.upstream.test.", a("www.upstream.test.", upstreamIP)}},
			{name: "PTR of a cluster IP (DNS-02)", qname: reverse(t, kubiaIP), qtype: mdns.TypePTR,
				want: []string{reverse(t, kubiaIP) + "\t0\tIN\tPTR\tkubia.default.svc.cluster.local."}},
			{name: "PTR of a headless endpoint (DNS-03)", qname: reverse(t, web0), qtype: mdns.TypePTR,
				want: []string{reverse(t, web0) + "\t0\tIN\tPTR\tweb-0.web.default.svc.cluster.local."}},
			{name: "pod A record (DNS-07)", qname: dashed(client1) + ".default.pod.cluster.local.", qtype: mdns.TypeA,
				want: []string{a(dashed(client1)+".default.pod.cluster.local.", client1)}},
			{name: "dns-version TXT (DNS-01)", qname: "dns-version.cluster.local.", qtype: mdns.TypeTXT,
				want: []string{"dns-version.cluster.local.\t0\tIN\tTXT\t\"1.1.0\""}},
			{name: "no such service is NXDOMAIN (DNS-C-02)", qname: "nosuch.default.svc.cluster.local.", qtype: mdns.TypeA,
				rcode: mdns.RcodeNameError, auth: true},
			{name: "no such namespace is NXDOMAIN (DNS-C-02)", qname: "kubia.nosuch.svc.cluster.local.", qtype: mdns.TypeA,
				rcode: mdns.RcodeNameError, auth: true},
			{name: "existing namespace is NODATA (DNS-C-03)", qname: "other.svc.cluster.local.", qtype: mdns.TypeA, auth: true},
			{name: "external name from the upstream", qname: "www.upstream.test.", qtype: mdns.TypeA,
				want: []string{a("www.upstream.test.", upstreamIP)}},
			{name: "external NXDOMAIN from the upstream", qname: "nx.upstream.test.", qtype: mdns.TypeA, rcode: mdns.RcodeNameError},
		} {
			t.Run(tc.name, func(t *testing.T) {
				proto := tc.proto
				if proto == "" {
					proto = "udp"
				}
				for i := range d.clients {
					m := d.query(t, i, proto, tc.qname, tc.qtype)
					if m.Rcode != tc.rcode {
						t.Errorf("%s: rcode %s, want %s", d.clients[i].Name, mdns.RcodeToString[m.Rcode], mdns.RcodeToString[tc.rcode])
					}
					want := tc.want
					if want == nil {
						want = []string{}
					}
					if diff := cmp.Diff(want, zoneText(m.Answer)); diff != "" {
						t.Errorf("%s: answer (-want +got):\n%s", d.clients[i].Name, diff)
					}
					ns := zoneText(m.Ns)
					if hasSOA := len(ns) == 1 && strings.HasPrefix(ns[0], soa); hasSOA != tc.auth {
						t.Errorf("%s: authority %q, want the zone SOA: %v", d.clients[i].Name, ns, tc.auth)
					}
				}
			})
		}
	})

	t.Run("a Service created after the pod resolves within 1 s", func(t *testing.T) {
		for round := range 3 {
			name := fmt.Sprintf("late-%d", round)
			// Asked before it exists: NXDOMAIN (DNS-C-02), twice, so the denial is a kept reply.
			for i := range d.clients {
				for range 2 {
					if m := d.query(t, i, "udp", name+".default.svc.cluster.local.", mdns.TypeA); m.Rcode != mdns.RcodeNameError {
						t.Fatalf("%s before its creation: %s", name, mdns.RcodeToString[m.Rcode])
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			svc, err := w.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			created := time.Now()
			var wg sync.WaitGroup
			took := make([]time.Duration, len(d.clients))
			for i := range d.clients {
				wg.Go(func() {
					took[i] = d.timeToResolve(i, name+".default.svc.cluster.local.", svc.Spec.ClusterIP, created, 10*time.Second)
				})
			}
			wg.Wait()
			for i, dt := range took {
				t.Logf("%s resolved by %s after %v", name, d.clients[i].Name, dt)
				if dt > time.Second {
					t.Errorf("%s: %s resolved after %v, want within 1 s", d.clients[i].Name, name, dt)
				}
			}
		}
	})

	t.Run("each node's DNS answers its own pods", func(t *testing.T) {
		before := []float64{d.metric(t, 0, "coredns_dns_requests_total"), d.metric(t, 1, "coredns_dns_requests_total")}
		const n = 20
		for range n {
			d.query(t, 1, "udp", "kubia.default.svc.cluster.local.", mdns.TypeA)
		}
		after := []float64{d.metric(t, 0, "coredns_dns_requests_total"), d.metric(t, 1, "coredns_dns_requests_total")}
		if got := after[1] - before[1]; got < n {
			t.Errorf("node-2's DNS counted %v requests from dnsclient-2, want >= %d", got, n)
		}
		if got := after[0] - before[0]; got != 0 {
			t.Errorf("node-1's DNS counted %v requests while only dnsclient-2 asked", got)
		}
	})

	t.Run("forwarded names are cached", func(t *testing.T) {
		hits0 := d.metric(t, 0, "coredns_cache_hits_total")
		up0 := d.up.queries.Load()
		for range 5 {
			d.query(t, 0, "udp", "www.upstream.test.", mdns.TypeA)
		}
		if got := d.up.queries.Load() - up0; got > 1 {
			t.Errorf("upstream asked %d times for one name, want at most once (cache)", got)
		}
		if got := d.metric(t, 0, "coredns_cache_hits_total") - hits0; got < 4 {
			t.Errorf("coredns_cache_hits_total grew by %v, want >= 4", got)
		}
		for _, m := range []string{"coredns_dns_request_duration_seconds_count", "coredns_dns_responses_total", "coredns_cache_requests_total"} {
			if d.metric(t, 0, m) == 0 {
				t.Errorf("metric %s missing or zero", m)
			}
		}
	})

	t.Run("a deleted kube-dns slice is published again", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		name := agent.DNSEndpointSliceName("node-2")
		old, err := w.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Client.DiscoveryV1().EndpointSlices("kube-system").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		servertest.WaitFor(t, 30*time.Second, "slice "+name+" re-created", func() error {
			s, err := w.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if s.UID == old.UID {
				return fmt.Errorf("still the old slice")
			}
			if diff := cmp.Diff(old.Endpoints, s.Endpoints); diff != "" {
				return fmt.Errorf("endpoints (-old +new):\n%s", diff)
			}
			return nil
		})
	})

	t.Run("deleting a Node deletes its kube-dns slice", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d.nodes[1].StopAgent(syscall.SIGKILL) // SIGKILL: the agent would not re-register its Node
		if err := w.Client.CoreV1().Nodes().Delete(ctx, "node-2", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		name := agent.DNSEndpointSliceName("node-2")
		servertest.WaitFor(t, 45*time.Second, "slice "+name+" collected", func() error {
			_, err := w.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%v)", err)
		})
		if _, err := w.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, agent.DNSEndpointSliceName("node-1"), metav1.GetOptions{}); err != nil {
			t.Errorf("node-1's slice: %v", err)
		}
	})
}

// timeToResolve polls the DNS of client i until name has the address ip and returns the time
// since start, or more than timeout.
func (d *dnsWorld) timeToResolve(i int, name, ip string, start time.Time, timeout time.Duration) time.Duration {
	for time.Since(start) <= timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		m, err := exchange(ctx, d.clientNS[i], "udp", d.server(i), name, mdns.TypeA)
		cancel()
		if err == nil && len(m.Answer) == 1 {
			if a, ok := m.Answer[0].(*mdns.A); ok && a.A.String() == ip {
				return time.Since(start)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// getent runs `getent <db> <key>` in pod c and returns the addresses it printed, sorted and
// unique; nil when the name was not found (exit status 2).
func getent(t *testing.T, w *testcluster.World, c *corev1.Pod, db, key string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := w.Kubectl(ctx, "exec", "-n", c.Namespace, c.Name, "--", "getent", db, key)
	if err != nil {
		if strings.Contains(out, "exit code 2") {
			return nil
		}
		t.Fatalf("getent %s %s in %s: %v: %s", db, key, c.Name, err, out)
	}
	var ips []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && !slices.Contains(ips, f[0]) {
			if _, err := netip.ParseAddr(f[0]); err == nil {
				ips = append(ips, f[0])
			}
		}
	}
	sort.Strings(ips)
	return ips
}

func slicePorts(s *discoveryv1.EndpointSlice) string {
	var out []string
	for _, p := range s.Ports {
		out = append(out, fmt.Sprintf("%s/%s/%d", ptr.Deref(p.Name, ""), ptr.Deref(p.Protocol, ""), ptr.Deref(p.Port, 0)))
	}
	return strings.Join(out, " ")
}

func ownerOf(s *discoveryv1.EndpointSlice) string {
	var out []string
	for _, o := range s.OwnerReferences {
		out = append(out, o.Kind+"/"+o.Name+"/"+string(o.UID))
	}
	return strings.Join(out, ",")
}

// metric returns the sum over all series of a metric of node i's DNS, read from the node's
// metrics port (9153 on its gateway) inside the node's network namespace.
func (d *dnsWorld) metric(t *testing.T, i int, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(d.gw[i].String(), strconv.Itoa(agent.DefaultDNSMetricsPort)) + "/metrics"
	body, err := testcluster.HTTPGet(ctx, d.nodes[i].NetNS, url)
	if err != nil {
		t.Fatalf("metrics of %s: %v", d.nodes[i].Name, err)
	}
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}

// TestDNS_ServerNodeAgent checks that the agent inside `kubesvc server` serves cluster DNS
// too: its kube-dns endpoint is published and its DNS answers for the kubernetes Service
// (DESIGN §5.4, DNS-02). Only cluster names are asked: this node forwards other names to the
// host's resolv.conf nameservers, which the world cannot reach.
func TestDNS_ServerNodeAgent(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{})
	n := w.AddServerNode("server-1")
	var gw string
	servertest.WaitFor(t, time.Minute, "kube-dns endpoint of server-1", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := n.Kubectl(ctx, "get", "endpointslice", "-n", "kube-system", agent.DNSEndpointSliceName("server-1"),
			"-o", "jsonpath={.endpoints[0].addresses[0]} {.endpoints[0].nodeName}")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		f := strings.Fields(out)
		if len(f) != 2 || f[1] != "server-1" {
			return fmt.Errorf("endpoint %q", out)
		}
		gw = f[0]
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := exchange(ctx, n.NetNS, "udp", net.JoinHostPort(gw, "53"), "kubernetes.default.svc.cluster.local.", mdns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kubernetes.default.svc.cluster.local.\t0\tIN\tA\t10.96.0.1"}
	if diff := cmp.Diff(want, zoneText(m.Answer)); diff != "" || m.Rcode != mdns.RcodeSuccess {
		t.Fatalf("rcode %s, answer (-want +got):\n%s", mdns.RcodeToString[m.Rcode], diff)
	}
}
