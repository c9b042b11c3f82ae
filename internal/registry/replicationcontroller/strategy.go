// Package replicationcontroller holds the write semantics of core/v1
// ReplicationControllers, ported from k8s.io/kubernetes
// pkg/registry/core/replicationcontroller/strategy.go, pkg/apis/core/v1/defaults.go
// (SetDefaults_ReplicationController and the declarative replicas default) and
// pkg/apis/core/validation (ValidateReplicationController*). It may be imported by
// registry/all.
package replicationcontroller

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/pod"
)

// NewKind returns the registry description of replicationcontrollers.
func NewKind() registry.Kind {
	return registry.Kind{Strategy: Strategy{}, Status: StatusStrategy{}, Fields: Fields}
}

// Strategy is the write behaviour of replicationcontrollers. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default applies DefaultReplicationController.
func (Strategy) Default(obj runtime.Object) {
	DefaultReplicationController(obj.(*corev1.ReplicationController))
}

// DefaultReplicationController copies the template labels into an empty spec.selector and
// empty metadata.labels, sets replicas 1 and applies the pod template defaults.
func DefaultReplicationController(rc *corev1.ReplicationController) {
	if t := rc.Spec.Template; t != nil && t.Labels != nil {
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = t.Labels
		}
		if len(rc.Labels) == 0 {
			rc.Labels = t.Labels
		}
	}
	if rc.Spec.Replicas == nil {
		one := int32(1)
		rc.Spec.Replicas = &one
	}
	pod.DefaultPodTemplateSpec(rc.Spec.Template)
}

// PrepareForCreate clears status and sets generation 1.
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	rc := obj.(*corev1.ReplicationController)
	rc.Status = corev1.ReplicationControllerStatus{}
	rc.Generation = 1
}

// PrepareForUpdate keeps status from old and bumps generation when the spec changed.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	rc, oldRC := obj.(*corev1.ReplicationController), old.(*corev1.ReplicationController)
	rc.Status = oldRC.Status
	rc.Generation = oldRC.Generation
	if !apiequality.Semantic.DeepEqual(rc.Spec, oldRC.Spec) {
		rc.Generation++
	}
}

// Validate applies ValidateReplicationController.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateReplicationController(obj.(*corev1.ReplicationController))
}

// ValidateUpdate validates the metadata update and the new spec (the selector may change).
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	rc, oldRC := obj.(*corev1.ReplicationController), old.(*corev1.ReplicationController)
	allErrs := registry.ValidateObjectMetaUpdate(&rc.ObjectMeta, &oldRC.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, ValidateReplicationControllerSpec(&rc.Spec, field.NewPath("spec"))...)
}

// ValidateReplicationController validates metadata and spec of a new controller.
func ValidateReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&rc.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, ValidateReplicationControllerSpec(&rc.Spec, field.NewPath("spec"))...)
}

// ValidateReplicationControllerSpec validates minReadySeconds, the selector (required,
// matching the template labels), replicas and the template (restartPolicy Always).
func ValidateReplicationControllerSpec(spec *corev1.ReplicationControllerSpec, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))
	selector := labels.Set(spec.Selector).AsSelector()
	if selector.Empty() {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	}
	if spec.Replicas == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("replicas"), ""))
	} else {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(*spec.Replicas), fldPath.Child("replicas"))...)
	}
	tPath := fldPath.Child("template")
	t := spec.Template
	if t == nil {
		return append(allErrs, field.Required(tPath, ""))
	}
	if !selector.Empty() && !selector.Matches(labels.Set(t.Labels)) {
		allErrs = append(allErrs, field.Invalid(tPath.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	allErrs = append(allErrs, pod.ValidatePodTemplateSpec(t, tPath)...)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(tPath.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(tPath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicationController is not Supported"))
	}
	return allErrs
}

// StatusStrategy is the write behaviour of replicationcontrollers/status. Safe for
// concurrent use.
type StatusStrategy struct{}

var _ registry.StatusStrategy = StatusStrategy{}

// PrepareForUpdate keeps spec and generation from old.
func (StatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	rc, oldRC := obj.(*corev1.ReplicationController), old.(*corev1.ReplicationController)
	rc.Spec = oldRC.Spec
	rc.Generation = oldRC.Generation
}

// ValidateUpdate validates the metadata update and the status counters.
func (StatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	rc, oldRC := obj.(*corev1.ReplicationController), old.(*corev1.ReplicationController)
	allErrs := registry.ValidateObjectMetaUpdate(&rc.ObjectMeta, &oldRC.ObjectMeta, field.NewPath("metadata"))
	p := field.NewPath("status")
	s := &rc.Status
	for _, c := range []struct {
		name  string
		value int64
	}{
		{"replicas", int64(s.Replicas)}, {"fullyLabeledReplicas", int64(s.FullyLabeledReplicas)},
		{"readyReplicas", int64(s.ReadyReplicas)}, {"availableReplicas", int64(s.AvailableReplicas)},
		{"observedGeneration", s.ObservedGeneration},
	} {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(c.value, p.Child(c.name))...)
	}
	const msg = "cannot be greater than status.replicas"
	if s.FullyLabeledReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("fullyLabeledReplicas"), s.FullyLabeledReplicas, msg))
	}
	if s.ReadyReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("readyReplicas"), s.ReadyReplicas, msg))
	}
	if s.AvailableReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, msg))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return allErrs
}

// Fields is the replicationcontrollers field-selector set: metadata and status.replicas.
func Fields(obj runtime.Object) fields.Set {
	rc := obj.(*corev1.ReplicationController)
	return fields.Set{
		"metadata.name":      rc.Name,
		"metadata.namespace": rc.Namespace,
		"status.replicas":    strconv.Itoa(int(rc.Status.Replicas)),
	}
}
