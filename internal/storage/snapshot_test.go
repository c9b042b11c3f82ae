package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kubesvc/internal/resource"
	"kubesvc/internal/storage/storagetest"
)

// White-box tests of lists served from cache snapshots (snapshot.go): they check where a
// page came from (the cache's own objects, or objects decoded from etcd), which the API
// cannot show. The semantics (KUBECTL-COMPAT.md §4.1: one consistent snapshot across pages,
// 410 for an expired continue token) are also tested from outside in store_test.go and
// internal/server.

var configMaps = resource.Lookup(corev1.SchemeGroupVersion.WithResource("configmaps"))

func newSnapshotStore(t *testing.T, n int) (*Store, context.Context) {
	t.Helper()
	s := New(Config{Client: storagetest.StartEtcd(t)})
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	for i := 0; i < n; i++ {
		c := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%02d", i), Namespace: "default"}}
		if _, err := s.Create(ctx, configMaps, s.Key(configMaps, "default", c.Name), c, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	return s, ctx
}

// fromCache reports whether every item is the cache's own object for its key at the
// snapshot of rev (pointer identity: etcd reads decode new objects).
func fromCache(t *testing.T, s *Store, res *ListResult) bool {
	t.Helper()
	c, err := s.cacher(configMaps)
	if err != nil {
		t.Fatal(err)
	}
	snap := c.find(res.ResourceVersion)
	if snap == nil {
		return false
	}
	for _, it := range res.Items {
		m := it.(metav1.Object)
		e, ok := snap.items.Get(entry{key: s.Key(configMaps, m.GetNamespace(), m.GetName())})
		if !ok || e.obj != it {
			return false
		}
	}
	return true
}

func names(res *ListResult) string {
	var out []string
	for _, it := range res.Items {
		out = append(out, it.(metav1.Object).GetName())
	}
	return fmt.Sprint(out)
}

func TestSnapshot_ContinuePagesComeFromTheCache(t *testing.T) {
	s, ctx := newSnapshotStore(t, 5)
	prefix := s.ListPrefix(configMaps, "default")
	page, err := s.List(ctx, configMaps, prefix, ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the first page: the snapshot keeps the first page's state.
	if _, err := s.Delete(ctx, configMaps, s.Key(configMaps, "default", "c03"), nil, false); err != nil {
		t.Fatal(err)
	}
	late := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c02a", Namespace: "default"}}
	if _, err := s.Create(ctx, configMaps, s.Key(configMaps, "default", late.Name), late, nil, false); err != nil {
		t.Fatal(err)
	}
	got := names(page)
	for page.Continue != "" {
		page, err = s.List(ctx, configMaps, prefix, ListOptions{Limit: 2, Continue: page.Continue})
		if err != nil {
			t.Fatal(err)
		}
		if !fromCache(t, s, page) {
			t.Fatalf("continue page %s was not served from the cache snapshot", names(page))
		}
		got += names(page)
	}
	if want := "[c00 c01][c02 c03][c04]"; got != want {
		t.Fatalf("pages %s, want %s", got, want)
	}
}

func TestSnapshot_ExactRevisionFromAKeptSnapshot(t *testing.T) {
	s, ctx := newSnapshotStore(t, 3)
	prefix := s.ListPrefix(configMaps, "default")
	first, err := s.List(ctx, configMaps, prefix, ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, configMaps, s.Key(configMaps, "default", "c00"), nil, false); err != nil {
		t.Fatal(err)
	}
	rv := strconv.FormatInt(first.ResourceVersion, 10)
	res, err := s.List(ctx, configMaps, prefix, ListOptions{ResourceVersion: rv, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	if names(res) != "[c00 c01 c02]" || res.ResourceVersion != first.ResourceVersion || !fromCache(t, s, res) {
		t.Fatalf("exact list at %s: %s at %d (from cache: %v), want [c00 c01 c02] from the snapshot", rv, names(res), res.ResourceVersion, fromCache(t, s, res))
	}
}

func TestSnapshot_CompactedRevisionIs410EvenWithASnapshot(t *testing.T) {
	s, ctx := newSnapshotStore(t, 3)
	prefix := s.ListPrefix(configMaps, "default")
	first, err := s.List(ctx, configMaps, prefix, ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "default"}}
	created, err := s.Create(ctx, configMaps, s.Key(configMaps, "default", c.Name), c, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := strconv.ParseInt(created.(metav1.Object).GetResourceVersion(), 10, 64)
	if _, err := s.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts ListOptions
		msg  string
	}{
		{name: "continue", opts: ListOptions{Limit: 1, Continue: first.Continue}, msg: "The provided continue parameter is too old"},
		{name: "exact", opts: ListOptions{ResourceVersion: strconv.FormatInt(first.ResourceVersion, 10), Exact: true}, msg: "too old resource version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.List(ctx, configMaps, prefix, tc.opts)
			var se *Error
			if !errors.Is(err, ErrExpired) || !errors.As(err, &se) || !strings.Contains(se.Message, tc.msg) {
				t.Fatalf("list at compacted revision %d: %v, want ErrExpired %q", first.ResourceVersion, err, tc.msg)
			}
		})
	}
}

func TestSnapshot_EvictedSnapshotsFallBackToEtcd(t *testing.T) {
	s, ctx := newSnapshotStore(t, 3)
	prefix := s.ListPrefix(configMaps, "default")
	var firsts []*ListResult
	for i := 0; i <= maxSnapshots; i++ {
		p, err := s.List(ctx, configMaps, prefix, ListOptions{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, p)
		// A write between lists: each first page has its own revision and snapshot.
		c := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("z%02d", i), Namespace: "default"}}
		if _, err := s.Create(ctx, configMaps, s.Key(configMaps, "default", c.Name), c, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	cc, _ := s.cacher(configMaps)
	cc.mu.Lock()
	kept := len(cc.snaps)
	_, oldestKept := cc.snaps[firsts[0].ResourceVersion]
	cc.mu.Unlock()
	if kept != maxSnapshots || oldestKept {
		t.Fatalf("%d snapshots kept (the oldest among them: %v), want %d without the oldest", kept, oldestKept, maxSnapshots)
	}
	for i, first := range []*ListResult{firsts[0], firsts[maxSnapshots]} {
		page, err := s.List(ctx, configMaps, prefix, ListOptions{Limit: 10, Continue: first.Continue})
		if err != nil {
			t.Fatal(err)
		}
		// Page 2 of list k: c02 and the z.. created before it.
		want := "[c02"
		k := []int{0, maxSnapshots}[i]
		for j := 0; j < k; j++ {
			want += fmt.Sprintf(" z%02d", j)
			if j == 8 {
				break
			}
		}
		want += "]"
		if names(page) != want {
			t.Fatalf("continue of list %d: %s, want %s", k, names(page), want)
		}
		if got := fromCache(t, s, page); got != (i == 1) {
			t.Fatalf("continue of list %d served from the cache: %v, want %v", k, got, i == 1)
		}
	}
}

// TestSnapshot_ListsWhileWriting pages through the cache while other goroutines write: every
// pagination must be exactly the state at its first page's revision (checked against etcd at
// that revision), and the race detector must see no unsynchronised access to the shared
// B-tree nodes of a snapshot and the live cache.
func TestSnapshot_ListsWhileWriting(t *testing.T) {
	s, ctx := newSnapshotStore(t, 40)
	prefix := s.ListPrefix(configMaps, "default")
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 2)
	for w := 0; w < 2; w++ {
		go func() {
			for i := 0; wctx.Err() == nil; i++ {
				name := fmt.Sprintf("c%02d", (i*7+w*13)%40)
				key := s.Key(configMaps, "default", name)
				var err error
				if i%3 == 0 {
					_, err = s.Delete(wctx, configMaps, key, nil, false)
					if errors.Is(err, ErrNotFound) {
						err = nil
					}
				} else {
					c := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"i": strconv.Itoa(i)}}
					if _, err = s.Create(wctx, configMaps, key, c, nil, false); errors.Is(err, ErrExists) {
						_, err = s.GuaranteedUpdate(wctx, configMaps, key, func(cur runtime.Object) (runtime.Object, *Txn, error) {
							return c, nil, nil
						}, false)
					}
				}
				if err != nil && wctx.Err() == nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for round := 0; round < 20; round++ {
		page, err := s.List(ctx, configMaps, prefix, ListOptions{Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		rev := page.ResourceVersion
		got := names(page)
		for page.Continue != "" {
			if page, err = s.List(ctx, configMaps, prefix, ListOptions{Limit: 7, Continue: page.Continue}); err != nil {
				t.Fatal(err)
			}
			got += names(page)
		}
		want, err := s.listEtcd(ctx, configMaps, prefix, ListOptions{ResourceVersion: strconv.FormatInt(rev, 10), Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := strings.ReplaceAll(got, "][", " "), names(want); g != w {
			t.Fatalf("round %d at revision %d: pages gave %s, etcd has %s", round, rev, g, w)
		}
	}
	stop()
	for w := 0; w < 2; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
