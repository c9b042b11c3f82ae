// Package endpointslice is the registry strategy of discovery.k8s.io/v1 EndpointSlices:
// defaulting, preparation, validation (hand-written and the declarative beta rules kube
// v1.37 enforces) and warnings exactly as kube-apiserver runs them.
//
// Ported from k8s.io/kubernetes v1.37.2: pkg/registry/discovery/endpointslice/strategy.go,
// pkg/apis/discovery/v1/defaults.go, pkg/apis/discovery/validation/validation.go and the
// generated pkg/apis/discovery/v1/zz_generated.validations.go, merged the way
// k8s.io/apiserver pkg/registry/rest/validate.go does (DeclarativeValidationBeta on).
//
// May be imported by the API server wiring and controllers; it imports only
// internal/registry, internal/registry/endpoints and k8s.io api, apimachinery and utils.
package endpointslice

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/endpoints"
)

// Managed-by values of kube's controllers; slices they write get no IP warnings.
const (
	ControllerName          = "endpointslice-controller.k8s.io"
	MirroringControllerName = "endpointslicemirroring-controller.k8s.io"
)

// Strategy is the write behaviour of EndpointSlices. The zero value is ready to use and it is
// safe for concurrent use (it has no state). EndpointSlices are not created on update (PUT to
// a missing name is 404, kube's AllowCreateOnUpdate false).
type Strategy struct{}

var _ registry.Strategy = Strategy{}

// NewKind returns the registry description of endpointslices: no status subresource and only
// the metadata field selectors.
func NewKind() registry.Kind {
	return registry.Kind{Strategy: Strategy{}}
}

// Default is SetObjectDefaults_EndpointSlice: every port gets name "" and protocol TCP when
// unset.
func (Strategy) Default(obj runtime.Object) { SetDefaults(obj.(*discoveryv1.EndpointSlice)) }

// SetDefaults is SetObjectDefaults_EndpointSlice.
func SetDefaults(eps *discoveryv1.EndpointSlice) {
	for i := range eps.Ports {
		p := &eps.Ports[i]
		if p.Name == nil {
			name := ""
			p.Name = &name
		}
		if p.Protocol == nil {
			proto := corev1.ProtocolTCP
			p.Protocol = &proto
		}
	}
}

// PrepareForCreate sets generation 1 and drops deprecatedTopology, which the v1 API
// ignores on writes.
func (Strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	eps := obj.(*discoveryv1.EndpointSlice)
	eps.Generation = 1
	dropTopologyOnV1(nil, eps)
}

// PrepareForUpdate bumps generation when anything but metadata (or when the labels) changed,
// and drops deprecatedTopology of changed endpoints, first copying a node name kept there
// by an old object into nodeName.
func (Strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	newEPS, oldEPS := obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice)
	newEPS.Generation = oldEPS.Generation
	if !apiequality.Semantic.DeepEqual(newEPS.AddressType, oldEPS.AddressType) ||
		!apiequality.Semantic.DeepEqual(newEPS.Endpoints, oldEPS.Endpoints) ||
		!apiequality.Semantic.DeepEqual(newEPS.Ports, oldEPS.Ports) ||
		!apiequality.Semantic.DeepEqual(newEPS.Labels, oldEPS.Labels) {
		newEPS.Generation = oldEPS.Generation + 1
	}
	dropTopologyOnV1(oldEPS, newEPS)
}

// Validate is ValidateEndpointSliceCreate merged with the declarative rules.
func (Strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	eps := obj.(*discoveryv1.EndpointSlice)
	return mergeDeclarative(ctx, ValidateEndpointSlice(eps, nil), validateDeclaratively(eps, nil))
}

// ValidateUpdate is ValidateEndpointSliceUpdate merged with the declarative rules.
func (Strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	newEPS, oldEPS := obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice)
	hv := ValidateEndpointSlice(newEPS, oldEPS)
	if newEPS.AddressType != oldEPS.AddressType {
		hv = append(hv, field.Invalid(field.NewPath("addressType"), newEPS.AddressType, "field is immutable").
			WithOrigin("immutable").MarkCoveredByDeclarative())
	}
	return mergeDeclarative(ctx, hv, validateDeclaratively(newEPS, oldEPS))
}

// WarningsOnCreate warns about the deprecated FQDN address type and non-canonical IPs.
func (Strategy) WarningsOnCreate(ctx context.Context, obj runtime.Object) []string {
	eps := obj.(*discoveryv1.EndpointSlice)
	var warnings []string
	if eps.AddressType == discoveryv1.AddressTypeFQDN {
		warnings = append(warnings, fmt.Sprintf("%s: FQDN endpoints are deprecated", field.NewPath("spec").Child("addressType")))
	}
	return append(warnings, warnOnBadIPs(eps)...)
}

// WarningsOnUpdate warns about non-canonical IPs.
func (Strategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	return warnOnBadIPs(obj.(*discoveryv1.EndpointSlice))
}

func warnOnBadIPs(eps *discoveryv1.EndpointSlice) []string {
	if mb := eps.Labels[discoveryv1.LabelManagedBy]; mb == ControllerName || mb == MirroringControllerName {
		return nil
	}
	var warnings []string
	for i := range eps.Endpoints {
		for j, addr := range eps.Endpoints[i].Addresses {
			p := field.NewPath("endpoints").Index(i).Child("addresses").Index(j)
			warnings = append(warnings, utilvalidation.GetWarningsForIP(p, addr)...)
		}
	}
	return warnings
}

// dropTopologyOnV1 wipes deprecatedTopology on v1 writes (the only version kubesvc serves)
// unless the endpoints are unchanged, keeping a node name the old object stored there.
func dropTopologyOnV1(oldEPS, newEPS *discoveryv1.EndpointSlice) {
	if oldEPS != nil && apiequality.Semantic.DeepEqual(oldEPS.Endpoints, newEPS.Endpoints) {
		return
	}
	var prevNodeNames sets.Set[string]
	if oldEPS != nil {
		for _, ep := range oldEPS.Endpoints {
			if n, ok := ep.DeprecatedTopology[corev1.LabelHostname]; ok && len(n) > 0 {
				if prevNodeNames == nil {
					prevNodeNames = sets.New[string]()
				}
				prevNodeNames.Insert(n)
			}
		}
	}
	for i := range newEPS.Endpoints {
		ep := &newEPS.Endpoints[i]
		n, ok := ep.DeprecatedTopology[corev1.LabelHostname]
		if ep.NodeName == nil && ok && prevNodeNames.Has(n) && len(endpoints.ValidateNodeName(n)) == 0 {
			ep.NodeName = &n
		}
		ep.DeprecatedTopology = nil
	}
}
