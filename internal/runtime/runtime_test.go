package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kubesvc/internal/runtime"
	"kubesvc/internal/runtime/logs"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/netns/netnstest"
	"kubesvc/internal/runtime/shim"
	"kubesvc/internal/servertest"
	"kubesvc/internal/toolbox"
)

// TestMain makes the test binary its own re-exec target: `agent shim|nsexec` and `toolbox`.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "agent" {
		switch os.Args[2] {
		case shim.ShimCommand:
			os.Exit(shim.RunShim(os.Args[3]))
		case shim.NSExecCommand:
			notFound, err := shim.RunNSExec()
			fmt.Fprintln(os.Stderr, err)
			if notFound {
				os.Exit(127)
			}
			os.Exit(126)
		}
	}
	if len(os.Args) > 1 && os.Args[1] == "toolbox" {
		if err := toolbox.Run(context.Background(), os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if code, child := netnstest.PrivateNamespaces(); !child {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func newRuntime(t *testing.T, dir string) *runtime.Runtime {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := runtime.New(runtime.Config{DataDir: dir, Exe: exe, Bridge: "kstest0", PodCIDR: netip.MustParsePrefix("10.244.7.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitExit waits for the container's exit record.
func waitExit(t *testing.T, r *runtime.Runtime, c *runtime.Container) *shim.Exit {
	t.Helper()
	var st runtime.State
	servertest.WaitFor(t, 10*time.Second, "container "+c.Name+" exits", func() error {
		st = r.State(c)
		if st.Exit == nil {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	return st.Exit
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	var b bytes.Buffer
	if err := logs.Read(context.Background(), path, logs.Options{TailLines: -1}, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRuntime_PodLifecycle(t *testing.T) {
	netnstest.RequireIsolated(t)
	dir := t.TempDir()
	r := newRuntime(t, dir)
	var started []*runtime.Container
	t.Cleanup(func() {
		for _, c := range started {
			_ = r.Signal(c, syscall.SIGKILL)
		}
		for _, sb := range r.Sandboxes() {
			_ = r.RemoveSandbox(sb.UID)
		}
	})
	a, _, err := r.EnsureSandbox(runtime.SandboxConfig{UID: "uid-a", Namespace: "default", Name: "pod-a", Hostname: "pod-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := r.EnsureSandbox(runtime.SandboxConfig{UID: "uid-b", Namespace: "default", Name: "pod-b", Hostname: "pod-b"})
	if err != nil {
		t.Fatal(err)
	}
	if a.IP.String() != "10.244.7.2" || b.IP.String() != "10.244.7.3" {
		t.Fatalf("pod IPs %s %s, want 10.244.7.2 10.244.7.3", a.IP, b.IP)
	}
	resolv := "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
	if err := r.WriteEtc(a, "resolv.conf", []byte(resolv)); err != nil {
		t.Fatal(err)
	}

	t.Run("exit code, streams and pod identity", func(t *testing.T) {
		c, err := r.StartContainer(a, runtime.ContainerConfig{Name: "sh", Args: []string{"sh", "-c", "hostname; cat /etc/resolv.conf; echo oops >&2; exit 3"}, Env: []string{"PATH=/usr/bin:/bin"}})
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, c)
		if ex := waitExit(t, r, c); ex.Code != 3 {
			t.Fatalf("exit %+v, want code 3", ex)
		}
		// stdout and stderr are two pipes: each keeps its order in the
		// log, but their lines may interleave either way (as in CRI logs).
		got := readLog(t, c.LogPath())
		stdout, found := strings.CutPrefix(got, "oops\n")
		if !found {
			stdout = strings.Replace(got, "\noops\n", "\n", 1)
		}
		if want := "pod-a\n" + resolv; stdout != want || strings.Count(got, "oops\n") != 1 {
			t.Fatalf("log %q, want stdout %q and one stderr line \"oops\"", got, want)
		}
	})

	t.Run("start error", func(t *testing.T) {
		c, err := r.StartContainer(a, runtime.ContainerConfig{Name: "missing", Args: []string{"no-such-command"}})
		if err != nil {
			t.Fatal(err)
		}
		ex := waitExit(t, r, c)
		if ex.Code != 128 || !strings.Contains(ex.StartError, "executable file not found") {
			t.Fatalf("exit %+v, want 128 with a not-found start error", ex)
		}
	})

	exe, _ := os.Executable()
	server, err := r.StartContainer(b, runtime.ContainerConfig{Name: "kubia", Args: []string{exe, "toolbox", "kubia"}})
	if err != nil {
		t.Fatal(err)
	}
	started = append(started, server)

	t.Run("node reaches pod by IP", func(t *testing.T) {
		servertest.WaitFor(t, 10*time.Second, "kubia answers on "+b.IP.String(), func() error {
			got, err := httpGet("", "http://"+b.IP.String()+":8080/")
			if err != nil {
				return err
			}
			if got != "You've hit pod-b\n" {
				return fmt.Errorf("answer %q", got)
			}
			return nil
		})
	})

	t.Run("pod reaches pod", func(t *testing.T) {
		got, err := httpGet(a.NetNS(), "http://"+b.IP.String()+":8080/")
		if err != nil || got != "You've hit pod-b\n" {
			t.Fatalf("from pod-a: %q, %v", got, err)
		}
		// The container's output reaches its log file through the shim's
		// pipe, after the answer: wait for the line rather than race it.
		servertest.WaitFor(t, 5*time.Second, "kubia log shows pod-a's address", func() error {
			if log := readLog(t, server.LogPath()); !strings.Contains(log, "Received request from ::ffff:10.244.7.2\n") {
				return fmt.Errorf("log:\n%s", log)
			}
			return nil
		})
	})

	t.Run("exec in the container", func(t *testing.T) {
		e, err := r.ExecCommand(b, server, []string{"sh", "-c", "cat /proc/sys/kernel/hostname; echo $0"}, false)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		e.Cmd.Stdout, e.Cmd.Stderr = &out, &out
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		if err := e.Cmd.Wait(); err != nil {
			t.Fatalf("exec: %v: %s", err, out.String())
		}
		if out.String() != "pod-b\nsh\n" {
			t.Fatalf("exec output %q", out.String())
		}
	})

	t.Run("restart adopts", func(t *testing.T) {
		r2 := newRuntime(t, dir)
		sbs := r2.Sandboxes()
		if len(sbs) != 2 || sbs[1].IP != b.IP {
			t.Fatalf("sandboxes after restart: %+v", sbs)
		}
		cs, err := r2.Containers("uid-b")
		if err != nil || len(cs["kubia"]) != 1 {
			t.Fatalf("containers %v, %v", cs, err)
		}
		if st := r2.State(cs["kubia"][0]); !st.Running {
			t.Fatalf("adopted container not running: %+v", st)
		}
		c, _, err := r2.EnsureSandbox(runtime.SandboxConfig{UID: "uid-c", Namespace: "default", Name: "pod-c", Hostname: "pod-c"})
		if err != nil {
			t.Fatal(err)
		}
		if c.IP == a.IP || c.IP == b.IP {
			t.Fatalf("new pod got a held IP %s", c.IP)
		}
		if err := r2.Signal(cs["kubia"][0], syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if ex := waitExit(t, r2, cs["kubia"][0]); ex.Code != 0 && ex.Code != 143 {
			t.Fatalf("after SIGTERM: %+v", ex)
		}
		if err := r2.RemoveSandbox("uid-c"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "netns", "uid-c")); !os.IsNotExist(err) {
			t.Fatalf("netns file of removed sandbox: %v", err)
		}
	})
}

func httpGet(ns, url string) (string, error) {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return netns.Dial(ctx, ns, network, addr)
		},
	}}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
