// Command proxy benchmarks kubesvc's service proxy (nftables mode) against kube-proxy v1.37.2
// (--proxy-mode=nftables) side by side: same API server, same world, same run, one proxy
// after the other with the node's nft ruleset flushed in between (docs/benchmarks.md,
// "Service proxy: nftables mode vs kube-proxy").
//
// The world: this process's network namespace is the node (bench/run-proxy.sh makes it with
// unshare; the program refuses to run in a namespace with a default route). It holds the API
// server (kubesvc's, in process, or kube-apiserver v1.37.2 with -apiserver=kube-apiserver), a
// bridge kubesvc0 with one network namespace per pod (a TCP listener on 8080 each), and a
// "sink" namespace that owns the Service CIDR, so connects to ClusterIPs no proxy has
// programmed are refused at once. The proxy under test runs as a process in the node
// namespace, reading the API server through an admin kubeconfig.
//
// Load: selectorless ClusterIP Services with one hand-made EndpointSlice of 10 endpoints each,
// grown through the levels (10, 1k, 10k). The last Service of each level points at the real
// pods; the others at addresses nothing answers. At each level, for each round and proxy:
//
//   - full sync (b): proxy process start → first successful connect to the last-created
//     Service (attempts every -poll), and the proxy's own sync metric of its first sync;
//   - connect latency (c): -latency connect(2) round trips through that Service's ClusterIP
//     and as many directly to the pod IPs, interleaved;
//   - +1 Service (a): -plus1 times, create a Service and its slice (pointing at the pods),
//     poll a connect to its ClusterIP every -poll until it succeeds; read sync_proxy_rules_
//     and network_programming_duration_seconds from the proxy's metrics; delete it again and
//     wait until it is gone;
//   - CPU (utime+stime) and RSS of the proxy process.
//
// It is a benchmark, not a test, and never runs in CI. It imports kubesvc/internal/peertest
// to run the kube peers, never k8s.io/kubernetes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"kubesvc/internal/peertest"
	"kubesvc/internal/runtime/netns"
)

// strings is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var p params
	var levels, proxies string
	var cfg proxyConfig
	var kubeArgs, kubesvcArgs stringList
	kubeProxyDefault, _ := peertest.Path(peertest.KubeProxyBinary)
	flag.StringVar(&levels, "levels", "10,1000,10000", "comma-separated Service counts, measured in this order (Services are only added)")
	flag.IntVar(&p.Rounds, "rounds", 3, "rounds per level; each round runs every proxy once")
	flag.StringVar(&proxies, "proxies", proxyKube+","+proxyKubesvc, "comma-separated proxies (the order alternates between rounds; ratios are second/first)")
	flag.IntVar(&p.Plus1, "plus1", 10, "+1 Service samples per proxy and round")
	flag.DurationVar(&p.Plus1Gap, "plus1-gap", 1500*time.Millisecond, "pause before each +1 sample (more than kube-proxy's --min-sync-period of 1s after the last sync)")
	flag.IntVar(&p.Latency, "latency", 1000, "connect round trips per path (ClusterIP, direct) per proxy and round")
	flag.DurationVar(&p.Poll, "poll", time.Millisecond, "interval of connect attempts while waiting for a ClusterIP to work")
	flag.DurationVar(&p.SyncTimeout, "sync-timeout", 5*time.Minute, "limit for a proxy's first full sync")
	flag.IntVar(&p.Parallel, "parallel", 32, "concurrent writers while creating the Services")
	flag.IntVar(&p.Pods, "pods", endpointsPerService, "pod namespaces with a listener")
	flag.StringVar(&p.APIServer, "apiserver", apiKubesvc, "API server: kubesvc (in process) or kube-apiserver (peer, on a peer etcd)")
	flag.BoolVar(&p.Ruleset, "ruleset-size", true, "count the lines of `nft list ruleset` in round 0 (after the measurements)")
	flag.StringVar(&cfg.kubeProxyBin, "kube-proxy", kubeProxyDefault, "kube-proxy v1.37.2 binary (hack/peers/build.sh kube-proxy)")
	flag.StringVar(&cfg.kubesvcBin, "kubesvc", "bin/kubesvc", "kubesvc binary (its agent is the proxy under test)")
	flag.Var(&kubeArgs, "kube-arg", "extra kube-proxy flag (repeatable)")
	flag.Var(&kubesvcArgs, "kubesvc-arg", "extra `kubesvc agent` flag (repeatable)")
	flag.StringVar(&cfg.minSyncPeriod, "min-sync-period", "", "minimum time between syncs for both proxies (default: theirs: kube-proxy 1s, kubesvc adaptive); 0 = none")
	flag.StringVar(&cfg.kubesvcRunner, "kubesvc-runner", runnerAgent, "how kubesvc's proxy runs: agent (`kubesvc agent --proxy-mode=nftables --kubeconfig`, services only) or standalone (internal/proxy + nftables in bench/proxy/kubesvcproxy)")
	flag.StringVar(&cfg.kubesvcProxyBin, "kubesvcproxy", "", "bench/proxy/kubesvcproxy binary (-kubesvc-runner=standalone)")
	workDir := flag.String("workdir", "", "directory for logs and API server data (default: a new temp dir)")
	jsonOut := flag.String("json", "", "also write the results to this file")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	for _, s := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("-levels: bad count %q", s))
		}
		p.Levels = append(p.Levels, n)
	}
	p.Proxies = strings.Split(proxies, ",")
	cfg.kubeArgs, cfg.kubesvcArgs = kubeArgs, kubesvcArgs
	p.MinSync, p.Runner = cfg.minSyncPeriod, cfg.kubesvcRunner
	if *workDir == "" {
		d, err := os.MkdirTemp("", "bench-proxy-")
		if err != nil {
			fatal(err)
		}
		*workDir = d
	}
	cfg.dir = filepath.Join(*workDir, "logs")
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := run(ctx, p, cfg, *workDir)
	if len(results) > 0 {
		printTables(os.Stdout, p, results)
	}
	if *jsonOut != "" && len(results) > 0 {
		data, _ := json.MarshalIndent(struct {
			Params  params    `json:"params"`
			Results []*result `json:"results"`
		}{p, results}, "", "  ")
		if werr := os.WriteFile(*jsonOut, data, 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "bench/proxy:", werr)
		}
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/proxy:", err)
	os.Exit(1)
}

