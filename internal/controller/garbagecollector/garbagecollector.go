// Package garbagecollector deletes objects whose owners are gone, the way kube-controller-
// manager's garbage collector does: it watches the metadata of every resource of the
// catalog, keeps an owner→dependents graph keyed by UID, and acts on ownerReferences with the
// background, foreground and orphan propagation policies.
//
// Event handlers only record changes; one graph-builder goroutine applies them to the graph
// and enqueues work; workers verify every decision with a live read before they delete or
// patch anything. See README.md for the semantics. Only internal/server and tests import it.
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"kubesvc/internal/resource"
)

// Config configures the garbage collector.
type Config struct {
	// Metadata is the client used for watches, live reads, patches and deletes of every
	// resource (PartialObjectMetadata). Required.
	Metadata metadata.Interface
	// Resources are the resources whose objects are watched and may be owners or
	// dependents. Nil means every resource of resource.All that supports list and watch.
	Resources []*resource.Info
	// AbsentOwnerCacheSize bounds the cache of owners verified absent; 0 means 1024.
	AbsentOwnerCacheSize int
}

// Controller is the garbage collector. Create it with New; Run may be called once.
type Controller struct {
	metadata  metadata.Interface
	resources []*resource.Info
	byGK      map[schema.GroupKind]*resource.Info
	factory   metadatainformer.SharedInformerFactory
	synced    []cache.InformerSynced
	graph     *graph
	absent    *absentCache

	graphChanges    workqueue.TypedInterface[*event]
	attemptToDelete workqueue.TypedRateLimitingInterface[*node]
	attemptToOrphan workqueue.TypedRateLimitingInterface[*node]
}

// New returns a garbage collector; its informers start in Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Metadata == nil {
		return nil, errors.New("garbage collector: Config.Metadata is required")
	}
	res := cfg.Resources
	if res == nil {
		for _, r := range resource.All {
			if slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch") {
				res = append(res, r)
			}
		}
	}
	size := cfg.AbsentOwnerCacheSize
	if size <= 0 {
		size = 1024
	}
	c := &Controller{
		metadata:     cfg.Metadata,
		resources:    res,
		byGK:         map[schema.GroupKind]*resource.Info{},
		factory:      metadatainformer.NewSharedInformerFactory(cfg.Metadata, 0),
		graph:        newGraph(),
		absent:       newAbsentCache(size),
		graphChanges: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[*event]{Name: "garbage_collector_graph_changes"}),
		attemptToDelete: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[*node](),
			workqueue.TypedRateLimitingQueueConfig[*node]{Name: "garbage_collector_attempt_to_delete"}),
		attemptToOrphan: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[*node](),
			workqueue.TypedRateLimitingQueueConfig[*node]{Name: "garbage_collector_attempt_to_orphan"}),
	}
	for _, info := range res {
		c.byGK[info.GroupVersionKind().GroupKind()] = info
		inf := c.factory.ForResource(info.GroupVersionResource).Informer()
		if _, err := inf.AddEventHandler(c.handlers(info)); err != nil {
			return nil, fmt.Errorf("garbage collector: watch %s: %w", info.GroupResource(), err)
		}
		c.synced = append(c.synced, inf.HasSynced)
	}
	return c, nil
}

// Run starts the informers, the graph builder and workers goroutines for each of the delete
// and orphan queues, and blocks until ctx is done and they have stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	defer func() {
		c.graphChanges.ShutDown()
		c.attemptToDelete.ShutDown()
		c.attemptToOrphan.ShutDown()
		c.factory.Shutdown()
		wg.Wait()
	}()
	c.factory.Start(ctx.Done())
	wg.Go(func() {
		for c.processNextGraphChange() {
		}
	})
	if !cache.WaitForNamedCacheSync("garbage collector", ctx.Done(), c.synced...) {
		return
	}
	logger.V(2).Info("garbage collector synced", "resources", len(c.resources))
	for range max(workers, 1) {
		wg.Go(func() {
			for c.processAttemptToDelete(ctx) {
			}
		})
		wg.Go(func() {
			for c.processAttemptToOrphan(ctx) {
			}
		})
	}
	<-ctx.Done()
}

