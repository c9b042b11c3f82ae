package service

// What a service create, update or delete allocates and frees, following k8s.io/kubernetes
// v1.37.2 pkg/registry/core/service/storage/alloc.go (allocateCreate, allocClusterIPs,
// allocIPs, txnAllocNodePorts, initNodePorts, allocHealthCheckNodePort, allocateUpdate,
// updateClusterIPs, txnUpdateNodePorts, updateNodePorts, updateHealthCheckNodePort,
// releaseAllocatedResources) and storage.go (beginCreate, beginUpdate, afterDelete).

import (
	"errors"
	"fmt"
	"net"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// ErrRangeFull is the error an Allocator's AllocateNext* methods must wrap (errors.Is) when
// the range is exhausted; for cluster IPs it turns the failure into a 500 InternalError
// instead of a 422 on spec.clusterIPs, as in kube.
var ErrRangeFull = errors.New("range is full")

// Allocator is what the service strategy needs from the cluster-IP and node-port allocators
// during one create or update. Every allocation made through it belongs to the caller's
// transaction: the caller reverts them when the call fails or the write does not commit
// (and a dry-run allocator only checks). Error texts are shown to the user as they are, so
// they should be kube's ("provided IP is already allocated", "provided port is not in the
// valid range. The range of valid ports is 30000-32767", ...).
type Allocator interface {
	// AllocateClusterIP reserves ip in the range of its family.
	AllocateClusterIP(family corev1.IPFamily, ip net.IP) error
	// AllocateNextClusterIP reserves a free IP of family.
	AllocateNextClusterIP(family corev1.IPFamily) (net.IP, error)
	// AllocateNodePort reserves a node port (also used for healthCheckNodePort).
	AllocateNodePort(port int) error
	// AllocateNextNodePort reserves a free node port.
	AllocateNextNodePort() (int, error)
}

// Release lists what a successful write frees. The zero value frees nothing.
type Release struct {
	// ClusterIPs maps family to the IP to release (families not configured are skipped).
	ClusterIPs map[corev1.IPFamily]string
	// NodePorts lists node ports, including a released healthCheckNodePort.
	NodePorts []int
}

// Empty reports whether r frees nothing.
func (r Release) Empty() bool { return len(r.ClusterIPs) == 0 && len(r.NodePorts) == 0 }

// NeedsClusterIP reports whether the service type uses clusterIP(s) at all (every type but
// ExternalName; a headless service counts, "None" being its value).
func NeedsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName
}

// NeedsNodePorts reports whether node ports are allocated for ports without one: NodePort,
// and LoadBalancer unless allocateLoadBalancerNodePorts is false. (Requested node ports are
// reserved for LoadBalancer services either way.)
func NeedsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// NeedsHealthCheckNodePort reports whether a healthCheckNodePort is allocated
// (LoadBalancer with externalTrafficPolicy Local).
func NeedsHealthCheckNodePort(svc *corev1.Service) bool { return NeedsHealthCheck(svc) }

