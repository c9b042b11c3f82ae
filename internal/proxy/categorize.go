package proxy

// ExternallyAccessible reports whether the port takes traffic from outside the cluster network:
// a NodePort, externalIPs or LoadBalancer IPs (kube's BaseServicePortInfo.ExternallyAccessible).
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.ExternalIPs) > 0 || len(p.LoadBalancerIPs) > 0
}

// UsesClusterEndpoints reports whether any traffic to the port uses Cluster policy: internal
// traffic under internalTrafficPolicy Cluster, or any external traffic (even under
// externalTrafficPolicy Local, for the short-circuit of PX-T-04).
func (p *ServicePort) UsesClusterEndpoints() bool {
	return !p.InternalPolicyLocal || p.ExternallyAccessible()
}

// UsesLocalEndpoints reports whether any traffic to the port uses Local policy (PX-E-04).
func (p *ServicePort) UsesLocalEndpoints() bool {
	return p.InternalPolicyLocal || (p.ExternalPolicyLocal && p.ExternallyAccessible())
}

// servingTerminating is an endpoint usable only as a fallback (PX-E-01/02).
func (e *Endpoint) servingTerminating() bool { return e.Serving && e.Terminating }

// Categorize fills st's endpoint lists from st.Endpoints, as kube-proxy's CategorizeEndpoints
// (pkg/proxy/topology.go) without topology hints (kubesvc's EndpointSlices carry none):
//
//   - ClusterPolicyEndpoints: ready endpoints; if none is ready anywhere, the serving and
//     terminating ones (PX-E-01). nil when the port never uses Cluster policy.
//   - LocalEndpoints: ready endpoints on this node; if none, this node's serving and
//     terminating ones (PX-E-02). nil when the port never uses Local policy.
//   - HasEndpoints: any ready or serving-terminating endpoint anywhere (PX-E-03).
//   - AllLocallyReachable: the union of both.
//   - ClusterEndpoints (internal traffic) and ExternalEndpoints (external traffic): the list
//     the port's internal and external policy select (PX-E-04, PX-T-02, PX-T-03).
func Categorize(st *ServiceState) {
	st.ClusterPolicyEndpoints, st.LocalEndpoints, st.AllLocallyReachable = nil, nil, nil
	st.ClusterEndpoints, st.ExternalEndpoints, st.HasEndpoints = nil, nil, false
	if len(st.Endpoints) == 0 {
		return
	}
	if st.UsesClusterEndpoints() {
		st.ClusterPolicyEndpoints = filter(st.Endpoints, func(e *Endpoint) bool { return e.Ready })
		if len(st.ClusterPolicyEndpoints) == 0 {
			st.ClusterPolicyEndpoints = filter(st.Endpoints, (*Endpoint).servingTerminating)
		}
		st.HasEndpoints = len(st.ClusterPolicyEndpoints) > 0
	}
	if st.UsesLocalEndpoints() {
		var localReady, localST bool
		for i := range st.Endpoints {
			e := &st.Endpoints[i]
			switch {
			case e.Ready:
				st.HasEndpoints = true
				localReady = localReady || e.Local
			case e.servingTerminating():
				st.HasEndpoints = true
				localST = localST || e.Local
			}
		}
		switch {
		case localReady:
			st.LocalEndpoints = filter(st.Endpoints, func(e *Endpoint) bool { return e.Local && e.Ready })
		case localST:
			st.LocalEndpoints = filter(st.Endpoints, func(e *Endpoint) bool { return e.Local && e.servingTerminating() })
		}
		if !st.UsesClusterEndpoints() {
			st.AllLocallyReachable = st.LocalEndpoints
		} else if !localReady {
			// Local serving-terminating endpoints need not be in the Cluster list: merge.
			st.AllLocallyReachable = union(st.ClusterPolicyEndpoints, st.LocalEndpoints)
		} else {
			// Without topology, the Cluster list holds every ready endpoint, a superset.
			st.AllLocallyReachable = st.ClusterPolicyEndpoints
		}
	} else {
		st.AllLocallyReachable = st.ClusterPolicyEndpoints
	}
	st.ClusterEndpoints = st.ClusterPolicyEndpoints
	if st.InternalPolicyLocal {
		st.ClusterEndpoints = st.LocalEndpoints
	}
	st.ExternalEndpoints = st.ClusterPolicyEndpoints
	if st.ExternalPolicyLocal {
		st.ExternalEndpoints = st.LocalEndpoints
	}
}

func filter(eps []Endpoint, keep func(*Endpoint) bool) []Endpoint {
	var out []Endpoint
	for i := range eps {
		if keep(&eps[i]) {
			out = append(out, eps[i])
		}
	}
	return out
}

// union merges two lists sorted by IP then port (as Endpoints is) into one without duplicates.
func union(a, b []Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && endpointLess(&a[i], &b[j])):
			out = append(out, a[i])
			i++
		case i == len(a) || endpointLess(&b[j], &a[i]):
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func endpointLess(a, b *Endpoint) bool {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c < 0
	}
	return a.Port < b.Port
}
