package dns

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Cache TTL bounds, CoreDNS cache's defaults: positive answers live 5 s to 1 h, denials
// (NXDOMAIN, NODATA) 5 s to 30 min, whatever the records say.
const (
	cacheMinTTL     = 5 * time.Second
	cacheMaxTTL     = time.Hour
	cacheMaxDenyTTL = 30 * time.Minute
	cacheShards     = 64
)

// cacheKey identifies a cached response: the question (name lower-cased) and the DO and CD
// bits, as CoreDNS's cache keys it.
type cacheKey struct {
	name   string
	qtype  uint16
	qclass uint16
	do, cd bool
}

// cacheItem is a cached response without its header ID, question and OPT record.
type cacheItem struct {
	rcode  int
	ra, ad bool
	answer []mdns.RR
	ns     []mdns.RR
	extra  []mdns.RR
	stored time.Time
	ttl    time.Duration
}

// respCache is a bounded cache of upstream responses, one part for positive answers and one
// for denials, each split in shards that evict a random entry when full. Safe for concurrent
// use.
type respCache struct {
	pos, neg *shardedCache
	now      func() time.Time
	seed     maphash.Seed
}

type shardedCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	cap   int
	items map[cacheKey]*cacheItem
}

func newRespCache(size int) *respCache {
	per := max(size/cacheShards, 1)
	mk := func() *shardedCache {
		c := &shardedCache{}
		for i := range c.shards {
			c.shards[i] = cacheShard{cap: per, items: map[cacheKey]*cacheItem{}}
		}
		return c
	}
	return &respCache{pos: mk(), neg: mk(), now: time.Now, seed: maphash.MakeSeed()}
}

func (c *respCache) shard(part *shardedCache, k cacheKey) *cacheShard {
	return &part.shards[maphash.String(c.seed, k.name)%cacheShards]
}

func keyOf(req *mdns.Msg) cacheKey {
	q := req.Question[0]
	k := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: req.CheckingDisabled}
	if opt := req.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

// get returns the cached reply to req with TTLs lowered by the time spent in the cache, and
// whether it is a positive ("success") or a denial entry.
func (c *respCache) get(req *mdns.Msg) (m *mdns.Msg, kind string) {
	k := keyOf(req)
	now := c.now()
	for _, part := range []struct {
		c    *shardedCache
		kind string
	}{{c.pos, "success"}, {c.neg, "denial"}} {
		sh := c.shard(part.c, k)
		sh.mu.RLock()
		it := sh.items[k]
		sh.mu.RUnlock()
		if it == nil {
			continue
		}
		left := it.ttl - now.Sub(it.stored)
		if left < time.Second {
			continue
		}
		return it.reply(req, uint32(left/time.Second)), part.kind // #nosec G115 -- at most an hour
	}
	return nil, ""
}

func (it *cacheItem) reply(req *mdns.Msg, ttl uint32) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Rcode = it.rcode
	m.RecursionAvailable = it.ra
	m.AuthenticatedData = it.ad
	qname := req.Question[0].Name
	m.Answer = copyRRs(it.answer, ttl, qname)
	m.Ns = copyRRs(it.ns, ttl, qname)
	m.Extra = copyRRs(it.extra, ttl, qname)
	return m
}

// copyRRs copies rrs with the given TTL; owner names equal to the question's (in any case)
// take the spelling of this request's question, as an uncached answer would.
func copyRRs(rrs []mdns.RR, ttl uint32, qname string) []mdns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]mdns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = mdns.Copy(rr)
		h := out[i].Header()
		h.Ttl = ttl
		if strings.EqualFold(h.Name, qname) {
			h.Name = qname
		}
	}
	return out
}

// put caches m, the upstream reply to req, if it is cacheable: not truncated, NOERROR with
// an answer, or a denial (NXDOMAIN or NODATA) carrying an SOA. The TTL is the smallest
// record TTL within the bounds above.
func (c *respCache) put(req, m *mdns.Msg) {
	if m.Truncated || len(m.Question) == 0 {
		return
	}
	var part *shardedCache
	lo, hi := cacheMinTTL, cacheMaxTTL
	switch {
	case m.Rcode == mdns.RcodeSuccess && len(m.Answer) > 0:
		part = c.pos
	case (m.Rcode == mdns.RcodeNameError || m.Rcode == mdns.RcodeSuccess) && hasSOA(m):
		part, hi = c.neg, cacheMaxDenyTTL
	default:
		return
	}
	ttl := min(max(minimalTTL(m), lo), hi)
	it := &cacheItem{rcode: m.Rcode, ra: m.RecursionAvailable, ad: m.AuthenticatedData,
		answer: m.Answer, ns: m.Ns, extra: withoutOPT(m.Extra), stored: c.now(), ttl: ttl}
	k := keyOf(req)
	sh := c.shard(part, k)
	sh.mu.Lock()
	if _, ok := sh.items[k]; !ok && len(sh.items) >= sh.cap {
		for victim := range sh.items { // map order: a random victim
			delete(sh.items, victim)
			break
		}
	}
	sh.items[k] = it
	sh.mu.Unlock()
}

// len returns the number of positive and denial entries.
func (c *respCache) len() (pos, neg int) {
	count := func(p *shardedCache) (n int) {
		for i := range p.shards {
			p.shards[i].mu.RLock()
			n += len(p.shards[i].items)
			p.shards[i].mu.RUnlock()
		}
		return n
	}
	return count(c.pos), count(c.neg)
}

func hasSOA(m *mdns.Msg) bool {
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == mdns.TypeSOA {
			return true
		}
	}
	return false
}

func withoutOPT(rrs []mdns.RR) []mdns.RR {
	var out []mdns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != mdns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// minimalTTL is the smallest TTL of the records in m (OPT aside), CoreDNS's MinimalTTL.
func minimalTTL(m *mdns.Msg) time.Duration {
	ttl := cacheMaxTTL
	for _, sec := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == mdns.TypeOPT {
				continue
			}
			if d := time.Duration(rr.Header().Ttl) * time.Second; d < ttl {
				ttl = d
			}
		}
	}
	return ttl
}
