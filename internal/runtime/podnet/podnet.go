// Package podnet wires pods to the node: the bridge kubesvc0 holding the podCIDR's gateway
// address, one veth per pod (eth0 inside the pod with its IP and a default route via the
// gateway), and direct routes to other nodes' podCIDRs over a shared L2 segment. All changes
// go through netlink in the caller's network namespace.
//
// Imported by internal/runtime and internal/agent.
package podnet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kubesvc/internal/runtime/netns"
)

// RouteProtocol marks the routes this package installs (rtnetlink protocol number), so a sync
// finds and removes stale ones without touching others'.
const RouteProtocol = 99

// PodInterface is the pod's interface name.
const PodInterface = "eth0"

// Bridge is the node bridge.
type Bridge struct {
	// Name is the bridge device (kubesvc0).
	Name string
	// Prefix is the node's podCIDR.
	Prefix netip.Prefix
	// Gateway is the bridge's address, the pods' default gateway.
	Gateway netip.Addr
	link    netlink.Link
}

// EnsureBridge creates (or reuses) the bridge name with gateway/prefix-length as its only
// address, sets it up and enables IPv4 forwarding in the caller's namespace.
func EnsureBridge(name string, prefix netip.Prefix, gateway netip.Addr) (*Bridge, error) {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		mac := make(net.HardwareAddr, 6)
		if _, err := rand.Read(mac); err != nil {
			return nil, err
		}
		mac[0] = (mac[0] | 0x02) &^ 0x01 // locally administered unicast: stable bridge MAC
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("%s exists and is a %s, not a bridge", name, link.Type())
	}
	want := &netlink.Addr{IPNet: &net.IPNet{IP: gateway.AsSlice(), Mask: net.CIDRMask(prefix.Bits(), gateway.BitLen())}}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if !a.IPNet.IP.Equal(want.IPNet.IP) || a.IPNet.Mask.String() != want.IPNet.Mask.String() {
			_ = netlink.AddrDel(link, &a)
		}
	}
	if err := netlink.AddrReplace(link, want); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", want.IPNet, name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	if err := netns.WriteSysctl("", "net/ipv4/ip_forward", "1"); err != nil {
		return nil, fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return &Bridge{Name: name, Prefix: prefix, Gateway: gateway, link: link}, nil
}

// AddPod creates the veth hostIf on the bridge with its peer eth0 inside the namespace at
// nsPath, addresses eth0 with ip/prefix-length and routes by default via the gateway. An
// existing hostIf is replaced.
func (b *Bridge) AddPod(nsPath, hostIf string, ip netip.Addr) (err error) {
	if old, err := netlink.LinkByName(hostIf); err == nil {
		_ = netlink.LinkDel(old)
	}
	nsf, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open pod network namespace: %w", err)
	}
	defer unix.Close(nsf)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostIf, MasterIndex: b.link.Attrs().Index},
		PeerName:      PodInterface,
		PeerNamespace: netlink.NsFd(nsf),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", hostIf, err)
	}
	defer func() {
		if err != nil {
			_ = netlink.LinkDel(veth)
		}
	}()
	host, err := netlink.LinkByName(hostIf)
	if err != nil {
		return fmt.Errorf("veth %s: %w", hostIf, err)
	}
	// Hairpin lets a pod reach itself through a Service VIP.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", hostIf, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", hostIf, err)
	}
	return netns.Do(nsPath, func() error {
		eth, err := netlink.LinkByName(PodInterface)
		if err != nil {
			return fmt.Errorf("pod %s: %w", PodInterface, err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(b.Prefix.Bits(), ip.BitLen())}}
		if err := netlink.AddrReplace(eth, addr); err != nil {
			return fmt.Errorf("address %s on pod %s: %w", addr.IPNet, PodInterface, err)
		}
		if err := netlink.LinkSetUp(eth); err != nil {
			return fmt.Errorf("set pod %s up: %w", PodInterface, err)
		}
		def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: b.Gateway.AsSlice()}
		if err := netlink.RouteReplace(def); err != nil {
			return fmt.Errorf("default route via %s: %w", b.Gateway, err)
		}
		return nil
	})
}

// RemovePod deletes the veth hostIf (and so its peer); a missing link is not an error.
func RemovePod(hostIf string) error {
	link, err := netlink.LinkByName(hostIf)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("veth %s: %w", hostIf, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete veth %s: %w", hostIf, err)
	}
	return nil
}

// Route is a route to another node's podCIDR via that node's address.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// SyncRoutes makes the routes marked RouteProtocol exactly routes: it replaces the wanted ones
// and deletes the others. A route whose gateway is not directly reachable fails and is
// reported; the others are still applied.
func SyncRoutes(routes []Route) error {
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	want := map[netip.Prefix]bool{}
	var errs []error
	for _, r := range routes {
		want[r.Dst.Masked()] = true
		nr := &netlink.Route{
			Dst:      &net.IPNet{IP: r.Dst.Masked().Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
			Gw:       r.Via.AsSlice(),
			Protocol: RouteProtocol,
		}
		if err := netlink.RouteReplace(nr); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", r.Dst, r.Via, err))
		}
	}
	for _, h := range have {
		if h.Dst == nil {
			continue
		}
		p, ok := netip.AddrFromSlice(h.Dst.IP)
		if !ok {
			continue
		}
		ones, _ := h.Dst.Mask.Size()
		if !want[netip.PrefixFrom(p.Unmap(), ones)] {
			h := h
			if err := netlink.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route %s: %w", h.Dst, err))
			}
		}
	}
	return errors.Join(errs...)
}
