package nftables

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables/expr"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/proxy"
)

// elem is one element of a fixed set or map. key is a readable unique form of kb; val is ""
// for set elements, "goto <chain>" or "drop" for verdict maps, a readable form of vb for
// data maps.
type elem struct {
	set, key string
	kb, vb   []byte
	val      string
}

// chainSpec is a regular chain with its rules; numgen, when set, adds the final rules that
// pick one of the numgen chains at random (NFT-N-06; see batch.addNumgenRules).
type chainSpec struct {
	name   string
	rules  [][]expr.Any
	numgen []string
	// dnat, when set, adds the final rule that DNATs to one of these endpoints at random
	// (see batch.addDNATRandom); hasMap records (also after the rules were written and
	// dropped) that the chain has the map dnatMapName(name), with more than one endpoint.
	dnat   []proxy.Endpoint
	hasMap bool
}

type setSpec struct {
	name    string
	timeout time.Duration
}

// objects are the per-service objects of one family: chains, affinity sets, elements of the
// fixed sets and maps. They are what a sync writes for a changed service and what the
// committed state remembers (no rules are ever read back from the kernel).
type objects struct {
	chains []chainSpec
	sets   []setSpec
	elems  []elem
}

func protoNum(p corev1.Protocol) byte {
	switch p {
	case corev1.ProtocolUDP:
		return 17
	case corev1.ProtocolSCTP:
		return 132
	}
	return 6
}

