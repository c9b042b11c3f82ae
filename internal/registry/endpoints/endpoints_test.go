package endpoints

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
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

func ep(subsets ...corev1.EndpointSubset) *corev1.Endpoints {
	e := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "1"}, Subsets: subsets}
	Strategy{}.Default(e)
	return e
}

func ptrTo[T any](v T) *T { return &v }

const msgDNSLabel = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

func TestDefault(t *testing.T) {
	e := ep(corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Port: 80}, {Port: 53, Protocol: "UDP"}}})
	want := []corev1.EndpointPort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}
	if diff := cmp.Diff(want, e.Subsets[0].Ports); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	addr := func(ip string) corev1.EndpointAddress { return corev1.EndpointAddress{IP: ip} }
	tests := []struct {
		name string
		ep   *corev1.Endpoints
		want []string
	}{
		{name: "EP-U-02 valid", ep: ep(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr("10.244.0.5")}, Ports: []corev1.EndpointPort{{Port: 8080}}})},
		{name: "EP-U-02 empty subsets are valid", ep: ep()},
		{name: "EP-U-02 a subset needs addresses or notReadyAddresses", ep: ep(corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Port: 80}}}),
			want: []string{"subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"}},
		{name: "EP-U-02 address IPs valid and non-special", ep: ep(corev1.EndpointSubset{
			Addresses:         []corev1.EndpointAddress{addr("bad"), addr("127.0.0.1"), addr("01.2.3.4")},
			NotReadyAddresses: []corev1.EndpointAddress{addr("fe80::1"), addr("0.0.0.0")},
		}), want: []string{
			`subsets[0].addresses[0].ip: Invalid value: "bad": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
			`subsets[0].addresses[0].ip: Invalid value: "bad": must be a valid IP address`,
			`subsets[0].addresses[1].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`,
			`subsets[0].addresses[2].ip: Invalid value: "01.2.3.4": must not have leading 0s`,
			`subsets[0].notReadyAddresses[0].ip: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`,
			`subsets[0].notReadyAddresses[1].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)`,
		}},
		{name: "EP-U-02 hostname DNS label, nodeName DNS subdomain", ep: ep(corev1.EndpointSubset{
			Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1", Hostname: "Web", NodeName: ptrTo("node_1")}},
		}), want: []string{
			`subsets[0].addresses[0].hostname: Invalid value: "Web": ` + msgDNSLabel,
			`subsets[0].addresses[0].nodeName: Invalid value: "node_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		}},
		{name: "EP-U-02 ports: names required when several, range, protocol, appProtocol", ep: ep(corev1.EndpointSubset{
			Addresses: []corev1.EndpointAddress{addr("10.0.0.1")},
			Ports:     []corev1.EndpointPort{{Name: "a", Port: 0}, {Port: 81, Protocol: "ICMP", AppProtocol: ptrTo("a b")}},
		}), want: []string{
			"subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
			"subsets[0].ports[1].name: Required value",
			`subsets[0].ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`,
			`subsets[0].ports[1].appProtocol: Invalid value: "a b": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		}},
		{name: "name must be a DNS subdomain", ep: func() *corev1.Endpoints { e := ep(); e.Name = "Web"; return e }(),
			want: []string{`metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, errStrings(Strategy{}.Validate(context.Background(), tc.ep)), cmpEmpty); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmpty = cmp.Transformer("nilToEmpty", func(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
})

func TestValidateUpdate(t *testing.T) {
	bad := corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{{IP: "01.2.3.4"}}}
	tests := []struct {
		name     string
		old, new *corev1.Endpoints
		want     []string
	}{
		{name: "EP-U-02 unchanged invalid subsets are tolerated", old: ep(bad), new: ep(bad)},
		{name: "EP-U-02 changed subsets are validated", old: ep(bad), new: ep(bad, corev1.EndpointSubset{NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}}),
			want: []string{`subsets[0].addresses[0].ip: Invalid value: "01.2.3.4": must not have leading 0s`}},
		{name: "name immutable", old: ep(), new: func() *corev1.Endpoints { e := ep(); e.Name = "other"; return e }(),
			want: []string{`metadata.name: Invalid value: "other": field is immutable`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Strategy{}
			s.PrepareForUpdate(context.Background(), tc.new, tc.old)
			if diff := cmp.Diff(tc.want, errStrings(s.ValidateUpdate(context.Background(), tc.new, tc.old)), cmpEmpty); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	e := ep(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{{IP: "::ffff:10.0.0.1"}}})
	got := strings.Join(Strategy{}.WarningsOnCreate(context.Background(), e), "|")
	if want := `subsets[0].addresses[0].ip: non-standard IP address "::ffff:10.0.0.1" is invalid: use "10.0.0.1"`; got != want {
		t.Errorf("warnings = %q, want %q", got, want)
	}
	e.Labels = map[string]string{LabelManagedBy: ControllerName}
	if w := (Strategy{}).WarningsOnUpdate(context.Background(), e, e); len(w) != 0 {
		t.Errorf("controller-managed endpoints got warnings %v", w)
	}
}

// FuzzEndpoints: any decodable Endpoints can be defaulted and validated without a panic.
func FuzzEndpoints(f *testing.F) {
	b, _ := json.Marshal(ep(corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1", NodeName: ptrTo("n")}}, Ports: []corev1.EndpointPort{{Port: 1}}}))
	f.Add(b, b)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var nw, old corev1.Endpoints
		if json.Unmarshal(a, &nw) != nil || json.Unmarshal(b, &old) != nil {
			return
		}
		s := Strategy{}
		s.Default(&nw)
		s.Default(&old)
		_ = s.Validate(context.Background(), &nw)
		_ = s.WarningsOnCreate(context.Background(), &nw)
		s.PrepareForUpdate(context.Background(), &nw, &old)
		_ = s.ValidateUpdate(context.Background(), &nw, &old)
	})
}
