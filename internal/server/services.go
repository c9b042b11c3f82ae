package server

// Services: the cluster-IP / node-port allocator wired into the API server's write hooks,
// the built-in Services default/kubernetes and kube-system/kube-dns, and the kubernetes
// Service's Endpoints and EndpointSlice, which list every live API server.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"kubesvc/internal/allocator"
	"kubesvc/internal/apiserver"
	"kubesvc/internal/resource"
	"kubesvc/internal/storage"
)

const (
	// repairInterval is how often the allocator's repair pass runs after the one at start
	// (kube-apiserver's repair loops run every 3 minutes).
	repairInterval = 3 * time.Minute
	// apiserverLeaseTTL is the lifetime in seconds of an API server's entry in the
	// kubernetes Service's endpoints once the server stops refreshing it (kube's
	// DefaultEndpointReconcilerTTL).
	apiserverLeaseTTL = 15
	// endpointsResync is how often each server rewrites the kubernetes endpoints from the
	// live API server leases.
	endpointsResync = 10 * time.Second
)

var (
	endpointsInfo      = resource.Lookup(corev1.SchemeGroupVersion.WithResource("endpoints"))
	endpointSlicesInfo = resource.Lookup(discoveryv1.SchemeGroupVersion.WithResource("endpointslices"))
)

// services is the server's service machinery: the allocator and the reconciler of the
// built-in Services' endpoints.
type services struct {
	alloc  *allocator.Allocator
	store  *storage.Store
	client *clientv3.Client
	root   string // <prefix>/kubesvc/apiservers/

	ctx    context.Context // ends at close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// parseServiceCIDRs parses --service-cidr (one CIDR or two comma-separated).
func parseServiceCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("--service-cidr: %w", err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// startServices builds the allocator from the configuration, loads its view of the
// allocations, repairs them once, and keeps repairing every repairInterval until ctx ends.
func startServices(ctx context.Context, cfg *Config, store *storage.Store) (*services, error) {
	cidrs, err := parseServiceCIDRs(cfg.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	ports, err := allocator.ParsePortRange(cfg.NodePortRange)
	if err != nil {
		return nil, fmt.Errorf("--service-node-port-range: %w", err)
	}
	if dns, err := netip.ParseAddr(cfg.ClusterDNS); err == nil {
		in := false
		for _, p := range cidrs {
			in = in || (p.Contains(dns) && dns != p.Addr())
		}
		if !in {
			return nil, fmt.Errorf("--cluster-dns %s is not in --service-cidr %s", cfg.ClusterDNS, cfg.ServiceCIDR)
		}
	}
	a, err := allocator.New(allocator.Config{Store: store, Prefix: cfg.EtcdPrefix, ServiceCIDRs: cidrs, NodePortRange: ports})
	if err != nil {
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	if _, err := a.Repair(ctx); err != nil {
		a.Close()
		return nil, err
	}
	s := &services{alloc: a, store: store, client: store.Client(), root: strings.TrimSuffix(cfg.EtcdPrefix, "/") + "/kubesvc/apiservers/"}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		a.RunRepair(s.ctx, repairInterval)
	}()
	return s, nil
}

// hooks returns the API server write hooks: allocation for services.
func (s *services) hooks() map[schema.GroupResource]apiserver.WriteHooks {
	return map[schema.GroupResource]apiserver.WriteHooks{{Resource: "services"}: s.alloc}
}

// bootstrap creates default/kubernetes (first IP of the first service CIDR, https 443 → the
// API port) and kube-system/kube-dns (--cluster-dns) through the API, so that they hold
// their allocations like any Service, registers this server in the kubernetes endpoints
// (an etcd key under a lease of apiserverLeaseTTL, kube's lease endpoint reconciler) and
// keeps those current. It is idempotent and safe when several servers start at once; only
// etcd failures of the registration are fatal.
func (s *services) bootstrap(ctx context.Context, cs kubernetes.Interface, cfg *Config, advertise netip.Addr, port int) error {
	cidrs, _ := parseServiceCIDRs(cfg.ServiceCIDR)
	kube := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			ClusterIP:       cidrs[0].Addr().Next().String(),
			SessionAffinity: corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443,
				TargetPort: intstr.FromInt32(int32(port))}},
		},
	}
	// A built-in Service that cannot be created (its IP taken by a user's Service) is
	// reported, not fatal, as in kube-apiserver.
	if err := ensureService(ctx, cs, kube, true); err != nil {
		klog.Warningf("built-in services: %v", err)
	}
	local := corev1.ServiceInternalTrafficPolicyLocal
	dns := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true"}},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeClusterIP,
			ClusterIP:             cfg.ClusterDNS,
			InternalTrafficPolicy: &local,
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9153, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
	if err := ensureService(ctx, cs, dns, false); err != nil {
		klog.Warningf("built-in services: %v", err)
	}
	lease, err := s.client.Grant(ctx, apiserverLeaseTTL)
	if err != nil {
		return fmt.Errorf("kubernetes endpoints: grant lease: %w", err)
	}
	self := net.JoinHostPort(advertise.String(), strconv.Itoa(port))
	if _, err := s.client.Put(ctx, s.root+self, self, clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("kubernetes endpoints: register %s: %w", self, err)
	}
	ka, err := s.client.KeepAlive(s.ctx, lease.ID)
	if err != nil {
		return fmt.Errorf("kubernetes endpoints: keep lease alive: %w", err)
	}
	if err := s.reconcileEndpoints(ctx); err != nil {
		klog.Warningf("kubernetes endpoints: %v", err)
	}
	ctx = s.ctx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(endpointsResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ka:
				if !ok {
					ka = nil // the lease is gone (ctx ended or etcd lost it); Close cleans up
				}
			case <-t.C:
				if err := s.reconcileEndpoints(ctx); err != nil && ctx.Err() == nil {
					klog.Warningf("kubernetes endpoints: %v", err)
				}
			}
		}
	}()
	return nil
}

