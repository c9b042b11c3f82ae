// Package proxy is the generic part of the service proxy (k8s-service-spec.md §5): change
// trackers fed by informers on Services, EndpointSlices and this Node, endpoint categorization
// (spec §5.3/§5.4), a bounded-frequency runner, health-check servers (spec §5.8) and metrics
// with kube-proxy's names. It hands a Snapshot of the desired state to a Dataplane
// (internal/proxy/nftables or internal/proxy/userspace).
//
// Imported by internal/agent and the dataplane packages; it imports no apiserver or storage code.
package proxy

import (
	"context"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// ServicePortName identifies one port of one Service (kube-proxy's proxy.ServicePortName).
type ServicePortName struct {
	types.NamespacedName
	Port     string // the port's name ("" for a single unnamed port)
	Protocol corev1.Protocol
}

// String returns "ns/name:port" ("ns/name" when the port has no name), as kube-proxy (PX-04).
func (n ServicePortName) String() string {
	if n.Port == "" {
		return n.NamespacedName.String()
	}
	return n.NamespacedName.String() + ":" + n.Port
}

// ServicePort is what a dataplane needs of one Service port (spec §5.2). Headless and
// ExternalName Services never appear.
type ServicePort struct {
	Name                     ServicePortName
	ClusterIPs               []netip.Addr // the Service's clusterIPs, of the families this node serves
	Port                     int32
	Protocol                 corev1.Protocol
	NodePort                 int32 // 0 when none
	ExternalIPs              []netip.Addr
	LoadBalancerIPs          []netip.Addr // status.loadBalancer.ingress[].ip whose ipMode is unset or VIP
	LoadBalancerSourceRanges []netip.Prefix
	AffinityTimeout          time.Duration // > 0 iff sessionAffinity ClientIP (default 10800 s)
	ExternalPolicyLocal      bool          // externalTrafficPolicy Local (NodePort/LoadBalancer only)
	InternalPolicyLocal      bool          // internalTrafficPolicy Local
	HealthCheckNodePort      int32
}

// Endpoint is one endpoint of a ServicePort, merged from the Service's EndpointSlices
// (deduplicated by IP:port).
type Endpoint struct {
	IP                          netip.Addr
	Port                        int32 // the resolved target port for this ServicePort
	Ready, Serving, Terminating bool
	NodeName                    string
	Local                       bool // NodeName is this node
}

// ServiceState is one service port with its endpoints, categorized per spec §5.3/§5.4
// (kube's CategorizeEndpoints).
type ServiceState struct {
	ServicePort
	Endpoints           []Endpoint // all endpoints, sorted by IP then port
	ClusterEndpoints    []Endpoint // for cluster-internal traffic (internal policy applied); empty = none usable
	LocalEndpoints      []Endpoint // for external traffic when ExternalPolicyLocal; empty = drop
	AllLocallyReachable []Endpoint // union used for masquerade/affinity decisions, as kube's allReachableEndpoints

	// Added after the first version of the contract (fields only added, never renamed):

	// ClusterPolicyEndpoints is kube's clusterEndpoints: ready endpoints anywhere, else
	// serving-terminating ones (PX-E-01); nil when the port never uses Cluster policy. It is
	// what external traffic uses under externalTrafficPolicy Cluster, and what pod traffic
	// short-circuits to under Local (PX-T-04).
	ClusterPolicyEndpoints []Endpoint
	// ExternalEndpoints is what traffic to NodePorts, externalIPs and LB IPs uses:
	// LocalEndpoints when ExternalPolicyLocal, else ClusterPolicyEndpoints. Empty with
	// HasEndpoints = drop (PX-T-03); empty without = reject (PX-T-01).
	ExternalEndpoints []Endpoint
	// HasEndpoints is kube's hasAnyEndpoints (PX-E-03): some endpoint anywhere is ready or
	// serving-terminating. Without it, traffic is rejected; with it but no usable endpoint
	// for a policy, dropped (PX-T-01/02/03).
	HasEndpoints bool
}

// Snapshot is the whole desired state handed to a dataplane.
type Snapshot struct {
	Services      map[ServicePortName]*ServiceState
	NodeName      string
	NodeIPs       []netip.Addr   // addresses NodePorts answer on (the node's addresses, never loopback unless configured)
	ClusterCIDRs  []netip.Prefix // pod network; traffic from outside it to a ClusterIP is masqueraded
	MasqueradeAll bool
}

// Dataplane programs a Snapshot into the node. Implementations: internal/proxy/nftables,
// internal/proxy/userspace.
type Dataplane interface {
	Name() string // "nftables" or "userspace"
	// Sync makes the dataplane match snap. changed lists the service ports that differ from the
	// snapshot of the previous successful Sync; full means ignore changed and rebuild everything
	// (first sync, after a failed sync, and after the Snapshot's node-level fields changed).
	// Periodic resyncs are not full: they pass the changes since the last sync (often none), so
	// that affinity state in the dataplane survives them.
	Sync(ctx context.Context, snap *Snapshot, changed sets.Set[ServicePortName], full bool) error
	// Cleanup removes everything this dataplane ever installed on the node; safe to call when nothing is installed.
	Cleanup() error
	// Close stops the dataplane's goroutines/listeners without removing kernel state (an agent restart keeps rules).
	Close() error
}
