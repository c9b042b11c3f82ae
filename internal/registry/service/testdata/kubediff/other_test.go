package kubediff

import (
	"context"
	"math/rand"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/operation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	api "k8s.io/kubernetes/pkg/apis/core"
	"k8s.io/kubernetes/pkg/apis/discovery"
	_ "k8s.io/kubernetes/pkg/apis/discovery/install"
	"k8s.io/kubernetes/pkg/apis/networking"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	epreg "k8s.io/kubernetes/pkg/registry/core/endpoint"
	epsreg "k8s.io/kubernetes/pkg/registry/discovery/endpointslice"
	ingreg "k8s.io/kubernetes/pkg/registry/networking/ingress"
	icreg "k8s.io/kubernetes/pkg/registry/networking/ingressclass"

	"kubediff/internal/registry"
	"kubediff/internal/registry/endpoints"
	"kubediff/internal/registry/endpointslice"
	"kubediff/internal/registry/ingress"
)

type kstrategy interface {
	PrepareForCreate(context.Context, runtime.Object)
	PrepareForUpdate(context.Context, runtime.Object, runtime.Object)
	Validate(context.Context, runtime.Object) field.ErrorList
	ValidateUpdate(context.Context, runtime.Object, runtime.Object) field.ErrorList
}

func kctx(group string) context.Context {
	return genericapirequest.WithRequestInfo(context.Background(), &genericapirequest.RequestInfo{APIGroup: group, APIVersion: "v1"})
}

func conv(t *testing.T, in, out runtime.Object) runtime.Object {
	if err := legacyscheme.Scheme.Convert(in, out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

// diffKind runs create and update through kube's strategy (+declarative validation) and ours.
func diffKind(t *testing.T, name, group string, ks kstrategy, ours registry.Strategy, newV1 func() runtime.Object, newInt func() runtime.Object, gen func(*rand.Rand) runtime.Object) {
	r := rand.New(rand.NewSource(seedFromEnv(3)))
	mismatch := 0
	for i := 0; i < 30000 && mismatch < 10; i++ {
		raw := gen(r)
		ctx := kctx(group)
		// create
		k := raw.DeepCopyObject()
		legacyscheme.Scheme.Default(k)
		m := raw.DeepCopyObject()
		ours.Default(m)
		if js(k) != js(m) {
			mismatch++
			t.Errorf("%s defaults differ:\nkube %s\nours %s", name, js(k), js(m))
			continue
		}
		ki := conv(t, k, newInt())
		ks.PrepareForCreate(ctx, ki)
		kerrs := ks.Validate(ctx, ki)
		if dv, ok := ks.(rest.DeclarativeValidationStrategy); ok {
			kerrs = dv.ValidateDeclaratively(ctx, ki, nil, kerrs, operation.Create, dv.DeclarativeValidationConfig(ctx, ki, nil))
		}
		ours.PrepareForCreate(context.Background(), m)
		merrs := ours.Validate(context.Background(), m)
		kback := conv(t, ki, newV1())
		if js(kback) != js(m) || render(kerrs) != render(merrs) {
			mismatch++
			t.Errorf("%s create differs for %s:\nkube %s\n%s\nours %s\n%s", name, js(raw), js(kback), render(kerrs), js(m), render(merrs))
			continue
		}
		// update: old = a prepared valid-or-not object, new = another random one with same name
		old := m.DeepCopyObject()
		nw := gen(r)
		if r.Intn(2) == 0 {
			nw = mutateObj(r, old.DeepCopyObject())
		}
		setMeta(nw, old)
		legacyscheme.Scheme.Default(nw)
		kn, ko := conv(t, nw.DeepCopyObject(), newInt()), conv(t, old.DeepCopyObject(), newInt())
		kn.(metav1.Object).SetGeneration(ko.(metav1.Object).GetGeneration()) // rest.BeforeUpdate
		ks.PrepareForUpdate(ctx, kn, ko)
		kerrs = ks.ValidateUpdate(ctx, kn, ko)
		if dv, ok := ks.(rest.DeclarativeValidationStrategy); ok {
			kerrs = dv.ValidateDeclaratively(ctx, kn, ko, kerrs, operation.Update, dv.DeclarativeValidationConfig(ctx, kn, ko))
		}
		mn, mo := nw.DeepCopyObject(), old.DeepCopyObject()
		ours.PrepareForUpdate(context.Background(), mn, mo)
		merrs = ours.ValidateUpdate(context.Background(), mn, mo)
		kback = conv(t, kn, newV1())
		if js(kback) != js(mn) || render(kerrs) != render(merrs) {
			mismatch++
			t.Errorf("%s update differs\nold %s\nnew %s:\nkube %s\n%s\nours %s\n%s", name, js(old), js(nw), js(kback), render(kerrs), js(mn), render(merrs))
		}
	}
}

func setMeta(nw, old runtime.Object) {
	nm, om := nw.(metav1.Object), old.(metav1.Object)
	nm.SetName(om.GetName())
	nm.SetNamespace(om.GetNamespace())
	nm.SetResourceVersion("1")
	if rand.Intn(3) == 0 {
		nm.SetGeneration(om.GetGeneration())
	}
}

func mutateObj(r *rand.Rand, o runtime.Object) runtime.Object {
	switch x := o.(type) {
	case *discoveryv1.EndpointSlice:
		if r.Intn(2) == 0 {
			x.AddressType = pick(r, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, "", "Bad")
		}
		if r.Intn(2) == 0 && len(x.Endpoints) > 0 {
			x.Endpoints[0].DeprecatedTopology = map[string]string{corev1.LabelHostname: pick(r, "node1", "Bad_")}
		}
		if r.Intn(3) == 0 {
			x.Labels = map[string]string{"a": "b"}
		}
	case *networkingv1.Ingress:
		if r.Intn(2) == 0 {
			x.Spec.IngressClassName = ptr("other")
		}
		if r.Intn(2) == 0 {
			x.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "1.2.3.4"}}
		}
	case *networkingv1.IngressClass:
		x.Spec.Controller = pick(r, x.Spec.Controller, "example.com/other")
		if x.Spec.Parameters != nil && r.Intn(2) == 0 {
			x.Spec.Parameters.Name = pick(r, "", "p2")
		}
	case *corev1.Endpoints:
		if len(x.Subsets) > 0 && r.Intn(2) == 0 {
			x.Subsets[0].Ports = append(x.Subsets[0].Ports, corev1.EndpointPort{Port: 9})
		}
	}
	return o
}

