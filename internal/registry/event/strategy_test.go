package event

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type fieldErr struct {
	Type   field.ErrorType
	Field  string
	Detail string
}

func summarize(errs field.ErrorList) []fieldErr {
	var out []fieldErr
	for _, e := range errs {
		out = append(out, fieldErr{Type: e.Type, Field: e.Field, Detail: e.Detail})
	}
	return out
}

func legacyEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.17a", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "u1", APIVersion: "v1", ResourceVersion: "5", FieldPath: "spec.containers{web}"},
		Reason:         "Pulled", Message: "pulled", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(e *corev1.Event)
		want   []fieldErr
	}{
		{name: "legacy event", mutate: func(*corev1.Event) {}},
		{
			name:   "involvedObject namespace mismatch",
			mutate: func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" },
			want:   []fieldErr{{field.ErrorTypeInvalid, "involvedObject.namespace", "does not match event.namespace"}},
		},
		{
			name:   "cluster-scoped object in default namespace",
			mutate: func(e *corev1.Event) { e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"} },
		},
		{
			name: "new-style event needs reporting fields",
			mutate: func(e *corev1.Event) {
				e.EventTime = metav1.NewMicroTime(time.Unix(100, 0))
				e.Reason = ""
			},
			want: []fieldErr{
				{field.ErrorTypeRequired, "reportingComponent", ""},
				// kube also runs the qualified-name check on the empty value.
				{field.ErrorTypeInvalid, "reportingComponent", "name part must be non-empty"},
				{field.ErrorTypeInvalid, "reportingComponent", "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"},
				{field.ErrorTypeRequired, "reportingInstance", ""},
				{field.ErrorTypeRequired, "action", ""},
				{field.ErrorTypeRequired, "reason", ""},
			},
		},
		{
			name: "message too long",
			mutate: func(e *corev1.Event) {
				e.EventTime = metav1.NewMicroTime(time.Unix(100, 0))
				e.ReportingController, e.ReportingInstance, e.Action = "example.com/ctl", "ctl-1", "Sync"
				e.Message = strings.Repeat("x", 1025)
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "message", "can have at most 1024 characters"}},
		},
		{
			name:   "name must be a path segment",
			mutate: func(e *corev1.Event) { e.Name = "a/b" },
			want:   []fieldErr{{field.ErrorTypeInvalid, "metadata.name", `may not contain '/'`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := legacyEvent()
			tc.mutate(e)
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.Validate(context.Background(), e))); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(e *corev1.Event)
		source string
	}{
		{name: "source component", mutate: func(*corev1.Event) {}, source: "kubelet"},
		{name: "source falls back to reportingComponent", mutate: func(e *corev1.Event) {
			e.Source = corev1.EventSource{}
			e.ReportingController = "example.com/ctl"
		}, source: "example.com/ctl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := legacyEvent()
			tc.mutate(e)
			want := fields.Set{
				"metadata.name": "web.17a", "metadata.namespace": "default",
				"involvedObject.kind": "Pod", "involvedObject.namespace": "default", "involvedObject.name": "web",
				"involvedObject.uid": "u1", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "5",
				"involvedObject.fieldPath": "spec.containers{web}", "reason": "Pulled",
				"reportingComponent": e.ReportingController, "source": tc.source, "type": "Normal",
			}
			if diff := cmp.Diff(want, Fields(e)); diff != "" {
				t.Errorf("Fields (-want +got):\n%s", diff)
			}
		})
	}
}
