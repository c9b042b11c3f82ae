package endpoints

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// staleTracker remembers, per Endpoints object, the resourceVersion this controller has
// replaced: while the informer still shows that version, the cache is behind our own write
// and a sync must wait (kubernetes/kubernetes#127370, #126578). Safe for concurrent use.
type staleTracker struct {
	mu    sync.RWMutex
	stale map[types.NamespacedName]string
}

func newStaleTracker() *staleTracker {
	return &staleTracker{stale: map[types.NamespacedName]string{}}
}

func (t *staleTracker) markStale(ep *corev1.Endpoints) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stale[types.NamespacedName{Namespace: ep.Namespace, Name: ep.Name}] = ep.ResourceVersion
}

func (t *staleTracker) isStale(ep *corev1.Endpoints) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	rv, ok := t.stale[types.NamespacedName{Namespace: ep.Namespace, Name: ep.Name}]
	return ok && rv == ep.ResourceVersion
}

func (t *staleTracker) delete(namespace, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.stale, types.NamespacedName{Namespace: namespace, Name: name})
}
