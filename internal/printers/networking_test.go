package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestIngressCells(t *testing.T) {
	rules := func(hosts ...string) []networkingv1.IngressRule {
		var out []networkingv1.IngressRule
		for _, h := range hosts {
			out = append(out, networkingv1.IngressRule{Host: h})
		}
		return out
	}
	lb := func(addrs ...networkingv1.IngressLoadBalancerIngress) networkingv1.IngressStatus {
		return networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: addrs}}
	}
	runCells(t, gr("networking.k8s.io", "ingresses"), []cellsCase{
		{
			name: "upstream TestPrintIngress: default backend only",
			obj: &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "test1", CreationTimestamp: ago(10 * 365 * 24 * time.Hour)},
				Spec: networkingv1.IngressSpec{
					IngressClassName: ptr.To("foo"),
					DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "default-backend", Port: networkingv1.ServiceBackendPort{Name: "default-backend", Number: 80},
					}},
				},
				Status: lb(networkingv1.IngressLoadBalancerIngress{IP: "2.3.4.5", Hostname: "localhost.localdomain"}),
			},
			want: []any{"test1", "foo", "*", "2.3.4.5", "80", "10y"},
		},
		{
			name: "no class, TLS, hostnames longer than 16 bytes are not clipped",
			obj: &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: networkingv1.IngressSpec{
					Rules: rules("a.example.com", "b.example.com"),
					TLS:   []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}},
				},
				Status: lb(networkingv1.IngressLoadBalancerIngress{Hostname: "lb-123.elb.example.com"}),
			},
			want: []any{"web", "<none>", "a.example.com,b.example.com", "lb-123.elb.example.com", "80, 443", "<unknown>"},
		},
		{
			name: "more than three rules count hostless rules too",
			obj: &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "many"},
				Spec:       networkingv1.IngressSpec{Rules: rules("a", "", "b", "c", "d", "")},
			},
			want: []any{"many", "<none>", "a,b,c + 3 more...", "", "80", "<unknown>"},
		},
		{
			name: "rules without hosts print *",
			obj: &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "star"},
				Spec:       networkingv1.IngressSpec{Rules: rules("", "")},
			},
			want: []any{"star", "<none>", "*", "", "80", "<unknown>"},
		},
	})
}

func TestIngressClassCells(t *testing.T) {
	runCells(t, gr("networking.k8s.io", "ingressclasses"), []cellsCase{
		{
			name: "upstream TestPrintIngressClass: example with params",
			obj: &networkingv1.IngressClass{
				ObjectMeta: metav1.ObjectMeta{Name: "test1", CreationTimestamp: ago(10 * 365 * 24 * time.Hour)},
				Spec: networkingv1.IngressClassSpec{
					Controller: "example.com/controller",
					Parameters: &networkingv1.IngressClassParametersReference{Kind: "customgroup", Name: "example"},
				},
			},
			want: []any{"test1", "example.com/controller", "customgroup/example", "10y"},
		},
		{
			name: "upstream TestPrintIngressClass: example with params + API group",
			obj: &networkingv1.IngressClass{
				ObjectMeta: metav1.ObjectMeta{Name: "test1", CreationTimestamp: ago(10 * 365 * 24 * time.Hour)},
				Spec: networkingv1.IngressClassSpec{
					Controller: "example.com/controller",
					Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr.To("example.com"), Kind: "customgroup", Name: "example"},
				},
			},
			want: []any{"test1", "example.com/controller", "customgroup.example.com/example", "10y"},
		},
		{
			name: "upstream TestPrintIngressClass: example without params",
			obj: &networkingv1.IngressClass{
				ObjectMeta: metav1.ObjectMeta{Name: "test2", CreationTimestamp: ago(11 * 365 * 24 * time.Hour)},
				Spec:       networkingv1.IngressClassSpec{Controller: "example.com/controller2"},
			},
			want: []any{"test2", "example.com/controller2", "<none>", "11y"},
		},
		{
			name: "upstream TestPrintIngressClass: example with default annotation",
			obj: &networkingv1.IngressClass{
				ObjectMeta: metav1.ObjectMeta{
					Name: "test-default", CreationTimestamp: ago(9 * 365 * 24 * time.Hour),
					Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"},
				},
				Spec: networkingv1.IngressClassSpec{Controller: "example.com/controller"},
			},
			want: []any{"test-default (default)", "example.com/controller", "<none>", "9y"},
		},
		{
			name: "default annotation other than true is ignored",
			obj: &networkingv1.IngressClass{
				ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "True"}},
				Spec:       networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"},
			},
			want: []any{"nginx", "k8s.io/ingress-nginx", "<none>", "<unknown>"},
		},
	})
}

func TestEndpointSliceCells(t *testing.T) {
	tcp := corev1.ProtocolTCP
	port := func(name string, n int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(n), Protocol: &tcp}
	}
	endpoints := []discoveryv1.Endpoint{
		{Addresses: []string{"10.1.2.3", "2001:db8::1234:5678"}},
		{Addresses: []string{"10.2.3.4", "2001:db8::2345:6789"}},
	}
	runCells(t, gr("discovery.k8s.io", "endpointslices"), []cellsCase{
		{
			name: "upstream TestPrintEndpointSlice: abcslice.123",
			obj: &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: "abcslice.123", CreationTimestamp: almostNow},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{port("http", 80)},
				Endpoints:   endpoints[:1],
			},
			want: []any{"abcslice.123", "IPv4", "80", "10.1.2.3,2001:db8::1234:5678", "0s"},
		},
		{
			name: "upstream TestPrintEndpointSlice: longerslicename.123",
			obj: &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: "longerslicename.123", CreationTimestamp: ago(5 * time.Minute)},
				AddressType: discoveryv1.AddressTypeIPv6,
				Ports:       []discoveryv1.EndpointPort{port("http", 80), port("https", 443)},
				Endpoints:   endpoints,
			},
			want: []any{"longerslicename.123", "IPv6", "80,443", "10.1.2.3,2001:db8::1234:5678,10.2.3.4 + 1 more...", "5m"},
		},
		{
			name: "upstream TestPrintEndpointSlice: multiportslice.123",
			obj: &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: "multiportslice.123", CreationTimestamp: ago(5 * time.Minute)},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{port("http", 80), port("https", 443), port("extra1", 3000), port("extra2", 3001)},
				Endpoints:   endpoints,
			},
			want: []any{"multiportslice.123", "IPv4", "80,443,3000 + 1 more...", "10.1.2.3,2001:db8::1234:5678,10.2.3.4 + 1 more...", "5m"},
		},
		{
			name: "empty slice prints <unset>; ports without a number print the name or *",
			obj: &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde"},
				AddressType: discoveryv1.AddressTypeFQDN,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http")}, {}},
			},
			want: []any{"web-abcde", "FQDN", "http,*", "<unset>", "<unknown>"},
		},
		{
			name: "no ports at all",
			obj:  &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "none"}, AddressType: discoveryv1.AddressTypeIPv4},
			want: []any{"none", "IPv4", "<unset>", "<unset>", "<unknown>"},
		},
	})
}
