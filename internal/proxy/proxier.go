package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Sync periods (PX-S-01). kube-proxy's default minimum interval between syncs is 1 s;
// kubesvc's is 0, the Runner's adaptive mode: a change is applied at once, and under churn
// the proxy spends at most half its time syncing (see Runner). kube-proxy needs the fixed
// second because every sync costs in proportion to all Services; kubesvc's partial syncs
// cost in proportion to what changed.
const (
	DefaultMinSyncPeriod = 0
	DefaultSyncPeriod    = 30 * time.Second
)

// Labels that keep objects away from this proxy (EP-C-04).
const (
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	LabelHeadless         = "service.kubernetes.io/headless"
)

// Config configures a Proxier. Client, NodeName and Dataplane are required.
type Config struct {
	Client    kubernetes.Interface
	Dataplane Dataplane
	NodeName  string
	// NodeIPs are the addresses NodePorts and health-check ports answer on (never loopback).
	// Their families are the families served (PX-02); IPv4 is served when none is given.
	NodeIPs []netip.Addr
	// ClusterCIDRs is the pod network (local-traffic detection, PX-M-03b).
	ClusterCIDRs  []netip.Prefix
	MasqueradeAll bool
	// MinSyncPeriod is the minimum time between the starts of two syncs; 0 (the default) is
	// the Runner's adaptive mode. SyncPeriod (default 30 s) is the maximum; see PX-S-01.
	MinSyncPeriod, SyncPeriod time.Duration
	// HealthzBindAddress serves /healthz and /livez ("" = off).
	HealthzBindAddress string
	// MetricsBindAddress serves /metrics ("" = off).
	MetricsBindAddress string
	// EnableProfiling serves /debug/pprof on MetricsBindAddress (kube-proxy's --profiling).
	EnableProfiling bool
	// ConntrackCleanup deletes stale UDP conntrack entries after syncs (PX-C-01; nftables).
	ConntrackCleanup bool
	// Registerer receives the metrics; nil = a private registry (served on MetricsBindAddress).
	Registerer prometheus.Registerer
}

// Proxier is the generic service proxy: informers → Tracker → Runner → one Dataplane.Sync.
type Proxier struct {
	cfg      Config
	families Families
	tracker  *Tracker
	runner   *Runner
	metrics  *metrics
	gather   prometheus.Gatherer
	health   *proxyHealth
	hc       *serviceHealth

	needFull atomic.Bool // set by node label changes and failures
	synced   func() bool
	ready    chan struct{}
	readyOne sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// HealthzAddr and MetricsAddr are where the servers listen (after Start).
	HealthzAddr, MetricsAddr net.Addr

	// localPolicy is owned by the sync goroutine (see trackLocalPolicy).
	localPolicy map[ServicePortName]*ServiceState

	mu    sync.Mutex
	syncs int
}

// New checks cfg and returns a Proxier; Start runs it.
func New(cfg Config) (*Proxier, error) {
	if cfg.Client == nil || cfg.Dataplane == nil || cfg.NodeName == "" {
		return nil, errors.New("proxy: Client, Dataplane and NodeName are required")
	}
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.MinSyncPeriod < 0 || cfg.SyncPeriod < cfg.MinSyncPeriod {
		return nil, fmt.Errorf("proxy: need 0 <= min-sync-period (%s) <= sync-period (%s)", cfg.MinSyncPeriod, cfg.SyncPeriod)
	}
	p := &Proxier{cfg: cfg, ready: make(chan struct{})}
	for _, a := range cfg.NodeIPs {
		if a.Is4() {
			p.families.IPv4 = true
		} else {
			p.families.IPv6 = true
		}
	}
	if !p.families.IPv4 && !p.families.IPv6 {
		p.families.IPv4 = true
	}
	p.tracker = NewTracker(cfg.NodeName, p.families)
	reg := cfg.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, p.gather = r, r
	}
	var err error
	if p.metrics, err = newMetrics(reg); err != nil {
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	p.health = &proxyHealth{timeout: 2 * cfg.SyncPeriod, now: time.Now, nodeEligible: true}
	p.hc = &serviceHealth{addrs: func() []netip.Addr { return cfg.NodeIPs }, healthy: p.health.Healthy}
	p.runner = NewRunner(p.sync, cfg.MinSyncPeriod, cfg.SyncPeriod, cfg.SyncPeriod)
	return p, nil
}

