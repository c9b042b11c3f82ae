package endpointslice

// EndpointSlice validation, following k8s.io/kubernetes v1.37.2
// pkg/apis/discovery/validation/validation.go (hand-written) and
// pkg/apis/discovery/v1/zz_generated.validations.go (declarative, beta).

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/operation"
	"k8s.io/apimachinery/pkg/api/validate"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/endpoints"
)

// Limits of the EndpointSlice API.
const (
	MaxTopologyLabels = 16
	MaxAddresses      = 100
	MaxPorts          = 20000
	MaxEndpoints      = 1000
	MaxZoneHints      = 8
	MaxNodeHints      = 8
)

var supportedAddressTypes = sets.New(discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)

// ValidateEndpointSlice is kube's hand-written ValidateEndpointSlice (old nil on create).
// Endpoint errors are ignored on an update that leaves endpoints unchanged. Errors covered
// by declarative rules carry CoveredByDeclarative; Strategy merges them with
// validateDeclaratively, as kube-apiserver does.
func ValidateEndpointSlice(eps, old *discoveryv1.EndpointSlice) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&eps.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	allErrs = append(allErrs, validateAddressType(eps.AddressType)...)
	allErrs = append(allErrs, validatePorts(eps.Ports, field.NewPath("ports"))...)
	epErrs := validateEndpoints(eps.Endpoints, eps.AddressType, field.NewPath("endpoints"))
	if len(epErrs) != 0 && old != nil && apiequality.Semantic.DeepEqual(old.Endpoints, eps.Endpoints) {
		epErrs = nil
	}
	return append(allErrs, epErrs...)
}

func validateAddressType(addressType discoveryv1.AddressType) field.ErrorList {
	if addressType == "" {
		return field.ErrorList{field.Required(field.NewPath("addressType"), "").MarkCoveredByDeclarative()}
	}
	if !supportedAddressTypes.Has(addressType) {
		return field.ErrorList{field.NotSupported(field.NewPath("addressType"), addressType, sets.List(supportedAddressTypes)).MarkCoveredByDeclarative()}
	}
	return field.ErrorList{}
}

func validateEndpoints(eps []discoveryv1.Endpoint, addrType discoveryv1.AddressType, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	if len(eps) > MaxEndpoints {
		return append(allErrs, field.TooMany(fldPath, len(eps), MaxEndpoints))
	}
	for i, ep := range eps {
		idxPath := fldPath.Index(i)
		addressPath := idxPath.Child("addresses")
		if len(ep.Addresses) == 0 {
			allErrs = append(allErrs, field.Required(addressPath, "must contain at least 1 address").MarkCoveredByDeclarative())
		} else if len(ep.Addresses) > MaxAddresses {
			allErrs = append(allErrs, field.TooMany(addressPath, len(ep.Addresses), MaxAddresses).WithOrigin("maxItems").MarkCoveredByDeclarative())
		}
		for j, address := range ep.Addresses {
			allErrs = append(allErrs, validateAddress(addrType, address, addressPath, j)...)
		}
		if ep.NodeName != nil {
			for _, msg := range endpoints.ValidateNodeName(*ep.NodeName) {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("nodeName"), *ep.NodeName, msg))
			}
		}
		topologyPath := idxPath.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > MaxTopologyLabels {
			allErrs = append(allErrs, field.TooMany(topologyPath, len(ep.DeprecatedTopology), MaxTopologyLabels))
		}
		allErrs = append(allErrs, metavalidation.ValidateLabels(ep.DeprecatedTopology, topologyPath)...)
		if _, found := ep.DeprecatedTopology[corev1.LabelTopologyZone]; found {
			allErrs = append(allErrs, field.InternalError(topologyPath.Key(corev1.LabelTopologyZone), fmt.Errorf("reserved key was not removed in conversion")))
		}
		if ep.Hostname != nil {
			allErrs = append(allErrs, endpoints.ValidateDNS1123Label(*ep.Hostname, idxPath.Child("hostname"))...)
		}
		if ep.Hints != nil {
			allErrs = append(allErrs, validateHints(ep.Hints, idxPath.Child("hints"))...)
		}
	}
	return allErrs
}

// validateAddress checks one address of a known address type; unknown types are not checked.
func validateAddress(addrType discoveryv1.AddressType, address string, addressPath *field.Path, j int) field.ErrorList {
	var allErrs field.ErrorList
	switch addrType {
	case discoveryv1.AddressTypeIPv4:
		if ipErrs := endpoints.IsValidIPForLegacyField(addressPath.Index(j), address, nil); len(ipErrs) > 0 {
			return ipErrs
		}
		if !netutils.IsIPv4String(address) {
			allErrs = append(allErrs, field.Invalid(addressPath, address, "must be an IPv4 address"))
		}
		allErrs = append(allErrs, endpoints.ValidateEndpointIP(address, addressPath.Index(j))...)
	case discoveryv1.AddressTypeIPv6:
		if ipErrs := validation.IsValidIP(addressPath.Index(j), address); len(ipErrs) > 0 {
			return ipErrs
		}
		if !netutils.IsIPv6String(address) {
			allErrs = append(allErrs, field.Invalid(addressPath, address, "must be an IPv6 address"))
		}
		allErrs = append(allErrs, endpoints.ValidateEndpointIP(address, addressPath.Index(j))...)
	case discoveryv1.AddressTypeFQDN:
		allErrs = append(allErrs, validation.IsFullyQualifiedDomainName(addressPath.Index(j), address)...)
	}
	return allErrs
}

