package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

func shPod(name, node, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "main", Image: "busybox", Command: []string{"sh", "-c", script},
		}}},
	}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// TestAgent_Probes: an exec readiness probe flips the Ready condition both ways; a failing
// liveness probe restarts the container; an httpGet readiness probe on kubia.
func TestAgent_Probes(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a"}, AgentArgs: []string{"--container-backoff=1s"}})
	flag := filepath.Join(w.Dir(), "ready")
	p := shPod("readiness", "node-a", "exec sleep 3600")
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", flag}}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	createPod(t, w, "default", p)
	w.WaitPod(30*time.Second, "default", "readiness", "running but not ready", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning || condition(p, corev1.PodReady) != corev1.ConditionFalse || condition(p, corev1.ContainersReady) != corev1.ConditionFalse {
			return fmt.Errorf("phase %s, conditions %v", p.Status.Phase, p.Status.Conditions)
		}
		return nil
	})
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.WaitPod(30*time.Second, "default", "readiness", "ready after the probe succeeds", testcluster.PodReady)
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	got := w.WaitPod(30*time.Second, "default", "readiness", "not ready after the probe fails", func(p *corev1.Pod) error {
		if condition(p, corev1.PodReady) != corev1.ConditionFalse {
			return fmt.Errorf("conditions %v", p.Status.Conditions)
		}
		return nil
	})
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.PodReady && (c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [main]") {
			t.Fatalf("Ready condition %+v", c)
		}
	}
	if rc := got.Status.ContainerStatuses[0].RestartCount; rc != 0 {
		t.Fatalf("a readiness failure restarted the container (%d)", rc)
	}

	t.Run("liveness restarts", func(t *testing.T) {
		p := kubiaPod("unhealthy", "node-a")
		p.Spec.Containers[0].Image = "luksa/kubia-unhealthy"
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1, FailureThreshold: 2,
		}
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(1))
		createPod(t, w, "default", p)
		got := w.WaitPod(90*time.Second, "default", "unhealthy", "restarted by its liveness probe", func(p *corev1.Pod) error {
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 || p.Status.ContainerStatuses[0].LastTerminationState.Terminated == nil {
				return fmt.Errorf("statuses %v", p.Status.ContainerStatuses)
			}
			return nil
		})
		if last := got.Status.ContainerStatuses[0].LastTerminationState.Terminated; last.ContainerID == got.Status.ContainerStatuses[0].ContainerID {
			t.Fatalf("restart kept the container ID %s", last.ContainerID)
		}
		ev, err := w.Client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=unhealthy"})
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, e := range ev.Items {
			reasons = append(reasons, e.Reason+": "+e.Message)
		}
		all := strings.Join(reasons, "\n")
		if !strings.Contains(all, "Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500") || !strings.Contains(all, "Killing: Container kubia failed liveness probe, will be restarted") {
			t.Fatalf("events:\n%s", all)
		}
	})

	t.Run("httpGet readiness on kubia", func(t *testing.T) {
		p := kubiaPod("kubia-ready", "node-a")
		p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1,
		}
		createPod(t, w, "default", p)
		w.WaitPod(30*time.Second, "default", "kubia-ready", "ready", testcluster.PodReady)
	})
}

