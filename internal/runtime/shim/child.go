package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"kubesvc/internal/runtime/logs"
)

// Entry points under `kubesvc agent`.
const (
	// ShimCommand is `kubesvc agent shim DIR`.
	ShimCommand = "shim"
	// NSExecCommand is `kubesvc agent nsexec` with the spec on file descriptor 3.
	NSExecCommand = "nsexec"
)

// defaultPath is the PATH of a container whose environment has none (Docker's default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// enter sets up the process's private mount namespace and hostname, then switches the calling
// thread into the pod's network namespace. The caller has locked its OS thread and keeps it
// locked: the command is started (or exec'd) from this thread.
func enter(spec *Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	netFD := -1
	if spec.NetNS != "" {
		fd, err := unix.Open(spec.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open pod network namespace: %w", err)
		}
		netFD = fd
		defer unix.Close(fd)
	}
	for _, m := range spec.Mounts {
		if _, err := os.Stat(m.Target); err != nil {
			continue
		}
		if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s on %s: %w", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("remount %s read-only: %w", m.Target, err)
			}
		}
	}
	if err := hideMounts(spec.Hide); err != nil {
		return err
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if netFD >= 0 {
		if err := unix.Setns(netFD, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter pod network namespace: %w", err)
		}
	}
	return nil
}

// hideMounts detaches every mount at or below the directories in dirs, deepest first.
func hideMounts(dirs []string) error {
	if len(dirs) == 0 {
		return nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		for _, d := range dirs {
			d = filepath.Clean(d)
			if mp == d || strings.HasPrefix(mp, d+"/") {
				targets = append(targets, mp)
				break
			}
		}
	}
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
	for _, t := range targets {
		if err := unix.Unmount(t, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hide mount %s: %w", t, err)
		}
	}
	return nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space and so on).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// LookPath finds name in the PATH of env (defaultPath when env has none), as a container
// runtime resolves a command without a slash.
func LookPath(name string, env []string) (string, error) {
	if name == "" {
		return "", errors.New("no command specified")
	}
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("permission denied")
	}
	return nil
}

func dirOr(dir string) string {
	if dir == "" {
		return "/"
	}
	return dir
}

func credential(spec *Spec) *syscall.Credential {
	if spec.UID == nil && spec.GID == nil {
		return nil
	}
	c := &syscall.Credential{NoSetGroups: true}
	if spec.UID != nil {
		c.Uid = *spec.UID
	}
	if spec.GID != nil {
		c.Gid = *spec.GID
	}
	return c
}

// RunShim is `kubesvc agent shim DIR`: it runs the container described by DIR/spec.json and
// returns the shim's exit code once the container has ended and DIR/exit.json is written. File
// descriptor 3, if open, is closed once DIR/started.json or DIR/exit.json exists.
func RunShim(dir string) int {
	// Caught, not ignored: an ignored disposition would be inherited by the container, which
	// could then neither die of nor trap SIGTERM.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for range sigs {
		}
	}()
	// fd 3 must not leak into the container, or the agent would wait for the container's end.
	syscall.CloseOnExec(3)
	notify := os.NewFile(3, "notify")
	done := func() {
		if notify != nil {
			notify.Close()
			notify = nil
		}
	}
	defer done()
	fail := func(code int, err error) int {
		fmt.Fprintf(os.Stderr, "kubesvc shim: %v\n", err)
		_ = writeJSON(dir, exitFile, Exit{Code: 128, StartError: err.Error(), FinishedAt: time.Now().UTC()})
		return code
	}
	var spec Spec
	if err := readJSON(dir, specFile, &spec); err != nil {
		return fail(1, err)
	}
	// The command is started from this thread, which enter moves into the pod's network
	// namespace; it stays locked until the process exits.
	runtime.LockOSThread()
	if err := enter(&spec); err != nil {
		return fail(1, err)
	}
	lf, err := logs.Create(spec.LogPath)
	if err != nil {
		return fail(1, err)
	}
	defer lf.Close()
	path, err := LookPath(spec.Args[0], spec.Env)
	if err != nil {
		return fail(0, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(1, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(1, err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(1, err)
	}
	cmd := &exec.Cmd{
		Path: path, Args: spec.Args, Env: spec.Env, Dir: dirOr(spec.Dir),
		Stdin: devnull, Stdout: outW, Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: credential(&spec)},
	}
	if err := cmd.Start(); err != nil {
		return fail(0, fmt.Errorf("exec: %w", err))
	}
	outW.Close()
	errW.Close()
	devnull.Close()
	pid := cmd.Process.Pid
	self, _ := ProcessStart(os.Getpid())
	child, _ := ProcessStart(pid)
	if err := writeJSON(dir, startedFile, Started{ShimPID: os.Getpid(), ShimStart: self, PID: pid, PIDStart: child, StartedAt: time.Now().UTC()}); err != nil {
		fmt.Fprintf(os.Stderr, "kubesvc shim: %v\n", err)
	}
	done()
	// The shim lives as long as the container: give back what start-up allocated.
	debug.FreeOSMemory()
	var wg sync.WaitGroup
	for stream, r := range map[string]*os.File{logs.Stdout: outR, logs.Stderr: errR} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = lf.Copy(stream, r)
		}()
	}
	werr := cmd.Wait()
	finished := time.Now().UTC()
	// Like a container whose init process ended: nothing of it keeps running.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	copied := make(chan struct{})
	go func() { wg.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		// A process that left the group still holds the pipes; stop copying.
		outR.Close()
		errR.Close()
	}
	ex := Exit{FinishedAt: finished}
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			ex.Code, ex.Signal = 128+int(ws.Signal()), unix.SignalName(ws.Signal())
		} else {
			ex.Code = ws.ExitStatus()
		}
	default:
		ex.Code, ex.StartError = 128, werr.Error()
	}
	if err := writeJSON(dir, exitFile, ex); err != nil {
		fmt.Fprintf(os.Stderr, "kubesvc shim: %v\n", err)
		return 1
	}
	return 0
}

// RunNSExec is `kubesvc agent nsexec`: it reads a Spec from file descriptor 3, sets up the pod
// context and execs the command in place. It returns only on failure; the caller exits with
// 127 for a command that was not found and 126 otherwise, as shells do.
func RunNSExec() (notFound bool, err error) {
	f := os.NewFile(3, "spec")
	if f == nil {
		return false, errors.New("no spec on file descriptor 3")
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return false, fmt.Errorf("read spec: %w", err)
	}
	var spec Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return false, fmt.Errorf("parse spec: %w", err)
	}
	runtime.LockOSThread()
	if err := enter(&spec); err != nil {
		return false, err
	}
	path, err := LookPath(spec.Args[0], spec.Env)
	if err != nil {
		return true, err
	}
	if err := os.Chdir(dirOr(spec.Dir)); err != nil {
		return false, fmt.Errorf("chdir: %w", err)
	}
	if c := credential(&spec); c != nil {
		if err := syscall.Setgroups(nil); err != nil {
			return false, err
		}
		if err := syscall.Setresgid(int(c.Gid), int(c.Gid), int(c.Gid)); err != nil {
			return false, err
		}
		if err := syscall.Setresuid(int(c.Uid), int(c.Uid), int(c.Uid)); err != nil {
			return false, err
		}
	}
	return false, syscall.Exec(path, spec.Args, spec.Env)
}
