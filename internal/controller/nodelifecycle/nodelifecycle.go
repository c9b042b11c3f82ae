// Package nodelifecycle is the node lifecycle controller, a port of the parts of
// kube-controller-manager's pkg/controller/nodelifecycle and pkg/controller/tainteviction
// that a cluster without cloud providers needs:
//
//   - Health: every NodeMonitorPeriod each node's last sign of life — a change of its Ready
//     condition's heartbeat or a renewal of its Lease kube-node-lease/<node> — is compared
//     with NodeMonitorGracePeriod (NodeStartupGracePeriod before the node ever posted
//     Ready). Past it, Ready (and MemoryPressure, DiskPressure, PIDPressure) become Unknown
//     with reason NodeStatusUnknown, "Kubelet stopped posting node status.", and the Ready
//     condition of the node's pods is set False so that they leave the endpoints.
//   - Taints: NoSchedule taints follow the node conditions and spec.unschedulable
//     (node.kubernetes.io/not-ready, unreachable, memory-pressure, disk-pressure,
//     pid-pressure, network-unavailable, unschedulable); a node whose Ready is False or
//     Unknown also gets node.kubernetes.io/not-ready or unreachable with NoExecute. A node
//     Ready again loses them.
//   - Eviction: pods on a node with NoExecute taints are deleted once the taints are no
//     longer tolerated: at once for a taint without toleration, after tolerationSeconds
//     otherwise. Pods without their own toleration for not-ready/unreachable get one for
//     PodEvictionTimeout, as kube-apiserver's DefaultTolerationSeconds admission does
//     (300 s there). Deleted pods are recreated by their controllers on other nodes.
//
// Not implemented: zones and disruption modes (eviction rate limits, full-disruption
// pause), cloud node deletion. Only internal/server and tests import it.
package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"kubesvc/internal/controller/scheduler"
)

// Defaults of Config, kube-controller-manager's.
const (
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	DefaultNodeStartupGracePeriod = 60 * time.Second
	DefaultNodeMonitorPeriod      = 5 * time.Second
	DefaultPodEvictionTimeout     = 5 * time.Minute
)

// Config configures the controller. Zero durations mean the defaults.
type Config struct {
	// Client talks to the API server. Required.
	Client kubernetes.Interface
	// Informers is a shared informer factory; nil makes the controller create (and shut
	// down) its own. A shared factory is started by Run but shut down by its owner.
	Informers informers.SharedInformerFactory
	// NodeMonitorGracePeriod is how long a node may show no sign of life before its Ready
	// condition becomes Unknown (--node-monitor-grace-period).
	NodeMonitorGracePeriod time.Duration
	// NodeStartupGracePeriod replaces it for a node that never posted a Ready condition.
	NodeStartupGracePeriod time.Duration
	// NodeMonitorPeriod is how often node health is checked.
	NodeMonitorPeriod time.Duration
	// PodEvictionTimeout is the default tolerationSeconds of pods for the not-ready and
	// unreachable NoExecute taints (--pod-eviction-timeout).
	PodEvictionTimeout time.Duration
	// Clock defaults to the real clock; health checks, taint times and evictions use it.
	Clock clock.WithTicker
}

// Controller is the node lifecycle controller. Create it with New; Run may be called once.
type Controller struct {
	client                                       kubernetes.Interface
	factory                                      informers.SharedInformerFactory
	ownFactory                                   bool
	grace, startupGrace, period, evictionTimeout time.Duration
	clock                                        clock.WithTicker
	nodes                                        corelisters.NodeLister
	pods                                         corelisters.PodLister
	podIndex                                     cache.Indexer
	leases                                       coordlisters.LeaseLister
	synced                                       []cache.InformerSynced
	taintQueue                                   workqueue.TypedRateLimitingInterface[string]
	evictQueue                                   workqueue.TypedRateLimitingInterface[string]
	broadcaster                                  record.EventBroadcaster
	recorder                                     record.EventRecorder
	healthMu                                     sync.Mutex
	health                                       map[string]*nodeHealth
	noExecuteSeen                                map[string]time.Time // first sight of NoExecute taints per node
	knownNodes                                   map[string]bool
}

