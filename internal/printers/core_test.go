package printers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

type cellsCase struct {
	name string
	obj  runtime.Object
	want []any
}

func runCells(t *testing.T, resource schema.GroupResource, tests []cellsCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cellsFor(t, resource, tc.obj)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

func svcPorts(ports ...corev1.ServicePort) []corev1.ServicePort { return ports }

func TestServiceCells(t *testing.T) {
	lbIngress := func(addrs ...corev1.LoadBalancerIngress) corev1.ServiceStatus {
		return corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: addrs}}
	}
	runCells(t, gr("", "services"), []cellsCase{
		{
			name: "upstream TestPrintService test1: ClusterIP with selector",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "test1"},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeClusterIP, Ports: svcPorts(corev1.ServicePort{Protocol: "tcp", Port: 2233}),
					ClusterIPs: []string{"10.9.8.7"}, Selector: map[string]string{"foo": "bar"},
				},
			},
			want: []any{"test1", "ClusterIP", "10.9.8.7", "<none>", "2233/tcp", "<unknown>", "foo=bar"},
		},
		{
			name: "upstream TestPrintService test2: NodePort",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "test2"},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeNodePort, Ports: svcPorts(corev1.ServicePort{Protocol: "tcp", Port: 8888, NodePort: 9999}),
					ClusterIPs: []string{"10.9.8.7"},
				},
			},
			want: []any{"test2", "NodePort", "10.9.8.7", "<none>", "8888:9999/tcp", "<unknown>", "<none>"},
		},
		{
			name: "upstream TestPrintService test3: LoadBalancer pending",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "test3"},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, Ports: svcPorts(corev1.ServicePort{Protocol: "tcp", Port: 8888}),
					ClusterIPs: []string{"10.9.8.7"},
				},
			},
			want: []any{"test3", "LoadBalancer", "10.9.8.7", "<pending>", "8888/tcp", "<unknown>", "<none>"},
		},
		{
			name: "upstream TestPrintService test4: LoadBalancer with externalIPs and no status",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "test4"},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, Ports: svcPorts(corev1.ServicePort{Protocol: "tcp", Port: 8888}),
					ClusterIPs: []string{"10.9.8.7"}, ExternalIPs: []string{"80.11.12.10"},
				},
			},
			want: []any{"test4", "LoadBalancer", "10.9.8.7", "80.11.12.10", "8888/tcp", "<unknown>", "<none>"},
		},
		{
			name: "upstream TestPrintService test5: LoadBalancer ingress IP before externalIPs",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "test5"},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, Ports: svcPorts(corev1.ServicePort{Protocol: "tcp", Port: 8888}),
					ClusterIPs: []string{"10.9.8.7"}, ExternalIPs: []string{"80.11.12.10"},
				},
				Status: lbIngress(corev1.LoadBalancerIngress{IP: "3.4.5.6", Hostname: "test.cluster.com"}),
			},
			want: []any{"test5", "LoadBalancer", "10.9.8.7", "3.4.5.6,80.11.12.10", "8888/tcp", "<unknown>", "<none>"},
		},
		{
			name: "upstream TestPrintService test6: LoadBalancer with several ingress IPs and externalIPs",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "test6"},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, Ports: svcPorts(corev1.ServicePort{Protocol: "tcp", Port: 8888}),
					ClusterIPs: []string{"10.9.8.7"}, ExternalIPs: []string{"80.11.12.10", "80.11.12.11"},
				},
				Status: lbIngress(
					corev1.LoadBalancerIngress{IP: "2.3.4.5", Hostname: "test.cluster.local"},
					corev1.LoadBalancerIngress{IP: "3.4.5.6", Hostname: "test.cluster.com"},
				),
			},
			want: []any{"test6", "LoadBalancer", "10.9.8.7", "2.3.4.5,3.4.5.6,80.11.12.10,80.11.12.11", "8888/tcp", "<unknown>", "<none>"},
		},
		{
			name: "upstream TestPrintService test7: ExternalName",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "test7"},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "my.database.example.com"},
			},
			want: []any{"test7", "ExternalName", "<none>", "my.database.example.com", "<none>", "<unknown>", "<none>"},
		},
		{
			name: "upstream TestPrintServiceLoadBalancer service2: pending with four ports",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "service2"},
				Spec: corev1.ServiceSpec{
					ClusterIPs: []string{"1.3.4.5"}, Type: corev1.ServiceTypeLoadBalancer,
					Ports: svcPorts(
						corev1.ServicePort{Port: 80, Protocol: "TCP"}, corev1.ServicePort{Port: 8090, Protocol: "UDP"},
						corev1.ServicePort{Port: 8000, Protocol: "TCP"}, corev1.ServicePort{Port: 7777, Protocol: "SCTP"},
					),
				},
			},
			want: []any{"service2", "LoadBalancer", "1.3.4.5", "<pending>", "80/TCP,8090/UDP,8000/TCP,7777/SCTP", "<unknown>", "<none>"},
		},
		{
			name: "upstream TestPrintServiceLoadBalancer wide case: the server never clips addresses",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "service4"},
				Spec: corev1.ServiceSpec{
					ClusterIPs: []string{"1.5.6.7"}, Type: corev1.ServiceTypeLoadBalancer,
					Ports: svcPorts(
						corev1.ServicePort{Port: 80, Protocol: "TCP"}, corev1.ServicePort{Port: 8090, Protocol: "UDP"},
						corev1.ServicePort{Port: 8000, Protocol: "TCP"},
					),
					Selector: map[string]string{"foo": "bar"},
				},
				Status: lbIngress(
					corev1.LoadBalancerIngress{IP: "2.3.4.5"}, corev1.LoadBalancerIngress{IP: "3.4.5.6"},
					corev1.LoadBalancerIngress{IP: "5.6.7.8", Hostname: "host5678"},
				),
			},
			want: []any{"service4", "LoadBalancer", "1.5.6.7", "2.3.4.5,3.4.5.6,5.6.7.8", "80/TCP,8090/UDP,8000/TCP", "<unknown>", "foo=bar"},
		},
		{
			name: "LoadBalancer hostname only, longer than 16 bytes, not clipped",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "elb", CreationTimestamp: ago(3 * time.Hour)},
				Spec: corev1.ServiceSpec{
					ClusterIPs: []string{"10.96.0.20"}, Type: corev1.ServiceTypeLoadBalancer,
					Ports: svcPorts(corev1.ServicePort{Port: 443, NodePort: 31443, Protocol: "TCP"}),
				},
				Status: lbIngress(corev1.LoadBalancerIngress{Hostname: "a1b2c3.elb.us-east-1.amazonaws.com"}),
			},
			want: []any{"elb", "LoadBalancer", "10.96.0.20", "a1b2c3.elb.us-east-1.amazonaws.com", "443:31443/TCP", "3h", "<none>"},
		},
		{
			name: "headless service shows None as its cluster IP",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "db", CreationTimestamp: ago(45 * time.Second)},
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone},
					Ports: svcPorts(corev1.ServicePort{Port: 5432, Protocol: "TCP"}), Selector: map[string]string{"app": "db"},
				},
			},
			want: []any{"db", "ClusterIP", "None", "<none>", "5432/TCP", "45s", "app=db"},
		},
		{
			name: "ClusterIP with externalIPs and no ports",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "ext"},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.0.0.3", "fd00::3"}, ExternalIPs: []string{"192.0.2.1", "192.0.2.2"}},
			},
			want: []any{"ext", "ClusterIP", "10.0.0.3", "192.0.2.1,192.0.2.2", "<none>", "<unknown>", "<none>"},
		},
		{
			name: "clusterIP without clusterIPs (kube's defaulting fills clusterIPs)",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.4"},
			},
			want: []any{"legacy", "ClusterIP", "10.0.0.4", "<none>", "<none>", "<unknown>", "<none>"},
		},
		{
			name: "undefaulted type and protocol print as kube's defaults ClusterIP and TCP",
			obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "bare"},
				Spec:       corev1.ServiceSpec{ClusterIPs: []string{"10.0.0.5"}, Ports: svcPorts(corev1.ServicePort{Port: 53}, corev1.ServicePort{Port: 53, Protocol: "UDP"})},
			},
			want: []any{"bare", "ClusterIP", "10.0.0.5", "<none>", "53/TCP,53/UDP", "<unknown>", "<none>"},
		},
	})
}

