package garbagecollector

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/util/workqueue"
)

var cmGVK = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}

func newTestController(t *testing.T) *Controller {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Metadata: metadatafake.NewSimpleMetadataClient(scheme)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.graphChanges.ShutDown()
		c.attemptToDelete.ShutDown()
		c.attemptToOrphan.ShutDown()
	})
	return c
}

type metaOpt func(*metav1.PartialObjectMetadata)

func owned(uid types.UID, name string, block bool) metaOpt {
	return func(m *metav1.PartialObjectMetadata) {
		m.OwnerReferences = append(m.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: name, UID: uid, BlockOwnerDeletion: &block})
	}
}

func deleting(finalizers ...string) metaOpt {
	return func(m *metav1.PartialObjectMetadata) {
		ts := metav1.NewTime(time.Unix(1, 0))
		m.DeletionTimestamp = &ts
		m.Finalizers = finalizers
	}
}

func cm(name string, opts ...metaOpt) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name + "-uid")}}
	for _, o := range opts {
		o(m)
	}
	return m
}

func add(m *metav1.PartialObjectMetadata) *event { return &event{typ: addEvent, gvk: cmGVK, obj: m} }
func update(old, cur *metav1.PartialObjectMetadata) *event {
	return &event{typ: updateEvent, gvk: cmGVK, obj: cur, old: old}
}
func del(m *metav1.PartialObjectMetadata) *event { return &event{typ: deleteEvent, gvk: cmGVK, obj: m} }

// drain returns the names of the nodes queued in q, sorted, and empties it.
func drain(q workqueue.TypedRateLimitingInterface[*node]) []string {
	var out []string
	for q.Len() > 0 {
		n, _ := q.Get()
		out = append(out, n.identity.name)
		q.Done(n)
		q.Forget(n)
	}
	slices.Sort(out)
	return out
}

