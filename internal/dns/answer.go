package dns

import (
	"context"
	"math"
	"net"
	"strings"

	mdns "github.com/miekg/dns"
)

// Reverse zones served besides the cluster zone. Names in them that the cluster does not
// know fall through to the upstreams (CoreDNS's `fallthrough in-addr.arpa ip6.arpa`).
var reverseZones = []string{"in-addr.arpa.", "ip6.arpa."}

// backend answers questions inside the served zones from the store.
type backend struct {
	st       *store
	zones    []string // lower-case FQDNs: the cluster zone, then reverseZones
	primary  string   // the cluster zone
	ttl      uint32
	podMode  string
	localIPs []string    // non-loopback listen IPs, for NS records
	synced   func() bool // informers synced (DNS-C-04)
	lookup   lookupFunc  // resolves CNAME targets outside the zone
}

// lookupFunc resolves name/qtype as a client of the whole server would (req supplies the
// flags and EDNS0 options); it returns nil on failure.
type lookupFunc func(ctx context.Context, req *mdns.Msg, name string, qtype uint16) *mdns.Msg

// matchZone returns the length of the longest served zone that holds name, or -1.
func (b *backend) matchZone(name string) int {
	best := -1
	for _, z := range b.zones {
		if len(z) > best && mdns.IsSubDomain(z, name) {
			best = len(z)
		}
	}
	return best
}

// answer answers req, whose question lies in the served zone of length zoneLen. ok is false
// when the question falls through to the upstreams. Rules per type follow CoreDNS's
// kubernetes plugin (ServeDNS and plugin/backend_lookup.go).
func (b *backend) answer(ctx context.Context, req *mdns.Msg, zoneLen int) (m *mdns.Msg, ok bool) {
	q := req.Question[0]
	qname := q.Name
	zone := qname[len(qname)-zoneLen:] // the zone as the query spells it
	name := strings.ToLower(qname)
	var (
		recs, extra []mdns.RR
		tc          bool
		err         error
	)
	switch q.Qtype {
	case mdns.TypeA, mdns.TypeAAAA:
		recs, tc, err = b.addrs(ctx, req, zone, qname, q.Qtype, nil, true)
	case mdns.TypeTXT:
		var es []entry
		if es, err = b.services(name, zone, mdns.TypeTXT); err == nil && len(es) > 0 {
			recs = []mdns.RR{&mdns.TXT{Hdr: hdr(qname, mdns.TypeTXT, es[0].ttl), Txt: []string{es[0].text}}}
		}
	case mdns.TypeCNAME:
		var es []entry
		if es, err = b.services(name, zone, mdns.TypeCNAME); err == nil && len(es) > 0 && net.ParseIP(es[0].host) == nil {
			recs = []mdns.RR{&mdns.CNAME{Hdr: hdr(qname, mdns.TypeCNAME, es[0].ttl), Target: mdns.Fqdn(es[0].host)}}
		}
	case mdns.TypePTR:
		recs, err = b.ptr(name, zone, qname)
	case mdns.TypeMX:
		_, err = b.services(name, zone, mdns.TypeMX) // Services are never mail exchangers
	case mdns.TypeSRV:
		recs, extra, err = b.srv(name, zone, qname)
	case mdns.TypeSOA:
		if len(qname) == len(zone) {
			recs = []mdns.RR{b.soa(zone)}
		}
	case mdns.TypeAXFR, mdns.TypeIXFR:
		return errorReply(req, mdns.RcodeRefused), true
	case mdns.TypeNS:
		if name == zone {
			recs, extra, err = b.ns(zone, qname)
			break
		}
		fallthrough
	default:
		// Only existence matters: NODATA or NXDOMAIN.
		_, _, err = b.addrs(ctx, req, zone, qname, mdns.TypeA, nil, false)
	}
	switch {
	case isNameError(err):
		for _, rz := range reverseZones {
			if mdns.IsSubDomain(rz, name) {
				return nil, false
			}
		}
		if !b.synced() {
			return b.negative(req, zone, mdns.RcodeServerFailure), true
		}
		return b.negative(req, zone, mdns.RcodeNameError), true
	case err != nil:
		return errorReply(req, mdns.RcodeServerFailure), true
	case len(recs) == 0:
		return b.negative(req, zone, mdns.RcodeSuccess), true
	}
	m = new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.Truncated = tc
	m.Answer = recs
	m.Extra = extra
	return m, true
}

