// Package endpointtest builds the inputs of the endpoint controllers' tests on any API
// server (kubesvc or a peer kube-apiserver): Nodes, Services, and pods whose status the test
// writes itself (there is no node agent), plus readers that put the resulting Endpoints and
// EndpointSlices into a stable order.
//
// It is test support: only _test.go files and benchmark programs import it.
package endpointtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// PodState is the part of a pod's spec and status a test chooses. The zero value is a
// Running, not Ready pod without IPs, node or ports.
type PodState struct {
	// Labels are the pod's labels (what Service selectors match).
	Labels map[string]string
	// Node is spec.nodeName.
	Node string
	// IPs are status.podIPs (status.podIP is the first).
	IPs []string
	// Ready sets condition Ready=True (else False); its lastTransitionTime is ReadySince, or
	// the time of the write when zero.
	Ready      bool
	ReadySince time.Time
	// Phase is status.phase; empty means Running.
	Phase corev1.PodPhase
	// Ports are the container ports of the pod's only container.
	Ports []corev1.ContainerPort
	// SidecarPorts, if any, are the ports of a restartable init container (a sidecar).
	SidecarPorts []corev1.ContainerPort
	// Hostname and Subdomain are spec.hostname and spec.subdomain.
	Hostname, Subdomain string
}

// Pod returns the pod object for name and st (status not included: the API ignores it on
// create).
func Pod(name string, st PodState) *corev1.Pod {
	grace := int64(30)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: st.Labels},
		Spec: corev1.PodSpec{
			NodeName:                      st.Node,
			Hostname:                      st.Hostname,
			Subdomain:                     st.Subdomain,
			TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken:  new(false),
			Containers:                    []corev1.Container{{Name: "app", Image: "busybox", Ports: st.Ports}},
		},
	}
	if len(st.SidecarPorts) > 0 {
		always := corev1.ContainerRestartPolicyAlways
		p.Spec.InitContainers = []corev1.Container{{Name: "sidecar", Image: "busybox", RestartPolicy: &always, Ports: st.SidecarPorts}}
	}
	return p
}

// Status returns the pod status for st at time now.
func Status(st PodState, now time.Time) corev1.PodStatus {
	s := corev1.PodStatus{Phase: st.Phase}
	if s.Phase == "" {
		s.Phase = corev1.PodRunning
	}
	for _, ip := range st.IPs {
		s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(st.IPs) > 0 {
		s.PodIP = st.IPs[0]
	}
	since := st.ReadySince
	if since.IsZero() {
		since = now
	}
	ready := corev1.ConditionFalse
	if st.Ready {
		ready = corev1.ConditionTrue
	}
	s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.NewTime(since.Truncate(time.Second))}}
	return s
}

// CreatePod creates the pod and then writes its status, as a node agent would.
func CreatePod(ctx context.Context, cs kubernetes.Interface, ns, name string, st PodState) (*corev1.Pod, error) {
	p, err := cs.CoreV1().Pods(ns).Create(ctx, Pod(name, st), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", ns, name, err)
	}
	p.Status = Status(st, time.Now())
	p, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("write status of pod %s/%s: %w", ns, name, err)
	}
	return p, nil
}

