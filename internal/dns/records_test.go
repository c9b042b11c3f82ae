package dns

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// fixture is the cluster state of the record-grammar tests.
func fixture() []runtime.Object {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	v4, v6 := discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6
	return []runtime.Object{
		ns("default"), ns("other"),
		svc("default", "kubia", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}
			s.Spec.Ports = []corev1.ServicePort{svcPort("http", tcp, 80), svcPort("https", tcp, 443)}
		}),
		slice("default", "kubia-abc", "kubia", v4,
			[]discoveryv1.EndpointPort{epPort("http", tcp, 8080), epPort("https", tcp, 8443)},
			ep("10.244.1.5", "", "true"), ep("10.244.2.6", "", ""), ep("10.244.3.7", "", "false")),
		svc("default", "dual", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11", "fd00::11"}
			s.Spec.Ports = []corev1.ServicePort{svcPort("dns", udp, 53), svcPort("", tcp, 8080)}
		}),
		svc("default", "v6", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::12", []string{"fd00::12"}
			s.Spec.Ports = []corev1.ServicePort{svcPort("", tcp, 80)}
		}),
		svc("default", "headless", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
			s.Spec.Ports = []corev1.ServicePort{svcPort("http", tcp, 80)}
		}),
		slice("default", "headless-1", "headless", v4, []discoveryv1.EndpointPort{epPort("http", tcp, 8080)},
			ep("10.244.1.10", "web-0", ""), ep("10.244.1.11", "", "true"), ep("10.244.1.12", "web-2", "false")),
		slice("default", "headless-2", "headless", v6, []discoveryv1.EndpointPort{epPort("http", tcp, 8080)},
			ep("fd00:244::10", "web-0", "")),
		svc("default", "empty", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}),
		svc("default", "ext", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "www.example.com"
		}),
		svc("default", "ext-ip", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "1.2.3.4"
		}),
		svc("default", "ext-in", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "kubia.default.svc.cluster.local"
		}),
		svc("other", "noports", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.20", []string{"10.96.0.20"}
		}),
	}
}

const soa = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30"

