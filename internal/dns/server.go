package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
)

// Defaults of Config's zero fields.
const (
	DefaultZone            = "cluster.local"
	DefaultTTL             = 30
	DefaultCacheSize       = 10000
	DefaultStartupTimeout  = 5 * time.Second
	DefaultUpstreamTimeout = 2 * time.Second
)

// Config configures a Server. NewConfig returns the defaults; zero fields take them too.
type Config struct {
	// Zone is the cluster domain (default DefaultZone).
	Zone string `json:"zone"`
	// Listen are the "ip:port" addresses served over both UDP and TCP. Port 0 picks a free
	// port, the same for UDP and TCP; Addrs reports it. Required.
	Listen []string `json:"listen"`
	// Upstreams are the servers ("ip" or "ip:port") for names outside the served zones, for
	// example from UpstreamsFromResolvConf. Empty: such names get SERVFAIL.
	Upstreams []string `json:"upstreams"`
	// TTL of cluster records and the SOA minimum (default DefaultTTL, kubeadm's `ttl 30`).
	TTL uint32 `json:"ttl"`
	// CacheSize bounds the cache of upstream replies: that many positive and as many
	// negative entries (default DefaultCacheSize; negative disables the cache).
	CacheSize int `json:"cacheSize"`
	// PodMode is PodsInsecure (default), PodsVerified or PodsDisabled (DNS-07).
	PodMode string `json:"podMode"`
	// StartupTimeout bounds how long Start waits for the caches to sync before serving
	// anyway, with SERVFAIL for unknown cluster names until they sync (default
	// DefaultStartupTimeout, CoreDNS's startup_timeout).
	StartupTimeout time.Duration `json:"startupTimeout"`
	// UpstreamTimeout bounds each upstream exchange (default DefaultUpstreamTimeout).
	UpstreamTimeout time.Duration `json:"upstreamTimeout"`

	// Client reads Services, EndpointSlices, Namespaces (and Pods in PodsVerified mode).
	// Required by Start.
	Client kubernetes.Interface `json:"-"`
	// Metrics, if set, receives CoreDNS's metrics (at most one Server per registry).
	Metrics prometheus.Registerer `json:"-"`
}

// NewConfig returns a Config with the defaults and no listen address.
func NewConfig() *Config {
	return &Config{Zone: DefaultZone, TTL: DefaultTTL, CacheSize: DefaultCacheSize, PodMode: PodsInsecure,
		StartupTimeout: DefaultStartupTimeout, UpstreamTimeout: DefaultUpstreamTimeout}
}

func (c *Config) setDefaults() {
	d := NewConfig()
	if c.Zone == "" {
		c.Zone = d.Zone
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.CacheSize == 0 {
		c.CacheSize = d.CacheSize
	}
	if c.PodMode == "" {
		c.PodMode = d.PodMode
	}
	if c.StartupTimeout == 0 {
		c.StartupTimeout = d.StartupTimeout
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = d.UpstreamTimeout
	}
}

// Validate checks the configuration (after defaults).
func (c *Config) Validate() error {
	var errs []error
	if _, ok := mdns.IsDomainName(c.Zone); !ok || c.Zone == "." {
		errs = append(errs, fmt.Errorf("zone %q is not a domain name", c.Zone))
	}
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("listen: at least one address is required"))
	}
	for _, l := range c.Listen {
		host, _, err := net.SplitHostPort(l)
		if err != nil || net.ParseIP(host) == nil {
			errs = append(errs, fmt.Errorf("listen %q is not ip:port", l))
		}
	}
	for _, u := range c.Upstreams {
		if _, err := normalizeUpstream(u); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TTL > 3600 {
		errs = append(errs, fmt.Errorf("ttl %d out of range 0-3600", c.TTL))
	}
	switch c.PodMode {
	case PodsInsecure, PodsVerified, PodsDisabled:
	default:
		errs = append(errs, fmt.Errorf("podMode %q is not %s, %s or %s", c.PodMode, PodsInsecure, PodsVerified, PodsDisabled))
	}
	return errors.Join(errs...)
}