var (
	// errVirtualDeleteEnqueued: the item is gone; the graph builder will handle it.
	errVirtualDeleteEnqueued = errors.New("virtual delete event enqueued")
	// errNamespacedOwnerOfClusterScoped: an invalid reference that retrying cannot fix.
	errNamespacedOwnerOfClusterScoped = errors.New("cluster-scoped object refers to a namespaced owner")
)

func (c *Controller) processAttemptToDelete(ctx context.Context) bool {
	n, quit := c.attemptToDelete.Get()
	if quit {
		return false
	}
	defer c.attemptToDelete.Done(n)
	err := c.attemptToDeleteItem(ctx, n)
	switch {
	case errors.Is(err, errVirtualDeleteEnqueued), errors.Is(err, errNamespacedOwnerOfClusterScoped):
		c.attemptToDelete.Forget(n)
	case err != nil:
		logger := klog.FromContext(ctx)
		var unknown *UnknownKindError
		if errors.As(err, &unknown) || apierrors.IsConflict(err) {
			logger.V(4).Info("garbage collector: retrying item", "item", c.graph.state(n).identity, "err", err)
		} else {
			logger.Error(err, "garbage collector: retrying item", "item", c.graph.state(n).identity)
		}
		c.attemptToDelete.AddRateLimited(n)
	case c.graph.isVirtual(n):
		// Exists but not observed by an informer yet: look again later, or a virtual node
		// added and removed during a watch re-establishment could stay forever (kubernetes#56121).
		c.attemptToDelete.AddRateLimited(n)
	default:
		c.attemptToDelete.Forget(n)
	}
	return true
}

func (c *Controller) processAttemptToOrphan(ctx context.Context) bool {
	n, quit := c.attemptToOrphan.Get()
	if quit {
		return false
	}
	defer c.attemptToOrphan.Done(n)
	if err := c.orphanDependents(ctx, n); err != nil {
		klog.FromContext(ctx).Error(err, "garbage collector: retrying orphaning", "owner", c.graph.state(n).identity)
		c.attemptToOrphan.AddRateLimited(n)
		return true
	}
	c.attemptToOrphan.Forget(n)
	return true
}

