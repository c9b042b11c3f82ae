package dns

import (
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// testSerial is the SOA serial of test stores (their clock is frozen at this Unix time).
const testSerial = 1700000000

// newTestServer returns a server whose caches hold objs, without informers or sockets. Its
// CNAME lookups outside the zone are answered by upstream (nil: none answer).
func newTestServer(t testing.TB, cfg Config, upstream map[string][]string, objs ...runtime.Object) *Server {
	t.Helper()
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.st.now = func() time.Time { return time.Unix(testSerial, 0) }
	load(s.st, objs...)
	s.b.lookup = func(_ context.Context, req *mdns.Msg, name string, qtype uint16) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		for _, rr := range upstream[strings.ToLower(name)+" "+mdns.TypeToString[qtype]] {
			r, err := mdns.NewRR(rr)
			if err != nil {
				t.Fatalf("upstream record %q: %v", rr, err)
			}
			m.Answer = append(m.Answer, r)
		}
		return m
	}
	return s
}

// load projects objs into st as the informers would.
func load(st *store, objs ...runtime.Object) {
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			st.setNamespace(o.Name, true)
		case *corev1.Service:
			st.setService(nil, newService(o))
		case *discoveryv1.EndpointSlice:
			st.setEndpoints(nil, newEndpoints(o))
		case *corev1.Pod:
			if p := newPod(o); p != nil {
				st.setPod(nil, p)
			}
		default:
			panic("load: unexpected object type")
		}
	}
}

// recorder is an mdns.ResponseWriter that keeps the reply.
type recorder struct {
	local net.Addr
	msg   *mdns.Msg
}

func (r *recorder) LocalAddr() net.Addr {
	if r.local == nil {
		return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return r.local
}
func (r *recorder) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (r *recorder) WriteMsg(m *mdns.Msg) error {
	// Round-trip through the wire format, as a client would see it.
	b, err := m.Pack()
	if err != nil {
		return err
	}
	r.msg = new(mdns.Msg)
	return r.msg.Unpack(b)
}
func (r *recorder) Write(b []byte) (int, error) {
	r.msg = new(mdns.Msg)
	return len(b), r.msg.Unpack(b)
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// ask sends one question through s.ServeDNS (UDP, EDNS0 4096 unless edns is 0 or given).
func ask(s *Server, name string, qtype uint16) *mdns.Msg {
	req := new(mdns.Msg)
	req.SetQuestion(name, qtype)
	req.SetEdns0(4096, false)
	w := &recorder{}
	s.ServeDNS(w, req)
	return w.msg
}

// zoneText renders records in zone-file text, one line each, fields separated by single
// spaces, sorted (answer order is unspecified, DNS-C-06); OPT records are left out.
func zoneText(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == mdns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	sort.Strings(out)
	return out
}

// Fixture builders.

func ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func svc(ns, name string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}
	mut(s)
	return s
}

func svcPort(name string, proto corev1.Protocol, p int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: p}
}

func slice(ns, name, service string, t discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: t, Ports: ports, Endpoints: eps,
	}
}

func epPort(name string, proto corev1.Protocol, p int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &p}
}

// ep is an endpoint; ready is "true", "false" or "" (nil: ready); hostname may be "".
func ep(ip, hostname, ready string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}}
	if hostname != "" {
		e.Hostname = &hostname
	}
	if ready != "" {
		r := ready == "true"
		e.Conditions.Ready = &r
	}
	return e
}