// BeginCreate is kube's beginCreate: NormalizeClusterIPs, ResolveIPFamilies, then allocation
// of clusterIPs (one per family, user-requested ones reserved), nodePorts (shared between
// ports with the same port number) and healthCheckNodePort. It mutates svc with the results.
// The error is a *StatusError (422 Invalid or 500 InternalError) to return as is.
func (s *Strategy) BeginCreate(svc *corev1.Service, a Allocator) error {
	NormalizeClusterIPs(svc, nil)
	if err := s.ResolveIPFamilies(svc, nil); err != nil {
		return err
	}
	if err := s.allocClusterIPs(svc, a); err != nil {
		return err
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		if err := initNodePorts(svc, a); err != nil {
			return err
		}
	}
	if NeedsHealthCheck(svc) {
		if err := allocHealthCheckNodePort(svc, a); err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	return nil
}

// BeginUpdate is kube's beginUpdate: DefaultOnRead(old), PatchAllocatedValues,
// NormalizeClusterIPs, ResolveIPFamilies, then the allocations the change needs (fresh IPs
// leaving ExternalName, a secondary IP on upgrade to dual-stack, nodePorts becoming
// NodePort/LoadBalancer, healthCheckNodePort becoming LB+Local). It returns what the write
// frees on success (ReleasedOnUpdate). Errors are *StatusErrors, except kube's plain
// "duplicate nodePort" error, which the handler reports as a 500 with reason Unknown.
func (s *Strategy) BeginUpdate(svc, old *corev1.Service, a Allocator) (Release, error) {
	s.DefaultOnRead(old)
	PatchAllocatedValues(svc, old)
	NormalizeClusterIPs(svc, old)
	if err := s.ResolveIPFamilies(svc, old); err != nil {
		return Release{}, err
	}
	if err := s.updateClusterIPs(svc, old, a); err != nil {
		return Release{}, err
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		if err := updateNodePorts(svc, old, a); err != nil {
			return Release{}, err
		}
	}
	if !NeedsHealthCheck(old) && NeedsHealthCheck(svc) {
		if err := allocHealthCheckNodePort(svc, a); err != nil {
			return Release{}, apierrors.NewInternalError(err)
		}
	}
	return ReleasedOnUpdate(svc, old), nil
}

// ReleasedOnUpdate returns what an update from old to svc frees once written (SVC-U-05),
// given svc as BeginUpdate left it: all cluster IPs when becoming ExternalName, the
// secondary IP on a downgrade to single-stack, every node port when leaving
// NodePort/LoadBalancer for ClusterIP/ExternalName, node ports no longer used otherwise, and
// the healthCheckNodePort when LB+Local ends.
func ReleasedOnUpdate(svc, old *corev1.Service) Release {
	var r Release
	if !isMatchingPreferDualStackClusterIPFields(svc, old) &&
		old.Spec.Type != corev1.ServiceTypeExternalName &&
		!(len(old.Spec.ClusterIPs) > 0 && old.Spec.ClusterIPs[0] == corev1.ClusterIPNone) {
		switch {
		case svc.Spec.Type == corev1.ServiceTypeExternalName:
			r.ClusterIPs = map[corev1.IPFamily]string{}
			for i, fam := range old.Spec.IPFamilies {
				if i < len(old.Spec.ClusterIPs) {
					r.ClusterIPs[fam] = old.Spec.ClusterIPs[i]
				}
			}
		case len(old.Spec.IPFamilies) == 2 && len(svc.Spec.IPFamilies) == 1 && len(old.Spec.ClusterIPs) > 1:
			r.ClusterIPs = map[corev1.IPFamily]string{old.Spec.IPFamilies[1]: old.Spec.ClusterIPs[1]}
		}
	}
	oldNodePorts := collectNodePorts(old)
	oldHadNodePorts := old.Spec.Type == corev1.ServiceTypeNodePort || old.Spec.Type == corev1.ServiceTypeLoadBalancer
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName:
		if oldHadNodePorts {
			r.NodePorts = append(r.NodePorts, oldNodePorts...)
		}
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		newNodePorts := collectNodePorts(svc)
		for _, p := range oldNodePorts {
			if !slices.Contains(newNodePorts, p) {
				r.NodePorts = append(r.NodePorts, p)
			}
		}
	}
	if NeedsHealthCheck(old) && !NeedsHealthCheck(svc) {
		r.NodePorts = append(r.NodePorts, int(old.Spec.HealthCheckNodePort))
	}
	return r
}

