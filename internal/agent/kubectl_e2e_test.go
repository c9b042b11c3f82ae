package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

// TestAgent_Kubectl drives pods/log, exec and portforward through the real kubectl
// (`kubesvc kubectl`), the API server's proxy and the agent.
func TestAgent_Kubectl(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{Nodes: []string{"node-a"}})
	createPod(t, w, "default", kubiaPod("kubia", "node-a"))
	two := shPod("two", "node-a", "echo from-a; exec sleep 3600")
	two.Spec.Containers[0].Name = "a"
	two.Spec.Containers = append(two.Spec.Containers, corev1.Container{Name: "b", Image: "busybox", Command: []string{"sh", "-c", "echo from-b; exec sleep 3600"}})
	createPod(t, w, "default", two)
	counter := shPod("counter", "node-a", "for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done")
	counter.Spec.RestartPolicy = corev1.RestartPolicyNever
	w.WaitPod(30*time.Second, "default", "kubia", "ready", testcluster.PodReady)
	w.WaitPod(30*time.Second, "default", "two", "ready", testcluster.PodReady)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("logs -c", func(t *testing.T) {
		for _, c := range []string{"a", "b"} {
			servertest.WaitFor(t, 10*time.Second, "log of container "+c, func() error {
				out, err := w.Kubectl(ctx, "logs", "two", "-c", c)
				if err != nil || out != "from-"+c+"\n" {
					return fmt.Errorf("%q %v", out, err)
				}
				return nil
			})
		}
	})
	t.Run("logs -f follows until the container ends", func(t *testing.T) {
		createPod(t, w, "default", counter)
		w.WaitPod(30*time.Second, "default", "counter", "running", func(p *corev1.Pod) error {
			if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodSucceeded {
				return fmt.Errorf("phase %s", p.Status.Phase)
			}
			return nil
		})
		out, err := w.Kubectl(ctx, "logs", "-f", "counter")
		if err != nil || out != "line 1\nline 2\nline 3\nline 4\nline 5\n" {
			t.Fatalf("logs -f: %v: %q", err, out)
		}
	})
	t.Run("logs --tail --timestamps", func(t *testing.T) {
		out, err := w.Kubectl(ctx, "logs", "counter", "--tail=2", "--timestamps")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if err != nil || len(lines) != 2 || !strings.HasSuffix(lines[1], " line 5") || !strings.Contains(lines[0], "T") {
			t.Fatalf("logs --tail=2 --timestamps: %v: %q", err, out)
		}
	})
	t.Run("exec -i with stdin", func(t *testing.T) {
		cmd := w.KubectlCmd(ctx, "exec", "-i", "kubia", "--", "cat")
		cmd.Stdin = strings.NewReader("hello through stdin\n")
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "hello through stdin\n" {
			t.Fatalf("exec -i cat: %v: %q", err, out)
		}
	})
	t.Run("exec exit code", func(t *testing.T) {
		cmd := w.KubectlCmd(ctx, "exec", "kubia", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("kubectl exit %v, want code 3 (stderr %q)", err, stderr.String())
		}
		if stdout.String() != "out\n" || !strings.HasPrefix(stderr.String(), "err\n") || !strings.Contains(stderr.String(), "command terminated with exit code 3") {
			t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
		}
	})
	t.Run("exec -it with a terminal", func(t *testing.T) {
		master, slave, err := openPTY()
		if err != nil {
			t.Fatal(err)
		}
		defer master.Close()
		cmd := w.KubectlCmd(ctx, "exec", "-it", "kubia", "--", "sh")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		fmt.Fprintf(master, "tty; hostname; exit 5\n")
		var out bytes.Buffer
		done := make(chan struct{})
		go func() { _, _ = io.Copy(&out, master); close(done) }()
		err = cmd.Wait()
		<-done
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Fatalf("kubectl exec -it exit %v, want 5; output:\n%s", err, out.String())
		}
		if s := out.String(); !strings.Contains(s, "/dev/pts/") || !strings.Contains(s, "kubia\r\n") {
			t.Fatalf("terminal session output:\n%s", s)
		}
	})
	t.Run("port-forward", func(t *testing.T) {
		pctx, pcancel := context.WithCancel(ctx)
		defer pcancel()
		cmd := w.KubectlCmd(pctx, "port-forward", "pod/kubia", "18080:8080")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { pcancel(); _ = cmd.Wait() }()
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "Forwarding from 127.0.0.1:18080 -> 8080") {
			t.Fatalf("port-forward said %q (%v), stderr %q", line, err, stderr.String())
		}
		for i := 0; i < 3; i++ {
			got, err := testcluster.HTTPGet(ctx, "", "http://127.0.0.1:18080/")
			if err != nil || got != "You've hit kubia\n" {
				t.Fatalf("through port-forward: %q %v (stderr %q)", got, err, stderr.String())
			}
		}
	})
	t.Run("exec in a missing container", func(t *testing.T) {
		out, err := w.Kubectl(ctx, "exec", "kubia", "-c", "nope", "--", "true")
		if err == nil || !strings.Contains(out, "nope") {
			t.Fatalf("exec -c nope: %v %q", err, out)
		}
	})
	t.Run("logs --previous without a previous container", func(t *testing.T) {
		out, err := w.Kubectl(ctx, "logs", "kubia", "--previous")
		want := `Error from server (BadRequest): previous terminated container "kubia" in pod "kubia" not found`
		if err == nil || strings.TrimSpace(out) != want {
			t.Fatalf("got %v %q, want %q", err, out, want)
		}
	})
}

// openPTY opens a pseudo-terminal pair for a kubectl that wants a terminal.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}
