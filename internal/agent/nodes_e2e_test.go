package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"kubesvc/internal/server"
	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

// serverFlags returns an option setting server flags; ok=false when the server has no such
// flag (the controllers that need them are not wired).
func serverFlags(args ...string) (servertest.Option, bool) {
	probe := pflag.NewFlagSet("probe", pflag.ContinueOnError)
	server.NewConfig().AddFlags(probe)
	if err := probe.Parse(args); err != nil {
		return nil, false
	}
	return func(c *server.Config) {
		fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
		c.AddFlags(fs)
		_ = fs.Parse(args)
	}, true
}

// TestAgent_NodeDeath: a node whose machine dies (its PID 1 killed: agent, shims, containers
// and network namespace gone) turns NotReady, and the ReplicaSet's pods that ran there are
// recreated on the other node.
func TestAgent_NodeDeath(t *testing.T) {
	opt, ok := serverFlags("--node-monitor-grace-period=6s", "--pod-eviction-timeout=2s")
	if !ok {
		t.Skip("the server has no node lifecycle controller flags yet")
	}
	w := testcluster.New(t, testcluster.Options{
		Nodes:         []string{"node-a", "node-b"},
		AgentArgs:     []string{"--node-lease-duration-seconds=2"},
		ServerOptions: []servertest.Option{opt},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	labels := map[string]string{"app": "kubia"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kubia"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(int32(4)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kubia", Image: "luksa/kubia"}}},
			},
		},
	}
	if _, err := w.Client.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	readyOn := func() (map[string]int, error) {
		pods, err := w.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=kubia"})
		if err != nil {
			return nil, err
		}
		on := map[string]int{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && testcluster.PodReady(p) == nil {
				on[p.Spec.NodeName]++
			}
		}
		return on, nil
	}
	var before map[string]int
	servertest.WaitFor(t, 90*time.Second, "4 ready replicas", func() error {
		on, err := readyOn()
		if err != nil {
			return err
		}
		if on["node-a"]+on["node-b"] != 4 {
			return fmt.Errorf("ready per node %v", on)
		}
		before = on
		return nil
	})
	victim, survivor := w.Nodes()[1], "node-a"
	if before["node-b"] == 0 {
		victim, survivor = w.Nodes()[0], "node-b"
	}
	t.Logf("replicas per node %v; killing %s", before, victim.Name)
	victim.Kill()
	servertest.WaitFor(t, 60*time.Second, victim.Name+" not ready", func() error {
		n, err := w.Client.CoreV1().Nodes().Get(ctx, victim.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", n.Status.Conditions)
	})
	servertest.WaitFor(t, 120*time.Second, "4 ready replicas on "+survivor, func() error {
		on, err := readyOn()
		if err != nil {
			return err
		}
		if on[survivor] != 4 {
			return fmt.Errorf("ready per node %v", on)
		}
		return nil
	})
}
