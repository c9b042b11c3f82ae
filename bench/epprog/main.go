// Command epprog measures network-programming input latency: the time from a pod's Ready
// change (the status write) to the EndpointSlice that carries it, as seen by a watcher of
// slices. It runs kubesvc (in process, its endpoint controllers only) and kube-apiserver +
// kube-controller-manager v1.37.2 (endpoints, endpointslice, endpointslice-mirroring,
// serviceaccount and garbage-collector controllers) one after the other, each on a fresh peer
// etcd, with the same load: Services × pods-per-service Ready pods (10k
// endpoints over 1k Services by default), then Ready flips of random pods at a fixed rate.
// Latency is measured from just before the status PATCH is sent to the watch event of the
// slice whose endpoint shows the new readiness.
//
// It is a benchmark, not a test, and never runs in CI. Everything binds 127.0.0.1;
// bench/run-epprog.sh runs it inside a private network namespace. It imports
// kubesvc/internal/peertest to run etcd and the kube peers, never k8s.io/kubernetes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// params is the load, the same for every target.
type params struct {
	Services       int           `json:"services"`
	PodsPerService int           `json:"podsPerService"`
	Namespaces     int           `json:"namespaces"`
	Nodes          int           `json:"nodes"`
	Rate           float64       `json:"changesPerSecond"`
	Duration       time.Duration `json:"duration"`
	Drain          time.Duration `json:"drain"`
	Parallel       int           `json:"parallel"`
}

func main() {
	var p params
	flag.IntVar(&p.Services, "services", 1000, "Services")
	flag.IntVar(&p.PodsPerService, "pods-per-service", 10, "Ready pods (endpoints) per Service")
	flag.IntVar(&p.Namespaces, "namespaces", 10, "namespaces the Services are spread over")
	flag.IntVar(&p.Nodes, "nodes", 10, "Nodes the pods are spread over (each in one of 3 zones)")
	flag.Float64Var(&p.Rate, "rate", 50, "pod Ready changes per second during the measurement")
	flag.DurationVar(&p.Duration, "duration", time.Minute, "measurement length")
	flag.DurationVar(&p.Drain, "drain", 30*time.Second, "how long to wait for the last changes to show")
	flag.IntVar(&p.Parallel, "parallel", 16, "concurrent writers while creating the objects")
	targets := flag.String("targets", targetKube+","+targetKubeFast+","+targetKubesvc, "comma-separated targets, run in this order")
	workDir := flag.String("workdir", "", "directory for etcd data and logs (default: a new temp dir)")
	jsonOut := flag.String("json", "", "also write the results to this file")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process (which hosts kubesvc) during kubesvc's measurement")
	flag.Parse()
	klog.SetOutput(os.Stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := run(ctx, p, strings.Split(*targets, ","), *workDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/epprog:", err)
		os.Exit(1)
	}
	printTable(os.Stdout, p, results)
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(struct {
			Params  params    `json:"params"`
			Results []*result `json:"results"`
		}{p, results}, "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench/epprog:", err)
			os.Exit(1)
		}
	}
}

// runTarget measures one target on a fresh etcd of its own (so no target inherits another's
// data or compaction debt).
func runTarget(ctx context.Context, p params, name, dir string) (*result, error) {
	etcd, err := startEtcd(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = etcd.Stop() }()
	tg, err := startTarget(ctx, name, etcd.ClientURL, "/registry", dir)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	defer tg.stop()
	return measure(ctx, tg, p)
}

func run(ctx context.Context, p params, targets []string, workDir string) ([]*result, error) {
	if workDir == "" {
		d, err := os.MkdirTemp("", "epprog-")
		if err != nil {
			return nil, err
		}
		workDir = d
	}
	var out []*result
	for _, name := range targets {
		fmt.Fprintf(os.Stderr, "== %s\n", name)
		res, err := runTarget(ctx, p, name, fmt.Sprintf("%s/%s", workDir, name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, res)
	}
	return out, nil
}
