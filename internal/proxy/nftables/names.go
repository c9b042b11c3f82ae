package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strings"

	"kubesvc/internal/proxy"
)

// TableName is the main table in families ip and ip6 (NFT-01; kube-proxy's is "kube-proxy").
// The per-service NAT chains live in Shards tables named TableName-svc<i> (see README.md).
const TableName = "kubesvc"

// Shards is the number of tables the Services' NAT chains are spread over. nf_tables
// validates a whole table on every commit that adds a rule or a jump; with all Services in one
// table, adding one at 10k present cost 100+ ms of kernel time. NAT hooks run for the first
// packet of a connection only, so each shard costs one map lookup on that packet.
const Shards = 16

func shardName(i int) string { return fmt.Sprintf("%s-svc%d", TableName, i) }

// Base chains (NFT-02), fixed chains, sets and maps (§6.2). masquerade-non-pod is ours: it
// holds the local-traffic detector (`ip saddr <clusterCIDR> return`, one rule per CIDR) so
// that several cluster CIDRs need no interval set.
const (
	chainFilterPrerouting     = "filter-prerouting"
	chainFilterInput          = "filter-input"
	chainFilterForward        = "filter-forward"
	chainFilterOutput         = "filter-output"
	chainFilterOutputPostDNAT = "filter-output-post-dnat"
	chainNATPrerouting        = "nat-prerouting"
	chainNATOutput            = "nat-output"
	chainNATPostrouting       = "nat-postrouting"

	chainServices               = "services"
	chainServiceEndpointsCheck  = "service-endpoints-check"
	chainNodePortEndpointsCheck = "nodeport-endpoints-check"
	chainReject                 = "reject-chain"
	chainFirewallCheck          = "firewall-check"
	chainClusterIPsCheck        = "cluster-ips-check"
	chainMarkForMasquerade      = "mark-for-masquerade"
	chainMasquerading           = "masquerading"
	chainMasqueradeNonPod       = "masquerade-non-pod"

	setClusterIPs                 = "cluster-ips"
	setNodePortIPs                = "nodeport-ips"
	mapServiceIPs                 = "service-ips"
	mapServiceNodePorts           = "service-nodeports"
	mapNoEndpointServices         = "no-endpoint-services"
	mapNoEndpointNodePorts        = "no-endpoint-nodeports"
	mapFirewallIPs                = "firewall-ips"
	setHairpin                    = "hairpin-endpoints" // ours: endpoint ip . endpoint ip
	masqueradeBit          uint32 = 0x4000              // PX-M-01: --iptables-masquerade-bit 14
)

// hashAndTruncate is kube-proxy's name scheme (NFT-N-01): the first 8 characters of the
// base32 SHA-256 of base, "-", base; cut to 240 characters ending in "...".
func hashAndTruncate(base string) string {
	sum := sha256.Sum256([]byte(base))
	name := base32.StdEncoding.EncodeToString(sum[:])[:8] + "-" + base
	if len(name) > 240 {
		name = name[:237] + "..."
	}
	return name
}

// serviceBase is "<ns>/<svc>/<proto>/<portname>" (NFT-N-01).
func serviceBase(n proxy.ServicePortName) string {
	return fmt.Sprintf("%s/%s/%s/%s", n.Namespace, n.Name, strings.ToLower(string(n.Protocol)), n.Port)
}

// endpointBase is serviceBase + "__<ip>/<port>" with IPv6 colons as dots.
func endpointBase(svc string, ip netip.Addr, port int32) string {
	return fmt.Sprintf("%s__%s/%d", svc, strings.ReplaceAll(ip.String(), ":", "."), port)
}

// names are the per-service object names.
type names struct {
	cluster, local, external, firewall string
}

func serviceNames(n proxy.ServicePortName) (string, names) {
	h := hashAndTruncate(serviceBase(n))
	return serviceBase(n), names{
		cluster: "service-" + h, local: "local-" + h, external: "external-" + h, firewall: "firewall-" + h,
	}
}

func endpointChain(svcBase string, ip netip.Addr, port int32) string {
	return "endpoint-" + hashAndTruncate(endpointBase(svcBase, ip, port))
}

func affinitySet(svcBase string, ip netip.Addr, port int32) string {
	return "affinity-" + hashAndTruncate(endpointBase(svcBase, ip, port))
}

// dnatMapName is the map of a policy chain's endpoints (see batch.addDNATRandom); chain names
// are at most 248 characters, so this fits the kernel's 255.
func dnatMapName(chain string) string { return "dnat-" + chain }
