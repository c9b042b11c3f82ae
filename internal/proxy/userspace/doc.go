// Package userspace is the `--proxy-mode userspace` dataplane of the service proxy
// (k8s-service-spec.md §5): a Go TCP and UDP proxy for kernels without nf_tables.
//
// For every ClusterIP, externalIP and LoadBalancer IP of a Service port that has endpoints
// (PX-E-03) the proxy listens on that IP:port itself; the IPs are made local addresses of the
// node by adding them to a bridge with no ports (Config.Device, default "kubesvc-vip0"; the
// dummy link type is not available on our kernels). NodePorts are served on every address of
// Snapshot.NodeIPs. A Service port without endpoints has its VIPs but no listener, so the
// kernel refuses connections at once (TCP RST, ICMP port unreachable for UDP), as PX-T-01
// requires.
//
// TCP connections are accepted, an endpoint is chosen (uniformly at random, PX-E-05, or by
// ClientIP affinity, PX-A-*), dialled with a short timeout (other endpoints are tried on
// failure) and both directions are spliced (io.Copy between *net.TCPConn uses splice(2)),
// half-closes forwarded. UDP flows are per-client sessions with an idle timeout; a session
// whose endpoint disappears moves to another endpoint on its next datagram.
//
// The data path takes no global lock: Sync swaps per-service endpoint lists through atomic
// pointers and touches listeners only of the service ports it is told changed.
//
// Differences from the nftables mode (README.md has the full list): endpoints see the node's
// address as the source of every proxied connection (no client source IP, even with
// externalTrafficPolicy Local); "drop" (PX-T-02/03) is an accepted TCP connection that never
// gets data; established connections end when the agent process stops.
//
// Imported by internal/agent only (through the proxy.Dataplane interface).
package userspace
