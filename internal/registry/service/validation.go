package service

// Service validation, following k8s.io/kubernetes v1.37.2
// pkg/apis/core/validation/validation.go: validateService, validateServicePort,
// validateServiceExternalTrafficPolicy, validateServiceExternalTrafficFieldsUpdate,
// validateServiceInternalTrafficFieldsValue, validateServiceTrafficDistribution,
// ValidateServiceCreate, ValidateServiceUpdate, ValidateServiceStatusUpdate,
// validateClientIPAffinityConfig, ValidatePortNumOrName, ValidateLoadBalancerStatus,
// validateLoadBalancerClassField. Feature gates are fixed at their v1.37 defaults
// (RelaxedServiceNameValidation and PreferSameTrafficDistribution GA, StrictIPCIDRValidation on).

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/endpoints"
)

var (
	supportedSessionAffinityType = sets.New(corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone)
	supportedServiceType         = sets.New(corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	supportedServiceInternalTrafficPolicy = sets.New(corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)
	supportedServiceIPFamily              = sets.New(corev1.IPv4Protocol, corev1.IPv6Protocol)
	supportedServiceIPFamilyPolicy        = sets.New(corev1.IPFamilyPolicySingleStack,
		corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)
	validExternalTrafficPolicies = sets.New(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)
	supportedTrafficDistribution = []string{corev1.ServiceTrafficDistributionPreferClose,
		corev1.ServiceTrafficDistributionPreferSameZone, corev1.ServiceTrafficDistributionPreferSameNode}
	supportedLoadBalancerIPMode = sets.New(corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy)
)

// internalServicePort renders like kube's internal core.ServicePort in error messages: kube
// reports a duplicate (protocol, port) with that struct as the bad value, and field.Error
// renders it as JSON with Go field names (the internal type has no json tags).
type internalServicePort struct {
	Name        string
	Protocol    corev1.Protocol
	AppProtocol *string
	Port        int32
	TargetPort  intstr.IntOrString
	NodePort    int32
}

// ValidateServiceCreate validates a new Service: metadata (name a DNS-1123 label) and spec.
func ValidateServiceCreate(svc *corev1.Service) field.ErrorList {
	allErrs := registry.ValidateObjectMeta(&svc.ObjectMeta, true, registry.NameIsDNSLabel, field.NewPath("metadata"))
	return append(allErrs, validateService(svc, nil)...)
}

// ValidateServiceUpdate validates an update: metadata update rules, clusterIPs/ipFamilies
// upgrade-downgrade rules, loadBalancerClass and healthCheckNodePort immutability, then
// everything ValidateServiceCreate checks on the spec.
func ValidateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	allErrs := registry.ValidateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateUpgradeDowngradeClusterIPs(old, svc)...)
	allErrs = append(allErrs, validateUpgradeDowngradeIPFamilies(old, svc)...)
	allErrs = append(allErrs, validateLoadBalancerClassField(old, svc)...)
	allErrs = append(allErrs, validateServiceExternalTrafficFieldsUpdate(old, svc)...)
	return append(allErrs, validateService(svc, old)...)
}

// ValidateServiceStatusUpdate validates a services/status write.
func ValidateServiceStatusUpdate(svc, old *corev1.Service) field.ErrorList {
	allErrs := registry.ValidateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, ValidateLoadBalancerStatus(&svc.Status.LoadBalancer, &old.Status.LoadBalancer, field.NewPath("status", "loadBalancer"), &svc.Spec)...)
}

