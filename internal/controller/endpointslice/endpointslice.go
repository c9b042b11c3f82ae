// Package endpointslice is the EndpointSlice controller: for every Service with a selector it
// keeps discovery.k8s.io/v1 EndpointSlices listing the Service's pods (spec rules EP-S-*,
// EP-ES-*), as kube-controller-manager's endpointslice-controller does.
//
// The controller loop (informers, queues, event handlers, stale-cache checks, trigger times)
// is a port of kube-controller-manager v1.37.2 pkg/controller/endpointslice. The reconciler
// that turns (Service, pods, existing slices) into creates, updates and deletes is the
// upstream staging library k8s.io/endpointslice v0.37.2 itself, used unchanged: it is a
// separate module (not k8s.io/kubernetes) whose only dependencies are api, apimachinery,
// client-go, component-base and klog. See README.md.
//
// Only internal/server and tests import this package.
package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	esreconciler "k8s.io/endpointslice"
	esmetrics "k8s.io/endpointslice/metrics"
	"k8s.io/endpointslice/topologycache"
	esutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
)

// ControllerName is the value of the endpointslice.kubernetes.io/managed-by label on the
// slices this controller manages (EP-ES-01).
const ControllerName = "endpointslice-controller.k8s.io"

// Defaults and limits of Config.
const (
	// DefaultMaxEndpointsPerSlice is kube-controller-manager's --max-endpoints-per-slice
	// default (EP-ES-05).
	DefaultMaxEndpointsPerSlice = 100
	// MaxMaxEndpointsPerSlice is the largest allowed Config.MaxEndpointsPerSlice.
	MaxMaxEndpointsPerSlice = 1000
)

const (
	// maxRetries bounds the retries of one Service (1s·2^n up to 1000s, as upstream).
	maxRetries = 15
	// endpointSliceChangeMinSyncDelay delays syncs caused by slice changes, to batch them.
	endpointSliceChangeMinSyncDelay = time.Second
	defaultSyncBackOff              = time.Second
	maxSyncBackOff                  = 1000 * time.Second
	topologyQueueItemKey            = "topologyQueueItemKey"
)

// Config configures the EndpointSlice controller. Its zero value (plus a Client) behaves as
// kube-controller-manager's defaults.
type Config struct {
	// Client reads and writes the API. Required.
	Client kubernetes.Interface `json:"-"`
	// Informers, if set, is the shared informer factory the controller registers its pod,
	// Service, Node and EndpointSlice informers with; Run starts it but does not shut it down
	// (its owner does). Nil means a private factory that Run starts and stops.
	Informers informers.SharedInformerFactory `json:"-"`
	// MaxEndpointsPerSlice is --max-endpoints-per-slice: 1…1000, 0 means
	// DefaultMaxEndpointsPerSlice.
	MaxEndpointsPerSlice int32 `json:"maxEndpointsPerSlice,omitempty"`
	// EndpointUpdatesBatchPeriod is --endpointslice-updates-batch-period: syncs caused by pod
	// changes are delayed by this long so that a burst of changes becomes one update. 0 (the
	// default) still merges changes that arrive while a Service waits in the queue.
	EndpointUpdatesBatchPeriod time.Duration `json:"endpointUpdatesBatchPeriod,omitempty"`
}

// AddFlags binds the tunables to flags with kube-controller-manager's names.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.Int32Var(&c.MaxEndpointsPerSlice, "max-endpoints-per-slice", c.MaxEndpointsPerSlice,
		"maximum number of endpoints in one EndpointSlice (1-1000; 0 means 100)")
	fs.DurationVar(&c.EndpointUpdatesBatchPeriod, "endpointslice-updates-batch-period", c.EndpointUpdatesBatchPeriod,
		"delay of EndpointSlice syncs caused by pod changes, to batch bursts")
}

// Validate checks the tunables; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxEndpointsPerSlice < 0 || c.MaxEndpointsPerSlice > MaxMaxEndpointsPerSlice {
		errs = append(errs, fmt.Errorf("--max-endpoints-per-slice must be between 1 and %d, got %d", MaxMaxEndpointsPerSlice, c.MaxEndpointsPerSlice))
	}
	if c.EndpointUpdatesBatchPeriod < 0 {
		errs = append(errs, fmt.Errorf("--endpointslice-updates-batch-period must not be negative, got %v", c.EndpointUpdatesBatchPeriod))
	}
	return errors.Join(errs...)
}

// Controller is the EndpointSlice controller. Create it with New; Run may be called once.
// Its methods are safe for concurrent use.
type Controller struct {
	client        kubernetes.Interface
	factory       informers.SharedInformerFactory
	ownFactory    bool
	broadcaster   record.EventBroadcaster
	recorder      record.EventRecorder
	batchPeriod   time.Duration
	synced        []cache.InformerSynced
	serviceLister corelisters.ServiceLister
	podLister     corelisters.PodLister
	nodeLister    corelisters.NodeLister
	sliceLister   discoverylisters.EndpointSliceLister

	tracker       *esutil.EndpointSliceTracker
	triggerTimes  *esutil.TriggerTimeTracker
	topologyCache *topologycache.TopologyCache
	reconciler    *esreconciler.Reconciler

	serviceQueue  workqueue.TypedRateLimitingInterface[string]
	podQueue      workqueue.TypedRateLimitingInterface[*esutil.PodProjectionKey]
	topologyQueue workqueue.TypedRateLimitingInterface[string]
}

