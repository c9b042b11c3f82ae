package openapi

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"github.com/munnerz/goautoneg"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/handler3"

	"kubesvc/internal/resource"
)

// Served paths: the Swagger 2.0 document and the OpenAPI v3 index; v3 documents are under
// V3Path + "/".
const (
	V2Path = "/openapi/v2"
	V3Path = "/openapi/v3"
)

// Media subtypes the handlers negotiate (kube-openapi's handler and handler3).
const (
	subTypeJSON          = "json"
	subTypeV2Protobuf    = "com.github.proto-openapi.spec.v2.v1.0+protobuf"
	subTypeV2ProtobufOld = "com.github.proto-openapi.spec.v2@v1.0+protobuf"
	subTypeV3Protobuf    = "com.github.proto-openapi.spec.v3.v1.0+protobuf"
	subTypeV3ProtobufOld = "com.github.proto-openapi.spec.v3@v1.0+protobuf"
)

// document is one lazily built OpenAPI document, kept only as bytes.
type document struct {
	build   func() ([]byte, error)
	toProto func([]byte) ([]byte, error)
	lock    *sync.Mutex // serializes builds across documents to bound memory and CPU
	now     func() time.Time

	once     sync.Once
	json     []byte
	etag     string
	modified time.Time
	err      error

	protoOnce sync.Once
	proto     []byte
	protoErr  error
}

func newDocument(lock *sync.Mutex, now func() time.Time, build func() ([]byte, error), toProto func([]byte) ([]byte, error)) *document {
	return &document{build: build, toProto: toProto, lock: lock, now: now}
}

// getJSON returns the JSON bytes, their ETag (without quotes) and build time.
func (d *document) getJSON() ([]byte, string, time.Time, error) {
	d.once.Do(func() {
		d.lock.Lock()
		defer d.lock.Unlock()
		d.json, d.err = d.build()
		d.build = nil
		d.etag = computeETag(d.json)
		d.modified = d.now()
	})
	return d.json, d.etag, d.modified, d.err
}

// getProto returns the protobuf bytes; they share the JSON document's ETag, as upstream.
func (d *document) getProto() ([]byte, string, time.Time, error) {
	j, etag, modified, err := d.getJSON()
	if err != nil {
		return nil, "", modified, err
	}
	d.protoOnce.Do(func() {
		d.lock.Lock()
		defer d.lock.Unlock()
		d.proto, d.protoErr = d.toProto(j)
		if d.protoErr != nil {
			d.protoErr = fmt.Errorf("converting OpenAPI document to protobuf: %w", d.protoErr)
		}
	})
	return d.proto, etag, modified, d.protoErr
}

// computeETag hashes a document like kube-openapi: upper-case hex SHA-512.
func computeETag(data []byte) string {
	if data == nil {
		return ""
	}
	return fmt.Sprintf("%X", sha512.Sum512(data))
}

// serverRelativeURL is the discovery URL of a v3 document: /openapi/v3/<path>?hash=<etag>.
func serverRelativeURL(docPath, etag string) string {
	u := url.URL{Path: path.Join(V3Path, docPath)}
	q := url.Values{}
	q.Set("hash", etag)
	u.RawQuery = q.Encode()
	return u.String()
}

// v2ToProto converts a Swagger 2.0 JSON document to gnostic's protobuf form.
func v2ToProto(j []byte) ([]byte, error) {
	doc, err := openapiv2.ParseDocument(j)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
}

