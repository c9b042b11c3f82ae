package endpoints

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func addrs(n int, prefix string) []corev1.EndpointAddress {
	out := make([]corev1.EndpointAddress, n)
	for i := range out {
		out[i].IP = fmt.Sprintf("%s.%d.%d", prefix, i/250, i%250)
	}
	return out
}

// TestTruncate is EP-E-07: ready addresses are kept first, each subset gets a share
// proportional to its size (rounded up), the last ones may get fewer.
func TestTruncate(t *testing.T) {
	type counts struct{ ready, notReady int }
	tests := []struct {
		name  string
		in    []counts
		want  []counts
		wantT bool
	}{
		{name: "at capacity is kept", in: []counts{{600, 0}, {300, 100}}, want: []counts{{600, 0}, {300, 100}}},
		{name: "not ready dropped first", in: []counts{{1000, 10}}, want: []counts{{1000, 0}}, wantT: true},
		{name: "not ready shared proportionally", in: []counts{{990, 10}, {0, 10}}, want: []counts{{990, 5}, {0, 5}}, wantT: true},
		{name: "ready over capacity drops every not-ready", in: []counts{{600, 5}, {600, 0}}, want: []counts{{500, 0}, {500, 0}}, wantT: true},
		{name: "rounded up, last subset gets the rest", in: []counts{{700, 0}, {400, 0}, {100, 0}}, want: []counts{{584, 0}, {334, 0}, {82, 0}}, wantT: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := &corev1.Endpoints{}
			for i, c := range tc.in {
				ep.Subsets = append(ep.Subsets, corev1.EndpointSubset{
					Addresses:         addrs(c.ready, fmt.Sprintf("10.%d", i)),
					NotReadyAddresses: addrs(c.notReady, fmt.Sprintf("11.%d", i)),
				})
			}
			if got := truncate(ep); got != tc.wantT {
				t.Errorf("truncate() = %v, want %v", got, tc.wantT)
			}
			var got []counts
			for _, s := range ep.Subsets {
				got = append(got, counts{len(s.Addresses), len(s.NotReadyAddresses)})
			}
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(counts{})); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestLabelsCorrect is EP-E-01/EP-E-08: the Service's labels plus managed-by, the headless
// label ignored.
func TestLabelsCorrect(t *testing.T) {
	mb := map[string]string{LabelManagedBy: ControllerName}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name     string
		ep, svc  map[string]string
		expected bool
	}{
		{name: "no labels but managed-by", ep: mb, expected: true},
		{name: "missing managed-by", ep: map[string]string{}, expected: false},
		{name: "service label copied", ep: with(mb, "a", "1"), svc: map[string]string{"a": "1"}, expected: true},
		{name: "headless label ignored", ep: with(mb, "a", "1", corev1.IsHeadlessService, ""), svc: map[string]string{"a": "1"}, expected: true},
		{name: "value differs", ep: with(mb, "a", "2"), svc: map[string]string{"a": "1"}, expected: false},
		{name: "service label missing", ep: mb, svc: map[string]string{"a": "1"}, expected: false},
		{name: "extra label", ep: with(mb, "b", "1"), expected: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := labelsCorrect(tc.ep, tc.svc); got != tc.expected {
				t.Errorf("labelsCorrect(%v, %v) = %v, want %v", tc.ep, tc.svc, got, tc.expected)
			}
		})
	}
}
