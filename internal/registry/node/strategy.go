// Package node holds the write semantics of core/v1 Nodes, ported from k8s.io/kubernetes
// pkg/registry/core/node/strategy.go, pkg/apis/core/v1 (SetDefaults_NodeStatus and the
// podCIDR/podCIDRs conversion) and pkg/apis/core/validation (ValidateNode*). It may be
// imported by registry/all.
package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/pod"
)

// NewKind returns the registry description of nodes (cluster-scoped).
func NewKind() registry.Kind {
	return registry.Kind{Strategy: Strategy{}, Status: StatusStrategy{}, Fields: Fields}
}

// Strategy is the write behaviour of nodes. Safe for concurrent use.
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// Default copies capacity to allocatable when allocatable is unset, rounds quantities to
// milli precision, and keeps spec.podCIDR and spec.podCIDRs consistent (podCIDR wins), as
// the v1 → internal → v1 round trip in kube does.
func (Strategy) Default(obj runtime.Object) {
	n := obj.(*corev1.Node)
	if n.Status.Allocatable == nil && n.Status.Capacity != nil {
		n.Status.Allocatable = make(corev1.ResourceList, len(n.Status.Capacity))
		for k, v := range n.Status.Capacity {
			n.Status.Allocatable[k] = v.DeepCopy()
		}
	}
	for _, list := range []corev1.ResourceList{n.Status.Capacity, n.Status.Allocatable} {
		for k, v := range list {
			v.RoundUp(resource.Milli)
			list[k] = v
		}
	}
	switch {
	case n.Spec.PodCIDR != "" && (len(n.Spec.PodCIDRs) == 0 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR):
		n.Spec.PodCIDRs = []string{n.Spec.PodCIDR}
	case n.Spec.PodCIDR == "" && len(n.Spec.PodCIDRs) > 0:
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
	}
}

// PrepareForCreate drops the removed spec.configSource and status.config.
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	n := obj.(*corev1.Node)
	n.Spec.ConfigSource = nil
	n.Status.Config = nil
}

// PrepareForUpdate keeps status and generation from old; configSource may only stay if it
// was already set.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	n, oldN := obj.(*corev1.Node), old.(*corev1.Node)
	n.Status = oldN.Status
	n.Generation = oldN.Generation
	if oldN.Spec.ConfigSource == nil {
		n.Spec.ConfigSource = nil
	}
}

// Validate applies ValidateNode.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateNode(obj.(*corev1.Node))
}

// ValidateUpdate applies ValidateNode and ValidateNodeUpdate.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	n := obj.(*corev1.Node)
	return append(ValidateNode(n), ValidateNodeUpdate(n, old.(*corev1.Node))...)
}

// StatusStrategy is the write behaviour of nodes/status. Safe for concurrent use.
type StatusStrategy struct{}

var _ registry.StatusStrategy = StatusStrategy{}

// PrepareForUpdate keeps spec and generation from old; status.config only stays if set.
func (StatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	n, oldN := obj.(*corev1.Node), old.(*corev1.Node)
	n.Spec = oldN.Spec
	n.Generation = oldN.Generation
	if oldN.Status.Config == nil {
		n.Status.Config = nil
	}
}

// ValidateUpdate applies ValidateNodeUpdate.
func (StatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return ValidateNodeUpdate(obj.(*corev1.Node), old.(*corev1.Node))
}

