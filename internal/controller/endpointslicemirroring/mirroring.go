// Package endpointslicemirroring is the EndpointSlice mirroring controller: the Endpoints
// object of a Service without a selector (written by hand, e.g. the book's
// external-service with 11.11.11.11 and 22.22.22.22) is mirrored into EndpointSlices
// managed by endpointslicemirroring-controller.k8s.io, so that consumers that read only
// slices (kube-proxy, DNS) see it (spec rules EP-M-*). It is a port of
// kube-controller-manager v1.37.2 pkg/controller/endpointslicemirroring; the slice tracker
// and endpoint set come from the upstream staging library k8s.io/endpointslice, canonical
// subsets from internal/controller/subsets.
//
// Only internal/server and tests import this package.
package endpointslicemirroring

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
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	esutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
)

// ControllerName is the value of the endpointslice.kubernetes.io/managed-by label on the
// slices this controller writes (EP-M-02).
const ControllerName = "endpointslicemirroring-controller.k8s.io"

// DefaultMaxEndpointsPerSubset is --mirroring-max-endpoints-per-subset's default (EP-M-03).
const DefaultMaxEndpointsPerSubset = 1000

const (
	maxRetries         = 15
	defaultSyncBackOff = time.Second
	maxSyncBackOff     = 100 * time.Second
)

// Config configures the mirroring controller. Its zero value (plus a Client) behaves as
// kube-controller-manager's defaults.
type Config struct {
	// Client reads and writes the API. Required.
	Client kubernetes.Interface `json:"-"`
	// Informers, if set, is the shared informer factory the controller registers its
	// Endpoints, EndpointSlice and Service informers with; Run starts it but does not shut it
	// down. Nil means a private factory that Run starts and stops.
	Informers informers.SharedInformerFactory `json:"-"`
	// MaxEndpointsPerSubset is --mirroring-max-endpoints-per-subset: at most this many
	// addresses of one subset are mirrored (1…1000; 0 means DefaultMaxEndpointsPerSubset).
	MaxEndpointsPerSubset int32 `json:"maxEndpointsPerSubset,omitempty"`
	// EndpointUpdatesBatchPeriod is --mirroring-endpointslice-updates-batch-period: syncs
	// caused by slice changes are delayed by this long; 0 (the default) means no delay.
	EndpointUpdatesBatchPeriod time.Duration `json:"endpointUpdatesBatchPeriod,omitempty"`
}

// AddFlags binds the tunables to flags with kube-controller-manager's names.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.Int32Var(&c.MaxEndpointsPerSubset, "mirroring-max-endpoints-per-subset", c.MaxEndpointsPerSubset,
		"maximum number of addresses of one Endpoints subset mirrored to EndpointSlices (1-1000; 0 means 1000)")
	fs.DurationVar(&c.EndpointUpdatesBatchPeriod, "mirroring-endpointslice-updates-batch-period", c.EndpointUpdatesBatchPeriod,
		"delay of mirroring syncs caused by EndpointSlice changes, to batch bursts")
}

// Validate checks the tunables; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxEndpointsPerSubset < 0 || c.MaxEndpointsPerSubset > DefaultMaxEndpointsPerSubset {
		errs = append(errs, fmt.Errorf("--mirroring-max-endpoints-per-subset must be between 1 and %d, got %d", DefaultMaxEndpointsPerSubset, c.MaxEndpointsPerSubset))
	}
	if c.EndpointUpdatesBatchPeriod < 0 {
		errs = append(errs, fmt.Errorf("--mirroring-endpointslice-updates-batch-period must not be negative, got %v", c.EndpointUpdatesBatchPeriod))
	}
	return errors.Join(errs...)
}

// Controller is the mirroring controller. Create it with New; Run may be called once. Its
// methods are safe for concurrent use.
type Controller struct {
	client          kubernetes.Interface
	factory         informers.SharedInformerFactory
	ownFactory      bool
	broadcaster     record.EventBroadcaster
	batchPeriod     time.Duration
	synced          []cache.InformerSynced
	endpointsLister corelisters.EndpointsLister
	sliceLister     discoverylisters.EndpointSliceLister
	serviceLister   corelisters.ServiceLister
	tracker         *esutil.EndpointSliceTracker
	reconciler      *reconciler
	queue           workqueue.TypedRateLimitingInterface[string]
}

