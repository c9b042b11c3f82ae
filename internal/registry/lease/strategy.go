// Package lease holds the write semantics of coordination.k8s.io/v1 Leases, ported from
// k8s.io/kubernetes pkg/registry/coordination/lease/strategy.go and
// pkg/apis/coordination/validation (ValidateLease*). The CoordinatedLeaderElection feature
// is off, as in kube 1.37 by default, so spec.strategy and spec.preferredHolder are dropped.
// It may be imported by registry/all.
package lease

import (
	"context"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// NewKind returns the registry description of leases.
func NewKind() registry.Kind { return registry.Kind{Strategy: Strategy{}} }

// Strategy is the write behaviour of leases. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default does nothing: kube has no Lease defaults.
func (Strategy) Default(runtime.Object) {}

// PrepareForCreate drops the fields of the disabled CoordinatedLeaderElection feature.
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	l := obj.(*coordinationv1.Lease)
	l.Spec.Strategy = nil
	l.Spec.PreferredHolder = nil
}

// PrepareForUpdate keeps generation and drops the disabled-feature fields unless old had them.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	l, oldL := obj.(*coordinationv1.Lease), old.(*coordinationv1.Lease)
	l.Generation = oldL.Generation
	if oldL.Spec.Strategy == nil {
		l.Spec.Strategy = nil
	}
	if oldL.Spec.PreferredHolder == nil {
		l.Spec.PreferredHolder = nil
	}
}

// Validate validates metadata and spec.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	l := obj.(*coordinationv1.Lease)
	allErrs := registry.ValidateObjectMeta(&l.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, ValidateLeaseSpec(&l.Spec, field.NewPath("spec"))...)
}

// ValidateUpdate validates the metadata update and spec.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	l := obj.(*coordinationv1.Lease)
	allErrs := registry.ValidateObjectMetaUpdate(&l.ObjectMeta, &old.(*coordinationv1.Lease).ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, ValidateLeaseSpec(&l.Spec, field.NewPath("spec"))...)
}

// ValidateLeaseSpec requires a positive leaseDurationSeconds, non-negative leaseTransitions,
// a valid strategy, and a strategy whenever preferredHolder is set.
func ValidateLeaseSpec(spec *coordinationv1.LeaseSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.LeaseDurationSeconds != nil && *spec.LeaseDurationSeconds <= 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("leaseDurationSeconds"), spec.LeaseDurationSeconds, "must be greater than 0"))
	}
	if spec.LeaseTransitions != nil && *spec.LeaseTransitions < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("leaseTransitions"), spec.LeaseTransitions, "must be greater than or equal to 0"))
	}
	if spec.Strategy != nil {
		allErrs = append(allErrs, validateStrategy(*spec.Strategy, fldPath.Child("strategy"))...)
	}
	if spec.PreferredHolder != nil && *spec.PreferredHolder != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return allErrs
}

// validateStrategy is ValidateCoordinatedLeaseStrategy: a kube-defined name or a qualified
// "domain/name". Like kube, it reports under spec.strategy.strategy.
func validateStrategy(s coordinationv1.CoordinatedLeaseStrategy, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if !strings.Contains(string(s), "/") {
		if s != coordinationv1.OldestEmulationVersion {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("strategy"), s, []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion}))
		}
		return allErrs
	}
	for _, msg := range validation.IsQualifiedName(string(s)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("strategy"), s, msg))
	}
	return allErrs
}
