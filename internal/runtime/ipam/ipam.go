// Package ipam hands out pod IPs from a node's podCIDR. Allocations live in memory; the runtime
// rebuilds them after a restart from the pods it adopts (Restore).
//
// Imported by internal/runtime.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// ErrFull is returned when every address of the range is in use.
var ErrFull = errors.New("ipam: no free pod IP")

// Allocator hands out the addresses of a prefix except the network address, the gateway (the
// first host) and the IPv4 broadcast address. It is safe for concurrent use.
type Allocator struct {
	mu     sync.Mutex
	prefix netip.Prefix
	owners map[netip.Addr]string
	next   netip.Addr
}

// New returns an allocator for prefix (masked).
func New(prefix netip.Prefix) (*Allocator, error) {
	prefix = prefix.Masked()
	if !prefix.IsValid() || prefix.Bits() > prefix.Addr().BitLen()-2 {
		return nil, fmt.Errorf("ipam: prefix %s is too small for pods", prefix)
	}
	return &Allocator{prefix: prefix, owners: map[netip.Addr]string{}, next: Gateway(prefix).Next()}, nil
}

// Gateway is the first host address of prefix: the node bridge's address.
func Gateway(prefix netip.Prefix) netip.Addr { return prefix.Masked().Addr().Next() }

// Prefix returns the range.
func (a *Allocator) Prefix() netip.Prefix { return a.prefix }

func (a *Allocator) usable(ip netip.Addr) bool {
	if !a.prefix.Contains(ip) || ip == a.prefix.Addr() || ip == Gateway(a.prefix) {
		return false
	}
	if ip.Is4() && ip == lastAddr(a.prefix) {
		return false
	}
	return true
}

// Allocate returns a free address for owner, or the one owner already holds. Addresses are
// handed out round-robin, so a released address is not reused at once.
func (a *Allocator) Allocate(owner string) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ip, o := range a.owners {
		if o == owner {
			return ip, nil
		}
	}
	ip := a.next
	for range 1 << min(a.prefix.Addr().BitLen()-a.prefix.Bits(), 20) {
		if !a.usable(ip) {
			ip = Gateway(a.prefix).Next()
		}
		if _, used := a.owners[ip]; !used {
			a.owners[ip] = owner
			a.next = ip.Next()
			return ip, nil
		}
		ip = ip.Next()
	}
	return netip.Addr{}, ErrFull
}

// Restore records that owner holds ip (after a restart). It fails when ip is outside the range
// or held by another owner.
func (a *Allocator) Restore(ip netip.Addr, owner string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.usable(ip) {
		return fmt.Errorf("ipam: %s is not a pod address of %s", ip, a.prefix)
	}
	if o, used := a.owners[ip]; used && o != owner {
		return fmt.Errorf("ipam: %s is held by %s", ip, o)
	}
	a.owners[ip] = owner
	return nil
}

// Release frees ip if owner holds it.
func (a *Allocator) Release(ip netip.Addr, owner string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.owners[ip] == owner {
		delete(a.owners, ip)
	}
}

// Used returns the number of allocated addresses.
func (a *Allocator) Used() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.owners)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}
