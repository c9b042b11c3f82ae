package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"kubesvc/internal/proxy"
	"kubesvc/internal/proxy/nftables"
	"kubesvc/internal/proxy/userspace"
)

// Proxy modes (--proxy-mode).
const (
	ProxyModeNFTables  = "nftables"
	ProxyModeUserspace = "userspace"
	ProxyModeNone      = "none"
)

// ProxyConfig configures the node's service proxy (DESIGN §5.3, spec §5). Flags follow
// kube-proxy's names where they exist.
type ProxyConfig struct {
	// Mode is nftables, userspace or none; "" picks nftables when the kernel takes an
	// nftables batch with the expressions the proxy needs, else userspace.
	Mode string `json:"mode"`
	// MinSyncPeriod and SyncPeriod (30 s): kube-proxy's --nftables-min-sync-period and
	// --nftables-sync-period (PX-S-01). MinSyncPeriod defaults to 0, adaptive (proxy.Runner):
	// kube-proxy's default is 1 s.
	MinSyncPeriod time.Duration `json:"minSyncPeriod"`
	SyncPeriod    time.Duration `json:"syncPeriod"`
	// MasqueradeAll masquerades all traffic to cluster IPs (PX-M-03c).
	MasqueradeAll bool `json:"masqueradeAll"`
	// ClusterCIDR is the pod network (local-traffic detection, PX-M-03b); default the
	// server's --cluster-cidr (from the join). Comma-separated for several.
	ClusterCIDR string `json:"clusterCIDR"`
	// ServiceCIDR is the service range; default the server's. Used only to route it on
	// nodes without a default route (see ensureServiceRoute).
	ServiceCIDR string `json:"serviceCIDR"`
	// HealthzBindAddress serves /healthz and /livez (PX-H-02); "" disables it.
	HealthzBindAddress string `json:"healthzBindAddress"`
	// MetricsBindAddress serves /metrics with kube-proxy's metric names; "" disables it.
	MetricsBindAddress string `json:"metricsBindAddress"`
	// EnableProfiling serves /debug/pprof on the metrics address (kube-proxy's --profiling).
	EnableProfiling bool `json:"enableProfiling"`
	// Kubeconfig runs only the node's service parts (proxy and cluster DNS) against any
	// Kubernetes API server, without joining: no Node registration, no pods (issue 6 item 5).
	// Used by `kubesvc agent --kubeconfig`, see StartServices (services.go).
	Kubeconfig string `json:"kubeconfig"`
}

// NewProxyConfig returns the defaults (kube-proxy's, except MinSyncPeriod: see proxy.DefaultMinSyncPeriod).
func NewProxyConfig() ProxyConfig {
	return ProxyConfig{
		MinSyncPeriod: proxy.DefaultMinSyncPeriod, SyncPeriod: proxy.DefaultSyncPeriod,
		HealthzBindAddress: "0.0.0.0:10256", MetricsBindAddress: "127.0.0.1:10249",
	}
}

// AddFlags binds the proxy configuration to flags.
func (c *ProxyConfig) AddFlags(fs *pflag.FlagSet) {
	if c.SyncPeriod == 0 {
		*c = NewProxyConfig()
	}
	fs.StringVar(&c.Mode, "proxy-mode", c.Mode, "service proxy: nftables, userspace or none (default: nftables if the kernel supports it, else userspace)")
	fs.DurationVar(&c.MinSyncPeriod, "proxy-min-sync-period", c.MinSyncPeriod, "minimum time between the starts of two proxy syncs; 0: adaptive (a change is applied at once; under churn at most half the time is spent syncing). kube-proxy's default is 1s")
	fs.DurationVar(&c.SyncPeriod, "proxy-sync-period", c.SyncPeriod, "maximum time between two proxy syncs (and retry delay after a failed one)")
	fs.BoolVar(&c.MasqueradeAll, "masquerade-all", c.MasqueradeAll, "masquerade all traffic to cluster IPs")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "pod network CIDR(s), comma-separated (default: the server's)")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "service CIDR (default: the server's)")
	fs.StringVar(&c.HealthzBindAddress, "healthz-bind-address", c.HealthzBindAddress, "address of the proxy's /healthz and /livez (empty: off)")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "address of the proxy's /metrics (empty: off)")
	fs.BoolVar(&c.EnableProfiling, "profiling", c.EnableProfiling, "serve /debug/pprof on the proxy's --metrics-bind-address")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "run only the node's service parts, the service proxy and cluster DNS (on --dns-bind-address, default --node-ip), against the API server of this kubeconfig: no join, no pods; needs --node-name and --node-ip")
}

