package peertest

import "syscall"

// sysProcAttr puts the peer in its own process group (so Stop reaches its children) and asks
// the kernel to SIGKILL it when the thread that started it dies, so a test binary that
// crashes or times out does not leak servers. Pdeathsig follows the starting OS thread, not
// the whole process (golang/go#27505); Go rarely retires threads, and tb.Cleanup covers the
// normal path.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
