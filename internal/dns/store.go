package dns

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The projections below are what the informer caches hold (the informers' transform turns
// every API object into one of them), so a cluster's DNS state costs a few strings per
// object. Each implements metav1.ObjectMetaAccessor for the informers' key functions.

// service is the DNS view of a Service.
type service struct {
	meta         metav1.ObjectMeta // name, namespace, resourceVersion only
	typ          corev1.ServiceType
	clusterIPs   []string // spec.clusterIPs, or [spec.clusterIP] when empty (as CoreDNS)
	externalName string
	ports        []port // spec.ports; one port -1 when there are none (as CoreDNS)
}

// port is a Service or EndpointSlice port: number -1 stands for "no port" (an unnamed slice
// port without number, or a Service without ports), which yields no SRV record.
type port struct {
	name     string
	protocol string
	port     int32
}

// endpoints is the DNS view of one EndpointSlice: its ready addresses only (DNS-03).
type endpoints struct {
	meta    metav1.ObjectMeta
	service string // kubernetes.io/service-name label
	addrs   []address
	ports   []port
}

// address is one ready endpoint address.
type address struct {
	ip       string
	hostname string // endpoint hostname, "" if unset
}

// namespaceObj is the DNS view of a Namespace: that it exists.
type namespaceObj struct{ meta metav1.ObjectMeta }

// pod is the DNS view of a Pod ("pods verified" mode only).
type pod struct {
	meta metav1.ObjectMeta
	ips  []string
}

func (s *service) GetObjectMeta() metav1.Object      { return &s.meta }
func (e *endpoints) GetObjectMeta() metav1.Object    { return &e.meta }
func (n *namespaceObj) GetObjectMeta() metav1.Object { return &n.meta }
func (p *pod) GetObjectMeta() metav1.Object          { return &p.meta }

// headless reports whether s is a headless Service (clusterIP None).
func (s *service) headless() bool {
	return len(s.clusterIPs) > 0 && s.clusterIPs[0] == corev1.ClusterIPNone
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion}
}

// newService projects a Service.
func newService(svc *corev1.Service) *service {
	s := &service{
		meta:         slimMeta(svc.ObjectMeta),
		typ:          svc.Spec.Type,
		externalName: svc.Spec.ExternalName,
	}
	if len(svc.Spec.ClusterIPs) > 0 {
		s.clusterIPs = slices.Clone(svc.Spec.ClusterIPs)
	} else {
		s.clusterIPs = []string{svc.Spec.ClusterIP}
	}
	if len(svc.Spec.Ports) == 0 {
		s.ports = []port{{port: -1}}
	}
	for _, p := range svc.Spec.Ports {
		s.ports = append(s.ports, port{name: p.Name, protocol: string(p.Protocol), port: p.Port})
	}
	return s
}

// newEndpoints projects an EndpointSlice: ready endpoints (ready nil counts as ready,
// EP-C-03), every address of each (as CoreDNS), slice ports with nil number as -1.
func newEndpoints(es *discoveryv1.EndpointSlice) *endpoints {
	e := &endpoints{meta: slimMeta(es.ObjectMeta), service: es.Labels[discoveryv1.LabelServiceName]}
	if len(es.Ports) == 0 {
		e.ports = []port{{port: -1}}
	}
	for _, p := range es.Ports {
		ep := port{port: -1}
		if p.Port != nil {
			ep.port = *p.Port
		}
		if p.Name != nil {
			ep.name = *p.Name
		}
		if p.Protocol != nil {
			ep.protocol = string(*p.Protocol)
		}
		e.ports = append(e.ports, ep)
	}
	for _, ep := range es.Endpoints {
		if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
			continue
		}
		for _, a := range ep.Addresses {
			addr := address{ip: a}
			if ep.Hostname != nil {
				addr.hostname = *ep.Hostname
			}
			e.addrs = append(e.addrs, addr)
		}
	}
	return e
}

// newPod projects a Pod; terminating pods project to nil (CoreDNS drops them).
func newPod(p *corev1.Pod) *pod {
	if p.DeletionTimestamp != nil {
		return nil
	}
	out := &pod{meta: slimMeta(p.ObjectMeta)}
	for _, ip := range p.Status.PodIPs {
		out.ips = append(out.ips, ip.IP)
	}
	return out
}

// svcKey is the index key of a Service and of the EndpointSlices that belong to it.
func svcKey(name, namespace string) string { return name + "." + namespace }

// store indexes the projections for lookups. All methods are safe for concurrent use; the
// informer handlers write, queries read.
type store struct {
	mu         sync.RWMutex
	namespaces map[string]struct{}
	services   map[string]*service                // svcKey → Service
	svcByIP    map[string]*service                // cluster IP → Service
	slices     map[string]map[string]*endpoints   // svcKey → slice name → slice
	epByIP     map[string]map[*endpoints]struct{} // ready address → slices holding it
	podsByIP   map[string][]*pod

	// modified is the Unix time of the last change, the SOA serial (as CoreDNS).
	modified atomic.Int64
	// gen counts changes: replies computed in one generation stay valid in it (zoneCache).
	gen atomic.Uint64
	now func() time.Time
}