func genEPS(r *rand.Rand) runtime.Object {
	e := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: pick(r, "s1", "S1", "s.1"), Namespace: "default", ResourceVersion: "1"}}
	e.AddressType = pick(r, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN, "", "Bad")
	for i := 0; i < r.Intn(3); i++ {
		ep := discoveryv1.Endpoint{}
		for j := 0; j < pick(r, 0, 1, 1, 2, 101); j++ {
			ep.Addresses = append(ep.Addresses, pick(r, "10.0.0.1", "fd00::1", "127.0.0.1", "bad", "01.2.3.4", "example.com", "::ffff:1.2.3.4"))
		}
		if r.Intn(3) == 0 {
			ep.NodeName = ptr(pick(r, "node1", "Bad_"))
		}
		if r.Intn(3) == 0 {
			ep.Hostname = ptr(pick(r, "h1", "Bad_"))
		}
		if r.Intn(4) == 0 {
			ep.DeprecatedTopology = map[string]string{pick(r, corev1.LabelHostname, "bad key!"): pick(r, "node1", "x")}
		}
		if r.Intn(4) == 0 {
			ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z"}, {Name: pick(r, "z", "bad zone!")}}, ForNodes: []discoveryv1.ForNode{{Name: pick(r, "n", "Bad_")}}}
		}
		if r.Intn(3) == 0 {
			ep.Zone = ptr("z1")
		}
		e.Endpoints = append(e.Endpoints, ep)
	}
	for i := 0; i < r.Intn(3); i++ {
		p := discoveryv1.EndpointPort{}
		if r.Intn(2) == 0 {
			p.Name = ptr(pick(r, "", "http", "Bad_"))
		}
		if r.Intn(2) == 0 {
			p.Protocol = ptr(pick(r, corev1.ProtocolTCP, corev1.ProtocolUDP, "ICMP"))
		}
		if r.Intn(3) == 0 {
			p.Port = ptr(pick(r, int32(80), 0, 70000))
		}
		if r.Intn(4) == 0 {
			p.AppProtocol = ptr(pick(r, "http", "bad proto"))
		}
		e.Ports = append(e.Ports, p)
	}
	return e
}

