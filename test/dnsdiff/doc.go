// Package dnsdiff is the differential test of kubesvc's cluster DNS (internal/dns) against
// CoreDNS v1.15.0 with its kubernetes plugin (issue 7's proof). One kubesvc API server holds
// one cluster state — Services of every kind (ClusterIP with TCP/UDP/SCTP named ports,
// unnamed ports, NodePort, LoadBalancer, headless with hostnames, IP-dash names, IPv6 and
// not-ready endpoints, a headless Service too large for 512 bytes, ExternalName outside and
// inside the zone and as an IP), selector Services whose slices the EndpointSlice controller
// writes from pods, and pods — and both servers read it through client-go: CoreDNS through a
// kubeconfig (which also proves a third-party controller works against our API), with the
// kubeadm Corefile (`pods insecure`, `fallthrough in-addr.arpa ip6.arpa`, `ttl 30`, no cache),
// and both forward other names to one upstream the test runs on 127.0.0.1.
//
// Several hundred questions (every name × many types over UDP with EDNS0, a subset over TCP
// and over UDP without EDNS0) go to both; rcode and the answer and authority sections are
// compared (TTLs and the SOA serial aside, order-insensitive; a truncated answer by its
// record count, since which records survive truncation depends on answer order). The test
// prints `matched N of M` and fails on any difference.
//
// It needs the coredns peer binary (hack/peers/build.sh coredns) and skips with a clear
// message when it is missing. Run it in a private network namespace (hack/test.sh).
//
// The package has no non-test code; nothing imports it.
package dnsdiff
