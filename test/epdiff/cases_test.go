package epdiff

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"kubesvc/internal/controller/endpointtest"
)

// Steps.

func createService(s *corev1.Service) step {
	return func(ctx context.Context, e env) error {
		_, err := e.cs.CoreV1().Services(e.ns).Create(ctx, s.DeepCopy(), metav1.CreateOptions{})
		return err
	}
}

func updateService(name string, change func(*corev1.Service)) step {
	return func(ctx context.Context, e env) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := e.cs.CoreV1().Services(e.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(s)
			_, err = e.cs.CoreV1().Services(e.ns).Update(ctx, s, metav1.UpdateOptions{})
			return err
		})
	}
}

func createPod(name string, st endpointtest.PodState) step {
	return func(ctx context.Context, e env) error {
		_, err := endpointtest.CreatePod(ctx, e.cs, e.ns, name, st)
		return err
	}
}

func createPods(prefix string, n int, state func(i int) endpointtest.PodState) step {
	return func(ctx context.Context, e env) error {
		return endpointtest.CreatePods(ctx, e.cs, e.ns, prefix, n, 8, state)
	}
}

// setReady changes a pod's Ready condition; at is fixed so that both sides record the same
// transition time.
func setReady(name string, ready bool, at time.Time) step {
	return func(ctx context.Context, e env) error {
		return endpointtest.SetReady(ctx, e.cs, e.ns, name, ready, at)
	}
}

func relabelPod(name string, labels map[string]string) step {
	return func(ctx context.Context, e env) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p, err := e.cs.CoreV1().Pods(e.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Labels = labels
			_, err = e.cs.CoreV1().Pods(e.ns).Update(ctx, p, metav1.UpdateOptions{})
			return err
		})
	}
}

// deletePod deletes gracefully (the pod stays terminating: there is no kubelet) or at once.
func deletePod(name string, now bool) step {
	return func(ctx context.Context, e env) error {
		opts := metav1.DeleteOptions{}
		if now {
			opts.GracePeriodSeconds = new(int64(0))
		}
		return e.cs.CoreV1().Pods(e.ns).Delete(ctx, name, opts)
	}
}

func deleteService(name string) step {
	return func(ctx context.Context, e env) error {
		return e.cs.CoreV1().Services(e.ns).Delete(ctx, name, metav1.DeleteOptions{})
	}
}

func createEndpoints(ep *corev1.Endpoints) step {
	return func(ctx context.Context, e env) error {
		_, err := e.cs.CoreV1().Endpoints(e.ns).Create(ctx, ep.DeepCopy(), metav1.CreateOptions{})
		return err
	}
}

func updateEndpoints(name string, change func(*corev1.Endpoints)) step {
	return func(ctx context.Context, e env) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ep, err := e.cs.CoreV1().Endpoints(e.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(ep)
			_, err = e.cs.CoreV1().Endpoints(e.ns).Update(ctx, ep, metav1.UpdateOptions{})
			return err
		})
	}
}

func createSlice(s *discovery.EndpointSlice) step {
	return func(ctx context.Context, e env) error {
		_, err := e.cs.DiscoveryV1().EndpointSlices(e.ns).Create(ctx, s.DeepCopy(), metav1.CreateOptions{})
		return err
	}
}

func createNode(name, zone string) step {
	return func(ctx context.Context, e env) error {
		return endpointtest.CreateNode(ctx, e.cs, name, zone)
	}
}

// Objects.

var (
	web  = map[string]string{"app": "web"}
	t0   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

func service(name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return endpointtest.Service(name, selector, ports...)
}

func headless(s *corev1.Service) *corev1.Service {
	s.Spec.ClusterIP = corev1.ClusterIPNone
	return s
}

func named(name string, n int32, proto corev1.Protocol) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: proto}
}

func readyPod(node, ip string, ports ...corev1.ContainerPort) endpointtest.PodState {
	return endpointtest.PodState{Labels: web, Node: node, IPs: []string{ip}, Ready: true, ReadySince: t0, Ports: ports}
}

