// Package pod holds the write semantics of core/v1 Pods: defaulting, preparation,
// validation, the /status strategy and the field-selector set, ported from
// k8s.io/kubernetes pkg/registry/core/pod/strategy.go and pkg/apis/core/{v1,validation}.
//
// Its defaulting and PodSpec/template validation are also used by the workload kinds
// (registry/apps, registry/replicationcontroller). It may be imported by any registry
// sub-package and by registry/all; it imports no storage or HTTP code.
package pod

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// NewKind returns the registry description of pods.
func NewKind() registry.Kind {
	return registry.Kind{Strategy: Strategy{}, Status: StatusStrategy{}, Fields: Fields}
}

// Strategy is the write behaviour of pods. The zero value is ready to use and safe for
// concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default applies DefaultPod.
func (Strategy) Default(obj runtime.Object) { DefaultPod(obj.(*corev1.Pod)) }

// PrepareForCreate sets generation 1 and resets status to phase Pending with the computed
// QoS class; a pod with scheduling gates gets the PodScheduled=False/SchedulingGated
// condition.
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	p := obj.(*corev1.Pod)
	p.Generation = 1
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: QOSClass(p)}
	if len(p.Spec.SchedulingGates) > 0 {
		p.Status.Conditions = []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		}}
	}
}

// PrepareForUpdate keeps status and generation from old and bumps generation when the spec
// changed.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	newPod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	newPod.Status = oldPod.Status
	newPod.Generation = oldPod.Generation
	if !apiequality.Semantic.DeepEqual(newPod.Spec, oldPod.Spec) {
		newPod.Generation++
	}
}

// Validate applies ValidatePod.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidatePod(obj.(*corev1.Pod))
}

// ValidateUpdate applies ValidatePodUpdate.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return ValidatePodUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
}

// StatusStrategy is the write behaviour of pods/status. Safe for concurrent use.
type StatusStrategy struct{}

var _ registry.StatusStrategy = StatusStrategy{}

// PrepareForUpdate keeps spec, generation, ownerReferences and deletionTimestamp from old,
// backfills an empty qosClass and preserves observedGeneration values a client cleared.
func (StatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	newPod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	newPod.Spec = oldPod.Spec
	newPod.Generation = oldPod.Generation
	newPod.DeletionTimestamp = oldPod.DeletionTimestamp
	newPod.OwnerReferences = oldPod.OwnerReferences
	if newPod.Status.QOSClass == "" {
		newPod.Status.QOSClass = oldPod.Status.QOSClass
	}
	if newPod.Status.ObservedGeneration == 0 {
		newPod.Status.ObservedGeneration = oldPod.Status.ObservedGeneration
	}
	oldGens := map[corev1.PodConditionType][]int64{}
	for _, c := range oldPod.Status.Conditions {
		oldGens[c.Type] = append(oldGens[c.Type], c.ObservedGeneration)
	}
	for i, c := range newPod.Status.Conditions {
		var g int64
		if gens := oldGens[c.Type]; len(gens) > 0 {
			g, oldGens[c.Type] = gens[0], gens[1:]
		}
		if c.ObservedGeneration == 0 {
			newPod.Status.Conditions[i].ObservedGeneration = g
		}
	}
}

// ValidateUpdate applies ValidatePodStatusUpdate.
func (StatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return ValidatePodStatusUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
}

// Fields is the pods field-selector set (pkg/registry/core/pod ToSelectableFields plus the
// labels pkg/apis/core/v1/conversion.go accepts). "status.podIPs" is accepted by kube but
// absent from its set, so it is present here with an empty value: it matches exactly as
// kube's does.
func Fields(obj runtime.Object) fields.Set {
	p := obj.(*corev1.Pod)
	podIP := ""
	if len(p.Status.PodIPs) > 0 {
		podIP = p.Status.PodIPs[0].IP
	}
	return fields.Set{
		"metadata.name":            p.Name,
		"metadata.namespace":       p.Namespace,
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             podIP,
		"status.podIPs":            "",
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}