// TestLoadBalancerStatusString covers the non-wide clipping kube keeps for client-side
// printing; the server path always passes wide.
func TestLoadBalancerStatusString(t *testing.T) {
	tests := []struct {
		name  string
		addrs []string
		wide  bool
		want  string
	}{
		{name: "upstream TestPrintServiceLoadBalancer service4: clipped when not wide", addrs: []string{"2.3.4.5", "3.4.5.6", "5.6.7.8"}, want: "2.3.4.5,3.4.5..."},
		{name: "kept when wide", addrs: []string{"2.3.4.5", "3.4.5.6", "5.6.7.8"}, wide: true, want: "2.3.4.5,3.4.5.6,5.6.7.8"},
		{name: "sorted and deduplicated", addrs: []string{"b.example", "a.example", "b.example"}, wide: true, want: "a.example,b.example"},
		{name: "exactly 16 bytes kept", addrs: []string{"1234567890123456"}, want: "1234567890123456"},
		{name: "empty", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := loadBalancerStatusString(tc.addrs, tc.wide); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEndpointsCells(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var out []corev1.EndpointAddress
		for _, ip := range ips {
			out = append(out, corev1.EndpointAddress{IP: ip})
		}
		return out
	}
	runCells(t, gr("", "endpoints"), []cellsCase{
		{
			name: "upstream TestPrintEndpoint: no subsets",
			obj:  &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "endpoint1", CreationTimestamp: almostNow}},
			want: []any{"endpoint1", "<none>", "0s"},
		},
		{
			name: "upstream TestPrintEndpoint: no ports",
			obj: &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "endpoint3", CreationTimestamp: ago(5 * time.Minute)},
				Subsets:    []corev1.EndpointSubset{{Addresses: addrs("1.2.3.4", "5.6.7.8")}},
			},
			want: []any{"endpoint3", "1.2.3.4,5.6.7.8", "5m"},
		},
		{
			name: "upstream TestPrintEndpoint: two addresses, one port",
			obj: &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "endpoint2", CreationTimestamp: almostNow},
				Subsets:    []corev1.EndpointSubset{{Addresses: addrs("1.2.3.4", "5.6.7.8"), Ports: []corev1.EndpointPort{{Port: 8001, Protocol: "tcp"}}}},
			},
			want: []any{"endpoint2", "1.2.3.4:8001,5.6.7.8:8001", "0s"},
		},
		{
			name: "upstream TestPrintEndpoint: more than three addresses",
			obj: &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "endpoint2", CreationTimestamp: almostNow},
				Subsets: []corev1.EndpointSubset{{
					Addresses: addrs("1.2.3.4", "5.6.7.8", "9.8.7.6", "6.6.6.6"),
					Ports:     []corev1.EndpointPort{{Port: 8001, Protocol: "tcp"}},
				}},
			},
			want: []any{"endpoint2", "1.2.3.4:8001,5.6.7.8:8001,9.8.7.6:8001 + 1 more...", "0s"},
		},
		{
			name: "each port counts every address; IPv6 is bracketed",
			obj: &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "multi"},
				Subsets: []corev1.EndpointSubset{
					{Addresses: addrs("fd00::1", "fd00::2"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}},
					{Addresses: addrs("10.0.0.1"), Ports: []corev1.EndpointPort{{Port: 8080}}},
				},
			},
			want: []any{"multi", "[fd00::1]:80,[fd00::2]:80,[fd00::1]:443 + 2 more...", "<unknown>"},
		},
	})
}

