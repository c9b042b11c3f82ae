package peertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultReadyTimeout bounds how long a Run or Start function waits for its peer to report
// ready when the config leaves ReadyTimeout zero. kube-apiserver needs 5-20 s on a loaded
// 2-core machine; the margin covers a busy CI host.
const DefaultReadyTimeout = 2 * time.Minute

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 10 * time.Second

// pollInterval is the period of readiness probes.
const pollInterval = 100 * time.Millisecond

// ErrExited is wrapped by the errors returned when a peer process exits before it is ready.
var ErrExited = errors.New("peer process exited")

// Process is one running peer binary. Its methods are safe for concurrent use. The zero value
// is not usable; Process values come from the Run functions.
type Process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // set before done is closed

	stopOnce sync.Once
	stopErr  error
	cleanup  func() // runs once after the process is gone (temp dir removal); may be nil
}

// Name returns the peer's binary name.
func (p *Process) Name() string { return p.name }

// Pid returns the operating-system process id (also the process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogFile returns the path of the file that receives the process's stdout and stderr.
func (p *Process) LogFile() string { return p.logPath }

// Done is closed when the process has exited, for whatever reason.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the process's exit error once Done is closed, and nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, escalates to SIGKILL after a grace period, waits
// for the exit and releases the peer's resources. Stop is idempotent; later calls return the
// first call's result. The error is non-nil only when the process had already exited with a
// failure before Stop was called; an exit caused by Stop's own signals is not an error.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		pgid := -p.cmd.Process.Pid
		signaled := false
		select {
		case <-p.done:
		default:
			signaled = true
			_ = syscall.Kill(pgid, syscall.SIGTERM)
			timer := time.NewTimer(stopGrace)
			select {
			case <-p.done:
			case <-timer.C:
				_ = syscall.Kill(pgid, syscall.SIGKILL)
				<-p.done
			}
			timer.Stop()
		}
		// Reap stragglers in the group (children of the peer), if any.
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		if !signaled && p.waitErr != nil {
			// It had died on its own before Stop: that is worth reporting.
			p.stopErr = fmt.Errorf("stop %s: exited early: %w", p.name, p.waitErr)
		}
		if p.cleanup != nil {
			p.cleanup()
		}
	})
	return p.stopErr
}

// LogTail returns up to the last n lines of the process log.
func (p *Process) LogTail(n int) string { return logTail(p.logPath, n) }

// startProcess starts bin with args in dir, logging to dir/<name>.log. The process is stopped
// when ctx is done.
func startProcess(ctx context.Context, name, bin, dir string, args []string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	fmt.Fprintf(f, "### %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = p.Stop()
		case <-p.done:
		}
	}()
	return p, nil
}

// waitReady polls probe until it succeeds, the process exits, ctx ends or timeout passes.
// The error names the last probe failure and carries the log tail.
func waitReady(ctx context.Context, p *Process, timeout time.Duration, probe func(context.Context) error) error {
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		last = probe(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s: %w (%v) before ready; log %s:\n%s", p.name, ErrExited, p.waitErr, p.logPath, p.LogTail(30))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w; last probe error: %v; log %s:\n%s",
				p.name, timeout, ctx.Err(), last, p.logPath, p.LogTail(30))
		case <-ticker.C:
		}
	}
}

// startWithRetry runs start (which picks fresh ports each time) and retries when the peer died
// because another process took one of its ports between pick and bind.
func startWithRetry[T any](start func() (T, *Process, error)) (T, error) {
	var zero T
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var v T
		var p *Process
		v, p, err = start()
		if err == nil {
			return v, nil
		}
		if p == nil || !errors.Is(err, ErrExited) || !strings.Contains(p.LogTail(200), "address already in use") {
			return zero, err
		}
		_ = p.Stop()
	}
	return zero, err
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment ago. Listening
// on all of them at once keeps the kernel from handing out the same port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// mergeArgs returns defaults followed by extra, dropping each default whose flag name extra
// also sets, so "--authorization-mode=AlwaysAllow" in extra replaces the default instead of
// appending to a list-valued flag. Defaults must be in --name=value form.
func mergeArgs(defaults, extra []string) []string {
	override := map[string]bool{}
	for _, a := range extra {
		if n := flagName(a); n != "" {
			override[n] = true
		}
	}
	out := make([]string, 0, len(defaults)+len(extra))
	for _, a := range defaults {
		if !override[flagName(a)] {
			out = append(out, a)
		}
	}
	return append(out, extra...)
}

// flagName returns "name" for "--name", "--name=value", "-name" or "-name=v", else "".
func flagName(arg string) string {
	if !strings.HasPrefix(arg, "-") {
		return ""
	}
	n := strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(n, '='); i >= 0 {
		n = n[:i]
	}
	return n
}

// logTail returns up to the last n lines of the file at path.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// workDir returns dir, or a new temporary directory and a function that removes it.
func workDir(dir, name string) (string, func(), error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("create %s dir: %w", name, err)
		}
		return dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "peertest-"+name+"-")
	if err != nil {
		return "", nil, fmt.Errorf("create %s dir: %w", name, err)
	}
	return d, func() { os.RemoveAll(d) }, nil
}

// tieToTest stops p in tb.Cleanup and logs its tail when the test failed.
func tieToTest(tb testing.TB, p *Process) {
	tb.Helper()
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s log tail (%s):\n%s", p.name, p.logPath, p.LogTail(40))
		}
		if err := p.Stop(); err != nil {
			tb.Logf("peertest: %v", err)
		}
	})
}

// binary returns the path of the named peer or an error naming build.sh.
func binary(name string) (string, error) {
	p, ok := Path(name)
	if !ok {
		return "", fmt.Errorf("peer binary %s: %w (run hack/peers/build.sh %s)", p, os.ErrNotExist, name)
	}
	return p, nil
}
