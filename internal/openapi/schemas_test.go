package openapi

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"kubesvc/internal/resource"
)

// TestSchemasForServerSideApply checks that Schemas builds a server-side apply type converter
// that understands every served kind.
func TestSchemasForServerSideApply(t *testing.T) {
	schemas, err := Schemas()
	if err != nil {
		t.Fatalf("Schemas: %v", err)
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	for _, info := range resource.All {
		t.Run(info.GroupResource().String(), func(t *testing.T) {
			obj := info.New()
			obj.GetObjectKind().SetGroupVersionKind(info.GroupVersionKind())
			if _, err := tc.ObjectToTyped(obj); err != nil {
				t.Errorf("ObjectToTyped(%s): %v", info.Kind, err)
			}
		})
	}

	t.Run("ports merge by port and protocol", func(t *testing.T) {
		svc := func(ports ...corev1.ServicePort) *corev1.Service {
			return &corev1.Service{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec:       corev1.ServiceSpec{Ports: ports},
			}
		}
		live, err := tc.ObjectToTyped(svc(
			corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
			corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		))
		if err != nil {
			t.Fatal(err)
		}
		applied, err := tc.ObjectToTyped(svc(corev1.ServicePort{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9090)}))
		if err != nil {
			t.Fatal(err)
		}
		merged, err := live.Merge(applied)
		if err != nil {
			t.Fatalf("Merge: %v", err)
		}
		u := merged.AsValue().Unstructured()
		ports := u.(map[string]interface{})["spec"].(map[string]interface{})["ports"].([]interface{})
		if len(ports) != 2 {
			t.Fatalf("merged ports = %v, want 2 entries keyed by port/protocol", ports)
		}
		for _, p := range ports {
			m := p.(map[string]interface{})
			if m["port"] == int64(80) && m["targetPort"] != int64(9090) {
				t.Errorf("port 80 targetPort = %v, want 9090", m["targetPort"])
			}
		}
	})
}
