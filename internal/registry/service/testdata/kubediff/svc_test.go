package kubediff

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	api "k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	kvalidation "k8s.io/kubernetes/pkg/apis/core/validation"

	"kubediff/internal/registry/service"
)

func render(el field.ErrorList) string {
	var s []string
	for _, e := range el {
		s = append(s, fmt.Sprintf("%s|%s", e.Type, e.Error()))
	}
	return strings.Join(s, "\n")
}

func toInternal(t *testing.T, in *corev1.Service) *api.Service {
	out := &api.Service{}
	if err := legacyscheme.Scheme.Convert(in, out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestServiceDiff(t *testing.T) {
	r := rand.New(rand.NewSource(seedFromEnv(1)))
	mismatch := 0
	for i := 0; i < 200000 && mismatch < 15; i++ {
		raw := genService(r)
		k := raw.DeepCopy()
		legacyscheme.Scheme.Default(k)
		m := raw.DeepCopy()
		service.SetDefaults(m)
		if js(k) != js(m) {
			mismatch++
			t.Errorf("defaults differ for %s:\nkube %s\nours %s", js(raw), js(k), js(m))
			continue
		}
		service.NormalizeClusterIPs(m, nil)
		kerr := render(kvalidation.ValidateServiceCreate(toInternal(t, m)))
		merr := render(service.ValidateServiceCreate(m))
		if kerr != merr {
			mismatch++
			t.Errorf("create validation differs for %s:\nkube:\n%s\nours:\n%s", js(m), kerr, merr)
		}
		// update against another random (defaulted) service
		old := genService(r)
		service.SetDefaults(old)
		service.NormalizeClusterIPs(old, nil)
		old.Name = m.Name
		kerr = render(kvalidation.ValidateServiceUpdate(toInternal(t, m), toInternal(t, old)))
		merr = render(service.ValidateServiceUpdate(m, old))
		if kerr != merr {
			mismatch++
			t.Errorf("update validation differs for\nnew %s\nold %s:\nkube:\n%s\nours:\n%s", js(m), js(old), kerr, merr)
		}
		kerr = render(kvalidation.ValidateServiceStatusUpdate(toInternal(t, m), toInternal(t, old)))
		merr = render(service.ValidateServiceStatusUpdate(m, old))
		if kerr != merr {
			mismatch++
			t.Errorf("status validation differs for\nnew %s\nold %s:\nkube:\n%s\nours:\n%s", js(m), js(old), kerr, merr)
		}
	}
}
