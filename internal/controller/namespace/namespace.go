// Package namespace is the namespace controller: when a namespace is being deleted it deletes
// every namespaced object in it, waits until none remain, keeps the namespace's deletion
// status conditions as kube-controller-manager does, and finally removes the "kubernetes"
// finalizer through /finalize so that the API server deletes the namespace.
//
// Pods bound to a node are deleted gracefully. When their node is missing or not Ready (no
// agent will finish them), the controller force-deletes (gracePeriodSeconds=0) those still
// present ForceDeletePodsAfter past their deletionTimestamp. See README.md. Only
// internal/server and tests import it.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"kubesvc/internal/resource"
)

// DefaultForceDeletePodsAfter is the default of Config.ForceDeletePodsAfter.
const DefaultForceDeletePodsAfter = 15 * time.Second

// Config configures the namespace controller.
type Config struct {
	// Client reads namespaces and updates their status and spec.finalizers. Required.
	Client kubernetes.Interface
	// Metadata lists and deletes the content of every namespaced resource. Required.
	Metadata metadata.Interface
	// Resources are the resources emptied from a namespace being deleted. Nil means every
	// namespaced resource of resource.All that supports list and delete.
	Resources []*resource.Info
	// ForceDeletePodsAfter is how long a pod whose node is missing or not Ready may stay past
	// its deletionTimestamp (the end of its grace period) before the controller deletes it
	// with gracePeriodSeconds=0; 0 means DefaultForceDeletePodsAfter, negative means at once.
	// Pods on a Ready node are always left to its agent.
	ForceDeletePodsAfter time.Duration
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
}

// Controller is the namespace controller. Create it with New; Run may be called once.
type Controller struct {
	client     kubernetes.Interface
	metadata   metadata.Interface
	resources  []*resource.Info
	forceAfter time.Duration
	clock      clock.PassiveClock
	factory    informers.SharedInformerFactory
	synced     cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
}

// New returns a namespace controller; its informer starts in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Metadata == nil {
		return nil, errors.New("namespace controller: Config.Client and Config.Metadata are required")
	}
	res := cfg.Resources
	if res == nil {
		for _, r := range resource.All {
			if r.Namespaced && slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "delete") {
				res = append(res, r)
			}
		}
	}
	c := &Controller{
		client:     cfg.Client,
		metadata:   cfg.Metadata,
		resources:  res,
		forceAfter: cfg.ForceDeletePodsAfter,
		clock:      cfg.Clock,
		factory:    informers.NewSharedInformerFactory(cfg.Client, 0),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
	}
	switch {
	case c.forceAfter == 0:
		c.forceAfter = DefaultForceDeletePodsAfter
	case c.forceAfter < 0:
		c.forceAfter = 0
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	inf := c.factory.Core().V1().Namespaces().Informer()
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
	}); err != nil {
		return nil, fmt.Errorf("namespace controller: watch namespaces: %w", err)
	}
	c.synced = inf.HasSynced
	return c, nil
}

// Run starts the informer and workers goroutines, and blocks until ctx is done and they
// have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	defer func() {
		c.queue.ShutDown()
		c.factory.Shutdown()
		wg.Wait()
	}()
	c.factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync("namespace", ctx.Done(), c.synced) {
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
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	err := c.sync(ctx, name)
	var remaining *ContentRemainingError
	switch {
	case err == nil:
		c.queue.Forget(name)
	case errors.As(err, &remaining):
		klog.FromContext(ctx).V(4).Info("namespace controller: content remains", "namespace", name, "err", err)
		if remaining.RetryAfter > 0 {
			c.queue.AddAfter(name, remaining.RetryAfter)
		}
		c.queue.AddRateLimited(name)
	default:
		klog.FromContext(ctx).Error(err, "namespace controller: sync failed", "namespace", name)
		c.queue.AddRateLimited(name)
	}
	return true
}

