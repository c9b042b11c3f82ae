package testcluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"

	"kubesvc/internal/runtime/netns"
)

// Node returns the node called name, or nil.
func (w *World) Node(name string) *Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// AddRoute adds a route to dst via the LAN address via in the host's namespace (e.g. the
// client host reaching externalIPs and LoadBalancer IPs of 203.0.113.0/24 through a chosen
// node). The route lives as long as the host.
func (h *Host) AddRoute(dst netip.Prefix, via netip.Addr) error {
	return addRoute(h.NetNS, dst, via)
}

// AddRoute adds a route to dst via the LAN address via in the node's network namespace. A
// default route (0.0.0.0/0) via ServerIP makes the node look like a real machine to software
// that needs one (locally generated traffic to a ClusterIP is routed before it is DNATed)
// while nothing leaves the world: the test process's namespace forwards nothing.
func (n *Node) AddRoute(dst netip.Prefix, via netip.Addr) error {
	return addRoute(n.NetNS, dst, via)
}

func addRoute(ns string, dst netip.Prefix, via netip.Addr) error {
	if !LAN.Contains(via) {
		return fmt.Errorf("route to %s: gateway %s is not on the test LAN %s", dst, via, LAN)
	}
	return netns.Do(ns, func() error {
		r := &netlink.Route{
			Dst: &net.IPNet{IP: dst.Masked().Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
			Gw:  via.AsSlice(),
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s: %w", dst, via, err)
		}
		return nil
	})
}

// PodNetNS returns a path of the network namespace of the running pod (bound to one of the
// world's nodes), usable with netns.Do, netns.Dial and netns.Listen from the test process.
// The agent mounts pod namespaces in the node's private mount namespace; the path goes
// through the node's PID 1 (/proc/<pid>/root) to reach them.
func (w *World) PodNetNS(pod *corev1.Pod) (string, error) {
	n := w.Node(pod.Spec.NodeName)
	if n == nil {
		return "", fmt.Errorf("pod %s/%s: node %q is not a node of this world", pod.Namespace, pod.Name, pod.Spec.NodeName)
	}
	root := "/proc/" + strconv.Itoa(n.init) + "/root"
	// An agent's runtime lives in DATA/runtime; the agent inside `kubesvc server` in
	// DATA/agent/runtime.
	for _, dir := range []string{"runtime", filepath.Join("agent", "runtime")} {
		p := filepath.Join(root, n.DataDir, dir, "netns", string(pod.UID))
		if netns.IsMounted(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("pod %s/%s: no network namespace under %s on node %s", pod.Namespace, pod.Name, n.DataDir, n.Name)
}

// DialFromPod connects from the pod's network namespace (see PodNetNS).
func (w *World) DialFromPod(ctx context.Context, pod *corev1.Pod, network, addr string) (net.Conn, error) {
	ns, err := w.PodNetNS(pod)
	if err != nil {
		return nil, err
	}
	return netns.Dial(ctx, ns, network, addr)
}
