package allocator

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/registry/service"
	"kubesvc/internal/storage"
)

// op is the allocation state of one Service write: what it reserved (to create in the
// write's transaction) and, in dry-run, kube's dry-run answers. It implements
// service.Allocator for one call of BeginCreate / BeginUpdate; it is not safe for concurrent
// use.
type op struct {
	ctx    context.Context
	a      *Allocator
	owner  string
	dryRun bool

	ips   []netip.Addr
	ports []int
	// dryPorts are the node ports a dry-run operation "allocated" (kube's
	// PortAllocationOperation.allocated in dry-run mode).
	dryPorts []int
}

var _ service.Allocator = (*op)(nil)

func (a *Allocator) newOp(ctx context.Context, owner string, dryRun bool) *op {
	return &op{ctx: ctx, a: a, owner: owner, dryRun: dryRun}
}

// AllocateClusterIP reserves ip. Outside the family's usable range it fails like kube's
// ServiceCIDR allocator (ErrMismatchedNetwork; in dry-run, IPNotInRangeError); a dry run
// checks nothing else, as kube's does.
func (o *op) AllocateClusterIP(family corev1.IPFamily, ip net.IP) error {
	addr, ok := netip.AddrFromSlice(ip)
	r := o.a.ranges[family]
	if !ok || r == nil {
		return ErrMismatchedNetwork
	}
	addr = addr.Unmap()
	if o.dryRun {
		if !r.contains(addr) {
			return &IPNotInRangeError{IP: addr, ValidRange: r.prefix}
		}
		return nil
	}
	if !r.contains(addr) {
		return ErrMismatchedNetwork
	}
	if slices.Contains(o.ips, addr) {
		return ErrIPAllocated
	}
	taken, err := o.a.exists(o.ctx, o.a.IPKey(addr))
	if err != nil {
		return err
	}
	if taken {
		return ErrIPAllocated
	}
	o.ips = append(o.ips, addr)
	return nil
}

// AllocateNextClusterIP reserves a free IP of family. A dry run answers the network address
// of the range without looking, as kube's does.
func (o *op) AllocateNextClusterIP(family corev1.IPFamily) (net.IP, error) {
	r := o.a.ranges[family]
	if r == nil {
		return nil, fmt.Errorf("%s is not configured on this cluster", family)
	}
	if o.dryRun {
		return net.IP(r.prefix.Addr().AsSlice()), nil
	}
	skip := map[netip.Addr]bool{}
	for _, ip := range o.ips {
		skip[ip] = true
	}
	ip, ok := o.a.pickIP(r, skip)
	if !ok {
		return nil, ErrFull
	}
	o.ips = append(o.ips, ip)
	return net.IP(ip.AsSlice()), nil
}

// AllocateNodePort reserves port. A dry run checks only that nobody holds it yet (not the
// range), as kube's PortAllocationOperation does.
func (o *op) AllocateNodePort(port int) error {
	if o.dryRun {
		taken, err := o.a.exists(o.ctx, o.a.PortKey(port))
		if err != nil {
			return err
		}
		if taken || slices.Contains(o.dryPorts, port) {
			return ErrPortAllocated
		}
		o.dryPorts = append(o.dryPorts, port)
		return nil
	}
	if !o.a.ports.Contains(port) {
		return &PortNotInRangeError{ValidPorts: o.a.ports}
	}
	if slices.Contains(o.ports, port) {
		return ErrPortAllocated
	}
	taken, err := o.a.exists(o.ctx, o.a.PortKey(port))
	if err != nil {
		return err
	}
	if taken {
		return ErrPortAllocated
	}
	o.ports = append(o.ports, port)
	return nil
}

// AllocateNextNodePort reserves a free node port. A dry run answers kube's placeholder: one
// above the highest port this operation reserved, or 32769 for the first.
func (o *op) AllocateNextNodePort() (int, error) {
	if o.dryRun {
		last := 32768
		if len(o.dryPorts) > 0 {
			last = slices.Max(o.dryPorts)
		}
		o.dryPorts = append(o.dryPorts, last+1)
		return last + 1, nil
	}
	skip := map[int]bool{}
	for _, p := range o.ports {
		skip[p] = true
	}
	p, ok := o.a.pickPort(skip)
	if !ok {
		return 0, ErrFull
	}
	o.ports = append(o.ports, p)
	return p, nil
}

// txn returns the etcd operations that commit this operation with the object write: create
// every reserved key (failing the write if one exists), and delete the released keys this
// owner holds. extra operations (e.g. deleting the Service's Endpoints) are appended. It
// returns nil when there is nothing to do or in dry-run.
// claimedKeys are the allocation keys the op takes.
func (o *op) claimedKeys() []string {
	var keys []string
	for _, ip := range o.ips {
		keys = append(keys, o.a.IPKey(ip))
	}
	for _, p := range o.ports {
		keys = append(keys, o.a.PortKey(p))
	}
	return keys
}

func (o *op) txn(rel service.Release, extra ...clientv3.Op) *storage.Txn {
	if o.dryRun {
		return nil
	}
	t := &storage.Txn{}
	claimed := map[string]bool{}
	for _, ip := range o.ips {
		k := o.a.IPKey(ip)
		claimed[k] = true
		t.Cmps = append(t.Cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		t.Ops = append(t.Ops, clientv3.OpPut(k, o.owner))
	}
	for _, p := range o.ports {
		k := o.a.PortKey(p)
		claimed[k] = true
		t.Cmps = append(t.Cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		t.Ops = append(t.Ops, clientv3.OpPut(k, o.owner))
	}
	var freed []string
	for _, s := range rel.ClusterIPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			freed = append(freed, o.a.IPKey(ip.Unmap()))
		}
	}
	for _, p := range rel.NodePorts {
		freed = append(freed, o.a.PortKey(p))
	}
	slices.Sort(freed)
	for _, k := range slices.Compact(freed) {
		if claimed[k] {
			continue // freed and taken again by the same write: the key stays
		}
		// Only delete what this Service holds: a key another Service owns stays (Repair
		// reports such inconsistencies).
		t.Ops = append(t.Ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.Value(k), "=", o.owner)},
			[]clientv3.Op{clientv3.OpDelete(k)}, nil))
	}
	t.Ops = append(t.Ops, extra...)
	if len(t.Ops) == 0 {
		return nil
	}
	return t
}
