// Command dns benchmarks kubesvc's cluster DNS (internal/dns) against CoreDNS v1.15.0 with
// its kubernetes plugin, side by side on one cluster state, with dnsperf: queries per second
// at ≤ 1 % loss and the 99th-percentile latency, for cluster names and for cached external
// names. It is a benchmark, not a test, and never runs in CI.
//
// One in-process kubesvc API server holds the state (-services ClusterIP Services and
// -headless headless Services with 3 ready endpoints each); both DNS servers read it through
// client-go and forward other names to an upstream on 127.0.0.1. CoreDNS runs kubeadm's
// Corefile (kubernetes with `pods insecure` and `ttl 30`, prometheus, forward, `cache 30`,
// loadbalance); ours (this binary with -serve) runs with its metrics on. Each DNS server is a
// process of its own pinned to -server-cpu (one core), dnsperf runs on -dnsperf-cpu with the
// API server; bench/run-dns.sh runs it all inside a private network namespace.
//
// For each round, target and query mix: a warm-up, then dnsperf at full speed; if more than
// 1 % of queries are lost, the rate is bisected with -Q until loss is ≤ 1 %. The latency
// percentiles come from dnsperf -v at the rate found. The order of targets alternates
// between rounds and medians are printed.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"kubesvc/internal/dns"
	"kubesvc/internal/peertest"
	"kubesvc/internal/server"
)

type params struct {
	services, headless int
	duration           time.Duration
	rounds             int
	clients            int
	dnsperfCPU         string
	serverCPU          string
}

func main() {
	var p params
	flag.IntVar(&p.services, "services", 1000, "ClusterIP Services")
	flag.IntVar(&p.headless, "headless", 100, "headless Services (3 ready endpoints each)")
	flag.DurationVar(&p.duration, "duration", 10*time.Second, "length of each dnsperf run")
	flag.IntVar(&p.rounds, "rounds", 3, "rounds (medians are printed)")
	flag.IntVar(&p.clients, "clients", 20, "dnsperf -c")
	flag.StringVar(&p.dnsperfCPU, "dnsperf-cpu", "1", "CPU list dnsperf runs on (taskset -c); empty: no pinning")
	flag.StringVar(&p.serverCPU, "server-cpu", "0", "CPU list both DNS servers run on (taskset -c); empty: no pinning")
	serve := flag.Bool("serve", false, "internal: run kubesvc's DNS server in this process (-kubeconfig, -upstream, -listen)")
	kubeconfig := flag.String("kubeconfig", "", "internal: kubeconfig for -serve")
	upstream := flag.String("upstream", "", "internal: upstream for -serve")
	listen := flag.String("listen", "", "internal: listen address for -serve")
	flag.Parse()
	if *serve {
		if err := serveDNS(*kubeconfig, *upstream, *listen); err != nil {
			fmt.Fprintln(os.Stderr, "bench-dns -serve:", err)
			os.Exit(1)
		}
		return
	}
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	if err := run(context.Background(), p); err != nil {
		fmt.Fprintln(os.Stderr, "bench-dns:", err)
		os.Exit(1)
	}
}

type result struct {
	qps, lossPct, p50, p99 float64 // latencies in ms
}