// Server is the cluster DNS server. Create it with New, run it with Start, stop it with
// Close. It implements mdns.Handler.
type Server struct {
	cfg     Config
	st      *store
	b       *backend
	fwd     *forwarder
	zc      *zoneCache // nil: replies from the store are computed every time
	metrics *metrics
	inf     *informers

	// fastHits counts the queries the UDP read loop answered from zc (fastpath.go).
	fastHits atomic.Int64

	ctx    context.Context // ends at Close; bounds upstream exchanges
	cancel context.CancelFunc
	ready  chan struct{}

	mu      sync.Mutex
	servers []*mdns.Server
	addrs   []string
	closed  bool
}

// New checks cfg, applies defaults and builds the server; nothing runs until Start.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	zone := strings.ToLower(mdns.Fqdn(cfg.Zone))
	s := &Server{cfg: cfg, st: newStore(), ready: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var err error
	if s.metrics, err = newMetrics(cfg.Metrics, "dns://"+cfg.Listen[0]); err != nil {
		return nil, err
	}
	s.fwd = &forwarder{timeout: cfg.UpstreamTimeout, metrics: s.metrics}
	for _, u := range cfg.Upstreams {
		n, _ := normalizeUpstream(u)
		s.fwd.upstreams = append(s.fwd.upstreams, n)
	}
	if cfg.CacheSize > 0 {
		s.fwd.cache = newRespCache(cfg.CacheSize)
		s.zc = newZoneCache(cfg.CacheSize)
	}
	s.b = &backend{
		st: s.st, zones: append([]string{zone}, reverseZones...), primary: zone,
		ttl: cfg.TTL, podMode: cfg.PodMode, synced: func() bool { return true },
	}
	s.b.lookup = s.lookup
	for _, l := range cfg.Listen {
		host, _, _ := net.SplitHostPort(l)
		if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
			s.b.localIPs = append(s.b.localIPs, ip.String())
		}
	}
	if cfg.Client != nil {
		if s.inf, err = newInformers(cfg.Client, s.st, cfg.PodMode == PodsVerified); err != nil {
			return nil, err
		}
		s.b.synced = s.inf.synced
	}
	return s, nil
}

// Start starts the informers, waits up to StartupTimeout for them to sync, then serves UDP
// and TCP on every Listen address. On failure everything started is stopped. ctx ends the
// informers and the server like Close.
func (s *Server) Start(ctx context.Context) (err error) {
	if s.inf == nil {
		return errors.New("dns: Config.Client is required")
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.ctx.Done():
		}
	}()
	s.inf.run(s.ctx)
	go s.waitSynced()
	timer := time.NewTimer(s.cfg.StartupTimeout)
	defer timer.Stop()
	select {
	case <-s.ready:
	case <-timer.C: // serve anyway; unknown cluster names get SERVFAIL until synced
	case <-s.ctx.Done():
		return errors.New("dns: closed while starting")
	}
	return s.listen()
}

// waitSynced closes ready once the informers have synced.
func (s *Server) waitSynced() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !s.inf.synced() {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
	close(s.ready)
}

// Ready is closed once the caches have synced.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// listen binds and serves every Listen address.
func (s *Server) listen() error {
	for _, l := range s.cfg.Listen {
		pc, ln, err := bindPair(l)
		if err != nil {
			return fmt.Errorf("dns: listen on %s: %w", l, err)
		}
		udp := &mdns.Server{PacketConn: pc, Handler: s}
		if s.zc != nil {
			udp.DecorateReader = s.decorateUDP
		}
		tcp := &mdns.Server{Listener: ln, Handler: s, ReadTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			pc.Close()
			ln.Close()
			return errors.New("dns: closed while starting")
		}
		s.servers = append(s.servers, udp, tcp)
		s.addrs = append(s.addrs, pc.LocalAddr().String())
		s.mu.Unlock()
		for _, srv := range []*mdns.Server{udp, tcp} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			errc := make(chan error, 1)
			go func() { errc <- srv.ActivateAndServe() }()
			select {
			case <-started:
			case err := <-errc:
				return fmt.Errorf("dns: serve on %s: %w", l, err)
			}
		}
	}
	return nil
}