// ReleasedOnDelete returns what deleting svc frees (kube's releaseAllocatedResources, run
// after DefaultOnRead): its cluster IPs unless headless or ExternalName, every node port, and
// the healthCheckNodePort when it needs one.
func (s *Strategy) ReleasedOnDelete(svc *corev1.Service) Release {
	svc = svc.DeepCopy()
	s.DefaultOnRead(svc)
	var r Release
	if svc.Spec.Type != corev1.ServiceTypeExternalName &&
		!(len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone) && len(svc.Spec.ClusterIPs) > 0 {
		r.ClusterIPs = map[corev1.IPFamily]string{}
		for _, ip := range svc.Spec.ClusterIPs {
			if netutils.IsIPv6String(ip) {
				r.ClusterIPs[corev1.IPv6Protocol] = ip
			} else {
				r.ClusterIPs[corev1.IPv4Protocol] = ip
			}
		}
	}
	r.NodePorts = collectNodePorts(svc)
	if NeedsHealthCheck(svc) && svc.Spec.HealthCheckNodePort > 0 {
		r.NodePorts = append(r.NodePorts, int(svc.Spec.HealthCheckNodePort))
	}
	return r
}

func collectNodePorts(svc *corev1.Service) []int {
	out := []int{}
	for i := range svc.Spec.Ports {
		if np := svc.Spec.Ports[i].NodePort; np != 0 {
			out = append(out, int(np))
		}
	}
	return out
}

// allocClusterIPs allocates one IP per family, filling clusterIPs[i] and clusterIP.
func (s *Strategy) allocClusterIPs(svc *corev1.Service, a Allocator) error {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone {
		return nil
	}
	if svc.Spec.ClusterIPs == nil {
		svc.Spec.ClusterIPs = make([]string, 0, len(svc.Spec.IPFamilies))
	}
	for i := range svc.Spec.IPFamilies {
		if i > len(svc.Spec.ClusterIPs)-1 {
			svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, "")
		}
	}
	// Allocate everything first: on failure the error shows clusterIPs with "" markers.
	got := make([]string, len(svc.Spec.IPFamilies))
	for i, fam := range svc.Spec.IPFamilies {
		ip, err := s.allocIP(svc, fam, svc.Spec.ClusterIPs[i], a)
		if err != nil {
			return err
		}
		got[i] = ip
	}
	for i, ip := range got {
		svc.Spec.ClusterIPs[i] = ip
		if i == 0 {
			svc.Spec.ClusterIP = ip
		}
	}
	return nil
}