// Validate checks the proxy configuration; errors name the flag.
func (c *ProxyConfig) Validate() error {
	var errs []error
	switch c.Mode {
	case "", ProxyModeNFTables, ProxyModeUserspace, ProxyModeNone:
	default:
		errs = append(errs, fmt.Errorf("--proxy-mode %q: want nftables, userspace or none", c.Mode))
	}
	if c.MinSyncPeriod < 0 || c.SyncPeriod <= 0 || c.MinSyncPeriod > c.SyncPeriod {
		errs = append(errs, fmt.Errorf("--proxy-min-sync-period %s and --proxy-sync-period %s: need 0 <= min <= sync, sync > 0", c.MinSyncPeriod, c.SyncPeriod))
	}
	if _, err := parsePrefixes(c.ClusterCIDR); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
	}
	if _, err := parsePrefixes(c.ServiceCIDR); err != nil {
		errs = append(errs, fmt.Errorf("--service-cidr: %w", err))
	}
	for flag, addr := range map[string]string{"--healthz-bind-address": c.HealthzBindAddress, "--metrics-bind-address": c.MetricsBindAddress} {
		if addr != "" {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", flag, err))
			}
		}
	}
	return errors.Join(errs...)
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// proxyParams is what the proxy needs of the node, from the join or from flags.
type proxyParams struct {
	client      kubernetes.Interface
	nodeName    string
	nodeIPs     []netip.Addr // one address, or an IPv4 and an IPv6 one: the families served (PX-02)
	clusterCIDR string
	serviceCIDR string
}

// startProxy starts the node's service proxy; it stops when the agent closes. Called from Start.
func (a *Agent) startProxy(context.Context) error {
	p, err := runProxy(a.cfg.Proxy, proxyParams{client: a.client, nodeName: a.nodeName, nodeIPs: a.nodeIPs,
		clusterCIDR: a.cluster.ClusterCIDR, serviceCIDR: a.cluster.ServiceCIDR})
	if err != nil || p == nil {
		return err
	}
	a.goLoop("proxy", func(ctx context.Context) {
		<-ctx.Done()
		p.Close()
	})
	return nil
}

// runProxy prepares the node (sysctls, service route) and starts the proxier; nil for mode none.
func runProxy(cfg ProxyConfig, pp proxyParams) (*proxy.Proxier, error) {
	if cfg.MinSyncPeriod == 0 && cfg.SyncPeriod == 0 { // a Config not made by AddFlags
		cfg.MinSyncPeriod, cfg.SyncPeriod = proxy.DefaultMinSyncPeriod, proxy.DefaultSyncPeriod
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	mode := cfg.Mode
	if mode == "" {
		mode = DefaultProxyMode()
	}
	if mode == ProxyModeNone {
		return nil, nil
	}
	clusterCIDR, serviceCIDR := cfg.ClusterCIDR, cfg.ServiceCIDR
	if clusterCIDR == "" {
		clusterCIDR = pp.clusterCIDR
	}
	if serviceCIDR == "" {
		serviceCIDR = pp.serviceCIDR
	}
	cidrs, err := parsePrefixes(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("agent: cluster CIDR: %w", err)
	}
	svcCIDRs, err := parsePrefixes(serviceCIDR)
	if err != nil {
		return nil, fmt.Errorf("agent: service CIDR: %w", err)
	}
	var dp proxy.Dataplane
	switch mode {
	case ProxyModeNFTables:
		var fams nftables.Config
		for _, ip := range pp.nodeIPs {
			fams.IPv4, fams.IPv6 = fams.IPv4 || ip.Is4(), fams.IPv6 || ip.Is6()
		}
		prepareNodeForNFTables(fams.IPv6)
		for _, p := range svcCIDRs {
			for _, ip := range pp.nodeIPs {
				if ip.Is4() != p.Addr().Is4() {
					continue
				}
				if err := ensureServiceRoute(p, ip); err != nil {
					klog.ErrorS(err, "route to the service range", "cidr", p)
				}
			}
		}
		dp, err = nftables.New(fams)
	case ProxyModeUserspace:
		dp, err = userspace.New(*userspace.NewConfig())
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %s proxy: %w", mode, err)
	}
	p, err := proxy.New(proxy.Config{
		Client: pp.client, Dataplane: dp, NodeName: pp.nodeName, NodeIPs: pp.nodeIPs,
		ClusterCIDRs: cidrs, MasqueradeAll: cfg.MasqueradeAll,
		MinSyncPeriod: cfg.MinSyncPeriod, SyncPeriod: cfg.SyncPeriod,
		HealthzBindAddress: cfg.HealthzBindAddress, MetricsBindAddress: cfg.MetricsBindAddress, EnableProfiling: cfg.EnableProfiling,
		ConntrackCleanup: mode == ProxyModeNFTables,
	})
	if err != nil {
		_ = dp.Close()
		return nil, fmt.Errorf("agent: proxy: %w", err)
	}
	if err := p.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("agent: proxy: %w", err)
	}
	klog.InfoS("service proxy started", "mode", mode, "node", pp.nodeName)
	return p, nil
}

