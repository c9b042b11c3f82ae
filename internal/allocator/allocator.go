// Package allocator allocates Service cluster IPs (from --service-cidr, one range per IP
// family) and node ports (from --service-node-port-range, shared by nodePorts and
// healthCheckNodePorts) consistently across every kubesvc server sharing one etcd.
//
// Each allocated value is one etcd key, <prefix>/kubesvc/ipaddresses/<ip> or
// <prefix>/kubesvc/nodeports/<port>, whose value names the owning Service
// (namespace/name/uid). The keys are created, with a CreateRevision == 0 comparison, in the
// same etcd transaction as the Service write that needs them, and deleted in the same
// transaction as the update or delete that frees them: an allocation exists exactly when the
// Service write that holds it committed, so a crash between "allocate" and "write" cannot leak
// anything. Two servers racing for one value cannot both commit; the loser's write fails with
// storage.ErrRace and the API server redoes it with a fresh choice. A local view of the keys
// (an etcd watch) lets dynamic allocation pick values that are very likely free. Repair
// reconciles keys and Services (orphans from older versions, manual edits).
//
// The Allocator implements the API server's write hooks for services (BeforeCreate,
// BeforeUpdate, BeforeDelete) by running the service strategy's BeginCreate / BeginUpdate
// (internal/registry/service) with a per-request operation. See README.md for the design.
//
// Only the server wiring (internal/server) imports this package.
package allocator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"kubesvc/internal/registry/service"
	"kubesvc/internal/storage"
)

// DefaultNodePortRange is kube's --service-node-port-range default, 30000-32767.
var DefaultNodePortRange = PortRange{Base: 30000, Size: 2768}

// Config configures an Allocator.
type Config struct {
	// Store is the object store; Services are read from it and the allocation keys live in
	// its etcd. Required.
	Store *storage.Store
	// Prefix is the etcd key prefix of the store (--etcd-prefix); default "/registry".
	Prefix string
	// ServiceCIDRs are the cluster-IP ranges, one or two of different families (the first is
	// the primary family). Empty means service.DefaultServiceCIDR.
	ServiceCIDRs []netip.Prefix
	// NodePortRange is the node-port range; the zero value means DefaultNodePortRange.
	NodePortRange PortRange
	// PendingTTL is how long a value this server handed out stays reserved in its local view
	// while the write that holds it is in flight (so concurrent requests pick different
	// values); default 10s. The view learns the committed keys from its etcd watch.
	PendingTTL time.Duration
	// Logf reports what Repair fixed and what it could not; default klog.Infof.
	Logf func(format string, args ...any)
}

