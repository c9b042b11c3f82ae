package proxy

import (
	"net/netip"
	"testing"
)

func ep(ip string, ready, serving, terminating, local bool) Endpoint {
	return Endpoint{IP: netip.MustParseAddr(ip), Port: 80, Ready: ready, Serving: serving, Terminating: terminating, Local: local}
}

func ips(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.IP.String())
	}
	return out
}

func eq(a, b []string) bool {
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

// TestCategorize follows kube-proxy's CategorizeEndpoints cases (pkg/proxy/topology_test.go)
// without topology hints.
func TestCategorize(t *testing.T) {
	readyLocal := ep("10.0.0.1", true, true, false, true)
	readyRemote := ep("10.0.0.2", true, true, false, false)
	termLocal := ep("10.0.0.3", false, true, true, true)
	termRemote := ep("10.0.0.4", false, true, true, false)
	notReady := ep("10.0.0.5", false, false, false, false)
	cases := []struct {
		name                                 string
		port                                 ServicePort
		eps                                  []Endpoint
		cluster, local, clusterEPs, external []string
		all                                  []string
		hasEndpoints                         bool
	}{
		{name: "PX-E-01 cluster policy uses ready endpoints", eps: []Endpoint{readyLocal, readyRemote, termRemote, notReady},
			cluster: []string{"10.0.0.1", "10.0.0.2"}, clusterEPs: []string{"10.0.0.1", "10.0.0.2"}, all: []string{"10.0.0.1", "10.0.0.2"}, hasEndpoints: true},
		{name: "PX-E-01 falls back to serving-terminating when none is ready", eps: []Endpoint{termLocal, termRemote, notReady},
			cluster: []string{"10.0.0.3", "10.0.0.4"}, clusterEPs: []string{"10.0.0.3", "10.0.0.4"}, all: []string{"10.0.0.3", "10.0.0.4"}, hasEndpoints: true},
		{name: "PX-E-03 not-ready only: no endpoints", eps: []Endpoint{notReady}},
		{name: "PX-T-02 internal Local uses local ready endpoints", port: ServicePort{InternalPolicyLocal: true},
			eps: []Endpoint{readyLocal, readyRemote}, local: []string{"10.0.0.1"}, clusterEPs: []string{"10.0.0.1"}, all: []string{"10.0.0.1"}, hasEndpoints: true},
		{name: "PX-T-02 internal Local without local endpoint: none usable, but has endpoints", port: ServicePort{InternalPolicyLocal: true},
			eps: []Endpoint{readyRemote}, hasEndpoints: true},
		{name: "PX-E-02 local falls back to local serving-terminating", port: ServicePort{InternalPolicyLocal: true},
			eps: []Endpoint{termLocal, readyRemote}, local: []string{"10.0.0.3"}, clusterEPs: []string{"10.0.0.3"}, all: []string{"10.0.0.3"}, hasEndpoints: true},
		{name: "PX-T-03 external Local: external uses local, cluster uses all", port: ServicePort{NodePort: 30000, ExternalPolicyLocal: true},
			eps: []Endpoint{readyLocal, readyRemote}, cluster: []string{"10.0.0.1", "10.0.0.2"}, local: []string{"10.0.0.1"},
			clusterEPs: []string{"10.0.0.1", "10.0.0.2"}, external: []string{"10.0.0.1"}, all: []string{"10.0.0.1", "10.0.0.2"}, hasEndpoints: true},
		{name: "PX-T-03 external Local without local endpoints: drop externally", port: ServicePort{NodePort: 30000, ExternalPolicyLocal: true},
			eps: []Endpoint{readyRemote}, cluster: []string{"10.0.0.2"}, clusterEPs: []string{"10.0.0.2"}, all: []string{"10.0.0.2"}, hasEndpoints: true},
		{name: "PX-E-04 all reachable merges local terminating with cluster ready", port: ServicePort{NodePort: 30000, ExternalPolicyLocal: true},
			eps: []Endpoint{readyRemote, termLocal}, cluster: []string{"10.0.0.2"}, local: []string{"10.0.0.3"},
			clusterEPs: []string{"10.0.0.2"}, external: []string{"10.0.0.3"}, all: []string{"10.0.0.2", "10.0.0.3"}, hasEndpoints: true},
		{name: "PX-E-04 internal Local and external Cluster", port: ServicePort{NodePort: 30000, InternalPolicyLocal: true},
			eps: []Endpoint{readyLocal, readyRemote}, cluster: []string{"10.0.0.1", "10.0.0.2"}, local: []string{"10.0.0.1"},
			clusterEPs: []string{"10.0.0.1"}, external: []string{"10.0.0.1", "10.0.0.2"}, all: []string{"10.0.0.1", "10.0.0.2"}, hasEndpoints: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &ServiceState{ServicePort: tc.port, Endpoints: tc.eps}
			Categorize(st)
			external := tc.external
			if external == nil && !tc.port.ExternalPolicyLocal {
				external = tc.cluster
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"ClusterPolicyEndpoints", ips(st.ClusterPolicyEndpoints), tc.cluster},
				{"LocalEndpoints", ips(st.LocalEndpoints), tc.local},
				{"ClusterEndpoints", ips(st.ClusterEndpoints), tc.clusterEPs},
				{"ExternalEndpoints", ips(st.ExternalEndpoints), external},
				{"AllLocallyReachable", ips(st.AllLocallyReachable), tc.all},
			} {
				if !eq(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			if st.HasEndpoints != tc.hasEndpoints {
				t.Errorf("HasEndpoints = %t, want %t", st.HasEndpoints, tc.hasEndpoints)
			}
		})
	}
}