// bindPair binds UDP and TCP on the same address; with port 0 it retries until the port the
// kernel picked for UDP is also free for TCP.
func bindPair(addr string) (net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	var err error
	for range 10 {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return nil, nil, err
		}
		_, p, _ := net.SplitHostPort(pc.LocalAddr().String())
		var ln net.Listener
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, p)); err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" {
			break
		}
	}
	return nil, nil, err
}

// Addrs returns the bound "ip:port" of each Listen address (the same port for UDP and
// TCP), once Start has returned.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// Close stops serving and the informers. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	for _, srv := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.ShutdownContext(ctx)
		cancel()
	}
	s.cancel()
}

// ServeDNS answers one request: cluster and reverse zones from the caches, everything else
// through the forwarder. Replies fit the client's buffer (512 bytes, or its EDNS0 size, over
// UDP) with TC set when records had to go, and carry an OPT record iff the request did.
// Replies computed from the store are kept packed until the store changes (zoneCache).
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	start := time.Now()
	proto, v6 := "udp", false
	switch a := w.LocalAddr().(type) {
	case *net.TCPAddr:
		proto, v6 = "tcp", a.IP.To4() == nil
	case *net.UDPAddr:
		v6 = a.IP.To4() == nil
	}
	defer func() {
		if r := recover(); r != nil {
			s.metrics.panic()
			m := errorReply(req, mdns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}
	}()
	var (
		key       zoneKey
		cacheable bool
		gen       uint64
	)
	if s.zc != nil {
		if key, cacheable = zoneKeyOf(req, proto); cacheable {
			gen = s.st.generation()
			if e, ok := s.zc.get(key, gen); ok {
				s.writeCached(w, req, e, proto, v6, start)
				return
			}
			cacheable = s.b.synced() // no SERVFAIL of the start-up kept for later
		}
	}
	var upstream bool
	m, plugin, scrub := s.handle(s.ctx, req, proto, &upstream)
	if scrub {
		fit(req, m, proto)
	}
	wire, err := m.Pack()
	if err != nil {
		return
	}
	if cacheable && plugin == "kubernetes" {
		s.metrics.cacheMiss() // CoreDNS's cache in front of its kubernetes plugin
		if !upstream {
			s.zc.put(key, gen, wire, m.Rcode) // before the write: a client's next question may hit it
		}
	}
	if _, err := w.Write(wire); err != nil {
		return
	}
	s.metrics.report(req, m.Rcode, proto, v6, plugin, len(wire), start)
}

// wireBufs recycles reply buffers of cached replies (a write copies them out).
var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeCached sends a kept reply with req's ID.
func (s *Server) writeCached(w mdns.ResponseWriter, req *mdns.Msg, e zoneEntry, proto string, v6 bool, start time.Time) {
	bp := wireBufs.Get().(*[]byte)
	buf := append((*bp)[:0], e.wire...)
	buf[0], buf[1] = byte(req.Id>>8), byte(req.Id)
	_, err := w.Write(buf)
	*bp = buf
	wireBufs.Put(bp)
	if err == nil {
		s.metrics.cacheHit(e.kind())
		s.metrics.report(req, e.rcode, proto, v6, "cache", len(e.wire), start)
	}
}

// handle computes the reply to req. scrub is false for replies that go out as they are;
// *upstream is set when the reply needed an upstream server.
func (s *Server) handle(ctx context.Context, req *mdns.Msg, proto string, upstream *bool) (m *mdns.Msg, plugin string, scrub bool) {
	if len(req.Question) == 0 {
		return errorReply(req, mdns.RcodeServerFailure), "", true
	}
	if req.Question[0].Qclass != mdns.ClassINET {
		return errorReply(req, mdns.RcodeRefused), "", true
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		m := errorReply(req, mdns.RcodeBadVers)
		o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		o.SetVersion(0)
		o.SetExtendedRcode(mdns.RcodeBadVers)
		m.Rcode = mdns.RcodeBadVers
		m.Extra = []mdns.RR{o}
		return m, "", false
	}
	if req.Opcode != mdns.OpcodeQuery {
		return errorReply(req, mdns.RcodeNotImplemented), "", true
	}
	if n := s.b.matchZone(req.Question[0].Name); n >= 0 {
		ctx = context.WithValue(ctx, lookupKey{}, lookupState{proto: proto, upstream: upstream})
		if m, ok := s.b.answer(ctx, req, n); ok {
			return m, "kubernetes", true
		}
	}
	*upstream = true
	m, plugin = s.fwd.forward(ctx, req, proto)
	return m, plugin, true
}

