// Package serviceaccount holds the write semantics of core/v1 ServiceAccounts, ported from
// k8s.io/kubernetes pkg/registry/core/serviceaccount/strategy.go and pkg/apis/core/validation
// (ValidateServiceAccount*). It may be imported by registry/all.
package serviceaccount

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// NewKind returns the registry description of serviceaccounts.
func NewKind() registry.Kind { return registry.Kind{Strategy: Strategy{}} }

// Strategy is the write behaviour of serviceaccounts. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default does nothing: kube has no ServiceAccount defaults.
func (Strategy) Default(runtime.Object) {}

// PrepareForCreate reduces each secrets[] reference to its name.
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	cleanSecretReferences(obj.(*corev1.ServiceAccount))
}

// PrepareForUpdate reduces each secrets[] reference to its name and keeps generation.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	sa := obj.(*corev1.ServiceAccount)
	sa.Generation = old.(*corev1.ServiceAccount).Generation
	cleanSecretReferences(sa)
}

func cleanSecretReferences(sa *corev1.ServiceAccount) {
	for i, s := range sa.Secrets {
		sa.Secrets[i] = corev1.ObjectReference{Name: s.Name}
	}
}

// Validate validates the metadata (DNS-subdomain name, namespaced).
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	sa := obj.(*corev1.ServiceAccount)
	return registry.ValidateObjectMeta(&sa.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
}

// ValidateUpdate validates the metadata update and the new object.
func (s Strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	sa, oldSA := obj.(*corev1.ServiceAccount), old.(*corev1.ServiceAccount)
	allErrs := registry.ValidateObjectMetaUpdate(&sa.ObjectMeta, &oldSA.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, s.Validate(ctx, obj)...)
}