// Start starts the informers, the HTTP servers and the sync loop. No rules are written before
// the Service and EndpointSlice informers have synced (PX-S-01). On error, nothing keeps running.
func (p *Proxier) Start(ctx context.Context) (err error) {
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.cfg.HealthzBindAddress != "" {
		mux := http.NewServeMux()
		mux.Handle("/healthz", p.health)
		mux.Handle("/livez", p.health)
		if p.HealthzAddr, err = serveHTTP(ctx, p.cfg.HealthzBindAddress, mux); err != nil {
			return fmt.Errorf("proxy: --healthz-bind-address: %w", err)
		}
	}
	if p.cfg.MetricsBindAddress != "" && p.gather != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(p.gather, promhttp.HandlerOpts{}))
		if p.cfg.EnableProfiling {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		if p.MetricsAddr, err = serveHTTP(ctx, p.cfg.MetricsBindAddress, mux); err != nil {
			return fmt.Errorf("proxy: --metrics-bind-address: %w", err)
		}
	}
	svcInf := informers.NewSharedInformerFactoryWithOptions(p.cfg.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = "!" + LabelServiceProxyName
	}), informers.WithTransform(stripManagedFields)).Core().V1().Services().Informer()
	sliceF := informers.NewSharedInformerFactoryWithOptions(p.cfg.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = "!" + LabelHeadless + "," + discoveryv1.LabelServiceName
	}), informers.WithTransform(stripManagedFields))
	sliceInf := sliceF.Discovery().V1().EndpointSlices().Informer()
	nodeF := informers.NewSharedInformerFactoryWithOptions(p.cfg.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", p.cfg.NodeName).String()
	}))
	nodeInf := nodeF.Core().V1().Nodes().Informer()
	if _, err := svcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.onService(o, false) },
		UpdateFunc: func(_, o any) { p.onService(o, false) },
		DeleteFunc: func(o any) { p.onService(o, true) },
	}); err != nil {
		return err
	}
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.onSlice(o, false) },
		UpdateFunc: func(_, o any) { p.onSlice(o, false) },
		DeleteFunc: func(o any) { p.onSlice(o, true) },
	}); err != nil {
		return err
	}
	var nodeLabels atomic.Pointer[map[string]string]
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.onNode(o, &nodeLabels) },
		UpdateFunc: func(_, o any) { p.onNode(o, &nodeLabels) },
	}); err != nil {
		return err
	}
	for _, inf := range []cache.SharedIndexInformer{svcInf, sliceInf, nodeInf} {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); inf.Run(ctx.Done()) }()
	}
	p.synced = func() bool { return svcInf.HasSynced() && sliceInf.HasSynced() }
	p.needFull.Store(true)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if !cache.WaitForCacheSync(ctx.Done(), svcInf.HasSynced, sliceInf.HasSynced) {
			return
		}
		p.runner.Run()
		p.runner.Loop(ctx)
	}()
	return nil
}

// stripManagedFields drops metadata.managedFields before objects reach the informer caches,
// as kube-proxy does: the proxy never reads them, and at 10k Services and EndpointSlices they
// are a large share of the cache and of what the GC scans.
func stripManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

// Ready is closed after the first successful sync.
func (p *Proxier) Ready() <-chan struct{} { return p.ready }

// Healthy reports the proxy's health (PX-H-02).
func (p *Proxier) Healthy() bool { return p.health.Healthy() }

// Close stops the proxier and its dataplane's goroutines; kernel state stays.
func (p *Proxier) Close() {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	p.hc.Close()
	if err := p.cfg.Dataplane.Close(); err != nil {
		klog.ErrorS(err, "close dataplane")
	}
}

func (p *Proxier) onService(o any, deleted bool) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o, deleted = t.Obj, true
	}
	svc, ok := o.(*corev1.Service)
	if !ok {
		return
	}
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	if deleted {
		svc = nil
	}
	p.tracker.OnService(key, svc)
	p.queued()
}

func (p *Proxier) onSlice(o any, deleted bool) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o, deleted = t.Obj, true
	}
	es, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	p.tracker.OnEndpointSlice(es, deleted)
	p.queued()
}

