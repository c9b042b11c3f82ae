package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proxy names, as printed in the tables.
const (
	proxyKube    = "kube-proxy"
	proxyKubesvc = "kubesvc"
)

// Ways to run kubesvc's proxy.
const (
	runnerAgent      = "agent"
	runnerStandalone = "standalone"
)

// proxyConfig is what a proxy process is started with.
type proxyConfig struct {
	kubeProxyBin string
	kubesvcBin   string
	kubeconfig   string
	dir          string   // logs
	kubeArgs     []string // extra kube-proxy flags
	kubesvcArgs  []string // extra kubesvc agent flags
	// minSyncPeriod, when set, replaces both proxies' default minimum time between syncs (1 s).
	minSyncPeriod string
	// kubesvcRunner is how kubesvc's proxy runs: runnerAgent (`kubesvc agent`) or
	// runnerStandalone (bench/proxy/kubesvcproxy, kubesvcProxyBin).
	kubesvcRunner   string
	kubesvcProxyBin string
	// serviceCIDR is the API server's Service CIDR.
	serviceCIDR string
}

// proxyProc is one running proxy.
type proxyProc struct {
	name       string
	cmd        *exec.Cmd
	started    time.Time
	metricsURL string
	logPath    string
	done       chan struct{}
}

// startProxy starts the named proxy in the node namespace (this process's). run numbers the
// log files.
func startProxy(name string, cfg proxyConfig, run int) (*proxyProc, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	var bin string
	var args []string
	switch name {
	case proxyKube:
		bin = cfg.kubeProxyBin
		args = []string{
			"--kubeconfig=" + cfg.kubeconfig,
			"--proxy-mode=nftables",
			"--hostname-override=" + nodeName,
			"--cluster-cidr=" + podLAN.String(),
			"--metrics-bind-address=" + metricsAddr,
			"--healthz-bind-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
			// Leave every global kernel setting alone: nf_conntrack_max and the conntrack
			// hash size are not per network namespace.
			"--conntrack-max-per-core=0", "--conntrack-min=0",
			"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
			"--oom-score-adj=0",
			"--v=2",
		}
		if cfg.minSyncPeriod != "" {
			// --iptables-min-sync-period also sets nftables mode's (cmd/kube-proxy/app/options.go).
			args = append(args, "--iptables-min-sync-period="+cfg.minSyncPeriod)
		}
		args = append(args, cfg.kubeArgs...)
	case proxyKubesvc:
		minSync := cfg.minSyncPeriod
		if d, err := time.ParseDuration(minSync); err == nil && d == 0 {
			minSync = "1ns" // kubesvc reads 0 as its adaptive default; 1ns is no minimum at all
		}
		if cfg.kubesvcRunner == runnerStandalone {
			bin = cfg.kubesvcProxyBin
			args = []string{
				"--kubeconfig=" + cfg.kubeconfig,
				"--hostname-override=" + nodeName,
				"--node-ip=" + nodeIP.String(),
				"--cluster-cidr=" + podLAN.String(),
				"--metrics-bind-address=" + metricsAddr,
				"--healthz-bind-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
			}
			if minSync != "" {
				args = append(args, "--min-sync-period="+minSync)
			}
			args = append(args, cfg.kubesvcArgs...)
			break
		}
		bin = cfg.kubesvcBin
		args = []string{"agent",
			"--kubeconfig=" + cfg.kubeconfig,
			"--proxy-mode=nftables",
			"--node-name=" + nodeName,
			"--node-ip=" + nodeIP.String(),
			"--cluster-cidr=" + podLAN.String(),
			"--service-cidr=" + cfg.serviceCIDR,
			"--metrics-bind-address=" + metricsAddr,
			"--healthz-bind-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		}
		if minSync != "" {
			args = append(args, "--proxy-min-sync-period="+minSync)
		}
		args = append(args, cfg.kubesvcArgs...)
	default:
		return nil, fmt.Errorf("unknown proxy %q", name)
	}
	logPath := filepath.Join(cfg.dir, fmt.Sprintf("%s-%d.log", name, run))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "+ %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proxyProc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	if metricsAddr != "" {
		p.metricsURL = "http://" + metricsAddr + "/metrics"
	}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// exited reports an error if the proxy has exited.
func (p *proxyProc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); log %s:\n%s", p.name, p.cmd.ProcessState, p.logPath, tail(p.logPath, 30))
	default:
		return nil
	}
}

