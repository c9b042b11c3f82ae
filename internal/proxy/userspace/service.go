package userspace

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"kubesvc/internal/proxy"
)

// backends is one usable endpoint list. It is immutable once published; Sync replaces it.
type backends []netip.AddrPort

func (b backends) contains(ap netip.AddrPort) bool { return slices.Contains(b, ap) }

// policy is what the data path of one service port reads on every new connection or UDP
// session. Sync builds a new one and publishes it with an atomic pointer store.
type policy struct {
	// internal is for traffic to a ClusterIP (ClusterEndpoints: internalTrafficPolicy
	// applied, PX-T-02). Empty while the service has endpoints elsewhere: drop.
	internal backends
	// external is for traffic to a NodePort, externalIP or LB IP: every cluster endpoint
	// (PX-T-05), or with externalTrafficPolicy Local the local ones (PX-T-03, empty = drop).
	external backends
	// shortCircuit is for external destinations reached from a pod or the node itself when
	// externalTrafficPolicy is Local: the cluster-wide list (PX-T-04).
	shortCircuit backends
	// externalLocal is ExternalPolicyLocal.
	externalLocal bool
	// affinity is the ClientIP affinity timeout, 0 for none (PX-A-01).
	affinity time.Duration
	// sourceRanges are the loadBalancerSourceRanges; empty allows every client (PX-F-01).
	sourceRanges []netip.Prefix
	// lbIPs are the LB IPs: a node reaching its own LB IP (looped back) is allowed too.
	lbIPs []netip.Addr
}

// sourceAllowed is PX-F-01 for traffic to an LB IP.
func (p *policy) sourceAllowed(client netip.Addr) bool {
	if len(p.sourceRanges) == 0 || slices.Contains(p.lbIPs, client) {
		return true
	}
	for _, r := range p.sourceRanges {
		if r.Contains(client) {
			return true
		}
	}
	return false
}

// newPolicy takes st's categorized endpoint lists (proxy.Categorize) for the data path.
func newPolicy(st *proxy.ServiceState) *policy {
	return &policy{
		internal:      toBackends(st.ClusterEndpoints),
		external:      toBackends(st.ExternalEndpoints),
		shortCircuit:  toBackends(st.ClusterPolicyEndpoints),
		externalLocal: st.ExternalPolicyLocal,
		affinity:      st.AffinityTimeout,
		sourceRanges:  st.LoadBalancerSourceRanges,
		lbIPs:         st.LoadBalancerIPs,
	}
}

// hasEndpoints is PX-E-03: some endpoint anywhere is ready or serving-terminating. Without
// it the service port is not listened on, so the kernel refuses connections (PX-T-01).
func hasEndpoints(st *proxy.ServiceState) bool {
	return st.HasEndpoints || len(st.ClusterEndpoints) > 0 || len(st.ExternalEndpoints) > 0
}

func toBackends(eps []proxy.Endpoint) backends {
	if len(eps) == 0 {
		return nil
	}
	b := make(backends, 0, len(eps))
	for _, ep := range eps {
		ap := netip.AddrPortFrom(ep.IP, uint16(ep.Port))
		if !b.contains(ap) {
			b = append(b, ap)
		}
	}
	return b
}

// service is the data path's view of one service port: its current policy per IP family and
// its ClientIP affinity table. Listeners of the service port share it, so affinity holds
// across the ClusterIP, NodePort and external IPs (PX-A-01). A listener reads the policy of
// its address's family: IPv4 and IPv6 are independent proxiers, each with its own endpoints
// (PX-02), so an IPv6 address never proxies to an IPv4 endpoint.
type service struct {
	name proxy.ServicePortName
	pol  [2]atomic.Pointer[policy] // by family (famOf)
	aff  affinity
}

// famOf is the index of a's family in service.pol: 0 for IPv4, 1 for IPv6.
func famOf(a netip.Addr) int {
	if a.Unmap().Is6() {
		return 1
	}
	return 0
}

// affinity records which endpoint each client IP last used (PX-A-02), with a sliding timeout.
type affinity struct {
	mu      sync.Mutex
	entries map[netip.Addr]affinityEntry
	inserts int
}

type affinityEntry struct {
	backend netip.AddrPort
	last    time.Time
}

// pick chooses the endpoint for a new connection from client among list: the recorded
// affinity endpoint if it is in list and not expired (PX-A-02/04), else a random one, skipping
// the endpoints in avoid (those that just failed to answer). ok is false when nothing is left.
func (s *service) pick(client netip.Addr, list backends, timeout time.Duration, avoid []netip.AddrPort, now time.Time) (netip.AddrPort, bool) {
	if timeout > 0 {
		if b, ok := s.aff.lookup(client, list, timeout, avoid, now); ok {
			return b, true
		}
	}
	b, ok := pickRandom(list, avoid)
	if ok && timeout > 0 {
		s.aff.record(client, b, timeout, now)
	}
	return b, ok
}

func pickRandom(list backends, avoid []netip.AddrPort) (netip.AddrPort, bool) {
	if len(avoid) == 0 {
		if len(list) == 0 {
			return netip.AddrPort{}, false
		}
		return list[rand.IntN(len(list))], true
	}
	n := 0
	for _, b := range list {
		if !slices.Contains(avoid, b) {
			n++
		}
	}
	if n == 0 {
		return netip.AddrPort{}, false
	}
	i := rand.IntN(n)
	for _, b := range list {
		if slices.Contains(avoid, b) {
			continue
		}
		if i == 0 {
			return b, true
		}
		i--
	}
	panic("unreachable")
}

func (a *affinity) lookup(client netip.Addr, list backends, timeout time.Duration, avoid []netip.AddrPort, now time.Time) (netip.AddrPort, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[client]
	if !ok || now.Sub(e.last) >= timeout || !list.contains(e.backend) || slices.Contains(avoid, e.backend) {
		return netip.AddrPort{}, false
	}
	e.last = now
	a.entries[client] = e
	return e.backend, true
}

// sweepEvery is how many recorded clients trigger a sweep of expired entries.
const sweepEvery = 1024

func (a *affinity) record(client netip.Addr, b netip.AddrPort, timeout time.Duration, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.entries == nil {
		a.entries = make(map[netip.Addr]affinityEntry)
	}
	a.entries[client] = affinityEntry{backend: b, last: now}
	if a.inserts++; a.inserts >= sweepEvery {
		a.inserts = 0
		a.sweepLocked(timeout, now)
	}
}

// sweep forgets expired entries (timeout <= 0: all).
func (a *affinity) sweep(timeout time.Duration, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepLocked(timeout, now)
}

func (a *affinity) sweepLocked(timeout time.Duration, now time.Time) {
	for c, e := range a.entries {
		if timeout <= 0 || now.Sub(e.last) >= timeout {
			delete(a.entries, c)
		}
	}
}