// TestAgent_RestartPolicy: a crashing container restarts with the kubelet's back-off
// (immediately, then initial, doubling) and waits in CrashLoopBackOff; Never fails the pod,
// OnFailure with exit 0 succeeds; an unknown image waits with ErrImagePull.
func TestAgent_RestartPolicy(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a"}, AgentArgs: []string{"--container-backoff=1s", "--container-backoff-max=8s"}})
	createPod(t, w, "default", shPod("crash", "node-a", "echo run $(date +%s.%N); exit 3"))
	var starts []time.Time
	seen := map[string]bool{}
	sawBackOff := ""
	w.WaitPod(90*time.Second, "default", "crash", "restarted 4 times", func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 {
			return fmt.Errorf("no status")
		}
		cs := p.Status.ContainerStatuses[0]
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			sawBackOff = w.Message
		}
		if lt := cs.LastTerminationState.Terminated; lt != nil && !seen[lt.ContainerID] {
			seen[lt.ContainerID] = true
			if lt.ExitCode != 3 || lt.Reason != "Error" {
				return fmt.Errorf("last termination %+v", lt)
			}
		}
		if cs.RestartCount < 4 {
			return fmt.Errorf("restartCount %d", cs.RestartCount)
		}
		return nil
	})
	if !strings.HasPrefix(sawBackOff, "back-off ") || !strings.Contains(sawBackOff, "restarting failed container=main pod=crash_default(") {
		t.Fatalf("CrashLoopBackOff message %q", sawBackOff)
	}
	// The log of each run has its start time: the gaps between runs show the back-off.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		args := []string{"logs", "crash"}
		if i == 0 {
			args = append(args, "--previous")
		}
		out, err := w.Kubectl(ctx, args...)
		if err != nil || !strings.HasPrefix(out, "run ") {
			t.Fatalf("kubectl %v: %v: %q", args, err, out)
		}
		var sec float64
		fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(out), "run "), "%f", &sec)
		starts = append(starts, time.Unix(0, int64(sec*1e9)))
	}
	// Runs 3 (previous) and 4 (current) are separated by the third back-off: 1s, 2s, 4s.
	if gap := starts[1].Sub(starts[0]); gap < 3500*time.Millisecond || gap > 9*time.Second {
		t.Fatalf("gap between the 4th and 5th run %v, want about 4s", gap)
	}

	t.Run("Never fails", func(t *testing.T) {
		p := shPod("never", "node-a", "exit 2")
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		createPod(t, w, "default", p)
		got := w.WaitPod(30*time.Second, "default", "never", "failed", func(p *corev1.Pod) error {
			if p.Status.Phase != corev1.PodFailed {
				return fmt.Errorf("phase %s", p.Status.Phase)
			}
			return nil
		})
		term := got.Status.ContainerStatuses[0].State.Terminated
		if term == nil || term.ExitCode != 2 || term.Reason != "Error" || got.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Fatalf("status %+v", got.Status.ContainerStatuses[0])
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodReady && c.Reason != "PodCompleted" {
				t.Fatalf("Ready condition of a failed pod %+v", c)
			}
		}
	})
	t.Run("OnFailure succeeds", func(t *testing.T) {
		p := shPod("onfailure", "node-a", "echo done")
		p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		createPod(t, w, "default", p)
		got := w.WaitPod(30*time.Second, "default", "onfailure", "succeeded", func(p *corev1.Pod) error {
			if p.Status.Phase != corev1.PodSucceeded {
				return fmt.Errorf("phase %s", p.Status.Phase)
			}
			return nil
		})
		if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "Completed" {
			t.Fatalf("status %+v", got.Status.ContainerStatuses[0])
		}
	})
	t.Run("unknown image waits", func(t *testing.T) {
		p := kubiaPod("unknown-image", "node-a")
		p.Spec.Containers[0].Image = "example.test/no-such-image:1"
		createPod(t, w, "default", p)
		w.WaitPod(30*time.Second, "default", "unknown-image", "waiting for its image", func(p *corev1.Pod) error {
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
				return fmt.Errorf("statuses %v", p.Status.ContainerStatuses)
			}
			wt := p.Status.ContainerStatuses[0].State.Waiting
			if (wt.Reason != "ErrImagePull" && wt.Reason != "ImagePullBackOff") || !strings.Contains(wt.Message, "not in this node's image catalog") || p.Status.Phase != corev1.PodPending {
				return fmt.Errorf("waiting %+v, phase %s", wt, p.Status.Phase)
			}
			return nil
		})
	})
	t.Run("init containers run first", func(t *testing.T) {
		marker := filepath.Join(w.Dir(), "init-ran")
		p := shPod("with-init", "node-a", "test -e "+marker+" && exec sleep 3600")
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"sh", "-c", "touch " + marker}}}
		createPod(t, w, "default", p)
		got := w.WaitPod(30*time.Second, "default", "with-init", "ready", testcluster.PodReady)
		if s := got.Status.InitContainerStatuses; len(s) != 1 || s[0].State.Terminated == nil || s[0].State.Terminated.Reason != "Completed" {
			t.Fatalf("init status %+v", s)
		}
	})
}

