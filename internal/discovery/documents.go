// Package discovery serves the Kubernetes discovery documents of kubesvc, built from
// internal/resource.All:
//
//	GET /api                 APIVersions, or the aggregated APIGroupDiscoveryList of the core group
//	GET /apis                APIGroupList, or the aggregated APIGroupDiscoveryList of all other groups
//	GET /api/v1              APIResourceList of the core group
//	GET /apis/<group>        APIGroup
//	GET /apis/<group>/<ver>  APIResourceList
//
// (each also with a trailing slash). The aggregated form (apidiscovery.k8s.io v2, or v2beta1 for
// kubectl before 1.30) is served when the Accept header asks for it, with the same ETag scheme
// as kube-apiserver; JSON, YAML and protobuf are negotiated as upstream. Handler.Handles tells
// the REST router which paths are discovery's; every other path under /api and /apis is not.
//
// Shapes and ordering follow kube-apiserver v1.37 (its golden files api/discovery/*.json):
// resources and subresources sorted by name, groups by kube's group priority, verbs sorted,
// storageVersionHash on top-level resources only, response kinds of same-group subresources
// left without group and version.
//
// Imported by the API server (internal/apiserver); it imports only internal/resource,
// k8s.io/api and apimachinery.
package discovery

import (
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"kubesvc/internal/resource"
)

// groupPriority is kube-apiserver's APIService group priority (GroupPriorityMinimum): /apis
// lists groups by descending priority, then by name. Groups not listed come last.
var groupPriority = map[string]int{
	"":                             18000,
	"apiregistration.k8s.io":       18000,
	"apps":                         17800,
	"events.k8s.io":                17750,
	"authentication.k8s.io":        17700,
	"authorization.k8s.io":         17600,
	"autoscaling":                  17500,
	"batch":                        17400,
	"certificates.k8s.io":          17300,
	"networking.k8s.io":            17200,
	"policy":                       17100,
	"rbac.authorization.k8s.io":    17000,
	"storage.k8s.io":               16800,
	"admissionregistration.k8s.io": 16700,
	"apiextensions.k8s.io":         16700,
	"scheduling.k8s.io":            16600,
	"coordination.k8s.io":          16500,
	"node.k8s.io":                  16300,
	"discovery.k8s.io":             16200,
	"flowcontrol.apiserver.k8s.io": 16100,
	"internal.apiserver.k8s.io":    16000,
	"resource.k8s.io":              15900,
	"storagemigration.k8s.io":      15800,
}

// group is one API group with its versions, preferred first.
type group struct {
	name     string
	versions []string
	infos    map[string][]*resource.Info // by version
}

// catalog is the resource table arranged for discovery.
type catalog struct {
	core   *group   // nil if no core resources
	groups []*group // named groups in /apis order
}

func newCatalog(infos []*resource.Info) *catalog {
	byName := map[string]*group{}
	var order []*group
	for _, i := range infos {
		g := byName[i.Group]
		if g == nil {
			g = &group{name: i.Group, infos: map[string][]*resource.Info{}}
			byName[i.Group] = g
			order = append(order, g)
		}
		if _, ok := g.infos[i.Version]; !ok {
			g.versions = append(g.versions, i.Version)
		}
		g.infos[i.Version] = append(g.infos[i.Version], i)
	}
	c := &catalog{}
	for _, g := range order {
		sort.SliceStable(g.versions, func(a, b int) bool {
			return version.CompareKubeAwareVersionStrings(g.versions[a], g.versions[b]) > 0
		})
		if g.name == "" {
			c.core = g
			continue
		}
		c.groups = append(c.groups, g)
	}
	sort.SliceStable(c.groups, func(a, b int) bool {
		pa, pb := groupPriority[c.groups[a].name], groupPriority[c.groups[b].name]
		if pa != pb {
			return pa > pb
		}
		if pa == 0 {
			return false // unknown groups keep catalog order
		}
		return c.groups[a].name < c.groups[b].name
	})
	return c
}

