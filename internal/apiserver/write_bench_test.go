package apiserver

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time so far. The benchmarks report CPU per
// operation (cpu-ns/op) besides wall time: it includes the in-process etcd, but unlike wall
// time it hardly depends on what else runs on the machine.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs op b.N times and reports CPU per operation.
func measure(b *testing.B, op func(i int)) {
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		op(i)
	}
	b.ReportMetric(float64(cpuTime(b)-c0)/float64(b.N), "cpu-ns/op")
}

// deploymentJSON is a typical small Deployment (one container, a few labels, ports, env).
func deploymentJSON(name, label string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"labels":{"app":"web","tier":%q}},
"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
"spec":{"containers":[{"name":"web","image":"nginx:1.27","ports":[{"containerPort":80,"name":"http"}],
"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}]}}}}`, name, label))
}

// BenchmarkWrite_DeploymentCreate measures POST of a Deployment through the whole handler
// (decode, defaulting, managedFields, validation, etcd).
func BenchmarkWrite_DeploymentCreate(b *testing.B) {
	s := newTestServer(b)
	measure(b, func(i int) {
		if code, body := do(s, http.MethodPost, "/apis/apps/v1/namespaces/default/deployments?fieldManager=bench", mimeJSON, deploymentJSON(fmt.Sprintf("d%d", i), "a")); code != http.StatusCreated {
			b.Fatalf("create: %d %s", code, body)
		}
	})
}

// BenchmarkWrite_DeploymentUpdate measures PUT of a Deployment that changes one label each
// time (unconditional update: no resourceVersion in the body).
func BenchmarkWrite_DeploymentUpdate(b *testing.B) {
	s := newTestServer(b)
	if code, body := do(s, http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", mimeJSON, deploymentJSON("d", "a")); code != http.StatusCreated {
		b.Fatalf("create: %d %s", code, body)
	}
	measure(b, func(i int) {
		if code, body := do(s, http.MethodPut, "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=bench", mimeJSON, deploymentJSON("d", fmt.Sprint(i))); code != http.StatusOK {
			b.Fatalf("update: %d %s", code, body)
		}
	})
}

// BenchmarkWrite_DeploymentPatch measures a strategic-merge PATCH of one label.
func BenchmarkWrite_DeploymentPatch(b *testing.B) {
	s := newTestServer(b)
	if code, body := do(s, http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", mimeJSON, deploymentJSON("d", "a")); code != http.StatusCreated {
		b.Fatalf("create: %d %s", code, body)
	}
	measure(b, func(i int) {
		patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{"tier":"%d"}}}`, i))
		if code, body := do(s, http.MethodPatch, "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=bench", "application/strategic-merge-patch+json", patch); code != http.StatusOK {
			b.Fatalf("patch: %d %s", code, body)
		}
	})
}
