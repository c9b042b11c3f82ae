package envvars

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func lines(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestServiceMap checks ENV-01…04 with the spec's worked example and the selection rules.
func TestServiceMap(t *testing.T) {
	kubernetes := svc("default", "kubernetes", "10.96.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP})
	kubeVars := `KUBERNETES_PORT=tcp://10.96.0.1:443
KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443
KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1
KUBERNETES_PORT_443_TCP_PORT=443
KUBERNETES_PORT_443_TCP_PROTO=tcp
KUBERNETES_SERVICE_HOST=10.96.0.1
KUBERNETES_SERVICE_PORT=443
KUBERNETES_SERVICE_PORT_HTTPS=443`
	for _, tc := range []struct {
		name     string
		services []*corev1.Service
		ns       string
		links    bool
		want     string
	}{
		{
			name:     "ENV-04 redis-primary single unnamed port",
			services: []*corev1.Service{svc("ns1", "redis-primary", "10.0.0.11", corev1.ServicePort{Port: 6379, Protocol: corev1.ProtocolTCP})},
			ns:       "ns1", links: true,
			want: `REDIS_PRIMARY_PORT=tcp://10.0.0.11:6379
REDIS_PRIMARY_PORT_6379_TCP=tcp://10.0.0.11:6379
REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.0.0.11
REDIS_PRIMARY_PORT_6379_TCP_PORT=6379
REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp
REDIS_PRIMARY_SERVICE_HOST=10.0.0.11
REDIS_PRIMARY_SERVICE_PORT=6379`,
		},
		{
			name:     "kubernetes always, even without links, from another namespace",
			services: []*corev1.Service{kubernetes, svc("ns1", "kubia", "10.0.0.5", corev1.ServicePort{Port: 80})},
			ns:       "ns1", links: false,
			want: kubeVars,
		},
		{
			name: "named ports, UDP, target port not used, first port is SERVICE_PORT",
			services: []*corev1.Service{svc("default", "dns-x", "10.0.0.10",
				corev1.ServicePort{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intOrString(5353)},
				corev1.ServicePort{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP})},
			ns: "default", links: true,
			want: `DNS_X_PORT=udp://10.0.0.10:53
DNS_X_PORT_53_UDP=udp://10.0.0.10:53
DNS_X_PORT_53_UDP_ADDR=10.0.0.10
DNS_X_PORT_53_UDP_PORT=53
DNS_X_PORT_53_UDP_PROTO=udp
DNS_X_PORT_9153_TCP=tcp://10.0.0.10:9153
DNS_X_PORT_9153_TCP_ADDR=10.0.0.10
DNS_X_PORT_9153_TCP_PORT=9153
DNS_X_PORT_9153_TCP_PROTO=tcp
DNS_X_SERVICE_HOST=10.0.0.10
DNS_X_SERVICE_PORT=53
DNS_X_SERVICE_PORT_DNS_UDP=53
DNS_X_SERVICE_PORT_METRICS=9153`,
		},
		{
			name:     "IPv6 is bracketed",
			services: []*corev1.Service{svc("default", "v6", "fd00::1", corev1.ServicePort{Port: 443})},
			ns:       "default", links: true,
			want: `V6_PORT=tcp://[fd00::1]:443
V6_PORT_443_TCP=tcp://[fd00::1]:443
V6_PORT_443_TCP_ADDR=fd00::1
V6_PORT_443_TCP_PORT=443
V6_PORT_443_TCP_PROTO=tcp
V6_SERVICE_HOST=fd00::1
V6_SERVICE_PORT=443`,
		},
		{
			name: "headless, ExternalName and other namespaces produce nothing",
			services: []*corev1.Service{
				svc("default", "headless", "None", corev1.ServicePort{Port: 80}),
				svc("default", "ext", "", corev1.ServicePort{Port: 80}),
				svc("other", "elsewhere", "10.0.0.9", corev1.ServicePort{Port: 80}),
			},
			ns: "default", links: true,
			want: ``,
		},
		{
			name:     "a kubernetes Service of the pod's namespace overrides the master one",
			services: []*corev1.Service{kubernetes, svc("ns1", "kubernetes", "10.0.0.7", corev1.ServicePort{Port: 80})},
			ns:       "ns1", links: true,
			want: `KUBERNETES_PORT=tcp://10.0.0.7:80
KUBERNETES_PORT_80_TCP=tcp://10.0.0.7:80
KUBERNETES_PORT_80_TCP_ADDR=10.0.0.7
KUBERNETES_PORT_80_TCP_PORT=80
KUBERNETES_PORT_80_TCP_PROTO=tcp
KUBERNETES_SERVICE_HOST=10.0.0.7
KUBERNETES_SERVICE_PORT=80`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lines(ServiceMap(tc.services, tc.ns, tc.links))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("service variables (-want +got):\n%s", diff)
			}
		})
	}
}

type fakeSources struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

