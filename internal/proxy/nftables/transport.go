package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"kubesvc/internal/runtime/netns"
)

// transport sends google/nftables' batches on a raw NETLINK_NETFILTER socket with an ACK
// requested for the last operation only.
//
// Why: google/nftables v0.3.0 asks an ACK for every message of a batch and reads them with one
// recvmsg each; a full sync at 10k Services × 10 endpoints is ~350k messages, and those ACKs
// (and their socket buffer space) cost more than the kernel's work. The kernel reports an
// error for every failing message whether or not an ACK was asked (nfnetlink_rcv_batch), and
// acknowledges the last message even when the batch aborts, so reading up to the last
// message's ACK or error is enough. The library talks to us through its test-dial hook
// (nltest): we answer each of its per-message ACK reads with a synthetic ACK, and keep the
// batch's real outcome in err.
type transport struct {
	fd int

	mu  sync.Mutex
	err error // outcome of the last batch
	// kernel is how long the last batch's sendmsg took: the kernel processes the whole batch
	// (and commits it) inside that call.
	kernel time.Duration
}

// newTransport opens the socket in the network namespace at nsPath ("" = the caller's).
func newTransport(nsPath string) (*transport, error) {
	t := &transport{fd: -1}
	open := func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		t.fd = fd
		return nil
	}
	var err error
	if nsPath == "" {
		err = open()
	} else {
		err = netns.Do(nsPath, open)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(t.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.close()
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// The kernel refuses a batch larger than the send buffer; a full sync at 10k Services is
	// tens of MB. Limits, not allocations (nft sets them the same way).
	const size = 1 << 30 // capped by the kernel at INT_MAX/2
	if err := errors.Join(
		unix.SetsockoptInt(t.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size),
		unix.SetsockoptInt(t.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20),
		unix.SetsockoptTimeval(t.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 120}),
	); err != nil {
		t.close()
		return nil, fmt.Errorf("netlink socket options: %w", err)
	}
	return t, nil
}

func (t *transport) close() {
	if t.fd >= 0 {
		_ = unix.Close(t.fd)
		t.fd = -1
	}
}

// takeErr returns and clears the outcome of the last batch.
func (t *transport) takeErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.err
	t.err = nil
	return err
}

// dial is the nltest.Func google/nftables calls: with messages, it is a SendMessages; with
// nil, a Receive, answered with one synthetic ACK.
func (t *transport) dial(msgs []netlink.Message) ([]netlink.Message, error) {
	if msgs == nil {
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 20)}}, nil
	}
	err := t.send(msgs)
	t.mu.Lock()
	t.err = errors.Join(t.err, err)
	t.mu.Unlock()
	return nil, nil
}

func (t *transport) send(msgs []netlink.Message) error {
	if len(msgs) < 3 || msgs[0].Header.Type != netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN) {
		return errors.New("nftables transport: only batches are supported")
	}
	last := len(msgs) - 2 // the last operation, before BATCH_END
	size := 0
	for i := range msgs {
		size += int(msgs[i].Header.Length)
	}
	buf := make([]byte, 0, size)
	for i := range msgs {
		if i > 0 && i < last {
			msgs[i].Header.Flags &^= netlink.Acknowledge
		}
		if i == last {
			msgs[i].Header.Flags |= netlink.Acknowledge
		}
		b, err := msgs[i].MarshalBinary()
		if err != nil {
			return fmt.Errorf("marshal netlink message: %w", err)
		}
		buf = append(buf, b...)
	}
	start := time.Now()
	err := unix.Sendto(t.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	t.mu.Lock()
	t.kernel = time.Since(start)
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("netlink send (%d bytes): %w", len(buf), err)
	}
	return t.wait(msgs[last].Header.Sequence)
}

// wait reads until the ACK or error of message seq; it returns the errors seen on the way.
func (t *transport) wait(seq uint32) error {
	rb := make([]byte, 1<<16)
	var errs []error
	for {
		n, _, err := unix.Recvfrom(t.fd, rb, 0)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("netlink receive: %w", err))...)
		}
		nms, err := syscall.ParseNetlinkMessage(rb[:n])
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("netlink parse: %w", err))...)
		}
		for _, m := range nms {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 20 {
				continue
			}
			if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 && len(errs) < 10 {
				errs = append(errs, fmt.Errorf("message %d: %w", binary.NativeEndian.Uint32(m.Data[12:16]), syscall.Errno(errno)))
			}
			if binary.NativeEndian.Uint32(m.Data[12:16]) == seq {
				return errors.Join(errs...)
			}
		}
	}
}
