package openapi

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode"

	restful "github.com/emicklei/go-restful/v3"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"kubesvc/internal/resource"
)

// newScheme registers the Go types of every served group (plus autoscaling/v1 for Scale). It
// decides which schemas carry x-kubernetes-group-version-kind, and with which GVKs.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme,
		appsv1.AddToScheme,
		autoscalingv1.AddToScheme,
		coordinationv1.AddToScheme,
		discoveryv1.AddToScheme,
		networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building scheme: %w", err)
		}
	}
	return s, nil
}

// definitionNamer names definitions after their OpenAPI model name and tags the ones the scheme
// knows with x-kubernetes-group-version-kind, like apiserver's DefinitionNamer.
type definitionNamer struct {
	gvks map[string][]metav1.GroupVersionKind
}

func newDefinitionNamer(s *runtime.Scheme) (*definitionNamer, error) {
	n := &definitionNamer{gvks: map[string][]metav1.GroupVersionKind{}}
	for gvk := range s.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		name, err := s.ToOpenAPIDefinitionName(gvk)
		if err != nil {
			return nil, fmt.Errorf("definition name of %v: %w", gvk, err)
		}
		n.gvks[name] = append(n.gvks[name], metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind})
	}
	for _, l := range n.gvks {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Group != l[j].Group {
				return l[i].Group < l[j].Group
			}
			if l[i].Version != l[j].Version {
				return l[i].Version < l[j].Version
			}
			return l[i].Kind < l[j].Kind
		})
	}
	return n, nil
}

// GetDefinitionName implements common.Config.GetDefinitionName.
func (n *definitionNamer) GetDefinitionName(name string) (string, spec.Extensions) {
	if strings.Contains(name, "/") {
		name = util.ToRESTFriendlyName(name)
	}
	l, ok := n.gvks[name]
	if !ok {
		return name, nil
	}
	j := make([]interface{}, 0, len(l))
	for _, gvk := range l {
		j = append(j, map[string]interface{}{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind})
	}
	return name, spec.Extensions{extensionGVK: j}
}

// operationVerbs are the prefixes an installer operation name starts with.
var operationVerbs = util.NewTrie([]string{"get", "log", "read", "replace", "patch", "delete", "deletecollection", "watch", "connect", "proxy", "list", "create", "patch"})

// operationIDAndTags turns an installer operation name into kube's operation ID and tag:
// "readNamespacedService" on /api/v1/... becomes "readCoreV1NamespacedService", tag "core_v1".
func operationIDAndTags(r common.Route) (string, []string, error) {
	op := r.OperationName()
	var tags []string
	prefix, ok := operationVerbs.GetPrefix(op)
	if !ok {
		return op, tags, fmt.Errorf("operation %q does not start with a verb", op)
	}
	op = op[len(prefix):]
	parts := strings.Split(strings.Trim(r.Path(), "/"), "/")
	if len(parts) >= 1 && parts[0] == "api" {
		parts = append([]string{"apis", "core"}, parts[1:]...)
	}
	if len(parts) >= 2 && parts[0] == "apis" {
		trimmed := strings.TrimSuffix(parts[1], ".k8s.io")
		prefix += toValidOperationID(trimmed, prefix != "")
		tag := toValidOperationID(trimmed, false)
		if len(parts) > 2 {
			prefix += toValidOperationID(parts[2], prefix != "")
			tag += "_" + toValidOperationID(parts[2], false)
		}
		tags = append(tags, tag)
	} else if len(parts) >= 1 {
		tags = append(tags, toValidOperationID(parts[0], false))
	}
	return prefix + toValidOperationID(op, prefix != ""), tags, nil
}

// toValidOperationID removes punctuation and camel-cases what follows it.
func toValidOperationID(s string, capitalizeFirst bool) string {
	var b bytes.Buffer
	capitalize := capitalizeFirst
	for i, r := range s {
		if unicode.IsLetter(r) || r == '_' || (i != 0 && unicode.IsDigit(r)) {
			if capitalize {
				b.WriteRune(unicode.ToUpper(r))
				capitalize = false
			} else {
				b.WriteRune(r)
			}
		} else {
			capitalize = true
		}
	}
	return b.String()
}

// info is the document info kube-apiserver reports.
func info() *spec.Info {
	return &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: "unversioned"}}
}

// catalog is what the documents are built from.
type catalog struct {
	scheme *runtime.Scheme
	namer  *definitionNamer
	gvs    []schema.GroupVersion
	byGV   map[schema.GroupVersion][]*resource.Info
}

func newCatalog(infos []*resource.Info) (*catalog, error) {
	s, err := newScheme()
	if err != nil {
		return nil, err
	}
	n, err := newDefinitionNamer(s)
	if err != nil {
		return nil, err
	}
	c := &catalog{scheme: s, namer: n, byGV: map[schema.GroupVersion][]*resource.Info{}}
	for _, i := range infos {
		gv := i.GroupVersion()
		if _, ok := c.byGV[gv]; !ok {
			c.gvs = append(c.gvs, gv)
		}
		c.byGV[gv] = append(c.byGV[gv], i)
		if _, err := s.New(i.GroupVersionKind()); err != nil {
			return nil, fmt.Errorf("resource %s: %w", i.GroupResource(), err)
		}
	}
	return c, nil
}

// groups returns the served API groups (not the core group) in catalog order.
func (c *catalog) groups() []string {
	var out []string
	seen := map[string]bool{}
	for _, gv := range c.gvs {
		if gv.Group != "" && !seen[gv.Group] {
			seen[gv.Group] = true
			out = append(out, gv.Group)
		}
	}
	return out
}

