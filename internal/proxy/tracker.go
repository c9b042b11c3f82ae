package proxy

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// DefaultAffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds' default (PX-A-01).
const DefaultAffinityTimeout = 10800 * time.Second

// Families says which IP families the proxy serves (PX-02).
type Families struct{ IPv4, IPv6 bool }

func (f Families) has(a netip.Addr) bool {
	if a.Is4() {
		return f.IPv4
	}
	return f.IPv6
}

// Tracker records Service and EndpointSlice changes from informer events (the kube-proxy
// change trackers) and turns them, on Update, into the ServiceStates of the changed Services.
// Event methods are safe for concurrent use; Update is called by the single sync goroutine.
// It holds projections (ServicePorts, slimSlices), never whole API objects.
type Tracker struct {
	nodeName string
	families Families

	mu                sync.Mutex
	services          map[types.NamespacedName][]ServicePort
	slices            map[types.NamespacedName]map[string]*slimSlice // service → slice name → slice
	dirty             sets.Set[types.NamespacedName]
	triggers          map[types.NamespacedName]time.Time // earliest last-change-trigger-time per dirty service
	svcCount, epCount int                                // changes pending

	// state is owned by Update's caller.
	state map[ServicePortName]*ServiceState
	byNS  map[types.NamespacedName][]ServicePortName
}

// slimSlice is what the proxy needs of an EndpointSlice (EP-C-01..03).
type slimSlice struct {
	ports     []discoveryv1.EndpointPort
	endpoints []slimEndpoint
}

type slimEndpoint struct {
	ip                          netip.Addr
	ready, serving, terminating bool
	nodeName                    string
}

// NewTracker returns an empty tracker for the node nodeName serving families.
func NewTracker(nodeName string, families Families) *Tracker {
	return &Tracker{
		nodeName: nodeName, families: families,
		services: map[types.NamespacedName][]ServicePort{},
		slices:   map[types.NamespacedName]map[string]*slimSlice{},
		dirty:    sets.New[types.NamespacedName](),
		triggers: map[types.NamespacedName]time.Time{},
		state:    map[ServicePortName]*ServiceState{},
		byNS:     map[types.NamespacedName][]ServicePortName{},
	}
}

