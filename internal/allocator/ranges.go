package allocator

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/registry/service"
)

// Errors with kube-apiserver v1.37.2's texts; the service strategy shows them as they are.
var (
	// ErrFull: no free value is left in the range ("range is full"); it is the service
	// strategy's ErrRangeFull, which turns a failed dynamic allocation into kube's 500.
	ErrFull = service.ErrRangeFull
	// ErrIPAllocated: the requested cluster IP belongs to another Service.
	ErrIPAllocated = errors.New("provided IP is already allocated")
	// ErrPortAllocated: the requested node port belongs to another Service (or to another
	// port of the same one).
	ErrPortAllocated = errors.New("provided port is already allocated")
	// ErrMismatchedNetwork: the requested cluster IP lies outside every service CIDR (or is
	// the network or IPv4 broadcast address of one), as kube's ServiceCIDR allocator says.
	ErrMismatchedNetwork = errors.New("the provided network does not match the current range")
)

// IPNotInRangeError is the dry-run answer for a cluster IP outside the usable range.
type IPNotInRangeError struct {
	IP         netip.Addr
	ValidRange netip.Prefix
}

func (e *IPNotInRangeError) Error() string {
	return fmt.Sprintf("the provided IP (%v) is not in the valid range. The range of valid IPs is %v", e.IP, e.ValidRange)
}

// PortNotInRangeError is the answer for a node port outside --service-node-port-range.
type PortNotInRangeError struct {
	ValidPorts PortRange
}

func (e *PortNotInRangeError) Error() string {
	return fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %v", e.ValidPorts)
}

// PortRange is a node-port range, e.g. 30000-32767 (Base 30000, Size 2768).
type PortRange struct {
	Base int
	Size int
}

// ParsePortRange parses "BASE-MAX" (or a single port) as kube's net.ParsePortRange does.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return PortRange{}, fmt.Errorf("invalid port range %q", s)
	}
	return PortRange{Base: a, Size: b - a + 1}, nil
}

func (r PortRange) String() string {
	if r.Size == 0 {
		return ""
	}
	return fmt.Sprintf("%d-%d", r.Base, r.Base+r.Size-1)
}

// Contains reports whether port lies in the range.
func (r PortRange) Contains(port int) bool { return port >= r.Base && port < r.Base+r.Size }

// portOffset is the size of the static (lower) band of a node-port range: kube's
// portallocator calculateRangeOffset, min(max(16, size/32), 128), or 0 for 16 ports or fewer
// (SVC-NP-02).
func portOffset(size int) int {
	if size <= 16 {
		return 0
	}
	return min(max(16, size/32), 128)
}

// ipRange is the usable part of one service CIDR: first = network+1, last = broadcast-1
// (IPv4) or broadcast (IPv6), split at offset into the static and dynamic bands (SVC-IP-01,
// SVC-IP-02).
type ipRange struct {
	prefix netip.Prefix
	family corev1.IPFamily
	first  netip.Addr
	last   netip.Addr
	size   uint64 // number of usable addresses
	offset uint64 // static band size
}

func newIPRange(p netip.Prefix) (*ipRange, error) {
	p = p.Masked()
	host := p.Addr().BitLen() - p.Bits()
	r := &ipRange{prefix: p, family: corev1.IPv4Protocol}
	if p.Addr().Is6() {
		r.family = corev1.IPv6Protocol
		if p.Bits() < 64 {
			return nil, fmt.Errorf("service CIDR %v: shortest allowed prefix length for service CIDR is 64, got %d", p, p.Bits())
		}
	}
	r.first = p.Addr().Next()
	r.last = addOffset(p.Addr(), lastOffset(host))
	if r.family == corev1.IPv4Protocol {
		r.last = r.last.Prev()
	}
	if !r.first.IsValid() || !r.last.IsValid() || r.last.Less(r.first) {
		return nil, fmt.Errorf("service CIDR %v has no usable addresses", p)
	}
	r.size = diff(r.first, r.last) + 1
	// kube's ipallocator calculateRangeOffset: on cidrSize = 2^hostbits (network and
	// broadcast included), 0 when <= 16, else min(max(16, size/16), 256).
	switch {
	case host <= 4:
		r.offset = 0
	case host >= 12:
		r.offset = 256
	default:
		r.offset = uint64(max(16, (1<<host)/16))
	}
	if r.offset >= r.size {
		r.offset = 0
	}
	return r, nil
}

// lastOffset is 2^host - 1 (saturating at 2^64 - 1).
func lastOffset(host int) uint64 {
	if host >= 64 {
		return ^uint64(0)
	}
	return 1<<host - 1
}

// contains reports whether ip is usable: inside the prefix, neither the network nor (IPv4)
// the broadcast address. This is also kube's servicecidr.PrefixContainsIP.
func (r *ipRange) contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	return r.prefix.Contains(ip) && !ip.Less(r.first) && !r.last.Less(ip)
}

// at returns the address at index i of the usable range (0 = first).
func (r *ipRange) at(i uint64) netip.Addr { return addOffset(r.first, i) }

// index returns the position of a usable ip in the range.
func (r *ipRange) index(ip netip.Addr) uint64 { return diff(r.first, ip) }

func addOffset(a netip.Addr, off uint64) netip.Addr {
	b := a.As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	var carry uint64
	lo, carry = bits.Add64(lo, off, 0)
	hi += carry
	for i := 0; i < 8; i++ {
		b[7-i] = byte(hi >> (8 * i))
		b[15-i] = byte(lo >> (8 * i))
	}
	out := netip.AddrFrom16(b)
	if a.Is4() {
		out = out.Unmap()
		if !out.Is4() {
			return netip.Addr{}
		}
	}
	return out
}

// diff returns b - a for addresses of one family whose distance fits 64 bits.
func diff(a, b netip.Addr) uint64 {
	x, y := a.As16(), b.As16()
	var lx, ly uint64
	for i := 8; i < 16; i++ {
		lx = lx<<8 | uint64(x[i])
		ly = ly<<8 | uint64(y[i])
	}
	return ly - lx
}

// band is one half of a range: indexes [lo, lo+n).
type band struct{ lo, n uint64 }

// bands returns the dynamic (upper) band, then the static (lower) band, the order in which
// kube's allocators search for a free value (SVC-IP-03, SVC-NP-02).
func bands(size, offset uint64) []band {
	if offset == 0 {
		return []band{{0, size}}
	}
	return []band{{offset, size - offset}, {0, offset}}
}

// scan calls free(i) for the indexes of b from a uniformly random start, wrapping, until it
// returns true; it returns that index. It gives up after limit probes (0: the whole band).
func scan(rng *rand.Rand, b band, limit uint64, free func(uint64) bool) (uint64, bool) {
	if b.n == 0 {
		return 0, false
	}
	start := rng.Uint64N(b.n)
	n := b.n
	if limit > 0 && limit < n {
		n = limit
	}
	for k := uint64(0); k < n; k++ {
		i := b.lo + (start+k)%b.n
		if free(i) {
			return i, true
		}
	}
	return 0, false
}
