package printers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var twoContainers = corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
	{Name: "fake-container1", Image: "fake-image1"},
	{Name: "fake-container2", Image: "fake-image2"},
}}}

func TestDeploymentCells(t *testing.T) {
	runCells(t, gr("apps", "deployments"), []cellsCase{
		{
			name: "upstream TestPrintDeployment: wide",
			obj: &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "test1", CreationTimestamp: almostNow},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](5), Template: twoContainers,
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"foo": "bar"}},
				},
				Status: appsv1.DeploymentStatus{Replicas: 10, UpdatedReplicas: 2, AvailableReplicas: 1, UnavailableReplicas: 4},
			},
			want: []any{"test1", "0/5", int64(2), int64(1), "0s", "fake-container1,fake-container2", "fake-image1,fake-image2", "foo=bar"},
		},
		{
			name: "rolled out, selector with expressions",
			obj: &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: ago(4 * time.Minute)},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](3),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.29"}}}},
					Selector: &metav1.LabelSelector{
						MatchLabels:      map[string]string{"app": "web"},
						MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "a"}}},
					},
				},
				Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
			},
			want: []any{"web", "3/3", int64(3), int64(3), "4m", "nginx", "nginx:1.29", "app=web,tier in (a,b)"},
		},
		{
			name: "nil replicas default to 1; a nil selector prints empty",
			obj:  &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bare"}},
			want: []any{"bare", "0/1", int64(0), int64(0), "<unknown>", "", "", ""},
		},
		{
			name: "invalid selector",
			obj: &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "bad"},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "k", Operator: "Bogus"},
				}}},
			},
			want: []any{"bad", "0/0", int64(0), int64(0), "<unknown>", "", "", "<invalid>"},
		},
	})
}

func TestReplicaSetCells(t *testing.T) {
	runCells(t, gr("apps", "replicasets"), []cellsCase{
		{
			name: "upstream TestPrintReplicaSet: wide",
			obj: &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Name: "test1", CreationTimestamp: almostNow},
				Spec: appsv1.ReplicaSetSpec{
					Replicas: ptr.To[int32](5), Template: twoContainers,
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"foo": "bar"}},
				},
				Status: appsv1.ReplicaSetStatus{Replicas: 5, ReadyReplicas: 2},
			},
			want: []any{"test1", int64(5), int64(5), int64(2), "0s", "fake-container1,fake-container2", "fake-image1,fake-image2", "foo=bar"},
		},
		{
			name: "upstream TestPrintReplicaSetList replicaset2: empty template",
			obj: &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Name: "replicaset2", CreationTimestamp: almostNow},
				Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"foo": "bar"}}},
				Status:     appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1},
			},
			want: []any{"replicaset2", int64(4), int64(3), int64(1), "0s", "", "", "foo=bar"},
		},
		{
			name: "nil replicas default to 1; a nil selector prints <none>, unlike deployments",
			obj:  &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "bare"}},
			want: []any{"bare", int64(1), int64(0), int64(0), "<unknown>", "", "", "<none>"},
		},
	})
}

func TestReplicationControllerCells(t *testing.T) {
	template := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "test", Image: "test_image"}}},
	}
	runCells(t, gr("", "replicationcontrollers"), []cellsCase{
		{
			name: "upstream TestPrintReplicationController basic",
			obj: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Name: "rc1", Namespace: "test-namespace"},
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](0), Selector: map[string]string{"a": "b"}, Template: template},
			},
			want: []any{"rc1", int64(0), int64(0), int64(0), "<unknown>", "test", "test_image", "a=b"},
		},
		{
			name: "upstream TestPrintReplicationController wide",
			obj: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Name: "rc1"},
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](5), Selector: map[string]string{"a": "b"}, Template: template},
				Status:     corev1.ReplicationControllerStatus{Replicas: 3, ReadyReplicas: 1},
			},
			want: []any{"rc1", int64(5), int64(3), int64(1), "<unknown>", "test", "test_image", "a=b"},
		},
		{
			name: "upstream TestPrintReplicationController no panic: no template, no selector",
			obj: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}},
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](0)},
			},
			want: []any{"", int64(0), int64(0), int64(0), "<unknown>", "", "", "<none>"},
		},
		{
			name: "nil replicas default to 1",
			obj:  &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc2"}},
			want: []any{"rc2", int64(1), int64(0), int64(0), "<unknown>", "", "", "<none>"},
		},
		{
			name: "empty selector defaults to the template labels",
			obj: &corev1.ReplicationController{
				ObjectMeta: metav1.ObjectMeta{Name: "rc3"},
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](2), Template: template},
			},
			want: []any{"rc3", int64(2), int64(0), int64(0), "<unknown>", "test", "test_image", "a=b"},
		},
	})
}
