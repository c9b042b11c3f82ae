// Command userspace benchmarks kubesvc's userspace service proxy (internal/proxy/userspace)
// against HAProxy 2.6 (Debian package, `mode tcp`, run twice: with `option splice-auto` and
// without) with the same backends: stream throughput, connections per second (connect, 1-byte request and response,
// close) and request-response rate on open connections, plus the proxy's CPU time. It is a
// benchmark, not a test, and never runs in CI; bench/run-userspace.sh runs it inside a
// private network namespace that has only loopback.
//
// Both proxies are processes of their own with one thread of work each (GOMAXPROCS 1 for ours,
// nbthread 1 for HAProxy), unpinned by default (-proxy-cpu pins them, e.g. "0", with the load
// generator elsewhere; on a machine shared with other pinned jobs that measured their
// starvation). This process holds the backends and the load generator. Each proxy serves three service ports, each balanced over three backends on 127.0.0.1:
//
//	:80 → echo backends (request-response), :81 → sink backends (stream),
//	:82 → "answer and close" backends (connections per second: the server closes first, as
//	      HTTP/1.0 does, so TIME_WAIT stays on server ports and the client's ephemeral ports
//	      never run out over long runs).
//
// Ours listens on the ClusterIP 10.96.0.1 (a VIP on its bridge device), HAProxy on
// 127.0.0.2 (splice-auto) and 127.0.0.3 (no splice). "direct" is the load generator talking to one backend without a proxy. Each
// round measures every target once per test, in an order that rotates between rounds;
// medians of the rounds are printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"kubesvc/internal/proxy"
	"kubesvc/internal/proxy/userspace"
)

const (
	vip        = "10.96.0.1"
	haproxyIP  = "127.0.0.2" // HAProxy with option splice-auto; 127.0.0.3 without
	backendIP  = "127.0.0.1"
	echoBase   = 9001 // echo backends 9001–9003
	sinkBase   = 9101 // sink backends 9101–9103
	closeBase  = 9201 // answer-and-close backends 9201–9203
	nBackends  = 3
	vipDevice  = "kubesvc-vipb"
	portEcho   = 80
	portStream = 81
	portCRR    = 82
)

type params struct {
	rounds   int
	duration time.Duration
	streams  int
	clients  int
	proxyCPU string
	haproxy  string
	copyBuf  int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve-proxy" {
		if err := serveProxy(); err != nil {
			fmt.Fprintln(os.Stderr, "serve-proxy:", err)
			os.Exit(1)
		}
		return
	}
	var p params
	flag.IntVar(&p.rounds, "rounds", 3, "rounds (medians are printed)")
	flag.DurationVar(&p.duration, "duration", 5*time.Second, "length of each measurement")
	flag.IntVar(&p.streams, "streams", 4, "parallel connections of the stream test")
	flag.IntVar(&p.clients, "clients", 16, "concurrent clients of the connect and request-response tests")
	flag.StringVar(&p.proxyCPU, "proxy-cpu", "", "CPU list both proxies run on (taskset -c); empty (default): no pinning, which is fairer on a machine shared with pinned jobs")
	flag.StringVar(&p.haproxy, "haproxy", "haproxy", "HAProxy binary")
	flag.IntVar(&p.copyBuf, "copy-buffer", 0, "ours: copy through a buffer of this size instead of splice (userspace.Config.CopyBuffer)")
	flag.Parse()
	if err := run(p); err != nil {
		fmt.Fprintln(os.Stderr, "bench-userspace:", err)
		os.Exit(1)
	}
}

// serveProxy is the child process running our proxy until SIGTERM.
func serveProxy() error {
	copyBuf, _ := strconv.Atoi(os.Getenv("BENCH_COPY_BUFFER"))
	dp, err := userspace.New(userspace.Config{Device: vipDevice, CopyBuffer: copyBuf})
	if err != nil {
		return err
	}
	snap := &proxy.Snapshot{Services: map[proxy.ServicePortName]*proxy.ServiceState{}, NodeName: "bench"}
	for _, s := range []struct {
		name       string
		port, base int
	}{{"echo", portEcho, echoBase}, {"stream", portStream, sinkBase}, {"crr", portCRR, closeBase}} {
		st := &proxy.ServiceState{ServicePort: proxy.ServicePort{
			Name:       proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "bench", Name: s.name}, Protocol: corev1.ProtocolTCP},
			ClusterIPs: []netip.Addr{netip.MustParseAddr(vip)}, Port: int32(s.port), Protocol: corev1.ProtocolTCP,
		}}
		for i := range nBackends {
			st.Endpoints = append(st.Endpoints, proxy.Endpoint{IP: netip.MustParseAddr(backendIP), Port: int32(s.base + i), Ready: true, Serving: true})
		}
		proxy.Categorize(st)
		snap.Services[st.Name] = st
	}
	if err := dp.Sync(context.Background(), snap, nil, true); err != nil {
		_ = dp.Cleanup()
		return err
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return dp.Cleanup()
}

