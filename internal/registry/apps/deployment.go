// Package apps holds the write semantics of apps/v1 Deployments and ReplicaSets, ported
// from k8s.io/kubernetes pkg/registry/apps/{deployment,replicaset}/strategy.go,
// pkg/apis/apps/v1/defaults.go and pkg/apis/apps/validation. Pod templates are defaulted
// and validated by registry/pod. It may be imported by registry/all.
package apps

import (
	"context"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/pod"
)

// NewDeploymentKind returns the registry description of deployments. Only metadata.name and
// metadata.namespace are selectable (apps/v1 registers no field-label conversions).
func NewDeploymentKind() registry.Kind {
	return registry.Kind{Strategy: DeploymentStrategy{}, Status: DeploymentStatusStrategy{}}
}

// DeploymentStrategy is the write behaviour of deployments. Safe for concurrent use.
type DeploymentStrategy struct{}

var _ registry.Strategy = DeploymentStrategy{}

// Default applies DefaultDeployment.
func (DeploymentStrategy) Default(obj runtime.Object) { DefaultDeployment(obj.(*appsv1.Deployment)) }

// DefaultDeployment sets replicas 1, strategy RollingUpdate with maxUnavailable and maxSurge
// 25%, revisionHistoryLimit 10, progressDeadlineSeconds 600 and the pod template defaults.
func DefaultDeployment(d *appsv1.Deployment) {
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = ptrInt32(1)
	}
	s := &d.Spec.Strategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			v := intstr.FromString("25%")
			s.RollingUpdate.MaxUnavailable = &v
		}
		if s.RollingUpdate.MaxSurge == nil {
			v := intstr.FromString("25%")
			s.RollingUpdate.MaxSurge = &v
		}
	}
	if d.Spec.RevisionHistoryLimit == nil {
		d.Spec.RevisionHistoryLimit = ptrInt32(10)
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		d.Spec.ProgressDeadlineSeconds = ptrInt32(600)
	}
	pod.DefaultPodTemplateSpec(&d.Spec.Template)
}

// PrepareForCreate clears status and sets generation 1.
func (DeploymentStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	d := obj.(*appsv1.Deployment)
	d.Status = appsv1.DeploymentStatus{}
	d.Generation = 1
}

// PrepareForUpdate keeps status from old and bumps generation when spec or annotations
// changed.
func (DeploymentStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	d, oldD := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
	d.Status = oldD.Status
	d.Generation = oldD.Generation
	if !apiequality.Semantic.DeepEqual(d.Spec, oldD.Spec) || !apiequality.Semantic.DeepEqual(d.Annotations, oldD.Annotations) {
		d.Generation = oldD.Generation + 1
	}
}

// Validate applies ValidateDeployment.
func (DeploymentStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateDeployment(obj.(*appsv1.Deployment))
}

// ValidateUpdate validates the metadata update, the new spec, and that the selector did not
// change.
func (DeploymentStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	d, oldD := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
	allErrs := registry.ValidateObjectMetaUpdate(&d.ObjectMeta, &oldD.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, ValidateDeploymentSpec(&d.Spec, field.NewPath("spec"))...)
	return append(allErrs, apimachineryvalidation.ValidateImmutableField(d.Spec.Selector, oldD.Spec.Selector, field.NewPath("spec").Child("selector"))...)
}

// ValidateDeployment validates metadata and spec of a new deployment.
func ValidateDeployment(d *appsv1.Deployment) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&d.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, ValidateDeploymentSpec(&d.Spec, field.NewPath("spec"))...)
}

// ValidateDeploymentSpec validates replicas, selector (required, non-empty, matching the
// template labels), the template, the strategy and the timing fields.
func ValidateDeploymentSpec(spec *appsv1.DeploymentSpec, fldPath *field.Path) field.ErrorList {
	replicas := deref(spec.Replicas)
	allErrs := apimachineryvalidation.ValidateNonnegativeField(int64(replicas), fldPath.Child("replicas"))
	allErrs = append(allErrs, validateSelectorAndTemplate(spec.Selector, &spec.Template, fldPath, "ReplicaSet")...)
	allErrs = append(allErrs, validateDeploymentStrategy(&spec.Strategy, fldPath.Child("strategy"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	if spec.ProgressDeadlineSeconds != nil {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(*spec.ProgressDeadlineSeconds), fldPath.Child("progressDeadlineSeconds"))...)
		if *spec.ProgressDeadlineSeconds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("progressDeadlineSeconds"), spec.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

// validateSelectorAndTemplate is the selector part of ValidateDeploymentSpec /
// ValidateReplicaSetSpec plus ValidatePodTemplateSpecForReplicaSet. owner names the kind in
// the activeDeadlineSeconds message (kube says "ReplicaSet" for both).
func validateSelectorAndTemplate(sel *metav1.LabelSelector, template *corev1.PodTemplateSpec, fldPath *field.Path, owner string) field.ErrorList {
	var allErrs field.ErrorList
	if sel == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	} else {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), sel, "empty selector is invalid for deployment"))
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(allErrs, field.Invalid(fldPath.Child("selector"), sel, "invalid label selector"))
	}
	return append(allErrs, validateTemplateForSelector(template, selector, fldPath.Child("template"), owner)...)
}