func validatePorts(ports []discoveryv1.EndpointPort, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	if len(ports) > MaxPorts {
		return append(allErrs, field.TooMany(fldPath, len(ports), MaxPorts))
	}
	names := make([]string, 0, len(ports))
	for i, p := range ports {
		idxPath := fldPath.Index(i)
		name := ""
		if p.Name != nil { // always set after defaulting
			name = *p.Name
		}
		if len(name) > 0 {
			allErrs = append(allErrs, endpoints.ValidateDNS1123Label(name, idxPath.Child("name"))...)
		}
		if slices.Contains(names, name) {
			allErrs = append(allErrs, field.Duplicate(idxPath.Child("name"), p.Name))
		} else {
			names = append(names, name)
		}
		if p.Protocol == nil {
			allErrs = append(allErrs, field.Required(idxPath.Child("protocol"), ""))
		} else if !endpoints.SupportedPortProtocols.Has(*p.Protocol) {
			allErrs = append(allErrs, field.NotSupported(idxPath.Child("protocol"), *p.Protocol, sets.List(endpoints.SupportedPortProtocols)))
		}
		if p.AppProtocol != nil {
			allErrs = append(allErrs, endpoints.ValidateQualifiedName(*p.AppProtocol, idxPath.Child("appProtocol"))...)
		}
	}
	return allErrs
}

func validateHints(hints *discoveryv1.EndpointHints, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	fzPath := fldPath.Child("forZones")
	if len(hints.ForZones) > MaxZoneHints {
		return append(allErrs, field.TooMany(fzPath, len(hints.ForZones), MaxZoneHints))
	}
	zones := make([]string, 0, len(hints.ForZones))
	for i, z := range hints.ForZones {
		p := fzPath.Index(i).Child("name")
		if slices.Contains(zones, z.Name) {
			allErrs = append(allErrs, field.Duplicate(p, z.Name))
		} else {
			zones = append(zones, z.Name)
		}
		for _, msg := range validation.IsValidLabelValue(z.Name) {
			allErrs = append(allErrs, field.Invalid(p, z.Name, msg))
		}
	}
	fnPath := fldPath.Child("forNodes")
	if len(hints.ForNodes) > MaxNodeHints {
		return append(allErrs, field.TooMany(fnPath, len(hints.ForNodes), MaxNodeHints))
	}
	nodes := make([]string, 0, len(hints.ForNodes))
	for i, n := range hints.ForNodes {
		p := fnPath.Index(i).Child("name")
		if slices.Contains(nodes, n.Name) {
			allErrs = append(allErrs, field.Duplicate(p, n.Name))
		} else {
			nodes = append(nodes, n.Name)
		}
		for _, msg := range endpoints.ValidateNodeName(n.Name) {
			allErrs = append(allErrs, field.Invalid(p, n.Name, msg))
		}
	}
	return allErrs
}

var symbolsForAddressType = sets.New(discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6)

// validateDeclaratively is Validate_EndpointSlice of zz_generated.validations.go without the
// alpha ObjectMeta rules (alpha errors are never shown).
func validateDeclaratively(eps, old *discoveryv1.EndpointSlice) field.ErrorList {
	ctx := context.Background()
	op := operation.Operation{Type: operation.Create}
	if old != nil {
		op.Type = operation.Update
	}
	var errs field.ErrorList

	// addressType: required, immutable, enum.
	func() {
		p := field.NewPath("addressType")
		obj := &eps.AddressType
		var oldVal *discoveryv1.AddressType
		if old != nil {
			oldVal = &old.AddressType
			if *obj == *oldVal {
				return
			}
		}
		early := false
		if e := validate.RequiredValue(ctx, op, p, obj, oldVal).MarkBeta().MarkShortCircuit(); len(e) != 0 {
			errs = append(errs, e...)
			early = true
		}
		if e := validate.Immutable(ctx, op, p, obj, oldVal).MarkBeta().MarkShortCircuit(); len(e) != 0 {
			errs = append(errs, e...)
			early = true
		}
		if early {
			return
		}
		errs = append(errs, validate.Enum(ctx, op, p, obj, oldVal, symbolsForAddressType, nil).MarkBeta()...)
	}()

	// endpoints[*].addresses: required, at most 100.
	if old == nil || !apiequality.Semantic.DeepEqual(eps.Endpoints, old.Endpoints) {
		var oldEndpoints []discoveryv1.Endpoint
		if old != nil {
			oldEndpoints = old.Endpoints
		}
		if len(validate.OptionalSlice(ctx, op, field.NewPath("endpoints"), eps.Endpoints, oldEndpoints)) == 0 {
			errs = append(errs, validate.EachValSliceVal(ctx, op, field.NewPath("endpoints"), eps.Endpoints, oldEndpoints, nil, nil, validateEndpointDeclaratively)...)
		}
	}
	return errs
}

func validateEndpointDeclaratively(ctx context.Context, op operation.Operation, fldPath *field.Path, obj, _ *discoveryv1.Endpoint) field.ErrorList {
	p := fldPath.Child("addresses")
	if e := validate.RequiredSlice(ctx, op, p, obj.Addresses, nil).MarkBeta().MarkShortCircuit(); len(e) != 0 {
		return e
	}
	return validate.MaxItems(ctx, op, p, obj.Addresses, nil, MaxAddresses).MarkBeta().MarkShortCircuit()
}

// mergeDeclarative combines hand-written and declarative errors as kube-apiserver's
// ValidateDeclarativelyWithMigrationChecks does with DeclarativeValidationBeta on: enforced
// declarative errors replace the hand-written errors they cover and go last.
func mergeDeclarative(ctx context.Context, hv, dv field.ErrorList) field.ErrorList {
	hv = hv.MarkFromImperative()
	enforced := validate.FilterEnforcedDeclarativeErrors(ctx, dv, true)
	hv = validate.FilterCoveredHandwrittenErrors(ctx, hv, enforced, true)
	return append(hv, enforced...)
}
