package discovery

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/munnerz/goautoneg"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"sigs.k8s.io/yaml"

	"kubesvc/internal/resource"
)

// Config configures the discovery handler. The zero value serves resource.All and reports no
// server address.
type Config struct {
	// ServerAddress is the host:port clients reach the API server at. /api reports it as
	// serverAddressByClientCIDRs for clientCIDR 0.0.0.0/0; empty reports no address.
	ServerAddress string
	// Resources are the served resources; nil means resource.All.
	Resources []*resource.Info
}

// Media types discovery negotiates, in kube-apiserver's order (a wildcard picks JSON).
const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

var mediaTypes = []string{mediaJSON, mediaYAML, mediaProtobuf}

// The aggregated discovery type clients ask for with Accept: ...;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList.
const (
	aggregatedGroup = "apidiscovery.k8s.io"
	aggregatedKind  = "APIGroupDiscoveryList"
)

// encoded is one discovery document in every format it can be served in.
type encoded struct {
	bodies map[string][]byte // by media type
	etag   string            // aggregated documents only; without quotes
	params string            // content type parameters, e.g. ";g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
}

// document is a discovery path's legacy form and, for /api and /apis, its aggregated forms.
type document struct {
	legacy     *encoded
	aggregated map[string]*encoded // by apidiscovery version: v2, v2beta1
}

// Handler serves the discovery documents. Create it with NewHandler; it is immutable and safe
// for concurrent use.
type Handler struct {
	docs map[string]*document // by path without trailing slash
	err  error                // encoding failure at construction, served as 500
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the discovery handler (a *Handler), with every document built and encoded
// once from cfg: they are small (a few KB each) and never change. Should encoding fail, which
// only a broken catalog could cause, the handler answers 500.
func NewHandler(cfg Config) http.Handler {
	infos := cfg.Resources
	if infos == nil {
		infos = resource.All
	}
	h, err := build(newCatalog(infos), cfg.ServerAddress)
	if err != nil {
		return &Handler{err: err}
	}
	return h
}

func build(c *catalog, serverAddress string) (*Handler, error) {
	h := &Handler{docs: map[string]*document{}}
	enc := newEncoder()

	cidrs := []metav1.ServerAddressByClientCIDR{}
	if serverAddress != "" {
		cidrs = append(cidrs, metav1.ServerAddressByClientCIDR{ClientCIDR: "0.0.0.0/0", ServerAddress: serverAddress})
	}

	// /api and /api/v1: kube-apiserver's legacy handlers leave apiVersion out of these.
	apiVersions := &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, ServerAddressByClientCIDRs: cidrs}
	coreAgg := &apidiscoveryv2.APIGroupDiscoveryList{Items: []apidiscoveryv2.APIGroupDiscovery{}}
	if c.core != nil {
		apiVersions.Versions = append(apiVersions.Versions, c.core.versions...)
		coreAgg.Items = append(coreAgg.Items, c.core.groupDiscovery())
		for _, v := range c.core.versions {
			list := &metav1.APIResourceList{
				TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList"},
				GroupVersion: v,
				APIResources: apiResources(c.core.infos[v]),
			}
			legacy, err := enc.legacy(list)
			if err != nil {
				return nil, err
			}
			h.docs["/api/"+v] = &document{legacy: legacy}
		}
	}
	if err := h.addRoot(enc, "/api", apiVersions, coreAgg); err != nil {
		return nil, err
	}

	groupList := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}}
	groupsAgg := &apidiscoveryv2.APIGroupDiscoveryList{Items: []apidiscoveryv2.APIGroupDiscovery{}}
	for _, g := range c.groups {
		ag := g.apiGroup()
		groupList.Groups = append(groupList.Groups, ag)
		groupsAgg.Items = append(groupsAgg.Items, g.groupDiscovery())

		ag.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
		legacy, err := enc.legacy(&ag)
		if err != nil {
			return nil, err
		}
		h.docs["/apis/"+g.name] = &document{legacy: legacy}
		for _, v := range g.versions {
			gv := g.groupVersion(v)
			list := &metav1.APIResourceList{
				TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
				GroupVersion: gv.String(),
				APIResources: apiResources(g.infos[v]),
			}
			legacy, err := enc.legacy(list)
			if err != nil {
				return nil, err
			}
			h.docs["/apis/"+gv.String()] = &document{legacy: legacy}
		}
	}
	if err := h.addRoot(enc, "/apis", groupList, groupsAgg); err != nil {
		return nil, err
	}
	return h, nil
}

// addRoot registers /api or /apis with its legacy and aggregated forms.
func (h *Handler) addRoot(enc *encoder, path string, legacyObj runtime.Object, agg *apidiscoveryv2.APIGroupDiscoveryList) error {
	legacy, err := enc.legacy(legacyObj)
	if err != nil {
		return err
	}
	v2, err := enc.aggregated(agg)
	if err != nil {
		return err
	}
	v2beta1, err := enc.aggregatedV2Beta1(agg)
	if err != nil {
		return err
	}
	h.docs[path] = &document{legacy: legacy, aggregated: map[string]*encoded{"v2": v2, "v2beta1": v2beta1}}
	return nil
}

// Handles reports whether path is a discovery document this handler serves; the router sends
// every other /api and /apis path to the REST handlers.
func (h *Handler) Handles(path string) bool {
	_, ok := h.docs[normalize(path)]
	return ok
}