// stop ends the proxy's process group: SIGTERM, then SIGKILL after 10 s.
func (p *proxyProc) stop() {
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}

// procStat is the CPU time of a proxy's process group (the proxy, its reaped children and
// its live ones, e.g. kube-proxy's `nft -f -`) and the memory of the proxy process.
type procStat struct {
	cpu      time.Duration
	rss, hwm int64 // bytes
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// readStat returns the process group and the CPU ticks (utime+stime+cutime+cstime) of pid.
func readStat(pid int) (pgrp int, ticks int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the parenthesised command name, from field 3 (state) on.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	pgrp, _ = strconv.Atoi(f[2])
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return pgrp, ticks, nil
}

func (p *proxyProc) stat() (procStat, error) {
	pid := p.cmd.Process.Pid
	_, ticks, err := readStat(pid)
	if err != nil {
		return procStat{}, err
	}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			other, err := strconv.Atoi(e.Name())
			if err != nil || other == pid {
				continue
			}
			if pgrp, t, err := readStat(other); err == nil && pgrp == pid {
				ticks += t
			}
		}
	}
	st := procStat{cpu: time.Duration(ticks) * time.Second / clockTicks}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStat{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			st.rss = v << 10
		case "VmHWM:":
			st.hwm = v << 10
		}
	}
	return st, nil
}

// waitIdle waits until the proxy uses less than 5 % of a core over a 1 s window (at most
// limit) and returns how long that took.
func (p *proxyProc) waitIdle(ctx context.Context, limit time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	prev, err := p.stat()
	if err != nil {
		return 0, false
	}
	for time.Since(t0) < limit {
		select {
		case <-ctx.Done():
			return time.Since(t0), false
		case <-time.After(time.Second):
		}
		cur, err := p.stat()
		if err != nil {
			return time.Since(t0), false
		}
		if cur.cpu-prev.cpu < 50*time.Millisecond {
			return time.Since(t0), true
		}
		prev = cur
	}
	return time.Since(t0), false
}

// promSample is the sum and count of one histogram (all label sets added up).
type promSample struct{ sum, count float64 }

// scrape reads the proxy's metrics and returns the histograms whose names end in one of the
// suffixes (kube-proxy prefixes its metrics with "kubeproxy_"; kubesvc may not), keyed by
// suffix.
func (p *proxyProc) scrape(ctx context.Context, suffixes ...string) (map[string]promSample, error) {
	out := map[string]promSample{}
	if p.metricsURL == "" {
		return out, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			rest = line[strings.LastIndexByte(line, '}')+2:]
			ok = true
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			continue
		}
		for _, s := range suffixes {
			switch {
			case strings.HasSuffix(name, s+"_sum"):
				ps := out[s]
				ps.sum += v
				out[s] = ps
			case strings.HasSuffix(name, s+"_count"):
				ps := out[s]
				ps.count += v
				out[s] = ps
			}
		}
	}
	return out, sc.Err()
}

// Histogram names (suffixes) read from the proxies.
const (
	mSync     = "sync_proxy_rules_duration_seconds"
	mSyncFull = "sync_full_proxy_rules_duration_seconds"
	mNetProg  = "network_programming_duration_seconds"
)

// flushRuleset removes every nft table of the node namespace (between proxies).
func flushRuleset() error {
	out, err := exec.Command("nft", "flush", "ruleset").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft flush ruleset: %w: %s", err, out)
	}
	return nil
}

// rulesetSize returns the number of lines of `nft list ruleset` (a size indication).
func rulesetSize() int {
	out, err := exec.Command("nft", "list", "ruleset").Output()
	if err != nil {
		return -1
	}
	return strings.Count(string(out), "\n")
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
