package userspace

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// maxDialAttempts bounds the endpoints tried for one connection.
const maxDialAttempts = 3

// tcpListener serves one TCP address of a service port.
type tcpListener struct {
	p       *Proxier
	svc     *service
	dest    dest
	fam     int // famOf the listening address
	ln      *net.TCPListener
	use     *atomic.Int64 // connections on the VIP (nil on node addresses)
	dropped atomic.Int32  // connections held by drop
}

func (l *tcpListener) service() *service { return l.svc }
func (l *tcpListener) destination() dest { return l.dest }

// close stops accepting; established connections continue until they end (like conntrack
// entries in nftables mode) or until Proxier.Close.
func (l *tcpListener) close() { _ = l.ln.Close() }

func (p *Proxier) listenTCP(k listenerKey, svc *service, d dest) (listener, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(k.addr))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", k, err)
	}
	l := &tcpListener{p: p, svc: svc, dest: d, fam: famOf(k.addr.Addr()), ln: ln, use: p.useOf(k.addr.Addr())}
	p.wg.Add(1)
	go l.serve()
	return l, nil
}

// serve accepts until the listener is closed, backing off on errors such as EMFILE instead
// of spinning (a cost KEP-6032 lists for naive accept loops).
func (l *tcpListener) serve() {
	defer l.p.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.p.log.Error(err, "userspace proxy: accept failed; retrying", "service", l.svc.name.String(), "address", l.ln.Addr().String(), "delay", delay)
			select {
			case <-time.After(delay):
			case <-l.p.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		l.p.wg.Add(1)
		go l.handle(c)
	}
}

// handle proxies one accepted connection.
func (l *tcpListener) handle(c *net.TCPConn) {
	defer l.p.wg.Done()
	untrack, ok := l.p.track(c)
	if !ok {
		return
	}
	defer untrack()
	if l.use != nil {
		l.use.Add(1)
		defer l.use.Add(-1)
	}
	client := addrPortOf(c.RemoteAddr()).Addr()
	pol := l.svc.pol[l.fam].Load()
	list := l.p.backendsFor(pol, l.dest, client)
	if len(list) == 0 {
		l.drop(c)
		return
	}
	var avoid []netip.AddrPort
	for range maxDialAttempts {
		b, ok := l.svc.pick(client, list, pol.affinity, avoid, l.p.now())
		if !ok {
			break
		}
		bc, err := l.p.dial(b)
		if err == nil {
			l.p.splice(c, bc)
			return
		}
		if l.p.ctx.Err() != nil {
			break
		}
		avoid = append(avoid, b)
	}
	// No endpoint answered: the client sees a reset, as when a DNAT target refuses.
	_ = c.SetLinger(0)
	_ = c.Close()
}

// drop holds a connection that policy drops (PX-T-02/03) without data until the client
// gives up or DropTimeout passes, then resets it: the client sees a hang, not a refusal.
// Beyond MaxDropped held connections, it resets at once.
func (l *tcpListener) drop(c *net.TCPConn) {
	defer l.dropped.Add(-1)
	_ = c.SetLinger(0)
	if int(l.dropped.Add(1)) <= l.p.cfg.MaxDropped {
		_ = c.SetReadDeadline(time.Now().Add(l.p.cfg.DropTimeout))
		_, _ = io.Copy(io.Discard, c)
	}
	_ = c.Close()
}

func (p *Proxier) dial(b netip.AddrPort) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	c, err := d.DialContext(p.ctx, "tcp", b.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// splice copies both directions between client and backend until both ended. A clean EOF
// is forwarded as a half-close (FIN); an error (reset, Close) ends both directions with a
// reset so neither side waits for the other forever.
func (p *Proxier) splice(client, backend *net.TCPConn) {
	untrack, ok := p.track(backend)
	if !ok {
		return
	}
	defer untrack()
	done := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		p.copyHalf(client, backend)
	}()
	p.copyHalf(backend, client)
	<-done
	_ = client.Close()
	_ = backend.Close()
}

// copyHalf copies src to dst: (*TCPConn).ReadFrom splices between TCP sockets, or with
// Config.CopyBuffer a plain read/write loop does.
func (p *Proxier) copyHalf(dst, src *net.TCPConn) {
	var err error
	if p.cfg.CopyBuffer > 0 {
		buf := make([]byte, p.cfg.CopyBuffer)
		_, err = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	} else {
		_, err = dst.ReadFrom(src)
	}
	if err != nil {
		_ = src.SetLinger(0)
		_ = dst.SetLinger(0)
		_ = src.Close()
		_ = dst.Close()
		return
	}
	_ = dst.CloseWrite()
}

// addrPortOf returns the unmapped address of a TCP or UDP net.Addr.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
