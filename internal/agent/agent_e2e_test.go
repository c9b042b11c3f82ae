package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

func kubiaPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "kubia"}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "kubia", Image: "luksa/kubia", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}},
		},
	}
}

func createPod(t *testing.T, w *testcluster.World, ns string, pod *corev1.Pod) {
	t.Helper()
	if _, err := w.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
}

func TestAgent_TwoNodesPodToPod(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a", "node-b"}, AgentArgs: []string{"--container-backoff=1s"}})
	createPod(t, w, "default", kubiaPod("kubia-a", "node-a"))
	createPod(t, w, "default", kubiaPod("kubia-b", "node-b"))
	a := w.WaitPod(60*time.Second, "default", "kubia-a", "ready", testcluster.PodReady)
	b := w.WaitPod(60*time.Second, "default", "kubia-b", "ready", testcluster.PodReady)
	if a.Status.PodIP == "" || b.Status.PodIP == "" || a.Status.PodIP == b.Status.PodIP {
		t.Fatalf("pod IPs %q %q", a.Status.PodIP, b.Status.PodIP)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name     string
		from, to *corev1.Pod
	}{
		{name: "a to b", from: a, to: b},
		{name: "b to a", from: b, to: a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := w.Kubectl(ctx, "exec", tc.from.Name, "--", "curl", "-s", "--max-time", "5", fmt.Sprintf("http://%s:8080/", tc.to.Status.PodIP))
			if err != nil {
				t.Fatalf("kubectl exec curl: %v: %s", err, out)
			}
			if want := "You've hit " + tc.to.Name + "\n"; out != want {
				t.Fatalf("got %q, want %q", out, want)
			}
		})
	}
	// Container output reaches the log file through the shim's pipe, after
	// the answer went out: wait for the line rather than race it.
	servertest.WaitFor(t, 10*time.Second, "kubectl logs kubia-b shows kubia-a's request", func() error {
		out, err := w.Kubectl(ctx, "logs", "kubia-b")
		if err != nil || !strings.Contains(out, "Kubia server starting...") || !strings.Contains(out, "Received request from ::ffff:"+a.Status.PodIP) {
			return fmt.Errorf("%v:\n%s", err, out)
		}
		return nil
	})
}
