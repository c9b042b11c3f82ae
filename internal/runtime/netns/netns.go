// Package netns runs code inside Linux network namespaces and creates persistent ones, the one
// place in kubesvc that calls setns(2) and unshare(2) for network namespaces.
//
// Every function that changes a thread's namespace does so on a dedicated goroutine that has
// locked its OS thread. The goroutine switches back to the original namespace before it
// unlocks; if switching back fails it exits still locked, so the Go runtime destroys the
// thread instead of reusing it in the wrong namespace (the tailscale newSysConn caution).
//
// Persistent namespaces are bind mounts of /proc/thread-self/ns/net on a file, as `ip netns
// add` makes them; they live in the mount namespace of the caller.
//
// Imported by internal/runtime, internal/agent and internal/testcluster.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// selfPath is the network namespace of the calling thread.
const selfPath = "/proc/thread-self/ns/net"

// Do runs fn on a locked OS thread whose network namespace is the one at path (a bind-mounted
// namespace file or /proc/<pid>/ns/net). Sockets fn creates stay in that namespace after Do
// returns. Do is safe for concurrent use.
func Do(path string, fn func() error) error {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer unix.Close(target)
	return onThread(func() error {
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", path, err)
		}
		return fn()
	})
}

// onThread runs body on a fresh locked thread and restores the thread's network namespace
// afterwards; the thread dies if that fails.
func onThread(body func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(selfPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		err = body()
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			// Exit locked: the runtime terminates this thread rather than reuse it.
			errc <- errors.Join(err, fmt.Errorf("restore network namespace: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// New creates a network namespace with its loopback up and bind-mounts it on path (the file is
// created; its directory must exist). The caller's namespace does not change.
func New(path string) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create namespace file: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		if err := unix.Mount(selfPath, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := LoopbackUp(path); err != nil {
		_ = Delete(path)
		return err
	}
	return nil
}

// Delete unmounts the namespace file at path (lazily, so open users keep it) and removes the
// file. The namespace itself ends when its last user does. A missing path is not an error.
func Delete(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace file: %w", err)
	}
	return nil
}

// IsMounted reports whether path is a mounted network namespace.
func IsMounted(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Inode returns the inode number identifying the network namespace at path.
func Inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	return st.Ino, nil
}

// LoopbackUp sets lo up in the namespace at path.
func LoopbackUp(path string) error {
	return Do(path, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("get lo flags: %w", err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		return nil
	})
}

// Dial connects from inside the namespace at path. An empty path dials from the caller's
// namespace.
func Dial(ctx context.Context, path, network, addr string) (net.Conn, error) {
	d := net.Dialer{}
	if path == "" {
		return d.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err := Do(path, func() error {
		// The socket is created here, in the namespace; the non-blocking connect may finish
		// on any thread.
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// DialTimeout is Dial with a timeout.
func DialTimeout(path, network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Dial(ctx, path, network, addr)
}

// Listen listens inside the namespace at path ("" is the caller's).
func Listen(path, network, addr string) (net.Listener, error) {
	if path == "" {
		return net.Listen(network, addr)
	}
	var l net.Listener
	err := Do(path, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// WriteSysctl writes value to /proc/sys/<key> (key with slashes, e.g. "net/ipv4/ip_forward")
// as seen from the namespace at path ("" is the caller's); network sysctls are per namespace.
func WriteSysctl(path, key, value string) error {
	write := func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	}
	if path == "" {
		return write()
	}
	return Do(path, write)
}