func unreadyPod(node, ip string, ports ...corev1.ContainerPort) endpointtest.PodState {
	st := readyPod(node, ip, ports...)
	st.Ready = false
	return st
}

func addrs(ips ...string) []corev1.EndpointAddress {
	var out []corev1.EndpointAddress
	for _, ip := range ips {
		out = append(out, corev1.EndpointAddress{IP: ip})
	}
	return out
}

// cases are the scenarios, named after the spec rules they exercise.
func cases() []tcase {
	p80 := endpointtest.Port("http", 80, tcp, 8080)
	return []tcase{
		{name: "EP-S-01 selector match", services: []string{"web"}, steps: []step{
			createService(service("web", web, p80)),
			createPod("a", readyPod("node-a", "10.1.0.1")),
			createPod("b", readyPod("node-b", "10.1.0.2")),
			createPod("other", endpointtest.PodState{Labels: map[string]string{"app": "other"}, Node: "node-a", IPs: []string{"10.1.0.3"}, Ready: true}),
		}},
		{name: "EP-S-02 EP-S-03 EP-ES-03 conditions", services: []string{"web"}, steps: []step{
			createService(service("web", web, p80)),
			createPod("ready", readyPod("node-a", "10.2.0.1")),
			createPod("unready", unreadyPod("node-b", "10.2.0.2")),
			createPod("succeeded", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.2.0.3"}, Phase: corev1.PodSucceeded}),
			createPod("failed", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.2.0.4"}, Phase: corev1.PodFailed}),
			createPod("noip", endpointtest.PodState{Labels: web, Node: "node-a", Ready: true}),
			createPod("term-ready", readyPod("node-a", "10.2.0.6")),
			createPod("term-unready", unreadyPod("node-b", "10.2.0.7")),
			createPod("nozone", readyPod("node-nozone", "10.2.0.8")),
			deletePod("term-ready", false),
			deletePod("term-unready", false),
		}},
		{name: "EP-S-06 ready changes and trigger time", services: []string{"web"}, steps: []step{
			createService(service("web", web, p80)),
			createPod("a", unreadyPod("node-a", "10.3.0.1")),
			createPod("b", readyPod("node-a", "10.3.0.2")),
			setReady("a", true, t0.Add(time.Minute)),
			setReady("b", false, t0.Add(2*time.Minute)),
		}},
		{name: "EP-ES-03 EP-E-04 publishNotReadyAddresses", services: []string{"web"}, steps: []step{
			createService(func() *corev1.Service {
				s := service("web", web, p80)
				s.Spec.PublishNotReadyAddresses = true
				return s
			}()),
			createPod("unready", unreadyPod("node-a", "10.4.0.1")),
			createPod("ready", readyPod("node-a", "10.4.0.2")),
			createPod("term", readyPod("node-b", "10.4.0.3")),
			createPod("ghost-node", unreadyPod("node-missing-4", "10.4.0.4")),
			deletePod("term", false),
		}},
		{name: "EP-S-04 EP-E-05 headless, hostname and subdomain", services: []string{"web", "noports"}, steps: []step{
			createService(headless(service("web", web, p80))),
			createService(headless(service("noports", web))),
			createPod("a", func() endpointtest.PodState {
				s := readyPod("node-a", "10.5.0.1")
				s.Hostname, s.Subdomain = "a", "web"
				return s
			}()),
			createPod("b", func() endpointtest.PodState {
				s := readyPod("node-a", "10.5.0.2")
				s.Hostname, s.Subdomain = "b", "other"
				return s
			}()),
			createPod("c", func() endpointtest.PodState {
				s := unreadyPod("node-b", "10.5.0.3")
				s.Hostname, s.Subdomain = "c", "noports"
				return s
			}()),
		}},
		{name: "EP-S-05 EP-ES-04 EP-E-06 named targetPort with different numbers", services: []string{"web"}, steps: []step{
			createService(service("web", web,
				endpointtest.Port("http", 80, tcp, "http"),
				endpointtest.Port("dns", 53, udp, "dns"),
				endpointtest.Port("metrics", 9100, tcp, 9100))),
			createPod("a", readyPod("node-a", "10.6.0.1", named("http", 8080, tcp))),
			createPod("b", readyPod("node-a", "10.6.0.2", named("http", 8080, tcp))),
			createPod("c", readyPod("node-b", "10.6.0.3", named("http", 9090, tcp), named("dns", 1053, udp))),
			createPod("d", unreadyPod("node-b", "10.6.0.4", named("http", 9090, tcp), named("dns", 5353, tcp))),
			createPod("e", readyPod("node-a", "10.6.0.5")),
			createPod("sidecar", func() endpointtest.PodState {
				s := readyPod("node-a", "10.6.0.6")
				s.SidecarPorts = []corev1.ContainerPort{named("http", 7070, tcp)}
				return s
			}()),
		}},
		{name: "EP-ES-04 protocols and appProtocol", services: []string{"web"}, steps: []step{
			createService(func() *corev1.Service {
				h2 := "kubernetes.io/h2c"
				s := service("web", web, endpointtest.Port("h2", 80, tcp, 8080), endpointtest.Port("u", 81, udp, 8081), endpointtest.Port("s", 82, sctp, 8082))
				s.Spec.Ports[0].AppProtocol = &h2
				return s
			}()),
			createPod("a", readyPod("node-a", "10.7.0.1")),
		}},
		{name: "EP-E-02 EP-ES-02 address families", services: []string{"web", "hl"}, steps: []step{
			createService(service("web", web, p80)),
			createService(headless(service("hl", web, p80))),
			createPod("dual", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"10.8.0.1", "fd00:8::1"}, Ready: true}),
			createPod("v6", endpointtest.PodState{Labels: web, Node: "node-a", IPs: []string{"fd00:8::2"}, Ready: true}),
		}},
		{name: "EP-ES-07 placeholder and emptied service", services: []string{"empty", "emptied"}, steps: []step{
			createService(service("empty", web, p80)),
			createService(service("emptied", map[string]string{"app": "gone"}, p80)),
			createPod("a", endpointtest.PodState{Labels: map[string]string{"app": "gone"}, Node: "node-a", IPs: []string{"10.9.0.1"}, Ready: true}),
			deletePod("a", true),
		}},
		{name: "EP-S-01 EP-U-04 selectorless and ExternalName", services: []string{"manual", "ext"}, steps: []step{
			createService(service("manual", nil, p80)),
			createService(func() *corev1.Service {
				s := service("ext", web)
				s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
				return s
			}()),
			createPod("a", readyPod("node-a", "10.10.0.1")),
		}},
		{name: "EP-ES-01 EP-E-01 labels", services: []string{"web"}, steps: []step{
			createService(func() *corev1.Service {
				s := service("web", web, p80)
				s.Labels = map[string]string{"team": "a", "kubernetes.io/service-name": "spoof", "endpointslice.kubernetes.io/managed-by": "spoof", "service.kubernetes.io/headless": "x"}
				s.Annotations = map[string]string{"note": "not copied"}
				return s
			}()),
			createPod("a", readyPod("node-a", "10.11.0.1")),
			updateService("web", func(s *corev1.Service) { s.Labels["team"] = "b" }),
		}},
		{name: "EP-S-06 selector and label changes", services: []string{"web"}, steps: []step{
			createService(service("web", web, p80)),
			createPod("a", readyPod("node-a", "10.12.0.1")),
			createPod("b", readyPod("node-a", "10.12.0.2")),
			createPod("c", endpointtest.PodState{Labels: map[string]string{"app": "web", "tier": "x"}, Node: "node-b", IPs: []string{"10.12.0.3"}, Ready: true}),
			relabelPod("a", map[string]string{"app": "other"}),
			updateService("web", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web", "tier": "x"} }),
			updateService("web", func(s *corev1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, endpointtest.Port("admin", 81, tcp, 9000))
			}),
		}},
		{name: "EP-ES-03 pod on a node created later", services: []string{"web"}, steps: []step{
			createService(service("web", web, p80)),
			createPod("a", readyPod("node-a", "10.13.0.1")),
			createPod("late", readyPod("node-late", "10.13.0.2")),
			createNode("node-late", "zone-late"),
		}},
		{name: "EP-E-09 EP-ES-01 service deleted", services: []string{"web"}, steps: []step{
			createService(service("web", web, p80)),
			createPod("a", readyPod("node-a", "10.14.0.1")),
			deleteService("web"),
		}},
		{name: "EP-ES-08 foreign slices", services: []string{"web"}, steps: []step{
			createSlice(func() *discovery.EndpointSlice {
				port := int32(80)
				return &discovery.EndpointSlice{
					ObjectMeta: metav1.ObjectMeta{Name: "hand-made", Labels: map[string]string{
						discovery.LabelServiceName: "web", discovery.LabelManagedBy: "someone-else",
					}},
					AddressType: discovery.AddressTypeIPv4,
					Endpoints:   []discovery.Endpoint{{Addresses: []string{"192.0.2.10"}}},
					Ports:       []discovery.EndpointPort{{Port: &port}},
				}
			}()),
			createService(service("web", web, p80)),
			createPod("a", readyPod("node-a", "10.15.0.1")),
		}},
		{name: "EP-M-01 EP-M-02 external-service", services: []string{"external-service"}, steps: []step{
			createService(service("external-service", nil, endpointtest.Port("", 80, tcp, 80))),
			createEndpoints(&corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "external-service"},
				Subsets:    []corev1.EndpointSubset{{Addresses: addrs("11.11.11.11", "22.22.22.22"), Ports: []corev1.EndpointPort{{Port: 80}}}},
			}),
		}},
		{name: "EP-M-02 EP-M-03 mirrored subsets, families, labels and annotations", services: []string{"multi"}, steps: []step{
			createService(service("multi", nil, endpointtest.Port("http", 80, tcp, 80))),
			createEndpoints(&corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "multi", Labels: map[string]string{"team": "a"},
					Annotations: map[string]string{"note": "x", corev1.LastAppliedConfigAnnotation: "{}"}},
				Subsets: []corev1.EndpointSubset{
					{Addresses: []corev1.EndpointAddress{{IP: "10.16.0.1", Hostname: "one", NodeName: new("node-a")}, {IP: "fd00:16::1"}},
						NotReadyAddresses: addrs("10.16.0.2"),
						Ports:             []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}},
					{Addresses: addrs("10.16.0.3"), Ports: []corev1.EndpointPort{{Name: "http", Port: 8080}}},
				},
			}),
			updateEndpoints("multi", func(ep *corev1.Endpoints) {
				ep.Subsets = ep.Subsets[:1]
				ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, corev1.EndpointAddress{IP: "10.16.0.4"})
			}),
		}},
		{name: "EP-M-01 not mirrored", services: []string{"skip", "selected", "nosvc"}, steps: []step{
			createService(service("skip", nil, endpointtest.Port("", 80, tcp, 80))),
			createService(service("selected", map[string]string{"app": "none"}, endpointtest.Port("", 80, tcp, 80))),
			createEndpoints(&corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "skip", Labels: map[string]string{discovery.LabelSkipMirror: "true"}},
				Subsets:    []corev1.EndpointSubset{{Addresses: addrs("10.17.0.1"), Ports: []corev1.EndpointPort{{Port: 80}}}},
			}),
			createEndpoints(&corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "nosvc"},
				Subsets:    []corev1.EndpointSubset{{Addresses: addrs("10.17.0.2"), Ports: []corev1.EndpointPort{{Port: 80}}}},
			}),
		}},
		// Pods first, then the Service: one sync sees all 1010 pods, so the packing does
		// not depend on how the burst of pods is cut into syncs (random upstream too).
		{name: "EP-ES-05 EP-E-07 1010 pods behind one service", services: []string{"web"}, steps: []step{
			createPods("web", 1010, func(i int) endpointtest.PodState {
				ip := fmt.Sprintf("10.18.%d.%d", i/250, i%250+1)
				if i < 1000 {
					return readyPod("node-a", ip)
				}
				return unreadyPod("node-b", ip)
			}),
			createService(service("web", web, p80)),
			deletePod("web-7", true),
		}},
	}
}