// OnService records the Service's current version; nil (or a deleted Service) removes it.
func (t *Tracker) OnService(key types.NamespacedName, svc *corev1.Service) {
	var ports []ServicePort
	if svc != nil {
		ports = ServicePorts(svc, t.families)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.services[key]
	if (!ok && len(ports) == 0) || (ok && reflect.DeepEqual(old, ports)) {
		return
	}
	if len(ports) == 0 {
		delete(t.services, key)
	} else {
		t.services[key] = ports
	}
	t.dirty.Insert(key)
	t.svcCount++
}

// OnEndpointSlice records the slice's current version; remove deletes it. Slices without
// the kubernetes.io/service-name label are ignored (EP-C-01).
func (t *Tracker) OnEndpointSlice(es *discoveryv1.EndpointSlice, remove bool) {
	svcName := es.Labels[discoveryv1.LabelServiceName]
	if svcName == "" {
		return
	}
	key := types.NamespacedName{Namespace: es.Namespace, Name: svcName}
	var slim *slimSlice
	if !remove {
		slim = t.slim(es)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.slices[key]
	if old, ok := m[es.Name]; ok && slim != nil && reflect.DeepEqual(old, slim) {
		return
	} else if !ok && slim == nil {
		return
	}
	if slim == nil {
		delete(m, es.Name)
		if len(m) == 0 {
			delete(t.slices, key)
		}
	} else {
		if m == nil {
			m = map[string]*slimSlice{}
			t.slices[key] = m
		}
		m[es.Name] = slim
	}
	t.dirty.Insert(key)
	t.epCount++
	if ts, err := time.Parse(time.RFC3339Nano, es.Annotations[corev1.EndpointsLastChangeTriggerTime]); err == nil {
		if cur, ok := t.triggers[key]; !ok || ts.Before(cur) {
			t.triggers[key] = ts
		}
	}
}

func (t *Tracker) slim(es *discoveryv1.EndpointSlice) *slimSlice {
	switch es.AddressType {
	case discoveryv1.AddressTypeIPv4:
		if !t.families.IPv4 {
			return nil
		}
	case discoveryv1.AddressTypeIPv6:
		if !t.families.IPv6 {
			return nil
		}
	default:
		return nil // FQDN slices are not proxied
	}
	s := &slimSlice{}
	for _, p := range es.Ports {
		if p.Name == nil || p.Port == nil || *p.Port == 0 { // EP-C-02
			continue
		}
		s.ports = append(s.ports, p)
	}
	for _, e := range es.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		ip, err := netip.ParseAddr(e.Addresses[0]) // EP-C-02: addresses[0] only
		if err != nil || !t.families.has(ip) {
			continue
		}
		se := slimEndpoint{ip: ip.Unmap(), ready: true, serving: true}
		if c := e.Conditions.Ready; c != nil { // EP-C-03: nil ready ⇒ true
			se.ready = *c
		}
		if c := e.Conditions.Serving; c != nil {
			se.serving = *c
		}
		if c := e.Conditions.Terminating; c != nil {
			se.terminating = *c
		}
		if e.NodeName != nil {
			se.nodeName = *e.NodeName
		}
		s.endpoints = append(s.endpoints, se)
	}
	return s
}

// Pending reports how many Service and EndpointSlice changes wait for the next Update.
func (t *Tracker) Pending() (services, endpoints int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.svcCount, t.epCount
}

// Apply applies the recorded changes to the tracked state. It returns the state itself (owned
// by the tracker: read it only until the next Apply, never modify it), the service ports
// whose ServiceState changed, their previous states (absent for new ports) and the earliest
// trigger time of each changed Service's EndpointSlices (for
// network_programming_duration_seconds). Its cost is proportional to the changes, not to the
// number of Services. The ServiceStates themselves are never modified after they are
// returned.
func (t *Tracker) Apply() (state map[ServicePortName]*ServiceState, changed sets.Set[ServicePortName], prev map[ServicePortName]*ServiceState, triggers []time.Time) {
	t.mu.Lock()
	dirty := t.dirty
	t.dirty = sets.New[types.NamespacedName]()
	for k, ts := range t.triggers {
		triggers = append(triggers, ts)
		delete(t.triggers, k)
	}
	t.svcCount, t.epCount = 0, 0
	built := make(map[types.NamespacedName][]*ServiceState, len(dirty))
	for key := range dirty {
		built[key] = t.build(key)
	}
	t.mu.Unlock()

	changed = sets.New[ServicePortName]()
	prev = map[ServicePortName]*ServiceState{}
	for key, states := range built {
		old := t.byNS[key]
		seen := make(map[ServicePortName]bool, len(states))
		names := make([]ServicePortName, 0, len(states))
		for _, st := range states {
			seen[st.Name] = true
			names = append(names, st.Name)
			if was, ok := t.state[st.Name]; !ok || !reflect.DeepEqual(was, st) {
				if ok {
					prev[st.Name] = was
				}
				t.state[st.Name] = st
				changed.Insert(st.Name)
			}
		}
		for _, n := range old {
			if !seen[n] {
				prev[n] = t.state[n]
				delete(t.state, n)
				changed.Insert(n)
			}
		}
		if len(names) == 0 {
			delete(t.byNS, key)
		} else {
			t.byNS[key] = names
		}
	}
	return t.state, changed, prev, triggers
}

// build returns the ServiceStates of one Service from its ports and slices. t.mu is held.
func (t *Tracker) build(key types.NamespacedName) []*ServiceState {
	ports := t.services[key]
	out := make([]*ServiceState, 0, len(ports))
	for _, sp := range ports {
		st := &ServiceState{ServicePort: sp}
		type epKey struct {
			ip   netip.Addr
			port int32
		}
		idx := map[epKey]int{}
		for _, s := range t.slices[key] {
			for _, p := range s.ports {
				proto := corev1.ProtocolTCP
				if p.Protocol != nil {
					proto = *p.Protocol
				}
				if *p.Name != sp.Name.Port || proto != sp.Protocol {
					continue
				}
				for _, se := range s.endpoints {
					e := Endpoint{IP: se.ip, Port: *p.Port, Ready: se.ready, Serving: se.serving, Terminating: se.terminating,
						NodeName: se.nodeName, Local: se.nodeName != "" && se.nodeName == t.nodeName}
					k := epKey{se.ip, *p.Port}
					// EP-C-01: the same endpoint may be in two slices for a while; a ready
					// copy wins, as kube's EndpointSliceCache.
					if i, ok := idx[k]; ok {
						if e.Ready && !st.Endpoints[i].Ready {
							st.Endpoints[i] = e
						}
						continue
					}
					idx[k] = len(st.Endpoints)
					st.Endpoints = append(st.Endpoints, e)
				}
			}
		}
		slices.SortFunc(st.Endpoints, func(a, b Endpoint) int {
			if c := a.IP.Compare(b.IP); c != 0 {
				return c
			}
			return int(a.Port) - int(b.Port)
		})
		Categorize(st)
		out = append(out, st)
	}
	return out
}

// ServicePorts projects a Service onto the ServicePorts a dataplane needs (PX-01..PX-04).
// Headless and ExternalName Services have none.
func ServicePorts(svc *corev1.Service, fam Families) []ServicePort {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	base := ServicePort{
		ClusterIPs:  parseAddrs(ips, fam),
		ExternalIPs: parseAddrs(svc.Spec.ExternalIPs, fam),
	}
	if len(base.ClusterIPs) == 0 {
		return nil
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP) { // PX-03
			continue
		}
		base.LoadBalancerIPs = append(base.LoadBalancerIPs, parseAddrs([]string{ing.IP}, fam)...)
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, r := range svc.Spec.LoadBalancerSourceRanges {
			if p, err := netip.ParsePrefix(strings.TrimSpace(r)); err == nil && fam.has(p.Addr()) {
				base.LoadBalancerSourceRanges = append(base.LoadBalancerSourceRanges, p.Masked())
			}
		}
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		base.AffinityTimeout = DefaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			base.AffinityTimeout = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	base.InternalPolicyLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	out := make([]ServicePort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		sp := base
		sp.Name = ServicePortName{NamespacedName: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, Port: p.Name, Protocol: p.Protocol}
		if sp.Name.Protocol == "" {
			sp.Name.Protocol = corev1.ProtocolTCP
		}
		sp.Port, sp.Protocol, sp.NodePort = p.Port, sp.Name.Protocol, p.NodePort
		if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			sp.NodePort = 0
		}
		sp.ExternalPolicyLocal = svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && sp.ExternallyAccessible()
		if sp.ExternalPolicyLocal && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			sp.HealthCheckNodePort = svc.Spec.HealthCheckNodePort
		}
		out = append(out, sp)
	}
	return out
}

func parseAddrs(in []string, fam Families) []netip.Addr {
	var out []netip.Addr
	for _, s := range in {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && fam.has(a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}
