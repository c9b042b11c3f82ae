package server

import (
	"net/http"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/discovery"
	"kubesvc/internal/openapi"
	"kubesvc/internal/registry"
	"kubesvc/internal/registry/all"
)

// kinds returns the per-resource semantics for this configuration.
func kinds(cfg *Config) map[schema.GroupResource]registry.Kind {
	var cidrs []netip.Prefix
	for _, c := range strings.Split(cfg.ServiceCIDR, ",") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(c)); err == nil {
			cidrs = append(cidrs, p.Masked())
		}
	}
	return all.Kinds(all.Config{ServiceCIDRs: cidrs})
}

func discoveryHandler(serverAddress string) http.Handler {
	return discovery.NewHandler(discovery.Config{ServerAddress: serverAddress})
}

func openapiHandler() (http.Handler, error) { return openapi.NewHandler() }