func validateService(svc, old *corev1.Service) field.ErrorList {
	metaPath := field.NewPath("metadata")
	var allErrs field.ErrorList

	hintsVal, hintsSet := svc.Annotations[corev1.DeprecatedAnnotationTopologyAwareHints]
	modeVal, modeSet := svc.Annotations[corev1.AnnotationTopologyMode]
	if modeSet && hintsSet && modeVal != hintsVal {
		msg := fmt.Sprintf("must match annotations[%s] when both are specified", corev1.DeprecatedAnnotationTopologyAwareHints)
		allErrs = append(allErrs, field.Invalid(metaPath.Child("annotations").Key(corev1.AnnotationTopologyMode), modeVal, msg))
	}

	specPath := field.NewPath("spec")
	headless := isHeadlessService(svc)
	if len(svc.Spec.Ports) == 0 && !headless && svc.Spec.Type != corev1.ServiceTypeExternalName {
		allErrs = append(allErrs, field.Required(specPath.Child("ports"), ""))
	}
	allErrs = append(allErrs, validateTypeSpecific(svc, specPath)...)

	allPortNames := sets.Set[string]{}
	portsPath := specPath.Child("ports")
	for i := range svc.Spec.Ports {
		allErrs = append(allErrs, validateServicePort(&svc.Spec.Ports[i], len(svc.Spec.Ports) > 1, &allPortNames, portsPath.Index(i))...)
	}

	if svc.Spec.Selector != nil {
		allErrs = append(allErrs, metavalidation.ValidateLabels(svc.Spec.Selector, specPath.Child("selector"))...)
	}

	if len(svc.Spec.SessionAffinity) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("sessionAffinity"), ""))
	} else if !supportedSessionAffinityType.Has(svc.Spec.SessionAffinity) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("sessionAffinity"), svc.Spec.SessionAffinity, sets.List(supportedSessionAffinityType)))
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		allErrs = append(allErrs, validateClientIPAffinityConfig(svc.Spec.SessionAffinityConfig, specPath.Child("sessionAffinityConfig"))...)
	} else if svc.Spec.SessionAffinity == corev1.ServiceAffinityNone && svc.Spec.SessionAffinityConfig != nil {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("sessionAffinityConfig"), fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
	}

	allErrs = append(allErrs, ValidateServiceClusterIPsRelatedFields(svc, old)...)

	// New externalIPs must be valid, non-special IPs; values already stored are tolerated.
	ipPath := specPath.Child("externalIPs")
	var existingExternalIPs []string
	if old != nil {
		existingExternalIPs = old.Spec.ExternalIPs
	}
	for i, ip := range svc.Spec.ExternalIPs {
		idxPath := ipPath.Index(i)
		if errs := endpoints.IsValidIPForLegacyField(idxPath, ip, existingExternalIPs); len(errs) != 0 {
			allErrs = append(allErrs, errs...)
		} else {
			allErrs = append(allErrs, endpoints.ValidateEndpointIP(ip, idxPath)...)
		}
	}

	if len(svc.Spec.Type) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("type"), ""))
	} else if !supportedServiceType.Has(svc.Spec.Type) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("type"), svc.Spec.Type, sets.List(supportedServiceType)))
	}

	allErrs = append(allErrs, validateNodePortsAndDuplicates(svc, specPath)...)
	allErrs = append(allErrs, validateSourceRanges(svc, old, specPath)...)

	if svc.Spec.AllocateLoadBalancerNodePorts != nil && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.AllocateLoadBalancerNodePorts == nil {
		// Upstream reports this without the "spec." prefix; kept for fidelity.
		allErrs = append(allErrs, field.Required(field.NewPath("allocateLoadBalancerNodePorts"), ""))
	}

	allErrs = append(allErrs, validateLoadBalancerClassField(nil, svc)...)
	allErrs = append(allErrs, validateServiceExternalTrafficPolicy(svc)...)
	allErrs = append(allErrs, validateServiceInternalTrafficFieldsValue(svc)...)
	allErrs = append(allErrs, validateServiceTrafficDistribution(svc)...)
	return allErrs
}

// validateTypeSpecific holds the per-type switch of validateService (SVC-V-07..09).
func validateTypeSpecific(svc *corev1.Service, specPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		if isHeadlessService(svc) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("clusterIPs").Index(0), svc.Spec.ClusterIPs[0], "may not be set to 'None' for LoadBalancer services"))
		}
	case corev1.ServiceTypeNodePort:
		if isHeadlessService(svc) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("clusterIPs").Index(0), svc.Spec.ClusterIPs[0], "may not be set to 'None' for NodePort services"))
		}
	case corev1.ServiceTypeExternalName:
		if len(svc.Spec.ClusterIPs) > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(svc.Spec.IPFamilies) > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if svc.Spec.IPFamilyPolicy != nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// The value (a CNAME) may have a trailing dot to denote it as fully qualified.
		cname := strings.TrimSuffix(svc.Spec.ExternalName, ".")
		if len(cname) > 0 {
			allErrs = append(allErrs, endpoints.ValidateDNS1123Subdomain(cname, specPath.Child("externalName"))...)
		} else {
			allErrs = append(allErrs, field.Required(specPath.Child("externalName"), ""))
		}
	}
	return allErrs
}