func genIngress(r *rand.Rand) runtime.Object {
	in := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: pick(r, "ing", "Ing"), Namespace: "default", ResourceVersion: "1"}}
	if r.Intn(3) == 0 {
		in.Annotations = map[string]string{"kubernetes.io/ingress.class": pick(r, "nginx", "other")}
	}
	if r.Intn(2) == 0 {
		in.Spec.IngressClassName = ptr(pick(r, "nginx", "Bad_"))
	}
	backend := func() networkingv1.IngressBackend {
		b := networkingv1.IngressBackend{}
		switch r.Intn(5) {
		case 0:
		case 1:
			b.Resource = &corev1.TypedLocalObjectReference{Kind: pick(r, "", "Bucket", "a/b"), Name: pick(r, "", "x", "..")}
			if r.Intn(2) == 0 {
				b.Resource.APIGroup = ptr(pick(r, "example.com", "Bad_"))
			}
			if r.Intn(3) == 0 {
				b.Service = &networkingv1.IngressServiceBackend{Name: "s"}
			}
		default:
			b.Service = &networkingv1.IngressServiceBackend{Name: pick(r, "svc", "", "1svc", "Svc")}
			switch r.Intn(4) {
			case 0:
				b.Service.Port.Name = pick(r, "http", "-bad")
			case 1:
				b.Service.Port.Number = pick(r, int32(80), 70000)
			case 2:
				b.Service.Port.Name, b.Service.Port.Number = "http", 80
			}
		}
		return b
	}
	if r.Intn(2) == 0 {
		b := backend()
		in.Spec.DefaultBackend = &b
	}
	switch r.Intn(4) {
	case 0:
	case 1:
		in.Spec.Rules = []networkingv1.IngressRule{}
	default:
		for i := 0; i < 1+r.Intn(2); i++ {
			rule := networkingv1.IngressRule{Host: pick(r, "", "foo.com", "*.foo.com", "*", "1.2.3.4", "Foo.com", "a.*.com")}
			if r.Intn(4) > 0 {
				rule.HTTP = &networkingv1.HTTPIngressRuleValue{}
				for j := 0; j < r.Intn(3); j++ {
					p := networkingv1.HTTPIngressPath{Path: pick(r, "/", "/foo", "foo", "/a//b", "/a/.", "/a/%2f", "", "/a/..")}
					if r.Intn(5) > 0 {
						p.PathType = ptr(pick(r, networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific, "Bad"))
					}
					p.Backend = backend()
					rule.HTTP.Paths = append(rule.HTTP.Paths, p)
				}
			}
			in.Spec.Rules = append(in.Spec.Rules, rule)
		}
	}
	if r.Intn(3) == 0 {
		in.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{pick(r, "foo.com", "*.foo.com", "Bad_", "*")}, SecretName: pick(r, "", "tls", "Bad_")}}
	}
	if r.Intn(4) == 0 {
		in.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "1.2.3.4"}}
	}
	return in
}

func genIngressClass(r *rand.Rand) runtime.Object {
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: pick(r, "nginx", "Bad_"), ResourceVersion: "1"}}
	ic.Spec.Controller = pick(r, "example.com/ingress", "", "nodomain", "example.com/"+strings.Repeat("a", 250), "Bad_/x")
	if r.Intn(2) == 0 {
		ic.Spec.Parameters = &networkingv1.IngressClassParametersReference{Kind: pick(r, "", "K", "a/b"), Name: pick(r, "", "n", "..")}
		if r.Intn(2) == 0 {
			ic.Spec.Parameters.APIGroup = ptr(pick(r, "example.com", "Bad_"))
		}
		if r.Intn(2) == 0 {
			ic.Spec.Parameters.Scope = ptr(pick(r, "Cluster", "Namespace", "Bad"))
		}
		if r.Intn(2) == 0 {
			ic.Spec.Parameters.Namespace = ptr(pick(r, "ns", "Bad_"))
		}
	}
	return ic
}