// v3Paths returns the keys of the /openapi/v3 discovery document, each naming one document:
// "api", "api/v1", "apis", "apis/<group>", "apis/<group>/<version>", "version".
func (c *catalog) v3Paths() []string {
	var out []string
	for _, gv := range c.gvs {
		if gv.Group == "" {
			out = append(out, "api", "api/"+gv.Version)
		}
	}
	out = append(out, "apis")
	for _, g := range c.groups() {
		out = append(out, "apis/"+g)
	}
	for _, gv := range c.gvs {
		if gv.Group != "" {
			out = append(out, strings.TrimPrefix(apiPrefix(gv), "/"))
		}
	}
	return append(out, "version")
}

// services returns the route descriptions of one v3 document path, or of all of them for "".
func (c *catalog) services(path string) ([]*restful.WebService, error) {
	var out []*restful.WebService
	all := path == ""
	if all || path == "api" {
		out = append(out, discoveryService("/api", "get available API versions", "getAPIVersions", metav1.APIVersions{}))
	}
	if all || path == "apis" {
		out = append(out, discoveryService("/apis", "get available API versions", "getAPIVersions", metav1.APIGroupList{}))
	}
	for _, g := range c.groups() {
		if all || path == "apis/"+g {
			out = append(out, discoveryService("/apis/"+g, "get information of a group", "getAPIGroup", metav1.APIGroup{}))
		}
	}
	for _, gv := range c.gvs {
		if all || path == strings.TrimPrefix(apiPrefix(gv), "/") {
			ws, err := groupVersionService(c.scheme, gv, c.byGV[gv])
			if err != nil {
				return nil, err
			}
			out = append(out, ws)
		}
	}
	if all || path == "version" {
		out = append(out, versionService())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no OpenAPI document %q", path)
	}
	return out, nil
}

// v3Config returns a fresh OpenAPI v3 builder configuration (the builders write into it).
func (c *catalog) v3Config() *common.OpenAPIV3Config {
	return &common.OpenAPIV3Config{
		IgnorePrefixes:                 []string{},
		Info:                           info(),
		DefaultResponse:                &spec3.Response{ResponseProps: spec3.ResponseProps{Description: "Default Response."}},
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		GetDefinitionName:              c.namer.GetDefinitionName,
		GetDefinitions:                 GetOpenAPIDefinitions,
	}
}

// v2Config returns a fresh Swagger 2.0 builder configuration, with the bearer-token security
// and 401 response kube-apiserver's authentication options add.
func (c *catalog) v2Config() *common.Config {
	return &common.Config{
		ProtocolList:   []string{"https"},
		IgnorePrefixes: []string{},
		Info:           info(),
		DefaultResponse: &spec.Response{
			ResponseProps: spec.ResponseProps{Description: "Default Response."},
		},
		CommonResponses: map[int]spec.Response{
			401: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}},
		},
		SecurityDefinitions: &spec.SecurityDefinitions{
			"BearerToken": &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
				Type:        "apiKey",
				Name:        "authorization",
				In:          "header",
				Description: "Bearer Token authentication",
			}},
		},
		DefaultSecurity:                []map[string][]string{{"BearerToken": {}}},
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		GetDefinitionName:              c.namer.GetDefinitionName,
		GetDefinitions:                 GetOpenAPIDefinitions,
	}
}

// buildV3 builds the OpenAPI v3 document at /openapi/v3/<path>.
func (c *catalog) buildV3(path string) (*spec3.OpenAPI, error) {
	wss, err := c.services(path)
	if err != nil {
		return nil, err
	}
	doc, err := builder3.BuildOpenAPISpecFromRoutes(restfuladapter.AdaptWebServices(wss), c.v3Config())
	if err != nil {
		return nil, fmt.Errorf("building OpenAPI v3 document %q: %w", path, err)
	}
	return doc, nil
}

// buildV2 builds the Swagger 2.0 document at /openapi/v2.
func (c *catalog) buildV2() (*spec.Swagger, error) {
	wss, err := c.services("")
	if err != nil {
		return nil, err
	}
	doc, err := builder.BuildOpenAPISpecFromRoutes(restfuladapter.AdaptWebServices(wss), c.v2Config())
	if err != nil {
		return nil, fmt.Errorf("building OpenAPI v2 document: %w", err)
	}
	return doc, nil
}

// Schemas returns the OpenAPI v3 schemas of every kind internal/resource.All serves (subresource
// kinds such as autoscaling/v1 Scale included) and of the types they reference, keyed by model
// name (io.k8s.api.core.v1.Service) and tagged with x-kubernetes-group-version-kind. They are
// what kube-apiserver feeds server-side apply: pass them to
// k8s.io/apimachinery/pkg/util/managedfields.NewTypeConverter. Each call builds them anew, so
// callers should keep the result (or the converter) rather than call it per request.
func Schemas() (map[string]*spec.Schema, error) {
	c, err := newCatalog(resource.All)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	var names []string
	seen := map[string]bool{}
	add := func(gvk schema.GroupVersionKind) error {
		name, err := c.scheme.ToOpenAPIDefinitionName(gvk)
		if err != nil {
			return fmt.Errorf("openapi: model name of %s: %w", gvk, err)
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		return nil
	}
	for _, info := range resource.All {
		if err := add(info.GroupVersionKind()); err != nil {
			return nil, err
		}
		for i := range info.Subresources {
			if err := add(subresourceKind(info.GroupVersion(), &info.Subresources[i])); err != nil {
				return nil, err
			}
		}
	}
	schemas, err := builder3.BuildOpenAPIDefinitionsForResources(c.v3Config(), names...)
	if err != nil {
		return nil, fmt.Errorf("openapi: building schemas: %w", err)
	}
	return schemas, nil
}
