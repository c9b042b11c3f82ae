package endpointslice

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errStrings(el field.ErrorList) []string {
	out := []string{}
	for _, e := range el {
		out = append(out, e.Error())
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

func slice(at discoveryv1.AddressType, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default", ResourceVersion: "1"},
		AddressType: at, Endpoints: eps,
		Ports: []discoveryv1.EndpointPort{{Port: ptrTo[int32](8080)}},
	}
	Strategy{}.Default(s)
	return s
}

func addrs(a ...string) discoveryv1.Endpoint { return discoveryv1.Endpoint{Addresses: a} }

func TestDefault(t *testing.T) {
	s := slice(discoveryv1.AddressTypeIPv4)
	want := []discoveryv1.EndpointPort{{Name: ptrTo(""), Protocol: ptrTo(corev1.ProtocolTCP), Port: ptrTo[int32](8080)}}
	if diff := cmp.Diff(want, s.Ports); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
	}
	tests := []struct {
		name string
		eps  *discoveryv1.EndpointSlice
		want []string
	}{
		{name: "EP-U-03 valid IPv4 slice", eps: slice("IPv4", addrs("10.244.0.5"))},
		{name: "EP-U-03 addressType required (declarative error)", eps: slice(""), want: []string{"addressType: Required value"}},
		{name: "EP-U-03 addressType supported", eps: slice("IPv5"),
			want: []string{`addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"`}},
		{name: "EP-U-03 addresses required: the declarative message replaces the hand-written one", eps: slice("IPv4", addrs()),
			want: []string{"endpoints[0].addresses: Required value"}},
		{name: "EP-U-03 at most 100 addresses", eps: slice("IPv4", addrs(many...)),
			want: []string{"endpoints[0].addresses: Too many: 101: must have at most 100 items"}},
		{name: "EP-U-03 addresses valid for the type and non-special", eps: slice("IPv4", addrs("fd00::1", "127.0.0.1", "01.2.3.4")), want: []string{
			`endpoints[0].addresses: Invalid value: "fd00::1": must be an IPv4 address`,
			`endpoints[0].addresses[1]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`,
			`endpoints[0].addresses[2]: Invalid value: "01.2.3.4": must not have leading 0s`,
		}},
		{name: "EP-U-03 IPv6 slice", eps: slice("IPv6", addrs("10.0.0.1", "fe80::1")), want: []string{
			`endpoints[0].addresses: Invalid value: "10.0.0.1": must be an IPv6 address`,
			`endpoints[0].addresses[1]: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`,
		}},
		{name: "EP-U-03 FQDN slice", eps: slice("FQDN", addrs("example.com", "bad_name")), want: []string{
			`endpoints[0].addresses[1]: Invalid value: "bad_name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		}},
		{name: "EP-U-03 hostname, nodeName, zone hints", eps: slice("IPv4", discoveryv1.Endpoint{
			Addresses: []string{"10.0.0.1"}, Hostname: ptrTo("Web"), NodeName: ptrTo("node_1"),
			Hints: &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "a"}, {Name: "a"}}},
		}), want: []string{
			`endpoints[0].nodeName: Invalid value: "node_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
			`endpoints[0].hostname: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
			`endpoints[0].hints.forZones[1].name: Duplicate value: "a"`,
		}},
		{name: "EP-U-03 ports: names unique DNS labels, protocol, appProtocol", eps: func() *discoveryv1.EndpointSlice {
			s := slice("IPv4")
			s.Ports = []discoveryv1.EndpointPort{{Name: ptrTo("http")}, {Name: ptrTo("http"), Protocol: ptrTo(corev1.Protocol("ICMP"))}, {Name: ptrTo("Bad"), AppProtocol: ptrTo("a b")}}
			Strategy{}.Default(s)
			return s
		}(), want: []string{
			`ports[1].name: Duplicate value: "http"`,
			`ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`,
			`ports[2].name: Invalid value: "Bad": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
			`ports[2].appProtocol: Invalid value: "a b": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		}},
		{name: "EP-U-03 declarative errors go after the hand-written ones", eps: func() *discoveryv1.EndpointSlice {
			s := slice("", addrs())
			s.Name = "Web"
			return s
		}(), want: []string{
			`metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
			"addressType: Required value",
			"endpoints[0].addresses: Required value",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Strategy{}
			s.PrepareForCreate(context.Background(), tc.eps)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, errStrings(s.Validate(context.Background(), tc.eps))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name    string
		old     *discoveryv1.EndpointSlice
		new     *discoveryv1.EndpointSlice
		want    []string
		wantGen int64
	}{
		{name: "EP-U-03 addressType immutable (declarative message, value null)", old: slice("IPv4"), new: slice("IPv6"),
			want: []string{"addressType: Invalid value: null: field is immutable"}, wantGen: 2},
		{name: "EP-U-03 unchanged invalid endpoints are tolerated, generation kept", old: slice("IPv4", addrs("01.2.3.4")), new: slice("IPv4", addrs("01.2.3.4")), wantGen: 1},
		{name: "label change bumps generation", old: slice("IPv4"), new: func() *discoveryv1.EndpointSlice {
			s := slice("IPv4")
			s.Labels = map[string]string{"a": "b"}
			return s
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

func TestDeprecatedTopology(t *testing.T) {
	old := slice("IPv4", discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, DeprecatedTopology: map[string]string{corev1.LabelHostname: "node-1"}})
	nw := slice("IPv4", discoveryv1.Endpoint{Addresses: []string{"10.0.0.2"}, DeprecatedTopology: map[string]string{corev1.LabelHostname: "node-1"}})
	Strategy{}.PrepareForUpdate(context.Background(), nw, old)
	if nw.Endpoints[0].DeprecatedTopology != nil || nw.Endpoints[0].NodeName == nil || *nw.Endpoints[0].NodeName != "node-1" {
		t.Errorf("v1 write: topology %v nodeName %v", nw.Endpoints[0].DeprecatedTopology, nw.Endpoints[0].NodeName)
	}
	c := slice("IPv4", discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, DeprecatedTopology: map[string]string{"a": "b"}})
	Strategy{}.PrepareForCreate(context.Background(), c)
	if c.Endpoints[0].DeprecatedTopology != nil || c.Generation != 1 {
		t.Errorf("create: topology %v generation %d", c.Endpoints[0].DeprecatedTopology, c.Generation)
	}
}

func TestWarnings(t *testing.T) {
	s := slice("FQDN")
	if got := strings.Join(Strategy{}.WarningsOnCreate(context.Background(), s), "|"); got != "spec.addressType: FQDN endpoints are deprecated" {
		t.Errorf("warnings = %q", got)
	}
	v4 := slice("IPv4", addrs("::ffff:10.0.0.1"))
	if got := strings.Join(Strategy{}.WarningsOnUpdate(context.Background(), v4, v4), "|"); got != `endpoints[0].addresses[0]: non-standard IP address "::ffff:10.0.0.1" is invalid: use "10.0.0.1"` {
		t.Errorf("warnings = %q", got)
	}
	v4.Labels = map[string]string{discoveryv1.LabelManagedBy: ControllerName}
	if w := (Strategy{}).WarningsOnUpdate(context.Background(), v4, v4); len(w) != 0 {
		t.Errorf("controller-managed slice got warnings %v", w)
	}
}

// FuzzEndpointSlice: any decodable EndpointSlice can be defaulted, prepared and validated
// (create and update) without a panic.
func FuzzEndpointSlice(f *testing.F) {
	b, _ := json.Marshal(slice("IPv4", addrs("10.0.0.1"), discoveryv1.Endpoint{Addresses: []string{"x"}, NodeName: ptrTo("n"),
		DeprecatedTopology: map[string]string{corev1.LabelHostname: "n"}}))
	f.Add(b, b)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var nw, old discoveryv1.EndpointSlice
		if json.Unmarshal(a, &nw) != nil || json.Unmarshal(b, &old) != nil {
			return
		}
		s, ctx := Strategy{}, context.Background()
		s.Default(&nw)
		s.Default(&old)
		c := nw.DeepCopy()
		s.PrepareForCreate(ctx, c)
		_ = s.Validate(ctx, c)
		_ = s.WarningsOnCreate(ctx, c)
		s.PrepareForUpdate(ctx, &nw, &old)
		_ = s.ValidateUpdate(ctx, &nw, &old)
	})
}
