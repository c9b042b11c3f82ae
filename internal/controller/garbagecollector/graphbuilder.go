package garbagecollector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"kubesvc/internal/resource"
)

type eventType int

const (
	addEvent eventType = iota
	updateEvent
	deleteEvent
)

// event is one change to the graph: an informer notification, or a virtual delete produced
// by a worker that found an object absent with a live read.
type event struct {
	typ     eventType
	virtual bool
	gvk     schema.GroupVersionKind
	obj     *metav1.PartialObjectMetadata
	old     *metav1.PartialObjectMetadata
}

func (e *event) identity() objectRef {
	return objectRef{
		apiVersion: e.gvk.GroupVersion().String(), kind: e.gvk.Kind,
		namespace: e.obj.Namespace, name: e.obj.Name, uid: e.obj.UID,
	}
}

// handlers returns the informer handlers for info's objects: they only record the change
// in the graphChanges queue (the single graph builder goroutine applies it).
func (c *Controller) handlers(info *resource.Info) cache.ResourceEventHandler {
	gvk := info.GroupVersionKind()
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
				c.graphChanges.Add(&event{typ: addEvent, gvk: gvk, obj: m})
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*metav1.PartialObjectMetadata)
			n, ok2 := newObj.(*metav1.PartialObjectMetadata)
			if ok1 && ok2 {
				c.graphChanges.Add(&event{typ: updateEvent, gvk: gvk, obj: n, old: o})
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
				c.graphChanges.Add(&event{typ: deleteEvent, gvk: gvk, obj: m})
			}
		},
	}
}

// enqueueVirtualDelete records that the object id is gone, as verified by a live read.
func (c *Controller) enqueueVirtualDelete(id objectRef) {
	gv, _ := schema.ParseGroupVersion(id.apiVersion)
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: id.namespace, Name: id.name, UID: id.uid}}
	c.graphChanges.Add(&event{typ: deleteEvent, virtual: true, gvk: gv.WithKind(id.kind), obj: obj})
}

// processNextGraphChange applies one event to the graph; false once the queue shut down.
func (c *Controller) processNextGraphChange() bool {
	ev, quit := c.graphChanges.Get()
	if quit {
		return false
	}
	defer c.graphChanges.Done(ev)
	c.graph.mu.Lock()
	defer c.graph.mu.Unlock()
	c.applyEvent(ev)
	return true
}

// applyEvent updates the graph for ev and enqueues the work it implies (port of upstream
// GraphBuilder.processGraphChanges). Called with graph.mu held.
func (c *Controller) applyEvent(ev *event) {
	g := c.graph
	obj := ev.obj
	existing := g.nodes[obj.UID]
	if existing != nil && existing.virtual && ev.typ != deleteEvent {
		// The first real observation replaces coordinates taken from an ownerReference.
		existing.identity = ev.identity()
		existing.virtual = false
	}
	switch {
	case ev.typ != deleteEvent && existing == nil:
		n := &node{
			identity:           ev.identity(),
			owners:             obj.OwnerReferences,
			dependents:         map[*node]struct{}{},
			beingDeleted:       obj.DeletionTimestamp != nil,
			deletingDependents: deletingDependents(obj),
		}
		g.nodes[obj.UID] = n
		c.addDependentToOwners(n, n.owners)
		c.processTransitions(ev.old, obj, n)
	case ev.typ != deleteEvent:
		added, removed, changed := referencesDiffs(existing.owners, obj.OwnerReferences)
		if len(added)+len(removed)+len(changed) > 0 {
			c.addUnblockedOwnersToDeleteQueue(removed, changed)
			existing.owners = obj.OwnerReferences
			c.addDependentToOwners(existing, added)
			c.removeDependentFromOwners(existing, removed)
		}
		if obj.DeletionTimestamp != nil {
			existing.beingDeleted = true
		}
		c.processTransitions(ev.old, obj, existing)
	case existing == nil:
		// Deleted before we saw it, or already removed by a virtual delete.
	case ev.virtual && existing.identity != ev.identity():
		// The live read that found the object absent used coordinates that no longer match
		// the node (it was observed meanwhile): let the dependents re-verify their owners.
		c.absent.add(ev.identity())
		for d := range existing.dependents {
			c.attemptToDelete.Add(d)
		}
	default:
		c.removeNode(existing)
		if len(existing.dependents) > 0 {
			c.absent.add(ev.identity())
		}
		for d := range existing.dependents {
			c.attemptToDelete.Add(d)
		}
		for _, ref := range existing.owners {
			if o := g.nodes[ref.UID]; o != nil && o.deletingDependents {
				// Let the owner check whether its last blocking dependent is gone.
				c.attemptToDelete.Add(o)
			}
		}
	}
}