// TestServeDNS_Records is the record grammar of spec §4.2/§4.3 (rule IDs in the names),
// answered from a fixed cache: (name, type) → rcode, answer and authority in zone-file
// text. Where CoreDNS v1.15 (the reference the spec defers to) differs from the spec's
// prose, the case follows CoreDNS and says so.
func TestServeDNS_Records(t *testing.T) {
	upstream := map[string][]string{
		"www.example.com. A":    {"www.example.com. 300 IN A 93.184.216.34"},
		"www.example.com. AAAA": {"www.example.com. 300 IN AAAA 2606:2800:220:1::1"},
	}
	s := newTestServer(t, Config{}, upstream, fixture()...)
	type tc struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		answer    []string
		authority []string
		extra     []string
	}
	nx := func(name, qname string, qtype uint16) tc {
		return tc{name: name, qname: qname, qtype: qtype, rcode: mdns.RcodeNameError, authority: []string{soa}}
	}
	nodata := func(name, qname string, qtype uint16) tc {
		return tc{name: name, qname: qname, qtype: qtype, rcode: mdns.RcodeSuccess, authority: []string{soa}}
	}
	cases := []tc{
		{name: "DNS-01 dns-version TXT", qname: "dns-version.cluster.local.", qtype: mdns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 28800 IN TXT "1.1.0"`}},
		nx("DNS-01 dns-version has no A (not a schema name)", "dns-version.cluster.local.", mdns.TypeA),
		{name: "DNS-02 ClusterIP A", qname: "kubia.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"kubia.default.svc.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "DNS-02 names are case-insensitive, owner keeps the query's case", qname: "KUBIA.Default.SVC.cluster.LOCAL.", qtype: mdns.TypeA,
			answer: []string{"KUBIA.Default.SVC.cluster.LOCAL. 30 IN A 10.96.0.10"}},
		nodata("DNS-C-03 AAAA of an IPv4-only Service is NODATA", "kubia.default.svc.cluster.local.", mdns.TypeAAAA),
		{name: "DNS-02 dual-stack A", qname: "dual.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"dual.default.svc.cluster.local. 30 IN A 10.96.0.11"}},
		{name: "DNS-02 dual-stack AAAA", qname: "dual.default.svc.cluster.local.", qtype: mdns.TypeAAAA,
			answer: []string{"dual.default.svc.cluster.local. 30 IN AAAA fd00::11"}},
		{name: "DNS-02 IPv6-only AAAA", qname: "v6.default.svc.cluster.local.", qtype: mdns.TypeAAAA,
			answer: []string{"v6.default.svc.cluster.local. 30 IN AAAA fd00::12"}},
		{name: "DNS-02 SRV of a named port", qname: "_http._tcp.kubia.default.svc.cluster.local.", qtype: mdns.TypeSRV,
			answer: []string{"_http._tcp.kubia.default.svc.cluster.local. 30 IN SRV 0 100 80 kubia.default.svc.cluster.local."},
			extra:  []string{"kubia.default.svc.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "DNS-02 DNS-C-05 SRV weight counts both families", qname: "_dns._udp.dual.default.svc.cluster.local.", qtype: mdns.TypeSRV,
			answer: []string{"_dns._udp.dual.default.svc.cluster.local. 30 IN SRV 0 50 53 dual.default.svc.cluster.local."},
			extra:  []string{"dual.default.svc.cluster.local. 30 IN A 10.96.0.11", "dual.default.svc.cluster.local. 30 IN AAAA fd00::11"}},
		{name: "DNS-C-05 SRV of the bare name lists every port", qname: "kubia.default.svc.cluster.local.", qtype: mdns.TypeSRV,
			answer: []string{"kubia.default.svc.cluster.local. 30 IN SRV 0 50 443 kubia.default.svc.cluster.local.",
				"kubia.default.svc.cluster.local. 30 IN SRV 0 50 80 kubia.default.svc.cluster.local."},
			extra: []string{"kubia.default.svc.cluster.local. 30 IN A 10.96.0.10"}},
		nx("DNS-02 SRV of an unknown port name", "_ftp._tcp.kubia.default.svc.cluster.local.", mdns.TypeSRV),
		nx("DNS-02 SRV of a wrong protocol", "_http._udp.kubia.default.svc.cluster.local.", mdns.TypeSRV),
		{name: "DNS-02 A of an SRV name answers the cluster IP (CoreDNS)", qname: "_http._tcp.kubia.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"_http._tcp.kubia.default.svc.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "DNS-02 PTR of a cluster IP", qname: "10.0.96.10.in-addr.arpa.", qtype: mdns.TypePTR,
			answer: []string{"10.0.96.10.in-addr.arpa. 30 IN PTR kubia.default.svc.cluster.local."}},
		{name: "DNS-02 PTR of an IPv6 cluster IP", qname: "1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: mdns.TypePTR,
			answer: []string{"1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 30 IN PTR dual.default.svc.cluster.local."}},
		{name: "DNS-03 headless A lists ready endpoints only", qname: "headless.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"headless.default.svc.cluster.local. 30 IN A 10.244.1.10", "headless.default.svc.cluster.local. 30 IN A 10.244.1.11"}},
		{name: "DNS-03 headless AAAA", qname: "headless.default.svc.cluster.local.", qtype: mdns.TypeAAAA,
			answer: []string{"headless.default.svc.cluster.local. 30 IN AAAA fd00:244::10"}},
		{name: "DNS-03 endpoint hostname", qname: "web-0.headless.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"web-0.headless.default.svc.cluster.local. 30 IN A 10.244.1.10"}},
		{name: "DNS-04 endpoint without hostname has its IP-dash name", qname: "10-244-1-11.headless.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"10-244-1-11.headless.default.svc.cluster.local. 30 IN A 10.244.1.11"}},
		nx("DNS-04 an endpoint with a hostname has no IP-dash name", "10-244-1-10.headless.default.svc.cluster.local.", mdns.TypeA),
		nx("DNS-03 not-ready endpoint has no name", "web-2.headless.default.svc.cluster.local.", mdns.TypeA),
		{name: "DNS-03 headless SRV uses endpoint ports and names", qname: "_http._tcp.headless.default.svc.cluster.local.", qtype: mdns.TypeSRV,
			answer: []string{"_http._tcp.headless.default.svc.cluster.local. 30 IN SRV 0 33 8080 10-244-1-11.headless.default.svc.cluster.local.",
				"_http._tcp.headless.default.svc.cluster.local. 30 IN SRV 0 33 8080 web-0.headless.default.svc.cluster.local."},
			extra: []string{"10-244-1-11.headless.default.svc.cluster.local. 30 IN A 10.244.1.11",
				"web-0.headless.default.svc.cluster.local. 30 IN A 10.244.1.10",
				"web-0.headless.default.svc.cluster.local. 30 IN AAAA fd00:244::10"}},
		{name: "DNS-03 PTR of an endpoint", qname: "10.1.244.10.in-addr.arpa.", qtype: mdns.TypePTR,
			answer: []string{"10.1.244.10.in-addr.arpa. 30 IN PTR web-0.headless.default.svc.cluster.local."}},
		nx("DNS-03 headless without ready endpoints is NXDOMAIN", "empty.default.svc.cluster.local.", mdns.TypeA),
		{name: "DNS-05 endpoint name of a ClusterIP Service", qname: "10-244-1-5.kubia.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"10-244-1-5.kubia.default.svc.cluster.local. 30 IN A 10.244.1.5"}},
		{name: "DNS-05 PTR of a ClusterIP Service's endpoint", qname: "6.2.244.10.in-addr.arpa.", qtype: mdns.TypePTR,
			answer: []string{"6.2.244.10.in-addr.arpa. 30 IN PTR 10-244-2-6.kubia.default.svc.cluster.local."}},
		{name: "DNS-06 ExternalName CNAME", qname: "ext.default.svc.cluster.local.", qtype: mdns.TypeCNAME,
			answer: []string{"ext.default.svc.cluster.local. 30 IN CNAME www.example.com."}},
		{name: "DNS-06 ExternalName A appends the upstream's answer", qname: "ext.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"ext.default.svc.cluster.local. 30 IN CNAME www.example.com.", "www.example.com. 300 IN A 93.184.216.34"}},
		{name: "DNS-06 ExternalName AAAA", qname: "ext.default.svc.cluster.local.", qtype: mdns.TypeAAAA,
			answer: []string{"ext.default.svc.cluster.local. 30 IN CNAME www.example.com.", "www.example.com. 300 IN AAAA 2606:2800:220:1::1"}},
		{name: "DNS-06 ExternalName inside the zone is followed", qname: "ext-in.default.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"ext-in.default.svc.cluster.local. 30 IN CNAME kubia.default.svc.cluster.local.", "kubia.default.svc.cluster.local. 30 IN A 10.96.0.10"}},
		nodata("DNS-06 SRV of an ExternalName is NODATA", "ext.default.svc.cluster.local.", mdns.TypeSRV),
		nx("DNS-06 port name under an ExternalName", "_http._tcp.ext.default.svc.cluster.local.", mdns.TypeSRV),
		nx("DNS-06 endpoint name under an ExternalName", "x.ext.default.svc.cluster.local.", mdns.TypeA),
		nx("DNS-06 an IP as externalName is not served", "ext-ip.default.svc.cluster.local.", mdns.TypeA),
		{name: "DNS-07 pod A (pods insecure)", qname: "10-244-1-5.default.pod.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"10-244-1-5.default.pod.cluster.local. 30 IN A 10.244.1.5"}},
		{name: "DNS-07 pod AAAA", qname: "fd00-244--5.default.pod.cluster.local.", qtype: mdns.TypeAAAA,
			answer: []string{"fd00-244--5.default.pod.cluster.local. 30 IN AAAA fd00:244::5"}},
		nx("DNS-07 pod name that is no IP", "web.default.pod.cluster.local.", mdns.TypeA),
		nx("DNS-07 pod in a missing namespace", "10-244-1-5.nosuch.pod.cluster.local.", mdns.TypeA),
		nodata("DNS-07 pod AAAA of an IPv4 name", "10-244-1-5.default.pod.cluster.local.", mdns.TypeAAAA),
		nx("DNS-C-02 missing Service", "nosuch.default.svc.cluster.local.", mdns.TypeA),
		nx("DNS-C-02 missing namespace", "kubia.nosuch.svc.cluster.local.", mdns.TypeA),
		nx("DNS-C-02 label left of the zone is neither svc nor pod", "kubia.default.foo.cluster.local.", mdns.TypeA),
		nx("DNS-C-02 too many labels", "a.b.c.kubia.default.svc.cluster.local.", mdns.TypeA),
		nx("DNS-08 no wildcards", "*.default.svc.cluster.local.", mdns.TypeA),
		nodata("DNS-C-03 zone apex", "cluster.local.", mdns.TypeA),
		nodata("DNS-C-03 svc.<zone>", "svc.cluster.local.", mdns.TypeA),
		nodata("DNS-C-03 pod.<zone>", "pod.cluster.local.", mdns.TypeA),
		nodata("DNS-C-03 existing namespace", "default.svc.cluster.local.", mdns.TypeA),
		nodata("DNS-C-03 TXT of a Service", "kubia.default.svc.cluster.local.", mdns.TypeTXT),
		nodata("DNS-C-03 MX of a Service", "kubia.default.svc.cluster.local.", mdns.TypeMX),
		nodata("DNS-C-03 other types of a Service", "kubia.default.svc.cluster.local.", mdns.TypeHINFO),
		nodata("DNS-C-03 CNAME of a ClusterIP Service", "kubia.default.svc.cluster.local.", mdns.TypeCNAME),
		nx("DNS-C-03 TXT of a namespace is NXDOMAIN in CoreDNS (it answers TXT only for names with records)",
			"default.svc.cluster.local.", mdns.TypeTXT),
		nx("DNS-C-02 TXT of a missing Service", "nosuch.default.svc.cluster.local.", mdns.TypeTXT),
		{name: "DNS-C-01 SOA at the apex", qname: "cluster.local.", qtype: mdns.TypeSOA, answer: []string{soa}},
		nodata("DNS-C-01 SOA below the apex is NODATA (CoreDNS), even for missing names", "nosuch.default.svc.cluster.local.", mdns.TypeSOA),
		nodata("NS at the apex without a non-loopback listen address", "cluster.local.", mdns.TypeNS),
		{name: "DNS-02 Service without ports resolves", qname: "noports.other.svc.cluster.local.", qtype: mdns.TypeA,
			answer: []string{"noports.other.svc.cluster.local. 30 IN A 10.96.0.20"}},
		nodata("DNS-02 SRV of a Service without ports", "noports.other.svc.cluster.local.", mdns.TypeSRV),
		{name: "DNS-C-03 PTR of an unknown reverse name falls through to the upstreams (none: SERVFAIL)",
			qname: "99.99.99.10.in-addr.arpa.", qtype: mdns.TypePTR, rcode: mdns.RcodeServerFailure},
		{name: "AXFR is refused", qname: "cluster.local.", qtype: mdns.TypeAXFR, rcode: mdns.RcodeRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ask(s, c.qname, c.qtype)
			if m == nil {
				t.Fatal("no reply")
			}
			got := fmt.Sprintf("%s\nanswer: %q\nauthority: %q", mdns.RcodeToString[m.Rcode], zoneText(m.Answer), zoneText(m.Ns))
			want := fmt.Sprintf("%s\nanswer: %q\nauthority: %q", mdns.RcodeToString[c.rcode], zoneText(toRRs(t, c.answer)), zoneText(toRRs(t, c.authority)))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", c.qname, mdns.TypeToString[c.qtype], diff)
			}
			if c.extra != nil {
				if diff := cmp.Diff(zoneText(toRRs(t, c.extra)), zoneText(m.Extra)); diff != "" {
					t.Errorf("additional section (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func toRRs(t *testing.T, lines []string) []mdns.RR {
	t.Helper()
	var out []mdns.RR
	for _, l := range lines {
		rr, err := mdns.NewRR(l)
		if err != nil {
			t.Fatalf("record %q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}
