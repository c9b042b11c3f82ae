package all

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// Generic is the fallback Strategy for a resource without its own: no defaults, no status
// handling, and only ObjectMeta validation (DNS-subdomain names). Safe for concurrent use.
type Generic struct {
	// Namespaced: the resource is namespace-scoped.
	Namespaced bool
}

var _ registry.Strategy = Generic{}

// Default does nothing.
func (Generic) Default(runtime.Object) {}

// PrepareForCreate does nothing.
func (Generic) PrepareForCreate(context.Context, runtime.Object) {}

// PrepareForUpdate keeps metadata.generation from old.
func (Generic) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	newMeta, err1 := meta.Accessor(obj)
	oldMeta, err2 := meta.Accessor(old)
	if err1 == nil && err2 == nil {
		newMeta.SetGeneration(oldMeta.GetGeneration())
	}
}

// Validate validates the object's metadata.
func (g Generic) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	m, err := objectMeta(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	return registry.ValidateObjectMeta(m, g.Namespaced, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
}

// ValidateUpdate validates the metadata update.
func (Generic) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	m, err := objectMeta(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	oldM, err := objectMeta(old)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	return registry.ValidateObjectMetaUpdate(m, oldM, field.NewPath("metadata"))
}

// objectMeta returns the embedded ObjectMeta of a built-in object.
func objectMeta(obj runtime.Object) (*metav1.ObjectMeta, error) {
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if m, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%T has no embedded ObjectMeta", obj)
}
