package dnsdiff

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/dns"
	"kubesvc/internal/peertest"
	"kubesvc/internal/servertest"
)

// question is one query of the comparison.
type question struct {
	name  string
	qtype uint16
	proto string // udp or tcp
	edns  bool
}

func (q question) String() string {
	e := ""
	if !q.edns {
		e = " no-edns"
	}
	return fmt.Sprintf("%s %s/%s%s", q.name, mdns.TypeToString[q.qtype], q.proto, e)
}

func TestDNS_MatchesCoreDNS(t *testing.T) {
	peertest.SkipIfMissing(t, peertest.CoreDNSBinary)
	bin, _ := peertest.Path(peertest.CoreDNSBinary)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	api := servertest.StartTestServer(t)
	cs, err := kubernetes.NewForConfig(api.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	upstream := startUpstream(t)

	ours, err := dns.New(dns.Config{Listen: []string{"127.0.0.1:0"}, Upstreams: []string{upstream}, TTL: 30, Client: cs})
	if err != nil {
		t.Fatal(err)
	}
	if err := ours.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ours.Close)
	oursAddr := ours.Addrs()[0]
	coreAddr, coreLog := startCoreDNS(t, bin, api.Kubeconfig, upstream)

	createState(ctx, t, cs)
	// The EndpointSlice controller writes the slices of the selector Services from the pods.
	selReady := servertest.Poll(20*time.Second, func() error {
		for _, svc := range []string{"sel", "sel-headless"} {
			l, err := cs.DiscoveryV1().EndpointSlices(nsA).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
			if err != nil {
				return err
			}
			n := 0
			for _, es := range l.Items {
				n += len(es.Endpoints)
			}
			if n != 2 {
				return fmt.Errorf("%s: %d endpoints in slices", svc, n)
			}
		}
		return nil
	})
	if selReady != nil {
		t.Logf("selector Services have no controller-written slices (%v); both servers see the same state regardless", selReady)
	}
	sentinel := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "zz-sentinel"},
		Spec: corev1.ServiceSpec{Ports: ports(sp("http", corev1.ProtocolTCP, 80))}}
	if _, err := cs.CoreV1().Services(nsA).Create(ctx, sentinel, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{oursAddr, coreAddr} {
		servertest.WaitFor(t, 30*time.Second, "sentinel resolves on "+addr, func() error {
			m, err := exchange(addr, "udp", "zz-sentinel.dnsdiff.svc.cluster.local.", mdns.TypeA, true)
			if err != nil {
				return err
			}
			if len(m.Answer) == 0 {
				return fmt.Errorf("rcode %s", mdns.RcodeToString[m.Rcode])
			}
			return nil
		})
	}

	qs := questions(ctx, t, cs)
	matched := 0
	kinds := map[string]int{} // what the matched replies were, to show the comparison has teeth
	var diffs []string
	for _, q := range qs {
		a, errA := exchange(oursAddr, q.proto, q.name, q.qtype, q.edns)
		b, errB := exchange(coreAddr, q.proto, q.name, q.qtype, q.edns)
		if errA != nil || errB != nil {
			diffs = append(diffs, fmt.Sprintf("%s: ours err=%v, coredns err=%v", q, errA, errB))
			continue
		}
		ca, cb := canonical(a), canonical(b)
		if ca == cb {
			matched++
			kinds[kind(a)]++
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s:\n  ours:    %s\n  coredns: %s", q, strings.ReplaceAll(ca, "\n", "\n           "), strings.ReplaceAll(cb, "\n", "\n           ")))
	}
	t.Logf("matched %d of %d (%v)", matched, len(qs), kinds)
	fmt.Printf("dnsdiff: matched %d of %d\n", matched, len(qs))
	if kinds["answer"] < 150 || kinds["NXDOMAIN"] < 150 || kinds["NODATA"] < 150 || kinds["truncated"] < 1 {
		t.Errorf("the questions cover too little: %v", kinds)
	}
	if len(qs) < 500 {
		t.Errorf("only %d questions; the proof needs at least 500", len(qs))
	}
	if len(diffs) > 0 {
		b, _ := os.ReadFile(coreLog)
		t.Errorf("%d differences:\n%s\ncoredns log tail:\n%s", len(diffs), strings.Join(diffs, "\n"), tail(string(b), 20))
	}
}

// kind classifies a reply: truncated, answer, NODATA, or its rcode.
func kind(m *mdns.Msg) string {
	switch {
	case m.Truncated:
		return "truncated"
	case m.Rcode == mdns.RcodeSuccess && len(m.Answer) > 0:
		return "answer"
	case m.Rcode == mdns.RcodeSuccess:
		return "NODATA"
	}
	return mdns.RcodeToString[m.Rcode]
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// canonical renders what is compared of a reply: rcode, then the answer and authority
// sections in zone-file text with TTLs and the SOA serial zeroed, sorted. A truncated reply
// is rendered as its rcode, TC and answer count.
func canonical(m *mdns.Msg) string {
	if m.Truncated {
		return fmt.Sprintf("%s TC answers=%d", mdns.RcodeToString[m.Rcode], len(m.Answer))
	}
	sec := func(rrs []mdns.RR) string {
		var l []string
		for _, rr := range rrs {
			rr = mdns.Copy(rr)
			rr.Header().Ttl = 0
			if soa, ok := rr.(*mdns.SOA); ok {
				soa.Serial = 0
			}
			l = append(l, strings.Join(strings.Fields(rr.String()), " "))
		}
		sort.Strings(l)
		return strings.Join(l, " | ")
	}
	return fmt.Sprintf("%s\nanswer: %s\nauthority: %s", mdns.RcodeToString[m.Rcode], sec(m.Answer), sec(m.Ns))
}

// questions builds the query list from the cluster state: every name × many types over UDP
// with EDNS0, and subsets over TCP and over UDP without EDNS0.
func questions(ctx context.Context, t *testing.T, cs kubernetes.Interface) []question {
	t.Helper()
	const z = "cluster.local."
	names := []string{
		z, "svc." + z, "pod." + z, "dns-version." + z, "ns.dns." + z, "foo." + z, "CLUSTER.Local.",
		nsA + ".svc." + z, nsB + ".svc." + z, "nosuch.svc." + z, "kube-system.svc." + z,
		"nosuch." + nsA + ".svc." + z, "web." + nsA + ".foo." + z, "a.b.c.d.web." + nsA + ".svc." + z,
		"kubernetes.default.svc." + z, "_https._tcp.kubernetes.default.svc." + z,
		"kube-dns.kube-system.svc." + z, "_dns._udp.kube-dns.kube-system.svc." + z, "_dns-tcp._tcp.kube-dns.kube-system.svc." + z,
		"web." + nsB + ".svc." + z, "_http._tcp.web." + nsB + ".svc." + z, "10-244-9-5.web." + nsB + ".svc." + z,
		// ClusterIP: named ports, protocols, endpoint names.
		"_http._tcp.web." + nsA + ".svc." + z, "_https._tcp.web." + nsA + ".svc." + z, "_dns._udp.web." + nsA + ".svc." + z,
		"_dns._tcp.web." + nsA + ".svc." + z, "_x._tcp.web." + nsA + ".svc." + z, "http.tcp.web." + nsA + ".svc." + z,
		"_HTTP._TCP.Web." + strings.ToUpper(nsA) + ".svc." + z, "10-244-1-5.web." + nsA + ".svc." + z,
		"10-244-1-6.web." + nsA + ".svc." + z, "10-244-1-7.web." + nsA + ".svc." + z, "x.web." + nsA + ".svc." + z,
		"_http.web." + nsA + ".svc." + z, "_._tcp.web." + nsA + ".svc." + z,
		"single." + nsA + ".svc." + z, "_http._tcp.single." + nsA + ".svc." + z, "10-244-2-5.single." + nsA + ".svc." + z,
		"sig." + nsA + ".svc." + z, "_sig._sctp.sig." + nsA + ".svc." + z, "_sig._tcp.sig." + nsA + ".svc." + z,
		"np." + nsA + ".svc." + z, "lb." + nsA + ".svc." + z, "_http._tcp.lb." + nsA + ".svc." + z,
		// Headless.
		"db." + nsA + ".svc." + z, "db-0.db." + nsA + ".svc." + z, "db-1.db." + nsA + ".svc." + z, "db-2.db." + nsA + ".svc." + z,
		"DB-0.Db." + nsA + ".svc." + z, "10-244-3-13.db." + nsA + ".svc." + z, "10-244-3-10.db." + nsA + ".svc." + z,
		"fd00-10-244--11.db." + nsA + ".svc." + z, "_pg._tcp.db." + nsA + ".svc." + z, "_pg._udp.db." + nsA + ".svc." + z,
		"big." + nsA + ".svc." + z, "member-7.big." + nsA + ".svc." + z, "_http._tcp.big." + nsA + ".svc." + z,
		"empty." + nsA + ".svc." + z, "notready." + nsA + ".svc." + z, "nr-0.notready." + nsA + ".svc." + z,
		"noports." + nsA + ".svc." + z, "np-0.noports." + nsA + ".svc." + z,
		"sel." + nsA + ".svc." + z, "sel-headless." + nsA + ".svc." + z, "sel-0.sel-headless." + nsA + ".svc." + z,
		"_http._tcp.sel-headless." + nsA + ".svc." + z, "10-244-5-5.sel." + nsA + ".svc." + z,
		// ExternalName.
		"ext." + nsA + ".svc." + z, "ext-nx." + nsA + ".svc." + z, "ext-in." + nsA + ".svc." + z, "ext-chain." + nsA + ".svc." + z,
		"ext-ip." + nsA + ".svc." + z, "ext-ports." + nsA + ".svc." + z, "_http._tcp.ext-ports." + nsA + ".svc." + z,
		"x.ext." + nsA + ".svc." + z,
		// Pods (pods insecure).
		"10-244-5-5." + nsA + ".pod." + z, "10-244-5-5.nosuch.pod." + z, "fd00--1." + nsA + ".pod." + z, "abc." + nsA + ".pod." + z,
		"1-2-3." + nsA + ".pod." + z, "x.10-244-5-5." + nsA + ".pod." + z, nsA + ".pod." + z, "--ffff-102-304." + nsA + ".pod." + z,
		// Outside the zone (forwarded).
		"www.example.com.", "nx.example.com.", "example.com.", "WWW.Example.COM.", "unknown.test.",
		// Reverse zones.
		"in-addr.arpa.", "10.in-addr.arpa.", "96.10.in-addr.arpa.", "99.99.99.10.in-addr.arpa.", "ip6.arpa.",
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.Items {
		for _, ip := range s.Spec.ClusterIPs {
			if r, err := mdns.ReverseAddr(ip); err == nil && net.ParseIP(ip) != nil {
				names = append(names, r)
			}
		}
	}
	for _, ip := range []string{"10.244.1.5", "10.244.1.7", "10.244.3.10", "10.244.3.13", "10.244.5.5", "10.244.8.3",
		"fd00:10:244::10", "fd00:10:244::11", "10.244.4.9"} {
		r, _ := mdns.ReverseAddr(ip)
		names = append(names, r)
	}
	types := []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeSRV, mdns.TypeTXT, mdns.TypeCNAME, mdns.TypePTR,
		mdns.TypeMX, mdns.TypeSOA, mdns.TypeNS, mdns.TypeANY, mdns.TypeHINFO}
	var qs []question
	for _, n := range names {
		for _, ty := range types {
			qs = append(qs, question{name: n, qtype: ty, proto: "udp", edns: true})
		}
	}
	for _, n := range names {
		if strings.HasSuffix(n, "."+nsA+".svc."+z) || strings.HasSuffix(n, ".arpa.") {
			for _, ty := range []uint16{mdns.TypeA, mdns.TypeSRV, mdns.TypePTR} {
				qs = append(qs, question{name: n, qtype: ty, proto: "tcp", edns: false})
			}
			qs = append(qs, question{name: n, qtype: mdns.TypeA, proto: "udp", edns: false})
		}
	}
	return qs
}
