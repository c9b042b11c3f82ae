package proxy

import "net/netip"

// ForFamily returns st as the proxier of one IP family sees it. PX-02: IPv4 and IPv6 are
// independent proxiers, each with the Service's addresses, source ranges and EndpointSlices
// of its family only. A ServiceState of a dual-stack Service holds both families (the tracker
// merges its slices), so a dataplane takes each family's view before programming it: only
// that family's addresses and endpoints, categorized among that family's endpoints alone
// (PX-E-01..03 per family: IPv6 endpoints that are all terminating are still used when IPv4
// ones are ready; an IPv6 cluster IP with no IPv6 endpoint is rejected even when IPv4
// endpoints exist).
//
// It returns st itself when st holds nothing of the other family (the single-stack case,
// without copying), and nil when st has no cluster IP of the family: that family's proxier
// does not serve the Service at all, not even its NodePort (kube-proxy skips a Service
// without a cluster IP of its family).
func (st *ServiceState) ForFamily(ipv6 bool) *ServiceState {
	is := func(a netip.Addr) bool { return a.Unmap().Is6() == ipv6 }
	has, mixed := false, false
	for _, a := range st.ClusterIPs {
		if is(a) {
			has = true
		} else {
			mixed = true
		}
	}
	if !has {
		return nil
	}
	for _, list := range [][]netip.Addr{st.ExternalIPs, st.LoadBalancerIPs} {
		for _, a := range list {
			mixed = mixed || !is(a)
		}
	}
	for _, p := range st.LoadBalancerSourceRanges {
		mixed = mixed || !is(p.Addr())
	}
	for i := range st.Endpoints {
		mixed = mixed || !is(st.Endpoints[i].IP)
	}
	if !mixed {
		return st
	}
	out := &ServiceState{ServicePort: st.ServicePort}
	out.ClusterIPs = familyAddrs(st.ClusterIPs, is)
	out.ExternalIPs = familyAddrs(st.ExternalIPs, is)
	out.LoadBalancerIPs = familyAddrs(st.LoadBalancerIPs, is)
	out.LoadBalancerSourceRanges = nil
	for _, p := range st.LoadBalancerSourceRanges {
		if is(p.Addr()) {
			out.LoadBalancerSourceRanges = append(out.LoadBalancerSourceRanges, p)
		}
	}
	// externalTrafficPolicy Local applies only where the family is externally accessible.
	out.ExternalPolicyLocal = st.ExternalPolicyLocal && out.ExternallyAccessible()
	out.Endpoints = filter(st.Endpoints, func(e *Endpoint) bool { return is(e.IP) })
	Categorize(out)
	return out
}

func familyAddrs(in []netip.Addr, is func(netip.Addr) bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range in {
		if is(a) {
			out = append(out, a)
		}
	}
	return out
}
