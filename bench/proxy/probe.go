package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// connectRTT opens a TCP connection to addr from the node and returns how long connect(2)
// took: one SYN / SYN-ACK round trip through the node's netfilter hooks. The socket is closed
// with an RST (SO_LINGER 0), so no TIME_WAIT is left behind. timeout bounds a SYN that is
// dropped.
func connectRTT(addr netip.AddrPort, timeout time.Duration) (time.Duration, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("SO_SNDTIMEO: %w", err)
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return 0, fmt.Errorf("SO_LINGER: %w", err)
	}
	sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	t0 := time.Now()
	err = unix.Connect(fd, sa)
	if errors.Is(err, unix.EINTR) {
		// A signal (Go's preemption SIGURG) interrupted the wait; the handshake goes on.
		err = awaitConnect(fd, t0.Add(timeout))
	}
	d := time.Since(t0)
	if errors.Is(err, unix.EINPROGRESS) {
		err = fmt.Errorf("connect %s: timed out after %v", addr, timeout)
	} else if err != nil {
		err = fmt.Errorf("connect %s: %w", addr, err)
	}
	return d, err
}

// awaitConnect waits for a connect(2) that is in progress on fd and returns its result.
func awaitConnect(fd int, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.EINPROGRESS
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) || err == nil && n == 0 {
			continue
		}
		if err != nil {
			return err
		}
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		if soErr != 0 {
			return unix.Errno(soErr)
		}
		return nil
	}
}

// probeTimeout bounds one connect attempt. Unprogrammed ClusterIPs are refused by the sink at
// once, so this only matters if a SYN is lost.
const probeTimeout = 100 * time.Millisecond

// waitConnect starts a connect attempt to addr every interval, each on a socket of its own and
// without waiting for the earlier ones (an attempt whose SYN is dropped does not hold up the
// next), until one succeeds. It returns the time that attempt completed, the number of
// attempts and how many of them timed out (SYN dropped rather than refused).
func waitConnect(ctx context.Context, addr netip.AddrPort, interval time.Duration) (time.Time, int, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		timeouts int
		lastErr  error
		wg       sync.WaitGroup
	)
	won := make(chan time.Time, 1)
	attempt := func() {
		defer wg.Done()
		d := net.Dialer{Timeout: probeTimeout}
		c, err := d.DialContext(ctx, "tcp4", addr.String())
		if err == nil {
			ok := time.Now()
			if tc, isTCP := c.(*net.TCPConn); isTCP {
				_ = tc.SetLinger(0)
			}
			c.Close()
			select {
			case won <- ok:
			default:
			}
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() == nil {
			lastErr = err
			if ne, isNet := errors.AsType[net.Error](err); isNet && ne.Timeout() {
				timeouts++
			}
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	attempts := 0
	for {
		attempts++
		wg.Add(1)
		go attempt()
		select {
		case ok := <-won:
			cancel()
			wg.Wait()
			return ok, attempts, timeouts, nil
		case <-ctx.Done():
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			return time.Time{}, attempts, timeouts, fmt.Errorf("%w after %d attempts; last: %v", ctx.Err(), attempts, lastErr)
		case <-tick.C:
		}
	}
}

// waitRefused waits until a connect to addr fails (the proxy removed the Service).
func waitRefused(ctx context.Context, addr netip.AddrPort, interval time.Duration) error {
	for {
		if _, err := connectRTT(addr, probeTimeout); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still connects: %w", addr, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// latencySamples measures n connect round trips to each of the two address lists, alternating
// between them (so both see the same machine load), and returns the two sample sets. Targets
// within a list are used round-robin.
func latencySamples(n int, a, b []netip.AddrPort) (la, lb []time.Duration, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	la, lb = make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		d, err := connectRTT(a[i%len(a)], time.Second)
		if err != nil {
			return nil, nil, err
		}
		la = append(la, d)
		d, err = connectRTT(b[i%len(b)], time.Second)
		if err != nil {
			return nil, nil, err
		}
		lb = append(lb, d)
	}
	return la, lb, nil
}
