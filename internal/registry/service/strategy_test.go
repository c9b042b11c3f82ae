package service

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestConfigValidate(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name    string
		cidrs   []netip.Prefix
		wantErr bool
	}{
		{name: "empty uses the default", cidrs: nil},
		{name: "dual-stack", cidrs: []netip.Prefix{p("10.96.0.0/12"), p("fd00::/108")}},
		{name: "two of one family", cidrs: []netip.Prefix{p("10.96.0.0/12"), p("10.0.0.0/24")}, wantErr: true},
		{name: "three ranges", cidrs: []netip.Prefix{p("10.96.0.0/12"), p("fd00::/108"), p("10.0.0.0/24")}, wantErr: true},
		{name: "invalid prefix", cidrs: []netip.Prefix{{}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := (Config{ServiceCIDRs: tc.cidrs}).Validate(); (err != nil) != tc.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestNewKind(t *testing.T) {
	k := NewKind(Config{})
	if k.Strategy == nil || k.Status == nil || k.Fields == nil || !k.NameIsDNSLabel {
		t.Fatalf("incomplete kind: %+v", k)
	}
	if s := k.Strategy.(*Strategy); s.PrimaryIPFamily() != corev1.IPv4Protocol || s.IsDualStack() {
		t.Errorf("default config: primary %s dual %v", s.PrimaryIPFamily(), s.IsDualStack())
	}
	if !dualStack.IsDualStack() || v6Stack.PrimaryIPFamily() != corev1.IPv6Protocol {
		t.Error("dual-stack / IPv6 strategies misconfigured")
	}
}

func TestFields(t *testing.T) {
	s := stored(func(s *corev1.Service) { s.Spec.Type = "NodePort" })
	want := fields.Set{"metadata.name": "web", "metadata.namespace": "default", "spec.clusterIP": "10.96.0.10", "spec.type": "NodePort"}
	if diff := cmp.Diff(want, Fields(s)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPrepare(t *testing.T) {
	vip := corev1.LoadBalancerIPModeVIP
	lb := func(s *corev1.Service) {
		s.Spec.Type = "LoadBalancer"
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4", IPMode: &vip}}
	}
	t.Run("create clears status, keeps generation", func(t *testing.T) {
		s := stored(lb)
		s.Generation = 3
		singleStack.PrepareForCreate(context.Background(), s)
		if len(s.Status.LoadBalancer.Ingress) != 0 || s.Generation != 3 {
			t.Errorf("status %+v generation %d", s.Status, s.Generation)
		}
	})
	t.Run("update takes status and generation from old", func(t *testing.T) {
		old, nw := stored(lb), stored(func(s *corev1.Service) { s.Spec.Type = "LoadBalancer" })
		old.Generation, nw.Generation = 2, 9
		singleStack.PrepareForUpdate(context.Background(), nw, old)
		if diff := cmp.Diff(old.Status, nw.Status); diff != "" || nw.Generation != 2 {
			t.Errorf("generation %d status (-old +new):\n%s", nw.Generation, diff)
		}
	})
}
