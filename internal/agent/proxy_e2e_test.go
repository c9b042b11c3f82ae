package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kubesvc/internal/testcluster"
)

// hitFromPod GETs http://addr/ from inside pod (luksa/kubia answers "You've hit <pod>").
func hitFromPod(ctx context.Context, w *testcluster.World, pod *corev1.Pod, addr string) (string, error) {
	c, err := w.DialFromPod(ctx, pod, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	if i := strings.Index(string(b), "You've hit "); i >= 0 {
		return strings.TrimSpace(string(b)[i+len("You've hit "):]), nil
	}
	return "", fmt.Errorf("answer %q", b)
}

// waitEndpoints waits until the Service's EndpointSlices list n ready endpoints.
func waitEndpoints(t *testing.T, w *testcluster.World, ns, svc string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, err := w.Client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		ready := 0
		if err == nil {
			for _, s := range list.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready == nil || *e.Conditions.Ready {
						ready++
					}
				}
			}
		}
		if ready == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s/%s: %d ready endpoints, want %d (err %v)", ns, svc, ready, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAgent_ServiceProxy runs the agents' nftables proxy in a two-node world: a ClusterIP
// reaches both endpoints from a pod (PX-E-05, across nodes), a NodePort answers on a node
// address from the LAN client host (PX-T-05), a Service without endpoints is refused
// (PX-T-01), the rules stay while the agent is stopped and after it restarts, and
// `kubesvc agent --cleanup` removes them. KUBESVC_TEST_PROXY_MODE=userspace runs it against
// the userspace proxy (rules cannot outlive that agent's process).
func TestAgent_ServiceProxy(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a", "node-b"},
		AgentArgs: []string{"--container-backoff=1s", "--proxy-mode=" + proxyMode(), "--proxy-min-sync-period=100ms"}})
	createPod(t, w, "default", kubiaPod("kubia-a", "node-a"))
	createPod(t, w, "default", kubiaPod("kubia-b", "node-b"))
	a := w.WaitPod(90*time.Second, "default", "kubia-a", "ready", testcluster.PodReady)
	w.WaitPod(90*time.Second, "default", "kubia-b", "ready", testcluster.PodReady)
	ctx := context.Background()
	svc, err := w.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubia"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "kubia"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := w.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "nobody"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "nobody"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitEndpoints(t, w, "default", "kubia", 2)
	vip := netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80).String()
	nodePort := fmt.Sprintf("http://%s:%d/", w.Node("node-a").IP, svc.Spec.Ports[0].NodePort)

	reachBoth := func(t *testing.T) {
		t.Helper()
		seen := map[string]bool{}
		deadline := time.Now().Add(60 * time.Second)
		var last error
		for len(seen) < 2 && time.Now().Before(deadline) {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			hit, err := hitFromPod(cctx, w, a, vip)
			cancel()
			if err != nil {
				last = err
				time.Sleep(100 * time.Millisecond)
				continue
			}
			seen[hit] = true
		}
		if !seen["kubia-a"] || !seen["kubia-b"] {
			t.Fatalf("cluster IP %s from kubia-a reached %v (last error %v), want kubia-a and kubia-b", vip, seen, last)
		}
	}
	t.Run("PX-E-05 ClusterIP reaches both endpoints", reachBoth)
	t.Run("PX-T-05 NodePort from the client host", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := testcluster.HTTPGet(cctx, w.ClientHost().NetNS, nodePort)
		if err != nil || !strings.Contains(out, "You've hit kubia-") {
			t.Fatalf("GET %s from the client host: %q, %v", nodePort, out, err)
		}
	})
	t.Run("PX-T-01 no endpoints is refused", func(t *testing.T) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := hitFromPod(cctx, w, a, empty.Spec.ClusterIP+":80")
			cancel()
			if err != nil && strings.Contains(err.Error(), "connection refused") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("dial a Service without endpoints: %v, want connection refused", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("agent restart keeps the rules", func(t *testing.T) {
		n := w.Node("node-a")
		n.StopAgent(syscall.SIGTERM)
		if proxyMode() == "nftables" { // the userspace proxy lives in the agent process
			reachBoth(t)
		}
		n.StartAgent()
		reachBoth(t)
	})
	t.Run("kubesvc agent --cleanup", func(t *testing.T) {
		n := w.Node("node-a")
		n.StopAgent(syscall.SIGTERM)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if out, err := n.Exec(cctx, w.Bin, "agent", "--cleanup"); err != nil {
			t.Fatalf("kubesvc agent --cleanup: %v\n%s", err, out)
		}
		if out, err := n.Exec(cctx, "nft", "list", "tables"); err == nil && strings.Contains(out, "kubesvc") {
			t.Fatalf("tables after --cleanup:\n%s", out)
		}
		if _, err := hitFromPod(cctx, w, a, vip); err == nil {
			t.Fatalf("cluster IP still answers after --cleanup")
		}
	})
}

// proxyMode is the mode TestAgent_ServiceProxy runs: $KUBESVC_TEST_PROXY_MODE, default nftables.
func proxyMode() string {
	if m := os.Getenv("KUBESVC_TEST_PROXY_MODE"); m != "" {
		return m
	}
	return "nftables"
}
