package service

// IP-family resolution and the clusterIP bookkeeping kube-apiserver's service storage does
// before allocation, following k8s.io/kubernetes v1.37.2
// pkg/registry/core/service/storage/alloc.go (initIPFamilyFields,
// isMatchingPreferDualStackClusterIPFields) and storage.go (normalizeClusterIPs,
// patchAllocatedValues, defaultOnReadService).

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// serviceKind is the group-kind of Invalid errors about services.
var serviceKind = schema.GroupKind{Kind: "Service"}

func invalid(svc *corev1.Service, errs field.ErrorList) error {
	return apierrors.NewInvalid(serviceKind, svc.Name, errs)
}

func otherFamily(f corev1.IPFamily) corev1.IPFamily {
	if f == corev1.IPv4Protocol {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

// familyOf returns the family of a clusterIP string ("unknown" when it is not an IP).
func familyOf(ip string) corev1.IPFamily {
	if netutils.IsIPv4String(ip) {
		return corev1.IPv4Protocol
	}
	if netutils.IsIPv6String(ip) {
		return corev1.IPv6Protocol
	}
	return corev1.IPFamily("unknown")
}

func policyOf(svc *corev1.Service) corev1.IPFamilyPolicy {
	if svc.Spec.IPFamilyPolicy == nil {
		return ""
	}
	return *svc.Spec.IPFamilyPolicy
}

// ResolveIPFamilies fills spec.ipFamilyPolicy and spec.ipFamilies of a create (old nil) or
// update the way kube's initIPFamilyFields does (SVC-F-01..08), checking the requested
// families against the cluster's service CIDRs. It returns a 422 Invalid *StatusError with
// kube's causes (e.g. "this cluster is not configured for dual-stack services") or nil. Run
// it after NormalizeClusterIPs (and, on update, PatchAllocatedValues), before allocation.
func (s *Strategy) ResolveIPFamilies(svc, old *corev1.Service) error {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	// PreferDualStack services are never silently upgraded or downgraded (SVC-F-08).
	if isMatchingPreferDualStackClusterIPFields(svc, old) {
		return nil
	}
	if svc.Spec.IPFamilyPolicy == nil {
		var p corev1.IPFamilyPolicy
		switch {
		case old != nil && old.Spec.IPFamilyPolicy != nil:
			p = *old.Spec.IPFamilyPolicy
		case svc.Spec.ClusterIP == corev1.ClusterIPNone && len(svc.Spec.Selector) == 0:
			p = corev1.IPFamilyPolicyRequireDualStack
		default:
			p = corev1.IPFamilyPolicySingleStack
		}
		svc.Spec.IPFamilyPolicy = &p
	}

	if el := ValidateServiceClusterIPsRelatedFields(svc, old); len(el) != 0 {
		return invalid(svc, el)
	}

	el := make(field.ErrorList, 0)
	policyPath := field.NewPath("spec", "ipFamilyPolicy")
	if old != nil {
		if policyOf(svc) == corev1.IPFamilyPolicySingleStack {
			// SingleStack with unchanged lists is a clear request to downgrade.
			if slices.Equal(old.Spec.ClusterIPs, svc.Spec.ClusterIPs) && len(svc.Spec.ClusterIPs) > 1 {
				svc.Spec.ClusterIPs = svc.Spec.ClusterIPs[0:1]
			}
			if slices.Equal(old.Spec.IPFamilies, svc.Spec.IPFamilies) && len(svc.Spec.IPFamilies) > 1 {
				svc.Spec.IPFamilies = svc.Spec.IPFamilies[0:1]
			}
		} else {
			if len(svc.Spec.ClusterIPs) != 0 && len(svc.Spec.ClusterIPs) < len(old.Spec.ClusterIPs) {
				el = append(el, field.Invalid(policyPath, svc.Spec.IPFamilyPolicy, "must be 'SingleStack' to release the secondary cluster IP"))
			}
			if len(svc.Spec.IPFamilies) != 0 && len(svc.Spec.IPFamilies) < len(old.Spec.IPFamilies) {
				el = append(el, field.Invalid(policyPath, svc.Spec.IPFamilyPolicy, "must be 'SingleStack' to release the secondary IP family"))
			}
		}
	}

	if policyOf(svc) == corev1.IPFamilyPolicySingleStack {
		if len(svc.Spec.ClusterIPs) == 2 {
			el = append(el, field.Invalid(policyPath, svc.Spec.IPFamilyPolicy, "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"))
		}
		if len(svc.Spec.IPFamilies) == 2 {
			el = append(el, field.Invalid(policyPath, svc.Spec.IPFamilyPolicy, "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"))
		}
	}

	// Infer missing ipFamilies[i] from user-given clusterIPs[i] (SVC-F-04).
	for i, ip := range svc.Spec.ClusterIPs {
		if ip == corev1.ClusterIPNone {
			break
		}
		fam := familyOf(ip)
		if i >= len(svc.Spec.IPFamilies) {
			if !s.configured[fam] {
				el = append(el, field.Invalid(field.NewPath("spec", "clusterIPs").Index(i), svc.Spec.ClusterIPs,
					fmt.Sprintf("%s is not configured on this cluster", fam)))
			} else {
				svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, fam)
			}
		}
	}
	if len(el) > 0 {
		return invalid(svc, el)
	}

	// Headless + selectorless: any families, even on a single-stack cluster (SVC-F-05).
	if svc.Spec.ClusterIP == corev1.ClusterIPNone && len(svc.Spec.Selector) == 0 {
		if len(svc.Spec.IPFamilies) == 0 {
			svc.Spec.IPFamilies = []corev1.IPFamily{s.primary}
		}
		if len(svc.Spec.IPFamilies) < 2 && *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, otherFamily(svc.Spec.IPFamilies[0]))
		}
		return nil
	}

	if policyOf(svc) == corev1.IPFamilyPolicyRequireDualStack && len(s.configured) < 2 {
		el = append(el, field.Invalid(policyPath, svc.Spec.IPFamilyPolicy, "this cluster is not configured for dual-stack services"))
	}
	for i, fam := range svc.Spec.IPFamilies {
		if !s.configured[fam] {
			el = append(el, field.Invalid(field.NewPath("spec", "ipFamilies").Index(i), fam, "not configured on this cluster"))
		}
	}
	if len(el) > 0 {
		return invalid(svc, el)
	}

	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = []corev1.IPFamily{s.primary}
	}
	if *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack && len(svc.Spec.IPFamilies) == 1 && len(s.configured) == 2 {
		switch svc.Spec.IPFamilies[0] {
		case corev1.IPv4Protocol:
			svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, corev1.IPv6Protocol)
		case corev1.IPv6Protocol:
			svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, corev1.IPv4Protocol)
		}
	}
	return nil
}