// allocIP reserves want (or the next free IP when want is "") and reports kube's errors.
func (s *Strategy) allocIP(svc *corev1.Service, fam corev1.IPFamily, want string, a Allocator) (string, error) {
	if !s.configured[fam] {
		// Reachable when an update turns a PreferDualStack service headless without a
		// selector on a single-stack cluster; kube-apiserver panics (a 500) there.
		return "", apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP for Service %q: %s is not configured on this cluster", svc.Name, fam))
	}
	ipsPath := field.NewPath("spec", "clusterIPs")
	if want == "" {
		ip, err := a.AllocateNextClusterIP(fam)
		if err != nil {
			if !errors.Is(err, ErrRangeFull) {
				return "", invalid(svc, field.ErrorList{field.Invalid(ipsPath, svc.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP: %v", err))})
			}
			return "", apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP for Service %q: %w", svc.Name, err))
		}
		return ip.String(), nil
	}
	parsed := netutils.ParseIPSloppy(want)
	if parsed == nil {
		return "", apierrors.NewInternalError(fmt.Errorf("failed to parse service IP %q", want))
	}
	if err := a.AllocateClusterIP(fam, parsed); err != nil {
		return "", invalid(svc, field.ErrorList{field.Invalid(ipsPath, svc.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP %v: %v", want, err))})
	}
	return want, nil
}

// updateClusterIPs is kube's updateClusterIPs minus the release bookkeeping (see
// ReleasedOnUpdate): allocate everything when leaving ExternalName, the secondary IP on an
// upgrade to dual-stack, nothing otherwise.
func (s *Strategy) updateClusterIPs(svc, old *corev1.Service, a Allocator) error {
	if isMatchingPreferDualStackClusterIPFields(svc, old) {
		return nil
	}
	if old.Spec.Type == corev1.ServiceTypeExternalName && svc.Spec.Type != corev1.ServiceTypeExternalName {
		return s.allocClusterIPs(svc, a)
	}
	if len(old.Spec.ClusterIPs) > 0 && old.Spec.ClusterIPs[0] == corev1.ClusterIPNone {
		return nil
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if len(old.Spec.IPFamilies) == 1 && len(svc.Spec.IPFamilies) == 2 {
		if len(svc.Spec.ClusterIPs) < 2 {
			svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, "")
		}
		ip, err := s.allocIP(svc, svc.Spec.IPFamilies[1], svc.Spec.ClusterIPs[1], a)
		if err != nil {
			return err
		}
		svc.Spec.ClusterIPs[1] = ip
	}
	return nil
}

// initNodePorts gives every port a node port on create; ports with the same port number
// (e.g. 53/TCP and 53/UDP) share one, and a value requested on any of them wins.
func initNodePorts(svc *corev1.Service, a Allocator) error {
	byPort := map[int32]int32{}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.NodePort == 0 && !NeedsNodePorts(svc) {
			continue // respect requests, allocate nothing new
		}
		allocated := byPort[sp.Port]
		switch {
		case allocated == 0:
			if np := findRequestedNodePort(sp.Port, svc.Spec.Ports); np != 0 {
				if err := a.AllocateNodePort(int(np)); err != nil {
					return invalid(svc, field.ErrorList{field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), int(np), err.Error())})
				}
				sp.NodePort = np
			} else {
				np, err := a.AllocateNextNodePort()
				if err != nil {
					return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %w", err))
				}
				sp.NodePort = int32(np)
			}
			byPort[sp.Port] = sp.NodePort
		case sp.NodePort == 0:
			sp.NodePort = allocated
		case sp.NodePort != allocated:
			if err := a.AllocateNodePort(int(sp.NodePort)); err != nil {
				return invalid(svc, field.ErrorList{field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), sp.NodePort, err.Error())})
			}
		}
	}
	return nil
}

func findRequestedNodePort(port int32, ports []corev1.ServicePort) int32 {
	for _, sp := range ports {
		if sp.Port == port && sp.NodePort != 0 {
			return sp.NodePort
		}
	}
	return 0
}

// updateNodePorts reserves node ports new to this service and allocates missing ones.
func updateNodePorts(svc, old *corev1.Service, a Allocator) error {
	oldNodePorts := collectNodePorts(old)
	type protoPort struct {
		Protocol corev1.Protocol
		NodePort int32
	}
	var seen []protoPort
	reserved := map[int]bool{}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.NodePort == 0 && !NeedsNodePorts(svc) {
			continue
		}
		np := protoPort{Protocol: sp.Protocol, NodePort: sp.NodePort}
		if np.NodePort != 0 {
			if !slices.Contains(oldNodePorts, int(np.NodePort)) && !reserved[int(np.NodePort)] {
				if err := a.AllocateNodePort(int(np.NodePort)); err != nil {
					return invalid(svc, field.ErrorList{field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), np.NodePort, err.Error())})
				}
				reserved[int(np.NodePort)] = true
			}
		} else {
			n, err := a.AllocateNextNodePort()
			if err != nil {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %w", err))
			}
			sp.NodePort = int32(n)
			np.NodePort = sp.NodePort
		}
		if slices.Contains(seen, np) {
			return fmt.Errorf("duplicate nodePort: %v", np)
		}
		seen = append(seen, np)
	}
	return nil
}

// allocHealthCheckNodePort reserves the requested healthCheckNodePort or allocates one.
func allocHealthCheckNodePort(svc *corev1.Service, a Allocator) error {
	if hc := svc.Spec.HealthCheckNodePort; hc != 0 {
		if err := a.AllocateNodePort(int(hc)); err != nil {
			return fmt.Errorf("failed to allocate requested HealthCheck NodePort %v: %v", hc, err)
		}
		return nil
	}
	hc, err := a.AllocateNextNodePort()
	if err != nil {
		return fmt.Errorf("failed to allocate a HealthCheck NodePort %v: %v", hc, err)
	}
	svc.Spec.HealthCheckNodePort = int32(hc)
	return nil
}
