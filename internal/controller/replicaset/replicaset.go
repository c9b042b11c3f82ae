// Package replicaset is the ReplicaSet and ReplicationController controller, a port of
// kube-controller-manager's pkg/controller/replicaset (which also serves
// ReplicationControllers through a conversion layer, as here): it keeps spec.replicas active
// pods per object, creating pods from the template (generateName "<name>-", a controller
// ownerReference with blockOwnerDeletion) and deleting the least valuable pods first
// (unscheduled, pending, not ready, ... — upstream's ranking), adopts matching orphans and
// releases pods that stop matching, and writes status replicas, fullyLabeledReplicas,
// readyReplicas, availableReplicas, terminatingReplicas (ReplicaSets only), the
// ReplicaFailure condition and observedGeneration.
//
// Only internal/server, other controllers (ClaimObject, IsPodAvailable) and tests import it.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// DefaultBurstReplicas is the default of Config.BurstReplicas (upstream burstReplicas).
const DefaultBurstReplicas = 500

// Config configures a Controller.
type Config struct {
	// Client talks to the API server. Required.
	Client kubernetes.Interface
	// Kind is the workload kind to manage; "" means KindReplicaSet.
	Kind Kind
	// Informers is a shared informer factory; nil makes the controller create (and shut
	// down) its own. A shared factory is started by Run but shut down by its owner.
	Informers informers.SharedInformerFactory
	// BurstReplicas caps the pods one sync creates or deletes; 0 means DefaultBurstReplicas.
	BurstReplicas int
	// Clock defaults to the real clock; it drives availability (minReadySeconds) checks.
	Clock clock.WithTicker
}

// Controller manages the pods of ReplicaSets or of ReplicationControllers. Create it with
// New; Run may be called once.
type Controller struct {
	client      kubernetes.Interface
	kind        workloads
	factory     informers.SharedInformerFactory
	ownFactory  bool
	podLister   corelisters.PodLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	exp         *expectations
	burst       int
	clock       clock.WithTicker
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

// New returns a controller; its informers start in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("replicaset controller: Config.Client is required")
	}
	kind := cfg.Kind
	if kind == "" {
		kind = KindReplicaSet
	}
	if kind != KindReplicaSet && kind != KindReplicationController {
		return nil, fmt.Errorf("replicaset controller: unknown Config.Kind %q", kind)
	}
	c := &Controller{client: cfg.Client, factory: cfg.Informers, burst: cfg.BurstReplicas, clock: cfg.Clock}
	if c.factory == nil {
		c.factory, c.ownFactory = informers.NewSharedInformerFactory(cfg.Client, 0), true
	}
	if c.burst <= 0 {
		c.burst = DefaultBurstReplicas
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	name := map[Kind]string{KindReplicaSet: "replicaset", KindReplicationController: "replicationmanager"}[kind]
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name, Clock: c.clock})
	c.exp = newExpectations(c.clock)
	c.kind = newWorkloads(kind, cfg.Client, c.factory)
	c.broadcaster = record.NewBroadcaster()
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: map[Kind]string{
		KindReplicaSet: "replicaset-controller", KindReplicationController: "replication-controller"}[kind]})

	if _, err := c.kind.informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueue(c.kind.toRS(obj)) },
		UpdateFunc: c.updateRS,
		DeleteFunc: c.deleteRS,
	}); err != nil {
		return nil, fmt.Errorf("%s controller: watch %s: %w", name, kind, err)
	}
	pods := c.factory.Core().V1().Pods()
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("%s controller: watch pods: %w", name, err)
	}
	c.podLister = pods.Lister()
	c.synced = []cache.InformerSynced{c.kind.informer().HasSynced, pods.Informer().HasSynced}
	return c, nil
}

// Run starts the informers and workers goroutines, and blocks until ctx is done and they
// have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer func() {
		c.queue.ShutDown()
		if c.ownFactory {
			c.factory.Shutdown()
		}
		wg.Wait()
		c.broadcaster.Shutdown()
	}()
	c.factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync(c.kind.gvk().Kind, ctx.Done(), c.synced...) {
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
	if err := c.sync(ctx, key); err != nil {
		klog.FromContext(ctx).V(2).Info("sync failed", "kind", c.kind.gvk().Kind, "key", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func keyOf(obj metav1.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

func (c *Controller) enqueue(rs *appsv1.ReplicaSet) {
	if rs != nil {
		c.queue.Add(keyOf(rs))
	}
}

func (c *Controller) updateRS(old, cur any) {
	oldRS, curRS := c.kind.toRS(old), c.kind.toRS(cur)
	if oldRS != nil && curRS != nil && oldRS.UID != curRS.UID {
		c.deleteRS(cache.DeletedFinalStateUnknown{Key: keyOf(oldRS), Obj: old})
	}
	c.enqueue(curRS)
}

func (c *Controller) deleteRS(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rs := c.kind.toRS(obj)
	if rs == nil {
		return
	}
	c.exp.forget(keyOf(rs))
	c.enqueue(rs)
}

// resolveControllerRef returns the object ref points to, if it is of our kind and UID.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref.Kind != c.kind.gvk().Kind {
		return nil
	}
	rs, err := c.kind.get(namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// enqueueMatching queues every object whose selector matches the orphan pod.
func (c *Controller) enqueueMatching(pod *corev1.Pod) {
	all, err := c.kind.list(pod.Namespace)
	if err != nil {
		return
	}
	for _, rs := range all {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		c.enqueue(rs)
	}
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// A pod already being deleted when the informer first sees it (e.g. on restart).
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if rs := c.resolveControllerRef(pod.Namespace, ref); rs != nil {
			c.exp.creationObserved(keyOf(rs))
			c.enqueue(rs)
		}
		return
	}
	c.enqueueMatching(pod)
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, curPod := old.(*corev1.Pod), cur.(*corev1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return
	}
	labelChanged := !reflect.DeepEqual(oldPod.Labels, curPod.Labels)
	if curPod.DeletionTimestamp != nil {
		c.deletePod(curPod)
		if labelChanged {
			c.deletePod(oldPod)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(curPod), metav1.GetControllerOfNoCopy(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		c.enqueue(c.resolveControllerRef(oldPod.Namespace, oldRef))
	}
	if curRef != nil {
		rs := c.resolveControllerRef(curPod.Namespace, curRef)
		if rs == nil {
			return
		}
		c.enqueue(rs)
		if !IsPodReady(oldPod) && IsPodReady(curPod) && rs.Spec.MinReadySeconds > 0 {
			c.queue.AddAfter(keyOf(rs), time.Duration(rs.Spec.MinReadySeconds)*time.Second)
		}
		return
	}
	if labelChanged || refChanged {
		c.enqueueMatching(curPod)
	}
}

func (c *Controller) deletePod(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return
	}
	if rs := c.resolveControllerRef(pod.Namespace, ref); rs != nil {
		c.exp.deletionObserved(keyOf(rs), keyOf(pod))
		c.enqueue(rs)
	}
}
