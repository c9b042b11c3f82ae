package garbagecollector

import (
	"fmt"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// objectRef identifies one object by its coordinates and UID. It is comparable and used as a
// map key (absent-owner cache, identity checks).
type objectRef struct {
	apiVersion string
	kind       string
	namespace  string
	name       string
	uid        types.UID
}

func (r objectRef) String() string {
	ns := r.namespace
	if ns != "" {
		ns += "/"
	}
	return fmt.Sprintf("%s %s %s%s (uid %s)", r.apiVersion, r.kind, ns, r.name, r.uid)
}

// node is one object of the owner→dependents graph. Its fields are guarded by graph.mu.
type node struct {
	identity objectRef
	// owners are the object's ownerReferences as last observed (read only: shared with the
	// informer cache).
	owners []metav1.OwnerReference
	// dependents are the nodes whose ownerReferences name this node's UID.
	dependents map[*node]struct{}
	// virtual nodes are known only from a dependent's ownerReference and have not been
	// observed through an informer (the owner may not exist at all).
	virtual bool
	// beingDeleted: the object has a deletionTimestamp.
	beingDeleted bool
	// deletingDependents: being deleted with the foregroundDeletion finalizer.
	deletingDependents bool
}

// graph is the owner→dependents graph keyed by UID. One goroutine (the graph builder)
// writes it; the workers read it. All access goes through mu.
type graph struct {
	mu    sync.RWMutex
	nodes map[types.UID]*node
}

func newGraph() *graph { return &graph{nodes: map[types.UID]*node{}} }

// nodeState is a consistent copy of a node's fields for a worker.
type nodeState struct {
	identity           objectRef
	virtual            bool
	beingDeleted       bool
	deletingDependents bool
	dependents         []*node
}

// state copies n's fields under the read lock.
func (g *graph) state(n *node) nodeState {
	g.mu.RLock()
	defer g.mu.RUnlock()
	st := nodeState{
		identity:           n.identity,
		virtual:            n.virtual,
		beingDeleted:       n.beingDeleted,
		deletingDependents: n.deletingDependents,
	}
	for d := range n.dependents {
		st.dependents = append(st.dependents, d)
	}
	return st
}

// identities returns the identities of nodes under the read lock.
func (g *graph) identities(nodes []*node) []objectRef {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]objectRef, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.identity)
	}
	return out
}

// isVirtual reports whether n has not been observed through an informer yet.
func (g *graph) isVirtual(n *node) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return n.virtual
}

// isDeletingDependents reports whether n is in foreground deletion.
func (g *graph) isDeletingDependents(n *node) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return n.deletingDependents
}

// blockingDependents returns the dependents of owner whose ownerReference to it has
// blockOwnerDeletion=true: the ones a foreground deletion waits for.
func (g *graph) blockingDependents(owner *node) []*node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []*node
	for d := range owner.dependents {
		for _, ref := range d.owners {
			if ref.UID == owner.identity.uid && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// referencesDiffs compares two ownerReference lists by UID: added and removed references,
// and the references present in both whose content changed (old, new).
func referencesDiffs(old, cur []metav1.OwnerReference) (added, removed []metav1.OwnerReference, changed [][2]metav1.OwnerReference) {
	byUID := func(refs []metav1.OwnerReference, uid types.UID) (metav1.OwnerReference, bool) {
		i := slices.IndexFunc(refs, func(r metav1.OwnerReference) bool { return r.UID == uid })
		if i < 0 {
			return metav1.OwnerReference{}, false
		}
		return refs[i], true
	}
	for _, o := range old {
		n, ok := byUID(cur, o.UID)
		switch {
		case !ok:
			removed = append(removed, o)
		case !refEqual(o, n):
			changed = append(changed, [2]metav1.OwnerReference{o, n})
		}
	}
	for _, n := range cur {
		if _, ok := byUID(old, n.UID); !ok {
			added = append(added, n)
		}
	}
	return added, removed, changed
}

func refEqual(a, b metav1.OwnerReference) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name && a.UID == b.UID &&
		isTrue(a.Controller) == isTrue(b.Controller) && isTrue(a.BlockOwnerDeletion) == isTrue(b.BlockOwnerDeletion)
}

func isTrue(b *bool) bool { return b != nil && *b }

// absentCache is a bounded set of owners verified absent by a live read. UIDs are never
// reused, so an entry never goes stale; the oldest entries are dropped first. Safe for
// concurrent use.
type absentCache struct {
	mu    sync.Mutex
	max   int
	set   map[objectRef]struct{}
	order []objectRef
}

func newAbsentCache(max int) *absentCache {
	return &absentCache{max: max, set: map[objectRef]struct{}{}}
}

func (c *absentCache) add(r objectRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[r]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.set, c.order[0])
		c.order = c.order[1:]
	}
	c.set[r] = struct{}{}
	c.order = append(c.order, r)
}

func (c *absentCache) has(r objectRef) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.set[r]
	return ok
}
