package pod

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

// defaultedSpec is what kube-apiserver stores for a pod with one bare container.
func defaultedSpec(c corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    []corev1.Container{c},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 corev1.DefaultSchedulerName,
		EnableServiceLinks:            ptr(true),
	}
}

func TestDefaultPod(t *testing.T) {
	tests := []struct {
		name string
		in   corev1.Pod
		want corev1.Pod
	}{
		{
			name: "bare container",
			in:   corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.25", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}}},
			want: corev1.Pod{Spec: defaultedSpec(corev1.Container{
				Name: "c", Image: "nginx:1.25",
				Ports:                    []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
			})},
		},
		{
			name: "probes, env fieldRef and requests from limits",
			in: corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "c", Image: "nginx",
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}}, PeriodSeconds: 5},
				Env:            []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
				Resources:      corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}},
			}}}},
			want: corev1.Pod{Spec: defaultedSpec(corev1.Container{
				Name: "c", Image: "nginx",
				LivenessProbe: &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090, Service: ptr("")}},
					TimeoutSeconds: 1, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 3,
				},
				Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullAlways,
			})},
		},
		{
			name: "host network copies container ports to host ports",
			in: corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{
				Name: "c", Image: "busybox:1", ImagePullPolicy: corev1.PullNever, Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
			}}}},
			want: func() corev1.Pod {
				s := defaultedSpec(corev1.Container{
					Name: "c", Image: "busybox:1", ImagePullPolicy: corev1.PullNever,
					Ports:                    []corev1.ContainerPort{{ContainerPort: 53, HostPort: 53, Protocol: corev1.ProtocolUDP}},
					TerminationMessagePath:   "/dev/termination-log",
					TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				})
				s.HostNetwork = true
				return corev1.Pod{Spec: s}
			}(),
		},
		{
			name: "volumes, negative grace period, serviceAccount alias and podIP sync",
			in: corev1.Pod{
				Spec: corev1.PodSpec{
					DeprecatedServiceAccount:      "builder",
					TerminationGracePeriodSeconds: ptr(int64(-5)),
					Volumes:                       []corev1.Volume{{Name: "scratch"}, {Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}},
					Containers:                    []corev1.Container{{Name: "c", Image: "x:1", ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePath: "/t", TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}},
				},
				Status: corev1.PodStatus{PodIP: "10.0.0.5"},
			},
			want: func() corev1.Pod {
				s := defaultedSpec(corev1.Container{Name: "c", Image: "x:1", ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePath: "/t", TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError})
				s.TerminationGracePeriodSeconds = ptr(int64(1))
				s.ServiceAccountName, s.DeprecatedServiceAccount = "builder", "builder"
				s.Volumes = []corev1.Volume{
					{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr(int32(0644))}}},
				}
				return corev1.Pod{Spec: s, Status: corev1.PodStatus{PodIP: "10.0.0.5", PodIPs: []corev1.PodIP{{IP: "10.0.0.5"}}}}
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.DeepCopy()
			DefaultPod(got)
			if diff := cmp.Diff(&tc.want, got); diff != "" {
				t.Errorf("DefaultPod (-want +got):\n%s", diff)
			}
			again := got.DeepCopy()
			DefaultPod(again)
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("DefaultPod is not idempotent (-first +second):\n%s", diff)
			}
		})
	}
}

func TestPullPolicyForImage(t *testing.T) {
	tests := []struct {
		name  string
		image string
		want  corev1.PullPolicy
	}{
		{name: "no tag", image: "nginx", want: corev1.PullAlways},
		{name: "latest", image: "nginx:latest", want: corev1.PullAlways},
		{name: "tag", image: "nginx:1.25", want: corev1.PullIfNotPresent},
		{name: "registry with port, no tag", image: "registry.local:5000/team/app", want: corev1.PullAlways},
		{name: "registry with port and tag", image: "registry.local:5000/team/app:v2", want: corev1.PullIfNotPresent},
		{name: "digest only", image: "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", want: corev1.PullIfNotPresent},
		{name: "latest and digest", image: "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", want: corev1.PullAlways},
		{name: "unparsable", image: "UPPER/Case", want: corev1.PullIfNotPresent},
		{name: "empty", image: "", want: corev1.PullIfNotPresent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pullPolicyForImage(tc.image); got != tc.want {
				t.Errorf("pullPolicyForImage(%q) = %s, want %s", tc.image, got, tc.want)
			}
		})
	}
}

func TestDefaultPodTemplateSpec(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "nginx",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
		}}},
	}
	DefaultPodTemplateSpec(tmpl)
	want := defaultedSpec(corev1.Container{
		Name: "c", Image: "nginx",
		Resources:                corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
		TerminationMessagePath:   "/dev/termination-log",
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullAlways,
	})
	// Templates get neither enableServiceLinks nor requests copied from limits.
	want.EnableServiceLinks = nil
	if diff := cmp.Diff(want, tmpl.Spec); diff != "" {
		t.Errorf("DefaultPodTemplateSpec (-want +got):\n%s", diff)
	}
}
