package userspace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vipDevice keeps the Services' virtual IPs as local addresses of a bridge without ports in
// the node's network namespace. A bridge is used because the dummy link type is not built
// into our kernels; with no ports its state is UNKNOWN, which is enough for local addresses.
// The committed address set is kept in memory; the kernel is listed only on a full sync.
type vipDevice struct {
	name  string
	link  netlink.Link
	addrs map[netip.Addr]bool // committed
}

// ensure creates the device if missing, sets it up and, with relist, reads its addresses
// back (after a restart the previous process's addresses are still there).
func (d *vipDevice) ensure(relist bool) error {
	if d.link != nil && !relist {
		return nil
	}
	link, err := netlink.LinkByName(d.name)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: d.name}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create VIP device %s: %w", d.name, err)
		}
		if link, err = netlink.LinkByName(d.name); err != nil {
			return fmt.Errorf("find VIP device %s: %w", d.name, err)
		}
	case err != nil:
		return fmt.Errorf("find VIP device %s: %w", d.name, err)
	case link.Type() != "bridge":
		return fmt.Errorf("VIP device %s exists and is a %s, not a bridge", d.name, link.Type())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set VIP device %s up: %w", d.name, err)
		}
	}
	d.link = link
	list, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", d.name, err)
	}
	d.addrs = make(map[netip.Addr]bool, len(list))
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() {
			continue // the kernel's IPv6 link-local address
		}
		d.addrs[ip.Unmap()] = true
	}
	return nil
}

// reconcile makes the device's addresses want, except that addresses still busy (with
// established connections) stay until a later reconcile.
func (d *vipDevice) reconcile(want map[netip.Addr]int, busy func(netip.Addr) bool) error {
	var errs []error
	for ip := range d.addrs {
		if want[ip] == 0 && !busy(ip) {
			if err := netlink.AddrDel(d.link, hostAddr(ip)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove %s from %s: %w", ip, d.name, err))
				continue
			}
			delete(d.addrs, ip)
		}
	}
	var added6 []netip.Addr
	for ip, n := range want {
		if n > 0 && !d.addrs[ip] {
			if err := netlink.AddrReplace(d.link, hostAddr(ip)); err != nil {
				errs = append(errs, fmt.Errorf("add %s to %s: %w", ip, d.name, err))
				continue
			}
			d.addrs[ip] = true
			if ip.Is6() {
				added6 = append(added6, ip)
			}
		}
	}
	if err := waitLocal(added6); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// localRouteTimeout bounds waitLocal.
const localRouteTimeout = 2 * time.Second

// waitLocal waits until each IPv6 address has its local route. The kernel inserts it from a
// work queue after RTM_NEWADDR returns (address configuration runs even with IFA_F_NODAD); a
// connection opened in between would be routed out of the device, fail neighbour discovery
// and leave a FAILED neighbour entry (seen on 6.18 as EHOSTUNREACH after 3 s).
func waitLocal(ips []netip.Addr) error {
	deadline := time.Now().Add(localRouteTimeout)
	for _, ip := range ips {
		for {
			routes, err := netlink.RouteGet(ip.AsSlice())
			if err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("address %s: no local route after %v", ip, localRouteTimeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// hostAddr is ip/32 or ip/128. IPv6 addresses skip duplicate address detection (they would
// stay tentative, unbindable, for a second) and get no prefix route in the main table (a
// route out of a device without ports is useless).
func hostAddr(ip netip.Addr) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}}
	if ip.Is6() {
		a.Flags = unix.IFA_F_NODAD | unix.IFA_F_NOPREFIXROUTE
	}
	return a
}

// remove deletes the device (and with it every address); a missing device is not an error.
func (d *vipDevice) remove() error {
	d.link, d.addrs = nil, nil
	link, err := netlink.LinkByName(d.name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find VIP device %s: %w", d.name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete VIP device %s: %w", d.name, err)
	}
	return nil
}
