package apps

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry/pod"
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

func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
	}
}

func newDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(),
		},
	}
}

func TestDefaultDeployment(t *testing.T) {
	d := newDeployment()
	DeploymentStrategy{}.Default(d)

	quarter := intstr.FromString("25%")
	one, ten, six := int32(1), int32(10), int32(600)
	wantTemplate := template()
	pod.DefaultPodTemplateSpec(&wantTemplate)
	want := appsv1.DeploymentSpec{
		Replicas: &one,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: wantTemplate,
		Strategy: appsv1.DeploymentStrategy{
			Type:          appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &quarter, MaxSurge: &quarter},
		},
		RevisionHistoryLimit:    &ten,
		ProgressDeadlineSeconds: &six,
	}
	if diff := cmp.Diff(want, d.Spec); diff != "" {
		t.Errorf("defaulted spec (-want +got):\n%s", diff)
	}
	if got := d.Spec.Template.Spec; got.RestartPolicy != corev1.RestartPolicyAlways || got.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("template not defaulted: %+v", got)
	}

	recreate := newDeployment()
	recreate.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
	DeploymentStrategy{}.Default(recreate)
	if recreate.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate strategy got rollingUpdate %+v", recreate.Spec.Strategy.RollingUpdate)
	}
}

func TestValidateDeployment(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   []fieldErr
	}{
		{name: "valid", mutate: func(*appsv1.Deployment) {}},
		{
			name:   "selector required",
			mutate: func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			want: []fieldErr{
				{field.ErrorTypeRequired, "spec.selector", ""},
				{field.ErrorTypeInvalid, "spec.template.metadata.labels", "`selector` does not match template `labels`"},
			},
		},
		{
			name:   "empty selector",
			mutate: func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.selector", "empty selector is invalid for deployment"}},
		},
		{
			name:   "selector does not match labels",
			mutate: func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "api"} },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.template.metadata.labels", "`selector` does not match template `labels`"}},
		},
		{
			name:   "negative replicas",
			mutate: func(d *appsv1.Deployment) { n := int32(-1); d.Spec.Replicas = &n },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.replicas", "must be greater than or equal to 0"}},
		},
		{
			name:   "restartPolicy must be Always",
			mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want:   []fieldErr{{field.ErrorTypeNotSupported, "spec.template.spec.restartPolicy", `supported values: "Always"`}},
		},
		{
			name:   "unknown strategy",
			mutate: func(d *appsv1.Deployment) { d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "BlueGreen"} },
			want:   []fieldErr{{field.ErrorTypeNotSupported, "spec.strategy", `supported values: "Recreate", "RollingUpdate"`}},
		},
		{
			name: "maxUnavailable and maxSurge both zero",
			mutate: func(d *appsv1.Deployment) {
				zero := intstr.FromInt32(0)
				d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &zero}
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0"}},
		},
		{
			name: "maxUnavailable over 100%",
			mutate: func(d *appsv1.Deployment) {
				v := intstr.FromString("150%")
				d.Spec.Strategy.RollingUpdate.MaxUnavailable = &v
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%"}},
		},
		{
			name: "rollingUpdate with Recreate",
			mutate: func(d *appsv1.Deployment) {
				d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
			},
			want: []fieldErr{{field.ErrorTypeForbidden, "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"}},
		},
		{
			name:   "progressDeadlineSeconds not above minReadySeconds",
			mutate: func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.progressDeadlineSeconds", "must be greater than minReadySeconds"}},
		},
		{
			name:   "template container image",
			mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.template.spec.containers[0].image", ""}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment()
			DeploymentStrategy{}.Default(d)
			tc.mutate(d)
			if diff := cmp.Diff(tc.want, summarize(DeploymentStrategy{}.Validate(context.Background(), d))); diff != "" {
				t.Errorf("Validate errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeploymentStrategy_Update(t *testing.T) {
	tests := []struct {
		name           string
		mutate         func(d *appsv1.Deployment)
		wantGeneration int64
		want           []fieldErr
	}{
		{name: "no change", mutate: func(*appsv1.Deployment) {}, wantGeneration: 4},
		{name: "status ignored", mutate: func(d *appsv1.Deployment) { d.Status.Replicas = 9 }, wantGeneration: 4},
		{name: "scale bumps generation", mutate: func(d *appsv1.Deployment) { n := int32(3); d.Spec.Replicas = &n }, wantGeneration: 5},
		{name: "annotation bumps generation", mutate: func(d *appsv1.Deployment) { d.Annotations = map[string]string{"a": "b"} }, wantGeneration: 5},
		{
			name: "selector immutable",
			mutate: func(d *appsv1.Deployment) {
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "fe"}}
				d.Spec.Template.Labels["tier"] = "fe"
			},
			wantGeneration: 5,
			want:           []fieldErr{{field.ErrorTypeInvalid, "spec.selector", "field is immutable"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newDeployment()
			DeploymentStrategy{}.Default(old)
			DeploymentStrategy{}.PrepareForCreate(context.Background(), old)
			old.Generation, old.ResourceVersion = 4, "10"
			old.Status = appsv1.DeploymentStatus{Replicas: 1, ObservedGeneration: 4}
			d := old.DeepCopy()
			tc.mutate(d)
			DeploymentStrategy{}.PrepareForUpdate(context.Background(), d, old)
			if d.Generation != tc.wantGeneration {
				t.Errorf("generation = %d, want %d", d.Generation, tc.wantGeneration)
			}
			if diff := cmp.Diff(old.Status, d.Status); diff != "" {
				t.Errorf("status not kept (-old +new):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, summarize(DeploymentStrategy{}.ValidateUpdate(context.Background(), d, old))); diff != "" {
				t.Errorf("ValidateUpdate errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeploymentStatusStrategy(t *testing.T) {
	old := newDeployment()
	DeploymentStrategy{}.Default(old)
	old.Generation, old.ResourceVersion, old.Labels = 2, "5", map[string]string{"team": "a"}
	d := old.DeepCopy()
	n := int32(7)
	d.Spec.Replicas = &n
	d.Labels = map[string]string{"team": "b"}
	d.Status = appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 3, AvailableReplicas: 1, ObservedGeneration: 2}
	DeploymentStatusStrategy{}.PrepareForUpdate(context.Background(), d, old)
	if diff := cmp.Diff(old.Spec, d.Spec); diff != "" {
		t.Errorf("spec not kept (-old +new):\n%s", diff)
	}
	if d.Labels["team"] != "a" {
		t.Errorf("labels not kept: %v", d.Labels)
	}
	want := []fieldErr{{field.ErrorTypeInvalid, "status.readyReplicas", "cannot be greater than status.replicas"}}
	if diff := cmp.Diff(want, summarize(DeploymentStatusStrategy{}.ValidateUpdate(context.Background(), d, old))); diff != "" {
		t.Errorf("status ValidateUpdate (-want +got):\n%s", diff)
	}
}

func newReplicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(),
		},
	}
}

func TestReplicaSet(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(rs *appsv1.ReplicaSet)
		want   []fieldErr
	}{
		{name: "valid", mutate: func(*appsv1.ReplicaSet) {}},
		{
			name:   "selector mismatch",
			mutate: func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Labels = nil },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.template.metadata.labels", "`selector` does not match template `labels`"}},
		},
		{
			name:   "activeDeadlineSeconds",
			mutate: func(rs *appsv1.ReplicaSet) { v := int64(5); rs.Spec.Template.Spec.ActiveDeadlineSeconds = &v },
			want:   []fieldErr{{field.ErrorTypeForbidden, "spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported"}},
		},
		{
			name:   "negative minReadySeconds",
			mutate: func(rs *appsv1.ReplicaSet) { rs.Spec.MinReadySeconds = -1 },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.minReadySeconds", "must be greater than or equal to 0"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := newReplicaSet()
			ReplicaSetStrategy{}.Default(rs)
			if rs.Spec.Replicas == nil || *rs.Spec.Replicas != 1 {
				t.Fatalf("replicas not defaulted to 1: %v", rs.Spec.Replicas)
			}
			ReplicaSetStrategy{}.PrepareForCreate(context.Background(), rs)
			if rs.Generation != 1 {
				t.Errorf("generation = %d, want 1", rs.Generation)
			}
			tc.mutate(rs)
			if diff := cmp.Diff(tc.want, summarize(ReplicaSetStrategy{}.Validate(context.Background(), rs))); diff != "" {
				t.Errorf("Validate errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplicaSetStatusStrategy(t *testing.T) {
	old := newReplicaSet()
	ReplicaSetStrategy{}.Default(old)
	old.ResourceVersion = "4"
	rs := old.DeepCopy()
	rs.Spec.MinReadySeconds = 30
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 2}
	ReplicaSetStatusStrategy{}.PrepareForUpdate(context.Background(), rs, old)
	if rs.Spec.MinReadySeconds != 0 {
		t.Errorf("spec change leaked through /status")
	}
	want := []fieldErr{{field.ErrorTypeInvalid, "status.fullyLabeledReplicas", "cannot be greater than status.replicas"}}
	if diff := cmp.Diff(want, summarize(ReplicaSetStatusStrategy{}.ValidateUpdate(context.Background(), rs, old))); diff != "" {
		t.Errorf("status ValidateUpdate (-want +got):\n%s", diff)
	}
}
