package discovery

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/resource"
)

func info(group, version, res string) *resource.Info {
	return &resource.Info{GroupVersionResource: schema.GroupVersionResource{Group: group, Version: version, Resource: res}, Kind: "K"}
}

func TestCatalog_Order(t *testing.T) {
	tests := []struct {
		name         string
		infos        []*resource.Info
		wantGroups   []string
		wantVersions map[string][]string
	}{
		{
			name:       "kube priority, then name",
			infos:      []*resource.Info{info("discovery.k8s.io", "v1", "a"), info("", "v1", "b"), info("apps", "v1", "c"), info("networking.k8s.io", "v1", "d")},
			wantGroups: []string{"apps", "networking.k8s.io", "discovery.k8s.io"},
		},
		{
			name:       "unknown groups last in catalog order",
			infos:      []*resource.Info{info("z.example.com", "v1", "a"), info("a.example.com", "v1", "b"), info("apps", "v1", "c")},
			wantGroups: []string{"apps", "z.example.com", "a.example.com"},
		},
		{
			name:         "versions preferred first",
			infos:        []*resource.Info{info("apps", "v1beta1", "a"), info("apps", "v2", "a"), info("apps", "v1", "a"), info("apps", "v2alpha1", "a")},
			wantGroups:   []string{"apps"},
			wantVersions: map[string][]string{"apps": {"v2", "v1", "v1beta1", "v2alpha1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCatalog(tt.infos)
			var got []string
			for _, g := range c.groups {
				got = append(got, g.name)
				if want, ok := tt.wantVersions[g.name]; ok && !slices.Equal(g.versions, want) {
					t.Errorf("%s versions = %v, want %v", g.name, g.versions, want)
				}
			}
			if !slices.Equal(got, tt.wantGroups) {
				t.Errorf("groups = %v, want %v", got, tt.wantGroups)
			}
		})
	}
}

func TestCatalog_ResourceDiscovery(t *testing.T) {
	tests := []struct {
		name  string
		list  []metav1.APIResource
		check func(t *testing.T, got []string, subs map[string][]string)
	}{
		{
			name: "subresources under their parent",
			list: []metav1.APIResource{{Name: "pods", Namespaced: true, Kind: "Pod"}, {Name: "pods/log", Namespaced: true, Kind: "Pod"}, {Name: "pods/status", Namespaced: true, Kind: "Pod"}},
			check: func(t *testing.T, got []string, subs map[string][]string) {
				if !slices.Equal(got, []string{"pods"}) || !slices.Equal(subs["pods"], []string{"log", "status"}) {
					t.Errorf("resources %v, subresources %v", got, subs)
				}
			},
		},
		{
			name: "orphan subresource gets an empty parent",
			list: []metav1.APIResource{{Name: "things/status", Kind: "Thing"}},
			check: func(t *testing.T, got []string, subs map[string][]string) {
				if !slices.Equal(got, []string{"things"}) || !slices.Equal(subs["things"], []string{"status"}) {
					t.Errorf("resources %v, subresources %v", got, subs)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			subs := map[string][]string{}
			for _, r := range resourceDiscovery(tt.list) {
				got = append(got, r.Resource)
				if r.ResponseKind == nil {
					t.Errorf("%s: nil responseKind (client-go 0.26 panics on it)", r.Resource)
				}
				for _, s := range r.Subresources {
					subs[r.Resource] = append(subs[r.Resource], s.Subresource)
				}
			}
			tt.check(t, got, subs)
		})
	}
}
