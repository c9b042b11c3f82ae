// Package all registers the registry.Kind of every resource in internal/resource.All: the
// single place the API server wiring gets per-kind write semantics from.
//
// It imports every registry sub-package; only the API server wiring (cmd, apiserver setup)
// should import it.
package all

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/registry"
	"kubesvc/internal/registry/apps"
	"kubesvc/internal/registry/configmap"
	"kubesvc/internal/registry/endpoints"
	"kubesvc/internal/registry/endpointslice"
	"kubesvc/internal/registry/event"
	"kubesvc/internal/registry/ingress"
	"kubesvc/internal/registry/lease"
	"kubesvc/internal/registry/namespace"
	"kubesvc/internal/registry/node"
	"kubesvc/internal/registry/pod"
	"kubesvc/internal/registry/replicationcontroller"
	"kubesvc/internal/registry/secret"
	"kubesvc/internal/registry/service"
	"kubesvc/internal/registry/serviceaccount"
	"kubesvc/internal/resource"
)

// Config is the cluster configuration some kinds depend on. The zero value uses the
// defaults of each kind (services: service.DefaultServiceCIDR).
type Config struct {
	// ServiceCIDRs are the --service-cidr ranges handed to the services strategy.
	ServiceCIDRs []netip.Prefix
}

// Validate reports a configuration the kinds cannot be built from (bad service CIDRs).
func (c Config) Validate() error {
	if err := (service.Config{ServiceCIDRs: c.ServiceCIDRs}).Validate(); err != nil {
		return fmt.Errorf("registry config: %w", err)
	}
	return nil
}

// Kinds returns a new map with the Kind of every resource in resource.All, keyed by group
// and resource ("pods", "deployments.apps"). It panics if cfg.Validate fails (check the
// configuration at startup). Kinds built here share no mutable state with other calls.
func Kinds(cfg Config) map[schema.GroupResource]registry.Kind {
	core := func(r string) schema.GroupResource { return schema.GroupResource{Resource: r} }
	kinds := map[schema.GroupResource]registry.Kind{
		core("configmaps"):             configmap.NewKind(),
		core("endpoints"):              endpoints.NewKind(),
		core("events"):                 event.NewKind(),
		core("namespaces"):             namespace.NewKind(),
		core("nodes"):                  node.NewKind(),
		core("pods"):                   pod.NewKind(),
		core("replicationcontrollers"): replicationcontroller.NewKind(),
		core("secrets"):                secret.NewKind(),
		core("serviceaccounts"):        serviceaccount.NewKind(),
		core("services"):               service.NewKind(service.Config{ServiceCIDRs: cfg.ServiceCIDRs}),

		{Group: "apps", Resource: "deployments"}: apps.NewDeploymentKind(),
		{Group: "apps", Resource: "replicasets"}: apps.NewReplicaSetKind(),

		{Group: "coordination.k8s.io", Resource: "leases"}:       lease.NewKind(),
		{Group: "discovery.k8s.io", Resource: "endpointslices"}:  endpointslice.NewKind(),
		{Group: "networking.k8s.io", Resource: "ingresses"}:      ingress.NewKind(),
		{Group: "networking.k8s.io", Resource: "ingressclasses"}: ingress.NewClassKind(),
	}
	// Every catalog entry must have semantics; fall back to metadata-only validation for a
	// resource added to the catalog before its strategy exists.
	for _, info := range resource.All {
		gr := info.GroupResource()
		if _, ok := kinds[gr]; !ok {
			kinds[gr] = registry.Kind{Strategy: Generic{Namespaced: info.Namespaced}}
		}
	}
	return kinds
}

var defaultKinds = Kinds(Config{})

// Lookup returns the Kind of gr built with the zero Config, and whether gr is a served
// resource. Use Kinds to pass service CIDRs.
func Lookup(gr schema.GroupResource) (registry.Kind, bool) {
	k, ok := defaultKinds[gr]
	return k, ok
}
