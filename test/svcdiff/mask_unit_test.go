package svcdiff

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestMasker_AllocatedValues(t *testing.T) {
	cidrs := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")}
	tests := []struct {
		name    string
		literal map[string]bool
		in      string
		want    string
	}{
		{
			name: "allocated IP and node ports become symbols in order of appearance",
			in:   `{"kind":"Service","metadata":{"uid":"u","resourceVersion":"7","creationTimestamp":"t","managedFields":[{}]},"spec":{"clusterIP":"10.96.3.4","clusterIPs":["10.96.3.4"],"ports":[{"nodePort":31000},{"nodePort":31000},{"nodePort":30500}],"healthCheckNodePort":32000}}`,
			want: `{"kind":"Service","metadata":{"creationTimestamp":"<creationTimestamp>","resourceVersion":"<resourceVersion>","uid":"<uid>"},"spec":{"clusterIP":"<ip#1>","clusterIPs":["<ip#1>"],"healthCheckNodePort":"<port#3>","ports":[{"nodePort":"<port#1>"},{"nodePort":"<port#1>"},{"nodePort":"<port#2>"}]}}`,
		},
		{
			name:    "requested values stay",
			literal: map[string]bool{"10.96.0.50": true, "30010": true},
			in:      `{"kind":"Service","spec":{"clusterIP":"10.96.0.50","ports":[{"nodePort":30010}]}}`,
			want:    `{"kind":"Service","spec":{"clusterIP":"10.96.0.50","ports":[{"nodePort":30010}]}}`,
		},
		{
			name: "values outside the range stay, so they must be equal",
			in:   `{"kind":"Service","spec":{"clusterIP":"10.96.0.0","clusterIPs":["10.96.255.255"],"ports":[{"nodePort":32769}]}}`,
			want: `{"kind":"Service","spec":{"clusterIP":"10.96.0.0","clusterIPs":["10.96.255.255"],"ports":[{"nodePort":32769}]}}`,
		},
		{
			name: "generated names keep their prefix",
			in:   `{"kind":"EndpointSlice","metadata":{"generateName":"web-","name":"web-x7k2p"}}`,
			want: `{"kind":"EndpointSlice","metadata":{"generateName":"web-","name":"web-<random>"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMasker(tc.literal, cidrs, 30000, 32767)
			var v any
			if err := json.Unmarshal([]byte(tc.in), &v); err != nil {
				t.Fatal(err)
			}
			var buf strings.Builder
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(m.object(v)); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(buf.String()); got != tc.want {
				t.Errorf("masked\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	t.Run("messages use the same symbols", func(t *testing.T) {
		m := newMasker(nil, cidrs, 30000, 32767)
		m.ip("10.96.3.4")
		m.port(float64(31000))
		got := m.text(`duplicate nodePort: {TCP 31000}; IP 10.96.3.4 and 10.96.3.45`)
		if want := `duplicate nodePort: {TCP <port#1>}; IP <ip#1> and 10.96.3.45`; got != want {
			t.Errorf("text = %q, want %q", got, want)
		}
	})
}