// CreatePods creates count pods named prefix-0…, their state from state(i), with parallel
// writers; it returns the first error.
func CreatePods(ctx context.Context, cs kubernetes.Interface, ns, prefix string, count, parallel int, state func(i int) PodState) error {
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	next := make(chan int)
	for range max(parallel, 1) {
		wg.Go(func() {
			for i := range next {
				if _, err := CreatePod(ctx, cs, ns, fmt.Sprintf("%s-%d", prefix, i), state(i)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range count {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// SetReady changes the Ready condition of a pod (lastTransitionTime at is truncated to
// seconds, as the API stores it; zero means now).
func SetReady(ctx context.Context, cs kubernetes.Interface, ns, name string, ready bool, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		cond := corev1.PodCondition{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(at.Truncate(time.Second))}
		i := slices.IndexFunc(p.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady })
		if i < 0 {
			p.Status.Conditions = append(p.Status.Conditions, cond)
		} else {
			p.Status.Conditions[i] = cond
		}
		_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

// CreateNode creates a Ready node; zone, if not empty, is its topology.kubernetes.io/zone
// label.
func CreateNode(ctx context.Context, cs kubernetes.Interface, name, zone string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if zone != "" {
		n.Labels = map[string]string{corev1.LabelTopologyZone: zone}
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("write status of node %s: %w", name, err)
	}
	return nil
}

// CreateNamespace creates ns and waits (up to a minute) for its default ServiceAccount when
// waitSA is set (kube-apiserver's ServiceAccount admission refuses pods until it exists).
func CreateNamespace(ctx context.Context, cs kubernetes.Interface, ns string, waitSA bool) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	if !waitSA {
		return nil
	}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("default ServiceAccount of %s: %w", ns, err)
		}
		<-tick.C
	}
}

// Port is a ServicePort with a target port that is a number (int) or a name (string).
func Port(name string, port int32, protocol corev1.Protocol, target any) corev1.ServicePort {
	sp := corev1.ServicePort{Name: name, Port: port, Protocol: protocol}
	switch t := target.(type) {
	case int:
		sp.TargetPort = intstr.FromInt32(int32(t))
	case string:
		sp.TargetPort = intstr.FromString(t)
	}
	return sp
}

// Service returns a ClusterIP Service selecting selector (nil: no selector) with ports.
func Service(name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports},
	}
}

// Slices returns the EndpointSlices of service svc (label kubernetes.io/service-name),
// sorted by managed-by, address type, ports and name.
func Slices(ctx context.Context, cs kubernetes.Interface, ns, svc string) ([]discovery.EndpointSlice, error) {
	list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discovery.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, fmt.Errorf("list endpoint slices of %s/%s: %w", ns, svc, err)
	}
	out := list.Items
	slices.SortFunc(out, func(a, b discovery.EndpointSlice) int {
		return strings.Compare(SliceSortKey(&a), SliceSortKey(&b))
	})
	return out, nil
}

// SliceSortKey orders slices independently of generated names: managed-by, address type,
// port list, endpoint count and first address.
func SliceSortKey(s *discovery.EndpointSlice) string {
	first := ""
	if len(s.Endpoints) > 0 && len(s.Endpoints[0].Addresses) > 0 {
		first = s.Endpoints[0].Addresses[0]
	}
	return fmt.Sprintf("%s|%s|%s|%06d|%s", s.Labels[discovery.LabelManagedBy], s.AddressType, PortsString(s.Ports), len(s.Endpoints), first)
}

// PortsString renders slice ports sorted, as name/protocol:port.
func PortsString(ports []discovery.EndpointPort) string {
	var out []string
	for _, p := range ports {
		s := ""
		if p.Name != nil {
			s = *p.Name
		}
		if p.Protocol != nil {
			s += "/" + string(*p.Protocol)
		}
		if p.Port != nil {
			s += fmt.Sprintf(":%d", *p.Port)
		}
		if p.AppProtocol != nil {
			s += "(" + *p.AppProtocol + ")"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return "[" + strings.Join(out, ",") + "]"
}

// EndpointString renders one endpoint as
// "addr,… ready=… serving=… terminating=… node=… zone=… host=… ref=Pod/name".
func EndpointString(e discovery.Endpoint) string {
	b := func(p *bool) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	ref := ""
	if e.TargetRef != nil {
		ref = e.TargetRef.Kind + "/" + e.TargetRef.Name
	}
	return fmt.Sprintf("%s ready=%s serving=%s terminating=%s node=%s zone=%s host=%s ref=%s",
		strings.Join(e.Addresses, ","), b(e.Conditions.Ready), b(e.Conditions.Serving), b(e.Conditions.Terminating),
		s(e.NodeName), s(e.Zone), s(e.Hostname), ref)
}

// SliceEndpoints renders every endpoint of slices with EndpointString, prefixed by the
// slice's ports, sorted.
func SliceEndpoints(list []discovery.EndpointSlice) []string {
	var out []string
	for _, s := range list {
		for _, e := range s.Endpoints {
			out = append(out, PortsString(s.Ports)+" "+EndpointString(e))
		}
	}
	slices.Sort(out)
	return out
}

// SubsetStrings renders Endpoints subsets as sorted lines
// "ports ready|notready ip node=… host=… ref=Pod/name".
func SubsetStrings(subsets []corev1.EndpointSubset) []string {
	var out []string
	for _, ss := range subsets {
		var ports []string
		for _, p := range ss.Ports {
			ap := ""
			if p.AppProtocol != nil {
				ap = "(" + *p.AppProtocol + ")"
			}
			ports = append(ports, fmt.Sprintf("%s/%s:%d%s", p.Name, p.Protocol, p.Port, ap))
		}
		slices.Sort(ports)
		line := func(kind string, a corev1.EndpointAddress) string {
			node, ref := "", ""
			if a.NodeName != nil {
				node = *a.NodeName
			}
			if a.TargetRef != nil {
				ref = a.TargetRef.Kind + "/" + a.TargetRef.Name
			}
			return fmt.Sprintf("[%s] %s %s node=%s host=%s ref=%s", strings.Join(ports, ","), kind, a.IP, node, a.Hostname, ref)
		}
		for _, a := range ss.Addresses {
			out = append(out, line("ready", a))
		}
		for _, a := range ss.NotReadyAddresses {
			out = append(out, line("notready", a))
		}
	}
	slices.Sort(out)
	return out
}
