// Package endpoints is the registry strategy of core/v1 Endpoints (the legacy endpoints API):
// defaulting, validation and warnings exactly as kube-apiserver v1.37 runs them. It also holds
// the primitive checks that core validation shares between Endpoints, EndpointSlices and
// Services (ValidateEndpointIP, ValidateDNS1123Label, ValidateQualifiedName,
// IsValidIPForLegacyField), so the three kinds report identical messages.
//
// Ported from k8s.io/kubernetes v1.37.2: pkg/registry/core/endpoint/strategy.go,
// pkg/apis/core/v1/defaults.go (SetDefaults_Endpoints) and
// pkg/apis/core/validation/validation.go (ValidateEndpoints*, validateEndpointSubsets,
// validateEndpointAddress, ValidateEndpointIP, validateEndpointPort).
//
// May be imported by the API server wiring and by the other registry strategies; it imports
// only internal/registry and k8s.io/api, apimachinery and utils.
package endpoints

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// Labels the Endpoints controller sets on the objects it writes
// (pkg/controller/endpoint/endpoints_controller.go); such objects get no IP warnings.
const (
	LabelManagedBy = "endpoints.kubernetes.io/managed-by"
	ControllerName = "endpoint-controller"
)

// DeprecationWarning is the warning kube-apiserver attaches to every v1 Endpoints request
// (the generic API-lifecycle warning built from corev1.Endpoints.APILifecycleDeprecated and
// APILifecycleReplacement); the REST handler adds it, not the strategy.
const DeprecationWarning = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"

// Strategy is the write behaviour of Endpoints. The zero value is ready to use and it is safe
// for concurrent use (it has no state).
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// NewKind returns the registry description of endpoints: no status subresource and only the
// metadata field selectors.
func NewKind() registry.Kind {
	return registry.Kind{Strategy: Strategy{}}
}

// Default applies SetObjectDefaults_Endpoints: an empty port protocol becomes TCP.
func (Strategy) Default(obj runtime.Object) {
	SetDefaults(obj.(*corev1.Endpoints))
}

// SetDefaults is kube's SetDefaults_Endpoints.
func SetDefaults(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		for j := range ss.Ports {
			if ss.Ports[j].Protocol == "" {
				ss.Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

// PrepareForCreate does nothing: kube's endpoints strategy keeps the object as sent.
func (Strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {}

// PrepareForUpdate only carries metadata.generation over from old, as kube's generic
// BeforeUpdate does before calling the (empty) endpoints PrepareForUpdate.
func (Strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	obj.(*corev1.Endpoints).Generation = old.(*corev1.Endpoints).Generation
}

// Validate is ValidateEndpointsCreate.
func (Strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	return ValidateEndpoints(obj.(*corev1.Endpoints), nil)
}

// ValidateUpdate is ValidateEndpointsUpdate: metadata update rules, then the full create
// validation, where subset errors are ignored when the subsets did not change.
func (Strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	newEp, oldEp := obj.(*corev1.Endpoints), old.(*corev1.Endpoints)
	allErrs := registry.ValidateObjectMetaUpdate(&newEp.ObjectMeta, &oldEp.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, ValidateEndpoints(newEp, oldEp)...)
}

// WarningsOnCreate returns kube's warnings for a new Endpoints object (non-canonical IPs).
func (Strategy) WarningsOnCreate(ctx context.Context, obj runtime.Object) []string {
	return warnings(obj.(*corev1.Endpoints))
}

// WarningsOnUpdate returns kube's warnings for an updated Endpoints object.
func (Strategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	return warnings(obj.(*corev1.Endpoints))
}

// warnings follows endpointsWarnings in pkg/registry/core/endpoint/strategy.go.
func warnings(ep *corev1.Endpoints) []string {
	if ep.Labels[LabelManagedBy] == ControllerName {
		return nil
	}
	var out []string
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Addresses {
			p := field.NewPath("subsets").Index(i).Child("addresses").Index(j).Child("ip")
			out = append(out, utilvalidation.GetWarningsForIP(p, ep.Subsets[i].Addresses[j].IP)...)
		}
		for j := range ep.Subsets[i].NotReadyAddresses {
			p := field.NewPath("subsets").Index(i).Child("notReadyAddresses").Index(j).Child("ip")
			out = append(out, utilvalidation.GetWarningsForIP(p, ep.Subsets[i].NotReadyAddresses[j].IP)...)
		}
	}
	return out
}
