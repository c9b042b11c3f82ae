package server_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"kubesvc/internal/server"
	"kubesvc/internal/servertest"
)

const eventTimeout = 10 * time.Second

// nextEvent returns the next event of w, failing the test after eventTimeout.
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed, want an event")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no watch event within %v", eventTimeout)
	}
	return watch.Event{}
}

// eventSummary is "TYPE name" for objects and "TYPE code reason" for errors.
func eventSummary(ev watch.Event) string {
	switch o := ev.Object.(type) {
	case *metav1.Status:
		return fmt.Sprintf("%s %d %s", ev.Type, o.Code, o.Reason)
	case metav1.Object:
		return string(ev.Type) + " " + o.GetName()
	}
	return string(ev.Type)
}

// expectEvents reads len(want) events and compares their summaries.
func expectEvents(t *testing.T, w watch.Interface, want ...string) []watch.Event {
	t.Helper()
	var got []string
	var evs []watch.Event
	for range want {
		ev := nextEvent(t, w)
		evs = append(evs, ev)
		got = append(got, eventSummary(ev))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	return evs
}

func rvOf(t *testing.T, ev watch.Event) string {
	t.Helper()
	m, ok := ev.Object.(metav1.Object)
	if !ok {
		t.Fatalf("event object %T has no metadata", ev.Object)
	}
	return m.GetResourceVersion()
}

func TestServer_Watch(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace(t, "watch")
	ctx := t.Context()
	cms := e.cs.CoreV1().ConfigMaps(ns)

	l, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := cms.Create(ctx, newConfigMap("a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Patch(ctx, "a", types.MergePatchType, []byte(`{"data":{"key":"v2"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := expectEvents(t, w, "ADDED a", "MODIFIED a", "DELETED a")
	if got := evs[1].Object.(*corev1.ConfigMap).Data["key"]; got != "v2" {
		t.Errorf("MODIFIED carries data %q, want v2", got)
	}
	var rvs []string
	for _, ev := range evs {
		rvs = append(rvs, rvOf(t, ev))
	}
	if rvs[0] == rvs[1] || rvs[1] == rvs[2] {
		t.Errorf("event resourceVersions %v are not distinct", rvs)
	}

	t.Run("resume from a resourceVersion", func(t *testing.T) {
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: rvs[0]})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		got := expectEvents(t, w, "MODIFIED a", "DELETED a")
		if rvOf(t, got[0]) != rvs[1] || rvOf(t, got[1]) != rvs[2] {
			t.Errorf("resumed events at %s,%s, want %s,%s", rvOf(t, got[0]), rvOf(t, got[1]), rvs[1], rvs[2])
		}
	})

	t.Run("resourceVersion 0 starts with the current state", func(t *testing.T) {
		if _, err := cms.Create(ctx, newConfigMap("b"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: "0", LabelSelector: "app=b"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		expectEvents(t, w, "ADDED b")
	})

	t.Run("selector: leaving the selection is DELETED", func(t *testing.T) {
		cur, err := cms.Get(ctx, "b", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: cur.ResourceVersion, LabelSelector: labels.Set{"app": "b"}.String()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := cms.Patch(ctx, "b", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"other"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cms.Patch(ctx, "b", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"b"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, w, "DELETED b", "ADDED b")
	})

	t.Run("WatchList: initial events then the initial-events-end bookmark", func(t *testing.T) {
		yes := true
		w, err := cms.Watch(ctx, metav1.ListOptions{
			LabelSelector:        "app=b",
			SendInitialEvents:    &yes,
			ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
			AllowWatchBookmarks:  true,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		evs := expectEvents(t, w, "ADDED b", "BOOKMARK ")
		m := evs[1].Object.(metav1.Object)
		if m.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" || m.GetResourceVersion() == "" {
			t.Errorf("bookmark annotations %v rv %q, want %s=true and a resourceVersion", m.GetAnnotations(), m.GetResourceVersion(), metav1.InitialEventsAnnotationKey)
		}
	})
}

// TestServer_Informers syncs a SharedInformerFactory through both reflector protocols.
func TestServer_Informers(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace(t, "informers")
	ctx := t.Context()
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, newConfigMap("before"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		watchList bool
		// wantRequest reports whether the reflector's first request used the expected protocol.
		wantRequest func(q url.Values) bool
	}{
		{
			name: "WatchList (default)", watchList: true,
			wantRequest: func(q url.Values) bool {
				return q.Get("watch") == "true" && q.Get("sendInitialEvents") == "true" && q.Get("resourceVersionMatch") == "NotOlderThan"
			},
		},
		{
			name: "classic list and watch", watchList: false,
			wantRequest: func(q url.Values) bool { return q.Get("watch") == "" && q.Get("sendInitialEvents") == "" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, tc.watchList)
			ie := envFor(t, e.s)
			factory := informers.NewSharedInformerFactoryWithOptions(ie.cs, 0, informers.WithNamespace(ns))
			inf := factory.Core().V1().ConfigMaps()
			lister := inf.Lister()
			inf.Informer() // register before Start
			stop := make(chan struct{})
			defer func() { close(stop); factory.Shutdown() }()
			factory.Start(stop)
			syncCtx, cancel := contextWithTimeout(t, 30*time.Second)
			defer cancel()
			if !cache.WaitForCacheSync(syncCtx.Done(), inf.Informer().HasSynced) {
				t.Fatalf("informer did not sync in 30s; requests: %v", ie.requests.all())
			}
			if _, err := lister.ConfigMaps(ns).Get("before"); err != nil {
				t.Errorf("lister after sync: %v", err)
			}
			reqs := ie.requests.all()
			if len(reqs) == 0 {
				t.Fatal("no request recorded")
			}
			u, err := url.Parse(reqs[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantRequest(u.Query()) {
				t.Errorf("first reflector request %s does not use the expected protocol", reqs[0].URL)
			}
			name := "after-" + strings.Fields(strings.ToLower(tc.name))[0]
			if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, newConfigMap(name), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			servertest.WaitFor(t, eventTimeout, "informer sees "+name, func() error {
				_, err := lister.ConfigMaps(ns).Get(name)
				return err
			})
		})
	}
}

// TestServer_Restart restarts a server on the same data directory: objects persist, a watch
// resumes from the last resourceVersion it saw, and an older resourceVersion is expired.
func TestServer_Restart(t *testing.T) {
	dir := t.TempDir()
	s1 := servertest.StartTestServer(t, servertest.WithDataDir(dir))
	e1 := envFor(t, s1)
	ns := e1.namespace(t, "restart")
	ctx := t.Context()
	cms := e1.cs.CoreV1().ConfigMaps(ns)
	a, err := cms.Create(ctx, newConfigMap("a"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, newConfigMap("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// b is the last write before the restart; its event carries the last resourceVersion.
	last := rvOf(t, expectEvents(t, w, "ADDED b")[0])
	servertest.Close(s1)
	// The watch ends with the server.
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
drain:
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				break drain
			}
		case <-timer.C:
			t.Fatal("watch did not end when the server closed")
		}
	}

	s2 := servertest.StartTestServer(t, servertest.WithDataDir(dir))
	e2 := envFor(t, s2)
	cms = e2.cs.CoreV1().ConfigMaps(ns)

	t.Run("objects persist", func(t *testing.T) {
		got, err := cms.Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.UID != a.UID || got.ResourceVersion != a.ResourceVersion {
			t.Errorf("a after restart: uid %s rv %s, want %s %s", got.UID, got.ResourceVersion, a.UID, a.ResourceVersion)
		}
		l, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "app in (a,b)"})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 2 {
			t.Errorf("%d configmaps a and b after restart, want 2", len(l.Items))
		}
	})

	t.Run("watch resumes from the last resourceVersion", func(t *testing.T) {
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: last})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := cms.Create(ctx, newConfigMap("c"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, w, "ADDED c")
	})

	t.Run("compacted resourceVersion is 410 Gone", func(t *testing.T) {
		// A resourceVersion etcd has compacted cannot be resumed. Like kube-apiserver, the
		// watch is accepted and its first event is an ERROR carrying a 410 Expired Status
		// (client-go's RetryWatcher stops only on that; a plain 410 response makes it retry the
		// same resourceVersion forever).
		etcd := server.EtcdClient(s2)
		cur, err := etcd.Get(ctx, "compact-probe")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := etcd.Compact(ctx, cur.Header.Revision); err != nil {
			t.Fatal(err)
		}
		jsonCfg := rest.CopyConfig(s2.RESTConfig)
		jsonCfg.ContentType = runtime.ContentTypeJSON
		jsonCS, err := kubernetes.NewForConfig(jsonCfg)
		if err != nil {
			t.Fatal(err)
		}
		clients := []struct {
			name string
			cs   kubernetes.Interface
		}{
			{name: "protobuf", cs: e2.cs},
			{name: "json", cs: jsonCS},
		}
		for _, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				w, err := c.cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: a.ResourceVersion})
				if err != nil {
					t.Fatalf("watch from %s: %v, want an ERROR event", a.ResourceVersion, err)
				}
				defer w.Stop()
				ev := nextEvent(t, w)
				st, ok := ev.Object.(*metav1.Status)
				if ev.Type != watch.Error || !ok || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
					t.Fatalf("first event %s, want ERROR 410 Expired", eventSummary(ev))
				}
				if want := "too old resource version: " + a.ResourceVersion; !strings.HasPrefix(st.Message, want) {
					t.Errorf("message %q, want prefix %q", st.Message, want)
				}
			})
		}
	})
}

