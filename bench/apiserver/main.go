// Command apiserver benchmarks kubesvc's API server against kube-apiserver v1.37.2 on one
// shared etcd: create, list, watch fan-out and delete of Services, plus each server's memory
// and CPU. It is a benchmark, not a test, and never runs in CI.
//
// Each round starts one fresh server per target on its own --etcd-prefix of the same etcd
// process, runs every phase against it with client-go (protobuf, no client-side throttling),
// reads its /proc counters and stops it; the order of the targets alternates between rounds.
// Everything binds 127.0.0.1; bench/run-apiserver.sh runs it inside a private network
// namespace. It imports kubesvc/internal/peertest to run etcd and kube-apiserver, and never
// k8s.io/kubernetes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"kubesvc/internal/peertest"
)

func main() {
	var (
		p         params
		rounds    = flag.Int("rounds", 5, "rounds; each runs every target once, the order alternating")
		targets   = flag.String("targets", targetKubesvc+","+targetKube, "comma-separated targets")
		kubesvc   = flag.String("kubesvc", "bin/kubesvc", "kubesvc binary")
		workDir   = flag.String("workdir", "", "directory for etcd data and server logs (default: a new temp dir)")
		jsonOut   = flag.String("json", "", "also write every round's results to this file")
		cidr      = flag.String("service-cidr", "10.96.0.0/12", "service ClusterIP range of both servers")
		noFsync   = flag.Bool("etcd-unsafe-no-fsync", false, "run etcd with --unsafe-no-fsync (isolates API-server cost from disk latency)")
		keepGoing = flag.Bool("keep-going", false, "record a failed round and continue instead of stopping")
	)
	flag.IntVar(&p.services, "services", 10000, "Services to create and delete")
	flag.IntVar(&p.namespaces, "namespaces", 4, "namespaces the Services are spread over")
	flag.IntVar(&p.concurrency, "concurrency", 32, "concurrent creates, patches and deletes")
	flag.IntVar(&p.watchers, "watchers", 100, "concurrent watchers of the first namespace")
	flag.IntVar(&p.updates, "updates", 1000, "label patches the watchers must all see")
	flag.IntVar(&p.listReps, "list-reps", 3, "repetitions of each list per round (median taken)")
	flag.BoolVar(&p.headless, "headless", false, "create headless Services (clusterIP: None) instead of allocating ClusterIPs")
	var kubeArgs, kubesvcArgs listFlag
	flag.Var(&kubeArgs, "kube-arg", "extra kube-apiserver flag, e.g. --profiling=true (repeatable)")
	flag.Var(&kubesvcArgs, "kubesvc-arg", "extra `kubesvc server` flag (repeatable)")
	flag.Parse()
	klog.SetOutput(os.Stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, p, runConfig{
		rounds: *rounds, targets: strings.Split(*targets, ","), kubesvcBin: *kubesvc,
		workDir: *workDir, jsonOut: *jsonOut, serviceCIDR: *cidr, noFsync: *noFsync, keepGoing: *keepGoing,
		kubeArgs: kubeArgs, kubesvcArgs: kubesvcArgs,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "bench/apiserver:", err)
		os.Exit(1)
	}
}

type runConfig struct {
	rounds      int
	targets     []string
	kubesvcBin  string
	workDir     string
	jsonOut     string
	serviceCIDR string
	noFsync     bool
	keepGoing   bool
	kubeArgs    []string
	kubesvcArgs []string
}

func run(ctx context.Context, p params, rc runConfig) error {
	bin, err := filepath.Abs(rc.kubesvcBin)
	if err != nil {
		return err
	}
	rc.kubesvcBin = bin
	if rc.workDir == "" {
		if rc.workDir, err = os.MkdirTemp("", "bench-apiserver-"); err != nil {
			return err
		}
	}
	etcd, err := peertest.RunEtcd(ctx, peertest.EtcdConfig{
		Dir:           filepath.Join(rc.workDir, "etcd"),
		UnsafeNoFsync: rc.noFsync,
		// 10k Services per target and round, kept until kube-apiserver's 5-minute compaction.
		ExtraArgs: []string{"--quota-backend-bytes=8589934592"},
	})
	if err != nil {
		return err
	}
	defer etcd.Stop()
	fmt.Printf("etcd %s (fsync %v), work dir %s, %d×%d Services, %d watchers × %d updates, concurrency %d, headless %v\n",
		etcd.ClientURL, !rc.noFsync, rc.workDir, p.namespaces, p.services/p.namespaces, p.watchers, p.updates, p.concurrency, p.headless)

	var all []result
	for round := 1; round <= rc.rounds; round++ {
		order := append([]string(nil), rc.targets...)
		if round%2 == 0 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, name := range order {
			res, err := runOne(ctx, p, rc, etcd, round, name)
			if err != nil {
				err = fmt.Errorf("round %d %s: %w", round, name, err)
				if !rc.keepGoing || ctx.Err() != nil {
					return err
				}
				fmt.Fprintln(os.Stderr, "FAILED:", err)
				continue
			}
			fmt.Println(res.line())
			all = append(all, res)
			if rc.jsonOut != "" {
				if err := writeJSON(rc.jsonOut, all); err != nil {
					return err
				}
			}
		}
	}
	fmt.Println()
	printTable(os.Stdout, all, rc.targets)
	return nil
}

