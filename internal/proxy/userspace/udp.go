package userspace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxDatagram is the largest UDP payload (IPv4).
const maxDatagram = 65535

// udpListener serves one UDP address of a service port. Each client address has a session:
// a socket connected to the endpoint chosen for it, whose replies go back to the client from
// the service address.
type udpListener struct {
	p    *Proxier
	svc  *service
	dest dest
	fam  int // famOf the listening address
	conn *net.UDPConn
	use  *atomic.Int64 // sessions on the VIP (nil on node addresses)

	mu       sync.Mutex
	closed   bool
	sessions map[netip.AddrPort]*udpSession
}

// udpSession is one client's flow. pol is the policy its endpoint was last checked against;
// only the listener's read loop touches it.
type udpSession struct {
	client  netip.AddrPort
	backend netip.AddrPort
	conn    *net.UDPConn
	pol     *policy
	last    atomic.Int64 // unix nanoseconds of the last datagram either way
	ended   atomic.Bool
	untrack func()
}

func (l *udpListener) service() *service { return l.svc }
func (l *udpListener) destination() dest { return l.dest }

// close ends the socket and every session (their replies could not be sent anyway).
func (l *udpListener) close() {
	l.mu.Lock()
	l.closed = true
	sessions := l.sessions
	l.sessions = nil
	l.mu.Unlock()
	_ = l.conn.Close()
	for _, s := range sessions {
		l.end(s)
	}
}

func (p *Proxier) listenUDP(k listenerKey, svc *service, d dest) (listener, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(k.addr))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", k, err)
	}
	l := &udpListener{p: p, svc: svc, dest: d, fam: famOf(k.addr.Addr()), conn: conn, use: p.useOf(k.addr.Addr()),
		sessions: make(map[netip.AddrPort]*udpSession)}
	p.wg.Add(1)
	go l.serve()
	return l, nil
}

// serve reads client datagrams and forwards each on its session until the socket closes.
func (l *udpListener) serve() {
	defer l.p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. a queued ICMP error; the socket itself is fine
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		s := l.session(client)
		if s == nil {
			continue // dropped by policy, or no endpoint could be reached
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := s.conn.Write(buf[:n]); err != nil {
			l.end(s)
		}
	}
}

// session returns client's session, moving it to another endpoint when its endpoint is no
// longer usable (an endpoint that went away is left on the next datagram, spec §5.9's goal
// for UDP), or nil when the datagram is to be dropped.
func (l *udpListener) session(client netip.AddrPort) *udpSession {
	pol := l.svc.pol[l.fam].Load()
	l.mu.Lock()
	s := l.sessions[client]
	l.mu.Unlock()
	if s != nil && s.pol == pol {
		return s
	}
	list := l.p.backendsFor(pol, l.dest, client.Addr())
	if s != nil {
		if list.contains(s.backend) {
			s.pol = pol
			return s
		}
		l.end(s)
	}
	l.mu.Lock()
	full := len(l.sessions) >= l.p.cfg.MaxUDPSessions
	l.mu.Unlock()
	if full {
		return nil
	}
	var avoid []netip.AddrPort
	for range maxDialAttempts {
		b, ok := l.svc.pick(client.Addr(), list, pol.affinity, avoid, l.p.now())
		if !ok {
			return nil
		}
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b))
		if err != nil {
			avoid = append(avoid, b)
			continue
		}
		s = &udpSession{client: client, backend: b, conn: conn, pol: pol}
		s.last.Store(time.Now().UnixNano())
		untrack, ok := l.p.track(conn)
		if !ok {
			return nil
		}
		s.untrack = untrack
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			untrack()
			return nil
		}
		l.sessions[client] = s
		l.mu.Unlock()
		if l.use != nil {
			l.use.Add(1)
		}
		l.p.wg.Add(1)
		go l.reply(s)
		return s
	}
	return nil
}

// reply forwards the endpoint's datagrams to the client until the session is idle for
// UDPIdleTimeout, its endpoint refuses (ICMP port unreachable) or it is ended. It waits for
// readability without holding a buffer: a receive buffer is taken from a pool only while a
// datagram is there, so idle sessions cost a socket and a goroutine, not 64 KiB each.
func (l *udpListener) reply(s *udpSession) {
	defer l.p.wg.Done()
	defer s.untrack()
	defer l.end(s)
	idle := l.p.cfg.UDPIdleTimeout
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	var rerr error
	recv := func(fd uintptr) bool {
		bp := datagramPool.Get().(*[]byte)
		defer datagramPool.Put(bp)
		n, _, err := unix.Recvfrom(int(fd), *bp, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return false
		}
		if err != nil {
			rerr = err
			return true
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := l.conn.WriteToUDPAddrPort((*bp)[:n], s.client); err != nil && errors.Is(err, net.ErrClosed) {
			rerr = err
		}
		return true
	}
	for rerr == nil {
		_ = s.conn.SetReadDeadline(time.Unix(0, s.last.Load()).Add(idle))
		if err := rc.Read(recv); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, s.last.Load())) < idle {
				continue // a client datagram moved the deadline
			}
			return
		}
	}
}

// datagramPool holds receive buffers for the largest UDP payload.
var datagramPool = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// end forgets s (if it is still client's session) and closes its socket.
func (l *udpListener) end(s *udpSession) {
	if s.ended.Swap(true) {
		return
	}
	if l.use != nil {
		l.use.Add(-1)
	}
	l.mu.Lock()
	if l.sessions[s.client] == s {
		delete(l.sessions, s.client)
	}
	l.mu.Unlock()
	_ = s.conn.Close()
}
