package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"kubesvc/internal/runtime/shim"
)

// ContainerConfig is one run (attempt) of a container.
type ContainerConfig struct {
	Name    string
	Attempt int
	// Image and ImageID are recorded for the container status.
	Image, ImageID string
	Args           []string
	Env            []string
	Dir            string
	UID, GID       *uint32
}

// Container is one attempt of a container and what is known of its process.
type Container struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Attempt int       `json:"attempt"`
	Image   string    `json:"image"`
	ImageID string    `json:"imageID"`
	Created time.Time `json:"created"`
	// Env and Dir are reused by exec sessions in this container.
	Env []string `json:"env"`
	Dir string   `json:"dir,omitempty"`

	dir     string
	logPath string
	proc    *shim.Process

	mu      sync.Mutex
	started *shim.Started
	exit    *shim.Exit
}

// LogPath returns the container's CRI-format log file.
func (c *Container) LogPath() string { return c.logPath }

// State is a container's process state.
type State struct {
	// Running is true while the command runs.
	Running bool
	// Started is set once the command ran.
	Started *shim.Started
	// Exit is set once it has ended, or never started (Exit.StartError).
	Exit *shim.Exit
	// Lost is true when the shim vanished without recording an exit (killed, or the node
	// rebooted): the kubelet's ContainerStatusUnknown.
	Lost bool
}

func (r *Runtime) containerDir(uid, name string, attempt int) string {
	return filepath.Join(r.podDir(uid), "containers", name, strconv.Itoa(attempt))
}

func (r *Runtime) logPath(uid, name string, attempt int) string {
	return filepath.Join(r.podDir(uid), "logs", name, strconv.Itoa(attempt)+".log")
}

// StartContainer starts an attempt of a container in sb and returns once it runs or failed to
// start (then its State has Exit.StartError).
func (r *Runtime) StartContainer(sb *Sandbox, cc ContainerConfig) (*Container, error) {
	dir := r.containerDir(sb.UID, cc.Name, cc.Attempt)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	logPath := r.logPath(sb.UID, cc.Name, cc.Attempt)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	_ = os.Remove(logPath)
	c := &Container{
		ID: newID(), Name: cc.Name, Attempt: cc.Attempt, Image: cc.Image, ImageID: cc.ImageID,
		Created: time.Now().UTC(), Env: cc.Env, Dir: cc.Dir, dir: dir, logPath: logPath,
	}
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "container.json"), data); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	spec := r.spec(sb, cc.Args, cc.Env, cc.Dir)
	spec.LogPath = logPath
	spec.UID, spec.GID = cc.UID, cc.GID
	// A few starts at a time: each re-executes the kubesvc binary, and many at once only
	// share the CPU so that all of them finish late.
	r.starts <- struct{}{}
	p, err := shim.Start(r.cfg.Exe, dir, spec)
	<-r.starts
	if err != nil {
		return nil, fmt.Errorf("runtime: start container %s: %w", cc.Name, err)
	}
	c.proc = p
	uid := sb.UID
	go func() {
		<-p.Done()
		select {
		case r.events <- uid:
		default:
		}
	}()
	return c, nil
}

// spec is the shim spec of a process in sb.
func (r *Runtime) spec(sb *Sandbox, args, env []string, dir string) shim.Spec {
	etc := filepath.Join(sb.dir, "etc")
	var mounts []shim.Mount
	for _, f := range []string{"resolv.conf", "hosts", "hostname"} {
		if _, err := os.Stat(filepath.Join(etc, f)); err == nil {
			mounts = append(mounts, shim.Mount{Source: filepath.Join(etc, f), Target: "/etc/" + f})
		}
	}
	return shim.Spec{
		Args: args, Env: env, Dir: dir, Hostname: sb.Hostname, NetNS: sb.netns, Mounts: mounts,
		Hide: []string{filepath.Join(r.cfg.DataDir, "netns")},
	}
}

// Containers returns every recorded attempt of the pod's containers by name, oldest first.
func (r *Runtime) Containers(uid string) (map[string][]*Container, error) {
	root := filepath.Join(r.podDir(uid), "containers")
	names, err := os.ReadDir(root)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	out := map[string][]*Container{}
	for _, n := range names {
		attempts, err := os.ReadDir(filepath.Join(root, n.Name()))
		if err != nil {
			continue
		}
		for _, a := range attempts {
			dir := filepath.Join(root, n.Name(), a.Name())
			var c Container
			data, err := os.ReadFile(filepath.Join(dir, "container.json"))
			if err != nil || json.Unmarshal(data, &c) != nil {
				continue
			}
			c.dir, c.logPath = dir, r.logPath(uid, c.Name, c.Attempt)
			out[c.Name] = append(out[c.Name], &c)
		}
		sort.Slice(out[n.Name()], func(i, j int) bool { return out[n.Name()][i].Attempt < out[n.Name()][j].Attempt })
	}
	return out, nil
}

// State returns the container's state from its shim's records; records that can no longer
// change (started, exit) are read once and kept. Safe for concurrent use.
func (r *Runtime) State(c *Container) State {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exit != nil {
		return State{Started: c.started, Exit: c.exit}
	}
	if c.started == nil {
		if s, ok, _ := shim.ReadStarted(c.dir); ok {
			c.started = &s
		}
	}
	shimDone := true
	if c.proc != nil {
		select {
		case <-c.proc.Done():
		default:
			shimDone = false
		}
	} else if c.started != nil {
		shimDone = !shim.Alive(c.started.ShimPID, c.started.ShimStart)
	}
	if !shimDone {
		if c.started == nil {
			// The shim reports a start failure in exit.json before it exits.
			if e, ok, _ := shim.ReadExit(c.dir); ok {
				c.exit = &e
				return State{Exit: c.exit}
			}
			return State{} // starting
		}
		return State{Running: true, Started: c.started}
	}
	// The shim writes exit.json before it exits.
	if e, ok, _ := shim.ReadExit(c.dir); ok {
		c.exit = &e
		return State{Started: c.started, Exit: c.exit}
	}
	return State{Started: c.started, Lost: true}
}

// Signal sends sig to the container's main process, as a container runtime does; SIGKILL goes
// to its whole process group, so nothing of the container survives.
func (r *Runtime) Signal(c *Container, sig syscall.Signal) error {
	s, ok, err := shim.ReadStarted(c.dir)
	if err != nil || !ok {
		return err
	}
	if !shim.Alive(s.PID, s.PIDStart) {
		return nil
	}
	target := s.PID
	if sig == syscall.SIGKILL {
		target = -s.PID
	}
	if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("runtime: signal container %s: %w", c.Name, err)
	}
	return nil
}

// RemoveContainer deletes an ended attempt's records and log.
func (r *Runtime) RemoveContainer(uid string, c *Container) error {
	_ = os.Remove(c.logPath)
	return os.RemoveAll(c.dir)
}

// ExecCommand returns an unstarted process running args in container c of sb, with the
// container's environment and working directory.
func (r *Runtime) ExecCommand(sb *Sandbox, c *Container, args []string, tty bool) (*shim.Exec, error) {
	env := c.Env
	if tty {
		env = append(append([]string{}, env...), "TERM=xterm")
	}
	return shim.Command(r.cfg.Exe, r.spec(sb, args, env, c.Dir), tty)
}
