package dns

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are CoreDNS's metrics (names, labels and buckets of CoreDNS v1.15), so dashboards
// and alerts written for CoreDNS work. Labels are those of kubeadm's `.:53` server block:
// zone and zones are ".", view is empty. A nil *metrics records nothing.
type metrics struct {
	server string

	requests     *prometheus.CounterVec
	doRequests   *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	requestSize  *prometheus.HistogramVec
	responseSize *prometheus.HistogramVec
	responses    *prometheus.CounterVec
	panics       prometheus.Counter

	cacheEntries  *prometheus.GaugeVec
	cacheRequests *prometheus.CounterVec
	cacheHits     *prometheus.CounterVec
	cacheMisses   *prometheus.CounterVec

	proxyDuration *prometheus.HistogramVec

	// Children of the vectors above per label combination of report, looked up once:
	// WithLabelValues on every query costs more than the rest of a cached answer.
	durationAll prometheus.Observer
	series      sync.Map // reportKey → *reportSeries
}

type reportKey struct {
	proto, family, qtype, rcode, plugin string
}

type reportSeries struct {
	requests, responses       prometheus.Counter
	requestSize, responseSize prometheus.Observer
}

// timeBuckets are CoreDNS's duration buckets: 0.25 ms to 8 s.
var timeBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

var sizeBuckets = []float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3}

// newMetrics registers the metrics on reg; server is the "server" label (CoreDNS: dns://:53).
func newMetrics(reg prometheus.Registerer, server string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		server: server,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "requests_total",
			Help: "Counter of DNS requests made per zone, protocol and family.",
		}, []string{"server", "zone", "view", "proto", "family", "type"}),
		doRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "do_requests_total",
			Help: "Counter of DNS requests with DO bit set per zone.",
		}, []string{"server", "zone", "view"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "request_duration_seconds",
			Help: "Histogram of the time (in seconds) each request took per zone.", Buckets: timeBuckets,
		}, []string{"server", "zone", "view"}),
		requestSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "request_size_bytes",
			Help: "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.", Buckets: sizeBuckets,
		}, []string{"server", "zone", "view", "proto"}),
		responseSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "response_size_bytes",
			Help: "Size of the returned response in bytes.", Buckets: sizeBuckets,
		}, []string{"server", "zone", "view", "proto"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "responses_total",
			Help: "Counter of response status codes.",
		}, []string{"server", "zone", "view", "rcode", "plugin"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "coredns", Name: "panics_total",
			Help: "A metrics that counts the number of panics.",
		}),
		cacheEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "entries",
			Help: "The number of elements in the cache.",
		}, []string{"server", "type", "zones", "view"}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "requests_total",
			Help: "The count of cache requests.",
		}, []string{"server", "zones", "view"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "hits_total",
			Help: "The count of cache hits.",
		}, []string{"server", "type", "zones", "view"}),
		cacheMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "misses_total",
			Help: "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
		}, []string{"server", "zones", "view"}),
		proxyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "proxy", Name: "request_duration_seconds",
			Help: "Histogram of the time each request took.", Buckets: timeBuckets,
		}, []string{"proxy_name", "to", "rcode"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.doRequests, m.duration, m.requestSize, m.responseSize,
		m.responses, m.panics, m.cacheEntries, m.cacheRequests, m.cacheHits, m.cacheMisses, m.proxyDuration} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("dns: metrics already registered (one Server per registry): %w", err)
			}
			return nil, fmt.Errorf("dns: register metrics: %w", err)
		}
	}
	m.durationAll = m.duration.WithLabelValues(m.server, ".", "")
	return m, nil
}

// monitoredTypes are the query types with their own "type" label; others count as "other".
var monitoredTypes = map[uint16]bool{
	mdns.TypeAAAA: true, mdns.TypeA: true, mdns.TypeCNAME: true, mdns.TypeDNSKEY: true, mdns.TypeDS: true,
	mdns.TypeMX: true, mdns.TypeNSEC3: true, mdns.TypeNSEC: true, mdns.TypeNS: true, mdns.TypePTR: true,
	mdns.TypeRRSIG: true, mdns.TypeSOA: true, mdns.TypeSRV: true, mdns.TypeTXT: true, mdns.TypeHTTPS: true,
	mdns.TypeSVCB: true, mdns.TypeIXFR: true, mdns.TypeAXFR: true, mdns.TypeANY: true,
}

// report records one answered request.
func (m *metrics) report(req *mdns.Msg, rcode int, proto string, v6 bool, plugin string, respLen int, start time.Time) {
	if m == nil {
		return
	}
	var qtype uint16
	if len(req.Question) > 0 {
		qtype = req.Question[0].Qtype
	}
	opt := req.IsEdns0()
	m.record(qtype, opt != nil && opt.Do(), req.Len(), rcode, proto, v6, plugin, respLen, start)
}

// record records one answered request of type qtype (0: none), reqLen bytes, with or
// without the DO bit.
func (m *metrics) record(qtype uint16, do bool, reqLen, rcode int, proto string, v6 bool, plugin string, respLen int, start time.Time) {
	if m == nil {
		return
	}
	k := reportKey{proto: proto, family: "1", qtype: "other", rcode: rcodeString(rcode), plugin: plugin}
	if v6 {
		k.family = "2"
	}
	if monitoredTypes[qtype] {
		k.qtype = mdns.Type(qtype).String()
	}
	if do {
		m.doRequests.WithLabelValues(m.server, ".", "").Inc()
	}
	var rs *reportSeries
	if v, ok := m.series.Load(k); ok {
		rs = v.(*reportSeries)
	} else {
		rs = &reportSeries{
			requests:     m.requests.WithLabelValues(m.server, ".", "", k.proto, k.family, k.qtype),
			responses:    m.responses.WithLabelValues(m.server, ".", "", k.rcode, k.plugin),
			requestSize:  m.requestSize.WithLabelValues(m.server, ".", "", k.proto),
			responseSize: m.responseSize.WithLabelValues(m.server, ".", "", k.proto),
		}
		m.series.Store(k, rs)
	}
	rs.requests.Inc()
	m.durationAll.Observe(time.Since(start).Seconds())
	rs.responseSize.Observe(float64(respLen))
	rs.requestSize.Observe(float64(reqLen))
	rs.responses.Inc()
}

func rcodeString(rc int) string {
	if s, ok := mdns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

func (m *metrics) panic() {
	if m != nil {
		m.panics.Inc()
	}
}

func (m *metrics) cacheHit(kind string) {
	if m == nil {
		return
	}
	m.cacheRequests.WithLabelValues(m.server, ".", "").Inc()
	m.cacheHits.WithLabelValues(m.server, kind, ".", "").Inc()
}

func (m *metrics) cacheMiss() {
	if m == nil {
		return
	}
	m.cacheRequests.WithLabelValues(m.server, ".", "").Inc()
	m.cacheMisses.WithLabelValues(m.server, ".", "").Inc()
}

func (m *metrics) cacheSize(c *respCache) {
	if m == nil {
		return
	}
	pos, neg := c.len()
	m.cacheEntries.WithLabelValues(m.server, "success", ".", "").Set(float64(pos))
	m.cacheEntries.WithLabelValues(m.server, "denial", ".", "").Set(float64(neg))
}

func (m *metrics) upstream(to string, rcode int, d time.Duration) {
	if m == nil {
		return
	}
	m.proxyDuration.WithLabelValues("forward", to, rcodeString(rcode)).Observe(d.Seconds())
}