// New returns an EndpointSlice controller; its informers start in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("endpointslice controller: Config.Client is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("endpointslice controller: %w", err)
	}
	maxPerSlice := cfg.MaxEndpointsPerSlice
	if maxPerSlice == 0 {
		maxPerSlice = DefaultMaxEndpointsPerSlice
	}
	esmetrics.RegisterMetrics()
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:      cfg.Client,
		factory:     cfg.Informers,
		broadcaster: broadcaster,
		recorder:    broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoint-slice-controller"}),
		batchPeriod: cfg.EndpointUpdatesBatchPeriod,
		// A higher backoff than the default controller rate limiter (1s vs 5ms): a sync can
		// mean many slice writes. 10 qps / 100 burst bounds the overall retry rate.
		serviceQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[string](defaultSyncBackOff, maxSyncBackOff),
				&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
			),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice"}),
		podQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[*esutil.PodProjectionKey](),
			workqueue.TypedRateLimitingQueueConfig[*esutil.PodProjectionKey]{Name: "endpoint_slice_pod"}),
		topologyQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice_topology"}),
		tracker:       esutil.NewEndpointSliceTracker(),
		triggerTimes:  esutil.NewTriggerTimeTracker(),
		topologyCache: topologycache.NewTopologyCache(),
	}
	if c.factory == nil {
		c.factory = informers.NewSharedInformerFactory(cfg.Client, 0)
		c.ownFactory = true
	}
	if err := c.addHandlers(); err != nil {
		return nil, fmt.Errorf("endpointslice controller: %w", err)
	}
	c.reconciler = esreconciler.NewReconciler(c.client, c.nodeLister, maxPerSlice, c.tracker,
		c.topologyCache, c.recorder, ControllerName,
		// PreferSameTrafficDistribution is GA and locked on in v1.37.
		esreconciler.WithPreferSameTrafficDistributionEnabled(true))
	return c, nil
}

func (c *Controller) addHandlers() error {
	svcInf := c.factory.Core().V1().Services()
	podInf := c.factory.Core().V1().Pods()
	nodeInf := c.factory.Core().V1().Nodes()
	sliceInf := c.factory.Discovery().V1().EndpointSlices()
	regs := []struct {
		what string
		inf  cache.SharedIndexInformer
		h    cache.ResourceEventHandler
	}{
		{"services", svcInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueService,
			UpdateFunc: func(_, cur any) { c.enqueueService(cur) },
			DeleteFunc: c.enqueueService,
		}},
		{"pods", podInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onPodUpdate(nil, obj) },
			UpdateFunc: c.onPodUpdate,
			DeleteFunc: func(obj any) { c.onPodUpdate(obj, nil) },
		}},
		{"nodes", nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.topologyQueue.Add(topologyQueueItemKey) },
			UpdateFunc: c.onNodeUpdate,
			DeleteFunc: func(any) { c.topologyQueue.Add(topologyQueueItemKey) },
		}},
		{"endpointslices", sliceInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onEndpointSliceAdd,
			UpdateFunc: c.onEndpointSliceUpdate,
			DeleteFunc: c.onEndpointSliceDelete,
		}},
	}
	for _, r := range regs {
		if _, err := r.inf.AddEventHandler(r.h); err != nil {
			return fmt.Errorf("watch %s: %w", r.what, err)
		}
		c.synced = append(c.synced, r.inf.HasSynced)
	}
	c.serviceLister = svcInf.Lister()
	c.podLister = podInf.Lister()
	c.nodeLister = nodeInf.Lister()
	c.sliceLister = sliceInf.Lister()
	return nil
}

// Run starts the informers, workers service and pod workers and one topology worker, and
// blocks until ctx is done and they have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	logger := klog.FromContext(ctx).WithName("endpointslice-controller")
	c.broadcaster.StartStructuredLogging(3)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	var wg sync.WaitGroup
	defer func() {
		c.serviceQueue.ShutDown()
		c.podQueue.ShutDown()
		c.topologyQueue.ShutDown()
		if c.ownFactory {
			c.factory.Shutdown()
		}
		wg.Wait()
		c.broadcaster.Shutdown()
	}()
	c.factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return
	}
	for range max(workers, 1) {
		wg.Go(func() {
			for c.processNextService(ctx, logger) {
			}
		})
		wg.Go(func() {
			for c.processNextPod(logger) {
			}
		})
	}
	wg.Go(func() {
		for c.processNextTopology(logger) {
		}
	})
	<-ctx.Done()
}

