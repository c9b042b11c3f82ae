package replicationcontroller

import (
	"context"
	"testing"

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

func newRC() *corev1.ReplicationController {
	return &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
}

func TestDefault(t *testing.T) {
	tests := []struct {
		name         string
		mutate       func(rc *corev1.ReplicationController)
		wantSelector map[string]string
		wantLabels   map[string]string
		wantReplicas int32
	}{
		{
			name:         "selector and labels from template",
			mutate:       func(*corev1.ReplicationController) {},
			wantSelector: map[string]string{"app": "web"}, wantLabels: map[string]string{"app": "web"}, wantReplicas: 1,
		},
		{
			name: "explicit selector, labels and replicas kept",
			mutate: func(rc *corev1.ReplicationController) {
				rc.Spec.Selector = map[string]string{"app": "web", "v": "1"}
				rc.Labels = map[string]string{"owner": "me"}
				n := int32(0)
				rc.Spec.Replicas = &n
			},
			wantSelector: map[string]string{"app": "web", "v": "1"}, wantLabels: map[string]string{"owner": "me"}, wantReplicas: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRC()
			tc.mutate(rc)
			Strategy{}.Default(rc)
			if diff := cmp.Diff(tc.wantSelector, rc.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLabels, rc.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if *rc.Spec.Replicas != tc.wantReplicas {
				t.Errorf("replicas = %d, want %d", *rc.Spec.Replicas, tc.wantReplicas)
			}
			if got := rc.Spec.Template.Spec; got.DNSPolicy != corev1.DNSClusterFirst || got.Containers[0].ImagePullPolicy != corev1.PullAlways {
				t.Errorf("template not defaulted: %+v", got)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(rc *corev1.ReplicationController)
		want   []fieldErr
	}{
		{name: "valid", mutate: func(*corev1.ReplicationController) {}},
		{
			name:   "selector does not match",
			mutate: func(rc *corev1.ReplicationController) { rc.Spec.Selector = map[string]string{"app": "api"} },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.template.metadata.labels", "`selector` does not match template `labels`"}},
		},
		{
			name:   "selector required",
			mutate: func(rc *corev1.ReplicationController) { rc.Spec.Selector = nil },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.selector", ""}},
		},
		{
			name:   "template required",
			mutate: func(rc *corev1.ReplicationController) { rc.Spec.Template = nil },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.template", ""}},
		},
		{
			name:   "negative replicas",
			mutate: func(rc *corev1.ReplicationController) { n := int32(-2); rc.Spec.Replicas = &n },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.replicas", "must be greater than or equal to 0"}},
		},
		{
			name: "restartPolicy",
			mutate: func(rc *corev1.ReplicationController) {
				rc.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			},
			want: []fieldErr{{field.ErrorTypeNotSupported, "spec.template.spec.restartPolicy", `supported values: "Always"`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRC()
			Strategy{}.Default(rc)
			tc.mutate(rc)
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.Validate(context.Background(), rc))); diff != "" {
				t.Errorf("Validate errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	old := newRC()
	Strategy{}.Default(old)
	Strategy{}.PrepareForCreate(context.Background(), old)
	old.ResourceVersion = "3"
	old.Status.Replicas = 1

	rc := old.DeepCopy()
	n := int32(4)
	rc.Spec.Replicas = &n
	rc.Status.Replicas = 0
	Strategy{}.PrepareForUpdate(context.Background(), rc, old)
	if rc.Generation != 2 || rc.Status.Replicas != 1 {
		t.Errorf("generation %d status.replicas %d, want 2 and 1", rc.Generation, rc.Status.Replicas)
	}
	if errs := (Strategy{}).ValidateUpdate(context.Background(), rc, old); len(errs) != 0 {
		t.Errorf("unexpected errors: %v", errs)
	}

	st := rc.DeepCopy()
	st.Spec.Replicas = old.Spec.Replicas
	st.Status = corev1.ReplicationControllerStatus{Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 2}
	StatusStrategy{}.PrepareForUpdate(context.Background(), st, rc)
	if *st.Spec.Replicas != 4 {
		t.Errorf("/status changed spec.replicas to %d", *st.Spec.Replicas)
	}
	want := []fieldErr{{field.ErrorTypeInvalid, "status.availableReplicas", "cannot be greater than readyReplicas"}}
	if diff := cmp.Diff(want, summarize(StatusStrategy{}.ValidateUpdate(context.Background(), st, rc))); diff != "" {
		t.Errorf("status ValidateUpdate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fields.Set{"metadata.name": "web", "metadata.namespace": "default", "status.replicas": "2"}, Fields(st)); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
}