type target struct {
	name            string
	echo, sink, crr string
	pid             int // proxy process, 0 for direct
}

func run(p params) error {
	for i := range nBackends {
		for _, b := range []struct {
			base  int
			serve func(net.Conn)
		}{{echoBase, serveEcho}, {sinkBase, serveSink}, {closeBase, serveAnswerClose}} {
			ln, err := net.Listen("tcp", net.JoinHostPort(backendIP, strconv.Itoa(b.base+i)))
			if err != nil {
				return err
			}
			go acceptLoop(ln, b.serve)
		}
	}
	dir, err := os.MkdirTemp("", "bench-userspace")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// GOMAXPROCS 1: one thread runs Go code, as HAProxy runs one thread (nbthread 1).
	ours, err := start(p.proxyCPU, "ours", []string{"GOMAXPROCS=1", "BENCH_COPY_BUFFER=" + strconv.Itoa(p.copyBuf)}, os.Args[0], "serve-proxy")
	if err != nil {
		return err
	}
	defer stop(ours)
	addr := func(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	targets := []target{
		{name: "direct", echo: addr(backendIP, echoBase), sink: addr(backendIP, sinkBase), crr: addr(backendIP, closeBase)},
		{name: "kubesvc", echo: addr(vip, portEcho), sink: addr(vip, portStream), crr: addr(vip, portCRR), pid: ours.Process.Pid},
	}
	// HAProxy twice: with splice-auto (what its docs recommend for TCP) and without (better for
	// small messages on loopback); ours is compared with the better of the two per test.
	for _, v := range []struct {
		name, ip string
		splice   bool
	}{{"HAProxy splice-auto", haproxyIP, true}, {"HAProxy no splice", "127.0.0.3", false}} {
		cfg := filepath.Join(dir, strings.ReplaceAll(v.name, " ", "-")+".cfg")
		if err := os.WriteFile(cfg, []byte(haproxyConfig(v.ip, v.splice)), 0o644); err != nil {
			return err
		}
		ha, err := start(p.proxyCPU, "haproxy", nil, p.haproxy, "-db", "-f", cfg)
		if err != nil {
			return err
		}
		defer stop(ha)
		targets = append(targets, target{name: v.name, echo: addr(v.ip, portEcho), sink: addr(v.ip, portStream), crr: addr(v.ip, portCRR), pid: ha.Process.Pid})
	}
	for _, t := range targets {
		if err := waitReady(t.crr); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	tests := []struct {
		name, unit string
		fn         func(p params, t target) (float64, error)
	}{
		{"stream", "MB/s", stream},
		{"connect+1B RR+close", "conns/s", crr},
		{"1B request-response", "req/s", rr},
	}
	results := map[string]map[string][]float64{} // test → target → values
	cpu := map[string]map[string][]float64{}     // test → target → proxy CPU seconds per measured second
	for _, tc := range tests {
		results[tc.name], cpu[tc.name] = map[string][]float64{}, map[string][]float64{}
	}
	for r := range p.rounds {
		order := slices.Clone(targets)
		for range r % len(order) {
			order = append(order[1:], order[0])
		}
		for _, tc := range tests {
			for _, t := range order {
				c0 := cpuSeconds(t.pid)
				start := time.Now()
				v, err := tc.fn(p, t)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r+1, tc.name, t.name, err)
				}
				cpu[tc.name][t.name] = append(cpu[tc.name][t.name], (cpuSeconds(t.pid)-c0)/time.Since(start).Seconds())
				results[tc.name][t.name] = append(results[tc.name][t.name], v)
				fmt.Fprintf(os.Stderr, "round %d  %-22s %-20s %12.0f %s\n", r+1, tc.name, t.name, v, tc.unit)
			}
		}
	}
	pin := "proxies not pinned"
	if p.proxyCPU != "" {
		pin = "proxies pinned to CPU " + p.proxyCPU
	}
	fmt.Printf("\nmedians of %d rounds of %v; %s; %s\n\n", p.rounds, p.duration, haproxyVersion(p.haproxy), pin)
	fmt.Println("| test | direct | kubesvc | HAProxy splice-auto | HAProxy no splice | kubesvc ÷ best HAProxy | proxy CPU: kubesvc / HAProxy (splice, no splice) |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, tc := range tests {
		m := func(t target) float64 { return median(results[tc.name][t.name]) }
		c := func(t target) float64 { return 100 * median(cpu[tc.name][t.name]) }
		best := max(m(targets[2]), m(targets[3]))
		fmt.Printf("| %s (%s) | %.0f | %.0f | %.0f | %.0f | %.2f× | %.0f %% / %.0f %%, %.0f %% |\n", tc.name, tc.unit,
			m(targets[0]), m(targets[1]), m(targets[2]), m(targets[3]), m(targets[1])/best, c(targets[1]), c(targets[2]), c(targets[3]))
	}
	return nil
}

