package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// serviceHealth runs the per-Service health-check servers of externalTrafficPolicy Local
// Services on their healthCheckNodePort (PX-H-01). Sync reconciles the listeners after each
// successful dataplane sync; the handlers read the counts under mu.
type serviceHealth struct {
	addrs   func() []netip.Addr // where to listen; empty = all addresses
	healthy func() bool         // the proxy's own health (serviceProxyHealthy)

	mu      sync.Mutex
	servers map[int32]*hcServer // by healthCheckNodePort
}

type hcServer struct {
	svc       types.NamespacedName
	endpoints int // ready local endpoints
	addrs     string
	listeners []net.Listener
	srv       *http.Server
}

// hcService is what Sync wants of one health-check port.
type hcService struct {
	svc       types.NamespacedName
	endpoints int
}

// hcBody is the JSON body of PX-H-01, fields in kube-proxy's order.
type hcBody struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

// Sync makes the set of listeners match want (healthCheckNodePort → service), opening new
// ones, closing old ones and updating counts. Bind failures are logged and retried on the next
// Sync (kube-proxy emits an event FailedToStartServiceHealthcheck).
func (h *serviceHealth) Sync(want map[int32]hcService) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.servers == nil {
		h.servers = map[int32]*hcServer{}
	}
	addrs := h.addrs()
	addrKey := fmt.Sprint(addrs)
	for port, s := range h.servers {
		if w, ok := want[port]; !ok || w.svc != s.svc || s.addrs != addrKey {
			s.close()
			delete(h.servers, port)
		}
	}
	for port, w := range want {
		if s, ok := h.servers[port]; ok {
			s.endpoints = w.endpoints
			continue
		}
		s := &hcServer{svc: w.svc, endpoints: w.endpoints, addrs: addrKey}
		if err := h.listen(s, port, addrs); err != nil {
			klog.ErrorS(err, "FailedToStartServiceHealthcheck", "service", w.svc, "port", port)
			s.close()
			continue
		}
		h.servers[port] = s
	}
}

func (h *serviceHealth) listen(s *hcServer, port int32, addrs []netip.Addr) error {
	hostports := []string{":" + strconv.Itoa(int(port))}
	if len(addrs) > 0 {
		hostports = hostports[:0]
		for _, a := range addrs {
			hostports = append(hostports, netip.AddrPortFrom(a, uint16(port)).String())
		}
	}
	for _, hp := range hostports {
		l, err := net.Listen("tcp", hp)
		if err != nil {
			return fmt.Errorf("health check server for %s on %s: %w", s.svc, hp, err)
		}
		s.listeners = append(s.listeners, l)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.mu.Lock()
		n := s.endpoints
		h.mu.Unlock()
		h.serve(w, s.svc, n)
	}), ReadHeaderTimeout: 10 * time.Second}
	for _, l := range s.listeners {
		go func() { _ = s.srv.Serve(l) }()
	}
	return nil
}

// serve answers any path (PX-H-01): 200 iff there are ready local endpoints and the proxy is
// healthy, else 503.
func (h *serviceHealth) serve(w http.ResponseWriter, svc types.NamespacedName, n int) {
	var b hcBody
	b.Service.Namespace, b.Service.Name = svc.Namespace, svc.Name
	b.LocalEndpoints = n
	b.ServiceProxyHealthy = h.healthy()
	body, _ := json.MarshalIndent(b, "", "\t")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(n))
	if n > 0 && b.ServiceProxyHealthy {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(body)
}

// Close stops every health-check server.
func (h *serviceHealth) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.servers {
		s.close()
		delete(h.servers, port)
	}
}

func (s *hcServer) close() {
	if s.srv != nil {
		_ = s.srv.Close()
	}
	for _, l := range s.listeners {
		_ = l.Close()
	}
}

// proxyHealth is the proxy's own health (PX-H-02): unhealthy when an update was queued more
// than timeout ago and no sync succeeded since.
type proxyHealth struct {
	timeout time.Duration
	now     func() time.Time

	mu           sync.Mutex
	lastUpdated  time.Time
	oldestQueued time.Time // zero when nothing waits
	nodeEligible bool
}

// Queued records that an update waits for a sync.
func (p *proxyHealth) Queued() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oldestQueued.IsZero() {
		p.oldestQueued = p.now()
	}
}

// Updated records a successful sync.
func (p *proxyHealth) Updated() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastUpdated = p.now()
	p.oldestQueued = time.Time{}
}

// SetNodeEligible records whether the Node is neither being deleted nor tainted
// ToBeDeletedByClusterAutoscaler.
func (p *proxyHealth) SetNodeEligible(ok bool) {
	p.mu.Lock()
	p.nodeEligible = ok
	p.mu.Unlock()
}

// Healthy reports the proxy's health.
func (p *proxyHealth) Healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthyLocked(p.now())
}

func (p *proxyHealth) healthyLocked(now time.Time) bool {
	return p.oldestQueued.IsZero() || now.Sub(p.oldestQueued) <= p.timeout
}

// ServeHTTP serves /healthz and /livez (PX-H-02).
func (p *proxyHealth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	now := p.now()
	healthy := p.healthyLocked(now)
	type famStatus struct {
		LastUpdated string `json:"lastUpdated"`
		Healthy     bool   `json:"healthy"`
	}
	body := map[string]any{
		"lastUpdated": p.lastUpdated.Format(time.RFC3339),
		"currentTime": now.Format(time.RFC3339),
		"healthy":     healthy,
		"status":      map[string]famStatus{"IPv4": {LastUpdated: p.lastUpdated.Format(time.RFC3339), Healthy: healthy}},
	}
	ok := healthy
	if r.URL.Path == "/healthz" {
		body["nodeEligible"] = p.nodeEligible
		ok = ok && p.nodeEligible
	}
	p.mu.Unlock()
	data, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if ok {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(data)
}

// serveHTTP runs handler on addr until ctx ends; it returns once listening.
func serveHTTP(ctx context.Context, addr string, handler http.Handler) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "proxy HTTP server stopped", "address", addr)
		}
	}()
	return l.Addr(), nil
}
