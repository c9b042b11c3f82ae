package dns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// errNoUpstream is returned when no upstream answered.
var errNoUpstream = errors.New("dns: no upstream answered")

// forwarder sends questions outside the served zones to the upstream servers, over the
// client's transport, trying each upstream once from a random one (CoreDNS forward's default
// "random" policy), and caches the replies.
type forwarder struct {
	upstreams []string
	timeout   time.Duration
	cache     *respCache // nil: no cache
	metrics   *metrics
}

// normalizeUpstream adds port 53 to an upstream given as a bare IP.
func normalizeUpstream(u string) (string, error) {
	if ip := net.ParseIP(strings.Trim(u, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		return "", fmt.Errorf("upstream %q: %w", u, err)
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("upstream %q: host is not an IP address", u)
	}
	return net.JoinHostPort(host, port), nil
}

// forward answers req from the cache or the upstreams. source is "cache" or "forward" (the
// plugin label of coredns_dns_responses_total).
func (f *forwarder) forward(ctx context.Context, req *mdns.Msg, proto string) (m *mdns.Msg, source string) {
	if f.cache != nil {
		if m, kind := f.cache.get(req); m != nil {
			f.metrics.cacheHit(kind)
			return m, "cache"
		}
		f.metrics.cacheMiss()
	}
	m, err := f.exchange(ctx, req, proto)
	if err != nil {
		return errorReply(req, mdns.RcodeServerFailure), "forward"
	}
	if f.cache != nil {
		f.cache.put(req, m)
		f.metrics.cacheSize(f.cache)
	}
	return m, "forward"
}

// exchange sends req to the upstreams in turn until one answers.
func (f *forwarder) exchange(ctx context.Context, req *mdns.Msg, proto string) (*mdns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, errNoUpstream
	}
	out := req.Copy()
	out.Id = mdns.Id()
	size := uint16(mdns.MinMsgSize)
	if opt := req.IsEdns0(); opt != nil && opt.UDPSize() > size {
		size = opt.UDPSize()
	}
	c := &mdns.Client{Net: proto, Timeout: f.timeout, UDPSize: size}
	start := rand.IntN(len(f.upstreams)) // #nosec G404 -- load spreading, not security
	err := errNoUpstream
	for i := range f.upstreams {
		if ctx.Err() != nil {
			break
		}
		to := f.upstreams[(start+i)%len(f.upstreams)]
		t0 := time.Now()
		m, _, e := c.ExchangeContext(ctx, out, to)
		if m != nil && e != nil && m.Id == out.Id && proto == "udp" && isOverflow(e) {
			// An upstream sent more than fits without EDNS0: answer "truncated" so the
			// client retries over TCP (CoreDNS does the same).
			m.Answer, m.Ns, m.Extra, m.Truncated, e = nil, nil, nil, true, nil
		}
		if e != nil {
			err = fmt.Errorf("dns: forward to %s: %w", to, e)
			continue
		}
		f.metrics.upstream(to, m.Rcode, time.Since(t0))
		if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, req.Question[0].Name) ||
			m.Question[0].Qtype != req.Question[0].Qtype {
			return errorReply(req, mdns.RcodeFormatError), nil
		}
		m.Id = req.Id
		return m, nil
	}
	return nil, err
}

func isOverflow(err error) bool {
	return errors.Is(err, mdns.ErrBuf) || strings.Contains(err.Error(), "overflow")
}
