package all

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/randfill"

	"kubesvc/internal/registry"
	"kubesvc/internal/resource"
)

// exercise runs obj through every strategy entry point; it must not panic.
func exercise(ctx context.Context, k registry.Kind, obj, other runtime.Object) {
	k.Strategy.Default(obj)
	k.Strategy.Default(other)
	created := obj.DeepCopyObject()
	k.Strategy.PrepareForCreate(ctx, created)
	_ = k.Strategy.Validate(ctx, created)
	if k.Fields != nil {
		_ = k.Fields(created)
	}
	upd := other.DeepCopyObject()
	k.Strategy.PrepareForUpdate(ctx, upd, obj)
	_ = k.Strategy.ValidateUpdate(ctx, upd, obj)
	if k.Status != nil {
		st := other.DeepCopyObject()
		k.Status.PrepareForUpdate(ctx, st, obj)
		_ = k.Status.ValidateUpdate(ctx, st, obj)
	}
}

// FuzzRandomObjects fills objects of every kind with random values (structure-aware, unlike
// FuzzDecodeDefaultValidate) and runs them through every strategy entry point.
func FuzzRandomObjects(f *testing.F) {
	for seed := range int64(8) {
		f.Add(seed)
	}
	kinds := Kinds(Config{})
	f.Fuzz(func(t *testing.T, seed int64) {
		filler := randfill.NewWithSeed(seed).NilChance(0.3).NumElements(0, 3).MaxDepth(12)
		for _, info := range resource.All {
			obj, other := info.New(), info.New()
			filler.Fill(obj)
			filler.Fill(other)
			exercise(context.Background(), kinds[info.GroupResource()], obj, other)
		}
	})
}