func TestNodeCells(t *testing.T) {
	ready := func(s corev1.ConditionStatus) corev1.NodeStatus {
		return corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s}}}
	}
	// unknownWide are the wide cells of a node without addresses or node info.
	unknownWide := []any{"<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}
	narrow := func(cells ...any) []any { return append(cells, unknownWide...) }
	runCells(t, gr("", "nodes"), []cellsCase{
		{name: "upstream TestPrintNodeStatus foo1: Ready", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo1"}, Status: ready(corev1.ConditionTrue)},
			want: narrow("foo1", "Ready", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeStatus foo2: Ready,SchedulingDisabled", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo2"}, Spec: corev1.NodeSpec{Unschedulable: true}, Status: ready(corev1.ConditionTrue)},
			want: narrow("foo2", "Ready,SchedulingDisabled", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeStatus foo3: duplicate Ready conditions", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo3"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
			want: narrow("foo3", "Ready", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeStatus foo4: NotReady", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo4"}, Status: ready(corev1.ConditionFalse)},
			want: narrow("foo4", "NotReady", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeStatus foo5: NotReady,SchedulingDisabled", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo5"}, Spec: corev1.NodeSpec{Unschedulable: true}, Status: ready(corev1.ConditionFalse)},
			want: narrow("foo5", "NotReady,SchedulingDisabled", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeStatus foo6: no Ready condition", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo6"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: "InvalidValue", Status: corev1.ConditionTrue}}}},
			want: narrow("foo6", "Unknown", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeStatus foo9: Unknown,SchedulingDisabled", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo9"}, Spec: corev1.NodeSpec{Unschedulable: true}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{}}}},
			want: narrow("foo9", "Unknown,SchedulingDisabled", "<none>", "<unknown>", "")},
		{name: "Ready condition Unknown prints NotReady", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: ready(corev1.ConditionUnknown)},
			want: narrow("n", "NotReady", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeRole foo10: sorted, distinct roles from both labels", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo10", Labels: map[string]string{
			"node-role.kubernetes.io/master": "", "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/proxy": "", "kubernetes.io/role": "node"}}},
			want: narrow("foo10", "Unknown", "control-plane,master,node,proxy", "<unknown>", "")},
		{name: "upstream TestPrintNodeRole foo11: kubernetes.io/role", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo11", Labels: map[string]string{"kubernetes.io/role": "node"}}},
			want: narrow("foo11", "Unknown", "node", "<unknown>", "")},
		{name: "empty role suffix and empty kubernetes.io/role are ignored", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"node-role.kubernetes.io/": "", "kubernetes.io/role": ""}}},
			want: narrow("n", "Unknown", "<none>", "<unknown>", "")},
		{name: "upstream TestPrintNodeOSImage foo1", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo1"}, Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{OSImage: "fake-os-image"}, Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "1.1.1.1"}}}},
			want: []any{"foo1", "Unknown", "<none>", "<unknown>", "", "<none>", "1.1.1.1", "fake-os-image", "<unknown>", "<unknown>"}},
		{name: "upstream TestPrintNodeArch case 1: kernel version with architecture", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo"}, Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{KernelVersion: "fake-kernel-version", Architecture: "fake-arch-amd64"}, Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "1.1.1.1"}}}},
			want: []any{"foo", "Unknown", "<none>", "<unknown>", "", "<none>", "1.1.1.1", "<unknown>", "fake-kernel-version (fake-arch-amd64)", "<unknown>"}},
		{name: "upstream TestPrintNodeArch case 2: unknown kernel version with architecture", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo"}, Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{Architecture: "fake-arch-arm64"}, Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "1.1.1.1"}}}},
			want: []any{"foo", "Unknown", "<none>", "<unknown>", "", "<none>", "1.1.1.1", "<unknown>", "<unknown> (fake-arch-arm64)", "<unknown>"}},
		{name: "upstream TestPrintNodeContainerRuntimeVersion foo1", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo1"}, Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{ContainerRuntimeVersion: "foo://1.2.3"}, Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "1.1.1.1"}}}},
			want: []any{"foo1", "Unknown", "<none>", "<unknown>", "", "<none>", "1.1.1.1", "<unknown>", "<unknown>", "foo://1.2.3"}},
		{name: "upstream TestPrintNodeExternalIP foo3: first address of each type", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo3"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeExternalIP, Address: "2.2.2.2"}, {Type: corev1.NodeInternalIP, Address: "3.3.3.3"}, {Type: corev1.NodeExternalIP, Address: "4.4.4.4"}}}},
			want: []any{"foo3", "Unknown", "<none>", "<unknown>", "", "3.3.3.3", "2.2.2.2", "<unknown>", "<unknown>", "<unknown>"}},
		{name: "a typical kubelet-registered node", obj: &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "node-a", CreationTimestamp: ago(26 * time.Hour), Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.18.0.2"}, {Type: corev1.NodeHostName, Address: "node-a"}},
				NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 13 (trixie)", KernelVersion: "6.12.0",
					ContainerRuntimeVersion: "containerd://2.1.0", Architecture: "amd64", OperatingSystem: "linux"},
			}},
			want: []any{"node-a", "Ready", "control-plane", "26h", "v1.37.2", "172.18.0.2", "<none>", "Debian GNU/Linux 13 (trixie)", "6.12.0 (amd64)", "containerd://2.1.0"}},
	})
}