// validateNodePortsAndDuplicates covers SVC-V-05 and SVC-V-06.
func validateNodePortsAndDuplicates(svc *corev1.Service, specPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	portsPath := specPath.Child("ports")
	if svc.Spec.Type == corev1.ServiceTypeClusterIP {
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].NodePort != 0 {
				allErrs = append(allErrs, field.Forbidden(portsPath.Index(i).Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
		}
	}
	type protoPort struct {
		proto corev1.Protocol
		port  int32
	}
	nodePorts := map[protoPort]bool{}
	for i := range svc.Spec.Ports {
		port := &svc.Spec.Ports[i]
		if port.NodePort == 0 {
			continue
		}
		key := protoPort{port.Protocol, port.NodePort}
		if nodePorts[key] {
			allErrs = append(allErrs, field.Duplicate(portsPath.Index(i).Child("nodePort"), port.NodePort))
		}
		nodePorts[key] = true
	}
	ports := map[protoPort]bool{}
	for i, port := range svc.Spec.Ports {
		key := protoPort{port.Protocol, port.Port}
		if ports[key] {
			allErrs = append(allErrs, field.Duplicate(portsPath.Index(i), internalServicePort{Protocol: port.Protocol, Port: port.Port}))
		}
		ports[key] = true
	}
	return allErrs
}

// validateSourceRanges covers SVC-V-15: the field (path spelled "LoadBalancerSourceRanges"
// upstream) or else the legacy annotation.
func validateSourceRanges(svc, old *corev1.Service, specPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		fieldPath := specPath.Child("LoadBalancerSourceRanges")
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, field.Forbidden(fieldPath, "may only be used when `type` is 'LoadBalancer'"))
		}
		var existing []string
		if old != nil {
			existing = make([]string, len(old.Spec.LoadBalancerSourceRanges))
			for i, v := range old.Spec.LoadBalancerSourceRanges {
				existing[i] = strings.TrimSpace(v)
			}
		}
		for idx, value := range svc.Spec.LoadBalancerSourceRanges {
			allErrs = append(allErrs, endpoints.IsValidCIDRForLegacyField(fieldPath.Index(idx), strings.TrimSpace(value), existing)...)
		}
	} else if val, ok := svc.Annotations[corev1.AnnotationLoadBalancerSourceRangesKey]; ok {
		fieldPath := field.NewPath("metadata", "annotations").Key(corev1.AnnotationLoadBalancerSourceRangesKey)
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, field.Forbidden(fieldPath, "may only be used when `type` is 'LoadBalancer'"))
		}
		if old == nil || old.Annotations[corev1.AnnotationLoadBalancerSourceRangesKey] != val {
			val = strings.TrimSpace(val)
			if val != "" {
				for _, value := range strings.Split(val, ",") {
					allErrs = append(allErrs, endpoints.IsValidCIDRForLegacyField(fieldPath, strings.TrimSpace(value), nil)...)
				}
			}
		}
	}
	return allErrs
}

func validateServicePort(sp *corev1.ServicePort, requireName bool, allNames *sets.Set[string], fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	if requireName && len(sp.Name) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else if len(sp.Name) != 0 {
		allErrs = append(allErrs, endpoints.ValidateDNS1123Label(sp.Name, fldPath.Child("name"))...)
		if allNames.Has(sp.Name) {
			allErrs = append(allErrs, field.Duplicate(fldPath.Child("name"), sp.Name))
		} else {
			allNames.Insert(sp.Name)
		}
	}
	for _, msg := range validation.IsValidPortNum(int(sp.Port)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), sp.Port, msg))
	}
	if len(sp.Protocol) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("protocol"), ""))
	} else if !endpoints.SupportedPortProtocols.Has(sp.Protocol) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("protocol"), sp.Protocol, sets.List(endpoints.SupportedPortProtocols)))
	}
	allErrs = append(allErrs, ValidatePortNumOrName(sp.TargetPort, fldPath.Child("targetPort"))...)
	if sp.AppProtocol != nil {
		allErrs = append(allErrs, endpoints.ValidateQualifiedName(*sp.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return allErrs
}

// ValidatePortNumOrName validates an int-or-string port: a number 1-65535 or an IANA service
// name.
func ValidatePortNumOrName(port intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	allErrs := field.ErrorList{}
	switch port.Type {
	case intstr.Int:
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			allErrs = append(allErrs, field.Invalid(fldPath, port.IntValue(), msg))
		}
	case intstr.String:
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, port.StrVal, msg))
		}
	default:
		allErrs = append(allErrs, field.InternalError(fldPath, fmt.Errorf("unknown type: %v", port.Type)))
	}
	return allErrs
}

