package apiserver

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
)

// encodeCache remembers the wire form of recently sent watch objects, so one change fanned out
// to many watchers is encoded once per format (kube-apiserver's cachingObject). Objects from
// storage are immutable and shared, so their pointer identifies their content. The cache is
// bounded; it is safe for concurrent use.
type encodeCache struct {
	mu    sync.Mutex
	m     map[encKey][]byte
	ring  []encKey
	next  int
	limit int
}

type encKey struct {
	obj   runtime.Object
	proto bool
}

func newEncodeCache(limit int) *encodeCache {
	return &encodeCache{m: make(map[encKey][]byte, limit), ring: make([]encKey, limit), limit: limit}
}

// get returns the cached encoding of obj, or encodes it with enc and caches the result.
func (c *encodeCache) get(obj runtime.Object, proto bool, enc func() ([]byte, error)) ([]byte, error) {
	k := encKey{obj, proto}
	c.mu.Lock()
	b, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := enc()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if _, ok := c.m[k]; !ok {
		if old := c.ring[c.next]; old.obj != nil {
			delete(c.m, old)
		}
		c.ring[c.next] = k
		c.next = (c.next + 1) % c.limit
		c.m[k] = b
	}
	c.mu.Unlock()
	return b, nil
}