// Handler serves /openapi/v2, /openapi/v3 and /openapi/v3/<path>. Create it with NewHandler;
// it is safe for concurrent use, and concurrent first requests for a document share one build.
type Handler struct {
	now   func() time.Time // Last-Modified and Expires; time.Now
	paths []string         // v3 document paths in discovery order
	v3    map[string]*document
	v2    *document

	discoveryOnce     sync.Once
	discovery         []byte
	discoveryETag     string
	discoveryModified time.Time
	discoveryErr      error
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the OpenAPI handler (a *Handler) for the resources of
// internal/resource.All. It checks the catalog against the scheme but builds no document until
// one is requested; each is then built once (about 0.1 s for api/v1, all of them in under a
// second) and only its serialized bytes are kept. The error reports a catalog kind the scheme
// does not know.
func NewHandler() (http.Handler, error) {
	return newHandler(resource.All)
}

func newHandler(infos []*resource.Info) (*Handler, error) {
	c, err := newCatalog(infos)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	lock := &sync.Mutex{}
	h := &Handler{now: time.Now, paths: c.v3Paths(), v3: map[string]*document{}}
	for _, p := range h.paths {
		h.v3[p] = newDocument(lock, h.clock, func() ([]byte, error) {
			doc, err := c.buildV3(p)
			if err != nil {
				return nil, err
			}
			return json.Marshal(doc)
		}, handler3.ToV3ProtoBinary)
	}
	h.v2 = newDocument(lock, h.clock, func() ([]byte, error) {
		doc, err := c.buildV2()
		if err != nil {
			return nil, err
		}
		return doc.MarshalJSON()
	}, v2ToProto)
	return h, nil
}

func (h *Handler) clock() time.Time { return h.now() }

// Handles reports whether path is one this handler serves: /openapi/v2, /openapi/v3 and
// /openapi/v3/<path> for the paths the /openapi/v3 index lists. The router may send it every
// /openapi/ request; others get 404.
func (h *Handler) Handles(p string) bool {
	if p == V2Path || p == V3Path {
		return true
	}
	rest, ok := strings.CutPrefix(p, V3Path+"/")
	return ok && h.v3[rest] != nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Handles(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case V2Path:
		h.serveV2(w, r)
	case V3Path:
		h.serveV3Discovery(w, r)
	default:
		h.serveV3Document(w, r, strings.TrimPrefix(r.URL.Path, V3Path+"/"))
	}
}

// serveV3Discovery serves the index of v3 documents with their hashes (handler3.HandleDiscovery).
// Hashing needs every document, so the first request builds them all.
func (h *Handler) serveV3Discovery(w http.ResponseWriter, r *http.Request) {
	h.discoveryOnce.Do(func() {
		d := handler3.OpenAPIV3Discovery{Paths: map[string]handler3.OpenAPIV3DiscoveryGroupVersion{}}
		for _, p := range h.paths {
			_, etag, _, err := h.v3[p].getJSON()
			if err != nil {
				h.discoveryErr = err
				return
			}
			d.Paths[p] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: serverRelativeURL(p, etag)}
		}
		h.discovery, h.discoveryErr = json.Marshal(d)
		h.discoveryETag = computeETag(h.discovery)
		h.discoveryModified = h.now()
	})
	if h.discoveryErr != nil {
		http.Error(w, "building OpenAPI discovery: "+h.discoveryErr.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Etag", strconv.Quote(h.discoveryETag))
	w.Header().Set("Content-Type", "application/json")
	http.ServeContent(w, r, V3Path, h.discoveryModified, bytes.NewReader(h.discovery))
}

// serveV3Document serves one v3 document (handler3.HandleGroupVersion): JSON or protobuf by
// Accept; with ?hash= it redirects a stale hash to the current URL and marks a matching one
// immutable.
func (h *Handler) serveV3Document(w http.ResponseWriter, r *http.Request, docPath string) {
	doc := h.v3[docPath]
	accepted := []struct {
		subType     string
		contentType string
		get         func() ([]byte, string, time.Time, error)
	}{
		{subTypeJSON, "application/json", doc.getJSON},
		{subTypeV3Protobuf, "application/" + subTypeV3Protobuf, doc.getProto},
		{subTypeV3ProtobufOld, "application/" + subTypeV3Protobuf, doc.getProto},
	}
	w.Header().Add("Vary", "Accept")
	for _, clause := range acceptClauses(r) {
		for _, a := range accepted {
			if !matches(clause, a.subType) {
				continue
			}
			data, etag, modified, err := a.get()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", a.contentType)
			w.Header().Set("Etag", strconv.Quote(etag))
			if hash := r.URL.Query().Get("hash"); hash != "" {
				if hash != etag {
					http.Redirect(w, r, serverRelativeURL(docPath, etag), http.StatusMovedPermanently)
					return
				}
				w.Header().Set("Cache-Control", "public, immutable")
				w.Header().Set("Expires", h.now().AddDate(1, 0, 0).Format(time.RFC1123))
			}
			http.ServeContent(w, r, "", modified, bytes.NewReader(data))
			return
		}
	}
	w.WriteHeader(http.StatusNotAcceptable)
}

// serveV2 serves the Swagger 2.0 document in JSON or protobuf.
func (h *Handler) serveV2(w http.ResponseWriter, r *http.Request) {
	accepted := []struct {
		subType     string
		contentType string
		get         func() ([]byte, string, time.Time, error)
	}{
		{subTypeJSON, "application/json", h.v2.getJSON},
		{subTypeV2ProtobufOld, "application/" + subTypeV2Protobuf, h.v2.getProto},
		{subTypeV2Protobuf, "application/" + subTypeV2Protobuf, h.v2.getProto},
	}
	w.Header().Add("Vary", "Accept")
	for _, clause := range acceptClauses(r) {
		for _, a := range accepted {
			if !matches(clause, a.subType) {
				continue
			}
			data, etag, modified, err := a.get()
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", a.contentType)
			w.Header().Set("Etag", strconv.Quote(etag))
			http.ServeContent(w, r, V2Path, modified, bytes.NewReader(data))
			return
		}
	}
	w.WriteHeader(http.StatusNotAcceptable)
}

func acceptClauses(r *http.Request) []goautoneg.Accept {
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	return goautoneg.ParseAccept(accept)
}

// matches reports whether an Accept clause admits application/<subType>.
func matches(c goautoneg.Accept, subType string) bool {
	return (c.Type == "application" || c.Type == "*") && (c.SubType == subType || c.SubType == "*")
}
