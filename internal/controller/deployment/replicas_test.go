package deployment

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func TestResolveFenceposts(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		surge, unavailable     intstr.IntOrString
		desired                int32
		wantSurge, wantUnavail int32
	}{
		{name: "defaults of 4", surge: intstr.FromString("25%"), unavailable: intstr.FromString("25%"), desired: 4, wantSurge: 1, wantUnavail: 1},
		{name: "surge rounds up, unavailable down", surge: intstr.FromString("30%"), unavailable: intstr.FromString("30%"), desired: 5, wantSurge: 2, wantUnavail: 1},
		{name: "both zero makes one unavailable", surge: intstr.FromInt32(0), unavailable: intstr.FromInt32(0), desired: 3, wantSurge: 0, wantUnavail: 1},
		{name: "25% of one", surge: intstr.FromString("25%"), unavailable: intstr.FromString("25%"), desired: 1, wantSurge: 1, wantUnavail: 0},
		{name: "absolute", surge: intstr.FromInt32(3), unavailable: intstr.FromInt32(2), desired: 10, wantSurge: 3, wantUnavail: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, u, err := resolveFenceposts(&tc.surge, &tc.unavailable, tc.desired)
			if err != nil || s != tc.wantSurge || u != tc.wantUnavail {
				t.Errorf("resolveFenceposts = %d, %d, %v; want %d, %d", s, u, err, tc.wantSurge, tc.wantUnavail)
			}
		})
	}
}

func rolling(replicas, surge, unavailable int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default", UID: "d-uid"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Strategy: appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(surge)), MaxUnavailable: ptr.To(intstr.FromInt32(unavailable))},
		}},
	}
}

func rsOf(name string, replicas int32, age time.Duration, desired, maxReplicas string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Now().Add(-age)),
			Annotations:       map[string]string{DesiredReplicasAnnotation: desired, MaxReplicasAnnotation: maxReplicas}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)},
	}
}

// TestController_ProportionalScaling is the example of the Deployment documentation: 10
// replicas, maxSurge 3, maxUnavailable 2, mid-rollout (old 8, new 5) scaled to 15: the 5
// extra replicas go 3 to the old and 2 to the new ReplicaSet.
func TestController_ProportionalScaling(t *testing.T) {
	for _, tc := range []struct {
		name             string
		replicas         int32
		wantOld, wantNew int32
	}{
		{name: "scale up to 15", replicas: 15, wantOld: 11, wantNew: 7},
		{name: "scale down to 5", replicas: 5, wantOld: 5, wantNew: 3},
		{name: "scale to zero", replicas: 0, wantOld: 0, wantNew: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldRS := rsOf("d-old", 8, time.Hour, "10", "13")
			newRS := rsOf("d-new", 5, time.Minute, "10", "13")
			client := fake.NewClientset(oldRS, newRS)
			c, err := New(Config{Client: client})
			if err != nil {
				t.Fatal(err)
			}
			d := rolling(tc.replicas, 3, 2)
			d.Status.Replicas = 13
			if err := c.scale(context.Background(), d, newRS, []*appsv1.ReplicaSet{oldRS}); err != nil {
				t.Fatal(err)
			}
			got := map[string]int32{}
			for _, name := range []string{"d-old", "d-new"} {
				rs, err := client.AppsV1().ReplicaSets("default").Get(context.Background(), name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got[name] = *rs.Spec.Replicas
				if want := map[string]string{DesiredReplicasAnnotation: itoa(tc.replicas), MaxReplicasAnnotation: itoa(tc.replicas + maxSurge(d))}; !cmp.Equal(want, rs.Annotations) {
					t.Errorf("%s annotations %v, want %v", name, rs.Annotations, want)
				}
			}
			if diff := cmp.Diff(map[string]int32{"d-old": tc.wantOld, "d-new": tc.wantNew}, got); diff != "" {
				t.Errorf("replicas (-want +got):\n%s", diff)
			}
		})
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func TestSetNewReplicaSetAnnotations_RevisionHistory(t *testing.T) {
	d := rolling(3, 1, 0)
	d.Annotations = map[string]string{"kubernetes.io/change-cause": "kubectl set image", "deployment.kubernetes.io/revision": "4"}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{RevisionAnnotation: "2", RevisionHistoryAnnotation: "1"}}}
	if !setNewReplicaSetAnnotations(d, rs, "5", true) {
		t.Fatal("no change reported")
	}
	want := map[string]string{RevisionAnnotation: "5", RevisionHistoryAnnotation: "1,2", "kubernetes.io/change-cause": "kubectl set image"}
	if diff := cmp.Diff(want, rs.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if setNewReplicaSetAnnotations(d, rs, "5", true) {
		t.Error("second call reported a change")
	}
}