// resolve answers a well-formed query: served zones first, then the forwarder.
func (s *Server) resolve(ctx context.Context, req *mdns.Msg, proto string) (*mdns.Msg, string) {
	if n := s.b.matchZone(req.Question[0].Name); n >= 0 {
		if m, ok := s.b.answer(ctx, req, n); ok {
			return m, "kubernetes"
		}
	}
	return s.fwd.forward(ctx, req, proto)
}

// lookupState travels in the context of nested lookups (CNAME targets resolved through the
// whole server): the client's transport and the nesting depth.
type lookupState struct {
	proto    string
	depth    int
	upstream *bool // set when a lookup leaves the served zones; may be nil
}

type lookupKey struct{}

// markUpstream records in ctx's lookup state that the reply depends on a lookup outside the
// served zones (such replies are not kept in the zone cache).
func markUpstream(ctx context.Context) {
	if st, ok := ctx.Value(lookupKey{}).(lookupState); ok && st.upstream != nil {
		*st.upstream = true
	}
}

// lookup resolves a CNAME target as a new question through the whole server (CoreDNS's
// upstream.Lookup), over the client's transport.
func (s *Server) lookup(ctx context.Context, req *mdns.Msg, name string, qtype uint16) *mdns.Msg {
	st, _ := ctx.Value(lookupKey{}).(lookupState)
	if st.depth >= maxCNAMEChain {
		return nil
	}
	if st.proto == "" {
		st.proto = "udp"
	}
	st.depth++
	ctx = context.WithValue(ctx, lookupKey{}, st)
	r := req.Copy()
	r.Question = []mdns.Question{{Name: mdns.Fqdn(name), Qtype: qtype, Qclass: mdns.ClassINET}}
	m, _ := s.resolve(ctx, r, st.proto)
	return m
}

// fit adds or normalizes the OPT record after the request's (CoreDNS SizeAndDo) and
// truncates m to the client's buffer (CoreDNS Scrub): 512 bytes or the EDNS0 size over UDP,
// 64 KiB over TCP, counting compressed sizes; whole records are dropped from the end and TC
// is set. The packet always goes out compressed.
func fit(req, m *mdns.Msg, proto string) {
	size := mdns.MaxMsgSize
	if o := req.IsEdns0(); o != nil {
		if mo := m.IsEdns0(); mo != nil {
			mo.Hdr.Name, mo.Hdr.Rrtype = ".", mdns.TypeOPT
			mo.SetVersion(0)
			mo.SetUDPSize(o.UDPSize())
			mo.Hdr.Ttl &= 0xff00
			if o.Do() {
				mo.SetDo()
			}
		} else {
			ro := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
			ro.SetUDPSize(o.UDPSize())
			if o.Do() {
				ro.SetDo()
			}
			m.Extra = append(m.Extra, ro)
		}
		if proto == "udp" {
			size = max(int(o.UDPSize()), mdns.MinMsgSize)
		}
	} else if proto == "udp" {
		size = mdns.MinMsgSize
	}
	m.Truncate(size)
	m.Compress = true
}

// UpstreamsFromResolvConf returns the nameservers of a resolv.conf file as "ip:port" (the
// agent's default upstreams). A node whose resolv.conf names a local stub resolver (such as
// systemd-resolved's 127.0.0.53) should pass the stub's own upstream file instead, as the
// kubelet's --resolv-conf does.
func UpstreamsFromResolvConf(path string) ([]string, error) {
	cc, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("dns: read %s: %w", path, err)
	}
	var out []string
	for _, srv := range cc.Servers {
		if net.ParseIP(srv) == nil {
			continue // e.g. a zoned IPv6 address, which the forwarder cannot use
		}
		out = append(out, net.JoinHostPort(srv, cc.Port))
	}
	return out, nil
}
