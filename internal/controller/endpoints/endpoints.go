// Package endpoints is the (legacy) Endpoints controller: for every Service with a selector
// it keeps one core/v1 Endpoints object of the same name listing the Service's pods as
// addresses and notReadyAddresses (spec rules EP-S-*, EP-E-*), and deletes Endpoints it
// manages whose Service is gone. It is a port of kube-controller-manager v1.37.2
// pkg/controller/endpoint; pod selection, targetPort resolution, trigger times and the pod →
// Service mapping come from the upstream staging library k8s.io/endpointslice, canonical
// subsets from internal/controller/subsets.
//
// Only internal/server and tests import this package.
package endpoints

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	esutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
)

const (
	// ControllerName is the value of LabelManagedBy on the Endpoints this controller writes.
	ControllerName = "endpoint-controller"
	// LabelManagedBy marks Endpoints written by this controller.
	LabelManagedBy = "endpoints.kubernetes.io/managed-by"
	// MaxCapacity is the most addresses (ready + not ready) one Endpoints object holds; more
	// are truncated and annotated (EP-E-07).
	MaxCapacity = 1000
	// truncated is the value of the endpoints.kubernetes.io/over-capacity annotation.
	truncated = "truncated"
	// maxRetries bounds the retries of one Service (5ms·2^n, as upstream).
	maxRetries = 15
)

// Config configures the Endpoints controller. Its zero value (plus a Client) behaves as
// kube-controller-manager's defaults.
type Config struct {
	// Client reads and writes the API. Required.
	Client kubernetes.Interface `json:"-"`
	// Informers, if set, is the shared informer factory the controller registers its pod,
	// Service and Endpoints informers with; Run starts it but does not shut it down. Nil
	// means a private factory that Run starts and stops.
	Informers informers.SharedInformerFactory `json:"-"`
	// EndpointUpdatesBatchPeriod is --endpoint-updates-batch-period: syncs caused by pod
	// changes are delayed by this long to batch bursts; 0 (the default) means no delay.
	EndpointUpdatesBatchPeriod time.Duration `json:"endpointUpdatesBatchPeriod,omitempty"`
}

// AddFlags binds the tunables to flags with kube-controller-manager's names.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.EndpointUpdatesBatchPeriod, "endpoint-updates-batch-period", c.EndpointUpdatesBatchPeriod,
		"delay of Endpoints syncs caused by pod changes, to batch bursts")
}

// Validate checks the tunables; errors name the flag.
func (c *Config) Validate() error {
	if c.EndpointUpdatesBatchPeriod < 0 {
		return fmt.Errorf("--endpoint-updates-batch-period must not be negative, got %v", c.EndpointUpdatesBatchPeriod)
	}
	return nil
}

// Controller is the Endpoints controller. Create it with New; Run may be called once. Its
// methods are safe for concurrent use.
type Controller struct {
	client          kubernetes.Interface
	factory         informers.SharedInformerFactory
	ownFactory      bool
	broadcaster     record.EventBroadcaster
	recorder        record.EventRecorder
	batchPeriod     time.Duration
	synced          []cache.InformerSynced
	serviceLister   corelisters.ServiceLister
	podLister       corelisters.PodLister
	endpointsLister corelisters.EndpointsLister

	stale        *staleTracker
	triggerTimes *esutil.TriggerTimeTracker
	queue        workqueue.TypedRateLimitingInterface[string]
	podQueue     workqueue.TypedRateLimitingInterface[*esutil.PodProjectionKey]
}

// New returns an Endpoints controller; its informers start in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("endpoints controller: Config.Client is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("endpoints controller: %w", err)
	}
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		client:      cfg.Client,
		factory:     cfg.Informers,
		broadcaster: broadcaster,
		recorder:    broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: ControllerName}),
		batchPeriod: cfg.EndpointUpdatesBatchPeriod,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint"}),
		podQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[*esutil.PodProjectionKey](),
			workqueue.TypedRateLimitingQueueConfig[*esutil.PodProjectionKey]{Name: "endpoint_pod"}),
		stale:        newStaleTracker(),
		triggerTimes: esutil.NewTriggerTimeTracker(),
	}
	if c.factory == nil {
		c.factory = informers.NewSharedInformerFactory(cfg.Client, 0)
		c.ownFactory = true
	}
	svcInf := c.factory.Core().V1().Services()
	podInf := c.factory.Core().V1().Pods()
	epInf := c.factory.Core().V1().Endpoints()
	regs := []struct {
		what string
		inf  cache.SharedIndexInformer
		h    cache.ResourceEventHandler
	}{
		{"services", svcInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, cur any) { c.enqueue(cur) },
			DeleteFunc: c.enqueue,
		}},
		{"pods", podInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onPodUpdate(nil, obj) },
			UpdateFunc: c.onPodUpdate,
			DeleteFunc: func(obj any) { c.onPodUpdate(obj, nil) },
		}},
		// A deleted Endpoints object of a live Service is recreated.
		{"endpoints", epInf.Informer(), cache.ResourceEventHandlerFuncs{DeleteFunc: c.enqueue}},
	}
	for _, r := range regs {
		if _, err := r.inf.AddEventHandler(r.h); err != nil {
			return nil, fmt.Errorf("endpoints controller: watch %s: %w", r.what, err)
		}
		c.synced = append(c.synced, r.inf.HasSynced)
	}
	c.serviceLister, c.podLister, c.endpointsLister = svcInf.Lister(), podInf.Lister(), epInf.Lister()
	return c, nil
}