// New returns a mirroring controller; its informers start in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("endpointslice mirroring controller: Config.Client is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("endpointslice mirroring controller: %w", err)
	}
	maxPerSubset := cfg.MaxEndpointsPerSubset
	if maxPerSubset == 0 {
		maxPerSubset = DefaultMaxEndpointsPerSubset
	}
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:      cfg.Client,
		factory:     cfg.Informers,
		broadcaster: broadcaster,
		batchPeriod: cfg.EndpointUpdatesBatchPeriod,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[string](defaultSyncBackOff, maxSyncBackOff),
				&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
			),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice_mirroring"}),
		tracker: esutil.NewEndpointSliceTracker(),
	}
	c.reconciler = &reconciler{
		client:       cfg.Client,
		maxPerSubset: maxPerSubset,
		tracker:      c.tracker,
		recorder:     broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoint-slice-mirroring-controller"}),
	}
	if c.factory == nil {
		c.factory = informers.NewSharedInformerFactory(cfg.Client, 0)
		c.ownFactory = true
	}
	epInf := c.factory.Core().V1().Endpoints()
	sliceInf := c.factory.Discovery().V1().EndpointSlices()
	svcInf := c.factory.Core().V1().Services()
	regs := []struct {
		what string
		inf  cache.SharedIndexInformer
		h    cache.ResourceEventHandler
	}{
		{"endpoints", epInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onEndpointsAdd,
			UpdateFunc: c.onEndpointsUpdate,
			DeleteFunc: c.onEndpointsDelete,
		}},
		{"endpointslices", sliceInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onEndpointSliceAdd,
			UpdateFunc: c.onEndpointSliceUpdate,
			DeleteFunc: c.onEndpointSliceDelete,
		}},
		{"services", svcInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onServiceAdd,
			UpdateFunc: c.onServiceUpdate,
			DeleteFunc: c.onServiceDelete,
		}},
	}
	for _, r := range regs {
		if _, err := r.inf.AddEventHandler(r.h); err != nil {
			return nil, fmt.Errorf("endpointslice mirroring controller: watch %s: %w", r.what, err)
		}
		c.synced = append(c.synced, r.inf.HasSynced)
	}
	c.endpointsLister, c.sliceLister, c.serviceLister = epInf.Lister(), sliceInf.Lister(), svcInf.Lister()
	return c, nil
}

// Run starts the informers and workers workers, and blocks until ctx is done and they have
// stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	logger := klog.FromContext(ctx).WithName("endpointslice-mirroring-controller")
	ctx = klog.NewContext(ctx, logger)
	c.broadcaster.StartStructuredLogging(3)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	var wg sync.WaitGroup
	defer func() {
		c.queue.ShutDown()
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
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	err := c.syncEndpoints(ctx, key)
	switch {
	case err == nil:
		c.queue.Forget(key)
	case c.queue.NumRequeues(key) < maxRetries:
		klog.FromContext(ctx).V(2).Info("Error mirroring EndpointSlices for Endpoints, retrying", "key", key, "err", err)
		c.queue.AddRateLimited(key)
	default:
		klog.FromContext(ctx).Error(err, "Retry budget exceeded, dropping Endpoints out of the queue", "key", key)
		c.queue.Forget(key)
	}
	return true
}

// errStaleCache reports that the EndpointSlice informer has not yet seen this controller's
// own latest writes.
var errStaleCache = errors.New("EndpointSlice informer cache is out of date")

// syncEndpoints mirrors one Endpoints object, or deletes its mirrored slices when it must not
// be mirrored (EP-M-01).
func (c *Controller) syncEndpoints(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	endpoints, err := c.endpointsLister.Endpoints(namespace).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !shouldMirror(endpoints)) {
		return c.deleteMirroredSlices(ctx, namespace, name)
	}
	if err != nil {
		return fmt.Errorf("get endpoints %s: %w", key, err)
	}
	svc, err := c.serviceLister.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && svc.Spec.Selector != nil) {
		return c.deleteMirroredSlices(ctx, namespace, name)
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	slices, err := c.mirroredSlices(namespace, name)
	if err != nil {
		return err
	}
	if c.tracker.StaleSlices(svc, slices) {
		return errStaleCache
	}
	return c.reconciler.reconcile(ctx, endpoints, slices)
}

func (c *Controller) mirroredSlices(namespace, name string) ([]*discovery.EndpointSlice, error) {
	sel := labels.Set{discovery.LabelServiceName: name, discovery.LabelManagedBy: ControllerName}.AsSelectorPreValidated()
	slices, err := c.sliceLister.EndpointSlices(namespace).List(sel)
	if err != nil {
		return nil, fmt.Errorf("list mirrored endpoint slices of %s/%s: %w", namespace, name, err)
	}
	return slices, nil
}

func (c *Controller) deleteMirroredSlices(ctx context.Context, namespace, name string) error {
	c.tracker.DeleteService(namespace, name)
	slices, err := c.mirroredSlices(namespace, name)
	if err != nil {
		return err
	}
	return c.reconciler.deleteSlices(ctx, namespace, name, slices)
}

// shouldMirror is false for Endpoints labelled skip-mirror=true and for leader-election
// records.
func shouldMirror(ep *corev1.Endpoints) bool {
	if ep == nil || ep.Labels[discovery.LabelSkipMirror] == "true" {
		return false
	}
	_, leader := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]
	return !leader
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		runtime.HandleError(err)
		return
	}
	c.queue.Add(key)
}
