package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"

	"kubesvc/internal/resource"
)

// event is one change of one object as the watch cache saw it.
type event struct {
	typ  watch.EventType
	key  string
	obj  runtime.Object // new state; for DELETED the last state with the deletion's RV
	prev runtime.Object // state before, nil for ADDED
	rev  int64
}

// cacher mirrors one resource's keys from etcd with a single etcd watch, keeps the recent
// events in a ring and fans them out to API watchers.
type cacher struct {
	s      *Store
	info   *resource.Info
	prefix string

	mu       sync.Mutex
	items    *btree.BTreeG[entry] // the objects by key; cloned (copy on write) for snapshots
	dirty    bool                 // items changed since cur was cloned
	cur      *snapshot            // items at rev, if cloned since the last change
	snaps    map[int64]*snapshot  // snapshots that continue tokens point at (snapshot.go)
	rev      int64                // revision the cache reflects
	revCh    chan struct{}        // closed and replaced when rev advances
	ring     []*event             // circular buffer of the last len(ring) events
	head, n  int
	oldest   int64 // watches may resume from any rev >= oldest
	watchers map[*Watcher]struct{}
	readyCh  chan struct{}
	err      error

	cancel context.CancelFunc
	wc     clientv3.Watcher
}

func (s *Store) cacher(info *resource.Info) (*cacher, error) {
	s.mu.Lock()
	c, ok := s.cachers[info]
	if !ok {
		c = &cacher{
			s:        s,
			info:     info,
			prefix:   s.ResourcePrefix(info),
			revCh:    make(chan struct{}),
			ring:     make([]*event, s.window),
			watchers: map[*Watcher]struct{}{},
			readyCh:  make(chan struct{}),
		}
		s.cachers[info] = c
		go c.run(s.ctx)
	}
	s.mu.Unlock()
	select {
	case <-c.readyCh:
		return c, nil
	case <-s.ctx.Done():
		return nil, errors.New("storage closed")
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("watch cache for %s not ready", info.Resource)
	}
}

// StartCaches starts the watch cache of every resource and waits until they are ready.
func (s *Store) StartCaches() error {
	for _, info := range resource.All {
		if _, err := s.cacher(info); err != nil {
			return err
		}
	}
	return nil
}

func (c *cacher) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.watchers {
		w.terminate()
	}
	c.watchers = map[*Watcher]struct{}{}
}

// run lists and watches etcd until the store closes, relisting after compaction or errors.
func (c *cacher) run(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		rev, err := c.relist(ctx)
		if err != nil {
			klog.ErrorS(err, "watch cache list failed", "resource", c.info.Resource)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if first {
			close(c.readyCh)
			first = false
		}
		c.watch(ctx, rev)
	}
}

