package pod

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// fieldErr is the part of a field.Error the tests pin: type, path and kube's message.
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

// validPod is a defaulted pod that passes validation.
func validPod() *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "data"}},
			Containers: []corev1.Container{{
				Name: "app", Image: "nginx:1.25",
				Ports:        []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
				Env:          []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
			}},
		},
	}
	DefaultPod(p)
	return p
}

func TestValidatePod(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []fieldErr
	}{
		{name: "valid", mutate: func(*corev1.Pod) {}},
		{
			name:   "containers required",
			mutate: func(p *corev1.Pod) { p.Spec.Containers = nil },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.containers", ""}},
		},
		{
			name:   "container name must be a DNS label",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "App_1" },
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].name",
				"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"}},
		},
		{
			name: "duplicate container name",
			mutate: func(p *corev1.Pod) {
				c := p.Spec.Containers[0]
				c.Ports = nil
				p.Spec.Containers = append(p.Spec.Containers, c)
			},
			want: []fieldErr{{field.ErrorTypeDuplicate, "spec.containers[1].name", ""}},
		},
		{
			name:   "image required",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.containers[0].image", ""}},
		},
		{
			name:   "image whitespace",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].image", "must not have leading or trailing whitespace"}},
		},
		{
			name:   "containerPort out of range",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].ports[0].containerPort", "must be between 1 and 65535, inclusive"}},
		},
		{
			name:   "containerPort required",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.containers[0].ports[0].containerPort", ""}},
		},
		{
			name:   "hostPort out of range",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = -1 },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].ports[0].hostPort", "must be between 1 and 65535, inclusive"}},
		},
		{
			name:   "port protocol",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "ICMP" },
			want:   []fieldErr{{field.ErrorTypeNotSupported, "spec.containers[0].ports[0].protocol", `supported values: "SCTP", "TCP", "UDP"`}},
		},
		{
			name:   "port name is an IANA_SVC_NAME",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "http-web-server-1" },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].ports[0].name", "must be no more than 15 characters"}},
		},
		{
			name: "duplicate host port",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{
					{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP},
					{ContainerPort: 81, HostPort: 8080, Protocol: corev1.ProtocolTCP},
				}
			},
			want: []fieldErr{{field.ErrorTypeDuplicate, "spec.containers[0].ports[1].hostPort", ""}},
		},
		{
			name:   "env name",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Name = "1=BAD" },
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].env[0].name",
				"a valid environment variable name must consist only of printable ASCII characters other than '='"}},
		},
		{
			name: "env value and valueFrom",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env[0].ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].env[0].valueFrom", "may not be specified when `value` is not empty"}},
		},
		{
			name: "env fieldRef path",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env[0] = corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.bogus"}}}
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", "error converting fieldPath: field label not supported: spec.bogus"}},
		},
		{
			name:   "restartPolicy",
			mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			want:   []fieldErr{{field.ErrorTypeNotSupported, "spec.restartPolicy", `supported values: "Always", "OnFailure", "Never"`}},
		},
		{
			name:   "dnsPolicy",
			mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = "Custom" },
			want:   []fieldErr{{field.ErrorTypeNotSupported, "spec.dnsPolicy", `supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`}},
		},
		{
			name:   "dnsPolicy None needs dnsConfig",
			mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"}},
		},
		{
			name: "probe needs a handler",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = &corev1.Probe{TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
			},
			want: []fieldErr{{field.ErrorTypeRequired, "spec.containers[0].livenessProbe", "must specify a handler type"}},
		},
		{
			name: "liveness successThreshold",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = p.Spec.Containers[0].ReadinessProbe.DeepCopy()
				p.Spec.Containers[0].LivenessProbe.SuccessThreshold = 2
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].livenessProbe.successThreshold", "must be 1"}},
		},
		{
			name: "probe with two handlers",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].ReadinessProbe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}
			},
			want: []fieldErr{{field.ErrorTypeForbidden, "spec.containers[0].readinessProbe.tcpSocket", "may not specify more than 1 handler type"}},
		},
		{
			name: "probe named port",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromString("Not_A_Name")
			},
			want: []fieldErr{
				{field.ErrorTypeInvalid, "spec.containers[0].readinessProbe.httpGet.port", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"},
			},
		},
		{
			name:   "volume mount not found",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "nope" },
			want:   []fieldErr{{field.ErrorTypeNotFound, "spec.containers[0].volumeMounts[0].name", ""}},
		},
		{
			name: "volume with two sources",
			mutate: func(p *corev1.Pod) {
				p.Spec.Volumes[0].HostPath = &corev1.HostPathVolumeSource{Path: "/tmp"}
			},
			want: []fieldErr{
				{field.ErrorTypeForbidden, "spec.volumes[0].hostPath", "may not specify more than 1 volume type"},
				{field.ErrorTypeNotFound, "spec.containers[0].volumeMounts[0].name", ""},
			},
		},
		{
			name: "request above limit",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("1")
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].resources.requests", "must be less than or equal to cpu limit of 200m"}},
		},
		{
			name: "unknown resource",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Limits["gpu"] = resource.MustParse("1")
			},
			want: []fieldErr{
				{field.ErrorTypeInvalid, "spec.containers[0].resources.limits[gpu]", "must be a standard resource type or fully qualified"},
				{field.ErrorTypeInvalid, "spec.containers[0].resources.limits[gpu]", "must be a standard resource for containers"},
			},
		},
		{
			name:   "hostNetwork hostPort must match",
			mutate: func(p *corev1.Pod) { p.Spec.HostNetwork = true; p.Spec.Containers[0].Ports[0].HostPort = 8080 },
			want:   []fieldErr{{field.ErrorTypeInvalid, "spec.containers[0].ports[0].hostPort", "must match `containerPort` when `hostNetwork` is true"}},
		},
		{
			name: "init container probes forbidden",
			mutate: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{withProbe(p.Spec.Containers[0], "init")}
			},
			want: []fieldErr{{field.ErrorTypeForbidden, "spec.initContainers[0].readinessProbe", "may not be set for init containers without restartPolicy=Always"}},
		},
		{
			name:   "ephemeral containers on create",
			mutate: func(p *corev1.Pod) { p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{}} },
			want:   []fieldErr{{field.ErrorTypeForbidden, "spec.ephemeralContainers", "cannot be set on create"}},
		},
		{
			name:   "terminationGracePeriodSeconds required",
			mutate: func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = nil },
			want:   []fieldErr{{field.ErrorTypeRequired, "spec.terminationGracePeriodSeconds", ""}},
		},
		{
			name:   "namespace required",
			mutate: func(p *corev1.Pod) { p.Namespace = "" },
			want:   []fieldErr{{field.ErrorTypeRequired, "metadata.namespace", ""}},
		},
		{
			name:   "toleration operator",
			mutate: func(p *corev1.Pod) { p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: "Maybe"}} },
			want:   []fieldErr{{field.ErrorTypeNotSupported, "spec.tolerations[0].operator", `supported values: "Equal", "Exists"`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validPod()
			tc.mutate(p)
			got := summarize(Strategy{}.Validate(context.Background(), p))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate errors (-want +got):\n%s", diff)
			}
		})
	}
}

