// Command kubesvcproxy runs kubesvc's service proxy (internal/proxy with the nftables
// dataplane) alone, as a process of its own against any API server — what `kubesvc agent`
// runs for its services, without the pod runtime and DNS. bench/proxy starts it when the
// agent binary has no services-only mode (-kubesvc-runner=standalone), so that the proxy's CPU
// and memory are measured apart from everything else. Its flags have kube-proxy's names.
//
// It is benchmark support, never part of the product binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kubesvc/internal/proxy"
	"kubesvc/internal/proxy/nftables"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	nodeName := flag.String("hostname-override", "", "node name")
	nodeIP := flag.String("node-ip", "", "node InternalIP (NodePorts, health checks)")
	clusterCIDR := flag.String("cluster-cidr", "", "pod network (local-traffic detection)")
	metrics := flag.String("metrics-bind-address", "", "host:port of /metrics")
	healthz := flag.String("healthz-bind-address", "", "host:port of /healthz")
	minSync := flag.Duration("min-sync-period", 0, "minimum time between syncs (0: adaptive, the default; 1ns: none)")
	flag.Parse()
	if err := run(*kubeconfig, *nodeName, *nodeIP, *clusterCIDR, *metrics, *healthz, *minSync); err != nil {
		fmt.Fprintln(os.Stderr, "kubesvcproxy:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, nodeName, nodeIP, clusterCIDR, metrics, healthz string, minSync time.Duration) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	cfg := proxy.Config{Client: cs, NodeName: nodeName, MetricsBindAddress: metrics, HealthzBindAddress: healthz,
		ConntrackCleanup: true, MinSyncPeriod: minSync}
	if nodeIP != "" {
		a, err := netip.ParseAddr(nodeIP)
		if err != nil {
			return fmt.Errorf("--node-ip: %w", err)
		}
		cfg.NodeIPs = []netip.Addr{a}
	}
	if clusterCIDR != "" {
		p, err := netip.ParsePrefix(clusterCIDR)
		if err != nil {
			return fmt.Errorf("--cluster-cidr: %w", err)
		}
		cfg.ClusterCIDRs = []netip.Prefix{p}
	}
	if cfg.Dataplane, err = nftables.New(nftables.Config{IPv4: true}); err != nil {
		return err
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	p.Close()
	return nil
}