func hdr(name string, t uint16, ttl uint32) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: ttl}
}

// errorReply is an empty reply with rcode.
func errorReply(req *mdns.Msg, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(req, rcode)
	return m
}

// negative is an authoritative reply with rcode and the zone's SOA in the authority section.
func (b *backend) negative(req *mdns.Msg, zone string, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(req, rcode)
	m.Authoritative = true
	m.Ns = []mdns.RR{b.soa(zone)}
	return m
}

// soa is the zone's SOA record: TTL min(ttl, 300), minimum TTL ttl (DNS-C-01), serial the
// time of the last cache change.
func (b *backend) soa(zone string) *mdns.SOA {
	ttl := min(b.ttl, 300)
	return &mdns.SOA{
		Hdr:     hdr(zone, mdns.TypeSOA, ttl),
		Ns:      "ns.dns." + zone,
		Mbox:    "hostmaster." + zone,
		Serial:  b.st.serial(),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  b.ttl,
	}
}

// lockedServices is services under the store's read lock.
func (b *backend) lockedServices(name, zone string, qtype uint16) ([]entry, error) {
	b.st.mu.RLock()
	defer b.st.mu.RUnlock()
	return b.services(name, zone, qtype)
}

// addrs returns the A or AAAA answer for qname: addresses, and CNAMEs followed inside the
// zone or, when resolve is set, resolved through lookup (DNS-06). prev holds the CNAMEs of the
// chain so far.
func (b *backend) addrs(ctx context.Context, req *mdns.Msg, zone, qname string, qtype uint16, prev []mdns.RR, resolve bool) (recs []mdns.RR, tc bool, err error) {
	name := strings.ToLower(qname)
	es, err := b.lockedServices(name, zone, qtype)
	if err != nil {
		return nil, false, err
	}
	var seen map[string]struct{}
	if len(es) > 1 {
		seen = make(map[string]struct{}, len(es))
	}
	for _, e := range es {
		t, ip := e.hostType()
		switch t {
		case mdns.TypeCNAME:
			target := mdns.Fqdn(e.host)
			if name == target || mdns.IsSubDomain(name, target) {
				continue // x CNAME x (or below x) would loop
			}
			if len(prev) > maxCNAMEChain || duplicateCNAME(target, prev) {
				continue
			}
			cname := &mdns.CNAME{Hdr: hdr(qname, mdns.TypeCNAME, e.ttl), Target: target}
			if mdns.IsSubDomain(zone, target) {
				next, ntc, nerr := b.addrs(ctx, req, zone, target, qtype, append(prev, cname), resolve)
				if nerr == nil && len(next) > 0 {
					recs = append(recs, cname)
					recs = append(recs, next...)
				}
				tc = tc || ntc
				continue
			}
			if !resolve {
				continue
			}
			markUpstream(ctx)
			m1 := b.lookup(ctx, req, target, qtype)
			if m1 == nil {
				continue
			}
			tc = tc || m1.Truncated
			recs = append(recs, cname)
			recs = append(recs, m1.Answer...)
		case mdns.TypeA, mdns.TypeAAAA:
			if t != qtype {
				continue
			}
			if seen != nil {
				if _, dup := seen[e.host]; dup {
					continue
				}
				seen[e.host] = struct{}{}
			}
			if t == mdns.TypeA {
				recs = append(recs, &mdns.A{Hdr: hdr(qname, mdns.TypeA, e.ttl), A: ip})
			} else {
				recs = append(recs, &mdns.AAAA{Hdr: hdr(qname, mdns.TypeAAAA, e.ttl), AAAA: ip})
			}
		}
	}
	return recs, tc, nil
}