// New returns a node lifecycle controller; its informers start in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("node lifecycle controller: Config.Client is required")
	}
	c := &Controller{
		client: cfg.Client, factory: cfg.Informers, clock: cfg.Clock,
		grace:           orDefault(cfg.NodeMonitorGracePeriod, DefaultNodeMonitorGracePeriod),
		startupGrace:    orDefault(cfg.NodeStartupGracePeriod, DefaultNodeStartupGracePeriod),
		period:          orDefault(cfg.NodeMonitorPeriod, DefaultNodeMonitorPeriod),
		evictionTimeout: orDefault(cfg.PodEvictionTimeout, DefaultPodEvictionTimeout),
		health:          map[string]*nodeHealth{},
		noExecuteSeen:   map[string]time.Time{},
		knownNodes:      map[string]bool{},
	}
	if c.factory == nil {
		c.factory, c.ownFactory = informers.NewSharedInformerFactory(cfg.Client, 0), true
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	limiter := func() workqueue.TypedRateLimiter[string] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 30*time.Second)
	}
	c.taintQueue = workqueue.NewTypedRateLimitingQueueWithConfig(limiter(),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "node-taints", Clock: c.clock})
	c.evictQueue = workqueue.NewTypedRateLimitingQueueWithConfig(limiter(),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "pod-evictions", Clock: c.clock})
	c.broadcaster = record.NewBroadcaster()
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "node-controller"})

	nodes := c.factory.Core().V1().Nodes()
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.taintQueue.Add(obj.(*corev1.Node).Name) },
		UpdateFunc: func(_, cur any) { c.taintQueue.Add(cur.(*corev1.Node).Name) },
	}); err != nil {
		return nil, fmt.Errorf("node lifecycle controller: watch nodes: %w", err)
	}
	pods := c.factory.Core().V1().Pods()
	if err := scheduler.AddNodeNameIndex(pods.Informer()); err != nil {
		return nil, fmt.Errorf("node lifecycle controller: index pods: %w", err)
	}
	leases := c.factory.Coordination().V1().Leases()
	c.nodes, c.pods, c.podIndex, c.leases = nodes.Lister(), pods.Lister(), pods.Informer().GetIndexer(), leases.Lister()
	c.synced = []cache.InformerSynced{nodes.Informer().HasSynced, pods.Informer().HasSynced, leases.Informer().HasSynced}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run starts the informers, the health monitor and workers goroutines for each queue, and
// blocks until ctx is done and they have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer func() {
		c.taintQueue.ShutDown()
		c.evictQueue.ShutDown()
		if c.ownFactory {
			c.factory.Shutdown()
		}
		wg.Wait()
		c.broadcaster.Shutdown()
	}()
	c.factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync("node lifecycle", ctx.Done(), c.synced...) {
		return
	}
	for range max(workers, 1) {
		wg.Go(func() { c.drain(ctx, c.taintQueue, c.syncNoScheduleTaints) })
		wg.Go(func() { c.drain(ctx, c.evictQueue, c.syncEviction) })
	}
	wg.Go(func() {
		t := c.clock.NewTicker(c.period)
		defer t.Stop()
		for {
			c.monitor(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
		}
	})
	<-ctx.Done()
}

// drain processes q with sync until q shuts down; failures are retried with backoff.
func (c *Controller) drain(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		if err := sync(ctx, key); err != nil {
			klog.FromContext(ctx).V(2).Info("node lifecycle: sync failed", "key", key, "err", err)
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

// podsOn returns the pods assigned to node.
func (c *Controller) podsOn(node string) []*corev1.Pod {
	objs, _ := c.podIndex.ByIndex(scheduler.NodeNameIndex, node)
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*corev1.Pod))
	}
	return out
}