func (f fakeSources) ConfigMap(_, name string) (*corev1.ConfigMap, error) {
	if c, ok := f.cms[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
}

func (f fakeSources) Secret(_, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

func TestContainer(t *testing.T) {
	src := fakeSources{
		cms:     map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"sleep-interval": "25", "A": "from-cm", "bad=key": "x"}}},
		secrets: map[string]*corev1.Secret{"sec": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kubia-x", Namespace: "ns1", UID: "u-1", Labels: map[string]string{"app": "kubia"}},
		Spec:       corev1.PodSpec{NodeName: "node-a", ServiceAccountName: "default"},
	}
	p := Pod{Pod: pod, PodIPs: []string{"10.244.1.5"}, HostIPs: []string{"198.51.100.11"}, NodeAllocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}}
	services := map[string]string{"KUBIA_SERVICE_HOST": "10.96.1.2", "A": "from-service"}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	for _, tc := range []struct {
		name    string
		c       corev1.Container
		want    string
		wantErr string
	}{
		{
			name: "value, expansion and escapes",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "FIRST", Value: "foo"},
				{Name: "SECOND", Value: "$(FIRST)bar"},
				{Name: "SVC", Value: "http://$(KUBIA_SERVICE_HOST)/"},
				{Name: "ESCAPED", Value: "$$(FIRST)"},
				{Name: "UNKNOWN", Value: "$(NOPE)-$(FIRST"},
				{Name: "LATER", Value: "$(THIRD)"},
				{Name: "THIRD", Value: "3"},
			}},
			want: "A=from-service\nESCAPED=$(FIRST)\nFIRST=foo\nKUBIA_SERVICE_HOST=10.96.1.2\nLATER=$(THIRD)\nSECOND=foobar\nSVC=http://10.96.1.2/\nTHIRD=3\nUNKNOWN=$(NOPE)-$(FIRST",
		},
		{
			name: "field and resource references",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "POD_NAME", ValueFrom: field("metadata.name")},
				{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
				{Name: "POD_UID", ValueFrom: field("metadata.uid")},
				{Name: "POD_IP", ValueFrom: field("status.podIP")},
				{Name: "NODE_NAME", ValueFrom: field("spec.nodeName")},
				{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
				{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
				{Name: "APP", ValueFrom: field("metadata.labels['app']")},
				{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
				{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			}},
			want: "A=from-service\nAPP=kubia\nCPU=2\nHOST_IP=198.51.100.11\nKUBIA_SERVICE_HOST=10.96.1.2\nMEM_MI=4096\nNODE_NAME=node-a\nPOD_IP=10.244.1.5\nPOD_NAME=kubia-x\nPOD_NAMESPACE=ns1\nPOD_UID=u-1\nSA=default",
		},
		{
			name: "envFrom first, env overrides, then service variables only if unset",
			c: corev1.Container{
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}, {Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}}},
				Env: []corev1.EnvVar{
					{Name: "INTERVAL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "sleep-interval"}}},
					{Name: "PASS", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "password"}}},
					{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "k", Optional: ptr.To(true)}}},
				},
			},
			want: "A=from-cm\nINTERVAL=25\nKUBIA_SERVICE_HOST=10.96.1.2\nPASS=s3cret\nS_password=s3cret\nsleep-interval=25",
		},
		{
			name:    "missing configmap",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "k"}}}}},
			wantErr: `configmap "missing" not found`,
		},
		{
			name:    "missing key",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "nope"}}}}},
			wantErr: "couldn't find key nope in Secret ns1/sec",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Container(p, &tc.c, services, src)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range env {
				got = append(got, fmt.Sprintf("%s=%s", e.Name, e.Value))
			}
			if diff := cmp.Diff(tc.want, strings.Join(got, "\n")); diff != "" {
				t.Fatalf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"VAR_A": "A", "VAR_EMPTY": ""}
	mapping := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for _, tc := range []struct{ name, in, want string }{
		{name: "whole", in: "$(VAR_A)", want: "A"},
		{name: "embedded", in: "___$(VAR_A)___", want: "___A___"},
		{name: "empty value", in: "x$(VAR_EMPTY)y", want: "xy"},
		{name: "unknown kept", in: "$(VAR_B)", want: "$(VAR_B)"},
		{name: "escaped", in: "$$(VAR_A)", want: "$(VAR_A)"},
		{name: "double escape", in: "$$$$(VAR_A)", want: "$$(VAR_A)"},
		{name: "unterminated", in: "$(VAR_A", want: "$(VAR_A"},
		{name: "dollar alone", in: "$VAR_A", want: "$VAR_A"},
		{name: "trailing dollar", in: "abc$", want: "abc$"},
		{name: "empty reference", in: "$()", want: "$()"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Expand(tc.in, mapping); got != tc.want {
				t.Fatalf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func intOrString(i int) intstr.IntOrString { return intstr.FromInt32(int32(i)) }
