package proxy

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// udpFilter matches UDP conntrack entries to a service destination whose reply does not come
// from one of the destination's serving endpoints (PX-C-01).
type udpFilter struct {
	vips      map[netip.AddrPort]map[netip.Addr]bool // service IP:port → serving endpoint IPs
	nodePorts map[uint16]map[netip.Addr]bool
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (f *udpFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, ok := netip.AddrFromSlice(flow.Forward.DstIP)
	if !ok {
		return false
	}
	reply, _ := netip.AddrFromSlice(flow.Reverse.SrcIP)
	reply = reply.Unmap()
	if eps, ok := f.vips[netip.AddrPortFrom(dst.Unmap(), flow.Forward.DstPort)]; ok {
		return !eps[reply]
	}
	if eps, ok := f.nodePorts[flow.Forward.DstPort]; ok {
		return !eps[reply]
	}
	return false
}

// staleUDPFilter builds the filter for the UDP service ports that changed in this sync (all
// on a full sync); ports that went away match every entry. nil when nothing is to be cleaned.
func staleUDPFilter(prev, cur *Snapshot, changed sets.Set[ServicePortName], full bool) *udpFilter {
	f := &udpFilter{vips: map[netip.AddrPort]map[netip.Addr]bool{}, nodePorts: map[uint16]map[netip.Addr]bool{}}
	add := func(st *ServiceState, serving map[netip.Addr]bool) {
		for _, list := range [][]netip.Addr{st.ClusterIPs, st.ExternalIPs, st.LoadBalancerIPs} {
			for _, ip := range list {
				f.vips[netip.AddrPortFrom(ip, uint16(st.Port))] = serving
			}
		}
		if st.NodePort != 0 {
			f.nodePorts[uint16(st.NodePort)] = serving
		}
	}
	consider := func(name ServicePortName) {
		if name.Protocol != corev1.ProtocolUDP {
			return
		}
		if st, ok := cur.Services[name]; ok {
			serving := map[netip.Addr]bool{}
			for _, e := range st.Endpoints {
				if e.Serving {
					serving[e.IP] = true
				}
			}
			add(st, serving)
		} else if prev != nil {
			if st, ok := prev.Services[name]; ok {
				add(st, map[netip.Addr]bool{})
			}
		}
	}
	if full {
		for name := range cur.Services {
			consider(name)
		}
	} else {
		for name := range changed {
			consider(name)
		}
	}
	if len(f.vips) == 0 && len(f.nodePorts) == 0 {
		return nil
	}
	return f
}

// CleanStaleUDP deletes stale UDP conntrack entries after a successful sync (PX-C-01): entries
// to a changed UDP service IP:port (or nodePort) whose reply source is not a serving endpoint
// any more, including the entries cached while the service rejected traffic. TCP entries are
// never touched.
func CleanStaleUDP(prev, cur *Snapshot, changed sets.Set[ServicePortName], full bool) error {
	f := staleUDPFilter(prev, cur, changed, full)
	if f == nil {
		return nil
	}
	var errs []error
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if _, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, fam, f); err != nil {
			errs = append(errs, fmt.Errorf("delete stale UDP conntrack entries: %w", err))
		}
	}
	return errors.Join(errs...)
}
