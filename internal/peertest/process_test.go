package peertest

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMergeArgs_Overrides(t *testing.T) {
	defaults := []string{"--authorization-mode=RBAC", "--secure-port=6443", "--profiling=false"}
	tests := []struct {
		name  string
		extra []string
		want  []string
	}{
		{
			name: "no extra args keeps defaults",
			want: defaults,
		},
		{
			name:  "new flag is appended",
			extra: []string{"--v=4"},
			want:  append(append([]string{}, defaults...), "--v=4"),
		},
		{
			name:  "same flag replaces default",
			extra: []string{"--authorization-mode=AlwaysAllow"},
			want:  []string{"--secure-port=6443", "--profiling=false", "--authorization-mode=AlwaysAllow"},
		},
		{
			name:  "bare boolean flag replaces default",
			extra: []string{"--profiling"},
			want:  []string{"--authorization-mode=RBAC", "--secure-port=6443", "--profiling"},
		},
		{
			name:  "positional value is kept and not taken for a flag",
			extra: []string{"--feature-gates", "A=true"},
			want:  append(append([]string{}, defaults...), "--feature-gates", "A=true"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeArgs(defaults, tc.extra)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mergeArgs() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDir_Env(t *testing.T) {
	full := t.TempDir()
	for _, n := range []string{KubeAPIServerBinary, EtcdBinary} {
		if err := os.WriteFile(filepath.Join(full, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	half := t.TempDir()
	if err := os.WriteFile(filepath.Join(half, EtcdBinary), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := t.TempDir()
	for _, n := range []string{KubeAPIServerBinary, EtcdBinary} {
		if err := os.WriteFile(filepath.Join(notExec, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		env    string
		wantOK bool
	}{
		{name: "both binaries present", env: full, wantOK: true},
		{name: "kube-apiserver missing", env: half, wantOK: false},
		{name: "files not executable", env: notExec, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(DirEnv, tc.env)
			dir, ok := Dir()
			if dir != tc.env || ok != tc.wantOK {
				t.Errorf("Dir() = %q, %v; want %q, %v", dir, ok, tc.env, tc.wantOK)
			}
		})
	}
}

func TestDir_Default(t *testing.T) {
	t.Setenv(DirEnv, "")
	t.Setenv("HOME", "/home/someone")
	dir, _ := Dir()
	if want := "/home/someone/.cache/kubesvc/peers/" + KubeVersion; dir != want {
		t.Errorf("Dir() = %q, want %q", dir, want)
	}
}

func TestProcess_StopKillsGroup(t *testing.T) {
	dir := t.TempDir()
	// The shell's background child must die with it: Stop signals the whole group.
	p, err := startProcess(t.Context(), "sh", "/bin/sh", dir,
		[]string{"-c", "sleep 300 & echo child=$!; wait"})
	if err != nil {
		t.Fatal(err)
	}
	var child int
	err = waitReady(t.Context(), p, 30*time.Second, func(context.Context) error {
		for _, line := range strings.Split(p.LogTail(10), "\n") {
			if v, ok := strings.CutPrefix(line, "child="); ok {
				c, perr := strconv.Atoi(strings.TrimSpace(v))
				child = c
				return perr
			}
		}
		return errors.New("child pid not logged yet")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop() = %v, want nil for a process Stop killed", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	// Once killed, the child is gone or a zombie waiting for a reaper.
	pollUntil(t, 10*time.Second, func() bool {
		st := processState(child)
		return st == "" || st == "Z"
	})
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop() = %v, want nil", err)
	}
}

func TestWaitReady_ReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	p, err := startProcess(t.Context(), "sh", "/bin/sh", dir, []string{"-c", "echo boom-marker; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	err = waitReady(t.Context(), p, time.Minute, func(context.Context) error { return errors.New("never ready") })
	if !errors.Is(err, ErrExited) {
		t.Fatalf("waitReady() = %v, want ErrExited", err)
	}
	if !strings.Contains(err.Error(), "boom-marker") {
		t.Errorf("waitReady() error lacks the log tail: %v", err)
	}
	if err := p.Stop(); err == nil {
		t.Error("Stop() of a process that had failed on its own = nil, want its exit error")
	}
}

func TestWaitReady_Timeout(t *testing.T) {
	p, err := startProcess(t.Context(), "sh", "/bin/sh", t.TempDir(), []string{"-c", "exec sleep 300"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	err = waitReady(t.Context(), p, 300*time.Millisecond, func(context.Context) error { return errors.New("last-probe-marker") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last-probe-marker") {
		t.Errorf("waitReady() = %v, want DeadlineExceeded naming the last probe error", err)
	}
}

func TestProcess_StopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p, err := startProcess(ctx, "sh", "/bin/sh", t.TempDir(), []string{"-c", "exec sleep 300"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		_ = p.Stop()
		t.Fatal("process still running 30s after its context was cancelled")
	}
}

func TestWritePKI_ChainsVerify(t *testing.T) {
	dir := t.TempDir()
	f, err := writePKI(dir, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(f.caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	serving := readCert(t, f.servingCert)
	admin := readCert(t, filepath.Join(dir, "admin.crt"))
	tests := []struct {
		name  string
		cert  *x509.Certificate
		usage x509.ExtKeyUsage
		host  string
	}{
		{name: "serving cert for 127.0.0.1", cert: serving, usage: x509.ExtKeyUsageServerAuth, host: "127.0.0.1"},
		{name: "serving cert for localhost", cert: serving, usage: x509.ExtKeyUsageServerAuth, host: "localhost"},
		{name: "admin client cert", cert: admin, usage: x509.ExtKeyUsageClientAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
			if err != nil {
				t.Errorf("Verify() = %v", err)
			}
		})
	}
	if got := admin.Subject.Organization; len(got) != 1 || got[0] != AdminGroup {
		t.Errorf("admin cert organization = %v, want [%s]", got, AdminGroup)
	}
	for _, p := range []string{f.saKey, f.saPub, f.servingKey} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// processState returns the state letter of pid from /proc, or "" when it does not exist.
func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// Format: pid (comm) S ...; comm may contain spaces, so split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// pollUntil polls cond every 50ms until it holds, failing the test after timeout.
func pollUntil(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("condition not met within %v", timeout)
		case <-tick.C:
		}
	}
}