func TestEventCells(t *testing.T) {
	daysAgo := func(d int) metav1.Time { return metav1.NewTime(now.AddDate(0, 0, -d)) }
	microDaysAgo := func(d int) metav1.MicroTime { return metav1.NewMicroTime(now.AddDate(0, 0, -d)) }
	deployment := corev1.ObjectReference{Kind: "Deployment", Name: "Deployment Name", FieldPath: "spec.containers{foo}"}
	runCells(t, gr("", "events"), []cellsCase{
		{
			name: "upstream TestPrintEvent: basic event",
			obj: &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "event1"},
				Source:         corev1.EventSource{Component: "kubelet"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "Pod Name", FieldPath: "spec.containers{foo}"},
				Reason:         "Event Reason", Message: "Message Data",
				FirstTimestamp: daysAgo(3), LastTimestamp: daysAgo(2), Count: 6, Type: corev1.EventTypeNormal,
			},
			want: []any{"2d", "Normal", "Event Reason", "pod/Pod Name", "spec.containers{foo}", "kubelet", "Message Data", "3d", int64(6), "event1"},
		},
		{
			name: "upstream TestPrintEvent: wide",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "event2"}, Source: corev1.EventSource{Component: "kubelet", Host: "Node1"},
				InvolvedObject: deployment, Reason: "Event Reason", Message: "Message Data",
				FirstTimestamp: daysAgo(3), LastTimestamp: daysAgo(2), Count: 6, Type: corev1.EventTypeWarning,
			},
			want: []any{"2d", "Warning", "Event Reason", "deployment/Deployment Name", "spec.containers{foo}", "kubelet, Node1", "Message Data", "3d", int64(6), "event2"},
		},
		{
			name: "upstream TestPrintEvent: no firstTimestamp uses eventTime",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "event3"}, Source: corev1.EventSource{Component: "kubelet", Host: "Node1"},
				InvolvedObject: deployment, Reason: "Event Reason", Message: "Message Data",
				EventTime: microDaysAgo(3), LastTimestamp: daysAgo(3), Count: 1, Type: corev1.EventTypeWarning,
			},
			want: []any{"3d", "Warning", "Event Reason", "deployment/Deployment Name", "spec.containers{foo}", "kubelet, Node1", "Message Data", "3d", int64(1), "event3"},
		},
		{
			name: "upstream TestPrintEvent: no lastTimestamp uses firstTimestamp",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "event4"}, Source: corev1.EventSource{Component: "kubelet", Host: "Node1"},
				InvolvedObject: deployment, Reason: "Event Reason", Message: "Message Data",
				EventTime: microDaysAgo(3), FirstTimestamp: daysAgo(3), Count: 1, Type: corev1.EventTypeWarning,
			},
			want: []any{"3d", "Warning", "Event Reason", "deployment/Deployment Name", "spec.containers{foo}", "kubelet, Node1", "Message Data", "3d", int64(1), "event4"},
		},
		{
			name: "upstream TestPrintEvent: series",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "event6"}, Source: corev1.EventSource{Component: "kubelet", Host: "Node1"},
				InvolvedObject: deployment, Reason: "Event Reason", Message: "Message Data",
				Series:    &corev1.EventSeries{Count: 2, LastObservedTime: microDaysAgo(2)},
				EventTime: microDaysAgo(3), Type: corev1.EventTypeWarning,
			},
			want: []any{"2d", "Warning", "Event Reason", "deployment/Deployment Name", "spec.containers{foo}", "kubelet, Node1", "Message Data", "3d", int64(2), "event6"},
		},
		{
			name: "upstream TestPrintEvent: singleton without count",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "event7"}, Source: corev1.EventSource{Component: "kubelet", Host: "Node1"},
				InvolvedObject: deployment, Reason: "Event Reason", Message: "Message Data",
				EventTime: microDaysAgo(3), Type: corev1.EventTypeWarning,
			},
			want: []any{"3d", "Warning", "Event Reason", "deployment/Deployment Name", "spec.containers{foo}", "kubelet, Node1", "Message Data", "3d", int64(1), "event7"},
		},
		{
			name: "upstream TestPrintEvent: reporting controller and instance replace an empty source",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "event2"}, ReportingController: "kubelet", ReportingInstance: "test",
				InvolvedObject: deployment, Reason: "Event Reason", Message: "Message Data",
				FirstTimestamp: daysAgo(3), LastTimestamp: daysAgo(2), Count: 6, Type: corev1.EventTypeWarning,
			},
			want: []any{"2d", "Warning", "Event Reason", "deployment/Deployment Name", "spec.containers{foo}", "kubelet, test", "Message Data", "3d", int64(6), "event2"},
		},
		{
			name: "no involved object name, message trimmed, no timestamps",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "e"}, InvolvedObject: corev1.ObjectReference{Kind: "Node"},
				Reason: "Starting", Message: "  hello \n",
			},
			want: []any{"<unknown>", "", "Starting", "node", "", "", "hello", "<unknown>", int64(1), "e"},
		},
	})
}