// isMatchingPreferDualStackClusterIPFields reports an update of a PreferDualStack service
// that keeps type, policy, clusterIPs and ipFamilies: nothing to resolve or allocate.
func isMatchingPreferDualStackClusterIPFields(svc, old *corev1.Service) bool {
	if old == nil || svc.Spec.IPFamilyPolicy == nil {
		return false
	}
	if old.Spec.Type != svc.Spec.Type {
		return false
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP && svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicyPreferDualStack {
		return false
	}
	if old.Spec.IPFamilyPolicy != nil && *old.Spec.IPFamilyPolicy != corev1.IPFamilyPolicyPreferDualStack {
		return false
	}
	return slices.Equal(old.Spec.ClusterIPs, svc.Spec.ClusterIPs) && slices.Equal(old.Spec.IPFamilies, svc.Spec.IPFamilies)
}

// NormalizeClusterIPs keeps clusterIP and clusterIPs in sync for clients that only manage
// one of them (SVC-U-02). On create (old nil) a lone clusterIP becomes clusterIPs; on update
// omitted clusterIPs are kept, cleared or replaced to follow an unchanged, cleared or changed
// clusterIP.
func NormalizeClusterIPs(svc, old *corev1.Service) {
	if old == nil {
		if len(svc.Spec.ClusterIP) > 0 && len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
		return
	}
	if len(old.Spec.ClusterIPs) > 0 && len(svc.Spec.ClusterIPs) == 0 && old.Spec.ClusterIP == svc.Spec.ClusterIP {
		svc.Spec.ClusterIPs = slices.Clone(old.Spec.ClusterIPs)
	}
	if old.Spec.ClusterIP != svc.Spec.ClusterIP {
		sameIPs := slices.Equal(old.Spec.ClusterIPs, svc.Spec.ClusterIPs)
		if len(old.Spec.ClusterIP) > 0 && len(svc.Spec.ClusterIP) == 0 {
			if sameIPs {
				svc.Spec.ClusterIPs = nil
			}
		} else if sameIPs {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
	}
}

// PatchAllocatedValues copies server-allocated values the new object omits from old, so that
// re-applying the original manifest is a no-op (SVC-U-01): clusterIP(s) while both need
// one, nodePorts by port name while both need node ports (unless the number is used by
// another port in both), and healthCheckNodePort while both need one.
func PatchAllocatedValues(svc, old *corev1.Service) {
	if NeedsClusterIP(old) && NeedsClusterIP(svc) {
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
		}
		if len(svc.Spec.ClusterIPs) == 0 && len(old.Spec.ClusterIPs) > 0 {
			svc.Spec.ClusterIPs = slices.Clone(old.Spec.ClusterIPs)
		}
	}
	if NeedsNodePorts(old) && NeedsNodePorts(svc) {
		used := nodePortSet(old).Intersection(nodePortSet(svc))
		byName := map[string]int32{}
		for i := range old.Spec.Ports {
			byName[old.Spec.Ports[i].Name] = old.Spec.Ports[i].NodePort
		}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort == 0 {
				if v := byName[p.Name]; !used.Has(v) {
					p.NodePort = v
				}
			}
		}
	}
	if NeedsHealthCheck(old) && NeedsHealthCheck(svc) && svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

func nodePortSet(svc *corev1.Service) sets.Set[int32] {
	used := sets.New[int32]()
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			used.Insert(p.NodePort)
		}
	}
	return used
}

