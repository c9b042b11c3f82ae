package proxytest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kubesvc/internal/proxy"
	"kubesvc/internal/proxy/nftables"
	"kubesvc/internal/proxy/userspace"
)

// TestMain doubles as a stand-alone service proxy (runProxy) when Setup starts this binary in
// a node with PROXYTEST_RUN_PROXY set: the PROXYTEST_EXTERNAL harness mode runs the
// dataplanes beside the agent, like kube-proxy beside a kubelet.
func TestMain(m *testing.M) {
	if mode := os.Getenv(runProxyEnv); mode != "" {
		if err := runProxy(mode); err != nil {
			fmt.Fprintln(os.Stderr, "proxytest proxy:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runProxy runs proxy.Proxier with the mode's dataplane until SIGTERM; configuration comes
// from the environment set by startExternalProxy.
func runProxy(mode string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("PROXYTEST_KUBECONFIG"))
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodeIP, err := netip.ParseAddr(os.Getenv("PROXYTEST_NODE_IP"))
	if err != nil {
		return err
	}
	var dp proxy.Dataplane
	switch mode {
	case "nftables":
		dp, err = nftables.New(nftables.Config{IPv4: true})
	case "userspace":
		dp, err = userspace.New(*userspace.NewConfig())
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return err
	}
	p, err := proxy.New(proxy.Config{
		Client: client, Dataplane: dp, NodeName: os.Getenv("PROXYTEST_NODE_NAME"),
		NodeIPs: []netip.Addr{nodeIP}, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
		ConntrackCleanup: mode == "nftables",
		// kube-proxy's default addresses, where the PX-H-02 cases look.
		HealthzBindAddress: fmt.Sprintf("0.0.0.0:%d", proxyHealthzPort),
		MetricsBindAddress: fmt.Sprintf("127.0.0.1:%d", proxyMetricsPort),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := p.Start(ctx); err != nil {
		return err
	}
	fmt.Println("proxytest proxy: started", mode)
	<-p.Ready()
	fmt.Println("proxytest proxy: first sync done")
	<-ctx.Done()
	p.Close()
	return dp.Close()
}
