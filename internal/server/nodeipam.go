package server

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"kubesvc/internal/apiserver"
	"kubesvc/internal/storage"
)

// nodeCIDRMaskBits is the size of a node's podCIDR (kube-controller-manager's
// --node-cidr-mask-size-ipv4 default).
const nodeCIDRMaskBits = 24

// nodeCIDRs is node IPAM as write hooks on nodes: a Node created without spec.podCIDR gets the
// lowest free subnet of --cluster-cidr in the same etcd transaction that stores it, and each
// subnet is an etcd key (<prefix>/kubesvc/podcidrs/<subnet>) created only if absent, so
// concurrent creates and several servers on one etcd never hand out a subnet twice (the
// losing write is redone). Kubernetes' range allocator assigns asynchronously after the
// create; doing it at create time means a node never exists without its podCIDR, and no
// controller races other writers of the Node. When the range is exhausted the node is created
// without one, as kube leaves it (CIDRNotAvailable).
type nodeCIDRs struct {
	client *clientv3.Client
	root   string
	cidr   netip.Prefix
	bits   int
}

func newNodeCIDRs(client *clientv3.Client, etcdPrefix, clusterCIDR string) (*nodeCIDRs, error) {
	p, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cidr: %w", err)
	}
	bits := nodeCIDRMaskBits
	if p.Addr().Is6() {
		bits = 64
	}
	bits = max(bits, p.Bits())
	return &nodeCIDRs{client: client, root: strings.TrimSuffix(etcdPrefix, "/") + "/kubesvc/podcidrs/", cidr: p.Masked(), bits: bits}, nil
}

func (n *nodeCIDRs) key(p netip.Prefix) string {
	return n.root + strings.ReplaceAll(p.Masked().String(), "/", "_")
}

// inRange returns the node's podCIDR when it is one of our subnets.
func (n *nodeCIDRs) inRange(node *corev1.Node) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(node.Spec.PodCIDR)
	if err != nil || p.Bits() != n.bits || !n.cidr.Contains(p.Addr()) {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

func (n *nodeCIDRs) reserve(p netip.Prefix, node string) *storage.Txn {
	k := n.key(p)
	return &storage.Txn{
		Cmps: []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0)},
		Ops:  []clientv3.Op{clientv3.OpPut(k, node)},
	}
}

// BeforeCreate assigns a free subnet to a node without one and reserves a given one.
func (n *nodeCIDRs) BeforeCreate(ctx context.Context, obj runtime.Object, dryRun bool) (*storage.Txn, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, nil
	}
	if node.Spec.PodCIDR != "" {
		p, ours := n.inRange(node)
		if !ours || dryRun {
			return nil, nil
		}
		return n.reserve(p, node.Name), nil
	}
	resp, err := n.client.Get(ctx, n.root, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("node IPAM: %w", err)
	}
	used := map[string]bool{}
	for _, kv := range resp.Kvs {
		used[string(kv.Key)] = true
	}
	subnet := netip.PrefixFrom(n.cidr.Addr(), n.bits)
	for range 1 << min(n.bits-n.cidr.Bits(), 16) {
		if !used[n.key(subnet)] {
			node.Spec.PodCIDR, node.Spec.PodCIDRs = subnet.String(), []string{subnet.String()}
			if dryRun {
				return nil, nil
			}
			return n.reserve(subnet, node.Name), nil
		}
		next := nextPrefix(subnet)
		if !next.IsValid() || !n.cidr.Contains(next.Addr()) {
			break
		}
		subnet = next
	}
	return nil, nil
}

// BeforeUpdate reserves a subnet set on a node that had none.
func (n *nodeCIDRs) BeforeUpdate(_ context.Context, obj, old runtime.Object, dryRun bool) (*storage.Txn, error) {
	node, ok1 := obj.(*corev1.Node)
	prev, ok2 := old.(*corev1.Node)
	if !ok1 || !ok2 || dryRun || prev.Spec.PodCIDR != "" || node.Spec.PodCIDR == "" {
		return nil, nil
	}
	if p, ours := n.inRange(node); ours {
		return n.reserve(p, node.Name), nil
	}
	return nil, nil
}

// BeforeDelete frees the node's subnet.
func (n *nodeCIDRs) BeforeDelete(_ context.Context, obj runtime.Object) (*storage.Txn, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, nil
	}
	if p, ours := n.inRange(node); ours {
		return &storage.Txn{Ops: []clientv3.Op{clientv3.OpDelete(n.key(p))}}, nil
	}
	return nil, nil
}

// hooks adds the node IPAM hooks to the server's other write hooks.
func (na *nodeAccess) hooks(others map[schema.GroupResource]apiserver.WriteHooks) map[schema.GroupResource]apiserver.WriteHooks {
	out := map[schema.GroupResource]apiserver.WriteHooks{{Resource: "nodes"}: na.cidrs}
	for gr, h := range others {
		out[gr] = h
	}
	return out
}

// nextPrefix returns the prefix of the same size right after p.
func nextPrefix(p netip.Prefix) netip.Prefix {
	b := p.Addr().AsSlice()
	bit := p.Bits() - 1
	for bit >= 0 {
		i, m := bit/8, byte(1)<<(7-bit%8)
		if b[i]&m == 0 {
			b[i] |= m
			break
		}
		b[i] &^= m
		bit--
	}
	if bit < 0 {
		return netip.Prefix{}
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, p.Bits())
}
