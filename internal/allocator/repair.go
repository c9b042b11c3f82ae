package allocator

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
)

var servicesInfo = resource.Lookup(corev1.SchemeGroupVersion.WithResource("services"))

// RepairResult says what one Repair pass changed and found.
type RepairResult struct {
	// Removed are allocation keys no Service held (orphans), now deleted.
	Removed []string
	// Created are keys of values a Service held without a key (data from before the
	// allocator, or a restored backup), now created.
	Created []string
	// Reowned are keys whose owner did not match the Service holding the value, now fixed.
	Reowned []string
	// Problems are inconsistencies Repair cannot fix: a value held by several Services, or a
	// value outside the configured ranges. Each line names the Services.
	Problems []string
}

// Repair makes the allocation keys match the Services, as kube's ipallocator and
// portallocator repair controllers do: it reads all Services and all keys at one etcd
// revision, deletes keys that no Service holds, creates missing keys of held values and
// fixes wrong owners. Every change is conditional on the key (and for creations, the
// Service) being unchanged since that revision, so Repair is safe while other servers
// allocate, and it never frees a value a committed Service holds: a Service and its keys are
// always written in one transaction. It reports values several Services claim without
// changing them.
func (a *Allocator) Repair(ctx context.Context) (RepairResult, error) {
	var res RepairResult
	keys, err := a.client.Get(ctx, a.root, clientv3.WithPrefix())
	if err != nil {
		return res, fmt.Errorf("repair: read allocations: %w", err)
	}
	rev := keys.Header.Revision
	list, err := a.store.List(ctx, servicesInfo, a.store.ResourcePrefix(servicesInfo), storage.ListOptions{
		ResourceVersion: strconv.FormatInt(rev, 10), Exact: true,
	})
	if err != nil {
		return res, fmt.Errorf("repair: list services at revision %d: %w", rev, err)
	}
	type holder struct {
		owner string
		key   string // the Service's etcd key
		rv    string
	}
	held := map[string][]holder{}
	for _, obj := range list.Items {
		svc := obj.(*corev1.Service)
		h := holder{owner: Owner(svc), key: a.store.Key(servicesInfo, svc.Namespace, svc.Name), rv: svc.ResourceVersion}
		rel := a.strategy.ReleasedOnDelete(svc)
		for _, s := range rel.ClusterIPs {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			ip = ip.Unmap()
			if !a.inRanges(ip) {
				res.Problems = append(res.Problems, fmt.Sprintf("cluster IP %s of service %s/%s is not within the service CIDRs; please recreate the service", s, svc.Namespace, svc.Name))
				continue
			}
			k := a.IPKey(ip)
			held[k] = appendHolder(held[k], h)
		}
		for _, p := range rel.NodePorts {
			if !a.ports.Contains(p) {
				res.Problems = append(res.Problems, fmt.Sprintf("node port %d of service %s/%s is not within the port range %v; please recreate the service", p, svc.Namespace, svc.Name, a.ports))
				continue
			}
			k := a.PortKey(p)
			held[k] = appendHolder(held[k], h)
		}
	}
	existing := map[string]bool{}
	for _, kv := range keys.Kvs {
		k, v := string(kv.Key), string(kv.Value)
		if !strings.HasPrefix(k, a.ipPrefix()) && !strings.HasPrefix(k, a.portPrefix()) {
			continue // other kubesvc keys (API server leases)
		}
		existing[k] = true
		hs := held[k]
		switch {
		case len(hs) == 0:
			ok, err := a.commit(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision)}, clientv3.OpDelete(k))
			if err != nil {
				return res, err
			}
			if ok {
				res.Removed = append(res.Removed, k)
			}
		case len(hs) == 1 && hs[0].owner != v:
			ok, err := a.commit(ctx, []clientv3.Cmp{
				clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision),
				clientv3.Compare(clientv3.ModRevision(hs[0].key), "=", mustInt(hs[0].rv)),
			}, clientv3.OpPut(k, hs[0].owner))
			if err != nil {
				return res, err
			}
			if ok {
				res.Reowned = append(res.Reowned, k)
			}
		}
	}
	ks := make([]string, 0, len(held))
	for k := range held {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		hs := held[k]
		if len(hs) > 1 {
			owners := make([]string, len(hs))
			for i, h := range hs {
				owners[i] = h.owner
			}
			res.Problems = append(res.Problems, fmt.Sprintf("%s is allocated to several services: %s; please recreate all but one", strings.TrimPrefix(k, a.root), strings.Join(owners, ", ")))
			continue
		}
		if existing[k] {
			continue
		}
		ok, err := a.commit(ctx, []clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(k), "=", 0),
			clientv3.Compare(clientv3.ModRevision(hs[0].key), "=", mustInt(hs[0].rv)),
		}, clientv3.OpPut(k, hs[0].owner))
		if err != nil {
			return res, err
		}
		if ok {
			res.Created = append(res.Created, k)
		}
	}
	for _, k := range res.Removed {
		a.logf("allocator repair: released %s, which no service holds", strings.TrimPrefix(k, a.root))
	}
	for _, k := range res.Created {
		a.logf("allocator repair: recorded %s, held by a service without an allocation", strings.TrimPrefix(k, a.root))
	}
	for _, p := range res.Problems {
		a.logf("allocator repair: %s", p)
	}
	return res, nil
}

// RunRepair runs Repair every interval until ctx ends, logging errors.
func (a *Allocator) RunRepair(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := a.Repair(ctx); err != nil && ctx.Err() == nil {
				a.logf("allocator repair: %v", err)
			}
		}
	}
}

func appendHolder[T comparable](hs []T, h T) []T {
	if slices.Contains(hs, h) {
		return hs
	}
	return append(hs, h)
}

func (a *Allocator) inRanges(ip netip.Addr) bool {
	for _, r := range a.ranges {
		if r.contains(ip) {
			return true
		}
	}
	return false
}

// commit runs one conditional write and reports whether it applied.
func (a *Allocator) commit(ctx context.Context, cmps []clientv3.Cmp, ops ...clientv3.Op) (bool, error) {
	resp, err := a.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("repair: %w", err)
	}
	return resp.Succeeded, nil
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
