package endpoints

// Validation of Endpoints and the primitive checks core validation shares between kinds,
// following k8s.io/kubernetes v1.37.2 pkg/apis/core/validation/validation.go.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/registry"
)

// StrictIPCIDRValidation is the value of kube's StrictIPCIDRValidation feature gate in
// v1.37 (beta, on by default): new IP and CIDR values may not have leading zeros or be
// IPv4-mapped IPv6 addresses.
const StrictIPCIDRValidation = true

// SupportedPortProtocols are the protocols a Service, Endpoints or EndpointSlice port may use.
var SupportedPortProtocols = sets.New(corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)

// IsValidIPForLegacyField validates an IP in a field that predates strict IP parsing; values
// listed in validOldIPs (the old object's values on update) are always accepted.
func IsValidIPForLegacyField(fldPath *field.Path, value string, validOldIPs []string) field.ErrorList {
	return validation.IsValidIPForLegacyField(fldPath, value, StrictIPCIDRValidation, validOldIPs)
}

// IsValidCIDRForLegacyField is the CIDR counterpart of IsValidIPForLegacyField.
func IsValidCIDRForLegacyField(fldPath *field.Path, value string, validOldCIDRs []string) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(fldPath, value, StrictIPCIDRValidation, validOldCIDRs)
}

// ValidateDNS1123Label validates a DNS-1123 label (port names, hostnames).
func ValidateDNS1123Label(value string, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	for _, msg := range validation.IsDNS1123Label(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg).WithOrigin("format=k8s-short-name"))
	}
	return allErrs
}

// ValidateDNS1123Subdomain validates a DNS-1123 subdomain (ExternalName targets).
func ValidateDNS1123Subdomain(value string, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	for _, msg := range validation.IsDNS1123Subdomain(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg).WithOrigin("format=k8s-long-name"))
	}
	return allErrs
}

// ValidateQualifiedName validates what Kubernetes calls a qualified name (appProtocol,
// loadBalancerClass).
func ValidateQualifiedName(value string, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	for _, msg := range validation.IsQualifiedName(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg).WithOrigin("format=qualified-name"))
	}
	return allErrs
}

// ValidateEndpointIP rejects the address kinds that make no sense as an endpoint (or, for
// historical reasons, as a Service externalIP): unspecified, loopback, link-local unicast
// and link-local multicast.
func ValidateEndpointIP(ipAddress string, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	ip := netutils.ParseIPSloppy(ipAddress)
	if ip == nil {
		allErrs = append(allErrs, field.Invalid(fldPath, ipAddress, "must be a valid IP address").WithOrigin("format=ip-sloppy"))
		return allErrs
	}
	if ip.IsUnspecified() {
		allErrs = append(allErrs, field.Invalid(fldPath, ipAddress, fmt.Sprintf("may not be unspecified (%v)", ipAddress)))
	}
	if ip.IsLoopback() {
		allErrs = append(allErrs, field.Invalid(fldPath, ipAddress, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if ip.IsLinkLocalUnicast() {
		allErrs = append(allErrs, field.Invalid(fldPath, ipAddress, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if ip.IsLinkLocalMulticast() {
		allErrs = append(allErrs, field.Invalid(fldPath, ipAddress, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return allErrs.WithOrigin("format=endpoint-ip")
}

// ValidateNodeName validates a node name (a DNS-1123 subdomain); it returns the messages.
func ValidateNodeName(name string) []string {
	return registry.NameIsDNSSubdomain(name, false)
}

// ValidateEndpoints validates Endpoints on create (old nil) and update. On update, subset
// errors are dropped when the subsets are unchanged, since older releases accepted them.
func ValidateEndpoints(ep, old *corev1.Endpoints) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&ep.ObjectMeta, true, registry.NameIsDNSSubdomain, field.NewPath("metadata"))
	subsetErrs := validateEndpointSubsets(ep.Subsets, field.NewPath("subsets"))
	if len(subsetErrs) != 0 && old != nil && apiequality.Semantic.DeepEqual(old.Subsets, ep.Subsets) {
		subsetErrs = nil
	}
	return append(allErrs, subsetErrs...)
}

func validateEndpointSubsets(subsets []corev1.EndpointSubset, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	for i := range subsets {
		ss := &subsets[i]
		idxPath := fldPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			allErrs = append(allErrs, field.Required(idxPath, "must specify `addresses` or `notReadyAddresses`"))
		}
		for a := range ss.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.Addresses[a], idxPath.Child("addresses").Index(a))...)
		}
		for a := range ss.NotReadyAddresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.NotReadyAddresses[a], idxPath.Child("notReadyAddresses").Index(a))...)
		}
		for p := range ss.Ports {
			allErrs = append(allErrs, validateEndpointPort(&ss.Ports[p], len(ss.Ports) > 1, idxPath.Child("ports").Index(p))...)
		}
	}
	return allErrs
}

func validateEndpointAddress(address *corev1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	allErrs = append(allErrs, IsValidIPForLegacyField(fldPath.Child("ip"), address.IP, nil)...)
	if len(address.Hostname) > 0 {
		allErrs = append(allErrs, ValidateDNS1123Label(address.Hostname, fldPath.Child("hostname"))...)
	}
	if address.NodeName != nil {
		for _, msg := range ValidateNodeName(*address.NodeName) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("nodeName"), *address.NodeName, msg).WithOrigin("format=dns-label"))
		}
	}
	allErrs = append(allErrs, ValidateEndpointIP(address.IP, fldPath.Child("ip"))...)
	return allErrs
}

func validateEndpointPort(port *corev1.EndpointPort, requireName bool, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	if requireName && len(port.Name) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else if len(port.Name) != 0 {
		allErrs = append(allErrs, ValidateDNS1123Label(port.Name, fldPath.Child("name"))...)
	}
	for _, msg := range validation.IsValidPortNum(int(port.Port)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port, msg).WithOrigin("portNum"))
	}
	if len(port.Protocol) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("protocol"), ""))
	} else if !SupportedPortProtocols.Has(port.Protocol) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("protocol"), port.Protocol, sets.List(SupportedPortProtocols)))
	}
	if port.AppProtocol != nil {
		allErrs = append(allErrs, ValidateQualifiedName(*port.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return allErrs
}