// addDependentToOwners links n to the owners named in refs, creating virtual nodes (verified
// by a worker with a live read) for owners not seen yet.
func (c *Controller) addDependentToOwners(n *node, refs []metav1.OwnerReference) {
	g := c.graph
	for _, ref := range refs {
		owner := g.nodes[ref.UID]
		if owner == nil {
			owner = &node{identity: c.ownerIdentity(ref, n.identity.namespace), dependents: map[*node]struct{}{}, virtual: true}
			g.nodes[ref.UID] = owner
			c.attemptToDelete.Add(owner)
		}
		owner.dependents[n] = struct{}{}
		if !owner.virtual && owner.identity.namespace != "" && owner.identity.namespace != n.identity.namespace {
			// ownerReferences cannot cross namespaces: the reference is dangling in n's
			// namespace, which the worker verifies.
			c.attemptToDelete.Add(n)
		}
	}
}

func (c *Controller) removeDependentFromOwners(n *node, refs []metav1.OwnerReference) {
	for _, ref := range refs {
		if o := c.graph.nodes[ref.UID]; o != nil {
			delete(o.dependents, n)
		}
	}
}

func (c *Controller) removeNode(n *node) {
	if c.graph.nodes[n.identity.uid] == n {
		delete(c.graph.nodes, n.identity.uid)
	}
	c.removeDependentFromOwners(n, n.owners)
}

// addUnblockedOwnersToDeleteQueue enqueues owners in foreground deletion that a dependent no
// longer blocks (reference removed, or blockOwnerDeletion turned off).
func (c *Controller) addUnblockedOwnersToDeleteQueue(removed []metav1.OwnerReference, changed [][2]metav1.OwnerReference) {
	enqueue := func(ref metav1.OwnerReference) {
		if o := c.graph.nodes[ref.UID]; o != nil && o.deletingDependents {
			c.attemptToDelete.Add(o)
		}
	}
	for _, ref := range removed {
		if isTrue(ref.BlockOwnerDeletion) {
			enqueue(ref)
		}
	}
	for _, ch := range changed {
		if isTrue(ch[0].BlockOwnerDeletion) && !isTrue(ch[1].BlockOwnerDeletion) {
			enqueue(ch[1])
		}
	}
}

// processTransitions starts orphaning or foreground deletion when an object first shows the
// matching finalizer together with a deletionTimestamp.
func (c *Controller) processTransitions(old, cur *metav1.PartialObjectMetadata, n *node) {
	if startsWaiting(old, cur, metav1.FinalizerOrphanDependents) {
		c.attemptToOrphan.Add(n)
		return
	}
	if startsWaiting(old, cur, metav1.FinalizerDeleteDependents) {
		n.deletingDependents = true
		for d := range n.dependents {
			c.attemptToDelete.Add(d)
		}
		c.attemptToDelete.Add(n)
	}
}

func startsWaiting(old, cur *metav1.PartialObjectMetadata, finalizer string) bool {
	if !waiting(cur, finalizer) {
		return false
	}
	return old == nil || !waiting(old, finalizer)
}

func waiting(m metav1.Object, finalizer string) bool {
	return m.GetDeletionTimestamp() != nil && slices.Contains(m.GetFinalizers(), finalizer)
}

func deletingDependents(m metav1.Object) bool { return waiting(m, metav1.FinalizerDeleteDependents) }

// ownerIdentity returns the coordinates of the owner named by ref from a dependent in
// namespace ns: namespaced owners live in the dependent's namespace.
func (c *Controller) ownerIdentity(ref metav1.OwnerReference, ns string) objectRef {
	if info := c.lookup(ref.APIVersion, ref.Kind); info != nil && !info.Namespaced {
		ns = ""
	}
	return objectRef{apiVersion: ref.APIVersion, kind: ref.Kind, namespace: ns, name: ref.Name, uid: ref.UID}
}
