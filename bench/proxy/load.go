package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const (
	namespaces  = 10
	servicePort = 80
	// endpointsPerService is the size of every Service's one EndpointSlice.
	endpointsPerService = 10
	// triggerTimeAnnotation is what the EndpointSlice controller sets and what kube-proxy's
	// network_programming_duration_seconds is measured from.
	triggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"
)

// load is the set of bench Services in the API: selectorless ClusterIP Services, each with one
// hand-made EndpointSlice of endpointsPerService endpoints. Service i is "real" (its endpoints
// are the pods' listeners) when it is the last Service of a level; the others point at fake
// addresses on the pod LAN that nothing answers (distinct IP:port per Service, as distinct
// pods would be), which the bench never connects to.
type load struct {
	cs    kubernetes.Interface
	w     *world
	real  map[int]bool
	ips   map[int]netip.Addr // ClusterIP of each created Service
	mu    sync.Mutex
	count int // Services created so far: indexes [0, count)
}

func newLoad(cs kubernetes.Interface, w *world, levels []int) *load {
	l := &load{cs: cs, w: w, real: map[int]bool{}, ips: map[int]netip.Addr{}}
	for _, n := range levels {
		l.real[n-1] = true
	}
	return l
}

func nsName(i int) string  { return fmt.Sprintf("bench-%d", i%namespaces) }
func svcName(i int) string { return fmt.Sprintf("svc-%05d", i) }

func (l *load) createNamespaces(ctx context.Context) error {
	for i := 0; i < namespaces; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}
		if _, err := l.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace: %w", err)
		}
	}
	return nil
}

// endpoints returns Service i's endpoint addresses and target port.
func (l *load) endpoints(i int) ([]string, int32) {
	addrs := make([]string, 0, endpointsPerService)
	if l.real[i] {
		for j := 0; j < endpointsPerService; j++ {
			addrs = append(addrs, l.w.pods[j%len(l.w.pods)].String())
		}
		return addrs, podPort
	}
	for j := 0; j < endpointsPerService; j++ {
		addrs = append(addrs, fmt.Sprintf("198.51.100.%d", 100+(i*endpointsPerService+j)%150))
	}
	return addrs, int32(20000 + i%40000)
}

// service is the Service object of index i (name in ns).
func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: servicePort, TargetPort: intstr.FromInt32(servicePort)}},
		},
	}
}

// slice is the one EndpointSlice of Service ns/name; trigger, when set, becomes the
// last-change-trigger-time annotation.
func slice(ns, name string, addrs []string, port int32, trigger time.Time) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-bench",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   "bench-proxy",
			}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(""), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}},
	}
	if !trigger.IsZero() {
		s.Annotations = map[string]string{triggerTimeAnnotation: trigger.UTC().Format(time.RFC3339Nano)}
	}
	for j, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(fmt.Sprintf("other-node-%d", j%3)),
		})
	}
	return s
}

// createService creates Service+slice and returns the ClusterIP.
func createService(ctx context.Context, cs kubernetes.Interface, ns, name string, addrs []string, port int32, trigger time.Time) (netip.Addr, error) {
	svc, err := cs.CoreV1().Services(ns).Create(ctx, service(ns, name), metav1.CreateOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("create service %s/%s: %w", ns, name, err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("service %s/%s clusterIP %q: %w", ns, name, svc.Spec.ClusterIP, err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice(ns, name, addrs, port, trigger), metav1.CreateOptions{}); err != nil {
		return netip.Addr{}, fmt.Errorf("create endpointslice %s/%s: %w", ns, name, err)
	}
	return ip, nil
}

// deleteService deletes Service+slice.
func deleteService(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	if err := cs.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete service %s/%s: %w", ns, name, err)
	}
	if err := cs.DiscoveryV1().EndpointSlices(ns).Delete(ctx, name+"-bench", metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete endpointslice %s/%s: %w", ns, name, err)
	}
	return nil
}

// growTo creates Services [count, n) with parallel writers, then the last one (a real one)
// alone, so it is the last-created Service.
func (l *load) growTo(ctx context.Context, n, parallel int) (time.Duration, error) {
	t0 := time.Now()
	from := l.count
	last := n - 1
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errc := make(chan error, parallel)
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= last {
					return
				}
				if err := l.create(ctx, i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	if last >= from {
		if err := l.create(ctx, last); err != nil {
			return 0, err
		}
	}
	l.count = n
	return time.Since(t0), nil
}

func (l *load) create(ctx context.Context, i int) error {
	addrs, port := l.endpoints(i)
	ip, err := createService(ctx, l.cs, nsName(i), svcName(i), addrs, port, time.Time{})
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.ips[i] = ip
	l.mu.Unlock()
	return nil
}

// lastAddr is the ClusterIP:port of the last-created Service (a real one).
func (l *load) lastAddr() netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return netip.AddrPortFrom(l.ips[l.count-1], servicePort)
}

// podAddrs are the pods' listeners.
func (l *load) podAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, ip := range l.w.pods {
		out = append(out, netip.AddrPortFrom(ip, podPort))
	}
	return out
}

// realAddrs are the pod listeners as endpoint strings, for +1 Services.
func (l *load) realAddrs() []string {
	addrs, _ := l.endpoints(l.count - 1)
	return addrs
}