func TestSmallCoreKindsCells(t *testing.T) {
	tests := []struct {
		name     string
		resource schema.GroupResource
		obj      runtime.Object
		want     []any
	}{
		{name: "upstream TestPrintNamespace: with status", resource: gr("", "namespaces"),
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "namespace1", CreationTimestamp: almostNow}, Status: corev1.NamespaceStatus{Phase: "FooStatus"}},
			want: []any{"namespace1", "FooStatus", "0s"}},
		{name: "upstream TestPrintNamespace: without status or age (phase defaulted to Active, as kube stores it)", resource: gr("", "namespaces"),
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "namespace2"}},
			want: []any{"namespace2", "Active", "<unknown>"}},
		{name: "namespace being deleted", resource: gr("", "namespaces"),
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gone", CreationTimestamp: ago(2 * time.Hour)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			want: []any{"gone", "Terminating", "120m"}},
		{name: "upstream TestPrintSecret: one data item", resource: gr("", "secrets"),
			obj: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secret1", CreationTimestamp: almostNow}, Type: "kubernetes.io/service-account-token",
				Data: map[string][]byte{"token": []byte("secret data")}},
			want: []any{"secret1", "kubernetes.io/service-account-token", int64(1), "0s"}},
		{name: "upstream TestPrintSecret: no data", resource: gr("", "secrets"),
			obj:  &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secret1", CreationTimestamp: almostNow}, Type: "kubernetes.io/service-account-token"},
			want: []any{"secret1", "kubernetes.io/service-account-token", int64(0), "0s"}},
		{name: "secret without type prints kube's default Opaque; stringData keys count", resource: gr("", "secrets"),
			obj: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"},
				Data: map[string][]byte{"a": nil, "b": nil}, StringData: map[string]string{"b": "x", "c": "y"}},
			want: []any{"s", "Opaque", int64(3), "<unknown>"}},
		{name: "upstream TestPrintServiceAccount: no secrets", resource: gr("", "serviceaccounts"),
			obj:  &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "sa1", CreationTimestamp: almostNow}, Secrets: []corev1.ObjectReference{}},
			want: []any{"sa1", "0s"}},
		{name: "upstream TestPrintServiceAccount: two secrets", resource: gr("", "serviceaccounts"),
			obj:  &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "sa1", CreationTimestamp: almostNow}, Secrets: []corev1.ObjectReference{{Name: "Secret1"}, {Name: "Secret2"}}},
			want: []any{"sa1", "0s"}},
		{name: "upstream TestPrintConfigMap: no data", resource: gr("", "configmaps"),
			obj:  &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "configmap1", CreationTimestamp: almostNow}},
			want: []any{"configmap1", int64(0), "0s"}},
		{name: "upstream TestPrintConfigMap: data and binary data both count", resource: gr("", "configmaps"),
			obj: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "configmap3", CreationTimestamp: almostNow},
				Data: map[string]string{"foo": "bar"}, BinaryData: map[string][]byte{"bin": []byte("binary data")}},
			want: []any{"configmap3", int64(2), "0s"}},
		{name: "upstream TestPrintLease: holder", resource: gr("coordination.k8s.io", "leases"),
			obj:  &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "lease2", CreationTimestamp: ago(5 * time.Minute)}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("holder2")}},
			want: []any{"lease2", "holder2", "5m"}},
		{name: "lease without holder", resource: gr("coordination.k8s.io", "leases"),
			obj:  &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "free"}},
			want: []any{"free", "", "<unknown>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cellsFor(t, tc.resource, tc.obj)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}