// ContentRemainingError reports that objects remain in a namespace being deleted; the
// namespace is synced again with backoff, and at the latest after RetryAfter when positive
// (the next pod force-deletion deadline).
type ContentRemainingError struct {
	Remaining  int
	RetryAfter time.Duration
}

func (e *ContentRemainingError) Error() string {
	return fmt.Sprintf("%d objects remain in the namespace", e.Remaining)
}

// errGone reports that the namespace was deleted (or replaced) while being synced.
var errGone = errors.New("namespace is gone")

// sync drives one namespace being deleted towards removal (upstream
// namespacedResourcesDeleter.Delete).
func (c *Controller) sync(ctx context.Context, name string) error {
	err := c.syncNamespace(ctx, name)
	if errors.Is(err, errGone) {
		return nil
	}
	return err
}

func (c *Controller) syncNamespace(ctx context.Context, name string) error {
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil {
		return nil
	}
	if ns.Status.Phase != corev1.NamespaceTerminating {
		ns, err = c.updateStatus(ctx, ns, func(ns *corev1.Namespace) bool {
			ns.Status.Phase = corev1.NamespaceTerminating
			return true
		})
		if err != nil {
			return err
		}
	}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	content := c.deleteAllContent(ctx, name)
	if _, err := c.updateStatus(ctx, ns, func(ns *corev1.Namespace) bool {
		return updateConditions(&ns.Status, content.conditions(), c.clock.Now())
	}); err != nil {
		return err
	}
	if err := errors.Join(content.errs...); err != nil {
		return err
	}
	if n := content.total(); n > 0 {
		return &ContentRemainingError{Remaining: n, RetryAfter: content.retryAfter}
	}
	klog.FromContext(ctx).V(2).Info("namespace controller: namespace empty, finalizing", "namespace", name)
	return c.finalize(ctx, ns)
}

// latest reads the namespace again; errGone if it no longer exists with the same UID.
func (c *Controller) latest(ctx context.Context, ns *corev1.Namespace) (*corev1.Namespace, error) {
	cur, err := c.client.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && cur.UID != ns.UID) {
		return nil, errGone
	}
	if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", ns.Name, err)
	}
	return cur, nil
}

// write runs one write of the namespace, retrying on conflicts with the latest version. A
// NotFound from the write counts as errGone only when the namespace is really gone (the
// write's 404 could also mean the subresource is not served).
func (c *Controller) write(ctx context.Context, ns *corev1.Namespace, what string, do func(cur *corev1.Namespace) error) error {
	cur := ns.DeepCopy()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		err := do(cur)
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			latest, lerr := c.latest(ctx, ns)
			if lerr != nil {
				return lerr
			}
			cur = latest
		}
		return err
	})
	if err != nil && !errors.Is(err, errGone) {
		return fmt.Errorf("%s of namespace %s: %w", what, ns.Name, err)
	}
	return err
}

// updateStatus applies change to the namespace and writes its status; change returns false
// when nothing needs writing. It returns the namespace as written.
func (c *Controller) updateStatus(ctx context.Context, ns *corev1.Namespace, change func(*corev1.Namespace) bool) (*corev1.Namespace, error) {
	out := ns
	err := c.write(ctx, ns, "update status", func(cur *corev1.Namespace) error {
		if !change(cur) {
			out = cur
			return nil
		}
		res, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			out = res
		}
		return err
	})
	return out, err
}

// finalize removes the "kubernetes" finalizer from spec.finalizers through /finalize.
func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) error {
	return c.write(ctx, ns, "finalize", func(cur *corev1.Namespace) error {
		fins := slices.DeleteFunc(slices.Clone(cur.Spec.Finalizers), func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
		if len(fins) == len(cur.Spec.Finalizers) {
			return nil
		}
		cur = cur.DeepCopy()
		cur.Spec.Finalizers = fins
		_, err := c.client.CoreV1().Namespaces().Finalize(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}