func duplicateCNAME(target string, prev []mdns.RR) bool {
	for _, rr := range prev {
		if c, ok := rr.(*mdns.CNAME); ok && c.Target == target {
			return true
		}
	}
	return false
}

// srv returns the SRV answer and the targets' addresses (DNS-02, DNS-03): priority 0,
// weight ⌊100 / entries⌋ at least 1 (DNS-C-05), one record per (target, port).
func (b *backend) srv(name, zone, qname string) (recs, extra []mdns.RR, err error) {
	es, err := b.lockedServices(name, zone, mdns.TypeSRV)
	if err != nil {
		return nil, nil, err
	}
	type item struct {
		name, addr string
		port       int32
	}
	dup := map[item]struct{}{}
	total := 100 * len(es)
	for _, e := range es {
		if e.port == -1 {
			continue
		}
		// The float arithmetic of CoreDNS, so weights agree exactly.
		w1 := 100.0 / float64(total)
		w1 *= 100
		weight := uint16(math.Floor(w1))
		if weight == 0 {
			weight = 1
		}
		t, ip := e.hostType()
		if t != mdns.TypeA && t != mdns.TypeAAAA {
			continue // CNAME entries are filtered by services; TXT never reaches here
		}
		target := mdns.Fqdn(e.target)
		if _, ok := dup[item{name: target, port: e.port}]; !ok {
			dup[item{name: target, port: e.port}] = struct{}{}
			recs = append(recs, &mdns.SRV{Hdr: hdr(qname, mdns.TypeSRV, e.ttl), Priority: 0, Weight: weight,
				Port: uint16(e.port), Target: target}) // #nosec G115 -- validated port
		}
		if _, ok := dup[item{name: target, addr: e.host}]; !ok {
			dup[item{name: target, addr: e.host}] = struct{}{}
			extra = append(extra, addressRR(target, t, ip, e.ttl))
		}
	}
	return recs, extra, nil
}

func addressRR(name string, t uint16, ip net.IP, ttl uint32) mdns.RR {
	if t == mdns.TypeA {
		return &mdns.A{Hdr: hdr(name, mdns.TypeA, ttl), A: ip}
	}
	return &mdns.AAAA{Hdr: hdr(name, mdns.TypeAAAA, ttl), AAAA: ip}
}

// ns returns the NS answer at the zone apex and the name servers' addresses.
func (b *backend) ns(zone, qname string) (recs, extra []mdns.RR, err error) {
	es, err := b.lockedServices("ns.dns."+strings.ToLower(zone), zone, mdns.TypeNS)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, e := range es {
		t, ip := e.hostType()
		if t != mdns.TypeA && t != mdns.TypeAAAA {
			continue
		}
		target := mdns.Fqdn(e.target)
		extra = append(extra, addressRR(target, t, ip, e.ttl))
		if seen[target] {
			continue
		}
		seen[target] = true
		recs = append(recs, &mdns.NS{Hdr: hdr(qname, mdns.TypeNS, e.ttl), Ns: target})
	}
	return recs, extra, nil
}

// ptr returns the PTR answer for a reverse name (DNS-02, DNS-03).
func (b *backend) ptr(name, zone, qname string) ([]mdns.RR, error) {
	b.st.mu.RLock()
	es, err := b.reverse(name, zone)
	b.st.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var recs []mdns.RR
	seen := map[string]struct{}{}
	for _, e := range es {
		if net.ParseIP(e.host) != nil {
			continue
		}
		if _, dup := seen[e.host]; dup {
			continue
		}
		seen[e.host] = struct{}{}
		recs = append(recs, &mdns.PTR{Hdr: hdr(qname, mdns.TypePTR, e.ttl), Ptr: mdns.Fqdn(e.host)})
	}
	return recs, nil
}
