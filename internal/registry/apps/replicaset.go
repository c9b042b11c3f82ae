package apps

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/pod"
)

// NewReplicaSetKind returns the registry description of replicasets. Only metadata.name and
// metadata.namespace are selectable (apps/v1 registers no field-label conversions).
func NewReplicaSetKind() registry.Kind {
	return registry.Kind{Strategy: ReplicaSetStrategy{}, Status: ReplicaSetStatusStrategy{}}
}

// ReplicaSetStrategy is the write behaviour of replicasets. Safe for concurrent use.
type ReplicaSetStrategy struct{}

var _ registry.Strategy = ReplicaSetStrategy{}

// Default applies DefaultReplicaSet.
func (ReplicaSetStrategy) Default(obj runtime.Object) { DefaultReplicaSet(obj.(*appsv1.ReplicaSet)) }

// DefaultReplicaSet sets replicas 1 and the pod template defaults.
func DefaultReplicaSet(rs *appsv1.ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptrInt32(1)
	}
	pod.DefaultPodTemplateSpec(&rs.Spec.Template)
}

// PrepareForCreate clears status and sets generation 1.
func (ReplicaSetStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	rs := obj.(*appsv1.ReplicaSet)
	rs.Status = appsv1.ReplicaSetStatus{}
	rs.Generation = 1
}

// PrepareForUpdate keeps status from old and bumps generation when the spec changed.
func (ReplicaSetStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	rs, oldRS := obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet)
	rs.Status = oldRS.Status
	rs.Generation = oldRS.Generation
	if !apiequality.Semantic.DeepEqual(rs.Spec, oldRS.Spec) {
		rs.Generation++
	}
}

// Validate applies ValidateReplicaSet.
func (ReplicaSetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateReplicaSet(obj.(*appsv1.ReplicaSet))
}

// ValidateUpdate validates the metadata update, the new spec and that the selector did not
// change.
func (ReplicaSetStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	rs, oldRS := obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet)
	allErrs := registry.ValidateObjectMetaUpdate(&rs.ObjectMeta, &oldRS.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, ValidateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))...)
	return append(allErrs, apimachineryvalidation.ValidateImmutableField(rs.Spec.Selector, oldRS.Spec.Selector, field.NewPath("spec").Child("selector"))...)
}

// ValidateReplicaSet validates metadata and spec of a new replicaset.
func ValidateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&rs.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, ValidateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))...)
}

// ValidateReplicaSetSpec validates replicas, minReadySeconds, the selector and the template.
func ValidateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateNonnegativeField(int64(deref(spec.Replicas)), fldPath.Child("replicas"))
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	return append(allErrs, validateSelectorAndTemplate(spec.Selector, &spec.Template, fldPath, "ReplicaSet")...)
}

// ReplicaSetStatusStrategy is the write behaviour of replicasets/status. Safe for
// concurrent use.
type ReplicaSetStatusStrategy struct{}

var _ registry.StatusStrategy = ReplicaSetStatusStrategy{}

// PrepareForUpdate keeps spec and generation from old.
func (ReplicaSetStatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	rs, oldRS := obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet)
	rs.Spec = oldRS.Spec
	rs.Generation = oldRS.Generation
}

// ValidateUpdate validates the metadata update and the status counters.
func (ReplicaSetStatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	rs, oldRS := obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet)
	allErrs := registry.ValidateObjectMetaUpdate(&rs.ObjectMeta, &oldRS.ObjectMeta, field.NewPath("metadata"))
	p := field.NewPath("status")
	s := &rs.Status
	allErrs = append(allErrs, nonNegative(p, map[string]int64{
		"replicas": int64(s.Replicas), "fullyLabeledReplicas": int64(s.FullyLabeledReplicas),
		"readyReplicas": int64(s.ReadyReplicas), "availableReplicas": int64(s.AvailableReplicas),
		"observedGeneration": s.ObservedGeneration,
	}, "replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")...)
	if s.TerminatingReplicas != nil {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(*s.TerminatingReplicas), p.Child("terminatingReplicas"))...)
	}
	if s.FullyLabeledReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("fullyLabeledReplicas"), s.FullyLabeledReplicas, "cannot be greater than status.replicas"))
	}
	return append(allErrs, validateReadyAvailable(p, s.Replicas, s.ReadyReplicas, s.AvailableReplicas)...)
}
