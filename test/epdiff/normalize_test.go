package epdiff

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/controller/endpointtest"
)

// maskedValues are annotations whose values are times: only their presence is compared.
var maskedValues = map[string]bool{corev1.EndpointsLastChangeTriggerTime: true}

// snapshot returns, per compared item ("<svc> endpoints", "<svc> endpointslices"), the
// masked text form of what the controllers produced for the Services of one case.
func snapshot(ctx context.Context, cs kubernetes.Interface, ns string, services []string) (map[string]string, error) {
	out := map[string]string{}
	for _, svc := range services {
		ep, err := cs.CoreV1().Endpoints(ns).Get(ctx, svc, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out[svc+" endpoints"] = "absent"
		case err != nil:
			return nil, fmt.Errorf("get endpoints %s/%s: %w", ns, svc, err)
		default:
			out[svc+" endpoints"] = endpointsText(ep)
		}
		list, err := endpointtest.Slices(ctx, cs, ns, svc)
		if err != nil {
			return nil, err
		}
		out[svc+" endpointslices"] = slicesText(list)
	}
	return out, nil
}

func mapText(m map[string]string, masked map[string]bool) string {
	var kv []string
	for k, v := range m {
		if masked[k] {
			v = "<masked>"
		}
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return "{" + strings.Join(kv, ",") + "}"
}

// endpointsText is an Endpoints object without identity, versions and times: labels,
// annotations, the number of subsets and one line per (subset ports, address).
func endpointsText(ep *corev1.Endpoints) string {
	var b strings.Builder
	fmt.Fprintf(&b, "labels %s\nannotations %s\nsubsets %d\n", mapText(ep.Labels, nil), mapText(ep.Annotations, maskedValues), len(ep.Subsets))
	for _, l := range endpointtest.SubsetStrings(ep.Subsets) {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	return b.String()
}

// slicesText is a set of EndpointSlices without identity, versions and times: one line per
// slice (generated name masked, labels, annotations, owners, address type, ports, endpoint
// count), then the endpoints of all slices by (address type, ports). Which endpoint lands in
// which of several equal slices is random upstream too, so only per-slice counts are
// compared.
func slicesText(list []discovery.EndpointSlice) string {
	var heads, eps []string
	for _, s := range list {
		name := maskName(&s)
		var owners []string
		for _, o := range s.OwnerReferences {
			owners = append(owners, fmt.Sprintf("%s/%s/%s controller=%v block=%v", o.APIVersion, o.Kind, o.Name, ptrText(o.Controller), ptrText(o.BlockOwnerDeletion)))
		}
		heads = append(heads, fmt.Sprintf("slice %s generateName=%q type=%s ports=%s endpoints=%d labels=%s annotations=%s owners=%v",
			name, s.GenerateName, s.AddressType, endpointtest.PortsString(s.Ports), len(s.Endpoints),
			mapText(s.Labels, nil), mapText(s.Annotations, maskedValues), owners))
		for _, e := range s.Endpoints {
			eps = append(eps, fmt.Sprintf("  %s %s %s", s.AddressType, endpointtest.PortsString(s.Ports), endpointtest.EndpointString(e)))
		}
	}
	slices.Sort(heads)
	slices.Sort(eps)
	return strings.Join(heads, "\n") + "\n" + strings.Join(eps, "\n")
}

// controllerManaged are the managed-by values of slices whose names the API server generated.
var controllerManaged = map[string]bool{
	"endpointslice-controller.k8s.io":          true,
	"endpointslicemirroring-controller.k8s.io": true,
}

// maskName masks the generated suffix of a slice name: when generateName is set, and also
// for controller-managed slices named "<service>-xxxxx" whose generateName is gone (a slice
// reused by an update carries its name but not its generateName).
func maskName(s *discovery.EndpointSlice) string {
	if s.GenerateName != "" && strings.HasPrefix(s.Name, s.GenerateName) {
		return s.GenerateName + "<generated>"
	}
	prefix := s.Labels[discovery.LabelServiceName] + "-"
	if controllerManaged[s.Labels[discovery.LabelManagedBy]] && strings.HasPrefix(s.Name, prefix) && len(s.Name) == len(prefix)+5 {
		return prefix + "<generated>"
	}
	return s.Name
}

func ptrText(p *bool) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// TestSlicesText_Masks checks that the comparison is blind to what differs between clusters
// (generated names, UIDs, resourceVersions, times, slice order) and sees what matters.
func TestSlicesText_Masks(t *testing.T) {
	port, ready := int32(80), true
	mk := func(name, uid, rv, addr string, trigger string) discovery.EndpointSlice {
		return discovery.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, GenerateName: "web-", UID: types.UID("u-" + uid), ResourceVersion: rv,
				Labels:          map[string]string{discovery.LabelServiceName: "web"},
				Annotations:     map[string]string{corev1.EndpointsLastChangeTriggerTime: trigger},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: types.UID("svc-" + uid)}},
			},
			AddressType: discovery.AddressTypeIPv4,
			Ports:       []discovery.EndpointPort{{Port: &port}},
			Endpoints:   []discovery.Endpoint{{Addresses: []string{addr}, Conditions: discovery.EndpointConditions{Ready: &ready}}},
		}
	}
	tests := []struct {
		name      string
		a, b      []discovery.EndpointSlice
		wantEqual bool
	}{
		{name: "identity and times masked", a: []discovery.EndpointSlice{mk("web-abcde", "1", "10", "10.0.0.1", "2026-01-01T00:00:00Z")},
			b: []discovery.EndpointSlice{mk("web-xyz12", "2", "99", "10.0.0.1", "2026-02-02T00:00:00Z")}, wantEqual: true},
		{name: "order masked", a: []discovery.EndpointSlice{mk("web-a", "1", "1", "10.0.0.1", ""), mk("web-b", "1", "1", "10.0.0.2", "")},
			b: []discovery.EndpointSlice{mk("web-c", "1", "1", "10.0.0.2", ""), mk("web-d", "1", "1", "10.0.0.1", "")}, wantEqual: true},
		{name: "address differs", a: []discovery.EndpointSlice{mk("web-a", "1", "1", "10.0.0.1", "")},
			b: []discovery.EndpointSlice{mk("web-a", "1", "1", "10.0.0.2", "")}},
		{name: "reused generated name masked", a: []discovery.EndpointSlice{func() discovery.EndpointSlice {
			s := mk("web-abcde", "1", "1", "10.0.0.1", "")
			s.GenerateName, s.Labels[discovery.LabelManagedBy] = "", "endpointslice-controller.k8s.io"
			return s
		}()}, b: []discovery.EndpointSlice{func() discovery.EndpointSlice {
			s := mk("web-fghij", "1", "1", "10.0.0.1", "")
			s.GenerateName, s.Labels[discovery.LabelManagedBy] = "", "endpointslice-controller.k8s.io"
			return s
		}()}, wantEqual: true},
		{name: "fixed name differs", a: []discovery.EndpointSlice{mk("hand", "1", "1", "10.0.0.1", "")},
			b: []discovery.EndpointSlice{mk("made", "1", "1", "10.0.0.1", "")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := cmp.Diff(slicesText(tc.a), slicesText(tc.b))
			if (d == "") != tc.wantEqual {
				t.Errorf("equal = %v, want %v; diff:\n%s", d == "", tc.wantEqual, d)
			}
		})
	}
}
