package userspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"kubesvc/internal/proxy"
)

// ErrClosed is returned by Sync after Close or Cleanup.
var ErrClosed = errors.New("userspace proxy closed")

// Proxier is the userspace Dataplane. Sync, Close and Cleanup are serialized by the caller's
// runner and by an internal lock; the data path (accept loops, connections, UDP sessions)
// never takes that lock.
type Proxier struct {
	cfg Config
	now func() time.Time // the clock of ClientIP affinity; time.Now outside tests
	log interface {
		Error(err error, msg string, kv ...any)
		Info(msg string, kv ...any)
	}

	ctx    context.Context // cancelled by Close: ends dials in progress
	cancel context.CancelFunc

	mu        sync.Mutex // Sync, Close, Cleanup
	closed    bool
	dev       vipDevice
	services  map[proxy.ServicePortName]*svcEntry
	listeners map[listenerKey]listener
	vipRefs   map[netip.Addr]int // VIP → number of service ports using it
	// vipUse counts the connections and UDP sessions accepted on each VIP: a VIP no Service
	// wants any more stays on the device until they end, so that deleting a Service does not
	// cut its established connections (as conntrack keeps them in nftables mode).
	vipUse  map[netip.Addr]*atomic.Int64
	nodeIPs []netip.Addr
	cidrs   []netip.Prefix

	// local is the set of source addresses that count as "from this node or a pod" for
	// externalTrafficPolicy Local short-circuiting (PX-T-04), swapped by Sync.
	local atomic.Pointer[localSources]

	wg     sync.WaitGroup // every goroutine of the data path
	connMu sync.Mutex
	conns  map[io.Closer]struct{} // open connections and sessions, ended by Close
}

var _ proxy.Dataplane = (*Proxier)(nil)

// svcEntry is what Sync remembers of one service port.
type svcEntry struct {
	svc  *service
	vips []netip.Addr
	keys []listenerKey // listeners it owns
}

// listenerKey is one address the proxy listens on.
type listenerKey struct {
	addr  netip.AddrPort
	proto corev1.Protocol
}

func (k listenerKey) String() string { return string(k.proto) + "/" + k.addr.String() }

// listener is a TCP listener or a UDP socket serving one service port.
type listener interface {
	service() *service
	destination() dest
	close()
}

// dest is the kind of address a listener serves; it selects the endpoint list (spec §5.4).
type dest uint8

const (
	destClusterIP    dest = iota // internal traffic
	destExternal                 // NodePort or externalIP
	destLoadBalancer             // LB IP: external, and subject to loadBalancerSourceRanges
)

// New returns the userspace Dataplane. It changes nothing on the node until the first Sync.
func New(cfg Config) (proxy.Dataplane, error) {
	return newProxier(cfg)
}

func newProxier(cfg Config) (*Proxier, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxier{
		cfg:       cfg,
		now:       time.Now,
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		dev:       vipDevice{name: cfg.Device},
		services:  make(map[proxy.ServicePortName]*svcEntry),
		listeners: make(map[listenerKey]listener),
		vipRefs:   make(map[netip.Addr]int),
		vipUse:    make(map[netip.Addr]*atomic.Int64),
		conns:     make(map[io.Closer]struct{}),
	}
	p.local.Store(&localSources{})
	return p, nil
}

// Name implements proxy.Dataplane.
func (p *Proxier) Name() string { return "userspace" }