func run(ctx context.Context, p params, cfg proxyConfig, workDir string) ([]*result, error) {
	for _, px := range p.Proxies {
		if px != proxyKube && px != proxyKubesvc {
			return nil, fmt.Errorf("unknown proxy %q", px)
		}
	}
	if err := requireIsolated(); err != nil {
		return nil, err
	}
	if err := netns.LoopbackUp("/proc/self/ns/net"); err != nil {
		return nil, err
	}
	api, err := startAPIServer(ctx, p.APIServer, filepath.Join(workDir, "apiserver"))
	if err != nil {
		return nil, err
	}
	defer api.stop()
	cfg.kubeconfig = api.kubeconfig
	cfg.serviceCIDR = api.cidr.String()
	w, err := newWorld(filepath.Join(workDir, "netns"), p.Pods, api.cidr)
	if err != nil {
		return nil, fmt.Errorf("world: %w", err)
	}
	defer w.close()
	defer func() { _ = flushRuleset() }()
	cs, err := kubernetes.NewForConfig(api.config)
	if err != nil {
		return nil, err
	}
	if err := createNode(ctx, cs); err != nil {
		return nil, err
	}
	l := newLoad(cs, w, p.Levels)
	if err := l.createNamespaces(ctx); err != nil {
		return nil, err
	}
	var results []*result
	run := 0
	for _, n := range p.Levels {
		took, err := l.growTo(ctx, n, p.Parallel)
		if err != nil {
			return results, err
		}
		fmt.Fprintf(os.Stderr, "== %d Services × %d endpoints (created in %.1fs); load %s\n", n, endpointsPerService, took.Seconds(), loadavg())
		for round := 0; round < p.Rounds; round++ {
			order := append([]string(nil), p.Proxies...)
			if round%2 == 1 {
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, px := range order {
				run++
				r, err := measureProxy(ctx, p, l, cfg, px, round, run)
				if err != nil {
					return results, fmt.Errorf("%d Services, round %d: %w", n, round, err)
				}
				r.Load = loadavg()
				results = append(results, r)
				fmt.Fprintf(os.Stderr, "%s load %s\n", r.line(), r.Load)
			}
		}
	}
	return results, nil
}

// loadavg is the 1-, 5- and 15-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