// TestServer_Compaction lists at a compacted revision and continues a compacted list.
func TestServer_Compaction(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace(t, "compaction")
	ctx := t.Context()
	cms := e.cs.CoreV1().ConfigMaps(ns)
	first, err := cms.Create(ctx, newConfigMap("a"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, newConfigMap("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	page, err := cms.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if page.Continue == "" {
		t.Fatal("first page has no continue token")
	}
	if _, err := cms.Create(ctx, newConfigMap("c"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cur, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := parseRV(cur.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.EtcdClient(e.s).Compact(ctx, rev); err != nil {
		t.Fatalf("compact etcd at %d: %v", rev, err)
	}
	tests := []struct {
		name string
		opts metav1.ListOptions
	}{
		{name: "exact resourceVersion", opts: metav1.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact}},
		{name: "continue", opts: metav1.ListOptions{Limit: 1, Continue: page.Continue}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cms.List(ctx, tc.opts)
			if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
				t.Fatalf("list: %v, want 410 Expired", err)
			}
		})
	}
	t.Run("current list still works", func(t *testing.T) {
		l, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "app in (a,b,c)"})
		if err != nil || len(l.Items) != 3 {
			t.Fatalf("list after compaction: %d items, %v", len(l.Items), err)
		}
	})
}
