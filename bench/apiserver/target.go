package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubesvc/internal/peertest"
)

// Target names, as printed in the table.
const (
	targetKubesvc = "kubesvc"
	targetKube    = "kube-apiserver"
)

// server is one running API server under test.
type server struct {
	name    string
	pid     int
	config  *rest.Config
	startup time.Duration // process start to ready
	stop    func()
}

// startConfig is what both servers get.
type startConfig struct {
	etcdURL     string
	prefix      string // --etcd-prefix, fresh per round and target
	serviceCIDR string
	dir         string // data/log directory of this server
	kubesvcBin  string
	kubeArgs    []string // extra kube-apiserver flags
	kubesvcArgs []string // extra kubesvc server flags
}

// startServer starts the named target and waits until it is ready.
func startServer(ctx context.Context, name string, cfg startConfig) (*server, error) {
	switch name {
	case targetKubesvc:
		return startKubesvc(ctx, cfg)
	case targetKube:
		return startKube(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown target %q", name)
}

func startKube(ctx context.Context, cfg startConfig) (*server, error) {
	t0 := time.Now()
	s, err := peertest.RunKubeAPIServer(ctx, peertest.APIServerConfig{
		EtcdURL:     cfg.etcdURL,
		EtcdPrefix:  cfg.prefix,
		ServiceCIDR: cfg.serviceCIDR,
		Dir:         cfg.dir,
		ExtraArgs:   cfg.kubeArgs,
	})
	if err != nil {
		return nil, err
	}
	return &server{
		name:    targetKube,
		pid:     s.Pid(),
		config:  rest.CopyConfig(s.Config),
		startup: time.Since(t0),
		stop:    func() { _ = s.Stop() },
	}, nil
}

// startKubesvc runs `kubesvc server` on the shared etcd with a kernel-chosen port and waits
// for "kubesvc: ready" on its stdout.
func startKubesvc(ctx context.Context, cfg startConfig) (*server, error) {
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create kubesvc dir: %w", err)
	}
	logPath := filepath.Join(cfg.dir, "kubesvc.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create kubesvc log: %w", err)
	}
	args := []string{"server",
		"--data-dir", filepath.Join(cfg.dir, "data"),
		"--bind-address", "127.0.0.1",
		"--https-listen-port", "0",
		"--datastore-endpoint", cfg.etcdURL,
		"--etcd-prefix", cfg.prefix,
		"--service-cidr", cfg.serviceCIDR,
		"--disable-agent",
	}
	args = append(args, cfg.kubesvcArgs...)
	cmd := exec.Command(cfg.kubesvcBin, args...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start kubesvc: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	stop := func() {
		pgid := -cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-done
		}
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !signalled && strings.TrimSpace(sc.Text()) == "kubesvc: ready" {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-done:
		return nil, fmt.Errorf("kubesvc exited before ready; log %s:\n%s", logPath, tail(logPath, 30))
	case <-time.After(2 * time.Minute):
		stop()
		return nil, fmt.Errorf("kubesvc not ready after 2m; log %s:\n%s", logPath, tail(logPath, 30))
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	startup := time.Since(t0)
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(cfg.dir, "data", "admin.kubeconfig"))
	if err != nil {
		stop()
		return nil, fmt.Errorf("kubesvc kubeconfig: %w", err)
	}
	return &server{name: targetKubesvc, pid: cmd.Process.Pid, config: rc, startup: startup, stop: stop}, nil
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

// procMem returns VmRSS and VmHWM of pid in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, perr := strconv.ParseInt(f[1], 10, 64)
		if perr != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("no VmRSS in /proc/status")
	}
	return rss, hwm, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns utime+stime of pid (its threads, not its children).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