// Allocator hands out cluster IPs and node ports. Create it with New, call Start before the
// first request, Close at shutdown. Its methods are safe for concurrent use.
type Allocator struct {
	client   *clientv3.Client
	store    *storage.Store
	strategy *service.Strategy
	ranges   map[corev1.IPFamily]*ipRange
	ports    PortRange
	root     string // <prefix>/kubesvc/
	ttl      time.Duration
	logf     func(format string, args ...any)

	mu           sync.Mutex
	rng          *rand.Rand
	ips          map[netip.Addr]string // key value (owner) by IP, from the watch
	nodePorts    map[int]string
	pendingIPs   map[netip.Addr]time.Time
	pendingPorts map[int]time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// New validates cfg and returns an Allocator; it does not touch etcd yet.
func New(cfg Config) (*Allocator, error) {
	if cfg.Store == nil {
		return nil, errors.New("allocator: Config.Store is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/registry"
	}
	if len(cfg.ServiceCIDRs) == 0 {
		cfg.ServiceCIDRs = []netip.Prefix{service.DefaultServiceCIDR}
	}
	if err := (service.Config{ServiceCIDRs: cfg.ServiceCIDRs}).Validate(); err != nil {
		return nil, fmt.Errorf("allocator: %w", err)
	}
	if cfg.NodePortRange.Size == 0 {
		cfg.NodePortRange = DefaultNodePortRange
	}
	if cfg.PendingTTL <= 0 {
		cfg.PendingTTL = 10 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = klog.Infof
	}
	a := &Allocator{
		client:       cfg.Store.Client(),
		store:        cfg.Store,
		strategy:     service.NewStrategy(service.Config{ServiceCIDRs: cfg.ServiceCIDRs}),
		ranges:       map[corev1.IPFamily]*ipRange{},
		ports:        cfg.NodePortRange,
		root:         strings.TrimSuffix(cfg.Prefix, "/") + "/kubesvc/",
		ttl:          cfg.PendingTTL,
		logf:         cfg.Logf,
		rng:          rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		ips:          map[netip.Addr]string{},
		nodePorts:    map[int]string{},
		pendingIPs:   map[netip.Addr]time.Time{},
		pendingPorts: map[int]time.Time{},
	}
	for _, p := range cfg.ServiceCIDRs {
		r, err := newIPRange(p)
		if err != nil {
			return nil, fmt.Errorf("allocator: %w", err)
		}
		a.ranges[r.family] = r
	}
	return a, nil
}

// Strategy returns the service strategy the allocator runs (built from the same CIDRs).
func (a *Allocator) Strategy() *service.Strategy { return a.strategy }

func (a *Allocator) ipPrefix() string   { return a.root + "ipaddresses/" }
func (a *Allocator) portPrefix() string { return a.root + "nodeports/" }

// IPKey returns the etcd key of an allocated cluster IP.
func (a *Allocator) IPKey(ip netip.Addr) string { return a.ipPrefix() + ip.String() }

// PortKey returns the etcd key of an allocated node port.
func (a *Allocator) PortKey(port int) string { return a.portPrefix() + strconv.Itoa(port) }

// Owner is the value of an allocation key: the Service's namespace/name/uid.
func Owner(svc *corev1.Service) string {
	return svc.Namespace + "/" + svc.Name + "/" + string(svc.UID)
}

// Start loads the allocation keys into the local view and keeps it current with an etcd
// watch until Close (or ctx ends). It returns once the view is loaded.
func (a *Allocator) Start(ctx context.Context) error {
	rev, err := a.load(ctx)
	if err != nil {
		return err
	}
	ctx, a.cancel = context.WithCancel(ctx)
	a.done = make(chan struct{})
	go a.watch(ctx, rev)
	return nil
}

// Close stops the watch.
func (a *Allocator) Close() {
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
}

// load replaces the view with the keys in etcd and returns the revision read.
func (a *Allocator) load(ctx context.Context) (int64, error) {
	resp, err := a.client.Get(ctx, a.root, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("allocator: load allocations: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ips = map[netip.Addr]string{}
	a.nodePorts = map[int]string{}
	for _, kv := range resp.Kvs {
		a.applyLocked(string(kv.Key), string(kv.Value), false)
	}
	return resp.Header.Revision, nil
}

// applyLocked records a put (or delete) of an allocation key in the view.
func (a *Allocator) applyLocked(key, owner string, deleted bool) {
	switch {
	case strings.HasPrefix(key, a.ipPrefix()):
		ip, err := netip.ParseAddr(strings.TrimPrefix(key, a.ipPrefix()))
		if err != nil {
			return
		}
		if deleted {
			delete(a.ips, ip)
			return
		}
		a.ips[ip] = owner
		delete(a.pendingIPs, ip)
	case strings.HasPrefix(key, a.portPrefix()):
		port, err := strconv.Atoi(strings.TrimPrefix(key, a.portPrefix()))
		if err != nil {
			return
		}
		if deleted {
			delete(a.nodePorts, port)
			return
		}
		a.nodePorts[port] = owner
		delete(a.pendingPorts, port)
	}
}

// lostRace is a failed create's OnFailure: another writer holds some of the keys it claimed,
// and the watch has not told the view yet (it lags under load, possibly by many keys). Every
// allocation key etcd holds goes into the view now (keys are only added: a delete the watch
// has not delivered keeps a value looking taken a little longer), so the API server's redo
// picks values that are free. Races are rare; the read is one prefix Get. It returns
// storage.ErrRace.
func (a *Allocator) lostRace(keys []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := a.client.Get(ctx, a.root, clientv3.WithPrefix()); err == nil {
		a.mu.Lock()
		for _, kv := range resp.Kvs {
			a.applyLocked(string(kv.Key), string(kv.Value), false)
		}
		a.mu.Unlock()
	}
	return &storage.Error{Err: storage.ErrRace, Key: strings.Join(keys, ","),
		Message: strings.Join(keys, ", ") + ": lost a race for an allocation"}
}

// watch follows the allocation keys from rev+1, reloading after compaction or errors.
func (a *Allocator) watch(ctx context.Context, rev int64) {
	defer close(a.done)
	for ctx.Err() == nil {
		wch := a.client.Watch(clientv3.WithRequireLeader(ctx), a.root, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.Err() != nil {
				break
			}
			a.mu.Lock()
			for _, ev := range resp.Events {
				a.applyLocked(string(ev.Kv.Key), string(ev.Kv.Value), ev.Type == clientv3.EventTypeDelete)
				rev = ev.Kv.ModRevision
			}
			a.mu.Unlock()
		}
		if ctx.Err() != nil {
			return
		}
		// The watch ended (compaction, lost leader): start over from a fresh list.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if r, err := a.load(ctx); err == nil {
			rev = r
		}
	}
}

// Used returns the number of allocated cluster IPs per family and node ports in the local
// view (for tests and metrics).
func (a *Allocator) Used() (ips map[corev1.IPFamily]int, ports int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ips = map[corev1.IPFamily]int{}
	for ip := range a.ips {
		if ip.Is4() {
			ips[corev1.IPv4Protocol]++
		} else {
			ips[corev1.IPv6Protocol]++
		}
	}
	return ips, len(a.nodePorts)
}

// pickIP chooses a free address of r that is not in skip: a random start in the dynamic
// band, scanning forward with wrap-around, then the static band (kube's order). Values
// other requests of this server hold are avoided unless nothing else is free.
func (a *Allocator) pickIP(r *ipRange, skip map[netip.Addr]bool) (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.gcPendingLocked(now)
	for _, b := range bands(r.size, r.offset) {
		for _, respectPending := range []bool{true, false} {
			i, ok := scan(a.rng, b, 0, func(i uint64) bool {
				ip := r.at(i)
				if _, used := a.ips[ip]; used || skip[ip] {
					return false
				}
				if t, ok := a.pendingIPs[ip]; respectPending && ok && now.Before(t) {
					return false
				}
				return true
			})
			if ok {
				ip := r.at(i)
				a.pendingIPs[ip] = now.Add(a.ttl)
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

// pickPort is pickIP for node ports.
func (a *Allocator) pickPort(skip map[int]bool) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.gcPendingLocked(now)
	for _, b := range bands(uint64(a.ports.Size), uint64(portOffset(a.ports.Size))) {
		for _, respectPending := range []bool{true, false} {
			i, ok := scan(a.rng, b, 0, func(i uint64) bool {
				p := a.ports.Base + int(i)
				if _, used := a.nodePorts[p]; used || skip[p] {
					return false
				}
				if t, ok := a.pendingPorts[p]; respectPending && ok && now.Before(t) {
					return false
				}
				return true
			})
			if ok {
				p := a.ports.Base + int(i)
				a.pendingPorts[p] = now.Add(a.ttl)
				return p, true
			}
		}
	}
	return 0, false
}

func (a *Allocator) gcPendingLocked(now time.Time) {
	if len(a.pendingIPs)+len(a.pendingPorts) < 1024 {
		return
	}
	for k, t := range a.pendingIPs {
		if !now.Before(t) {
			delete(a.pendingIPs, k)
		}
	}
	for k, t := range a.pendingPorts {
		if !now.Before(t) {
			delete(a.pendingPorts, k)
		}
	}
}

// exists reports whether an allocation key exists in etcd now (the authoritative check for
// values a user asks for by number).
func (a *Allocator) exists(ctx context.Context, key string) (bool, error) {
	resp, err := a.client.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("allocator: read %s: %w", key, err)
	}
	return resp.Count > 0, nil
}
