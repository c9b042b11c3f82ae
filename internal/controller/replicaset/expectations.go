package replicaset

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ExpectationsTimeout is how long a controller trusts its expectations before it syncs
// anyway (upstream ExpectationsTimeout): a watch event that never arrives costs this delay.
const ExpectationsTimeout = 5 * time.Minute

// expectations records, per ReplicaSet key, the pod creations and deletions a sync issued
// and the informer has not reported yet (upstream UIDTrackingControllerExpectations). A
// ReplicaSet whose expectations are pending is not scaled again, so a slow watch cannot
// make the controller create or delete twice. Safe for concurrent use.
type expectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[string]*expectation
}

type expectation struct {
	adds int
	dels map[string]bool // keys of pods whose deletion is awaited
	at   time.Time
}

func newExpectations(c clock.PassiveClock) *expectations {
	return &expectations{clock: c, m: map[string]*expectation{}}
}

// satisfied reports whether key has no pending expectations (or they expired).
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.dels) == 0 {
		return true
	}
	return e.clock.Since(x.at) > ExpectationsTimeout
}

// expectCreations replaces key's expectations with n creations.
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: n, dels: map[string]bool{}, at: e.clock.Now()}
}

// expectDeletions replaces key's expectations with the deletion of podKeys.
func (e *expectations) expectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{dels: map[string]bool{}, at: e.clock.Now()}
	for _, k := range podKeys {
		x.dels[k] = true
	}
	e.m[key] = x
}

// creationObserved lowers key's pending creations by one.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// deletionObserved marks the deletion of podKey as seen (once).
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.dels, podKey)
	}
}

// forget drops key's expectations (the ReplicaSet is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
