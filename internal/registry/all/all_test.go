package all

import (
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/resource"
)

func TestKinds_CoverCatalog(t *testing.T) {
	kinds := Kinds(Config{})
	if len(kinds) != len(resource.All) {
		t.Errorf("Kinds has %d entries, catalog has %d", len(kinds), len(resource.All))
	}
	for _, info := range resource.All {
		t.Run(info.GroupResource().String(), func(t *testing.T) {
			k, ok := kinds[info.GroupResource()]
			if !ok {
				t.Fatalf("no Kind")
			}
			if k.Strategy == nil {
				t.Fatalf("nil Strategy")
			}
			if _, generic := k.Strategy.(Generic); generic {
				t.Errorf("falls back to the generic strategy")
			}
			if got, want := k.Status != nil, info.HasSubresource("status"); got != want {
				t.Errorf("has status strategy = %v, catalog has /status = %v", got, want)
			}
			wantLabel := info.Resource == "namespaces" || info.Resource == "services"
			if k.NameIsDNSLabel != wantLabel {
				t.Errorf("NameIsDNSLabel = %v, want %v", k.NameIsDNSLabel, wantLabel)
			}
			if k.Fields != nil {
				set := k.Fields(info.New())
				if _, ok := set["metadata.name"]; !ok {
					t.Errorf("field set lacks metadata.name: %v", set)
				}
				if _, ok := set["metadata.namespace"]; ok != info.Namespaced {
					t.Errorf("field set has metadata.namespace = %v, namespaced = %v", ok, info.Namespaced)
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name string
		gr   schema.GroupResource
		want bool
	}{
		{name: "core", gr: schema.GroupResource{Resource: "pods"}, want: true},
		{name: "apps", gr: schema.GroupResource{Group: "apps", Resource: "deployments"}, want: true},
		{name: "networking", gr: schema.GroupResource{Group: "networking.k8s.io", Resource: "ingressclasses"}, want: true},
		{name: "wrong group", gr: schema.GroupResource{Group: "apps", Resource: "pods"}, want: false},
		{name: "not served", gr: schema.GroupResource{Group: "batch", Resource: "jobs"}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, ok := Lookup(tc.gr)
			if ok != tc.want || (ok && k.Strategy == nil) {
				t.Errorf("Lookup(%v) = %+v, %v; want found=%v", tc.gr, k, ok, tc.want)
			}
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "zero", cfg: Config{}},
		{name: "dual stack", cfg: Config{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:10:96::/112")}}},
		{name: "same family twice", cfg: Config{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("10.128.0.0/12")}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr {
				Kinds(tc.cfg) // must not panic
			}
		})
	}
}