// TestAgent_GracefulTermination: deleting a pod runs preStop, then SIGTERM, waits the grace
// period, SIGKILLs, and the agent finishes the deletion; a pod that exits on SIGTERM goes
// at once.
func TestAgent_GracefulTermination(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a"}})
	trace := filepath.Join(w.Dir(), "trace")
	// The container ignores SIGTERM (it records it) and must be killed after the grace period.
	stubborn := shPod("stubborn", "node-a", fmt.Sprintf("trap 'echo TERM >> %s' TERM; echo started >> %s; while true; do sleep 0.1; done", trace, trace))
	stubborn.Spec.TerminationGracePeriodSeconds = ptr.To(int64(3))
	stubborn.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo preStop >> " + trace}}}}
	createPod(t, w, "default", stubborn)
	w.WaitPod(30*time.Second, "default", "stubborn", "ready", testcluster.PodReady)
	servertest.WaitFor(t, 10*time.Second, "container started", func() error {
		if b, _ := os.ReadFile(trace); !strings.Contains(string(b), "started") {
			return fmt.Errorf("trace %q", b)
		}
		return nil
	})
	ctx := context.Background()
	start := time.Now()
	if err := w.Client.CoreV1().Pods("default").Delete(ctx, "stubborn", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := w.Client.CoreV1().Pods("default").Get(ctx, "stubborn", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 3 {
		t.Fatalf("pod right after delete: %v %+v", err, p)
	}
	servertest.WaitFor(t, 30*time.Second, "pod deleted by its agent", func() error {
		_, err := w.Client.CoreV1().Pods("default").Get(ctx, "stubborn", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
	took := time.Since(start)
	b, _ := os.ReadFile(trace)
	if got := strings.Fields(string(b)); strings.Join(got, " ") != "started preStop TERM" {
		t.Fatalf("order of events %q, want started preStop TERM", got)
	}
	if took < 3*time.Second || took > 10*time.Second {
		t.Fatalf("deletion took %v, want about the 3s grace period", took)
	}

	t.Run("prompt exit on SIGTERM", func(t *testing.T) {
		p := kubiaPod("prompt", "node-a")
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(30))
		createPod(t, w, "default", p)
		w.WaitPod(30*time.Second, "default", "prompt", "ready", testcluster.PodReady)
		start := time.Now()
		if err := w.Client.CoreV1().Pods("default").Delete(ctx, "prompt", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		servertest.WaitFor(t, 20*time.Second, "pod deleted", func() error {
			_, err := w.Client.CoreV1().Pods("default").Get(ctx, "prompt", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there: %v", err)
		})
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("deleting a pod that exits on SIGTERM took %v", took)
		}
	})
}

// TestAgent_RestartAdoptsPods: an agent killed and restarted adopts its running pods (same
// container, no restart), notices a container that exited meanwhile, and removes the pods
// deleted meanwhile.
func TestAgent_RestartAdoptsPods(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a"}, AgentArgs: []string{"--container-backoff=1s"}})
	node := w.Nodes()[0]
	createPod(t, w, "default", kubiaPod("keep", "node-a"))
	stop := filepath.Join(w.Dir(), "stop")
	exiter := shPod("exiter", "node-a", fmt.Sprintf("while ! test -e %s; do sleep 0.1; done; exit 7", stop))
	exiter.Spec.RestartPolicy = corev1.RestartPolicyNever
	createPod(t, w, "default", exiter)
	createPod(t, w, "default", kubiaPod("gone", "node-a"))
	before := w.WaitPod(30*time.Second, "default", "keep", "ready", testcluster.PodReady)
	w.WaitPod(30*time.Second, "default", "exiter", "ready", testcluster.PodReady)
	w.WaitPod(30*time.Second, "default", "gone", "ready", testcluster.PodReady)
	ctx := context.Background()

	node.StopAgent(syscall.SIGKILL)
	// While the agent is down: a container exits, a pod is force-deleted.
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Client.CoreV1().Pods("default").Delete(ctx, "gone", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	gonePIDs, _ := node.Exec(ctx, "sh", "-c", "pgrep -f '[t]oolbox kubia' | wc -l")
	node.StartAgent()

	after := w.WaitPod(30*time.Second, "default", "keep", "ready after the restart", testcluster.PodReady)
	b, a := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]
	if a.ContainerID != b.ContainerID || a.RestartCount != 0 || !a.State.Running.StartedAt.Equal(&b.State.Running.StartedAt) {
		t.Fatalf("container changed across the agent restart:\nbefore %+v\nafter  %+v", b, a)
	}
	if got, err := testcluster.HTTPGet(ctx, node.NetNS, "http://"+after.Status.PodIP+":8080/"); err != nil || got != "You've hit keep\n" {
		t.Fatalf("adopted pod: %q %v", got, err)
	}
	w.WaitPod(30*time.Second, "default", "exiter", "failed with exit code 7", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed || p.Status.ContainerStatuses[0].State.Terminated == nil || p.Status.ContainerStatuses[0].State.Terminated.ExitCode != 7 {
			return fmt.Errorf("phase %s, %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		return nil
	})
	servertest.WaitFor(t, 30*time.Second, "the force-deleted pod's process is gone", func() error {
		out, _ := node.Exec(ctx, "sh", "-c", "pgrep -f '[t]oolbox kubia' | wc -l")
		if strings.TrimSpace(out) != "1" { // keep's
			return fmt.Errorf("kubia processes: %s (before the restart: %s)", strings.TrimSpace(out), strings.TrimSpace(gonePIDs))
		}
		return nil
	})
}