func validateTemplateForSelector(template *corev1.PodTemplateSpec, selector labels.Selector, fldPath *field.Path, owner string) field.ErrorList {
	var allErrs field.ErrorList
	if !selector.Empty() && !selector.Matches(labels.Set(template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("metadata", "labels"), template.Labels, "`selector` does not match template `labels`"))
	}
	allErrs = append(allErrs, pod.ValidatePodTemplateSpec(template, fldPath)...)
	if template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("spec", "restartPolicy"), template.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	if template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+owner+" is not Supported"))
	}
	return allErrs
}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(fldPath.Child("rollingUpdate"), "may not be specified when strategy `type` is '"+string(appsv1.RecreateDeploymentStrategyType)+"'")}
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		return validateRollingUpdate(s.RollingUpdate, fldPath.Child("rollingUpdate"))
	default:
		return field.ErrorList{field.NotSupported(fldPath, s, []string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)})}
	}
	return nil
}

func validateRollingUpdate(ru *appsv1.RollingUpdateDeployment, fldPath *field.Path) field.ErrorList {
	// kube's internal type has non-pointer values; a nil here (not defaulted) reads as 0.
	var maxUnavailable, maxSurge intstr.IntOrString
	if ru.MaxUnavailable != nil {
		maxUnavailable = *ru.MaxUnavailable
	}
	if ru.MaxSurge != nil {
		maxSurge = *ru.MaxSurge
	}
	allErrs := validatePositiveIntOrPercent(maxUnavailable, fldPath.Child("maxUnavailable"))
	allErrs = append(allErrs, validatePositiveIntOrPercent(maxSurge, fldPath.Child("maxSurge"))...)
	if intOrPercentValue(maxUnavailable) == 0 && intOrPercentValue(maxSurge) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxUnavailable"), maxUnavailable, "may not be 0 when `maxSurge` is 0"))
	}
	if v, isPercent := percentValue(maxUnavailable); isPercent && v > 100 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxUnavailable"), maxUnavailable, "must not be greater than 100%"))
	}
	return allErrs
}

func validatePositiveIntOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
		}
	case intstr.Int:
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(v.IntValue()), fldPath)...)
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%%')"))
	}
	return allErrs
}

func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	n, _ := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
	return n, true
}

func intOrPercentValue(v intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	return v.IntValue()
}

// DeploymentStatusStrategy is the write behaviour of deployments/status. Safe for
// concurrent use.
type DeploymentStatusStrategy struct{}

var _ registry.StatusStrategy = DeploymentStatusStrategy{}

// PrepareForUpdate keeps spec, labels and generation from old.
func (DeploymentStatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	d, oldD := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
	d.Spec = oldD.Spec
	d.Labels = oldD.Labels
	d.Generation = oldD.Generation
}

// ValidateUpdate validates the metadata update and the status counters.
func (DeploymentStatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	d, oldD := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
	allErrs := registry.ValidateObjectMetaUpdate(&d.ObjectMeta, &oldD.ObjectMeta, field.NewPath("metadata"))
	p := field.NewPath("status")
	s := &d.Status
	allErrs = append(allErrs, nonNegative(p, map[string]int64{
		"observedGeneration": s.ObservedGeneration, "replicas": int64(s.Replicas), "updatedReplicas": int64(s.UpdatedReplicas),
		"readyReplicas": int64(s.ReadyReplicas), "availableReplicas": int64(s.AvailableReplicas),
		"unavailableReplicas": int64(s.UnavailableReplicas),
	}, "observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")...)
	if s.TerminatingReplicas != nil {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(*s.TerminatingReplicas), p.Child("terminatingReplicas"))...)
	}
	if s.CollisionCount != nil {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(*s.CollisionCount), p.Child("collisionCount"))...)
	}
	const msg = "cannot be greater than status.replicas"
	if s.UpdatedReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("updatedReplicas"), s.UpdatedReplicas, msg))
	}
	allErrs = append(allErrs, validateReadyAvailable(p, s.Replicas, s.ReadyReplicas, s.AvailableReplicas)...)
	if oldD.Status.CollisionCount != nil && (s.CollisionCount == nil || *s.CollisionCount < *oldD.Status.CollisionCount) {
		allErrs = append(allErrs, field.Invalid(p.Child("collisionCount"), deref(s.CollisionCount), "cannot be decremented"))
	}
	return allErrs
}

// nonNegative validates the named counters in the given order.
func nonNegative(p *field.Path, values map[string]int64, order ...string) field.ErrorList {
	var allErrs field.ErrorList
	for _, name := range order {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(values[name], p.Child(name))...)
	}
	return allErrs
}

func validateReadyAvailable(p *field.Path, replicas, ready, available int32) field.ErrorList {
	var allErrs field.ErrorList
	const msg = "cannot be greater than status.replicas"
	if ready > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("readyReplicas"), ready, msg))
	}
	if available > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), available, msg))
	}
	if available > ready {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), available, "cannot be greater than readyReplicas"))
	}
	return allErrs
}

func ptrInt32(v int32) *int32 { return &v }

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