func TestGraph_ApplyEvent(t *testing.T) {
	tests := []struct {
		name string
		// setup events are applied and their queued work discarded; then events.
		setup, events []*event
		wantDelete    []string
		wantOrphan    []string
		check         func(t *testing.T, c *Controller)
	}{
		{
			name:       "dependent of an unseen owner creates a virtual owner to verify",
			events:     []*event{add(cm("dep", owned("owner-uid", "owner", true)))},
			wantDelete: []string{"owner"},
			check: func(t *testing.T, c *Controller) {
				o := c.graph.nodes["owner-uid"]
				if o == nil || !o.virtual || len(o.dependents) != 1 {
					t.Fatalf("owner node = %+v, want virtual with one dependent", o)
				}
			},
		},
		{
			name:   "observing a virtual owner makes it real",
			setup:  []*event{add(cm("dep", owned("owner-uid", "owner", true)))},
			events: []*event{add(cm("owner"))},
			check: func(t *testing.T, c *Controller) {
				if o := c.graph.nodes["owner-uid"]; o.virtual || len(o.dependents) != 1 {
					t.Fatalf("owner node = %+v, want real with one dependent", o)
				}
			},
		},
		{
			name:       "owner deletion enqueues its dependents",
			setup:      []*event{add(cm("owner")), add(cm("a", owned("owner-uid", "owner", false))), add(cm("b", owned("owner-uid", "owner", false)))},
			events:     []*event{del(cm("owner"))},
			wantDelete: []string{"a", "b"},
			check: func(t *testing.T, c *Controller) {
				if c.graph.nodes["owner-uid"] != nil {
					t.Error("deleted owner still in the graph")
				}
				if !c.absent.has(objectRef{apiVersion: "v1", kind: "ConfigMap", namespace: "ns", name: "owner", uid: "owner-uid"}) {
					t.Error("deleted owner not recorded as absent")
				}
			},
		},
		{
			name:       "foreground deletion enqueues the owner and its dependents",
			setup:      []*event{add(cm("owner")), add(cm("a", owned("owner-uid", "owner", true)))},
			events:     []*event{update(cm("owner"), cm("owner", deleting(metav1.FinalizerDeleteDependents)))},
			wantDelete: []string{"a", "owner"},
			check: func(t *testing.T, c *Controller) {
				if !c.graph.nodes["owner-uid"].deletingDependents {
					t.Error("owner not marked deletingDependents")
				}
			},
		},
		{
			name:       "orphan deletion enqueues the owner for orphaning",
			setup:      []*event{add(cm("owner")), add(cm("a", owned("owner-uid", "owner", true)))},
			events:     []*event{update(cm("owner"), cm("owner", deleting(metav1.FinalizerOrphanDependents)))},
			wantOrphan: []string{"owner"},
		},
		{
			name:  "an unchanged deleting owner is not enqueued again",
			setup: []*event{add(cm("owner", deleting(metav1.FinalizerOrphanDependents)))},
			events: []*event{update(cm("owner", deleting(metav1.FinalizerOrphanDependents)),
				cm("owner", deleting(metav1.FinalizerOrphanDependents, "other")))},
		},
		{
			name: "a dependent dropping blockOwnerDeletion unblocks its deleting owner",
			setup: []*event{
				add(cm("owner", deleting(metav1.FinalizerDeleteDependents))),
				add(cm("a", owned("owner-uid", "owner", true))),
			},
			events:     []*event{update(cm("a", owned("owner-uid", "owner", true)), cm("a", owned("owner-uid", "owner", false)))},
			wantDelete: []string{"owner"},
			check: func(t *testing.T, c *Controller) {
				if got := c.graph.blockingDependents(c.graph.nodes["owner-uid"]); len(got) != 0 {
					t.Errorf("blocking dependents = %d, want 0", len(got))
				}
			},
		},
		{
			name: "a deleted dependent re-enqueues its deleting owner",
			setup: []*event{
				add(cm("owner", deleting(metav1.FinalizerDeleteDependents))),
				add(cm("a", owned("owner-uid", "owner", true))),
			},
			events:     []*event{del(cm("a", owned("owner-uid", "owner", true)))},
			wantDelete: []string{"owner"},
			check: func(t *testing.T, c *Controller) {
				if n := len(c.graph.nodes["owner-uid"].dependents); n != 0 {
					t.Errorf("owner has %d dependents, want 0", n)
				}
			},
		},
		{
			name:       "removing an ownerReference unlinks the dependent",
			setup:      []*event{add(cm("owner")), add(cm("a", owned("owner-uid", "owner", false)))},
			events:     []*event{update(cm("a", owned("owner-uid", "owner", false)), cm("a"))},
			wantDelete: nil,
			check: func(t *testing.T, c *Controller) {
				if n := len(c.graph.nodes["owner-uid"].dependents); n != 0 {
					t.Errorf("owner has %d dependents, want 0", n)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestController(t)
			for _, ev := range tc.setup {
				c.applyEvent(ev)
			}
			drain(c.attemptToDelete)
			drain(c.attemptToOrphan)
			for _, ev := range tc.events {
				c.applyEvent(ev)
			}
			if diff := cmp.Diff(tc.wantDelete, drain(c.attemptToDelete)); diff != "" {
				t.Errorf("attemptToDelete (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantOrphan, drain(c.attemptToOrphan)); diff != "" {
				t.Errorf("attemptToOrphan (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestReferencesDiffs(t *testing.T) {
	yes, no := true, false
	ref := func(uid string, block *bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: uid, UID: types.UID(uid), BlockOwnerDeletion: block}
	}
	tests := []struct {
		name                   string
		old, cur               []metav1.OwnerReference
		wantAdded, wantRemoved []metav1.OwnerReference
		wantChanged            [][2]metav1.OwnerReference
	}{
		{name: "none"},
		{name: "same", old: []metav1.OwnerReference{ref("a", &yes)}, cur: []metav1.OwnerReference{ref("a", &yes)}},
		{name: "nil and false block are equal", old: []metav1.OwnerReference{ref("a", nil)}, cur: []metav1.OwnerReference{ref("a", &no)}},
		{
			name:        "added removed changed",
			old:         []metav1.OwnerReference{ref("a", &yes), ref("b", nil)},
			cur:         []metav1.OwnerReference{ref("a", &no), ref("c", nil)},
			wantAdded:   []metav1.OwnerReference{ref("c", nil)},
			wantRemoved: []metav1.OwnerReference{ref("b", nil)},
			wantChanged: [][2]metav1.OwnerReference{{ref("a", &yes), ref("a", &no)}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			added, removed, changed := referencesDiffs(tc.old, tc.cur)
			if diff := cmp.Diff(tc.wantAdded, added); diff != "" {
				t.Errorf("added (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRemoved, removed); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantChanged, changed); diff != "" {
				t.Errorf("changed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAbsentCache_Bounded(t *testing.T) {
	c := newAbsentCache(2)
	a, b, d := objectRef{uid: "a"}, objectRef{uid: "b"}, objectRef{uid: "d"}
	c.add(a)
	c.add(b)
	c.add(a)
	c.add(d)
	if c.has(a) || !c.has(b) || !c.has(d) {
		t.Errorf("after a, b, a, d with size 2: has(a)=%v has(b)=%v has(d)=%v, want false true true", c.has(a), c.has(b), c.has(d))
	}
}