func run(ctx context.Context, p params) error {
	dir, err := os.MkdirTemp("", "bench-dns")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := server.NewConfig()
	cfg.DataDir, cfg.BindAddress, cfg.HTTPSPort = filepath.Join(dir, "server"), "127.0.0.1", 0
	cfg.EtcdClientPort, cfg.EtcdPeerPort, cfg.DisableAgent, cfg.Out = 0, 0, true, io.Discard
	api, err := server.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start API server: %w", err)
	}
	defer api.Close()
	cs, err := kubernetes.NewForConfig(api.RESTConfig)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "== creating %d Services and %d headless Services\n", p.services, p.headless)
	if err := createState(ctx, cs, p); err != nil {
		return err
	}
	upstream, stopUp, err := startUpstream()
	if err != nil {
		return err
	}
	defer stopUp()

	oursAddr, stopOurs, err := startOurs(dir, api.Kubeconfig, upstream, p.serverCPU)
	if err != nil {
		return err
	}
	defer stopOurs()
	coreAddr, stopCore, err := startCoreDNS(dir, api.Kubeconfig, upstream, p.serverCPU)
	if err != nil {
		return err
	}
	defer stopCore()

	files := map[string]string{}
	if files["cluster"], err = writeQueries(dir, "cluster", p, clusterQueries); err != nil {
		return err
	}
	if files["external"], err = writeQueries(dir, "external", p, externalQueries); err != nil {
		return err
	}
	targets := []struct{ name, addr string }{{"kubesvc", oursAddr}, {"coredns", coreAddr}}
	results := map[string][]result{} // target/mix → rounds
	for round := range p.rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, mix := range []string{"cluster", "external"} {
			for _, i := range order {
				t := targets[i]
				r, err := measure(t.addr, files[mix], p)
				if err != nil {
					return fmt.Errorf("%s %s: %w", t.name, mix, err)
				}
				fmt.Fprintf(os.Stderr, "round %d %-8s %-7s %8.0f QPS  loss %.2f%%  p50 %.3f ms  p99 %.3f ms\n",
					round+1, mix, t.name, r.qps, r.lossPct, r.p50, r.p99)
				results[t.name+"/"+mix] = append(results[t.name+"/"+mix], r)
			}
		}
	}
	fmt.Printf("| query mix | kubesvc QPS | CoreDNS QPS | ratio | kubesvc p50 / p99 (ms) | CoreDNS p50 / p99 (ms) |\n|---|---|---|---|---|---|\n")
	for _, mix := range []string{"cluster", "external"} {
		a, b := median(results["kubesvc/"+mix]), median(results["coredns/"+mix])
		fmt.Printf("| %s | %.0f | %.0f | %.2f× | %.3f / %.3f | %.3f / %.3f |\n", mix, a.qps, b.qps, a.qps/b.qps, a.p50, a.p99, b.p50, b.p99)
	}
	return nil
}

func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return result{qps: pick(func(r result) float64 { return r.qps }), lossPct: pick(func(r result) float64 { return r.lossPct }),
		p50: pick(func(r result) float64 { return r.p50 }), p99: pick(func(r result) float64 { return r.p99 })}
}

// measure finds the QPS at ≤ 1 % loss and the latency percentiles at that rate.
func measure(addr, file string, p params) (result, error) {
	if _, err := dnsperf(addr, file, p, time.Second, 0, false); err != nil { // warm-up (fills caches)
		return result{}, err
	}
	r, err := dnsperf(addr, file, p, p.duration, 0, true)
	if err != nil {
		return result{}, err
	}
	if r.lossPct <= 1 {
		return r, nil
	}
	lo, hi := 0.0, r.qps
	best := result{}
	for range 5 {
		mid := (lo + hi) / 2
		if lo == 0 {
			mid = hi * 0.8
		}
		r, err := dnsperf(addr, file, p, p.duration, mid, true)
		if err != nil {
			return result{}, err
		}
		if r.lossPct <= 1 {
			lo, best = mid, r
		} else {
			hi = mid
		}
	}
	return best, nil
}

var (
	reQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reLost = regexp.MustCompile(`Queries lost:\s+\d+ \(([0-9.]+)%\)`)
	// A verbose response line: "> NOERROR name A 0.000254".
	reVerbose = regexp.MustCompile(`^> \S+ .* ([0-9]+\.[0-9]+)$`)
)

// dnsperf runs one dnsperf; qps 0 means no rate limit; verbose collects latencies.
func dnsperf(addr, file string, p params, d time.Duration, qps float64, verbose bool) (result, error) {
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-s", host, "-p", port, "-d", file, "-l", strconv.Itoa(int(d.Seconds())), "-c", strconv.Itoa(p.clients),
		"-T", "1", "-q", "500", "-t", "1"}
	if qps > 0 {
		args = append(args, "-Q", strconv.Itoa(int(qps)))
	}
	if verbose {
		args = append(args, "-v")
	}
	name := "dnsperf"
	if p.dnsperfCPU != "" {
		args = append([]string{"-c", p.dnsperfCPU, "dnsperf"}, args...)
		name = "taskset"
	}
	cmd := exec.Command(name, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var lat []float64
	var text strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if m := reVerbose.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			lat = append(lat, v*1000)
			continue
		}
		text.WriteString(line + "\n")
	}
	if err := cmd.Wait(); err != nil {
		return result{}, fmt.Errorf("dnsperf: %w\n%s", err, text.String())
	}
	var r result
	if m := reQPS.FindStringSubmatch(text.String()); m != nil {
		r.qps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reLost.FindStringSubmatch(text.String()); m != nil {
		r.lossPct, _ = strconv.ParseFloat(m[1], 64)
	}
	fmt.Fprintf(os.Stderr, "   dnsperf %s -Q %.0f: %.0f QPS, loss %.2f%%\n", filepath.Base(file), qps, r.qps, r.lossPct)
	if len(lat) > 0 {
		sort.Float64s(lat)
		r.p50 = lat[int(math.Floor(0.50*float64(len(lat)-1)))]
		r.p99 = lat[int(math.Floor(0.99*float64(len(lat)-1)))]
	}
	return r, nil
}

