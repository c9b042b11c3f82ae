package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
	"kubesvc/internal/storage/storagetest"
)

var cmInfo = resource.Lookup(corev1.SchemeGroupVersion.WithResource("configmaps"))

func newStore(t *testing.T, window int) (*storage.Store, context.Context) {
	t.Helper()
	c := storagetest.StartEtcd(t)
	s := storage.New(storage.Config{Client: c, WatchWindow: window})
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return s, ctx
}

func cm(name string, data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"k": data}}
}

func rvOf(t *testing.T, obj runtime.Object) int64 {
	t.Helper()
	rv, err := strconv.ParseInt(obj.(metav1.Object).GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion: %v", err)
	}
	return rv
}

func TestStore_CreateGetUpdateDelete(t *testing.T) {
	s, ctx := newStore(t, 100)
	key := s.Key(cmInfo, "default", "a")
	created, err := s.Create(ctx, cmInfo, key, cm("a", "1"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, cmInfo, key, cm("a", "1"), nil, false); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	got, err := s.Get(ctx, cmInfo, key)
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(t, got) != rvOf(t, created) {
		t.Fatalf("get rv %d != create rv %d", rvOf(t, got), rvOf(t, created))
	}
	updated, err := s.GuaranteedUpdate(ctx, cmInfo, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
		c := cur.(*corev1.ConfigMap)
		c.Data["k"] = "2"
		return c, nil, nil
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(t, updated) <= rvOf(t, created) {
		t.Fatalf("update did not advance the resourceVersion: %d <= %d", rvOf(t, updated), rvOf(t, created))
	}
	// A no-op update writes nothing and keeps the resourceVersion.
	same, err := s.GuaranteedUpdate(ctx, cmInfo, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) { return cur, nil, nil }, false)
	if err != nil || rvOf(t, same) != rvOf(t, updated) {
		t.Fatalf("no-op update: rv %v err %v, want rv %d", same, err, rvOf(t, updated))
	}
	deleted, err := s.Delete(ctx, cmInfo, key, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(t, deleted) <= rvOf(t, updated) {
		t.Fatalf("delete rv %d not after update rv %d", rvOf(t, deleted), rvOf(t, updated))
	}
	if _, err := s.Get(ctx, cmInfo, key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
}

func TestStore_DryRunWritesNothing(t *testing.T) {
	s, ctx := newStore(t, 100)
	key := s.Key(cmInfo, "default", "dry")
	if _, err := s.Create(ctx, cmInfo, key, cm("dry", "1"), nil, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, cmInfo, key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("dry-run create stored the object: %v", err)
	}
}

func TestStore_ListPaginationIsOneSnapshot(t *testing.T) {
	s, ctx := newStore(t, 100)
	for _, tc := range []struct{ name, rv, ns string }{
		{name: "consistent list from cache", rv: "", ns: "ns1"},
		{name: "any resourceVersion", rv: "0", ns: "ns2"},
		{name: "not older than", rv: "last", ns: "ns3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := tc.rv
			for i := 0; i < 5; i++ {
				c := cm(fmt.Sprintf("c%d", i), "x")
				c.Namespace = tc.ns
				created, err := s.Create(ctx, cmInfo, s.Key(cmInfo, tc.ns, c.Name), c, nil, false)
				if err != nil {
					t.Fatal(err)
				}
				if tc.rv == "last" {
					rv = strconv.FormatInt(rvOf(t, created), 10)
				}
			}
			if rv == "0" {
				// "Any" state: wait until the cache has the creates, as a client would retry.
				if _, err := s.List(ctx, cmInfo, s.ListPrefix(cmInfo, tc.ns), storage.ListOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			prefix := s.ListPrefix(cmInfo, tc.ns)
			page, err := s.List(ctx, cmInfo, prefix, storage.ListOptions{ResourceVersion: rv, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 2 || page.Continue == "" || page.RemainingItemCount == nil || *page.RemainingItemCount != 3 {
				t.Fatalf("first page: %d items, continue %q, remaining %v", len(page.Items), page.Continue, page.RemainingItemCount)
			}
			// A write after the first page must not show up in later pages.
			late := cm("c3a", "late")
			late.Namespace = tc.ns
			if _, err := s.Create(ctx, cmInfo, s.Key(cmInfo, tc.ns, late.Name), late, nil, false); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, it := range page.Items {
				names = append(names, it.(*corev1.ConfigMap).Name)
			}
			for page.Continue != "" {
				page, err = s.List(ctx, cmInfo, prefix, storage.ListOptions{Limit: 2, Continue: page.Continue})
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range page.Items {
					names = append(names, it.(*corev1.ConfigMap).Name)
				}
			}
			if want := "[c0 c1 c2 c3 c4]"; fmt.Sprint(names) != want {
				t.Fatalf("pages gave %v, want %s (one snapshot, without the late object)", names, want)
			}
		})
	}
}

func next(t *testing.T, w *storage.Watcher) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event in 10s")
	}
	return watch.Event{}
}

func TestStore_WatchResumeFromWindow(t *testing.T) {
	s, ctx := newStore(t, 3)
	key := s.Key(cmInfo, "default", "w")
	first, err := s.Create(ctx, cmInfo, key, cm("w", "0"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, cmInfo, storage.WatchOptions{ResourceVersion: rvOf(t, first), Prefix: s.ResourcePrefix(cmInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 1; i <= 5; i++ {
		if _, err := s.GuaranteedUpdate(ctx, cmInfo, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
			c := cur.(*corev1.ConfigMap)
			c.Data["k"] = strconv.Itoa(i)
			return c, nil, nil
		}, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		ev := next(t, w)
		if ev.Type != watch.Modified || ev.Object.(*corev1.ConfigMap).Data["k"] != strconv.Itoa(i) {
			t.Fatalf("event %d: %s %v", i, ev.Type, ev.Object.(*corev1.ConfigMap).Data)
		}
	}
}

func TestStore_WatchListEndsInitialEventsWithBookmark(t *testing.T) {
	s, ctx := newStore(t, 100)
	for _, n := range []string{"a", "b"} {
		if _, err := s.Create(ctx, cmInfo, s.Key(cmInfo, "default", n), cm(n, "x"), nil, false); err != nil {
			t.Fatal(err)
		}
	}
	w, err := s.Watch(ctx, cmInfo, storage.WatchOptions{SendInitialEvents: true, Prefix: s.ResourcePrefix(cmInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	init := w.Initial()
	if len(init) != 3 || init[0].Type != watch.Added || init[1].Type != watch.Added || init[2].Type != watch.Bookmark {
		t.Fatalf("initial events: %v", init)
	}
	if ann := init[2].Object.(metav1.Object).GetAnnotations(); ann[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("bookmark annotations %v", ann)
	}
}

func TestStore_WatchFilterTranslatesEvents(t *testing.T) {
	s, ctx := newStore(t, 100)
	key := s.Key(cmInfo, "default", "f")
	w, err := s.Watch(ctx, cmInfo, storage.WatchOptions{ResourceVersion: 1, Prefix: s.ResourcePrefix(cmInfo), Filter: func(o runtime.Object) bool {
		return o.(*corev1.ConfigMap).Data["k"] == "in"
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	set := func(v string) {
		if _, err := s.GuaranteedUpdate(ctx, cmInfo, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
			c := cur.(*corev1.ConfigMap)
			c.Data["k"] = v
			return c, nil, nil
		}, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, cmInfo, key, cm("f", "out"), nil, false); err != nil {
		t.Fatal(err)
	}
	set("in")  // enters the selection: ADDED
	set("in2") // leaves it: DELETED
	for _, want := range []watch.EventType{watch.Added, watch.Deleted} {
		if ev := next(t, w); ev.Type != want {
			t.Fatalf("got %s, want %s", ev.Type, want)
		}
	}
}

func TestStore_WatchOlderThanWindowFollowsEtcd(t *testing.T) {
	s, ctx := newStore(t, 2)
	key := s.Key(cmInfo, "default", "old")
	first, err := s.Create(ctx, cmInfo, key, cm("old", "0"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if _, err := s.GuaranteedUpdate(ctx, cmInfo, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
			c := cur.(*corev1.ConfigMap)
			c.Data["k"] = strconv.Itoa(i)
			return c, nil, nil
		}, false); err != nil {
			t.Fatal(err)
		}
	}
	// Make sure the cache has moved past the first revision's window.
	if _, err := s.List(ctx, cmInfo, s.ResourcePrefix(cmInfo), storage.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, cmInfo, storage.WatchOptions{ResourceVersion: rvOf(t, first), Prefix: s.ResourcePrefix(cmInfo)})
	if err != nil {
		t.Fatalf("watch from an uncompacted revision older than the window: %v", err)
	}
	defer w.Stop()
	for i := 1; i <= 4; i++ {
		ev := next(t, w)
		if ev.Type != watch.Modified || ev.Object.(*corev1.ConfigMap).Data["k"] != strconv.Itoa(i) {
			t.Fatalf("event %d: %s %v", i, ev.Type, ev.Object.(*corev1.ConfigMap).Data)
		}
	}
	// Once etcd compacts, the same request is 410 Gone.
	if _, err := s.Client().Compact(ctx, rvOf(t, first)+2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, cmInfo, storage.WatchOptions{ResourceVersion: rvOf(t, first), Prefix: s.ResourcePrefix(cmInfo)}); !errors.Is(err, storage.ErrExpired) {
		t.Fatalf("watch from a compacted revision: %v, want ErrExpired", err)
	}
}