// Sync implements proxy.Dataplane: VIP addresses first (listeners bind to them), then
// endpoint lists and listeners of the touched service ports only. Errors of single service
// ports are joined; everything else is still applied.
func (p *Proxier) Sync(ctx context.Context, snap *proxy.Snapshot, changed sets.Set[proxy.ServicePortName], full bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if !slices.Equal(p.nodeIPs, snap.NodeIPs) || !slices.Equal(p.cidrs, snap.ClusterCIDRs) {
		full = true // every NodePort listener and the local-source set depend on them
	}
	if err := p.dev.ensure(full); err != nil {
		return err
	}
	names := changed
	if full {
		names = sets.KeySet(snap.Services)
		for n := range p.services {
			names.Insert(n)
		}
	}
	p.nodeIPs = slices.Clone(snap.NodeIPs)
	p.cidrs = slices.Clone(snap.ClusterCIDRs)

	// VIPs first: a Service port without endpoints keeps its VIPs (and so gets RST or ICMP
	// port unreachable from the kernel, PX-T-01).
	for name := range names {
		p.setVIPs(name, snap.Services[name])
	}
	var errs []error
	if err := p.dev.reconcile(p.vipRefs, p.vipBusy); err != nil {
		errs = append(errs, err)
	}
	for ip := range p.vipUse {
		if !p.dev.addrs[ip] && p.vipRefs[ip] == 0 {
			delete(p.vipUse, ip)
		}
	}
	p.local.Store(newLocalSources(snap.NodeIPs, snap.ClusterCIDRs, p.vipRefs))
	for name := range names {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := p.syncService(name, snap.Services[name]); err != nil {
			errs = append(errs, fmt.Errorf("service port %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// setVIPs records the VIPs of name (nil st: none) in the reference counts.
func (p *Proxier) setVIPs(name proxy.ServicePortName, st *proxy.ServiceState) {
	e := p.services[name]
	if e != nil {
		for _, ip := range e.vips {
			if p.vipRefs[ip]--; p.vipRefs[ip] <= 0 {
				delete(p.vipRefs, ip)
			}
		}
		e.vips = nil
	}
	if st == nil {
		return
	}
	if e == nil {
		e = &svcEntry{svc: &service{name: name}}
		p.services[name] = e
	}
	for _, ip := range vipsOf(st) {
		if !slices.Contains(e.vips, ip) {
			e.vips = append(e.vips, ip)
			p.vipRefs[ip]++
		}
	}
}

// vipBusy reports whether connections accepted on ip are still open.
func (p *Proxier) vipBusy(ip netip.Addr) bool {
	u := p.vipUse[ip]
	return u != nil && u.Load() > 0
}

// useOf returns the connection counter of addr if it is a VIP (nil for node addresses).
func (p *Proxier) useOf(addr netip.Addr) *atomic.Int64 {
	if p.vipRefs[addr] == 0 {
		return nil
	}
	u := p.vipUse[addr]
	if u == nil {
		u = new(atomic.Int64)
		p.vipUse[addr] = u
	}
	return u
}

func vipsOf(st *proxy.ServiceState) []netip.Addr {
	var out []netip.Addr
	for _, list := range [][]netip.Addr{st.ClusterIPs, st.ExternalIPs, st.LoadBalancerIPs} {
		for _, ip := range list {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// syncService publishes st's endpoint lists and makes its listeners match (none when the
// service port is gone or has no endpoints).
func (p *Proxier) syncService(name proxy.ServicePortName, st *proxy.ServiceState) error {
	e := p.services[name]
	if e == nil {
		return nil // gone before and now
	}
	want := map[listenerKey]dest{}
	if st != nil {
		for fam := range e.svc.pol {
			// PX-02: each family serves its own addresses with its own endpoints; a family
			// without a cluster IP of the Service serves nothing of it.
			fst := st.ForFamily(fam == 1)
			pol := &policy{affinity: st.AffinityTimeout}
			if fst != nil {
				pol = newPolicy(fst)
			}
			if old := e.svc.pol[fam].Swap(pol); old != nil && old.affinity != pol.affinity {
				e.svc.aff.sweep(0, p.now())
			}
			if fst != nil && hasEndpoints(fst) {
				p.wantListeners(fst, want)
			}
		}
	}
	var errs []error
	kept := e.keys[:0]
	for _, k := range e.keys {
		ext, ok := want[k]
		if ok && p.listeners[k].destination() == ext {
			kept = append(kept, k)
			delete(want, k)
			continue
		}
		p.listeners[k].close()
		delete(p.listeners, k)
	}
	e.keys = kept
	for _, k := range sortedKeys(want) {
		if other, ok := p.listeners[k]; ok {
			errs = append(errs, fmt.Errorf("%s is already served for %s", k, other.service().name))
			continue
		}
		l, err := p.listen(k, e.svc, want[k])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.listeners[k] = l
		e.keys = append(e.keys, k)
	}
	if st == nil {
		e.svc.aff.sweep(0, p.now())
		delete(p.services, name)
	}
	return errors.Join(errs...)
}

// wantListeners adds the addresses st, one family's view of a service port, is served on
// (spec §5.2) to want: NodePorts on the node addresses of that family only.
func (p *Proxier) wantListeners(st *proxy.ServiceState, want map[listenerKey]dest) {
	if st.Protocol != corev1.ProtocolTCP && st.Protocol != corev1.ProtocolUDP {
		p.log.Info("userspace proxy: protocol not supported; service port not proxied", "service", st.Name.String(), "protocol", st.Protocol)
		return
	}
	port := uint16(st.Port)
	for _, ip := range st.ClusterIPs {
		want[listenerKey{netip.AddrPortFrom(ip.Unmap(), port), st.Protocol}] = destClusterIP
	}
	for _, ip := range st.ExternalIPs {
		want[listenerKey{netip.AddrPortFrom(ip.Unmap(), port), st.Protocol}] = destExternal
	}
	for _, ip := range st.LoadBalancerIPs {
		want[listenerKey{netip.AddrPortFrom(ip.Unmap(), port), st.Protocol}] = destLoadBalancer
	}
	if st.NodePort != 0 {
		for _, ip := range p.nodeIPs {
			if famOf(ip) == famOf(st.ClusterIPs[0]) {
				want[listenerKey{netip.AddrPortFrom(ip.Unmap(), uint16(st.NodePort)), st.Protocol}] = destExternal
			}
		}
	}
}

func sortedKeys(m map[listenerKey]dest) []listenerKey {
	keys := make([]listenerKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b listenerKey) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return compareStrings(string(a.proto), string(b.proto))
	})
	return keys
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (p *Proxier) listen(k listenerKey, svc *service, d dest) (listener, error) {
	switch k.proto {
	case corev1.ProtocolTCP:
		return p.listenTCP(k, svc, d)
	case corev1.ProtocolUDP:
		return p.listenUDP(k, svc, d)
	default:
		return nil, fmt.Errorf("%s: protocol %s is not supported in userspace mode", k, k.proto)
	}
}

// Close implements proxy.Dataplane: it stops every listener, connection and session and
// waits for their goroutines; the VIP device and its addresses stay. Safe to call twice.
func (p *Proxier) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel()
		for k, l := range p.listeners {
			l.close()
			delete(p.listeners, k)
		}
		p.services = map[proxy.ServicePortName]*svcEntry{}
		p.connMu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.connMu.Unlock()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Cleanup implements proxy.Dataplane: Close, then delete the VIP device with its addresses.
// It works from a fresh Proxier too (`kubesvc agent --cleanup`).
func (p *Proxier) Cleanup() error {
	_ = p.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vipRefs = map[netip.Addr]int{}
	p.vipUse = map[netip.Addr]*atomic.Int64{}
	return p.dev.remove()
}

// track registers c to be closed by Close; the returned func forgets it. It reports false
// (and closes c) when the proxier is already closed.
func (p *Proxier) track(c io.Closer) (untrack func(), ok bool) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.ctx.Err() != nil {
		_ = c.Close()
		return nil, false
	}
	p.conns[c] = struct{}{}
	return func() {
		p.connMu.Lock()
		delete(p.conns, c)
		p.connMu.Unlock()
	}, true
}

// localSources decides whether a client address is this node or a pod (PX-T-04): the
// default "ClusterCIDR" local-traffic detector of kube-proxy plus the node's own addresses.
type localSources struct {
	cidrs []netip.Prefix
	addrs map[netip.Addr]bool
}

func newLocalSources(nodeIPs []netip.Addr, cidrs []netip.Prefix, vips map[netip.Addr]int) *localSources {
	l := &localSources{cidrs: slices.Clone(cidrs), addrs: make(map[netip.Addr]bool, len(nodeIPs)+len(vips))}
	for _, ip := range nodeIPs {
		l.addrs[ip.Unmap()] = true
	}
	for ip := range vips {
		l.addrs[ip] = true
	}
	return l
}

func (l *localSources) contains(ip netip.Addr) bool {
	if ip.IsLoopback() || l.addrs[ip] {
		return true
	}
	for _, c := range l.cidrs {
		if c.Contains(ip) {
			return true
		}
	}
	return false
}

// backendsFor is the endpoint list for a new connection from client to a listener of pol's
// service port: internal, external or short-circuited (spec §5.3/§5.4); nil (drop) for a
// client outside an LB IP's loadBalancerSourceRanges (PX-F-01).
func (p *Proxier) backendsFor(pol *policy, d dest, client netip.Addr) backends {
	switch {
	case d == destClusterIP:
		return pol.internal
	case d == destLoadBalancer && !pol.sourceAllowed(client):
		return nil
	case pol.externalLocal && p.local.Load().contains(client):
		return pol.shortCircuit
	default:
		return pol.external
	}
}
