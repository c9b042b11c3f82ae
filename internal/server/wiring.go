package server

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/registry"
)

// kinds returns the per-resource semantics.
func kinds(cfg *Config) map[schema.GroupResource]registry.Kind { return nil }

func discoveryHandler() http.Handler { return nil }

func openapiHandler() http.Handler { return nil }