func withProbe(c corev1.Container, name string) corev1.Container {
	c = *c.DeepCopy()
	c.Name = name
	c.Ports = nil
	return c
}

func TestValidatePodUpdate(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(p *corev1.Pod)
		want       []fieldErr
		wantPrefix string // when set: one Forbidden error on "spec" whose detail starts so
	}{
		{name: "image change", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.26" }},
		{name: "labels change", mutate: func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} }},
		{name: "activeDeadlineSeconds set", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(60)) }},
		{name: "toleration added", mutate: func(p *corev1.Pod) { p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}} }},
		{
			name:       "restartPolicy change",
			mutate:     func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever },
			wantPrefix: "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n",
		},
		{
			name: "container added",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, withProbe(p.Spec.Containers[0], "second"))
			},
			want: []fieldErr{{field.ErrorTypeForbidden, "spec.containers", "pod updates may not add or remove containers"}},
		},
		{
			name:   "name immutable",
			mutate: func(p *corev1.Pod) { p.Name = "other" },
			want:   []fieldErr{{field.ErrorTypeInvalid, "metadata.name", "field is immutable"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := validPod()
			old.ResourceVersion = "7"
			Strategy{}.PrepareForCreate(context.Background(), old)
			p := old.DeepCopy()
			tc.mutate(p)
			Strategy{}.PrepareForUpdate(context.Background(), p, old)
			errs := Strategy{}.ValidateUpdate(context.Background(), p, old)
			if tc.wantPrefix != "" {
				if len(errs) != 1 || errs[0].Type != field.ErrorTypeForbidden || errs[0].Field != "spec" || !strings.HasPrefix(errs[0].Detail, tc.wantPrefix) {
					t.Fatalf("want one Forbidden spec error starting %q, got %v", tc.wantPrefix, errs)
				}
				return
			}
			if diff := cmp.Diff(tc.want, summarize(errs)); diff != "" {
				t.Errorf("ValidateUpdate errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePodStatusUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []fieldErr
	}{
		{name: "running with IP", mutate: func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.PodIP, p.Status.PodIPs = "10.1.0.4", []corev1.PodIP{{IP: "10.1.0.4"}}
		}},
		{
			name: "podIPs must match podIP",
			mutate: func(p *corev1.Pod) {
				p.Status.PodIP, p.Status.PodIPs = "10.1.0.4", []corev1.PodIP{{IP: "10.1.0.5"}}
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "status.podIPs[0].ip", "must be equal to `podIP`"}},
		},
		{
			name: "two IPs of one family",
			mutate: func(p *corev1.Pod) {
				p.Status.PodIP, p.Status.PodIPs = "10.1.0.4", []corev1.PodIP{{IP: "10.1.0.4"}, {IP: "10.1.0.5"}}
			},
			want: []fieldErr{{field.ErrorTypeInvalid, "status.podIPs", "may specify no more than one IP for each IP family"}},
		},
		{
			name:   "qosClass immutable",
			mutate: func(p *corev1.Pod) { p.Status.QOSClass = corev1.PodQOSGuaranteed },
			want:   []fieldErr{{field.ErrorTypeInvalid, "status.qosClass", "field is immutable"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := validPod()
			old.ResourceVersion = "3"
			Strategy{}.PrepareForCreate(context.Background(), old)
			p := old.DeepCopy()
			tc.mutate(p)
			StatusStrategy{}.PrepareForUpdate(context.Background(), p, old)
			if diff := cmp.Diff(tc.want, summarize(StatusStrategy{}.ValidateUpdate(context.Background(), p, old))); diff != "" {
				t.Errorf("status ValidateUpdate errors (-want +got):\n%s", diff)
			}
		})
	}
}
