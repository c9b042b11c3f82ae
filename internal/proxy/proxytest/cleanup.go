package proxytest

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"kubesvc/internal/runtime/netns"
)

// CheckAgentCleanup stops node1's agent (in the kube-apiserver variant its `kubesvc agent
// --kubeconfig` proxy) and runs `kubesvc agent --cleanup` there (issue 6 item 4): afterwards node1 has no table kubesvc (ip or ip6) and no userspace VIP device,
// and pod c1's connections to a ClusterIP (node1's rules) no longer reach an endpoint. It
// changes the world for good: TestProxy calls it once the table has run.
func (e *Env) CheckAgentCleanup(t *testing.T) {
	t.Helper()
	n := e.Nodes[0]
	switch p := e.ext[n.Name]; {
	case p == nil:
		n.StopAgent(syscall.SIGTERM)
	case p.agent: // kube-apiserver variant: the proxy is `kubesvc agent --kubeconfig`
		p.stop()
	default:
		t.Log("agent --cleanup: not checked in the PROXYTEST_EXTERNAL harness mode (the proxy is the test binary, not an agent)")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := n.Exec(ctx, e.World.Bin, "agent", "--cleanup")
	if err != nil {
		t.Errorf("agent --cleanup: %v: %s", err, out)
		return
	}
	if err := netns.Do(n.NetNS, func() error {
		var errs []error
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTables()
		if err != nil {
			return fmt.Errorf("list nftables tables: %w", err)
		}
		for _, tb := range tables {
			if tb.Name == "kubesvc" {
				errs = append(errs, fmt.Errorf("table kubesvc (family %d) still there", tb.Family))
			}
		}
		if _, err := netlink.LinkByName("kubesvc-vip0"); err == nil {
			errs = append(errs, errors.New("userspace VIP device kubesvc-vip0 still there"))
		}
		return errors.Join(errs...)
	}); err != nil {
		t.Errorf("after agent --cleanup on node1: %v", err)
	}
	a, err := e.probe(PodOn(1), ClusterIP("spread", "http"), dropWait)
	if err != nil {
		t.Fatal(err)
	}
	if a.fail == ok {
		t.Errorf("after agent --cleanup on node1, pod c1 still reaches %v through the ClusterIP", a)
	} else {
		t.Logf("agent --cleanup on node1: pod c1 to the ClusterIP: %v", a)
	}
}