// Run starts the informers and workers service and pod workers, queues every existing
// Endpoints object once (orphan cleanup, EP-E-09), and blocks until ctx is done and the
// workers have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	logger := klog.FromContext(ctx).WithName("endpoints-controller")
	ctx = klog.NewContext(ctx, logger)
	c.broadcaster.StartStructuredLogging(3)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	var wg sync.WaitGroup
	defer func() {
		c.queue.ShutDown()
		c.podQueue.ShutDown()
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
		wg.Go(func() {
			for c.processNextPod(logger) {
			}
		})
	}
	wg.Go(func() { c.checkLeftoverEndpoints(logger) })
	<-ctx.Done()
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		runtime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

func (c *Controller) onPodUpdate(old, cur any) {
	if key := esutil.GetPodUpdateProjectionKey(old, cur); key != nil {
		c.podQueue.Add(key)
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	err := c.syncService(ctx, key)
	switch {
	case err == nil:
		c.queue.Forget(key)
	case c.queue.NumRequeues(key) < maxRetries:
		klog.FromContext(ctx).V(2).Info("Error syncing endpoints, retrying", "key", key, "err", err)
		c.queue.AddRateLimited(key)
	default:
		klog.FromContext(ctx).Error(err, "Dropping service out of the queue", "key", key)
		c.queue.Forget(key)
	}
	return true
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
			c.queue.AddAfter(svc, c.batchPeriod)
		}
	case c.podQueue.NumRequeues(key) < maxRetries:
		c.podQueue.AddRateLimited(key)
	default:
		logger.Error(err, "Dropping pod out of the queue", "namespace", key.Namespace)
		c.podQueue.Forget(key)
	}
	return true
}

// checkLeftoverEndpoints queues every Endpoints object once, so that those whose Service is
// gone (deleted while the controller was down) are deleted. Leader-election records are
// skipped.
func (c *Controller) checkLeftoverEndpoints(logger klog.Logger) {
	list, err := c.endpointsLister.List(labels.Everything())
	if err != nil {
		logger.Error(err, "Unable to list endpoints; orphaned endpoints will not be cleaned up")
		return
	}
	for _, ep := range list {
		if _, ok := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]; ok {
			continue
		}
		c.enqueue(ep)
	}
}

// syncService writes the Endpoints of one Service, or deletes it when the Service is gone.
func (c *Controller) syncService(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	service, err := c.serviceLister.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// EP-E-09: the Service is gone, so is its Endpoints object.
		err = c.client.CoreV1().Endpoints(namespace).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		c.triggerTimes.DeleteService(namespace, name)
		c.stale.delete(namespace, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	if service.Spec.Type == corev1.ServiceTypeExternalName || service.Spec.Selector == nil {
		return nil
	}
	pods, err := c.podLister.Pods(namespace).List(labels.Set(service.Spec.Selector).AsSelectorPreValidated())
	if err != nil {
		return fmt.Errorf("list pods for service %s: %w", key, err)
	}
	triggerTime := c.triggerTimes.ComputeEndpointLastChangeTriggerTime(namespace, service, pods)
	subsets, ready, notReady := desiredSubsets(klog.FromContext(ctx), service, pods)

	current, err := c.endpointsLister.Endpoints(namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		current = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: service.Labels}}
	case err != nil:
		return fmt.Errorf("get endpoints %s: %w", key, err)
	case c.stale.isStale(current):
		return fmt.Errorf("endpoints informer cache is out of date, resource version %s already processed for endpoints %s", current.ResourceVersion, key)
	}
	create := current.ResourceVersion == ""
	if !create && upToDate(current, service, subsets) {
		return nil
	}
	desired := buildEndpoints(current, service, subsets, triggerTime)
	klog.FromContext(ctx).V(4).Info("Update endpoints", "service", klog.KObj(service), "readyEndpoints", ready, "notreadyEndpoints", notReady)
	return c.write(ctx, service, current, desired, create)
}

// write creates or updates the Endpoints object.
func (c *Controller) write(ctx context.Context, service *corev1.Service, current, desired *corev1.Endpoints, create bool) error {
	var updated *corev1.Endpoints
	var err error
	if create {
		_, err = c.client.CoreV1().Endpoints(service.Namespace).Create(ctx, desired, metav1.CreateOptions{})
	} else {
		updated, err = c.client.CoreV1().Endpoints(service.Namespace).Update(ctx, desired, metav1.UpdateOptions{})
	}
	if err != nil {
		// A terminating namespace refuses creates for good: drop the item.
		if create && apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		verb := map[bool]string{true: "create", false: "update"}[create]
		c.recorder.Eventf(desired, corev1.EventTypeWarning, "FailedTo"+map[bool]string{true: "Create", false: "Update"}[create]+"Endpoint",
			"Failed to %s endpoint %s/%s: %v", verb, service.Namespace, service.Name, err)
		return fmt.Errorf("%s endpoints %s/%s: %w", verb, service.Namespace, service.Name, err)
	}
	// Until the informer shows a newer version, the old one must not be acted on again.
	if updated != nil && updated.ResourceVersion != current.ResourceVersion {
		c.stale.markStale(current)
	}
	return nil
}