func haproxyConfig(ip string, splice bool) string {
	var b strings.Builder
	b.WriteString(`global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
`)
	if splice {
		b.WriteString("    option splice-auto\n")
	}
	b.WriteString(`    timeout connect 1s
    timeout client 60s
    timeout server 60s
`)
	for _, s := range []struct {
		name       string
		port, base int
	}{{"echo", portEcho, echoBase}, {"stream", portStream, sinkBase}, {"crr", portCRR, closeBase}} {
		fmt.Fprintf(&b, "listen %s\n    bind %s:%d\n    balance random\n", s.name, ip, s.port)
		for i := range nBackends {
			fmt.Fprintf(&b, "    server b%d %s:%d\n", i, backendIP, s.base+i)
		}
	}
	return b.String()
}

func haproxyVersion(bin string) string {
	out, _ := exec.Command(bin, "-v").Output()
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return f[2]
	}
	return "?"
}

// start runs a proxy process pinned to cpus (waitReady then polls its address).
func start(cpus, name string, env []string, bin string, args ...string) (*exec.Cmd, error) {
	if cpus != "" {
		args = append([]string{"-c", cpus, bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func waitReady(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			buf := make([]byte, 1)
			_, _ = c.Write(buf)
			_, err = io.ReadFull(c, buf)
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuSeconds is the user+system CPU time of pid (0: none).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}

func serveEcho(c net.Conn) { defer c.Close(); _, _ = io.Copy(c, c) }
func serveSink(c net.Conn) { defer c.Close(); _, _ = io.Copy(io.Discard, c) }

// serveAnswerClose answers one byte and closes first.
func serveAnswerClose(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err == nil {
		_, _ = c.Write(buf)
	}
}

// stream writes 64 KiB blocks on p.streams connections to the sink for p.duration.
func stream(p params, t target) (float64, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, p.streams)
	deadline := time.Now().Add(p.duration)
	for range p.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", t.sink)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			_ = c.SetWriteDeadline(deadline)
			for {
				n, err := c.Write(buf)
				total.Add(int64(n))
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						errc <- err
					}
					return
				}
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	close(errc)
	return float64(total.Load()) / 1e6 / time.Since(start).Seconds(), <-errc
}

// crr runs p.clients loops of connect, 1-byte request, 1-byte answer, close.
func crr(p params, t target) (float64, error) {
	return loop(p, func() (func() error, func()) {
		buf := make([]byte, 1)
		return func() error {
			c, err := net.Dial("tcp", t.crr)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write(buf); err != nil {
				return err
			}
			if _, err = io.ReadFull(c, buf); err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, c) // until the server's FIN: the server closes first
			return err
		}, func() {}
	})
}

// rr runs p.clients connections doing 1-byte request-response.
func rr(p params, t target) (float64, error) {
	return loop(p, func() (func() error, func()) {
		buf := make([]byte, 1)
		var c net.Conn
		return func() error {
				if c == nil {
					var err error
					if c, err = net.Dial("tcp", t.echo); err != nil {
						return err
					}
				}
				if _, err := c.Write(buf); err != nil {
					return err
				}
				_, err := io.ReadFull(c, buf)
				return err
			}, func() {
				if c != nil {
					c.Close()
				}
			}
	})
}

// loop runs p.clients workers of op for p.duration and returns operations per second.
func loop(p params, newOp func() (op func() error, done func())) (float64, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, p.clients)
	deadline := time.Now().Add(p.duration)
	start := time.Now()
	for range p.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, done := newOp()
			defer done()
			for time.Now().Before(deadline) {
				if err := op(); err != nil {
					errc <- err
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	return float64(total.Load()) / time.Since(start).Seconds(), <-errc
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
