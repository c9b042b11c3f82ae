// Package service is the registry strategy of core/v1 Services, ported from kube-apiserver
// v1.37.2 so that defaults, validation messages, field paths and error types match it cause
// by cause: defaulting, create/update/status preparation and validation, IP-family
// resolution against the cluster's service CIDRs, the idempotent re-apply rules
// (patchAllocatedValues, normalizeClusterIPs), the type-transition wipes
// (dropTypeDependentFields) and the allocation decisions of the service REST storage,
// driven through a small Allocator interface the cluster-IP / node-port allocator implements.
//
// Upstream files followed (k8s.io/kubernetes v1.37.2): pkg/registry/core/service/strategy.go,
// pkg/registry/core/service/storage/storage.go and alloc.go, pkg/apis/core/v1/defaults.go,
// pkg/apis/core/validation/validation.go, pkg/api/service/util.go and warnings.go.
//
// May be imported by the API server wiring (registry/all), the allocator and controllers; it
// imports only internal/registry, internal/registry/endpoints and k8s.io api, apimachinery
// and utils.
package service

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubesvc/internal/registry"
)

// DefaultServiceCIDR is the service range used when Config.ServiceCIDRs is empty (kubeadm's
// and kubesvc's --service-cidr default).
var DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")

// Config is the cluster configuration the service strategy depends on.
type Config struct {
	// ServiceCIDRs are the --service-cidr ranges: one (single-stack) or two of different
	// families (dual-stack). The first one's family is the primary (default) family. Empty
	// means [DefaultServiceCIDR].
	ServiceCIDRs []netip.Prefix
}

// Validate reports a configuration kube-apiserver would refuse to start with.
func (c Config) Validate() error {
	if len(c.ServiceCIDRs) > 2 {
		return fmt.Errorf("service CIDRs: at most 2 ranges are allowed, got %d", len(c.ServiceCIDRs))
	}
	for _, p := range c.ServiceCIDRs {
		if !p.IsValid() {
			return fmt.Errorf("service CIDRs: invalid prefix %v", p)
		}
	}
	if len(c.ServiceCIDRs) == 2 && c.ServiceCIDRs[0].Addr().Is4() == c.ServiceCIDRs[1].Addr().Is4() {
		return fmt.Errorf("service CIDRs: %v and %v must be of different IP families", c.ServiceCIDRs[0], c.ServiceCIDRs[1])
	}
	return nil
}

func familyOfPrefix(p netip.Prefix) corev1.IPFamily {
	if p.Addr().Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// Strategy is the write behaviour of Services. It implements registry.Strategy plus the
// service-only steps kube-apiserver's service storage runs around it (BeginCreate,
// BeginUpdate, DefaultOnRead, ReleasedOnDelete). Create it with NewStrategy; it is
// immutable and safe for concurrent use.
//
// The REST handler must run a service write in exactly kube-apiserver's order, because some
// messages depend on whether allocation already happened (e.g. a create with an IPv6 clusterIP
// on an IPv4 cluster fails in IP-family resolution with only that cause, before validation):
//
//	create: decode → Default → (metadata: uid, creationTimestamp, generateName)
//	        → BeginCreate(svc, alloc)        normalizeClusterIPs, ResolveIPFamilies, allocate
//	                                         clusterIPs, nodePorts, healthCheckNodePort;
//	                                         an error is returned as is (422 or 500)
//	        → PrepareForCreate → Validate (422 with the causes; the generic metadata checks
//	          run only if Validate found nothing) → write
//	        → on success keep the allocations, on failure (or dry-run) revert them
//	        → DefaultOnRead on the returned object
//	update: read old → apply body/patch → Default → BeginUpdate(svc, old, alloc)
//	                                         DefaultOnRead(old), PatchAllocatedValues,
//	                                         NormalizeClusterIPs, ResolveIPFamilies, allocate
//	                                         what the update needs; returns the Release
//	        → PrepareForUpdate (generation kept, status from old, dropTypeDependentFields)
//	        → ValidateUpdate → write
//	        → on success apply the Release (free IPs/ports), on failure revert allocations
//	        → DefaultOnRead on the returned object
//	status: Default → status PrepareForUpdate (spec from old) → status ValidateUpdate → write
//	        (no allocation, no BeginUpdate)
//	delete: after a successful (non dry-run) delete, free ReleasedOnDelete(svc) (computed on
//	        DefaultOnRead(svc)); the Endpoints object of the same name is deleted too.
//
// Services are created on update (PUT to a missing name) like kube (AllowCreateOnUpdate);
// that path is the create path.
type Strategy struct {
	primary    corev1.IPFamily
	configured map[corev1.IPFamily]bool
}

var _ registry.Strategy = (*Strategy)(nil)

// NewStrategy returns the service strategy for cfg. It panics if cfg.Validate fails: the
// configuration is checked at startup, so this is a programmer error.
func NewStrategy(cfg Config) *Strategy {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("service.NewStrategy: %v", err))
	}
	cidrs := cfg.ServiceCIDRs
	if len(cidrs) == 0 {
		cidrs = []netip.Prefix{DefaultServiceCIDR}
	}
	s := &Strategy{primary: familyOfPrefix(cidrs[0]), configured: map[corev1.IPFamily]bool{}}
	for _, p := range cidrs {
		s.configured[familyOfPrefix(p)] = true
	}
	return s
}