// attemptToDeleteItem decides what to do with one object from a live read of it and of its
// owners (port of upstream attemptToDeleteItem):
//   - gone: a virtual delete removes it from the graph and enqueues its dependents;
//   - in foreground deletion: delete blocking dependents, or drop the finalizer when none remain;
//   - some owner alive: drop only the references to absent owners and owners in foreground
//     deletion;
//   - an owner in foreground deletion and own dependents: delete in foreground too;
//   - otherwise (every owner gone): delete it, keeping its own orphan/foreground finalizer choice.
func (c *Controller) attemptToDeleteItem(ctx context.Context, n *node) error {
	st := c.graph.state(n)
	if !st.virtual && st.beingDeleted && !st.deletingDependents {
		return nil
	}
	latest, err := c.getObject(ctx, st.identity)
	if isNotFound(err) || (err == nil && latest.UID != st.identity.uid) {
		c.enqueueVirtualDelete(st.identity)
		return errVirtualDeleteEnqueued
	}
	if err != nil {
		return err
	}
	if st.deletingDependents {
		return c.processDeletingDependents(ctx, n, st.identity)
	}
	refs := latest.OwnerReferences
	if len(refs) == 0 {
		return nil
	}
	solid, dangling, waitingFor, err := c.classifyReferences(ctx, st.identity, refs)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx)
	switch {
	case len(solid) != 0:
		if len(dangling) == 0 && len(waitingFor) == 0 {
			return nil
		}
		uids := ownerUIDs(append(dangling, waitingFor...))
		logger.V(2).Info("garbage collector: removing ownerReferences", "item", st.identity, "owners", uids)
		return c.removeOwnerReferences(ctx, st.identity, uids)
	case len(waitingFor) != 0 && len(st.dependents) != 0:
		for _, d := range st.dependents {
			if c.graph.isDeletingDependents(d) {
				// A dependent waits for us while we wait for our owner: break the possible
				// cycle by making our references non-blocking first.
				if err := c.unblockOwnerReferences(ctx, st.identity); err != nil {
					return err
				}
				break
			}
		}
		logger.V(2).Info("garbage collector: deleting item in foreground, an owner waits for it", "item", st.identity)
		return c.deleteObject(ctx, st.identity, latest.ResourceVersion, refs, metav1.DeletePropagationForeground)
	default:
		policy := metav1.DeletePropagationBackground
		switch {
		case slices.Contains(latest.Finalizers, metav1.FinalizerOrphanDependents):
			policy = metav1.DeletePropagationOrphan
		case slices.Contains(latest.Finalizers, metav1.FinalizerDeleteDependents):
			policy = metav1.DeletePropagationForeground
		}
		logger.V(2).Info("garbage collector: deleting item, its owners are gone", "item", st.identity, "policy", policy)
		return c.deleteObject(ctx, st.identity, latest.ResourceVersion, refs, policy)
	}
}

// processDeletingDependents handles an owner in foreground deletion: once no dependent with
// blockOwnerDeletion=true remains it drops the foregroundDeletion finalizer (the server then
// deletes the owner); until then it enqueues those dependents.
func (c *Controller) processDeletingDependents(ctx context.Context, owner *node, id objectRef) error {
	blocking := c.graph.blockingDependents(owner)
	if len(blocking) == 0 {
		klog.FromContext(ctx).V(2).Info("garbage collector: dependents deleted, removing finalizer", "owner", id, "finalizer", metav1.FinalizerDeleteDependents)
		return c.removeFinalizer(ctx, id, metav1.FinalizerDeleteDependents)
	}
	for _, d := range blocking {
		if !c.graph.isDeletingDependents(d) {
			c.attemptToDelete.Add(d)
		}
	}
	return nil
}

// classifyReferences sorts an item's owner references: solid (owner exists and is not in
// foreground deletion), dangling (owner absent) and waitingFor (owner in foreground deletion).
func (c *Controller) classifyReferences(ctx context.Context, item objectRef, refs []metav1.OwnerReference) (solid, dangling, waitingFor []metav1.OwnerReference, err error) {
	for _, ref := range refs {
		isDangling, owner, err := c.isDangling(ctx, ref, item)
		if err != nil {
			return nil, nil, nil, err
		}
		switch {
		case isDangling:
			dangling = append(dangling, ref)
		case deletingDependents(owner):
			waitingFor = append(waitingFor, ref)
		default:
			solid = append(solid, ref)
		}
	}
	return solid, dangling, waitingFor, nil
}

// orphanDependents removes the ownerReference to owner from each of its dependents, then the
// owner's orphan finalizer.
func (c *Controller) orphanDependents(ctx context.Context, owner *node) error {
	st := c.graph.state(owner)
	var errs []error
	for _, d := range c.graph.identities(st.dependents) {
		if err := c.removeOwnerReferences(ctx, d, []types.UID{st.identity.uid}); err != nil {
			errs = append(errs, fmt.Errorf("orphan %s: %w", d, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("garbage collector: dependents orphaned, removing finalizer", "owner", st.identity, "dependents", len(st.dependents))
	return c.removeFinalizer(ctx, st.identity, metav1.FinalizerOrphanDependents)
}

func ownerUIDs(refs []metav1.OwnerReference) []types.UID {
	out := make([]types.UID, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.UID)
	}
	return out
}
