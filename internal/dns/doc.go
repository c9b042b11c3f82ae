// Package dns is the cluster DNS server of a kubesvc node agent: it answers the Kubernetes
// DNS schema (k8s-service-spec.md §4) for the cluster zone and the reverse zones from slim
// projections of Service, EndpointSlice, Namespace (and, in "verified" pod mode, Pod) informer
// caches, and forwards every other name to upstream servers through a cache.
//
// Answers follow CoreDNS v1.15's kubernetes plugin as configured by kubeadm
// (`kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough in-addr.arpa
// ip6.arpa }`, `forward . <upstreams>`), including its NXDOMAIN/NODATA choices, SRV weights,
// SOA fields, truncation and EDNS0 handling; test/dnsdiff proves it answer for answer. Metrics
// carry CoreDNS's names so existing dashboards work.
//
// Replies computed from the caches are kept packed until the next informer event changes the
// store (zonecache.go), so a repeated cluster question costs a map lookup, never a stale answer.
//
// Usage: New(cfg) builds the server, Start(ctx) syncs the caches and binds UDP and TCP on every
// cfg.Listen address, Close stops it. The server's methods are safe for concurrent use.
//
// Only the node agent (and tests, benchmarks) import this package; it imports no apiserver or
// storage code, only client-go.
package dns
