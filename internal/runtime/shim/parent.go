package shim

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Process is a shim the caller started; Done is closed when the shim has exited (and been
// reaped). A shim adopted after an agent restart has no Process: check Alive instead.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Done is closed when the shim process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Start writes spec to dir/spec.json and starts `exe agent shim dir`. It returns once the
// command runs (dir/started.json exists) or could not start (dir/exit.json exists). dir must
// exist.
func Start(exe, dir string, spec Spec) (*Process, error) {
	if len(spec.Args) == 0 {
		return nil, fmt.Errorf("shim: empty command")
	}
	if err := writeJSON(dir, specFile, spec); err != nil {
		return nil, fmt.Errorf("shim: write spec: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, shimLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shim: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("shim: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, "agent", ShimCommand, dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: cloneFlags(spec)}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("shim: start %s: %w", exe, err)
	}
	w.Close()
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	// The shim closes its end once started.json or exit.json is written, or when it dies.
	_, _ = io.Copy(io.Discard, r)
	if _, ok, _ := ReadStarted(dir); ok {
		return p, nil
	}
	if _, ok, _ := ReadExit(dir); ok {
		return p, nil
	}
	<-p.done
	log, _ := os.ReadFile(filepath.Join(dir, shimLogFile))
	return nil, fmt.Errorf("shim exited without starting the command: %s", log)
}

// cloneFlags are the namespaces a shim or nsexec process is created in: always a mount
// namespace, and a UTS namespace when it sets a hostname.
func cloneFlags(spec Spec) uintptr {
	flags := uintptr(syscall.CLONE_NEWNS)
	if spec.Hostname != "" {
		flags |= syscall.CLONE_NEWUTS
	}
	return flags
}

// Exec is an unstarted `kubesvc agent nsexec`. Set Cmd's Stdin, Stdout and Stderr (and adjust
// Cmd.SysProcAttr if needed), then call Start and Cmd.Wait.
type Exec struct {
	Cmd  *exec.Cmd
	spec *os.File
}

// Start starts the process and releases the spec pipe.
func (e *Exec) Start() error {
	err := e.Cmd.Start()
	e.spec.Close()
	return err
}

// Close releases the spec pipe of an Exec that is not started.
func (e *Exec) Close() { e.spec.Close() }

// Command returns an unstarted `exe agent nsexec` that runs spec in place. Its SysProcAttr has
// Setpgid, or Setsid and Setctty (on stdin) for a terminal when tty is true. The process exits
// 127 when the command is not found and 126 when the set-up fails.
func Command(exe string, spec Spec, tty bool) (*Exec, error) {
	if len(spec.Args) == 0 {
		return nil, fmt.Errorf("nsexec: empty command")
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	// The spec is written into the pipe before the start: it must fit the pipe buffer.
	if len(data) > 60<<10 {
		return nil, fmt.Errorf("nsexec: spec too large (%d bytes)", len(data))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = w.Write(data)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	cmd := exec.Command(exe, "agent", NSExecCommand)
	cmd.ExtraFiles = []*os.File{r}
	attr := &syscall.SysProcAttr{Cloneflags: cloneFlags(spec)}
	if tty {
		attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	} else {
		attr.Setpgid = true
	}
	cmd.SysProcAttr = attr
	return &Exec{Cmd: cmd, spec: r}, nil
}
