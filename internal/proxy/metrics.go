package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are kube-proxy's (pkg/proxy/metrics), with its names, help texts and buckets, so
// dashboards written for kube-proxy work. A nil *metrics records nothing.
type metrics struct {
	syncDuration        prometheus.Histogram
	syncFullDuration    prometheus.Histogram
	syncPartialDuration prometheus.Histogram
	lastTimestamp       prometheus.Gauge
	lastQueuedTimestamp prometheus.Gauge
	networkProgramming  prometheus.Histogram
	endpointsPending    prometheus.Gauge
	endpointsTotal      prometheus.Counter
	servicesPending     prometheus.Gauge
	servicesTotal       prometheus.Counter
	noLocalEndpoints    *prometheus.GaugeVec
	syncFailures        prometheus.Counter
}

const subsystem = "kubeproxy"

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	syncBuckets := prometheus.ExponentialBuckets(0.001, 2, 15)
	npBuckets := []float64{0}
	npBuckets = append(npBuckets, prometheus.LinearBuckets(0.25, 0.25, 2)...)
	npBuckets = append(npBuckets, prometheus.LinearBuckets(1, 1, 59)...)
	npBuckets = append(npBuckets, prometheus.LinearBuckets(60, 5, 12)...)
	npBuckets = append(npBuckets, prometheus.LinearBuckets(120, 30, 7)...)
	m := &metrics{
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds", Buckets: syncBuckets}),
		syncFullDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: subsystem,
			Name: "sync_full_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds for full resyncs", Buckets: syncBuckets}),
		syncPartialDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: subsystem,
			Name: "sync_partial_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds for partial resyncs", Buckets: syncBuckets}),
		lastTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_last_timestamp_seconds", Help: "The last time proxy rules were successfully synced"}),
		lastQueuedTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_last_queued_timestamp_seconds", Help: "The last time a sync of proxy rules was queued"}),
		networkProgramming: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: subsystem,
			Name: "network_programming_duration_seconds", Help: "In Cluster Network Programming Latency in seconds", Buckets: npBuckets}),
		endpointsPending: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_endpoint_changes_pending", Help: "Pending proxy rules Endpoint changes"}),
		endpointsTotal: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_endpoint_changes_total", Help: "Cumulative proxy rules Endpoint changes"}),
		servicesPending: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_service_changes_pending", Help: "Pending proxy rules Service changes"}),
		servicesTotal: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_service_changes_total", Help: "Cumulative proxy rules Service changes"}),
		noLocalEndpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_no_local_endpoints_total", Help: "Number of services with a Local traffic policy and no endpoints"},
			[]string{"traffic_policy"}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: subsystem,
			Name: "sync_proxy_rules_nftables_sync_failures_total", Help: "Cumulative proxy nftables sync failures"}),
	}
	for _, c := range []prometheus.Collector{m.syncDuration, m.syncFullDuration, m.syncPartialDuration, m.lastTimestamp,
		m.lastQueuedTimestamp, m.networkProgramming, m.endpointsPending, m.endpointsTotal, m.servicesPending,
		m.servicesTotal, m.noLocalEndpoints, m.syncFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
