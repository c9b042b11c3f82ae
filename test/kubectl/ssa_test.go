package kubectl_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubesvc/internal/servertest"
)

const ssaManifest = `apiVersion: v1
kind: Service
metadata:
  name: ssa
  labels:
    app: ssa
spec:
  type: NodePort
  selector:
    app: ssa
  ports:
  - name: http
    port: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa
spec:
  replicas: 1
  selector:
    matchLabels:
      app: ssa
  template:
    metadata:
      labels:
        app: ssa
    spec:
      containers:
      - name: web
        image: nginx:1.27
`

func csaConfigMap(v string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: csa\ndata:\n  a: \"" + v + "\"\n"
}

// TestKubectl_ServerSideApply runs `kubectl apply --server-side` (PATCH with
// application/apply-patch+yaml, fieldManager=kubectl) with every kubectl build: create,
// re-apply, a conflict with `kubectl scale`'s ownership of spec.replicas and its resolution
// with --force-conflicts, server dry run, taking over from client-side apply (kubectl rewrites
// managedFields with a JSON patch), and managedFields shown only on request.
func TestKubectl_ServerSideApply(t *testing.T) {
	cfg := servertest.Config(t)
	cfg.Controllers = nil // API behaviour only
	s := servertest.Start(t, cfg)
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	v2 := strings.Replace(ssaManifest, "    app: ssa\nspec:\n  type", "    app: ssa\n    tier: v2\nspec:\n  type", 1)
	for _, bin := range binaries() {
		t.Run(bin.name, func(t *testing.T) {
			if bin.skip != "" {
				t.Skip(bin.skip)
			}
			ns := "ssa-" + strings.ReplaceAll(bin.name, ".", "-")
			if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create namespace %s: %v", ns, err)
			}
			k := newKubectl(t, bin, s, ns)
			for _, st := range []step{
				{name: "apply --server-side creates", args: []string{"apply", "--server-side", "-f", "-"}, stdin: ssaManifest,
					stdout: "service/ssa serverside-applied\ndeployment.apps/ssa serverside-applied"},
				{name: "apply --server-side again", args: []string{"apply", "--server-side", "-f", "-"}, stdin: ssaManifest,
					stdout: "service/ssa serverside-applied\ndeployment.apps/ssa serverside-applied"},
				{name: "apply --server-side a change", args: []string{"apply", "--server-side", "-f", "-"}, stdin: v2,
					stdout: "service/ssa serverside-applied\ndeployment.apps/ssa serverside-applied"},
				{name: "the change took effect", args: []string{"get", "svc", "ssa", "-o", "jsonpath={.metadata.labels.tier} {.spec.ports[0].nodePort}"}, matches: []string{`^v2 3\d{4}$`}},
				{name: "scale", args: []string{"scale", "deploy", "ssa", "--replicas=3"}, stdout: "deployment.apps/ssa scaled"},
				{name: "re-apply conflicts with the scaler", args: []string{"apply", "--server-side", "-f", "-"}, stdin: v2, code: 1,
					stderr: []string{`Apply failed with 1 conflict: conflict with "kubectl`, `with subresource "scale" using apps/v1: .spec.replicas`, "--force-conflicts"}},
				{name: "--force-conflicts takes replicas back", args: []string{"apply", "--server-side", "--force-conflicts", "-f", "-"}, stdin: v2,
					stdout: "service/ssa serverside-applied\ndeployment.apps/ssa serverside-applied"},
				{name: "replicas are the manifest's", args: []string{"get", "deploy", "ssa", "-o", "jsonpath={.spec.replicas}"}, stdout: "1"},
				{name: "--dry-run=server", args: []string{"apply", "--server-side", "--dry-run=server", "-f", "-"}, stdin: strings.ReplaceAll(v2, "name: ssa", "name: dry"),
					stdout: "service/dry serverside-applied (server dry run)\ndeployment.apps/dry serverside-applied (server dry run)"},
				{name: "dry run stored nothing", args: []string{"get", "svc", "dry"}, code: 1, stderr: []string{`services "dry" not found`}},
				{name: "client-side apply", args: []string{"apply", "-f", "-"}, stdin: csaConfigMap("1"), stdout: "configmap/csa created"},
				{name: "server-side apply takes over from client-side apply", args: []string{"apply", "--server-side", "-f", "-"}, stdin: csaConfigMap("2"),
					stdout: "configmap/csa serverside-applied"},
				{name: "the client-side apply manager is gone", args: []string{"get", "cm", "csa", "-o", "yaml", "--show-managed-fields"},
					contains: []string{"  a: \"2\"\n", "    manager: kubectl\n", "    operation: Apply\n"},
					check: func(t *testing.T, out string) {
						if strings.Contains(out, "kubectl-client-side-apply") {
							t.Errorf("managedFields still name kubectl-client-side-apply:\n%s", out)
						}
					}},
				{name: "managedFields are hidden by default", args: []string{"get", "svc", "ssa", "-o", "yaml"},
					check: func(t *testing.T, out string) {
						if strings.Contains(out, "managedFields") {
							t.Errorf("managedFields shown without --show-managed-fields:\n%s", out)
						}
					}},
				{name: "--show-managed-fields", args: []string{"get", "deploy", "ssa", "-o", "yaml", "--show-managed-fields"},
					contains: []string{"  managedFields:\n", "    manager: kubectl\n", "    operation: Apply\n", "    fieldsType: FieldsV1\n", "        f:replicas: {}\n"}},
			} {
				t.Run(st.name, func(t *testing.T) { runStep(t, k, st) })
			}
		})
	}
}
