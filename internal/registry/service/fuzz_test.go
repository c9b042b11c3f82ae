package service

import (
	"context"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// FuzzServiceWrite decodes arbitrary JSON as a Service and runs it through the whole create
// and update path (Default, BeginCreate/BeginUpdate with a fake allocator, Prepare*,
// Validate*, status validation, Warnings, ReleasedOnDelete) on single- and dual-stack
// clusters. Nothing may panic, whatever the input.
func FuzzServiceWrite(f *testing.F) {
	seeds := []*corev1.Service{
		svc(), stored(),
		svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalTrafficPolicy = "LoadBalancer", "Local" }),
		svc(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Selector = "None", nil }),
		svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalName = "ExternalName", "example.com." }),
		svc(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.1", []string{"10.96.0.1", "fd00::1", "None"}
			s.Spec.IPFamilies = []corev1.IPFamily{"IPv6", "IPv6", "x"}
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyPreferDualStack)
		}),
	}
	for _, s := range seeds {
		b, _ := json.Marshal(s)
		f.Add(b, b)
	}
	f.Add([]byte(`{"spec":{"type":"NodePort","ports":[{"port":53,"protocol":"UDP","nodePort":30053},{"port":53,"nodePort":30053}]}}`),
		[]byte(`{"spec":{"type":"LoadBalancer","clusterIPs":["None","1.1.1.1"],"allocateLoadBalancerNodePorts":false,"ports":[{"port":1,"targetPort":"x"}]}}`))
	f.Fuzz(func(t *testing.T, newJSON, oldJSON []byte) {
		ctx := context.Background()
		for _, s := range []*Strategy{singleStack, dualStack, v6Stack} {
			var nw, old corev1.Service
			if json.Unmarshal(newJSON, &nw) != nil || json.Unmarshal(oldJSON, &old) != nil {
				return
			}
			s.Default(&old)
			if err := s.BeginCreate(&old, newFakeAllocator()); err == nil {
				s.PrepareForCreate(ctx, &old)
				_ = s.Validate(ctx, &old)
			}
			_ = Warnings(&old)
			_ = s.ReleasedOnDelete(&old)
			s.Default(&nw)
			status := nw.DeepCopy()
			if _, err := s.BeginUpdate(&nw, old.DeepCopy(), newFakeAllocator()); err == nil {
				s.PrepareForUpdate(ctx, &nw, &old)
				_ = s.ValidateUpdate(ctx, &nw, &old)
			}
			StatusStrategy{}.PrepareForUpdate(ctx, status, &old)
			_ = StatusStrategy{}.ValidateUpdate(ctx, status, &old)
			_ = StatusStrategy{}.WarningsOnUpdate(ctx, status, &old)
		}
	})
}
