package toolbox

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// runPause waits until ctx ends (the command wires SIGTERM and SIGINT to it). As PID 1 of a
// PID namespace it also reaps orphaned children, as Kubernetes' pause does.
func runPause(ctx context.Context, _ []string, _, _ io.Writer) error {
	if os.Getpid() != 1 {
		<-ctx.Done()
		return nil
	}
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	for {
		reap()
		select {
		case <-ctx.Done():
			return nil
		case <-chld:
		}
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
