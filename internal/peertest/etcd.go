package peertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// EtcdConfig configures a peer etcd. The zero value starts a single fsync-ing member in a
// fresh temporary directory.
type EtcdConfig struct {
	// Dir holds the data directory and the log. Empty means a temporary directory, removed
	// by Stop (Run) or by the test (Start).
	Dir string `json:"dir,omitempty"`
	// UnsafeNoFsync passes --unsafe-no-fsync: faster, loses data on a machine crash. Leave it
	// false when benchmarks compare write latency.
	UnsafeNoFsync bool `json:"unsafeNoFsync,omitempty"`
	// ExtraArgs are appended to the generated flags; a --name=value here replaces the
	// generated flag of the same name.
	ExtraArgs []string `json:"extraArgs,omitempty"`
	// ReadyTimeout bounds the wait for /health; zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration `json:"readyTimeout,omitempty"`
}

// Etcd is a running peer etcd. Stop (from the embedded Process) ends it.
type Etcd struct {
	// ClientURL is the http://127.0.0.1:port URL clients connect to.
	ClientURL string
	*Process
}

// StartEtcd starts the peer etcd on 127.0.0.1 ephemeral ports in a temp dir and returns its
// client URL. The process is stopped by tb.Cleanup.
func StartEtcd(tb testing.TB, cfg EtcdConfig) (string, error) {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	e, err := RunEtcd(context.Background(), cfg)
	if err != nil {
		return "", err
	}
	tieToTest(tb, e.Process)
	return e.ClientURL, nil
}

// RunEtcd starts the peer etcd and waits until it reports healthy. It stops when ctx is done
// or when the caller calls Stop.
func RunEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	bin, err := binary(EtcdBinary)
	if err != nil {
		return nil, err
	}
	dir, cleanup, err := workDir(cfg.Dir, "etcd")
	if err != nil {
		return nil, err
	}
	e, err := startWithRetry(func() (*Etcd, *Process, error) { return startEtcd(ctx, bin, dir, cfg) })
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("run etcd: %w", err)
	}
	e.cleanup = cleanup
	return e, nil
}

func startEtcd(ctx context.Context, bin, dir string, cfg EtcdConfig) (*Etcd, *Process, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	args := []string{
		"--name=peertest",
		"--data-dir=" + filepath.Join(dir, "data"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=peertest=" + peer,
		"--initial-cluster-state=new",
		"--log-level=warn",
	}
	if cfg.UnsafeNoFsync {
		args = append(args, "--unsafe-no-fsync=true")
	}
	p, err := startProcess(ctx, EtcdBinary, bin, dir, mergeArgs(args, cfg.ExtraArgs))
	if err != nil {
		return nil, nil, err
	}
	hc := &http.Client{}
	probe := func(ctx context.Context) error { return etcdHealthy(ctx, hc, client) }
	if err := waitReady(ctx, p, cfg.ReadyTimeout, probe); err != nil {
		_ = p.Stop()
		return nil, p, err
	}
	return &Etcd{ClientURL: client, Process: p}, p, nil
}

// etcdHealthy checks GET /health for {"health":"true"}.
func etcdHealthy(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return fmt.Errorf("build health request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("get %s/health: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("read %s/health: %w", url, err)
	}
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("decode %s/health %q: %w", url, body, err)
	}
	if h.Health != "true" {
		return fmt.Errorf("etcd %s unhealthy: %s", url, body)
	}
	return nil
}