func normalize(path string) string {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	return path
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.err != nil {
		http.Error(w, h.err.Error(), http.StatusInternalServerError)
		return
	}
	doc, ok := h.docs[normalize(r.URL.Path)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			"the server does not allow this method on the requested resource")
		return
	}
	media, aggVersion, ok := negotiate(r.Header.Get("Accept"), doc.aggregated != nil)
	if !ok {
		writeStatus(w, http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
			"only the following media types are accepted: "+strings.Join(mediaTypes, ", "))
		return
	}
	e := doc.legacy
	if aggVersion != "" {
		e = doc.aggregated[aggVersion]
	}
	if e.etag != "" {
		// Aggregated discovery's cache busting (apiserver's ServeHTTPWithETag).
		quoted := strconv.Quote(e.etag)
		w.Header().Set("ETag", quoted)
		w.Header().Set("Vary", "Accept")
		w.Header().Set("Cache-Control", "public")
		if r.Header.Get("If-None-Match") == quoted {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body := e.bodies[media]
	w.Header().Set("Content-Type", media+e.params)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// negotiate picks the media type and, if the client asked for aggregated discovery and the
// path has it, the apidiscovery version, following the Accept clauses in preference order like
// apiserver's NegotiateMediaTypeOptions with DiscoveryEndpointRestrictions. An empty Accept
// means JSON. ok is false when no clause is acceptable.
func negotiate(accept string, aggregatedAllowed bool) (media, aggVersion string, ok bool) {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON, "", true
	}
	for _, c := range goautoneg.ParseAccept(accept) {
		if c.Q == 0 {
			continue
		}
		media := ""
		for _, m := range mediaTypes {
			t, sub, _ := strings.Cut(m, "/")
			if (c.Type == t || c.Type == "*") && (c.SubType == sub || c.SubType == "*") {
				media = m
				break
			}
		}
		if media == "" {
			continue
		}
		as, g, v := c.Params["as"], c.Params["g"], c.Params["v"]
		if as == "" && g == "" && v == "" {
			return media, "", true
		}
		if aggregatedAllowed && as == aggregatedKind && g == aggregatedGroup && (v == "v2" || v == "v2beta1") {
			return media, v, true
		}
	}
	return "", "", false
}

// writeStatus writes a metav1.Status error in JSON.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
	body, _ := json.Marshal(st)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// encoder serializes discovery objects in every media type.
type encoder struct {
	pb *protobuf.Serializer
}

func newEncoder() *encoder {
	s := runtime.NewScheme()
	return &encoder{pb: protobuf.NewSerializer(s, s)}
}

// encode serializes obj as JSON, YAML and protobuf. Protobuf needs a complete type (its
// envelope carries apiVersion and kind), so legacy objects without apiVersion get v1 there.
func (e *encoder) encode(obj runtime.Object) (map[string][]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T as JSON: %w", obj, err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("encoding %T as YAML: %w", obj, err)
	}
	pbObj := obj
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Version == "" {
		pbObj = obj.DeepCopyObject()
		pbObj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: gvk.Kind})
	}
	var pb bytes.Buffer
	if err := e.pb.Encode(pbObj, &pb); err != nil {
		return nil, fmt.Errorf("encoding %T as protobuf: %w", obj, err)
	}
	return map[string][]byte{mediaJSON: j, mediaYAML: y, mediaProtobuf: pb.Bytes()}, nil
}

func (e *encoder) legacy(obj runtime.Object) (*encoded, error) {
	bodies, err := e.encode(obj)
	if err != nil {
		return nil, err
	}
	return &encoded{bodies: bodies}, nil
}

// aggregated encodes an apidiscovery.k8s.io/v2 list with its ETag: the upper-case hex SHA-512
// of the list's JSON, as apiserver's calculateETag.
func (e *encoder) aggregated(list *apidiscoveryv2.APIGroupDiscoveryList) (*encoded, error) {
	l := list.DeepCopy()
	l.TypeMeta = metav1.TypeMeta{Kind: aggregatedKind, APIVersion: apidiscoveryv2.SchemeGroupVersion.String()}
	return e.aggregatedObject(l, "v2")
}

// aggregatedV2Beta1 encodes the same list as apidiscovery.k8s.io/v2beta1 (identical fields).
func (e *encoder) aggregatedV2Beta1(list *apidiscoveryv2.APIGroupDiscoveryList) (*encoded, error) {
	j, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("encoding discovery list: %w", err)
	}
	l := &apidiscoveryv2beta1.APIGroupDiscoveryList{}
	if err := json.Unmarshal(j, l); err != nil {
		return nil, fmt.Errorf("converting discovery list to v2beta1: %w", err)
	}
	l.TypeMeta = metav1.TypeMeta{Kind: aggregatedKind, APIVersion: apidiscoveryv2beta1.SchemeGroupVersion.String()}
	return e.aggregatedObject(l, "v2beta1")
}

func (e *encoder) aggregatedObject(obj runtime.Object, version string) (*encoded, error) {
	bodies, err := e.encode(obj)
	if err != nil {
		return nil, err
	}
	return &encoded{
		bodies: bodies,
		etag:   fmt.Sprintf("%X", sha512.Sum512(bodies[mediaJSON])),
		params: ";g=" + aggregatedGroup + ";v=" + version + ";as=" + aggregatedKind,
	}, nil
}