func newStore() *store {
	s := &store{
		namespaces: map[string]struct{}{},
		services:   map[string]*service{},
		svcByIP:    map[string]*service{},
		slices:     map[string]map[string]*endpoints{},
		epByIP:     map[string]map[*endpoints]struct{}{},
		podsByIP:   map[string][]*pod{},
		now:        time.Now,
	}
	s.touch()
	return s
}

// touch records a change; it runs after the change is visible to readers.
func (s *store) touch() {
	s.modified.Store(s.now().Unix())
	s.gen.Add(1)
}

// generation returns the current generation of the store's content.
func (s *store) generation() uint64 { return s.gen.Load() }

// serial returns the SOA serial.
func (s *store) serial() uint32 { return uint32(s.modified.Load()) } // #nosec G115 -- Unix time to SOA serial, as CoreDNS

func (s *store) setNamespace(name string, present bool) {
	s.mu.Lock()
	if present {
		s.namespaces[name] = struct{}{}
	} else {
		delete(s.namespaces, name)
	}
	s.mu.Unlock()
	s.touch()
}

func (s *store) setService(old, svc *service) {
	s.mu.Lock()
	if old != nil {
		delete(s.services, svcKey(old.meta.Name, old.meta.Namespace))
		for _, ip := range old.clusterIPs {
			if s.svcByIP[ip] == old {
				delete(s.svcByIP, ip)
			}
		}
	}
	if svc != nil {
		s.services[svcKey(svc.meta.Name, svc.meta.Namespace)] = svc
		for _, ip := range svc.clusterIPs {
			if ip != "" && ip != corev1.ClusterIPNone {
				s.svcByIP[ip] = svc
			}
		}
	}
	s.mu.Unlock()
	s.touch()
}

func (s *store) setEndpoints(old, ep *endpoints) {
	s.mu.Lock()
	if old != nil {
		k := svcKey(old.service, old.meta.Namespace)
		if m := s.slices[k]; m != nil && m[old.meta.Name] == old {
			delete(m, old.meta.Name)
			if len(m) == 0 {
				delete(s.slices, k)
			}
		}
		for _, a := range old.addrs {
			if m := s.epByIP[a.ip]; m != nil {
				delete(m, old)
				if len(m) == 0 {
					delete(s.epByIP, a.ip)
				}
			}
		}
	}
	if ep != nil {
		k := svcKey(ep.service, ep.meta.Namespace)
		if s.slices[k] == nil {
			s.slices[k] = map[string]*endpoints{}
		}
		s.slices[k][ep.meta.Name] = ep
		for _, a := range ep.addrs {
			if s.epByIP[a.ip] == nil {
				s.epByIP[a.ip] = map[*endpoints]struct{}{}
			}
			s.epByIP[a.ip][ep] = struct{}{}
		}
	}
	s.mu.Unlock()
	s.touch()
}

func (s *store) setPod(old, p *pod) {
	s.mu.Lock()
	if old != nil {
		for _, ip := range old.ips {
			l := slices.DeleteFunc(s.podsByIP[ip], func(x *pod) bool { return x == old })
			if len(l) == 0 {
				delete(s.podsByIP, ip)
			} else {
				s.podsByIP[ip] = l
			}
		}
	}
	if p != nil {
		for _, ip := range p.ips {
			s.podsByIP[ip] = append(s.podsByIP[ip], p)
		}
	}
	s.mu.Unlock()
	s.touch()
}

// The read methods below must be called with s.mu held for reading.

func (s *store) hasNamespace(name string) bool { _, ok := s.namespaces[name]; return ok }

// slicesOf returns the slices of a Service, ordered by name for stable answers.
func (s *store) slicesOf(key string) []*endpoints {
	m := s.slices[key]
	if len(m) == 0 {
		return nil
	}
	out := make([]*endpoints, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	if len(out) > 1 {
		sort.Slice(out, func(i, j int) bool { return out[i].meta.Name < out[j].meta.Name })
	}
	return out
}

// slicesWithIP returns the slices that hold ip as a ready address, ordered by namespace and
// name.
func (s *store) slicesWithIP(ip string) []*endpoints {
	m := s.epByIP[ip]
	if len(m) == 0 {
		return nil
	}
	out := make([]*endpoints, 0, len(m))
	for e := range m {
		out = append(out, e)
	}
	if len(out) > 1 {
		sort.Slice(out, func(i, j int) bool {
			if out[i].meta.Namespace != out[j].meta.Namespace {
				return out[i].meta.Namespace < out[j].meta.Namespace
			}
			return out[i].meta.Name < out[j].meta.Name
		})
	}
	return out
}
