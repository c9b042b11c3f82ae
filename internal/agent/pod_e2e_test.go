package agent_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"kubesvc/internal/testcluster"
)

func podExec(t *testing.T, w *testcluster.World, ns, pod string, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := w.Kubectl(ctx, append([]string{"exec", "-n", ns, pod, "--"}, cmd...)...)
	if err != nil {
		t.Fatalf("kubectl exec %s %v: %v: %s", pod, cmd, err, out)
	}
	return out
}

func createNamespace(t *testing.T, w *testcluster.World, ns string) {
	t.Helper()
	if _, err := w.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createService(t *testing.T, w *testcluster.World, ns, name, ip string, ports ...corev1.ServicePort) {
	t.Helper()
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports, Selector: map[string]string{"app": name}}}
	if _, err := w.Client.CoreV1().Services(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
}

// TestAgent_PodIdentity checks what a pod sees of itself: hostname, resolv.conf per dnsPolicy,
// /etc/hosts, and the environment variables exactly as the kubelet writes them for the
// Services that existed when the pod started (k8s-service-spec.md §3, §4.1).
func TestAgent_PodIdentity(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a"}})
	createNamespace(t, w, "ns1")
	createService(t, w, "ns1", "kubia", "10.96.100.10", corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)})
	createService(t, w, "ns1", "redis-primary", "10.96.100.11", corev1.ServicePort{Port: 6379})
	createService(t, w, "ns1", "multi", "10.96.100.12",
		corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP})
	createService(t, w, "default", "other-ns", "10.96.100.13", corev1.ServicePort{Port: 80})
	pod := kubiaPod("kubia-id", "node-a")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "URL", Value: "http://$(KUBIA_SERVICE_HOST):$(KUBIA_SERVICE_PORT)/$(POD_NAME)"},
	}
	createPod(t, w, "ns1", pod)
	p := w.WaitPod(60*time.Second, "ns1", "kubia-id", "ready", testcluster.PodReady)
	// Created after the pod started: must not appear (ENV-07).
	createService(t, w, "ns1", "late", "10.96.100.14", corev1.ServicePort{Port: 80})

	t.Run("hostname", func(t *testing.T) {
		if got := podExec(t, w, "ns1", "kubia-id", "hostname"); got != "kubia-id\n" {
			t.Fatalf("hostname %q", got)
		}
		if got := podExec(t, w, "ns1", "kubia-id", "cat", "/etc/hostname"); got != "kubia-id\n" {
			t.Fatalf("/etc/hostname %q", got)
		}
	})
	t.Run("resolv.conf ClusterFirst", func(t *testing.T) {
		want := "search ns1.svc.cluster.local svc.cluster.local cluster.local lan.test\nnameserver 10.96.0.10\noptions ndots:5\n"
		if got := podExec(t, w, "ns1", "kubia-id", "cat", "/etc/resolv.conf"); got != want {
			t.Fatalf("resolv.conf:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("hosts", func(t *testing.T) {
		got := podExec(t, w, "ns1", "kubia-id", "cat", "/etc/hosts")
		if !strings.HasPrefix(got, "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n") || !strings.HasSuffix(got, p.Status.PodIP+"\tkubia-id\n") {
			t.Fatalf("/etc/hosts:\n%s", got)
		}
	})
	t.Run("environment", func(t *testing.T) {
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(podExec(t, w, "ns1", "kubia-id", "env")), "\n") {
			if !strings.HasPrefix(l, "PATH=") && !strings.HasPrefix(l, "HOME=") {
				got = append(got, l)
			}
		}
		sort.Strings(got)
		want := strings.Split(fmt.Sprintf(`HOSTNAME=kubia-id
KUBERNETES_PORT=tcp://10.96.0.1:443
KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443
KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1
KUBERNETES_PORT_443_TCP_PORT=443
KUBERNETES_PORT_443_TCP_PROTO=tcp
KUBERNETES_SERVICE_HOST=10.96.0.1
KUBERNETES_SERVICE_PORT=443
KUBERNETES_SERVICE_PORT_HTTPS=443
KUBIA_PORT=tcp://10.96.100.10:80
KUBIA_PORT_80_TCP=tcp://10.96.100.10:80
KUBIA_PORT_80_TCP_ADDR=10.96.100.10
KUBIA_PORT_80_TCP_PORT=80
KUBIA_PORT_80_TCP_PROTO=tcp
KUBIA_SERVICE_HOST=10.96.100.10
KUBIA_SERVICE_PORT=80
MULTI_PORT=tcp://10.96.100.12:80
MULTI_PORT_53_UDP=udp://10.96.100.12:53
MULTI_PORT_53_UDP_ADDR=10.96.100.12
MULTI_PORT_53_UDP_PORT=53
MULTI_PORT_53_UDP_PROTO=udp
MULTI_PORT_80_TCP=tcp://10.96.100.12:80
MULTI_PORT_80_TCP_ADDR=10.96.100.12
MULTI_PORT_80_TCP_PORT=80
MULTI_PORT_80_TCP_PROTO=tcp
MULTI_SERVICE_HOST=10.96.100.12
MULTI_SERVICE_PORT=80
MULTI_SERVICE_PORT_DNS_UDP=53
MULTI_SERVICE_PORT_HTTP=80
NODE=node-a
POD_IP=%s
POD_NAME=kubia-id
REDIS_PRIMARY_PORT=tcp://10.96.100.11:6379
REDIS_PRIMARY_PORT_6379_TCP=tcp://10.96.100.11:6379
REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.96.100.11
REDIS_PRIMARY_PORT_6379_TCP_PORT=6379
REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp
REDIS_PRIMARY_SERVICE_HOST=10.96.100.11
REDIS_PRIMARY_SERVICE_PORT=6379
URL=http://10.96.100.10:80/kubia-id`, p.Status.PodIP), "\n")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("env (-want +got):\n%s", diff)
		}
	})
	t.Run("enableServiceLinks false and dnsPolicy Default", func(t *testing.T) {
		p := kubiaPod("kubia-nolinks", "node-a")
		p.Spec.EnableServiceLinks = ptr.To(false)
		p.Spec.DNSPolicy = corev1.DNSDefault
		createPod(t, w, "ns1", p)
		w.WaitPod(60*time.Second, "ns1", "kubia-nolinks", "ready", testcluster.PodReady)
		env := podExec(t, w, "ns1", "kubia-nolinks", "env")
		if !strings.Contains(env, "KUBERNETES_SERVICE_HOST=10.96.0.1\n") || strings.Contains(env, "KUBIA_") || strings.Contains(env, "LATE_") {
			t.Fatalf("env without service links:\n%s", env)
		}
		if got := podExec(t, w, "ns1", "kubia-nolinks", "cat", "/etc/resolv.conf"); got != "search lan.test\nnameserver 203.0.113.53\n" {
			t.Fatalf("resolv.conf of dnsPolicy Default: %q", got)
		}
	})
	t.Run("host network", func(t *testing.T) {
		p := kubiaPod("kubia-hostnet", "node-a")
		p.Spec.HostNetwork = true
		p.Spec.Containers[0].Command = []string{"sh", "-c", "exec sleep 3600"}
		createPod(t, w, "ns1", p)
		got := w.WaitPod(60*time.Second, "ns1", "kubia-hostnet", "ready", testcluster.PodReady)
		if got.Status.PodIP != w.Nodes()[0].IP.String() {
			t.Fatalf("host-network pod IP %s, want the node's %s", got.Status.PodIP, w.Nodes()[0].IP)
		}
		if out := podExec(t, w, "ns1", "kubia-hostnet", "cat", "/proc/net/dev"); !strings.Contains(out, "eth0") || !strings.Contains(out, "kubesvc0") {
			t.Fatalf("host-network pod does not see the node's interfaces:\n%s", out)
		}
	})
}