func (c *cacher) relist(ctx context.Context) (int64, error) {
	items := newItems()
	var rev int64
	start, end := c.prefix, clientv3.GetPrefixRangeEnd(c.prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(10000)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := c.s.client.Get(ctx, start, opts...)
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			obj, err := c.s.decode(c.info, kv.Value, kv.ModRevision)
			if err != nil {
				return 0, err
			}
			items.ReplaceOrInsert(entry{key: string(kv.Key), obj: obj})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	c.mu.Lock()
	// Watchers cannot follow a relist: end them; clients resume and get 410 if needed.
	for w := range c.watchers {
		w.terminate()
	}
	c.watchers = map[*Watcher]struct{}{}
	c.items = items
	c.dirty = true
	c.head, c.n = 0, 0
	c.oldest = rev
	c.setRevLocked(rev)
	c.mu.Unlock()
	return rev, nil
}

func (c *cacher) setRevLocked(rev int64) {
	if rev > c.rev {
		c.rev = rev
		close(c.revCh)
		c.revCh = make(chan struct{})
	}
}

func (c *cacher) watch(ctx context.Context, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wc := clientv3.NewWatcher(c.s.client)
	defer wc.Close()
	c.mu.Lock()
	c.wc = wc
	c.cancel = cancel
	c.mu.Unlock()
	ch := wc.Watch(wctx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	for resp := range ch {
		if resp.CompactRevision != 0 || resp.Canceled {
			klog.InfoS("watch cache restarting", "resource", c.info.Resource, "compactRevision", resp.CompactRevision, "err", resp.Err())
			return
		}
		if err := resp.Err(); err != nil {
			klog.ErrorS(err, "watch cache etcd watch failed", "resource", c.info.Resource)
			return
		}
		if resp.IsProgressNotify() {
			c.mu.Lock()
			c.setRevLocked(resp.Header.Revision)
			c.mu.Unlock()
			continue
		}
		c.apply(resp.Events)
	}
}

func (c *cacher) apply(evs []*clientv3.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		e := &event{key: key, rev: ev.Kv.ModRevision, prev: c.get(key)}
		switch ev.Type {
		case mvccpb.PUT:
			obj, err := c.s.decode(c.info, ev.Kv.Value, ev.Kv.ModRevision)
			if err != nil {
				klog.ErrorS(err, "watch cache cannot decode", "key", key)
				continue
			}
			e.obj = obj
			if e.prev == nil {
				e.typ = watch.Added
			} else {
				e.typ = watch.Modified
			}
			c.items.ReplaceOrInsert(entry{key: key, obj: obj})
			c.dirty = true
		case mvccpb.DELETE:
			last := e.prev
			if ev.PrevKv != nil {
				if o, err := c.s.decode(c.info, ev.PrevKv.Value, ev.Kv.ModRevision); err == nil {
					last = o
				}
			} else if last != nil {
				last = last.DeepCopyObject()
				setRV(last, ev.Kv.ModRevision)
			}
			if last == nil {
				continue
			}
			e.typ, e.obj = watch.Deleted, last
			c.items.Delete(entry{key: key})
			c.dirty = true
		}
		c.push(e)
		for w := range c.watchers {
			if !w.deliver(e) {
				delete(c.watchers, w)
			}
		}
		c.setRevLocked(e.rev)
	}
}

func (c *cacher) push(e *event) {
	size := len(c.ring)
	if c.n == size {
		dropped := c.ring[c.head]
		c.oldest = dropped.rev
		c.head = (c.head + 1) % size
		c.n--
	}
	c.ring[(c.head+c.n)%size] = e
	c.n++
}

// waitFresh blocks until the cache has caught up with rev.
func (c *cacher) waitFresh(ctx context.Context, rev int64) error {
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
	asked := false
	for {
		c.mu.Lock()
		cur, ch, wc := c.rev, c.revCh, c.wc
		c.mu.Unlock()
		if cur >= rev {
			return nil
		}
		if !asked && wc != nil {
			// Ask etcd for a progress notification in case nothing else moves the cache.
			_ = wc.RequestProgress(clientv3.WithRequireLeader(c.s.ctx))
			asked = true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errorf(ErrTooLarge, c.prefix, "Too large resource version: %d, current: %d", rev, cur)
		case <-time.After(100 * time.Millisecond):
			asked = false
		}
	}
}

// WatchOptions select a watch.
type WatchOptions struct {
	// ResourceVersion to start after; 0 starts with synthetic ADDED events for the current state.
	ResourceVersion int64
	// SendInitialEvents: the WatchList protocol — ADDED for every current object newer or equal
	// to ResourceVersion, then a BOOKMARK marking the end of the initial events.
	SendInitialEvents bool
	Prefix            string
	Filter            func(obj runtime.Object) bool
	// Buffer is the number of events a slow watcher may lag behind before it is ended.
	Buffer int
}

// Watch starts a watch on one resource.
func (s *Store) Watch(ctx context.Context, info *resource.Info, opts WatchOptions) (*Watcher, error) {
	c, err := s.cacher(info)
	if err != nil {
		return nil, err
	}
	if opts.ResourceVersion > 0 {
		if err := c.waitFresh(ctx, opts.ResourceVersion); err != nil {
			return nil, err
		}
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	w := &Watcher{
		c:      c,
		prefix: opts.Prefix,
		filter: opts.Filter,
		ch:     make(chan watch.Event, opts.Buffer),
		done:   make(chan struct{}),
	}
	c.mu.Lock()
	tooOld := !opts.SendInitialEvents && opts.ResourceVersion != 0 && opts.ResourceVersion < c.oldest
	c.mu.Unlock()
	if tooOld {
		// Older than the cache window (e.g. just after a restart): follow etcd directly from
		// that revision if etcd still has it; 410 Gone if it was compacted.
		return s.watchEtcd(ctx, c, w, opts.ResourceVersion)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case opts.SendInitialEvents || opts.ResourceVersion == 0:
		ascendPrefix(c.items, w.prefix, w.prefix, func(e entry) bool {
			if w.matches(e.obj) {
				w.initial = append(w.initial, watch.Event{Type: watch.Added, Object: e.obj})
			}
			return true
		})
		if opts.SendInitialEvents {
			w.initial = append(w.initial, watch.Event{Type: watch.Bookmark, Object: c.bookmarkLocked(true)})
		}
	default:
		if opts.ResourceVersion < c.oldest {
			// The window moved on between the check above and this lock (rare).
			return nil, errorf(ErrExpired, c.prefix, "too old resource version: %d (%d)", opts.ResourceVersion, c.oldest)
		}
		for i := 0; i < c.n; i++ {
			e := c.ring[(c.head+i)%len(c.ring)]
			if e.rev > opts.ResourceVersion {
				if ev, ok := w.translate(e); ok {
					w.initial = append(w.initial, ev)
				}
			}
		}
	}
	c.watchers[w] = struct{}{}
	return w, nil
}

// bookmarkLocked returns an empty object of the resource's kind carrying the cache revision.
func (c *cacher) bookmarkLocked(initialEnd bool) runtime.Object {
	obj := c.info.New()
	obj.GetObjectKind().SetGroupVersionKind(c.info.GroupVersionKind())
	m := obj.(metav1.Object)
	m.SetResourceVersion(fmt.Sprint(c.rev))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return obj
}

// Watcher is one API watch. Read Initial first, then ResultChan; Stop when done.
type Watcher struct {
	c       *cacher
	prefix  string
	filter  func(runtime.Object) bool
	initial []watch.Event
	ch      chan watch.Event
	done    chan struct{}
	once    sync.Once
	// cancel ends a watcher that follows etcd directly instead of the cache; lastRev is the
	// revision of the last event it delivered (bookmarks never go back before it).
	cancel  context.CancelFunc
	lastRev atomic.Int64
}

// watchEtcd serves a watch from an etcd watch of its own, for resource versions older than
// the cache window. It returns ErrExpired when etcd has compacted rev.
func (s *Store) watchEtcd(ctx context.Context, c *cacher, w *Watcher, rev int64) (*Watcher, error) {
	if _, err := s.client.Get(ctx, w.prefix, clientv3.WithRev(rev), clientv3.WithCountOnly(), clientv3.WithLimit(1)); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) || strings.Contains(err.Error(), "compacted") {
			return nil, errorf(ErrExpired, c.prefix, "too old resource version: %d (%d)", rev, c.oldest)
		}
		if strings.Contains(err.Error(), "future revision") {
			return nil, errorf(ErrTooLarge, c.prefix, "Too large resource version: %d", rev)
		}
		return nil, err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	w.cancel = cancel
	ch := s.client.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
	go func() {
		defer w.terminate()
		for resp := range ch {
			if resp.Err() != nil || resp.Canceled {
				return
			}
			for _, ev := range resp.Events {
				e := &event{key: string(ev.Kv.Key), rev: ev.Kv.ModRevision}
				if ev.PrevKv != nil {
					if prev, err := s.decode(c.info, ev.PrevKv.Value, ev.PrevKv.ModRevision); err == nil {
						e.prev = prev
					}
				}
				switch ev.Type {
				case mvccpb.PUT:
					obj, err := s.decode(c.info, ev.Kv.Value, ev.Kv.ModRevision)
					if err != nil {
						continue
					}
					e.typ, e.obj = watch.Modified, obj
					if ev.IsCreate() {
						e.typ, e.prev = watch.Added, nil
					}
				case mvccpb.DELETE:
					if e.prev == nil {
						continue
					}
					last := e.prev.DeepCopyObject()
					setRV(last, ev.Kv.ModRevision)
					e.typ, e.obj = watch.Deleted, last
				}
				ev, ok := w.translate(e)
				if !ok {
					continue
				}
				select {
				case w.ch <- ev:
					w.lastRev.Store(e.rev)
				case <-wctx.Done():
					return
				}
			}
		}
	}()
	return w, nil
}

// Initial returns the events to send before any from ResultChan.
func (w *Watcher) Initial() []watch.Event { return w.initial }

// ResultChan delivers live events; it is closed when the watcher is ended by the cache (slow
// consumer, relist, shutdown).
func (w *Watcher) ResultChan() <-chan watch.Event { return w.ch }

// Bookmark returns a BOOKMARK event at the cache's current revision.
func (w *Watcher) Bookmark() watch.Event {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	obj := w.c.bookmarkLocked(false)
	if last := w.lastRev.Load(); last > w.c.rev {
		obj.(metav1.Object).SetResourceVersion(fmt.Sprint(last))
	}
	return watch.Event{Type: watch.Bookmark, Object: obj}
}

// Stop ends the watch.
func (w *Watcher) Stop() {
	if w.cancel != nil {
		// A direct etcd watcher: its goroutine closes the channel when it ends.
		w.cancel()
		return
	}
	w.c.mu.Lock()
	delete(w.c.watchers, w)
	w.c.mu.Unlock()
	w.terminate()
}

func (w *Watcher) terminate() {
	w.once.Do(func() { close(w.ch) })
}

func (w *Watcher) matches(obj runtime.Object) bool {
	return obj != nil && (w.filter == nil || w.filter(obj))
}

// translate turns a cache event into what this watcher sees: objects entering or leaving
// its selection become ADDED or DELETED, as in kube-apiserver.
func (w *Watcher) translate(e *event) (watch.Event, bool) {
	if !strings.HasPrefix(e.key, w.prefix) {
		return watch.Event{}, false
	}
	switch e.typ {
	case watch.Deleted:
		if w.matches(e.obj) {
			return watch.Event{Type: watch.Deleted, Object: e.obj}, true
		}
		return watch.Event{}, false
	default:
		cur, prev := w.matches(e.obj), w.matches(e.prev)
		switch {
		case cur && prev:
			return watch.Event{Type: watch.Modified, Object: e.obj}, true
		case cur:
			return watch.Event{Type: watch.Added, Object: e.obj}, true
		case prev:
			return watch.Event{Type: watch.Deleted, Object: e.obj}, true
		}
	}
	return watch.Event{}, false
}

// deliver sends e without blocking; a watcher that cannot keep up is ended. It reports whether
// the watcher is still alive. Called with the cache lock held.
func (w *Watcher) deliver(e *event) bool {
	ev, ok := w.translate(e)
	if !ok {
		return true
	}
	select {
	case w.ch <- ev:
		return true
	default:
		klog.InfoS("ending slow watcher", "resource", w.c.info.Resource)
		w.terminate()
		return false
	}
}
