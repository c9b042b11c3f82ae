package agent_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"kubesvc/internal/servertest"
	"kubesvc/internal/testcluster"
)

// TestAgent_InServer runs `kubesvc server` (with its built-in agent) on a node: a pod bound to
// that node runs, and a restart of the server (and so of its agent) does not disturb it.
func TestAgent_InServer(t *testing.T) {
	w := testcluster.New(t, testcluster.Options{})
	sn := w.AddServerNode("server-node")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := sn.Kubectl(ctx, "run", "kubia", "--image=luksa/kubia", "--port=8080", `--overrides={"spec":{"nodeName":"server-node"}}`)
	if err != nil {
		t.Fatalf("kubectl run: %v: %s", err, out)
	}
	status := func() (string, error) {
		return sn.Kubectl(ctx, "get", "pod", "kubia", "-o", `jsonpath={.status.podIP} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount} {.status.conditions[?(@.type=="Ready")].status}`)
	}
	var before string
	servertest.WaitFor(t, 60*time.Second, "pod ready on the server's node", func() error {
		s, err := status()
		if err != nil || !strings.HasSuffix(s, " 0 True") {
			return fmt.Errorf("%q %v", s, err)
		}
		before = s
		return nil
	})
	ip := strings.Fields(before)[0]
	curl := func() error {
		got, err := sn.Exec(ctx, "curl", "-s", "--max-time", "5", "http://"+ip+":8080/")
		if err != nil || got != "You've hit kubia\n" {
			return fmt.Errorf("curl: %q %v", got, err)
		}
		return nil
	}
	// Ready means running: kubia listens a moment later.
	servertest.WaitFor(t, 10*time.Second, "kubia answers", curl)
	sn.StopAgent(syscall.SIGTERM) // the server process
	if err := curl(); err != nil {
		t.Fatalf("pod disturbed while the server is down: %v", err)
	}
	sn.StartServer()
	servertest.WaitFor(t, 60*time.Second, "pod unchanged after the server restart", func() error {
		s, err := status()
		if err != nil || s != before {
			return fmt.Errorf("status %q (before %q) %v", s, before, err)
		}
		return nil
	})
	if err := curl(); err != nil {
		t.Fatal(err)
	}
	out, err = sn.Kubectl(ctx, "logs", "kubia")
	if err != nil || !strings.HasPrefix(out, "Kubia server starting...\n") {
		t.Fatalf("logs after the restart: %v: %q", err, out)
	}
}
