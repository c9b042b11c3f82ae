package svcdiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// corpusCase is one named request sequence of the corpus. Every case runs in a fresh
// namespace of its own on both servers; "$NS" in names and bodies is replaced by it.
type corpusCase struct {
	Name string `json:"name"`
	// Cluster selects the server pair: "" (single-stack IPv4) or "dual" (IPv4,IPv6).
	Cluster string `json:"cluster,omitempty"`
	Steps   []step `json:"steps"`

	file string
}

// step is one request.
type step struct {
	// Verb is create, update (PUT), patch, apply (server-side apply), delete, get or status
	// (PUT of the status subresource).
	Verb string `json:"verb"`
	// Resource is services (default), endpoints, endpointslices, ingresses or ingressclasses.
	Resource string `json:"resource,omitempty"`
	// Name of the object; default metadata.name of Body.
	Name string `json:"name,omitempty"`
	// PatchType is strategic (default), merge or json.
	PatchType string `json:"patchType,omitempty"`
	// Base "current" makes update and status read the object and merge Body (RFC 7386) onto
	// it before the PUT, like a client's read-modify-write; otherwise Body is sent as is.
	Base   string `json:"base,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
	// Query is extra URL query, e.g. "fieldValidation=Strict".
	Query string          `json:"query,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// resourceInfo says where a resource is served and what its objects are.
type resourceInfo struct {
	prefix     string
	apiVersion string
	kind       string
	namespaced bool
}

var resources = map[string]resourceInfo{
	"services":       {"/api/v1", "v1", "Service", true},
	"endpoints":      {"/api/v1", "v1", "Endpoints", true},
	"endpointslices": {"/apis/discovery.k8s.io/v1", "discovery.k8s.io/v1", "EndpointSlice", true},
	"ingresses":      {"/apis/networking.k8s.io/v1", "networking.k8s.io/v1", "Ingress", true},
	"ingressclasses": {"/apis/networking.k8s.io/v1", "networking.k8s.io/v1", "IngressClass", false},
}

// loadCorpus reads every testdata/*.yaml file (a YAML list of cases), in file order.
func loadCorpus(dir string) ([]corpusCase, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var all []corpusCase
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read corpus: %w", err)
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("corpus %s: %w", f, err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		var cases []corpusCase
		if err := dec.Decode(&cases); err != nil {
			return nil, fmt.Errorf("corpus %s: %w", f, err)
		}
		for i := range cases {
			c := &cases[i]
			c.file = filepath.Base(f)
			if c.Name == "" || len(c.Steps) == 0 {
				return nil, fmt.Errorf("corpus %s: case %d has no name or no steps", f, i)
			}
			if prev, dup := seen[c.Name]; dup {
				return nil, fmt.Errorf("corpus %s: case %q already defined in %s", f, c.Name, prev)
			}
			seen[c.Name] = c.file
			for j := range c.Steps {
				s := &c.Steps[j]
				if s.Resource == "" {
					s.Resource = "services"
				}
				if _, ok := resources[s.Resource]; !ok {
					return nil, fmt.Errorf("corpus %s: case %q step %d: unknown resource %q", f, c.Name, j, s.Resource)
				}
				switch s.Verb {
				case "create", "update", "patch", "apply", "delete", "get", "status":
				default:
					return nil, fmt.Errorf("corpus %s: case %q step %d: unknown verb %q", f, c.Name, j, s.Verb)
				}
			}
		}
		all = append(all, cases...)
	}
	return all, nil
}

// substitute replaces $NS in s.
func substitute(s, ns string) string { return strings.ReplaceAll(s, "$NS", ns) }

// objectName returns the step's object name: Name, else metadata.name of the body.
func (s step) objectName(ns string) string {
	if s.Name != "" {
		return substitute(s.Name, ns)
	}
	var m struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal([]byte(substitute(string(s.Body), ns)), &m)
	return m.Metadata.Name
}

// literals collects every string and number of the case's request bodies: a value the user
// asked for is compared as is, never masked as "allocated".
func (c corpusCase) literals(ns string) map[string]bool {
	out := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			out[v] = true
		case float64:
			out[fmt.Sprint(int64(v))] = true
		}
	}
	for _, s := range c.Steps {
		if len(s.Body) == 0 {
			continue
		}
		var v any
		if json.Unmarshal([]byte(substitute(string(s.Body), ns)), &v) == nil {
			walk(v)
		}
	}
	return out
}
