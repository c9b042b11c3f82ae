// Package registry holds the per-kind write semantics of the API: defaulting, preparation,
// validation and the field-selector sets, as kube-apiserver's registry strategies define them.
//
// The generic REST handlers in internal/apiserver call a Strategy at fixed points of every
// write; each kind's strategy lives in a sub-package (registry/service, registry/pod, ...) and
// is registered in registry/all. Sub-packages may import internal/resource and k8s.io types;
// nothing here imports storage or HTTP code.
package registry

import (
	"context"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Strategy is the write behaviour of one resource. The handlers call, in order:
//
//	create: Default → PrepareForCreate → Validate → (storage)
//	update: Default → PrepareForUpdate(new, old) → ValidateUpdate(new, old) → (storage)
//
// Default runs after decoding and after patching, so a patch that drops a defaulted field gets
// it back. Methods must not keep references to their arguments and must be safe for
// concurrent use.
type Strategy interface {
	// Default fills in defaulted fields (kube's SetDefaults_* for the kind).
	Default(obj runtime.Object)
	// PrepareForCreate clears fields a client may not set on create (status, generation: 1).
	PrepareForCreate(ctx context.Context, obj runtime.Object)
	// PrepareForUpdate carries over what a main-resource update may not change (status) and
	// bumps metadata.generation when the spec changed.
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	// Validate checks a new object, including its ObjectMeta.
	Validate(ctx context.Context, obj runtime.Object) field.ErrorList
	// ValidateUpdate checks an update, including immutable fields.
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
}

// StatusStrategy is the write behaviour of the /status subresource: PrepareForUpdate keeps
// everything but status (and the metadata a status writer may touch) from old.
type StatusStrategy interface {
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
}

// FieldsFunc returns the field-selector set of an object: metadata.name and, for namespaced
// kinds, metadata.namespace always, plus the kind's own selectable fields
// (spec.nodeName for pods, involvedObject.* for events, ...).
type FieldsFunc func(obj runtime.Object) fields.Set

// Kind bundles what the API server needs to know about one resource's semantics. A nil
// Status means the resource has no status subresource; a nil Fields means only metadata.name
// and metadata.namespace are selectable.
type Kind struct {
	Strategy Strategy
	Status   StatusStrategy
	Fields   FieldsFunc
	// NameIsDNSLabel: the name must be a DNS-1123 label (namespaces, services) instead of a
	// DNS-1123 subdomain. Used for generateName and path validation.
	NameIsDNSLabel bool
}