// ValidateNode validates metadata, taints, status quantities and spec.podCIDRs.
func ValidateNode(n *corev1.Node) field.ErrorList {
	metaPath := field.NewPath("metadata")
	allErrs := registry.ValidateObjectMeta(&n.ObjectMeta, false, registry.NameIsDNSSubdomain, metaPath)
	if len(n.Spec.Taints) > 0 {
		// kube reports taints under metadata.taints.
		allErrs = append(allErrs, validateTaints(n.Spec.Taints, metaPath.Child("taints"))...)
	}
	allErrs = append(allErrs, validateResources(n)...)
	if len(n.Spec.PodCIDRs) > 0 {
		p := field.NewPath("spec", "podCIDRs")
		for i, c := range n.Spec.PodCIDRs {
			allErrs = append(allErrs, validation.IsValidCIDRForLegacyField(p.Index(i), c, true, nil)...)
		}
		if len(n.Spec.PodCIDRs) > 1 {
			dual, err := netutils.IsDualStackCIDRStrings(n.Spec.PodCIDRs)
			if err != nil {
				allErrs = append(allErrs, field.InternalError(p, fmt.Errorf("invalid PodCIDRs. failed to check with dual stack with error:%w", err)))
			}
			if !dual || len(n.Spec.PodCIDRs) > 2 {
				allErrs = append(allErrs, field.Invalid(p, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
			}
		}
	}
	return allErrs
}

// ValidateNodeUpdate validates a node update: metadata, status quantities, unique addresses,
// podCIDRs and providerID immutable once set, externalID immutable.
func ValidateNodeUpdate(n, oldN *corev1.Node) field.ErrorList {
	metaPath := field.NewPath("metadata")
	allErrs := registry.ValidateObjectMetaUpdate(&n.ObjectMeta, &oldN.ObjectMeta, metaPath)
	allErrs = append(allErrs, validateResources(n)...)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range n.Status.Addresses {
		if seen[a] {
			allErrs = append(allErrs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	if len(oldN.Spec.PodCIDRs) > 0 {
		changed := len(oldN.Spec.PodCIDRs) != len(n.Spec.PodCIDRs)
		for i := 0; !changed && i < len(oldN.Spec.PodCIDRs); i++ {
			changed = oldN.Spec.PodCIDRs[i] != n.Spec.PodCIDRs[i]
		}
		if changed {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
		}
	}
	if oldN.Spec.ProviderID != "" && n.Spec.ProviderID != "" && oldN.Spec.ProviderID != n.Spec.ProviderID {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "providerID"), nil, "field cannot be modified once set"))
	}
	if oldN.Spec.ProviderID != "" && n.Spec.ProviderID == "" {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "providerID"), nil, "field cannot be cleared once set"))
	}
	if len(n.Spec.Taints) > 0 {
		allErrs = append(allErrs, validateTaints(n.Spec.Taints, metaPath.Child("taints"))...)
	}
	if n.Spec.DoNotUseExternalID != oldN.Spec.DoNotUseExternalID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return allErrs
}

func validateResources(n *corev1.Node) field.ErrorList {
	var allErrs field.ErrorList
	for _, l := range []struct {
		name string
		list corev1.ResourceList
	}{{"capacity", n.Status.Capacity}, {"allocatable", n.Status.Allocatable}} {
		for _, k := range sets.List(sets.KeySet(l.list)) {
			v := l.list[k]
			p := field.NewPath("status", l.name, string(k))
			if v.Cmp(resource.Quantity{}) < 0 {
				allErrs = append(allErrs, field.Invalid(p, v.String(), apimachineryvalidation.IsNegativeErrorMsg))
			}
		}
	}
	return allErrs
}

// validateTaints checks key, value and effect of each taint and uniqueness by key+effect.
func validateTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	unique := map[corev1.TaintEffect]sets.Set[string]{}
	for i, t := range taints {
		idxPath := fldPath.Index(i)
		allErrs = append(allErrs, metav1validation.ValidateLabelName(t.Key, idxPath.Child("key"))...)
		if errs := validation.IsValidLabelValue(t.Value); len(errs) != 0 {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("value"), t.Value, strings.Join(errs, ";")))
		}
		allErrs = append(allErrs, pod.ValidateTaintEffect(t.Effect, false, idxPath.Child("effect"))...)
		if unique[t.Effect].Has(t.Key) {
			dup := field.Duplicate(idxPath, t)
			dup.Detail = "taints must be unique by key and effect pair"
			allErrs = append(allErrs, dup)
			continue
		}
		if unique[t.Effect] == nil {
			unique[t.Effect] = sets.New[string]()
		}
		unique[t.Effect].Insert(t.Key)
	}
	return allErrs
}

// Fields is the nodes field-selector set: metadata.name and spec.unschedulable.
func Fields(obj runtime.Object) fields.Set {
	n := obj.(*corev1.Node)
	return fields.Set{"metadata.name": n.Name, "spec.unschedulable": strconv.FormatBool(n.Spec.Unschedulable)}
}
