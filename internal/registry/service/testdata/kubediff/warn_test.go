package kubediff

import (
	"math/rand"
	"strings"
	"testing"

	"k8s.io/kubernetes/pkg/api/legacyscheme"
	serviceapi "k8s.io/kubernetes/pkg/api/service"

	"kubediff/internal/registry/service"
)

func TestWarningsDiff(t *testing.T) {
	r := rand.New(rand.NewSource(seedFromEnv(5)))
	n := 0
	for i := 0; i < 50000; i++ {
		m := genService(r)
		legacyscheme.Scheme.Default(m)
		service.NormalizeClusterIPs(m, nil)
		k := strings.Join(serviceapi.GetWarningsForService(toInternal(t, m), nil), "\n")
		o := strings.Join(service.Warnings(m), "\n")
		if k != o {
			t.Fatalf("warnings differ for %s:\nkube %s\nours %s", js(m), k, o)
		}
		if k != "" {
			n++
		}
	}
	t.Logf("%d with warnings", n)
}