// DefaultProxyMode is nftables when the kernel takes an nftables batch with the expressions
// the proxy uses (a probe table created and deleted in one batch), else userspace.
func DefaultProxyMode() string {
	if err := nftables.Supported(); err != nil {
		klog.InfoS("nftables not usable; userspace proxy", "err", err)
		return ProxyModeUserspace
	}
	return ProxyModeNFTables
}

// prepareNodeForNFTables sets the sysctls of the node's network namespace the nftables proxy
// relies on: forwarding, and bridge netfilter so that pod → ClusterIP → pod on the same bridge
// is un-DNATed on the way back (br_netfilter must be loaded; the file is per namespace).
// A node serving IPv6 (a dual-stack --node-ip) also forwards IPv6: NodePort and externalIP
// traffic is DNATed to pods. (Forwarding makes the kernel ignore router advertisements
// unless accept_ra is 2: a dual-stack node's addresses are static.)
func prepareNodeForNFTables(ipv6 bool) {
	sysctls := map[string]string{
		"net/ipv4/ip_forward":                  "1",
		"net/bridge/bridge-nf-call-iptables":   "1",
		"net/bridge/bridge-nf-call-ip6tables":  "1",
		"net/ipv4/conf/all/route_localnet":     "0",
		"net/netfilter/nf_conntrack_tcp_loose": "1",
	}
	if ipv6 {
		sysctls["net/ipv6/conf/all/forwarding"] = "1"
	}
	for key, value := range sysctls {
		if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
			klog.InfoS("sysctl not set", "key", key, "err", err)
		}
	}
}

// serviceRouteProtocol marks the route ensureServiceRoute adds (podnet uses 99 for its own).
const serviceRouteProtocol = 98

// ensureServiceRoute routes the service range through the node IP's interface when nothing
// routes it (a node without a default route, as in the test worlds): without a route, a
// connection to a cluster IP that is not DNATed (no endpoints, undefined port) fails with
// "network unreachable" before nftables can reject it. Packets never leave on that route:
// serviced destinations are DNATed before routing, the rest rejected in the filter hooks.
func ensureServiceRoute(p netip.Prefix, nodeIP netip.Addr) error {
	if _, err := netlink.RouteGet(p.Addr().Next().AsSlice()); err == nil {
		return nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		addrs, err := netlink.AddrList(l, unix.AF_UNSPEC)
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if a, ok := netip.AddrFromSlice(ad.IP); ok && a.Unmap() == nodeIP {
				_, dst, _ := net.ParseCIDR(p.String())
				return netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Protocol: serviceRouteProtocol})
			}
		}
	}
	return fmt.Errorf("no interface has the node IP %s", nodeIP)
}

// CleanupProxy removes everything either proxy mode installed on this node
// (`kubesvc agent --cleanup`): table kubesvc in families ip and ip6, the userspace proxy's
// device and the service route.
func CleanupProxy() error {
	var errs []error
	if nft, err := nftables.New(nftables.Config{IPv4: true, IPv6: true}); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, nft.Cleanup(), nft.Close())
	}
	if us, err := userspace.New(*userspace.NewConfig()); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, us.Cleanup())
	}
	routes, err := netlink.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{Protocol: serviceRouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err == nil {
		for _, r := range routes {
			errs = append(errs, netlink.RouteDel(&r))
		}
	}
	return errors.Join(errs...)
}
