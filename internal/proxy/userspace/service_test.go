package userspace

import (
	"net/netip"
	"testing"
	"time"

	"kubesvc/internal/proxy"
)

// These tests need no network: endpoint choice and ClientIP affinity on a fake clock.

var (
	b1 = netip.MustParseAddrPort("198.51.100.11:8080")
	b2 = netip.MustParseAddrPort("198.51.100.12:8080")
	b3 = netip.MustParseAddrPort("198.51.100.13:9090")
)

func TestPick_RandomSkipsAvoided(t *testing.T) {
	cases := []struct {
		name   string
		list   backends
		avoid  []netip.AddrPort
		want   []netip.AddrPort // allowed answers; empty = none
		wantOK bool
	}{
		{name: "empty list", wantOK: false},
		{name: "one", list: backends{b1}, want: []netip.AddrPort{b1}, wantOK: true},
		{name: "all avoided", list: backends{b1, b2}, avoid: []netip.AddrPort{b2, b1}, wantOK: false},
		{name: "one left", list: backends{b1, b2, b3}, avoid: []netip.AddrPort{b1, b3}, want: []netip.AddrPort{b2}, wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				got, ok := pickRandom(tc.list, tc.avoid)
				if ok != tc.wantOK {
					t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
				}
				if ok && !backends(tc.want).contains(got) {
					t.Fatalf("picked %v, want one of %v", got, tc.want)
				}
			}
		})
	}
}

// TestPick_Uniform: PX-E-05, every endpoint is chosen about equally often.
func TestPick_Uniform(t *testing.T) {
	list := backends{b1, b2, b3}
	n := map[netip.AddrPort]int{}
	for range 30000 {
		b, _ := pickRandom(list, nil)
		n[b]++
	}
	for _, b := range list {
		if n[b] < 9000 || n[b] > 11000 { // expected 10000, σ ≈ 82
			t.Errorf("%v chosen %d times of 30000", b, n[b])
		}
	}
}

// TestAffinity_StickyExpiresAndFollowsList: PX-A-01/02/04 on a fake clock.
func TestAffinity_StickyExpiresAndFollowsList(t *testing.T) {
	s := &service{}
	client := netip.MustParseAddr("203.0.113.2")
	other := netip.MustParseAddr("203.0.113.3")
	list := backends{b1, b2, b3}
	now := time.Unix(1000, 0)
	timeout := 10 * time.Second

	first, _ := s.pick(client, list, timeout, nil, now)
	for i := range 100 {
		now = now.Add(9 * time.Second) // each use slides the window
		if got, _ := s.pick(client, list, timeout, nil, now); got != first {
			t.Fatalf("pick %d = %v, want sticky %v", i, got, first)
		}
	}
	// Another client has its own record.
	s.pick(other, list, timeout, nil, now)
	if len(s.aff.entries) != 2 {
		t.Fatalf("%d affinity entries, want 2", len(s.aff.entries))
	}
	// Expired: random again; over many expiries more than one endpoint shows up.
	seen := map[netip.AddrPort]bool{}
	for range 60 {
		now = now.Add(timeout)
		got, _ := s.pick(client, list, timeout, nil, now)
		seen[got] = true
	}
	if len(seen) < 2 {
		t.Fatalf("after expiry always %v", seen)
	}
	// The recorded endpoint left the list (PX-A-04), or failed to answer (avoid).
	now = now.Add(time.Second)
	cur, _ := s.pick(client, list, timeout, nil, now)
	var rest backends
	for _, b := range list {
		if b != cur {
			rest = append(rest, b)
		}
	}
	moved, _ := s.pick(client, rest, timeout, nil, now)
	if moved == cur {
		t.Fatalf("stuck to %v which left the list", cur)
	}
	if again, _ := s.pick(client, list, timeout, nil, now); again != moved {
		t.Fatalf("new record not kept: %v, want %v", again, moved)
	}
	if got, _ := s.pick(client, list, timeout, []netip.AddrPort{moved}, now); got == moved {
		t.Fatal("picked the endpoint to avoid")
	}
	// Sweep forgets expired entries only.
	s.aff.sweep(timeout, now.Add(timeout))
	if len(s.aff.entries) != 0 {
		t.Fatalf("sweep left %d entries", len(s.aff.entries))
	}
}

// TestNewPolicy: the data path takes the lists of proxy.Categorize (spec §5.3/§5.4).
func TestNewPolicy(t *testing.T) {
	local := proxy.Endpoint{IP: b1.Addr(), Port: 8080, Ready: true, Serving: true, NodeName: "n1", Local: true}
	remote := proxy.Endpoint{IP: b2.Addr(), Port: 8080, Ready: true, Serving: true, NodeName: "n2"}
	cases := []struct {
		name                          string
		port                          proxy.ServicePort
		eps                           []proxy.Endpoint
		internal, external, shortCirc backends
		listen                        bool
	}{
		{name: "cluster policies", port: proxy.ServicePort{NodePort: 30000}, eps: []proxy.Endpoint{local, remote},
			internal: backends{b1, b2}, external: backends{b1, b2}, shortCirc: backends{b1, b2}, listen: true},
		{name: "eTP Local (PX-T-03/04)", port: proxy.ServicePort{NodePort: 30000, ExternalPolicyLocal: true}, eps: []proxy.Endpoint{local, remote},
			internal: backends{b1, b2}, external: backends{b1}, shortCirc: backends{b1, b2}, listen: true},
		{name: "eTP Local, no local endpoint: drop", port: proxy.ServicePort{NodePort: 30000, ExternalPolicyLocal: true}, eps: []proxy.Endpoint{remote},
			internal: backends{b2}, external: nil, shortCirc: backends{b2}, listen: true},
		{name: "iTP Local, no local endpoint: drop (PX-T-02)", port: proxy.ServicePort{InternalPolicyLocal: true}, eps: []proxy.Endpoint{remote},
			internal: nil, listen: true},
		{name: "no endpoints: reject (PX-T-01)", port: proxy.ServicePort{NodePort: 30000}, listen: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &proxy.ServiceState{ServicePort: tc.port, Endpoints: tc.eps}
			proxy.Categorize(st)
			p := newPolicy(st)
			if !equal(p.internal, tc.internal) || (tc.port.NodePort != 0 && (!equal(p.external, tc.external) || !equal(p.shortCircuit, tc.shortCirc))) {
				t.Errorf("policy internal %v external %v short-circuit %v", p.internal, p.external, p.shortCircuit)
			}
			if hasEndpoints(st) != tc.listen {
				t.Errorf("hasEndpoints = %v, want %v", hasEndpoints(st), tc.listen)
			}
		})
	}
}

func equal(a, b backends) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConfig_Validate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "defaults", cfg: Config{}},
		{name: "long device name", cfg: Config{Device: "kubesvc-vip-device0"}, wantErr: true},
		{name: "negative timeout", cfg: Config{DialTimeout: -time.Second}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
