package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAllocator_Allocate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		owners []string
		want   []string
		err    error
	}{
		{name: "skips network and gateway", prefix: "10.244.1.0/24", owners: []string{"a", "b"}, want: []string{"10.244.1.2", "10.244.1.3"}},
		{name: "same owner same address", prefix: "10.244.1.0/24", owners: []string{"a", "a"}, want: []string{"10.244.1.2", "10.244.1.2"}},
		{name: "skips broadcast and wraps to full", prefix: "10.0.0.0/30", owners: []string{"a", "b"}, want: []string{"10.0.0.2"}, err: ErrFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(netip.MustParsePrefix(tc.prefix))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range tc.owners {
				ip, err := a.Allocate(o)
				if err != nil {
					if !errors.Is(err, tc.err) {
						t.Fatalf("Allocate(%s): %v, want %v", o, err, tc.err)
					}
					continue
				}
				got = append(got, ip.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestAllocator_RestoreRelease(t *testing.T) {
	a, err := New(netip.MustParsePrefix("10.244.2.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(netip.MustParseAddr("10.244.2.2"), "old"); err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(netip.MustParseAddr("10.244.2.2"), "other"); err == nil {
		t.Fatal("restoring a held address for another owner succeeded")
	}
	if err := a.Restore(netip.MustParseAddr("10.244.2.1"), "gw"); err == nil {
		t.Fatal("restoring the gateway succeeded")
	}
	ip, _ := a.Allocate("new")
	if ip.String() != "10.244.2.3" {
		t.Fatalf("Allocate after Restore = %s, want 10.244.2.3", ip)
	}
	a.Release(netip.MustParseAddr("10.244.2.2"), "old")
	if a.Used() != 1 {
		t.Fatalf("Used = %d, want 1", a.Used())
	}
}