// ensureService creates want unless a Service of that name exists. With reconcilePorts an
// existing Service whose ports differ gets want's ports (kube's
// CreateOrUpdateMasterServiceIfNeeded). A create that loses against another server is fine.
func ensureService(ctx context.Context, cs kubernetes.Interface, want *corev1.Service, reconcilePorts bool) error {
	c := cs.CoreV1().Services(want.Namespace)
	_, err := c.Create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	cur, gerr := c.Get(ctx, want.Name, metav1.GetOptions{})
	if gerr != nil {
		return fmt.Errorf("create service %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !reconcilePorts || reflect.DeepEqual(cur.Spec.Ports, want.Spec.Ports) {
		return nil
	}
	cur.Spec.Ports = want.Spec.Ports
	if _, err := c.Update(ctx, cur, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("update service %s/%s ports: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// reconcileEndpoints writes the kubernetes Endpoints and EndpointSlice from the live API
// server leases: one subset per API port, addresses sorted. They are written through the
// store, not the API: an API server on loopback is a valid endpoint here while Endpoints
// validation refuses loopback addresses.
func (s *services) reconcileEndpoints(ctx context.Context) error {
	resp, err := s.client.Get(ctx, s.root, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list API servers: %w", err)
	}
	byPort := map[int32][]string{}
	for _, kv := range resp.Kvs {
		host, p, err := net.SplitHostPort(string(kv.Value))
		if err != nil {
			continue
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		byPort[int32(port)] = append(byPort[int32(port)], host)
	}
	ports := make([]int32, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	var subsets []corev1.EndpointSubset
	for _, p := range ports {
		ips := byPort[p]
		sort.Strings(ips)
		sub := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "https", Port: p, Protocol: corev1.ProtocolTCP}}}
		for _, ip := range ips {
			sub.Addresses = append(sub.Addresses, corev1.EndpointAddress{IP: ip})
		}
		subsets = append(subsets, sub)
	}
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: subsets,
	}
	if err := s.put(ctx, endpointsInfo, ep, func(cur runtime.Object) bool {
		c := cur.(*corev1.Endpoints)
		return reflect.DeepEqual(c.Subsets, ep.Subsets) && reflect.DeepEqual(c.Labels, ep.Labels)
	}); err != nil {
		return err
	}
	slice := endpointSliceFor(ep)
	return s.put(ctx, endpointSlicesInfo, slice, func(cur runtime.Object) bool {
		c := cur.(*discoveryv1.EndpointSlice)
		return c.AddressType == slice.AddressType && reflect.DeepEqual(c.Endpoints, slice.Endpoints) &&
			reflect.DeepEqual(c.Ports, slice.Ports) && reflect.DeepEqual(c.Labels, slice.Labels)
	})
}

// endpointSliceFor mirrors the first subset of the kubernetes Endpoints as kube's
// endpointsAdapter does.
func endpointSliceFor(ep *corev1.Endpoints) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: ep.Name, Namespace: ep.Namespace, Labels: map[string]string{discoveryv1.LabelServiceName: ep.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	if len(ep.Subsets) == 0 {
		return slice
	}
	sub := ep.Subsets[0]
	for i := range sub.Ports {
		p := sub.Ports[i]
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: &p.Name, Port: &p.Port, Protocol: &p.Protocol})
	}
	allV6 := true
	for _, a := range sub.Addresses {
		if ip, err := netip.ParseAddr(a.IP); err != nil || !ip.Is6() {
			allV6 = false
		}
	}
	if allV6 && len(sub.Addresses) > 0 {
		slice.AddressType = discoveryv1.AddressTypeIPv6
	}
	ready := true
	for _, a := range sub.Addresses {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{a.IP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return slice
}

// put creates obj through the store, or replaces the stored object's content when same
// reports a difference.
func (s *services) put(ctx context.Context, info *resource.Info, obj runtime.Object, same func(cur runtime.Object) bool) error {
	key := s.store.Key(info, metav1.NamespaceDefault, "kubernetes")
	_, err := s.store.GuaranteedUpdate(ctx, info, key, func(cur runtime.Object) (runtime.Object, *storage.Txn, error) {
		if same(cur) {
			return nil, nil, nil
		}
		out := obj.DeepCopyObject()
		om, cm := metaOf(out), metaOf(cur)
		om.SetUID(cm.GetUID())
		om.SetCreationTimestamp(cm.GetCreationTimestamp())
		om.SetResourceVersion(cm.GetResourceVersion())
		om.SetAnnotations(cm.GetAnnotations())
		return out, nil, nil
	}, false)
	if !errors.Is(err, storage.ErrNotFound) {
		if err != nil {
			return fmt.Errorf("update %s default/kubernetes: %w", info.Resource, err)
		}
		return nil
	}
	out := obj.DeepCopyObject()
	m := metaOf(out)
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(metav1.NewTime(time.Now().UTC().Truncate(time.Second)))
	if _, err := s.store.Create(ctx, info, key, out, nil, false); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("create %s default/kubernetes: %w", info.Resource, err)
	}
	return nil
}

// bootstrapServices runs services.bootstrap with an admin client of this server.
func (s *Server) bootstrapServices(ctx context.Context, port int) error {
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		return err
	}
	return s.svcs.bootstrap(ctx, cs, s.cfg, advertiseAddress(s.cfg.BindAddress), port)
}

