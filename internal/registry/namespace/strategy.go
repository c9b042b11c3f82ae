// Package namespace holds the write semantics of core/v1 Namespaces, ported from
// k8s.io/kubernetes pkg/registry/core/namespace/strategy.go, pkg/apis/core/v1/defaults.go
// (SetDefaults_Namespace, SetDefaults_NamespaceStatus) and pkg/apis/core/validation
// (ValidateNamespace*). It may be imported by registry/all.
package namespace

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// NewKind returns the registry description of namespaces (cluster-scoped, DNS-label names).
func NewKind() registry.Kind {
	return registry.Kind{Strategy: Strategy{}, Status: StatusStrategy{}, Fields: Fields, NameIsDNSLabel: true}
}

// Strategy is the write behaviour of namespaces. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default sets the kubernetes.io/metadata.name label (when the name is known) and
// status.phase Active.
func (Strategy) Default(obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	setNameLabel(ns)
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// setNameLabel is SetDefaults_Namespace / the strategy's Canonicalize.
func setNameLabel(ns *corev1.Namespace) {
	if ns.Name == "" {
		return
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
}

// PrepareForCreate sets status.phase Active and makes sure spec.finalizers contains
// "kubernetes".
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	hasKube := false
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			hasKube = true
			break
		}
	}
	if !hasKube {
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
	setNameLabel(ns)
}

// PrepareForUpdate keeps spec.finalizers, status and generation from old (finalizers change
// only through /finalize).
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
	ns.Spec.Finalizers = oldNS.Spec.Finalizers
	ns.Status = oldNS.Status
	ns.Generation = oldNS.Generation
	setNameLabel(ns)
}

// Validate applies ValidateNamespace.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateNamespace(obj.(*corev1.Namespace))
}

// ValidateUpdate validates the new namespace and the metadata update.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
	allErrs := ValidateNamespace(ns)
	return append(allErrs, registry.ValidateObjectMetaUpdate(&ns.ObjectMeta, &oldNS.ObjectMeta, field.NewPath("metadata"))...)
}

// ValidateNamespace validates metadata (DNS-label name, no namespace) and spec.finalizers.
func ValidateNamespace(ns *corev1.Namespace) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&ns.ObjectMeta, false, registry.ValidateNamespaceName, field.NewPath("metadata"))
	for _, f := range ns.Spec.Finalizers {
		allErrs = append(allErrs, registry.ValidateFinalizerName(string(f), field.NewPath("spec", "finalizers"))...)
	}
	return allErrs
}

// StatusStrategy is the write behaviour of namespaces/status. Safe for concurrent use.
type StatusStrategy struct{}

var _ registry.StatusStrategy = StatusStrategy{}

// PrepareForUpdate keeps spec and generation from old.
func (StatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
	ns.Spec = oldNS.Spec
	ns.Generation = oldNS.Generation
}

// ValidateUpdate requires phase Active without a deletionTimestamp and Terminating with one.
func (StatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
	allErrs := registry.ValidateObjectMetaUpdate(&ns.ObjectMeta, &oldNS.ObjectMeta, field.NewPath("metadata"))
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			allErrs = append(allErrs, field.Invalid(field.NewPath("status", "Phase"), ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		allErrs = append(allErrs, field.Invalid(field.NewPath("status", "Phase"), ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
	}
	return allErrs
}

// FinalizeStrategy is the write behaviour of namespaces/finalize: only spec.finalizers (and
// metadata) change. Safe for concurrent use.
type FinalizeStrategy struct{}

var _ registry.StatusStrategy = FinalizeStrategy{}

// PrepareForUpdate keeps status and generation from old.
func (FinalizeStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
	ns.Status = oldNS.Status
	ns.Generation = oldNS.Generation
}

// ValidateUpdate validates the metadata update and each finalizer name.
func (FinalizeStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
	allErrs := registry.ValidateObjectMetaUpdate(&ns.ObjectMeta, &oldNS.ObjectMeta, field.NewPath("metadata"))
	for i, f := range ns.Spec.Finalizers {
		allErrs = append(allErrs, registry.ValidateFinalizerName(string(f), field.NewPath("spec", "finalizers").Index(i))...)
	}
	return allErrs
}

// Fields is the namespaces field-selector set: metadata.name and status.phase.
func Fields(obj runtime.Object) fields.Set {
	ns := obj.(*corev1.Namespace)
	return fields.Set{"metadata.name": ns.Name, "status.phase": string(ns.Status.Phase)}
}
