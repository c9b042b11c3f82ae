package storage

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
)

// Lists from the watch cache, after kube-apiserver 1.34's ListFromCacheSnapshot.
//
// The cache keeps its objects in a B-tree ordered by key. A list takes a snapshot, a lazy
// copy-on-write clone of the tree (O(1); later writes to the live tree copy the nodes they
// touch), under the cache lock and walks it without the lock, so a 10,000-object list neither
// sorts keys nor blocks the watch fan-out. When a page is cut, its snapshot is kept under the
// page's resourceVersion; the continue token's pages are then served from that snapshot, which
// is exactly the state at that revision, instead of reading and decoding them from etcd again.
// Lists with resourceVersionMatch=Exact use a kept snapshot too when one has that revision.
//
// Consistency is the same as reading etcd at the revision: before a kept snapshot answers,
// one count-only etcd read at its revision checks that etcd has not compacted it, so an
// expired continue token still gets 410 Gone. Snapshots that are not found (evicted, another
// server's token, a revision the cache never listed at) fall back to etcd.

const (
	// itemsDegree is the B-tree degree of the cache (kube's watch cache uses 16; wider nodes
	// make clones cheaper to diverge from for large lists).
	itemsDegree = 32
	// maxSnapshots is how many continue snapshots each resource keeps (least recently used
	// go first).
	maxSnapshots = 16
	// snapshotTTL is how long an unused continue snapshot is kept: etcd's compaction
	// retention of the embedded datastore, after which etcd would answer 410 anyway.
	snapshotTTL = 5 * time.Minute
)

// entry is one cached object.
type entry struct {
	key string
	obj runtime.Object
}

func newItems() *btree.BTreeG[entry] {
	return btree.NewG(itemsDegree, func(a, b entry) bool { return a.key < b.key })
}

// snapshot is an immutable view of a cache's objects at revision rev.
type snapshot struct {
	rev   int64
	items *btree.BTreeG[entry]
	used  time.Time // last use as a continue snapshot; guarded by the cacher's mu
}

// ascendPrefix calls fn for the entries with keys under prefix, from start on, in key order,
// until fn returns false.
func ascendPrefix(t *btree.BTreeG[entry], prefix, start string, fn func(entry) bool) {
	t.AscendGreaterOrEqual(entry{key: start}, func(e entry) bool {
		return strings.HasPrefix(e.key, prefix) && fn(e)
	})
}

// get returns the cached object at key, or nil. Called with mu held.
func (c *cacher) get(key string) runtime.Object {
	e, ok := c.items.Get(entry{key: key})
	if !ok {
		return nil
	}
	return e.obj
}

// snapshotLocked returns a snapshot of the objects at c.rev. Called with mu held.
func (c *cacher) snapshotLocked() *snapshot {
	switch {
	case c.cur == nil || c.dirty:
		c.cur = &snapshot{rev: c.rev, items: c.items.Clone()}
		c.dirty = false
	case c.cur.rev != c.rev:
		// Only the revision moved (a progress notification): same objects, newer revision.
		c.cur = &snapshot{rev: c.rev, items: c.cur.items}
	}
	return c.cur
}

// keep remembers s as the snapshot of continue tokens at s.rev.
func (c *cacher) keep(s *snapshot) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snaps == nil {
		c.snaps = map[int64]*snapshot{}
	}
	if old, ok := c.snaps[s.rev]; ok {
		old.used = now
		return
	}
	s.used = now
	c.snaps[s.rev] = s
	for len(c.snaps) > maxSnapshots {
		var lru *snapshot
		for _, o := range c.snaps {
			if lru == nil || o.used.Before(lru.used) {
				lru = o
			}
		}
		delete(c.snaps, lru.rev)
	}
}

// find returns a snapshot of the state at exactly rev, or nil.
func (c *cacher) find(rev int64) *snapshot {
	select {
	case <-c.readyCh:
	default:
		return nil
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for r, s := range c.snaps {
		if now.Sub(s.used) > snapshotTTL {
			delete(c.snaps, r)
		}
	}
	if s, ok := c.snaps[rev]; ok {
		s.used = now
		return s
	}
	if rev == c.rev {
		return c.snapshotLocked()
	}
	return nil
}

// page returns the objects of s under prefix from the key start on, at most opts.Limit of
// them (0: all) that pass opts.Filter, with a continue token when more match. A page that
// is cut keeps s for its continuation.
func (c *cacher) page(s *snapshot, prefix, start string, opts ListOptions) *ListResult {
	n := 0
	switch {
	case opts.Limit > 0 && opts.Limit < int64(s.items.Len()):
		n = int(opts.Limit)
	case prefix == c.prefix && opts.Filter == nil:
		n = s.items.Len()
	}
	out := &ListResult{ResourceVersion: s.rev, Items: make([]runtime.Object, 0, n)}
	var last string
	more := false
	ascendPrefix(s.items, prefix, start, func(e entry) bool {
		if opts.Filter != nil && !opts.Filter(e.obj) {
			return true
		}
		if opts.Limit > 0 && int64(len(out.Items)) == opts.Limit {
			more = true
			return false
		}
		out.Items = append(out.Items, e.obj)
		last = e.key
		return true
	})
	if more {
		next := last + "\x00"
		out.Continue = encodeContinue(next, prefix, s.rev)
		if opts.Filter == nil {
			var rest int64
			ascendPrefix(s.items, prefix, next, func(entry) bool { rest++; return true })
			out.RemainingItemCount = &rest
		}
		c.keep(s)
	}
	return out
}

// listCache serves a list that does not name an exact revision: from the cache once it has
// caught up with rev.
func (s *Store) listCache(ctx context.Context, c *cacher, prefix string, rev int64, opts ListOptions) (*ListResult, error) {
	if err := c.waitFresh(ctx, rev); err != nil {
		return nil, err
	}
	c.mu.Lock()
	snap := c.snapshotLocked()
	c.mu.Unlock()
	return c.page(snap, prefix, prefix, opts), nil
}

// listSnapshot serves a continue page or an exact-revision list from a snapshot of the
// cache at that revision. It reports false when no snapshot has it (the caller reads etcd).
func (s *Store) listSnapshot(ctx context.Context, c *cacher, prefix string, opts ListOptions) (*ListResult, bool, error) {
	start := prefix
	var rev int64
	if opts.Continue != "" {
		k, r, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return nil, false, err
		}
		start, rev = k, r
	} else {
		r, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
		if err != nil || r <= 0 {
			return nil, false, nil
		}
		rev = r
	}
	snap := c.find(rev)
	if snap == nil {
		return nil, false, nil
	}
	// What etcd would answer at rev: 410 once compacted.
	if _, err := s.client.Get(ctx, start, clientv3.WithRev(rev), clientv3.WithCountOnly()); err != nil {
		if isCompacted(err) {
			return nil, false, expiredList(prefix, opts, rev)
		}
		return nil, false, err
	}
	return c.page(snap, prefix, start, opts), true, nil
}

func isCompacted(err error) bool {
	return errors.Is(err, rpctypes.ErrCompacted) || strings.Contains(err.Error(), "required revision has been compacted")
}

// expiredList is the 410 of a list at a compacted revision, in kube-apiserver's words.
func expiredList(prefix string, opts ListOptions, rev int64) error {
	if opts.Continue != "" {
		return errorf(ErrExpired, prefix, "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
	}
	return errorf(ErrExpired, prefix, "resourceVersion: Invalid value: %q: too old resource version: %d", opts.ResourceVersion, rev)
}
