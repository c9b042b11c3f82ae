package ingress

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	msgSubdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
	msgWildcard  = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

func errStrings(el field.ErrorList) []string {
	out := []string{}
	for _, e := range el {
		out = append(out, e.Error())
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

func svcBackend(name string, port networkingv1.ServiceBackendPort) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: port}}
}

func path(p string, pt networkingv1.PathType) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &pt, Backend: svcBackend("web", networkingv1.ServiceBackendPort{Number: 80})}
}

func ing(rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "1"}, Spec: networkingv1.IngressSpec{Rules: rules}}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

func TestValidateIngress(t *testing.T) {
	prefix, exact, impl := networkingv1.PathTypePrefix, networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific
	tests := []struct {
		name string
		ing  *networkingv1.Ingress
		want []string
	}{
		{name: "ING-V-01 valid", ing: ing(rule("foo.com", path("/", prefix)))},
		{name: "ING-V-01 rules or defaultBackend required", ing: ing(),
			want: []string{"spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"}},
		{name: "ING-V-01 empty rules list renders as []", ing: func() *networkingv1.Ingress {
			i := ing()
			i.Spec.Rules = []networkingv1.IngressRule{}
			return i
		}(), want: []string{"spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"}},
		{name: "ING-V-02 host not an IP, subdomain or wildcard", ing: ing(rule("1.2.3.4", path("/", prefix)), rule("*.foo.com", path("/", prefix)),
			rule("a.*.com", path("/", prefix)), rule("Foo.com", path("/", prefix))), want: []string{
			`spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address`,
			`spec.rules[2].host: Invalid value: "a.*.com": ` + msgWildcard,
			`spec.rules[3].host: Invalid value: "Foo.com": ` + msgSubdomain,
		}},
		{name: "ING-V-03 paths required when http set; pathType required", ing: ing(rule("foo.com"), rule("", networkingv1.HTTPIngressPath{Path: "/", Backend: svcBackend("web", networkingv1.ServiceBackendPort{Number: 80})})),
			want: []string{"spec.rules[0].http.paths: Required value", "spec.rules[1].http.paths[0].pathType: Required value: pathType must be specified"}},
		{name: "ING-V-03 Exact/Prefix path rules", ing: ing(rule("", path("foo", exact), path("/a//b/./c", prefix), path("/a/..", prefix), path("/a/%2F", prefix))), want: []string{
			`spec.rules[0].http.paths[0].path: Invalid value: "foo": must be an absolute path`,
			`spec.rules[0].http.paths[1].path: Invalid value: "/a//b/./c": must not contain '//'`,
			`spec.rules[0].http.paths[1].path: Invalid value: "/a//b/./c": must not contain '/./'`,
			`spec.rules[0].http.paths[2].path: Invalid value: "/a/..": cannot end with '/..'`,
			`spec.rules[0].http.paths[3].path: Invalid value: "/a/%2F": must not contain '%2F'`,
		}},
		{name: "ING-V-03 ImplementationSpecific: empty ok, else absolute; unsupported type", ing: ing(rule("", path("", impl), path("x", impl), path("/", "Regex"))), want: []string{
			`spec.rules[0].http.paths[1].path: Invalid value: "x": must be an absolute path`,
			`spec.rules[0].http.paths[2].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"`,
		}},
		{name: "ING-V-04 backend rules", ing: func() *networkingv1.Ingress {
			i := ing()
			i.Spec.DefaultBackend = &networkingv1.IngressBackend{}
			p := func(b networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
				return networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: b}
			}
			i.Spec.Rules = []networkingv1.IngressRule{rule("",
				p(svcBackend("1web", networkingv1.ServiceBackendPort{Name: "http"})),
				p(svcBackend("Web", networkingv1.ServiceBackendPort{Name: "http", Number: 80})),
				p(svcBackend("", networkingv1.ServiceBackendPort{})),
				p(svcBackend("web", networkingv1.ServiceBackendPort{Name: "-http"})),
				p(networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "a/b"}, Service: &networkingv1.IngressServiceBackend{Name: "web"}}),
				p(networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptrTo("Bad_"), Kind: "..", Name: ""}}),
			)}
			return i
		}(), want: []string{
			`spec.defaultBackend: Invalid value: "": resource or service backend is required`,
			`spec.rules[0].http.paths[1].backend.service.name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
			`spec.rules[0].http.paths[1].backend: Invalid value: "": cannot set both port name & port number`,
			"spec.rules[0].http.paths[2].backend.service.name: Required value",
			"spec.rules[0].http.paths[2].backend: Required value: port name or number is required",
			`spec.rules[0].http.paths[3].backend.service.port.name: Invalid value: "-http": must not begin or end with a hyphen`,
			`spec.rules[0].http.paths[4].backend: Invalid value: "": cannot set both resource and service backends`,
			`spec.rules[0].http.paths[5].backend.resource.apiGroup: Invalid value: "Bad_": ` + msgSubdomain,
			`spec.rules[0].http.paths[5].backend.resource.kind: Invalid value: "..": may not be '..'`,
			"spec.rules[0].http.paths[5].backend.resource.name: Required value",
		}},
		{name: "ING-V-05 TLS hosts and secret name", ing: func() *networkingv1.Ingress {
			i := ing(rule("", path("/", prefix)))
			i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"*.foo.com", "*", "Foo"}, SecretName: "Bad_"}}
			return i
		}(), want: []string{
			`spec.tls[0].hosts[1]: Invalid value: "*": ` + msgWildcard,
			`spec.tls[0].hosts[2]: Invalid value: "Foo": ` + msgSubdomain,
			`spec.tls[0].secretName: Invalid value: "Bad_": ` + msgSubdomain,
		}},
		{name: "ING-V-06 deprecated class annotation must match ingressClassName (path built with Child)", ing: func() *networkingv1.Ingress {
			i := ing(rule("", path("/", prefix)))
			i.Annotations = map[string]string{AnnotationIngressClass: "nginx"}
			i.Spec.IngressClassName = ptrTo("kubesvc")
			return i
		}(), want: []string{"annotations.kubernetes.io/ingress.class: Invalid value: \"nginx\": must match `ingressClassName` when both are specified"}},
		{name: "ingressClassName must be a DNS subdomain", ing: func() *networkingv1.Ingress {
			i := ing(rule("", path("/", prefix)))
			i.Spec.IngressClassName = ptrTo("Bad_")
			return i
		}(), want: []string{`spec.ingressClassName: Invalid value: "Bad_": ` + msgSubdomain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Strategy{}
			s.Default(tc.ing)
			s.PrepareForCreate(context.Background(), tc.ing)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, errStrings(s.Validate(context.Background(), tc.ing))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestIngressUpdate(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	withTLS := func(secret string) *networkingv1.Ingress {
		i := ing(rule("", path("/", prefix)))
		i.Spec.TLS = []networkingv1.IngressTLS{{SecretName: secret}}
		return i
	}
	wildcardBadRule := func() *networkingv1.Ingress {
		return ing(rule("*.foo.com", networkingv1.HTTPIngressPath{Path: "x", PathType: &prefix, Backend: svcBackend("web", networkingv1.ServiceBackendPort{Number: 80})}))
	}
	tests := []struct {
		name     string
		old, new *networkingv1.Ingress
		want     []string
		wantGen  int64
	}{
		{name: "spec change bumps generation", old: ing(rule("a.com", path("/", prefix))), new: ing(rule("b.com", path("/", prefix))), wantGen: 2},
		{name: "metadata-only change keeps generation", old: ing(rule("a.com", path("/", prefix))), new: func() *networkingv1.Ingress {
			i := ing(rule("a.com", path("/", prefix)))
			i.Labels = map[string]string{"a": "b"}
			return i
		}(), wantGen: 1},
		{name: "ING-V-05 an invalid stored secret name allows invalid ones on update", old: withTLS("Bad_"), new: withTLS("Worse_"), wantGen: 2},
		{name: "ING-V-05 a valid stored secret name does not", old: withTLS("tls"), new: withTLS("Bad_"), wantGen: 2,
			want: []string{`spec.tls[0].secretName: Invalid value: "Bad_": ` + msgSubdomain}},
		{name: "ING-V-02 invalid rules under a stored invalid wildcard rule are tolerated", old: wildcardBadRule(), new: wildcardBadRule(), wantGen: 1},
		{name: "ING-V-06 annotation mismatch is only checked on create", old: ing(rule("", path("/", prefix))), new: func() *networkingv1.Ingress {
			i := ing(rule("", path("/", prefix)))
			i.Annotations = map[string]string{AnnotationIngressClass: "nginx"}
			i.Spec.IngressClassName = ptrTo("other")
			return i
		}(), wantGen: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Strategy{}
			s.PrepareForCreate(context.Background(), tc.old)
			s.PrepareForUpdate(context.Background(), tc.new, tc.old)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, errStrings(s.ValidateUpdate(context.Background(), tc.new, tc.old))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tc.new.Generation != tc.wantGen {
				t.Errorf("generation = %d, want %d", tc.new.Generation, tc.wantGen)
			}
		})
	}
}

func TestIngressStatus(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	old := ing(rule("", path("/", prefix)))
	nw := ing(rule("other.com", path("/", prefix)))
	nw.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "bad"}, {Hostname: "1.2.3.4"}, {IP: "::ffff:1.2.3.4"}}
	StatusStrategy{}.PrepareForUpdate(context.Background(), nw, old)
	if nw.Spec.Rules[0].Host != "" {
		t.Errorf("status write changed the spec")
	}
	want := []string{
		`status.loadBalancer.ingress[0].ip: Invalid value: "bad": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
		`status.loadBalancer.ingress[1].hostname: Invalid value: "1.2.3.4": must be a DNS name, not an IP address`,
		`status.loadBalancer.ingress[2].ip: Invalid value: "::ffff:1.2.3.4": must not be an IPv4-mapped IPv6 address`,
	}
	if diff := cmp.Diff(want, errStrings(StatusStrategy{}.ValidateUpdate(context.Background(), nw, old))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestIngressWarnings(t *testing.T) {
	i := ing()
	i.Annotations = map[string]string{AnnotationIngressClass: "nginx"}
	got := strings.Join(Strategy{}.WarningsOnCreate(context.Background(), i), "|")
	if want := `annotation "kubernetes.io/ingress.class" is deprecated, please use 'spec.ingressClassName' instead`; got != want {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func class(controller string, params *networkingv1.IngressClassParametersReference) *networkingv1.IngressClass {
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "kubesvc", ResourceVersion: "1"},
		Spec: networkingv1.IngressClassSpec{Controller: controller, Parameters: params}}
	ClassStrategy{}.Default(ic)
	return ic
}

func TestIngressClass(t *testing.T) {
	ns := networkingv1.IngressClassParametersReferenceScopeNamespace
	tests := []struct {
		name string
		ic   *networkingv1.IngressClass
		want []string
	}{
		{name: "ING-C-01 valid, scope defaults to Cluster", ic: class("kubesvc.io/ingress", &networkingv1.IngressClassParametersReference{Kind: "Config", Name: "c"})},
		{name: "ING-C-01 controller must be a domain-prefixed path", ic: class("ingress", nil),
			want: []string{`spec.controller: Invalid value: "ingress": must be a domain-prefixed path (such as "acme.io/foo")`}},
		{name: "ING-C-01 controller at most 250 characters", ic: class("kubesvc.io/"+strings.Repeat("a", 240), nil),
			want: []string{"spec.controller: Too long: may not be more than 250 bytes"}},
		{name: "ING-C-01 parameters kind and name required (declarative, after the others)", ic: class("kubesvc.io/ingress",
			&networkingv1.IngressClassParametersReference{APIGroup: ptrTo("Bad_")}), want: []string{
			`spec.parameters.apiGroup: Invalid value: "Bad_": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
			"spec.parameters.kind: Required value",
			"spec.parameters.name: Required value",
		}},
		{name: "ING-C-01 namespace required iff scope Namespace", ic: class("kubesvc.io/ingress",
			&networkingv1.IngressClassParametersReference{Kind: "K", Name: "n", Scope: &ns}),
			want: []string{"spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"}},
		{name: "ING-C-01 namespace forbidden with scope Cluster", ic: class("kubesvc.io/ingress",
			&networkingv1.IngressClassParametersReference{Kind: "K", Name: "n", Namespace: ptrTo("default")}),
			want: []string{"spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"}},
		{name: "ING-C-01 unsupported scope", ic: class("kubesvc.io/ingress",
			&networkingv1.IngressClassParametersReference{Kind: "K", Name: "n", Scope: ptrTo("World")}),
			want: []string{`spec.parameters.scope: Unsupported value: "World": supported values: "Cluster", "Namespace"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ClassStrategy{}
			s.PrepareForCreate(context.Background(), tc.ic)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, errStrings(s.Validate(context.Background(), tc.ic))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("ING-C-01 controller immutable, spec change bumps generation", func(t *testing.T) {
		old, nw := class("kubesvc.io/ingress", nil), class("other.io/ingress", nil)
		s := ClassStrategy{}
		s.PrepareForCreate(context.Background(), old)
		s.PrepareForUpdate(context.Background(), nw, old)
		want := []string{`spec.controller: Invalid value: "other.io/ingress": field is immutable`}
		if diff := cmp.Diff(want, errStrings(s.ValidateUpdate(context.Background(), nw, old))); diff != "" || nw.Generation != 2 {
			t.Errorf("generation %d (-want +got):\n%s", nw.Generation, diff)
		}
	})
}

// FuzzIngress: any decodable Ingress or IngressClass can be defaulted, prepared and
// validated (create, update, status) without a panic.
func FuzzIngress(f *testing.F) {
	pt := networkingv1.PathTypePrefix
	i := ing(rule("*.foo.com", path("/", pt)))
	i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"x"}}}
	b, _ := json.Marshal(i)
	c, _ := json.Marshal(class("a.io/b", &networkingv1.IngressClassParametersReference{Kind: "K"}))
	f.Add(b, b)
	f.Add(c, c)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ctx := context.Background()
		var nw, old networkingv1.Ingress
		if json.Unmarshal(a, &nw) == nil && json.Unmarshal(b, &old) == nil {
			s := Strategy{}
			c := nw.DeepCopy()
			s.PrepareForCreate(ctx, c)
			_ = s.Validate(ctx, c)
			_ = s.WarningsOnCreate(ctx, c)
			st := nw.DeepCopy()
			s.PrepareForUpdate(ctx, &nw, &old)
			_ = s.ValidateUpdate(ctx, &nw, &old)
			StatusStrategy{}.PrepareForUpdate(ctx, st, &old)
			_ = StatusStrategy{}.ValidateUpdate(ctx, st, &old)
			_ = StatusStrategy{}.WarningsOnUpdate(ctx, st, &old)
		}
		var nc, oc networkingv1.IngressClass
		if json.Unmarshal(a, &nc) == nil && json.Unmarshal(b, &oc) == nil {
			s := ClassStrategy{}
			s.Default(&nc)
			s.Default(&oc)
			c := nc.DeepCopy()
			s.PrepareForCreate(ctx, c)
			_ = s.Validate(ctx, c)
			s.PrepareForUpdate(ctx, &nc, &oc)
			_ = s.ValidateUpdate(ctx, &nc, &oc)
		}
	})
}