// onNode forces a full sync when this Node's labels change (NFT-S-01) and tracks its
// eligibility for /healthz (PX-H-02).
func (p *Proxier) onNode(o any, last *atomic.Pointer[map[string]string]) {
	n, ok := o.(*corev1.Node)
	if !ok {
		return
	}
	eligible := n.DeletionTimestamp == nil
	for _, t := range n.Spec.Taints {
		if t.Key == "ToBeDeletedByClusterAutoscaler" {
			eligible = false
		}
	}
	p.health.SetNodeEligible(eligible)
	labels := n.Labels
	if prev := last.Swap(&labels); prev != nil && !equalMaps(*prev, labels) {
		p.needFull.Store(true)
		p.queued()
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (p *Proxier) queued() {
	p.health.Queued()
	if m := p.metrics; m != nil {
		m.lastQueuedTimestamp.SetToCurrentTime()
		s, e := p.tracker.Pending()
		m.servicesPending.Set(float64(s))
		m.endpointsPending.Set(float64(e))
	}
	p.runner.Run()
}

// sync is the one sync function (STYLE §9.3): apply the tracker's changes, hand the Snapshot
// to the dataplane, then reconcile health-check servers, clean conntrack and record metrics.
// A partial sync costs in proportion to the changed service ports: nothing here walks all
// Services unless the sync is full.
func (p *Proxier) sync() error {
	start := time.Now()
	full := p.needFull.Swap(false)
	svcs, eps := p.tracker.Pending()
	state, changed, prevStates, triggers := p.tracker.Apply()
	snap := &Snapshot{Services: state, NodeName: p.cfg.NodeName, NodeIPs: p.cfg.NodeIPs,
		ClusterCIDRs: p.cfg.ClusterCIDRs, MasqueradeAll: p.cfg.MasqueradeAll}
	if err := p.cfg.Dataplane.Sync(context.Background(), snap, changed, full); err != nil {
		// The tracker has moved on: the next sync must be full to catch up (NFT-S-05).
		p.needFull.Store(true)
		if p.metrics != nil {
			p.metrics.syncFailures.Inc()
		}
		klog.ErrorS(err, "proxy sync failed; next sync is full", "dataplane", p.cfg.Dataplane.Name(), "full", full)
		return err
	}
	elapsed := time.Since(start)
	p.mu.Lock()
	p.syncs++
	p.mu.Unlock()
	p.health.Updated()
	p.trackLocalPolicy(state, changed, full)
	p.hc.Sync(healthChecks(p.localPolicy))
	if p.cfg.ConntrackCleanup {
		if err := CleanStaleUDP(&Snapshot{Services: prevStates}, snap, changed, full); err != nil {
			klog.ErrorS(err, "UDP conntrack cleanup")
		}
	}
	if m := p.metrics; m != nil {
		m.syncDuration.Observe(elapsed.Seconds())
		if full {
			m.syncFullDuration.Observe(elapsed.Seconds())
		} else {
			m.syncPartialDuration.Observe(elapsed.Seconds())
		}
		m.lastTimestamp.SetToCurrentTime()
		m.servicesTotal.Add(float64(svcs))
		m.endpointsTotal.Add(float64(eps))
		s, e := p.tracker.Pending()
		m.servicesPending.Set(float64(s))
		m.endpointsPending.Set(float64(e))
		now := time.Now()
		for _, t := range triggers {
			m.networkProgramming.Observe(now.Sub(t).Seconds())
		}
		var internal, external int
		for _, st := range p.localPolicy {
			if st.InternalPolicyLocal && len(st.LocalEndpoints) == 0 && st.HasEndpoints {
				internal++
			}
			if st.ExternalPolicyLocal && len(st.LocalEndpoints) == 0 && st.HasEndpoints {
				external++
			}
		}
		m.noLocalEndpoints.WithLabelValues("internal").Set(float64(internal))
		m.noLocalEndpoints.WithLabelValues("external").Set(float64(external))
	}
	klog.V(2).InfoS("proxy synced", "dataplane", p.cfg.Dataplane.Name(), "full", full, "changed", changed.Len(), "services", len(snap.Services), "elapsed", elapsed)
	p.readyOne.Do(func() { close(p.ready) })
	return nil
}

// trackLocalPolicy keeps p.localPolicy, the service ports with a Local traffic policy (the
// only ones health checks and the no-local-endpoints metrics look at), in step with state:
// rebuilt on a full sync, else updated for the changed ports only.
func (p *Proxier) trackLocalPolicy(state map[ServicePortName]*ServiceState, changed sets.Set[ServicePortName], full bool) {
	local := func(st *ServiceState) bool {
		return st.InternalPolicyLocal || st.ExternalPolicyLocal || st.HealthCheckNodePort != 0
	}
	if full || p.localPolicy == nil {
		p.localPolicy = map[ServicePortName]*ServiceState{}
		for n, st := range state {
			if local(st) {
				p.localPolicy[n] = st
			}
		}
		return
	}
	for n := range changed {
		if st, ok := state[n]; ok && local(st) {
			p.localPolicy[n] = st
		} else {
			delete(p.localPolicy, n)
		}
	}
}

// healthChecks is the health-check port of every eTP Local LoadBalancer Service with its
// number of ready local endpoints (PX-H-01: terminating ones do not count).
func healthChecks(states map[ServicePortName]*ServiceState) map[int32]hcService {
	out := map[int32]hcService{}
	for _, st := range states {
		if st.HealthCheckNodePort == 0 {
			continue
		}
		n := 0
		for _, e := range st.Endpoints {
			if e.Local && e.Ready {
				n++
			}
		}
		hs := out[st.HealthCheckNodePort]
		hs.svc = st.Name.NamespacedName
		if n > hs.endpoints {
			hs.endpoints = n
		}
		out[st.HealthCheckNodePort] = hs
	}
	return out
}
