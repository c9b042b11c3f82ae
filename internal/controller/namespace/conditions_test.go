package namespace

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestUpdateConditions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	ok := func(typ corev1.NamespaceConditionType, at time.Time) corev1.NamespaceCondition {
		return corev1.NamespaceCondition{Type: typ, Status: corev1.ConditionFalse, Reason: okReasons[typ], Message: okMessages[typ], LastTransitionTime: metav1.NewTime(at)}
	}
	allOK := func(at time.Time) []corev1.NamespaceCondition {
		var out []corev1.NamespaceCondition
		for _, typ := range conditionTypes {
			out = append(out, ok(typ, at))
		}
		return out
	}
	remaining := corev1.NamespaceCondition{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Reason: "SomeResourcesRemain", Message: "Some resources are remaining: pods. has 1 resource instances"}
	// with returns allOK(t0) with the condition of c's type replaced by c at time at.
	with := func(c corev1.NamespaceCondition, at time.Time) []corev1.NamespaceCondition {
		out := allOK(t0)
		c.LastTransitionTime = metav1.NewTime(at)
		out[slices.Index(conditionTypes, c.Type)] = c
		return out
	}
	tests := []struct {
		name        string
		have        []corev1.NamespaceCondition
		failing     []corev1.NamespaceCondition
		want        []corev1.NamespaceCondition
		wantChanged bool
	}{
		{name: "first pass sets every type", want: allOK(t1), wantChanged: true},
		{name: "unchanged keeps transition times", have: allOK(t0), want: allOK(t0)},
		{name: "failure transitions", have: allOK(t0), failing: []corev1.NamespaceCondition{remaining}, want: with(remaining, t1), wantChanged: true},
		{name: "same failure keeps transition time", have: with(remaining, t0), failing: []corev1.NamespaceCondition{remaining}, want: with(remaining, t0)},
		{name: "recovery transitions", have: with(remaining, t0), want: with(ok(corev1.NamespaceContentRemaining, t1), t1), wantChanged: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &corev1.NamespaceStatus{Conditions: slices.Clone(tc.have)}
			changed := updateConditions(st, tc.failing, t1)
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if diff := cmp.Diff(tc.want, st.Conditions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContent_Conditions(t *testing.T) {
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	svcs := schema.GroupVersionResource{Version: "v1", Resource: "services"}
	tests := []struct {
		name    string
		content content
		want    []corev1.NamespaceCondition
	}{
		{name: "empty", content: content{}, want: nil},
		{
			name: "remaining with finalizers",
			content: content{
				remaining:  map[schema.GroupVersionResource]int{svcs: 1, pods: 2},
				finalizers: map[string]int{"b/x": 1, "a/y": 2},
			},
			want: []corev1.NamespaceCondition{
				{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Reason: "SomeResourcesRemain",
					Message: "Some resources are remaining: pods. has 2 resource instances, services. has 1 resource instances"},
				{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionTrue, Reason: "SomeFinalizerRemain",
					Message: "Some finalizers are remaining: a/y in 2 resource instances, b/x in 1 resource instances"},
			},
		},
		{
			name:    "errors",
			content: content{errs: []error{errors.New("list pods: boom"), errors.New("delete collection of secrets: no")}},
			want: []corev1.NamespaceCondition{
				{Type: corev1.NamespaceDeletionContentFailure, Status: corev1.ConditionTrue, Reason: "ContentDeletionFailed",
					Message: "Failed to delete all resource types, 2 remaining: delete collection of secrets: no, list pods: boom"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.content.conditions()); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}