// build returns the objects of one service port in family f (spec §6.3), nil when the
// Service has no cluster IP of the family. podCIDRs are the family's cluster CIDRs.
func build(f *fam, st *proxy.ServiceState, podCIDRs []netip.Prefix, nodeIPs []netip.Addr) *objects {
	// PX-02: each family is a proxier of its own, with its addresses and endpoints only,
	// categorized among them (PX-E-01..03 per family).
	if st = st.ForFamily(f.ipv6); st == nil {
		return nil
	}
	cip := st.ClusterIPs[0]
	o := &objects{}
	base, n := serviceNames(st.Name)
	proto := protoNum(st.Protocol)

	clusterEPs, localEPs, allEPs := st.ClusterPolicyEndpoints, st.LocalEndpoints, st.AllLocallyReachable
	hasEndpoints := st.HasEndpoints // PX-E-03
	usesCluster := len(clusterEPs) > 0 && st.UsesClusterEndpoints()
	usesLocal := len(localEPs) > 0 && st.UsesLocalEndpoints()

	internalChain, hasInternal := n.cluster, len(clusterEPs) > 0
	if st.InternalPolicyLocal {
		internalChain, hasInternal = n.local, len(localEPs) > 0
	}
	externalChain, hasExternal := n.cluster, len(clusterEPs) > 0
	if st.ExternalPolicyLocal {
		externalChain, hasExternal = n.local, len(localEPs) > 0
	}
	noEndpoints := "goto " + chainReject // PX-T-01
	if hasEndpoints {
		noEndpoints = "drop" // PX-T-02, PX-T-03
	}
	vipKey := func(set string, ip netip.Addr, val string) elem {
		return elem{set: set, key: fmt.Sprintf("%s . %d . %d", ip, proto, st.Port), kb: f.keyAddrProtoPort(ip, proto, st.Port), val: val}
	}

	// Cluster IP (NFT-N-02).
	o.elems = append(o.elems, elem{set: setClusterIPs, key: cip.String(), kb: cip.AsSlice()})
	if hasInternal {
		o.elems = append(o.elems, vipKey(mapServiceIPs, cip, "goto "+internalChain))
	} else {
		o.elems = append(o.elems, vipKey(mapNoEndpointServices, cip, noEndpoints))
	}
	// External destinations.
	external := st.ExternallyAccessible() && hasEndpoints
	for _, list := range [][]netip.Addr{st.ExternalIPs, st.LoadBalancerIPs} {
		for _, ip := range list {
			if !f.has(ip) {
				continue
			}
			if external {
				o.elems = append(o.elems, vipKey(mapServiceIPs, ip, "goto "+n.external))
			}
			if !hasExternal {
				o.elems = append(o.elems, vipKey(mapNoEndpointServices, ip, noEndpoints))
			}
		}
	}
	if st.NodePort != 0 {
		k := elem{key: fmt.Sprintf("%d . %d", proto, st.NodePort), kb: keyProtoPort(proto, st.NodePort)}
		if external {
			e := k
			e.set, e.val = mapServiceNodePorts, "goto "+n.external
			o.elems = append(o.elems, e)
		}
		if !hasExternal {
			e := k
			e.set, e.val = mapNoEndpointNodePorts, noEndpoints
			o.elems = append(o.elems, e)
		}
	}
	// Firewall for loadBalancerSourceRanges (PX-F-01, NFT-N-05).
	var ranges []netip.Prefix
	for _, r := range st.LoadBalancerSourceRanges {
		if f.has(r.Addr()) {
			ranges = append(ranges, r)
		}
	}
	if len(ranges) > 0 && len(st.LoadBalancerIPs) > 0 {
		fw := chainSpec{name: n.firewall}
		allowLB := false
		for _, r := range ranges {
			for _, ip := range nodeIPs {
				allowLB = allowLB || r.Contains(ip)
			}
		}
		src := append([]netip.Prefix(nil), ranges...)
		for _, ip := range st.LoadBalancerIPs {
			if f.has(ip) {
				if allowLB {
					src = append(src, netip.PrefixFrom(ip, ip.BitLen()))
				}
				o.elems = append(o.elems, vipKey(mapFirewallIPs, ip, "goto "+n.firewall))
			}
		}
		for _, r := range src {
			fw.rules = append(fw.rules, append(append([]expr.Any{f.loadSaddr(reg1)}, prefixMatch(reg1, r, expr.CmpOpEq)...), verdict(expr.VerdictReturn)))
		}
		fw.rules = append(fw.rules, []expr.Any{verdict(expr.VerdictDrop)})
		o.chains = append(o.chains, fw)
	}

	// Policy chains (NFT-N-03, NFT-N-06).
	policy := func(name string, eps []proxy.Endpoint) chainSpec {
		c := chainSpec{name: name}
		if name == internalChain {
			c.rules = append(c.rules, append(append([]expr.Any{f.loadDaddr(reg1)}, prefixMatch(reg1, netip.PrefixFrom(cip, cip.BitLen()), expr.CmpOpEq)...), jump(chainMasqueradeNonPod)))
		}
		if st.AffinityTimeout > 0 {
			// ClientIP affinity: kube-proxy's per-endpoint chains and timed sets.
			for _, e := range eps {
				c.rules = append(c.rules, []expr.Any{f.loadSaddr(reg1), lookup(affinitySet(base, e.IP, e.Port), false), goTo(endpointChain(base, e.IP, e.Port))})
			}
			for _, e := range eps {
				c.numgen = append(c.numgen, endpointChain(base, e.IP, e.Port))
			}
			return c
		}
		// Without affinity: DNAT in this chain, no chain per endpoint (see addDNATRandom).
		c.dnat, c.hasMap = eps, len(eps) > 1
		return c
	}
	if usesCluster {
		o.chains = append(o.chains, policy(n.cluster, clusterEPs))
	}
	if usesLocal {
		o.chains = append(o.chains, policy(n.local, localEPs))
	}
	// External chain (NFT-N-04).
	if external {
		c := chainSpec{name: n.external}
		if !st.ExternalPolicyLocal {
			c.rules = append(c.rules, []expr.Any{jump(chainMarkForMasquerade)})
		} else if usesCluster {
			for _, p := range podCIDRs { // short-circuit pod traffic (PX-T-04)
				c.rules = append(c.rules, append(append([]expr.Any{f.loadSaddr(reg1)}, prefixMatch(reg1, p, expr.CmpOpEq)...), goTo(n.cluster)))
			}
			c.rules = append(c.rules, append(fibSaddrLocal(), jump(chainMarkForMasquerade)))
			c.rules = append(c.rules, append(fibSaddrLocal(), goTo(n.cluster)))
		}
		if hasExternal {
			c.rules = append(c.rules, []expr.Any{goTo(externalChain)})
		}
		o.chains = append(o.chains, c)
	}
	// Hairpin (PX-M-03a): a connection DNATed to its own source is masqueraded in postrouting
	// (`ip saddr . ip daddr @hairpin-endpoints`), one element per endpoint IP.
	for _, e := range allEPs {
		o.elems = append(o.elems, elem{set: setHairpin, key: e.IP.String(), kb: append(e.IP.AsSlice(), e.IP.AsSlice()...)})
	}
	// Endpoint chains and affinity sets of ClientIP affinity (NFT-N-07, NFT-N-08).
	if st.AffinityTimeout > 0 {
		for _, e := range allEPs {
			c := chainSpec{name: endpointChain(base, e.IP, e.Port)}
			set := affinitySet(base, e.IP, e.Port)
			o.sets = append(o.sets, setSpec{name: set, timeout: st.AffinityTimeout})
			c.rules = append(c.rules, []expr.Any{f.loadSaddr(reg1), &expr.Dynset{SrcRegKey: reg1, SetName: set, Operation: 1 /* NFT_DYNSET_OP_UPDATE */}})
			c.rules = append(c.rules, f.dnat(proto, e.IP, e.Port))
			o.chains = append(o.chains, c)
		}
	}
	return o
}