func validateClientIPAffinityConfig(config *corev1.SessionAffinityConfig, fldPath *field.Path) field.ErrorList {
	when := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
	if config == nil {
		return field.ErrorList{field.Required(fldPath, when)}
	}
	if config.ClientIP == nil {
		return field.ErrorList{field.Required(fldPath.Child("clientIP"), when)}
	}
	if config.ClientIP.TimeoutSeconds == nil {
		return field.ErrorList{field.Required(fldPath.Child("clientIP").Child("timeoutSeconds"), when)}
	}
	timeout := config.ClientIP.TimeoutSeconds
	if *timeout <= 0 || *timeout > MaxClientIPServiceAffinitySeconds {
		return field.ErrorList{field.Invalid(fldPath.Child("clientIP").Child("timeoutSeconds"), timeout,
			fmt.Sprintf("must be greater than 0 and less than %d", MaxClientIPServiceAffinitySeconds))}
	}
	return field.ErrorList{}
}

func validateServiceExternalTrafficPolicy(svc *corev1.Service) field.ErrorList {
	allErrs := field.ErrorList{}
	fldPath := field.NewPath("spec")
	if !ExternallyAccessible(svc) {
		if svc.Spec.ExternalTrafficPolicy != "" {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("externalTrafficPolicy"), svc.Spec.ExternalTrafficPolicy,
				"may only be set for externally-accessible services"))
		}
	} else {
		if svc.Spec.ExternalTrafficPolicy == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("externalTrafficPolicy"), ""))
		} else if !validExternalTrafficPolicies.Has(svc.Spec.ExternalTrafficPolicy) {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("externalTrafficPolicy"),
				svc.Spec.ExternalTrafficPolicy, sets.List(validExternalTrafficPolicies)))
		}
	}
	if !NeedsHealthCheck(svc) {
		if svc.Spec.HealthCheckNodePort != 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("healthCheckNodePort"), svc.Spec.HealthCheckNodePort,
				"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		}
	} else {
		if svc.Spec.HealthCheckNodePort == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("healthCheckNodePort"), ""))
		} else {
			for _, msg := range validation.IsValidPortNum(int(svc.Spec.HealthCheckNodePort)) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("healthCheckNodePort"), svc.Spec.HealthCheckNodePort, msg))
			}
		}
	}
	return allErrs
}

func validateServiceExternalTrafficFieldsUpdate(before, after *corev1.Service) field.ErrorList {
	if NeedsHealthCheck(before) && NeedsHealthCheck(after) && after.Spec.HealthCheckNodePort != before.Spec.HealthCheckNodePort {
		return field.ErrorList{field.Forbidden(field.NewPath("spec", "healthCheckNodePort"), "field is immutable")}
	}
	return field.ErrorList{}
}

func validateServiceInternalTrafficFieldsValue(svc *corev1.Service) field.ErrorList {
	allErrs := field.ErrorList{}
	itp := field.NewPath("spec").Child("internalTrafficPolicy")
	if svc.Spec.InternalTrafficPolicy == nil {
		// Not forbidden on ExternalName for historical reasons.
		if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer || svc.Spec.Type == corev1.ServiceTypeClusterIP {
			allErrs = append(allErrs, field.Required(itp, ""))
		}
	}
	if svc.Spec.InternalTrafficPolicy != nil && !supportedServiceInternalTrafficPolicy.Has(*svc.Spec.InternalTrafficPolicy) {
		allErrs = append(allErrs, field.NotSupported(itp, *svc.Spec.InternalTrafficPolicy, sets.List(supportedServiceInternalTrafficPolicy)))
	}
	return allErrs
}