// runOne starts a fresh server of target name and runs every phase against it.
func runOne(ctx context.Context, p params, rc runConfig, etcd *peertest.Etcd, round int, name string) (result, error) {
	res := result{Round: round, Target: name}
	prefix := fmt.Sprintf("/%s-r%d", strings.ReplaceAll(name, "-", ""), round)
	etcdCPU0, _ := procCPU(etcd.Pid())
	srv, err := startServer(ctx, name, startConfig{
		etcdURL: etcd.ClientURL, prefix: prefix, serviceCIDR: rc.serviceCIDR,
		dir: filepath.Join(rc.workDir, fmt.Sprintf("r%d-%s", round, name)), kubesvcBin: rc.kubesvcBin,
		kubeArgs: rc.kubeArgs, kubesvcArgs: rc.kubesvcArgs,
	})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	res.StartupS = srv.startup.Seconds()
	// Let start-up work (bootstrap objects, post-start hooks, controllers' initial lists)
	// finish: wait until the server used under 5% of a core for a second.
	if _, err := settle(ctx, srv.pid, 60*time.Second); err != nil {
		return res, err
	}
	cs, err := newClient(srv.config, false)
	if err != nil {
		return res, err
	}
	cpu0, err := procCPU(srv.pid)
	if err != nil {
		return res, err
	}
	etcdCPU1, _ := procCPU(etcd.Pid())
	if err := makeNamespaces(ctx, cs, p); err != nil {
		return res, err
	}

	c := createServices(ctx, cs, p)
	if c.failed > 0 {
		return res, fmt.Errorf("%d of %d creates failed, first: %w", c.failed, p.services, c.firstErr)
	}
	res.setCreate(p, c)
	if !p.headless && c.ips != p.services {
		return res, fmt.Errorf("only %d of %d Services got a ClusterIP", c.ips, p.services)
	}
	if c.dupIPs > 0 {
		return res, fmt.Errorf("%d duplicate ClusterIPs", c.dupIPs)
	}

	// Work the creates set off in the server (kubesvc's in-process endpoint controllers,
	// kube-apiserver's IP repair) finishes before the next phase; its CPU still counts.
	settled, err := settle(ctx, srv.pid, 2*time.Minute)
	if err != nil {
		return res, err
	}
	res.SettleCreateS = settled.Seconds()

	l, err := listServices(ctx, cs, p)
	if err != nil {
		return res, err
	}
	if l.items < p.services {
		return res, fmt.Errorf("list returned %d Services, want at least %d", l.items, p.services)
	}
	res.ListFullMs, res.ListPagedMs, res.ListTableMs = ms(l.full), ms(l.paged), ms(l.table)

	w, err := watchServices(ctx, srv.config, cs, p)
	if err != nil {
		return res, err
	}
	res.WatchTotalS = w.total.Seconds()
	res.WatchP50Ms, res.WatchP99Ms = ms(percentile(w.delivery, 50)), ms(percentile(w.delivery, 99))
	res.WatchRestarts = w.restarts
	res.PatchP50Ms, res.PatchP99Ms = ms(percentile(w.patchLat, 50)), ms(percentile(w.patchLat, 99))
	rss, _, err := procMem(srv.pid)
	if err != nil {
		return res, err
	}
	res.RSSLoadedMiB = mib(rss)

	d := deleteServices(ctx, cs, p)
	if d.failed > 0 {
		return res, fmt.Errorf("%d of %d deletes failed, first: %w", d.failed, p.services, d.firstErr)
	}
	res.DeleteTotalS = d.total.Seconds()
	res.DeleteP50Ms, res.DeleteP99Ms = ms(percentile(d.lat, 50)), ms(percentile(d.lat, 99))

	if settled, err = settle(ctx, srv.pid, 2*time.Minute); err != nil {
		return res, err
	}
	res.SettleDeleteS = settled.Seconds()

	cpu1, err := procCPU(srv.pid)
	if err != nil {
		return res, err
	}
	etcdCPU2, _ := procCPU(etcd.Pid())
	rss, hwm, err := procMem(srv.pid)
	if err != nil {
		return res, err
	}
	res.RSSEndMiB, res.HWMMiB = mib(rss), mib(hwm)
	res.CPUS = (cpu1 - cpu0).Seconds()
	res.EtcdCPUS = (etcdCPU2 - etcdCPU1).Seconds()
	res.EtcdStartupCPUS = (etcdCPU1 - etcdCPU0).Seconds()
	return res, nil
}

func writeJSON(path string, all []result) error {
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// settle waits until pid used less than 50ms of CPU in one second, or timeout passed, and
// returns how long it waited (the second of idleness included).
func settle(ctx context.Context, pid int, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	prev, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	for time.Since(t0) < timeout {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
		cur, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		if cur-prev < 50*time.Millisecond {
			break
		}
		prev = cur
	}
	return time.Since(t0), nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
