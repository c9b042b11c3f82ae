package dns

import (
	"sync"

	mdns "github.com/miekg/dns"
)

// zoneCache keeps the packed replies to questions answered from the store, so that a
// repeated question costs a map lookup and a copy instead of a lookup, a message and a pack.
// It never serves stale data: every entry belongs to one generation of the store, and any
// change to the store (informer event) starts a new generation, which empties the cache
// (CoreDNS instead serves its `cache 30` copies for up to 30 s after a change). Its hits and
// misses count in CoreDNS's cache metrics and answer with plugin label "cache", as CoreDNS's
// cache in front of its kubernetes plugin does.
//
// A reply depends on the question as spelled (owner names keep the client's case), the
// request's RD and CD bits, its EDNS0 OPT (present, UDP size, DO bit) and the transport
// (truncation); those make the key. The header ID is patched per reply. Replies that needed
// an upstream (ExternalName targets outside the zone) or were computed before the caches
// synced are not kept. Safe for concurrent use.
type zoneCache struct {
	max int

	mu      sync.RWMutex
	gen     uint64
	entries map[zoneKey]zoneEntry
}

type zoneKey struct {
	name    string // as spelled by the client
	qtype   uint16
	flags   uint8 // zoneRD | zoneCD | zoneEDNS | zoneDO | zoneTCP
	udpSize uint16
}

const (
	zoneRD uint8 = 1 << iota
	zoneCD
	zoneEDNS
	zoneDO
	zoneTCP
)

type zoneEntry struct {
	wire  []byte // the packed reply, ID 0
	rcode int
}

// kind is the entry's type label of coredns_cache_hits_total: "success" for an answer,
// "denial" for NXDOMAIN and NODATA.
func (e zoneEntry) kind() string {
	if e.rcode == mdns.RcodeSuccess && len(e.wire) >= 8 && (e.wire[6] != 0 || e.wire[7] != 0) {
		return "success"
	}
	return "denial"
}

func newZoneCache(size int) *zoneCache {
	return &zoneCache{max: size, entries: map[zoneKey]zoneEntry{}}
}

// zoneKeyOf returns the key of req, a query of one IN question, and whether its reply may
// be cached at all (EDNS0 version 0 only; other versions get BADVERS).
func zoneKeyOf(req *mdns.Msg, proto string) (zoneKey, bool) {
	if req.Opcode != mdns.OpcodeQuery || len(req.Question) != 1 || req.Question[0].Qclass != mdns.ClassINET ||
		len(req.Answer) != 0 || len(req.Ns) != 0 {
		return zoneKey{}, false
	}
	k := zoneKey{name: req.Question[0].Name, qtype: req.Question[0].Qtype}
	if req.RecursionDesired {
		k.flags |= zoneRD
	}
	if req.CheckingDisabled {
		k.flags |= zoneCD
	}
	if proto == "tcp" {
		k.flags |= zoneTCP
	}
	switch len(req.Extra) {
	case 0:
	case 1:
		o, ok := req.Extra[0].(*mdns.OPT)
		if !ok || o.Version() != 0 {
			return zoneKey{}, false
		}
		k.flags |= zoneEDNS
		if o.Do() {
			k.flags |= zoneDO
		}
		k.udpSize = o.UDPSize()
	default:
		return zoneKey{}, false
	}
	return k, true
}

// get returns the reply for k if it was computed in generation gen.
func (c *zoneCache) get(k zoneKey, gen uint64) (zoneEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != gen {
		return zoneEntry{}, false
	}
	e, ok := c.entries[k]
	return e, ok
}

// put keeps wire (copied) as the reply for k computed in generation gen; an entry of a newer
// generation empties the cache first, one of an older generation is dropped.
func (c *zoneCache) put(k zoneKey, gen uint64, wire []byte, rcode int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.gen:
		return
	case gen > c.gen || len(c.entries) >= c.max:
		clear(c.entries)
		c.gen = gen
	}
	e := zoneEntry{wire: make([]byte, len(wire)), rcode: rcode}
	copy(e.wire, wire)
	e.wire[0], e.wire[1] = 0, 0
	c.entries[k] = e
}
