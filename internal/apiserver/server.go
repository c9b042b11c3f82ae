// Package apiserver is kubesvc's Kubernetes REST API over HTTP: routing, content negotiation,
// the generic get/list/watch/create/update/patch/delete handlers, subresources, Tables and
// Status errors. Per-kind semantics come from internal/registry, objects from
// internal/storage. Only the server wiring (internal/server) imports this package.
package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"kubesvc/internal/registry"
	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
)

// DefaultMaxBodyBytes is the request body limit (kube-apiserver's 3 MiB).
const DefaultMaxBodyBytes = 3 << 20

var errTooLarge = apierrors.NewRequestEntityTooLargeError("limit is 3145728")

// User is an authenticated caller.
type User struct {
	Name   string
	Groups []string
}

// Config configures a Server. Store and Authenticate are required.
type Config struct {
	Store *storage.Store
	// Kinds maps resources to their semantics; resources missing here get generic
	// metadata-only validation.
	Kinds map[schema.GroupResource]registry.Kind
	// Authenticate identifies the caller; ok=false is anonymous and gets 401.
	Authenticate func(r *http.Request) (User, bool)
	// Authorize decides whether u may do verb on the request; nil allows every authenticated user.
	Authorize func(u User, verb string, gvr schema.GroupVersionResource, namespace, name, subresource string) bool
	// MaxBodyBytes limits request bodies; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Version is served at /version.
	Version version.Info
	// Discovery serves /api, /apis, /api/v1 and /apis/<g>/<v> exactly; nil: 404.
	Discovery http.Handler
	// OpenAPI serves /openapi/...; nil: 404.
	OpenAPI http.Handler
	// Connect serves pod subresources log, exec, attach and portforward; nil: 404.
	Connect http.Handler
	// Hooks add allocations to the writes of some resources (services); optional.
	Hooks map[schema.GroupResource]WriteHooks
	// Ready reports readiness for /readyz; nil: always ready.
	Ready func() error
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	cfg      Config
	store    *storage.Store
	now      func() time.Time
	encCache *encodeCache
	fields   fieldManagers
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, store: cfg.Store, now: cfg.Now, encCache: newEncodeCache(8192)}
}

type userKey struct{}

// UserFrom returns the authenticated caller of a request context.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch path {
	case "/healthz", "/livez", "/readyz", "/healthz/", "/livez/", "/readyz/":
		s.serveHealth(w, r)
		return
	case "/version", "/version/":
		s.writeJSON(w, http.StatusOK, s.cfg.Version)
		return
	}
	u, ok := s.cfg.Authenticate(r)
	if !ok {
		st := apierrors.NewUnauthorized("Unauthorized").Status()
		st.Kind, st.APIVersion = "Status", "v1"
		s.writeObject(w, r, http.StatusUnauthorized, &st)
		return
	}
	ctx := context.WithValue(r.Context(), userKey{}, u)
	r = r.WithContext(context.WithValue(ctx, warningsKey{}, w.Header()))
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.writeError(w, r, errTooLarge, schema.GroupResource{}, "")
		return
	}
	switch {
	case strings.HasPrefix(path, "/openapi/"):
		if s.cfg.OpenAPI != nil {
			s.cfg.OpenAPI.ServeHTTP(w, r)
			return
		}
	case isDiscoveryPath(path):
		if s.cfg.Discovery != nil {
			s.cfg.Discovery.ServeHTTP(w, r)
			return
		}
	default:
		if ri, ok := parseResourcePath(r); ok {
			if s.cfg.Authorize != nil && !s.cfg.Authorize(u, ri.verb, ri.info.GroupVersionResource, ri.namespace, ri.name, ri.subresource) {
				st := apierrors.NewForbidden(ri.info.GroupResource(), ri.name, errForbidden(u, ri)).Status()
				st.Kind, st.APIVersion = "Status", "v1"
				s.writeObject(w, r, http.StatusForbidden, &st)
				return
			}
			s.serveResource(w, r, ri)
			return
		}
	}
	notFoundPath(w, r, s)
}

func isDiscoveryPath(p string) bool {
	p = strings.TrimSuffix(p, "/")
	if p == "/api" || p == "/apis" || p == "/api/v1" {
		return true
	}
	if strings.HasPrefix(p, "/apis/") {
		return strings.Count(p, "/") <= 3 // /apis/g or /apis/g/v
	}
	return false
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/readyz") && s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			http.Error(w, "[-]ready failed: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte("ok"))
}

func (s *Server) kind(info *resource.Info) registry.Kind {
	if k, ok := s.cfg.Kinds[info.GroupResource()]; ok && k.Strategy != nil {
		return k
	}
	return genericKind(info)
}

// WriteHooks let a resource commit extra etcd operations atomically with its object writes:
// allocations of ClusterIPs and NodePorts, and their release. A hook returning a *storage.Txn
// whose comparisons fail makes the write fail with storage.ErrRace (via Txn.OnFailure), and the
// handler retries the whole write (fresh allocation) a few times.
type WriteHooks interface {
	// BeforeCreate runs after defaulting, before PrepareForCreate and validation. It may mutate
	// obj (allocate) and return errors as API errors (422 Invalid with kube's messages).
	BeforeCreate(ctx context.Context, obj runtime.Object, dryRun bool) (*storage.Txn, error)
	// BeforeUpdate does the same for an update from old to obj (allocate new, release freed).
	BeforeUpdate(ctx context.Context, obj, old runtime.Object, dryRun bool) (*storage.Txn, error)
	// BeforeDelete returns the release operations of obj's allocations.
	BeforeDelete(ctx context.Context, obj runtime.Object) (*storage.Txn, error)
}

type warningsKey struct{}

// addWarning adds a "Warning: 299" response header (kubectl prints "Warning: <text>").
func addWarning(ctx context.Context, text string) {
	if h, ok := ctx.Value(warningsKey{}).(http.Header); ok {
		h.Add("Warning", fmt.Sprintf("299 - %q", text))
	}
}

type createWarner interface {
	WarningsOnCreate(ctx context.Context, obj runtime.Object) []string
}

type updateWarner interface {
	WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string
}