func validateServiceTrafficDistribution(svc *corev1.Service) field.ErrorList {
	if svc.Spec.TrafficDistribution == nil {
		return field.ErrorList{}
	}
	if !slices.Contains(supportedTrafficDistribution, *svc.Spec.TrafficDistribution) {
		return field.ErrorList{field.NotSupported(field.NewPath("spec").Child("trafficDistribution"), *svc.Spec.TrafficDistribution, supportedTrafficDistribution)}
	}
	return field.ErrorList{}
}

// ValidateLoadBalancerStatus validates status.loadBalancer of a Service (SVC-V-23).
func ValidateLoadBalancerStatus(status, oldStatus *corev1.LoadBalancerStatus, fldPath *field.Path, spec *corev1.ServiceSpec) field.ErrorList {
	allErrs := field.ErrorList{}
	ingrPath := fldPath.Child("ingress")
	if spec.Type != corev1.ServiceTypeLoadBalancer && len(status.Ingress) != 0 {
		return append(allErrs, field.Forbidden(ingrPath, "may only be used when `spec.type` is 'LoadBalancer'"))
	}
	var existingIngressIPs []string
	if oldStatus != nil {
		existingIngressIPs = make([]string, 0, len(oldStatus.Ingress))
		for _, ing := range oldStatus.Ingress {
			if len(ing.IP) > 0 {
				existingIngressIPs = append(existingIngressIPs, ing.IP)
			}
		}
	}
	for i, ing := range status.Ingress {
		idxPath := ingrPath.Index(i)
		if len(ing.IP) > 0 {
			allErrs = append(allErrs, endpoints.IsValidIPForLegacyField(idxPath.Child("ip"), ing.IP, existingIngressIPs)...)
		}
		switch {
		case ing.IPMode == nil:
			if len(ing.IP) > 0 {
				allErrs = append(allErrs, field.Required(idxPath.Child("ipMode"), "must be specified when `ip` is set"))
			}
		case len(ing.IP) == 0:
			allErrs = append(allErrs, field.Forbidden(idxPath.Child("ipMode"), "may not be specified when `ip` is not set"))
		case !supportedLoadBalancerIPMode.Has(*ing.IPMode):
			allErrs = append(allErrs, field.NotSupported(idxPath.Child("ipMode"), ing.IPMode, sets.List(supportedLoadBalancerIPMode)))
		}
		if len(ing.Hostname) > 0 {
			for _, msg := range validation.IsDNS1123Subdomain(ing.Hostname) {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ing.Hostname, msg))
			}
			if netutils.ParseIPSloppy(ing.Hostname) != nil {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("hostname"), ing.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return allErrs
}

func validateLoadBalancerClassField(old, svc *corev1.Service) field.ErrorList {
	allErrs := make(field.ErrorList, 0)
	lbc := field.NewPath("spec", "loadBalancerClass")
	if old != nil && old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		!sameLoadBalancerClass(old, svc) {
		allErrs = append(allErrs, field.Invalid(lbc, svc.Spec.LoadBalancerClass, "may not change once set"))
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		if svc.Spec.LoadBalancerClass != nil {
			allErrs = append(allErrs, endpoints.ValidateQualifiedName(*svc.Spec.LoadBalancerClass, lbc)...)
		}
	} else if svc.Spec.LoadBalancerClass != nil {
		allErrs = append(allErrs, field.Forbidden(lbc, "may only be used when `type` is 'LoadBalancer'"))
	}
	return allErrs
}

func sameLoadBalancerClass(old, svc *corev1.Service) bool {
	if old.Spec.LoadBalancerClass == nil || svc.Spec.LoadBalancerClass == nil {
		return old.Spec.LoadBalancerClass == nil && svc.Spec.LoadBalancerClass == nil
	}
	return *old.Spec.LoadBalancerClass == *svc.Spec.LoadBalancerClass
}

// isHeadlessService is validation's notion of headless: clusterIPs == ["None"].
func isHeadlessService(svc *corev1.Service) bool {
	return svc != nil && len(svc.Spec.ClusterIPs) == 1 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}
