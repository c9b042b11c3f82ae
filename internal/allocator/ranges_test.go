package allocator

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestIPRange_Bands(t *testing.T) {
	tests := []struct {
		name        string
		cidr        string
		first, last string
		size        uint64
		offset      uint64
		wantErr     bool
	}{
		// SVC-IP-01: IPv4 excludes network and broadcast; SVC-IP-02: min(max(16, 2^h/16), 256).
		{name: "SVC-IP-02 /24 has a static band of 16", cidr: "10.96.0.0/24", first: "10.96.0.1", last: "10.96.0.254", size: 254, offset: 16},
		{name: "SVC-IP-02 /20 has a static band of 256", cidr: "10.96.0.0/20", first: "10.96.0.1", last: "10.96.15.254", size: 4094, offset: 256},
		{name: "SVC-IP-02 /12 is capped at 256", cidr: "10.96.0.0/12", first: "10.96.0.1", last: "10.111.255.254", size: 1<<20 - 2, offset: 256},
		{name: "SVC-IP-02 /23 gets 32", cidr: "10.96.0.0/23", first: "10.96.0.1", last: "10.96.1.254", size: 510, offset: 32},
		{name: "SVC-IP-02 /27 gets the minimum 16", cidr: "10.96.0.0/27", first: "10.96.0.1", last: "10.96.0.30", size: 30, offset: 16},
		{name: "SVC-IP-02 /28 has no static band", cidr: "10.96.0.0/28", first: "10.96.0.1", last: "10.96.0.14", size: 14, offset: 0},
		{name: "SVC-IP-01 /29 has 6 usable addresses", cidr: "10.96.0.0/29", first: "10.96.0.1", last: "10.96.0.6", size: 6, offset: 0},
		{name: "SVC-IP-01 IPv6 keeps the last address", cidr: "fd00::/120", first: "fd00::1", last: "fd00::ff", size: 255, offset: 16},
		{name: "SVC-IP-02 IPv6 /112", cidr: "fd00:10:96::/112", first: "fd00:10:96::1", last: "fd00:10:96::ffff", size: 65535, offset: 256},
		{name: "SVC-IP-01 IPv6 /64 is the largest", cidr: "fd00::/64", first: "fd00::1", last: "fd00::ffff:ffff:ffff:ffff", size: 1<<64 - 1, offset: 256},
		{name: "SVC-IP-01 IPv6 /63 is refused", cidr: "fd00::/63", wantErr: true},
		{name: "SVC-IP-01 /31 has no usable address", cidr: "10.0.0.0/31", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newIPRange(netip.MustParsePrefix(tc.cidr))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("newIPRange(%s) = %+v, want an error", tc.cidr, r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.first.String() != tc.first || r.last.String() != tc.last || r.size != tc.size || r.offset != tc.offset {
				t.Errorf("range %s..%s size %d offset %d, want %s..%s size %d offset %d", r.first, r.last, r.size, r.offset, tc.first, tc.last, tc.size, tc.offset)
			}
			if got := r.at(r.size - 1); got != r.last {
				t.Errorf("at(size-1) = %v, want %v", got, r.last)
			}
			if r.contains(r.prefix.Addr()) || !r.contains(r.first) || !r.contains(r.last) {
				t.Errorf("contains: network %v, first %v, last %v", r.contains(r.prefix.Addr()), r.contains(r.first), r.contains(r.last))
			}
		})
	}
}

func TestPortRange_Offset(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		want   PortRange
		offset int
	}{
		{name: "SVC-NP-02 default range: 2768/32 = 86", spec: "30000-32767", want: PortRange{30000, 2768}, offset: 86},
		{name: "SVC-NP-02 16 ports have no static band", spec: "30000-30015", want: PortRange{30000, 16}, offset: 0},
		{name: "SVC-NP-02 small range gets the minimum 16", spec: "30000-30099", want: PortRange{30000, 100}, offset: 16},
		{name: "SVC-NP-02 large range is capped at 128", spec: "20000-32767", want: PortRange{20000, 12768}, offset: 128},
		{name: "SVC-NP-01 single port", spec: "30000", want: PortRange{30000, 1}, offset: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePortRange(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || portOffset(got.Size) != tc.offset {
				t.Errorf("ParsePortRange(%q) = %+v offset %d, want %+v offset %d", tc.spec, got, portOffset(got.Size), tc.want, tc.offset)
			}
		})
	}
	for _, bad := range []string{"", "a-b", "30000-20000", "0-10", "1-65536"} {
		if _, err := ParsePortRange(bad); err == nil {
			t.Errorf("ParsePortRange(%q) succeeded, want an error", bad)
		}
	}
}

func TestScan_WrapsAndStops(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		b    band
		free map[uint64]bool
		want uint64
		ok   bool
	}{
		{name: "finds the only free index", b: band{lo: 10, n: 50}, free: map[uint64]bool{33: true}, want: 33, ok: true},
		{name: "reports a full band", b: band{lo: 0, n: 20}, free: map[uint64]bool{25: true}, ok: false},
		{name: "empty band", b: band{lo: 0, n: 0}, ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 20 { // random starts
				got, ok := scan(rng, tc.b, 0, func(i uint64) bool { return tc.free[i] })
				if ok != tc.ok || (ok && got != tc.want) {
					t.Fatalf("scan = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
				}
			}
		})
	}
}