func (c *Controller) processNextService(ctx context.Context, logger klog.Logger) bool {
	key, quit := c.serviceQueue.Get()
	if quit {
		return false
	}
	defer c.serviceQueue.Done(key)
	err := c.syncService(ctx, logger, key)
	trackSync(err)
	switch {
	case err == nil:
		c.serviceQueue.Forget(key)
	case c.serviceQueue.NumRequeues(key) < maxRetries:
		logger.V(2).Info("Error syncing endpoint slices for service, retrying", "key", key, "err", err)
		c.serviceQueue.AddRateLimited(key)
	default:
		logger.Error(err, "Retry budget exceeded, dropping service out of the queue", "key", key)
		c.serviceQueue.Forget(key)
	}
	return true
}

// errStaleCache reports that the EndpointSlice informer has not yet seen this controller's
// own latest writes; the Service is retried with backoff.
var errStaleCache = errors.New("EndpointSlice informer cache is out of date")

// syncService reconciles the slices of one Service (upstream Controller.syncService).
func (c *Controller) syncService(ctx context.Context, logger klog.Logger, key string) error {
	start := time.Now()
	defer func() {
		logger.V(4).Info("Finished syncing service endpoint slices", "key", key, "elapsed", time.Since(start))
	}()
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	service, err := c.serviceLister.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// The slices are owned by the Service: the garbage collector deletes them.
		c.triggerTimes.DeleteService(namespace, name)
		c.reconciler.DeleteService(namespace, name)
		c.tracker.DeleteService(namespace, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	// EP-S-01: ExternalName Services and Services without a selector get no slices from us.
	if service.Spec.Type == corev1.ServiceTypeExternalName || service.Spec.Selector == nil {
		return nil
	}
	pods, err := c.podLister.Pods(namespace).List(labels.Set(service.Spec.Selector).AsSelectorPreValidated())
	if err != nil {
		return fmt.Errorf("list pods for service %s: %w", key, err)
	}
	// EP-ES-08: only slices labelled for this Service and managed by this controller.
	sliceSelector := labels.Set{
		discovery.LabelServiceName: service.Name,
		discovery.LabelManagedBy:   ControllerName,
	}.AsSelectorPreValidated()
	slices, err := c.sliceLister.EndpointSlices(namespace).List(sliceSelector)
	if err != nil {
		return fmt.Errorf("list endpoint slices for service %s: %w", key, err)
	}
	slices = dropPendingDeletion(slices)
	if c.tracker.StaleSlices(service, slices) {
		return errStaleCache
	}
	// Computed before reconciling so that the tracker's state advances even when the sync
	// turns out to be a no-op (EP-S-06).
	triggerTime := c.triggerTimes.ComputeEndpointLastChangeTriggerTime(namespace, service, pods)
	if err := c.reconciler.Reconcile(logger, service, pods, slices, triggerTime); err != nil {
		c.recorder.Eventf(service, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
			"Error updating Endpoint Slices for Service %s/%s: %v", namespace, name, err)
		return fmt.Errorf("reconcile endpoint slices of service %s: %w", key, err)
	}
	return nil
}

func (c *Controller) processNextPod(logger klog.Logger) bool {
	key, quit := c.podQueue.Get()
	if quit {
		return false
	}
	defer c.podQueue.Done(key)
	services, err := esutil.GetServicesToUpdate(c.serviceLister, key)
	switch {
	case err == nil:
		c.podQueue.Forget(key)
		for svc := range services {
			c.serviceQueue.AddAfter(svc, c.batchPeriod)
		}
	case c.podQueue.NumRequeues(key) < maxRetries:
		c.podQueue.AddRateLimited(key)
	default:
		logger.Error(err, "Dropping pod out of the queue", "namespace", key.Namespace)
		c.podQueue.Forget(key)
	}
	return true
}

func (c *Controller) processNextTopology(logger klog.Logger) bool {
	key, quit := c.topologyQueue.Get()
	if quit {
		return false
	}
	defer c.topologyQueue.Done(key)
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		logger.Error(err, "Error listing Nodes")
		return true
	}
	c.topologyCache.SetNodes(logger, nodes)
	for _, svc := range c.topologyCache.GetOverloadedServices() {
		c.serviceQueue.Add(svc)
	}
	return true
}

// trackSync counts a sync result in the upstream endpointslice_syncs metric.
func trackSync(err error) {
	result := "success"
	switch {
	case errors.Is(err, errStaleCache):
		result = "stale"
	case err != nil:
		result = "error"
	}
	esmetrics.EndpointSliceSyncs.WithLabelValues(result).Inc()
}

func dropPendingDeletion(slices []*discovery.EndpointSlice) []*discovery.EndpointSlice {
	n := 0
	for _, s := range slices {
		if s.DeletionTimestamp == nil {
			slices[n] = s
			n++
		}
	}
	return slices[:n]
}
