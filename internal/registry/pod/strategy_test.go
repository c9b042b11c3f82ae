package pod

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/fields"
)

func TestStrategy_PrepareForCreate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   corev1.PodStatus
	}{
		{
			name: "status reset to Pending with QoS",
			mutate: func(p *corev1.Pod) {
				p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}
			},
			want: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable},
		},
		{
			name:   "scheduling gates add the gated condition",
			mutate: func(p *corev1.Pod) { p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}} },
			want: corev1.PodStatus{
				Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable,
				Conditions: []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated,
					Message: "Scheduling is blocked due to non-empty scheduling gates",
				}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validPod()
			p.Generation = 9
			tc.mutate(p)
			Strategy{}.PrepareForCreate(context.Background(), p)
			if p.Generation != 1 {
				t.Errorf("generation = %d, want 1", p.Generation)
			}
			if diff := cmp.Diff(tc.want, p.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStrategy_PrepareForUpdate(t *testing.T) {
	tests := []struct {
		name           string
		mutate         func(p *corev1.Pod)
		wantGeneration int64
	}{
		{name: "metadata only", mutate: func(p *corev1.Pod) { p.Labels = map[string]string{"x": "y"} }, wantGeneration: 3},
		{name: "status ignored", mutate: func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }, wantGeneration: 3},
		{name: "client generation ignored", mutate: func(p *corev1.Pod) { p.Generation = 40 }, wantGeneration: 3},
		{name: "spec change bumps", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:2" }, wantGeneration: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := validPod()
			old.Generation = 3
			old.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable}
			p := old.DeepCopy()
			tc.mutate(p)
			Strategy{}.PrepareForUpdate(context.Background(), p, old)
			if p.Generation != tc.wantGeneration {
				t.Errorf("generation = %d, want %d", p.Generation, tc.wantGeneration)
			}
			if diff := cmp.Diff(old.Status, p.Status); diff != "" {
				t.Errorf("status not kept (-old +new):\n%s", diff)
			}
		})
	}
}

func TestStatusStrategy_PrepareForUpdate(t *testing.T) {
	old := validPod()
	old.Generation = 2
	old.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable, ObservedGeneration: 2,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, ObservedGeneration: 2}}}
	p := old.DeepCopy()
	p.Spec.NodeName = "node-1"
	p.Generation = 5
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	StatusStrategy{}.PrepareForUpdate(context.Background(), p, old)

	want := old.DeepCopy()
	want.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable, ObservedGeneration: 2,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, ObservedGeneration: 2}}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("status PrepareForUpdate (-want +got):\n%s", diff)
	}
}

func TestQOSClass(t *testing.T) {
	res := func(req, lim string) corev1.ResourceRequirements {
		var r corev1.ResourceRequirements
		if req != "" {
			r.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req), corev1.ResourceMemory: resource.MustParse(req + "Mi")}
		}
		if lim != "" {
			r.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(lim), corev1.ResourceMemory: resource.MustParse(lim + "Mi")}
		}
		return r
	}
	tests := []struct {
		name       string
		containers []corev1.ResourceRequirements
		want       corev1.PodQOSClass
	}{
		{name: "no resources", containers: []corev1.ResourceRequirements{{}}, want: corev1.PodQOSBestEffort},
		{name: "requests equal limits", containers: []corev1.ResourceRequirements{res("1", "1")}, want: corev1.PodQOSGuaranteed},
		{name: "requests below limits", containers: []corev1.ResourceRequirements{res("1", "2")}, want: corev1.PodQOSBurstable},
		{name: "only requests", containers: []corev1.ResourceRequirements{res("1", "")}, want: corev1.PodQOSBurstable},
		{name: "guaranteed and besteffort mixed", containers: []corev1.ResourceRequirements{res("1", "1"), {}}, want: corev1.PodQOSBurstable},
		{name: "only cpu", containers: []corev1.ResourceRequirements{{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
		}}, want: corev1.PodQOSBurstable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{}
			for _, r := range tc.containers {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Resources: r})
			}
			if got := QOSClass(p); got != tc.want {
				t.Errorf("QOSClass = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	p := validPod()
	p.Spec.NodeName = "n1"
	p.Spec.ServiceAccountName = "sa"
	p.Spec.HostNetwork = true
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9", PodIPs: []corev1.PodIP{{IP: "10.0.0.9"}, {IP: "fd00::9"}}, NominatedNodeName: "n2"}
	want := fields.Set{
		"metadata.name": "web", "metadata.namespace": "default",
		"spec.nodeName": "n1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
		"spec.serviceAccountName": "sa", "spec.hostNetwork": "true",
		"status.phase": "Running", "status.podIP": "10.0.0.9", "status.podIPs": "", "status.nominatedNodeName": "n2",
	}
	if diff := cmp.Diff(want, Fields(p)); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
}