// NewKind returns the registry description of services: strategy, status strategy, field
// selectors (metadata.name, metadata.namespace, spec.clusterIP, spec.type) and DNS-label
// names. It panics on an invalid cfg (see NewStrategy).
func NewKind(cfg Config) registry.Kind {
	s := NewStrategy(cfg)
	return registry.Kind{Strategy: s, Status: StatusStrategy{}, Fields: Fields, NameIsDNSLabel: true}
}

// PrimaryIPFamily is the family of the first service CIDR.
func (s *Strategy) PrimaryIPFamily() corev1.IPFamily { return s.primary }

// IsDualStack reports whether the cluster has service CIDRs of both families.
func (s *Strategy) IsDualStack() bool { return len(s.configured) == 2 }

// Default applies SetObjectDefaults_Service (see SetDefaults).
func (s *Strategy) Default(obj runtime.Object) { SetDefaults(obj.(*corev1.Service)) }

// PrepareForCreate clears status, as kube's svcStrategy.PrepareForCreate does. Everything
// else a create needs (clusterIPs, families, allocation) happens in BeginCreate, before.
func (s *Strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	obj.(*corev1.Service).Status = corev1.ServiceStatus{}
}

// PrepareForUpdate keeps metadata.generation (services never bump it), takes status from old
// and wipes the type-dependent fields a type change made meaningless (DropTypeDependentFields).
func (s *Strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	newSvc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	newSvc.Generation = oldSvc.Generation
	newSvc.Status = oldSvc.Status
	DropTypeDependentFields(newSvc, oldSvc)
}

// Validate is kube's ValidateServiceCreate.
func (s *Strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	return ValidateServiceCreate(obj.(*corev1.Service))
}

// ValidateUpdate is kube's ValidateServiceUpdate.
func (s *Strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	return ValidateServiceUpdate(obj.(*corev1.Service), old.(*corev1.Service))
}

// WarningsOnCreate returns the warnings kube-apiserver sends for a new Service.
func (s *Strategy) WarningsOnCreate(ctx context.Context, obj runtime.Object) []string {
	return Warnings(obj.(*corev1.Service))
}

// WarningsOnUpdate returns the warnings kube-apiserver sends for an updated Service.
func (s *Strategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	return Warnings(obj.(*corev1.Service))
}

// StatusStrategy is the write behaviour of services/status. The zero value is ready to use.
type StatusStrategy struct{}

var _ registry.StatusStrategy = StatusStrategy{}

// PrepareForUpdate keeps the spec (and generation) of old: a status write cannot change it.
func (StatusStrategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	newSvc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	newSvc.Generation = oldSvc.Generation
	newSvc.Spec = oldSvc.Spec
}

// ValidateUpdate is kube's ValidateServiceStatusUpdate.
func (StatusStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	return ValidateServiceStatusUpdate(obj.(*corev1.Service), old.(*corev1.Service))
}

// WarningsOnUpdate warns about non-canonical load-balancer ingress IPs.
func (StatusStrategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string {
	svc := obj.(*corev1.Service)
	var warnings []string
	p := field.NewPath("status", "loadBalancer", "ingress")
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if len(ing.IP) > 0 {
			warnings = append(warnings, utilvalidation.GetWarningsForIP(p.Index(i), ing.IP)...)
		}
	}
	return warnings
}

// Fields is the field-selector set of a Service (pkg/registry/core/service SelectableFields).
func Fields(obj runtime.Object) fields.Set {
	svc := obj.(*corev1.Service)
	return fields.Set{
		"metadata.name":      svc.Name,
		"metadata.namespace": svc.Namespace,
		"spec.clusterIP":     svc.Spec.ClusterIP,
		"spec.type":          string(svc.Spec.Type),
	}
}