func genEndpoints(r *rand.Rand) runtime.Object {
	e := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: pick(r, "ep", "Ep"), Namespace: "default", ResourceVersion: "1"}}
	for i := 0; i < r.Intn(3); i++ {
		ss := corev1.EndpointSubset{}
		for j := 0; j < r.Intn(3); j++ {
			a := corev1.EndpointAddress{IP: pick(r, "10.0.0.1", "127.0.0.1", "bad", "01.2.3.4", "fe80::1", "0.0.0.0")}
			if r.Intn(3) == 0 {
				a.Hostname = pick(r, "h", "Bad_")
			}
			if r.Intn(3) == 0 {
				a.NodeName = ptr(pick(r, "n", "Bad_"))
			}
			if r.Intn(2) == 0 {
				ss.Addresses = append(ss.Addresses, a)
			} else {
				ss.NotReadyAddresses = append(ss.NotReadyAddresses, a)
			}
		}
		for j := 0; j < r.Intn(3); j++ {
			p := corev1.EndpointPort{Name: pick(r, "", "http", "Bad_"), Port: pick(r, int32(80), 0), Protocol: pick(r, corev1.Protocol(""), "TCP", "ICMP")}
			if r.Intn(4) == 0 {
				p.AppProtocol = ptr(pick(r, "http", "bad proto"))
			}
			ss.Ports = append(ss.Ports, p)
		}
		e.Subsets = append(e.Subsets, ss)
	}
	return e
}

func TestOtherKindsDiff(t *testing.T) {
	t.Run("endpointslice", func(t *testing.T) {
		diffKind(t, "endpointslice", "discovery.k8s.io", epsreg.Strategy, endpointslice.Strategy{},
			func() runtime.Object { return &discoveryv1.EndpointSlice{} }, func() runtime.Object { return &discovery.EndpointSlice{} }, genEPS)
	})
	t.Run("ingress", func(t *testing.T) {
		diffKind(t, "ingress", "networking.k8s.io", ingreg.Strategy, ingress.Strategy{},
			func() runtime.Object { return &networkingv1.Ingress{} }, func() runtime.Object { return &networking.Ingress{} }, genIngress)
	})
	t.Run("ingressstatus", func(t *testing.T) {
		diffKind(t, "ingressstatus", "networking.k8s.io", statusAdapter{ingreg.StatusStrategy}, statusOurs{ingress.StatusStrategy{}},
			func() runtime.Object { return &networkingv1.Ingress{} }, func() runtime.Object { return &networking.Ingress{} }, genIngress)
	})
	t.Run("ingressclass", func(t *testing.T) {
		diffKind(t, "ingressclass", "networking.k8s.io", icreg.Strategy, ingress.ClassStrategy{},
			func() runtime.Object { return &networkingv1.IngressClass{} }, func() runtime.Object { return &networking.IngressClass{} }, genIngressClass)
	})
	t.Run("endpoints", func(t *testing.T) {
		diffKind(t, "endpoints", "", epreg.Strategy, endpoints.Strategy{},
			func() runtime.Object { return &corev1.Endpoints{} }, func() runtime.Object { return &api.Endpoints{} }, genEndpoints)
	})
}

// statusAdapter runs only the status update path (create path is a no-op).
type statusAdapter struct {
	s interface {
		PrepareForUpdate(context.Context, runtime.Object, runtime.Object)
		ValidateUpdate(context.Context, runtime.Object, runtime.Object) field.ErrorList
	}
}

func (a statusAdapter) PrepareForCreate(context.Context, runtime.Object)         {}
func (a statusAdapter) Validate(context.Context, runtime.Object) field.ErrorList { return nil }
func (a statusAdapter) PrepareForUpdate(c context.Context, o, old runtime.Object) {
	a.s.PrepareForUpdate(c, o, old)
}
func (a statusAdapter) ValidateUpdate(c context.Context, o, old runtime.Object) field.ErrorList {
	return a.s.ValidateUpdate(c, o, old)
}

type statusOurs struct{ s registry.StatusStrategy }

func (a statusOurs) Default(runtime.Object)                                   {}
func (a statusOurs) PrepareForCreate(context.Context, runtime.Object)         {}
func (a statusOurs) Validate(context.Context, runtime.Object) field.ErrorList { return nil }
func (a statusOurs) PrepareForUpdate(c context.Context, o, old runtime.Object) {
	a.s.PrepareForUpdate(c, o, old)
}
func (a statusOurs) ValidateUpdate(c context.Context, o, old runtime.Object) field.ErrorList {
	return a.s.ValidateUpdate(c, o, old)
}
