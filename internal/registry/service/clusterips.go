package service

// Validation of clusterIP/clusterIPs/ipFamilies/ipFamilyPolicy, following k8s.io/kubernetes
// v1.37.2 pkg/apis/core/validation/validation.go: ValidateServiceClusterIPsRelatedFields,
// validateUpgradeDowngradeClusterIPs, validateUpgradeDowngradeIPFamilies.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"kubesvc/internal/registry/endpoints"
)

// ValidateServiceClusterIPsRelatedFields validates spec.clusterIP(s), spec.ipFamilies and
// spec.ipFamilyPolicy (SVC-V-12). ExternalName services are skipped (their fields are
// checked to be empty elsewhere). It also runs, as a pre-check, inside ResolveIPFamilies.
func ValidateServiceClusterIPsRelatedFields(svc, old *corev1.Service) field.ErrorList {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return field.ErrorList{}
	}
	allErrs := field.ErrorList{}
	hasInvalidIPs := false
	specPath := field.NewPath("spec")
	clusterIPsField := specPath.Child("clusterIPs")
	ipFamiliesField := specPath.Child("ipFamilies")
	ipFamilyPolicyField := specPath.Child("ipFamilyPolicy")

	if len(svc.Spec.ClusterIP) != 0 {
		if len(svc.Spec.ClusterIPs) == 0 {
			allErrs = append(allErrs, field.Required(clusterIPsField, ""))
		} else if svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
			allErrs = append(allErrs, field.Invalid(clusterIPsField, svc.Spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(svc.Spec.ClusterIPs) != 0 {
		allErrs = append(allErrs, field.Invalid(clusterIPsField, svc.Spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}

	seen := sets.Set[corev1.IPFamily]{}
	for i, fam := range svc.Spec.IPFamilies {
		if !supportedServiceIPFamily.Has(fam) {
			allErrs = append(allErrs, field.NotSupported(ipFamiliesField.Index(i), fam, sets.List(supportedServiceIPFamily)))
		}
		if seen.Has(fam) {
			allErrs = append(allErrs, field.Duplicate(ipFamiliesField.Index(i), fam))
		}
		seen.Insert(fam)
	}

	if svc.Spec.IPFamilyPolicy != nil && !supportedServiceIPFamilyPolicy.Has(*svc.Spec.IPFamilyPolicy) {
		allErrs = append(allErrs, field.NotSupported(ipFamilyPolicyField, svc.Spec.IPFamilyPolicy, sets.List(supportedServiceIPFamilyPolicy)))
	}

	var existingClusterIPs []string
	if old != nil {
		existingClusterIPs = old.Spec.ClusterIPs
	}
	for i, ip := range svc.Spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(svc.Spec.ClusterIPs) > 1 {
				hasInvalidIPs = true
				allErrs = append(allErrs, field.Invalid(clusterIPsField, svc.Spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		errs := endpoints.IsValidIPForLegacyField(clusterIPsField.Index(i), ip, existingClusterIPs)
		hasInvalidIPs = len(errs) != 0 || hasInvalidIPs
		allErrs = append(allErrs, errs...)
	}

	if len(svc.Spec.ClusterIPs) > 2 {
		allErrs = append(allErrs, field.Invalid(clusterIPsField, svc.Spec.ClusterIPs, "may only hold up to 2 values"))
	}

	// Bad IPs would skew the messages below.
	if hasInvalidIPs {
		return allErrs
	}

	if len(svc.Spec.ClusterIPs) > 1 {
		dualStack, err := netutils.IsDualStackIPStrings(svc.Spec.ClusterIPs)
		if err != nil {
			allErrs = append(allErrs, field.InternalError(clusterIPsField, fmt.Errorf("failed to check for dual stack with error:%v", err)))
		}
		if !dualStack {
			allErrs = append(allErrs, field.Invalid(clusterIPsField, svc.Spec.ClusterIPs, "may specify no more than one IP for each IP family"))
		}
	}

	if !isHeadlessService(svc) && len(svc.Spec.ClusterIPs) > 0 && len(svc.Spec.IPFamilies) > 0 {
		for i, ip := range svc.Spec.ClusterIPs {
			if i > len(svc.Spec.IPFamilies)-1 {
				break
			}
			if svc.Spec.IPFamilies[i] == corev1.IPv4Protocol && netutils.IsIPv6String(ip) {
				allErrs = append(allErrs, field.Invalid(clusterIPsField.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
			}
			if svc.Spec.IPFamilies[i] == corev1.IPv6Protocol && !netutils.IsIPv6String(ip) {
				allErrs = append(allErrs, field.Invalid(clusterIPsField.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
			}
		}
	}
	return allErrs
}

// validateUpgradeDowngradeClusterIPs: clusterIPs[0] may never change; a secondary IP may be
// added, or released with ipFamilyPolicy SingleStack (SVC-U-03).
func validateUpgradeDowngradeClusterIPs(old, svc *corev1.Service) field.ErrorList {
	allErrs := make(field.ErrorList, 0)
	if svc.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return allErrs
	}
	if isHeadlessService(old) && isHeadlessService(svc) {
		return allErrs
	}
	ips := field.NewPath("spec", "clusterIPs")
	oldIPs, newIPs := old.Spec.ClusterIPs, svc.Spec.ClusterIPs
	switch {
	case len(oldIPs) == len(newIPs):
		for i, ip := range oldIPs {
			if ip != newIPs[i] {
				allErrs = append(allErrs, field.Invalid(ips.Index(i), newIPs, "may not change once set"))
			}
		}
	case len(oldIPs) > len(newIPs):
		if len(newIPs) == 0 {
			allErrs = append(allErrs, field.Invalid(ips.Index(0), newIPs, "primary clusterIP can not be unset"))
		}
		if len(oldIPs) > 0 && len(newIPs) > 0 && newIPs[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(ips.Index(0), newIPs, "may not change once set"))
		}
		if len(newIPs) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), svc.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary clusterIP"))
		}
	case len(oldIPs) < len(newIPs):
		if len(oldIPs) > 0 && newIPs[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(ips.Index(0), newIPs, "may not change once set"))
		}
	}
	return allErrs
}

// validateUpgradeDowngradeIPFamilies: the primary family may never change (headless
// services excepted); a secondary family may be added, or released with SingleStack.
func validateUpgradeDowngradeIPFamilies(old, svc *corev1.Service) field.ErrorList {
	allErrs := make(field.ErrorList, 0)
	if svc.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return allErrs
	}
	oldHeadless, newHeadless := isHeadlessService(old), isHeadlessService(svc)
	if newHeadless != oldHeadless || newHeadless {
		return allErrs
	}
	fams := field.NewPath("spec", "ipFamilies")
	oldF, newF := old.Spec.IPFamilies, svc.Spec.IPFamilies
	switch {
	case len(oldF) == len(newF):
		for i, f := range oldF {
			if f != newF[i] {
				// Upstream reports every changed position at index 0.
				allErrs = append(allErrs, field.Invalid(fams.Index(0), newF, "may not change once set"))
			}
		}
	case len(oldF) > len(newF):
		if len(svc.Spec.ClusterIPs) == 0 {
			allErrs = append(allErrs, field.Invalid(fams.Index(0), newF, "primary ipFamily can not be unset"))
		}
		if len(newF) > 0 && newF[0] != oldF[0] {
			allErrs = append(allErrs, field.Invalid(fams.Index(0), svc.Spec.ClusterIPs, "may not change once set"))
		}
		if len(newF) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), svc.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary ipFamily"))
		}
	case len(oldF) < len(newF):
		if len(oldF) > 0 && len(newF) > 0 && newF[0] != oldF[0] {
			allErrs = append(allErrs, field.Invalid(fams.Index(0), svc.Spec.ClusterIPs, "may not change once set"))
		}
	}
	return allErrs
}
