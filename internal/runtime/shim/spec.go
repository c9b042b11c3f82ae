// Package shim starts container processes inside a pod's namespaces through a re-exec of
// kubesvc, and records their life in a state directory that outlives the agent.
//
// A container runs under a small shim process (like containerd's shim or conmon): the agent
// starts `kubesvc agent shim DIR` in a new mount namespace (and a new UTS namespace unless the
// pod uses the host's network); the shim makes its mounts private, bind-mounts the pod's
// /etc/resolv.conf, /etc/hosts and /etc/hostname, hides the runtime's namespace mounts, sets
// the hostname, enters the pod's network namespace on its locked main thread and starts the
// command from that thread. It copies the command's stdout and stderr into a CRI-format log,
// waits for it, kills what is left of its process group and writes the exit status. The shim
// runs in its own session, so it and the container survive an agent restart; the new agent
// adopts them from the state directory.
//
// `kubesvc agent nsexec` does the same set-up and then execs the command in place: it is how
// `kubectl exec` sessions, exec probes and preStop hooks run.
//
// Imported by internal/runtime and cmd/kubesvc (the re-exec entry points).
package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files in a container state directory.
const (
	specFile    = "spec.json"
	startedFile = "started.json"
	exitFile    = "exit.json"
	shimLogFile = "shim.log"
)

// Spec is what to run and in which pod context. It is JSON in the state directory (shim) or on
// file descriptor 3 (nsexec).
type Spec struct {
	// Args is the command line; Args[0] is looked up in the PATH of Env when it has no slash.
	Args []string `json:"args"`
	// Env is the environment, "NAME=value" entries.
	Env []string `json:"env"`
	// Dir is the working directory; empty means "/".
	Dir string `json:"dir,omitempty"`
	// Hostname is set in a new UTS namespace; empty keeps the host's (hostNetwork pods).
	Hostname string `json:"hostname,omitempty"`
	// NetNS is the pod's network namespace file; empty runs in the caller's namespace.
	NetNS string `json:"netns,omitempty"`
	// Mounts are bind mounts made in the process's private mount namespace. A missing target
	// is skipped (the host filesystem is never changed).
	Mounts []Mount `json:"mounts,omitempty"`
	// Hide lists directories whose mounts are detached in the private mount namespace (the
	// runtime's namespace files, so a container does not pin other pods' namespaces).
	Hide []string `json:"hide,omitempty"`
	// LogPath is the CRI-format log file (shim only).
	LogPath string `json:"logPath,omitempty"`
	// UID and GID, when set, are the credentials of the command.
	UID *uint32 `json:"uid,omitempty"`
	GID *uint32 `json:"gid,omitempty"`
}

// Mount is a read-only or read-write bind mount.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Started is written by the shim once the command runs.
type Started struct {
	// ShimPID and ShimStart identify the shim process (start time in clock ticks since boot,
	// /proc/PID/stat field 22), so a reused PID is not mistaken for it.
	ShimPID   int       `json:"shimPID"`
	ShimStart uint64    `json:"shimStart"`
	PID       int       `json:"pid"`
	PIDStart  uint64    `json:"pidStart"`
	StartedAt time.Time `json:"startedAt"`
}

// Exit is written by the shim when the command has ended (or could not start).
type Exit struct {
	// Code is the exit code; 128+N for a death by signal N, as container runtimes report.
	Code int `json:"code"`
	// Signal is the signal that killed the command, if any.
	Signal string `json:"signal,omitempty"`
	// StartError is set when the command never ran (Code is 128).
	StartError string    `json:"startError,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
}

// writeJSON writes v to dir/name atomically.
func writeJSON(dir, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// readJSON reads dir/name into v; a missing file returns fs.ErrNotExist.
func readJSON(dir, name string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// ReadStarted returns the shim's start record in dir, or ok=false when there is none.
func ReadStarted(dir string) (Started, bool, error) {
	var s Started
	err := readJSON(dir, startedFile, &s)
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	return s, err == nil, err
}

// ReadExit returns the exit record in dir, or ok=false when the command has not ended.
func ReadExit(dir string) (Exit, bool, error) {
	var e Exit
	err := readJSON(dir, exitFile, &e)
	if errors.Is(err, fs.ErrNotExist) {
		return e, false, nil
	}
	return e, err == nil, err
}

// procStat returns the fields of /proc/PID/stat after the command name (field 3 on).
func procStat(pid int) ([]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	// comm (field 2) may contain spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return fields, nil
}

// ProcessStart returns the start time of pid in clock ticks since boot (/proc/PID/stat field
// 22), or an error when there is no such process.
func ProcessStart(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Alive reports whether pid still runs and is the process that started at start ticks (a
// zombie counts as dead).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	f, err := procStat(pid)
	if err != nil || f[0] == "Z" {
		return false
	}
	got, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && got == start
}