func clusterQueries(p params, w io.Writer) {
	for i := range p.services {
		fmt.Fprintf(w, "svc-%d.bench.svc.cluster.local A\n", i)
		if i%10 == 0 {
			fmt.Fprintf(w, "_http._tcp.svc-%d.bench.svc.cluster.local SRV\n", i)
		}
	}
	for i := range p.headless {
		fmt.Fprintf(w, "hl-%d.bench.svc.cluster.local A\n", i)
		fmt.Fprintf(w, "pod-1.hl-%d.bench.svc.cluster.local A\n", i)
	}
}

func externalQueries(_ params, w io.Writer) {
	for i := range 200 {
		fmt.Fprintf(w, "host-%d.example.com A\n", i)
	}
}

func writeQueries(dir, name string, p params, gen func(params, io.Writer)) (string, error) {
	path := filepath.Join(dir, name+".txt")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriter(f)
	gen(p, bw)
	if err := bw.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

func createState(ctx context.Context, cs kubernetes.Interface, p params) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	port := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}
	for i := range p.services {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i)}, Spec: corev1.ServiceSpec{Ports: port}}
		if _, err := cs.CoreV1().Services("bench").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	name, proto, pn := "http", corev1.ProtocolTCP, int32(8080)
	for i := range p.headless {
		n := fmt.Sprintf("hl-%d", i)
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: n}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: port}}
		if _, err := cs.CoreV1().Services("bench").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return err
		}
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: n + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: n}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &pn}}}
		for j := range 3 {
			h := fmt.Sprintf("pod-%d", j)
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 200+j, i/250, i%250+1)}, Hostname: &h})
		}
		if _, err := cs.DiscoveryV1().EndpointSlices("bench").Create(ctx, es, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// startUpstream answers every A question with one record (TTL 3600).
func startUpstream() (string, func(), error) {
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == mdns.TypeA {
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 3600},
				A: net.ParseIP("93.184.216.34")}}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &mdns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	return pc.LocalAddr().String(), func() { _ = srv.Shutdown() }, nil
}

const corefile = `.:%d {
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus 127.0.0.1:%d
    forward . %s
    cache 30
    loadbalance
}
`

func freePort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// serveDNS runs kubesvc's DNS server until killed: a process of its own, like CoreDNS.
func serveDNS(kubeconfig, upstream, listen string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	s, err := dns.New(dns.Config{Listen: []string{listen}, Upstreams: []string{upstream}, Client: cs, Metrics: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	if err := s.Start(context.Background()); err != nil {
		return err
	}
	select {}
}

// startOurs runs this binary with -serve on cpu.
func startOurs(dir, kubeconfig, upstream, cpu string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return startProcess(dir, "kubesvc-dns", cpu, addr, self, "-serve", "-kubeconfig", kubeconfig, "-upstream", upstream, "-listen", addr)
}

func startCoreDNS(dir, kubeconfig, upstream, cpu string) (string, func(), error) {
	bin, ok := peertest.Path(peertest.CoreDNSBinary)
	if !ok {
		return "", nil, fmt.Errorf("coredns not found at %s: run hack/peers/build.sh coredns", bin)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	mport, err := freePort()
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(corefile, port, kubeconfig, mport, upstream)), 0o644); err != nil {
		return "", nil, err
	}
	return startProcess(dir, "coredns", cpu, fmt.Sprintf("127.0.0.1:%d", port), bin, "-conf", conf)
}

// startProcess runs a DNS server process pinned to cpu and waits until addr answers a
// cluster name.
func startProcess(dir, name, cpu, addr, bin string, args ...string) (string, func(), error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return "", nil, err
	}
	if cpu != "" {
		args = append([]string{"-c", cpu, bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait(); logf.Close() }
	deadline := time.Now().Add(time.Minute)
	for {
		req := new(mdns.Msg)
		req.SetQuestion("svc-0.bench.svc.cluster.local.", mdns.TypeA)
		m, _, err := (&mdns.Client{Timeout: time.Second}).Exchange(req, addr)
		if err == nil && len(m.Answer) > 0 {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			return "", nil, fmt.Errorf("%s not ready: %v\n%s", name, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
