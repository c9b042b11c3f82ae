package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// nodeCIDRMaskBits is the size of a node's podCIDR (kube-controller-manager's
// --node-cidr-mask-size-ipv4 default).
const nodeCIDRMaskBits = 24

// nodeIPAM assigns each Node without one a podCIDR from --cluster-cidr, the lowest free subnet
// first, like kube-controller-manager's range allocator. One allocator per cluster is assumed
// (several servers on one etcd could hand out a subnet twice; kube elects a leader).
type nodeIPAM struct {
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	cidr    netip.Prefix
	bits    int
	queue   workqueue.TypedRateLimitingInterface[string]

	mu   sync.Mutex
	used map[netip.Prefix]string // subnet → node
}

func newNodeIPAM(client kubernetes.Interface, clusterCIDR string) (*nodeIPAM, error) {
	p, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cidr: %w", err)
	}
	bits := nodeCIDRMaskBits
	if p.Addr().Is6() {
		bits = 64
	}
	if p.Bits() > bits {
		bits = p.Bits()
	}
	n := &nodeIPAM{
		client: client, factory: informers.NewSharedInformerFactory(client, 0), cidr: p.Masked(), bits: bits,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"}),
		used:  map[netip.Prefix]string{},
	}
	_, err = n.factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.observe(obj.(*corev1.Node)) },
		UpdateFunc: func(_, obj any) { n.observe(obj.(*corev1.Node)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if node, ok := obj.(*corev1.Node); ok {
				n.release(node)
			}
		},
	})
	return n, err
}

// observe records a node's subnet or queues it for one.
func (n *nodeIPAM) observe(node *corev1.Node) {
	if node.Spec.PodCIDR == "" {
		n.queue.Add(node.Name)
		return
	}
	if p, err := netip.ParsePrefix(node.Spec.PodCIDR); err == nil {
		n.mu.Lock()
		n.used[p.Masked()] = node.Name
		n.mu.Unlock()
	}
}

func (n *nodeIPAM) release(node *corev1.Node) {
	p, err := netip.ParsePrefix(node.Spec.PodCIDR)
	if err != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.used[p.Masked()] == node.Name {
		delete(n.used, p.Masked())
	}
}

// run allocates until ctx ends; allocation starts after the informer has synced, so every
// existing subnet is known.
func (n *nodeIPAM) run(ctx context.Context) {
	defer n.queue.ShutDown()
	n.factory.Start(ctx.Done())
	defer n.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), n.factory.Core().V1().Nodes().Informer().HasSynced) {
		return
	}
	go func() {
		<-ctx.Done()
		n.queue.ShutDown()
	}()
	for {
		name, quit := n.queue.Get()
		if quit {
			return
		}
		if err := n.sync(ctx, name); err != nil {
			klog.ErrorS(err, "node IPAM", "node", name)
			n.queue.AddRateLimited(name)
		} else {
			n.queue.Forget(name)
		}
		n.queue.Done(name)
	}
}

func (n *nodeIPAM) sync(ctx context.Context, name string) error {
	// The API, not the cache: a node queued twice may already have its subnet.
	node, err := n.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if node.Spec.PodCIDR != "" {
		n.observe(node)
		return nil
	}
	subnet, err := n.allocate(name)
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": subnet.String(), "podCIDRs": []string{subnet.String()}}})
	if _, err := n.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		n.mu.Lock()
		delete(n.used, subnet)
		n.mu.Unlock()
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("assign podCIDR %s: %w", subnet, err)
	}
	klog.V(2).InfoS("assigned podCIDR", "node", name, "podCIDR", subnet)
	return nil
}

// allocate reserves the lowest free subnet for node.
func (n *nodeIPAM) allocate(node string) (netip.Prefix, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	count := 1 << min(n.bits-n.cidr.Bits(), 16)
	subnet := netip.PrefixFrom(n.cidr.Addr(), n.bits)
	for range count {
		if _, used := n.used[subnet]; !used {
			n.used[subnet] = node
			return subnet, nil
		}
		next := nextPrefix(subnet)
		if !next.IsValid() || !n.cidr.Contains(next.Addr()) {
			break
		}
		subnet = next
	}
	return netip.Prefix{}, fmt.Errorf("--cluster-cidr %s has no free /%d for node %s", n.cidr, n.bits, node)
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