// DefaultOnRead is kube's service Decorator (defaultOnReadService): it fills clusterIPs,
// ipFamilies and ipFamilyPolicy of objects stored before those fields existed and hides
// internalTrafficPolicy on ExternalName services. kube-apiserver runs it on every object it
// returns from get, list, create and update (not watch) and on old in BeginUpdate.
func (s *Strategy) DefaultOnRead(svc *corev1.Service) {
	if svc == nil {
		return
	}
	NormalizeClusterIPs(svc, nil)
	s.defaultOnReadIPFamilies(svc)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		svc.Spec.InternalTrafficPolicy = nil
	}
}

func (s *Strategy) defaultOnReadIPFamilies(svc *corev1.Service) {
	if !NeedsClusterIP(svc) || len(svc.Spec.IPFamilies) > 0 {
		return
	}
	single, dual := corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyRequireDualStack
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		if len(svc.Spec.Selector) == 0 {
			svc.Spec.IPFamilyPolicy = &dual
			svc.Spec.IPFamilies = []corev1.IPFamily{s.primary, otherFamily(s.primary)}
		} else {
			svc.Spec.IPFamilyPolicy = &single
			svc.Spec.IPFamilies = []corev1.IPFamily{s.primary}
		}
		return
	}
	svc.Spec.IPFamilies = make([]corev1.IPFamily, len(svc.Spec.ClusterIPs))
	for i, ip := range svc.Spec.ClusterIPs {
		if netutils.IsIPv6String(ip) {
			svc.Spec.IPFamilies[i] = corev1.IPv6Protocol
		} else {
			svc.Spec.IPFamilies[i] = corev1.IPv4Protocol
		}
	}
	switch len(svc.Spec.IPFamilies) {
	case 1:
		svc.Spec.IPFamilyPolicy = &single
	case 2:
		svc.Spec.IPFamilyPolicy = &dual
	}
}