func metaOf(obj runtime.Object) metav1.Object {
	switch o := obj.(type) {
	case *corev1.Endpoints:
		return &o.ObjectMeta
	case *discoveryv1.EndpointSlice:
		return &o.ObjectMeta
	}
	panic(fmt.Sprintf("metaOf %T", obj))
}

// close stops the background loops. It writes nothing: this server's entry in the
// kubernetes endpoints goes away when its lease expires (apiserverLeaseTTL), and the other
// servers rewrite the endpoints within endpointsResync. (Writing at shutdown would move
// etcd's revision past the last one clients saw, so a restarted server's fresh watch cache
// could not resume their watches.)
func (s *services) close() {
	s.cancel()
	s.wg.Wait()
	s.alloc.Close()
}

// advertiseAddress is the address other components reach this API server at: the bind
// address when it is a specific non-loopback IP, else the first global unicast address of
// an up, non-loopback interface (IPv4 preferred), else 127.0.0.1.
func advertiseAddress(bind string) netip.Addr {
	if ip, err := netip.ParseAddr(bind); err == nil && !ip.IsUnspecified() {
		return ip.Unmap()
	}
	var v6 netip.Addr
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil || !pfx.Addr().IsGlobalUnicast() {
				continue
			}
			if ip := pfx.Addr().Unmap(); ip.Is4() {
				return ip
			} else if !v6.IsValid() {
				v6 = ip
			}
		}
	}
	if v6.IsValid() {
		return v6
	}
	return netip.MustParseAddr("127.0.0.1")
}