func (c *catalog) group(name string) *group {
	for _, g := range c.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

func (g *group) groupVersion(v string) schema.GroupVersion {
	return schema.GroupVersion{Group: g.name, Version: v}
}

// apiGroup is the legacy APIGroup entry of g.
func (g *group) apiGroup() metav1.APIGroup {
	out := metav1.APIGroup{Name: g.name}
	for _, v := range g.versions {
		out.Versions = append(out.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g.groupVersion(v).String(), Version: v})
	}
	if len(out.Versions) > 0 {
		out.PreferredVersion = out.Versions[0]
	}
	return out
}

// sortedVerbs returns a sorted copy, as discovery reports verbs.
func sortedVerbs(verbs []string) []string {
	out := append([]string{}, verbs...)
	sort.Strings(out)
	return out
}

// apiResources is the legacy APIResourceList content of a group/version: resources and
// subresources ("pods/log") sorted by name, as the installer registers storage paths.
func apiResources(infos []*resource.Info) []metav1.APIResource {
	var out []metav1.APIResource
	for _, i := range infos {
		out = append(out, metav1.APIResource{
			Name:               i.Resource,
			SingularName:       i.Singular,
			Namespaced:         i.Namespaced,
			Kind:               i.Kind,
			Verbs:              sortedVerbs(i.Verbs),
			ShortNames:         i.ShortNames,
			Categories:         i.Categories,
			StorageVersionHash: i.StorageVersionHash,
		})
		for _, s := range i.Subresources {
			out = append(out, metav1.APIResource{
				Name:       i.Resource + "/" + s.Name,
				Namespaced: i.Namespaced,
				Group:      s.Kind.Group,
				Version:    s.Kind.Version,
				Kind:       s.Kind.Kind,
				Verbs:      sortedVerbs(s.Verbs),
			})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// resourceDiscovery converts an APIResourceList's content to the aggregated form, like the
// apiserver's ConvertGroupVersionIntoToDiscovery.
func resourceDiscovery(list []metav1.APIResource) []apidiscoveryv2.APIResourceDiscovery {
	var out []apidiscoveryv2.APIResourceDiscovery
	parent := map[string]int{}
	scope := func(r metav1.APIResource) apidiscoveryv2.ResourceScope {
		if r.Namespaced {
			return apidiscoveryv2.ScopeNamespace
		}
		return apidiscoveryv2.ScopeCluster
	}
	for _, r := range list {
		if strings.Contains(r.Name, "/") {
			continue
		}
		out = append(out, apidiscoveryv2.APIResourceDiscovery{
			Resource:         r.Name,
			Scope:            scope(r),
			ResponseKind:     &metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
			Verbs:            r.Verbs,
			ShortNames:       r.ShortNames,
			Categories:       r.Categories,
			SingularResource: r.SingularName,
		})
		parent[r.Name] = len(out) - 1
	}
	for _, r := range list {
		res, sub, ok := strings.Cut(r.Name, "/")
		if !ok {
			continue
		}
		idx, found := parent[res]
		if !found {
			out = append(out, apidiscoveryv2.APIResourceDiscovery{Resource: res, Scope: scope(r), ResponseKind: &metav1.GroupVersionKind{}})
			idx = len(out) - 1
			parent[res] = idx
		}
		out[idx].Subresources = append(out[idx].Subresources, apidiscoveryv2.APISubresourceDiscovery{
			Subresource:  sub,
			ResponseKind: &metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
			Verbs:        r.Verbs,
		})
	}
	return out
}

// groupDiscovery is the aggregated entry of g.
func (g *group) groupDiscovery() apidiscoveryv2.APIGroupDiscovery {
	out := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g.name}}
	for _, v := range g.versions {
		out.Versions = append(out.Versions, apidiscoveryv2.APIVersionDiscovery{
			Version:   v,
			Resources: resourceDiscovery(apiResources(g.infos[v])),
			Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
		})
	}
	return out
}
