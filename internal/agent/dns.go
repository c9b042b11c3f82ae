package agent

// Cluster DNS in the agent (DESIGN §5.4, issue 7): every agent runs internal/dns on its pod
// bridge's gateway address, port 53 over UDP and TCP, with CoreDNS's metrics on port 9153 of
// the same address, and publishes the EndpointSlice kube-system/kube-dns-<node> that makes
// that address the node's endpoint of the selectorless kube-dns Service
// (internalTrafficPolicy Local: a pod's queries to --cluster-dns reach its own node's DNS).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"kubesvc/internal/dns"
)

// Cluster DNS constants.
const (
	// DNSPort is the port the node's DNS serves on the gateway address (the kube-dns
	// Service's targetPort).
	DNSPort = 53
	// DefaultDNSMetricsPort serves the DNS metrics on the gateway address (CoreDNS's
	// prometheus port, the kube-dns Service's "metrics" port).
	DefaultDNSMetricsPort = 9153
	// DNSService is the Service whose endpoints the agents publish.
	DNSService = "kube-dns"
	// DNSSliceManagedBy is the endpointslice.kubernetes.io/managed-by value of the slices
	// agents publish (the EndpointSlice controllers leave such slices alone).
	DNSSliceManagedBy = "agent.kubesvc.io"
	// dnsSliceResync re-checks the published slice even without events.
	dnsSliceResync = time.Minute
)

// DNSEndpointSliceName is the name of the EndpointSlice in kube-system that node publishes
// for kube-dns. The server's node authorizer lets node write only the slice of this name.
func DNSEndpointSliceName(node string) string { return DNSService + "-" + node }

// DNSConfig configures the node's cluster DNS server. The zero value serves with the
// defaults: upstreams from --resolv-conf, metrics on port 9153, pods "insecure".
type DNSConfig struct {
	// Disable runs no DNS server and publishes no kube-dns endpoint.
	Disable bool `json:"disable"`
	// Upstreams are the servers ("ip" or "ip:port") for names outside the cluster zone;
	// default the nameservers of --resolv-conf, except addresses of the cluster DNS itself.
	Upstreams []string `json:"upstreams"`
	// MetricsPort serves /metrics on the gateway address; 0 means DefaultDNSMetricsPort,
	// negative disables it.
	MetricsPort int `json:"metricsPort"`
	// PodMode is CoreDNS's `pods` option: insecure (default), verified or disabled.
	PodMode string `json:"podMode"`
}

// AddFlags binds the DNS configuration to flags.
func (c *DNSConfig) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.Disable, "disable-dns", c.Disable, "run no cluster DNS server on this node")
	fs.StringSliceVar(&c.Upstreams, "dns-upstream", c.Upstreams, "upstream DNS servers (ip or ip:port) for names outside the cluster domain (default: the nameservers of --resolv-conf)")
	fs.IntVar(&c.MetricsPort, "dns-metrics-port", c.MetricsPort, "port of the DNS metrics on the node's pod gateway address (0: 9153; negative: off)")
	fs.StringVar(&c.PodMode, "dns-pods", c.PodMode, "pod records <ip-with-dashes>.<ns>.pod.<zone>: insecure (default), verified or disabled")
}

// Validate checks the DNS configuration; errors name the flag.
func (c *DNSConfig) Validate() error {
	var errs []error
	for _, u := range c.Upstreams {
		if _, err := parseUpstream(u); err != nil {
			errs = append(errs, fmt.Errorf("--dns-upstream: %w", err))
		}
	}
	if c.MetricsPort > 65535 {
		errs = append(errs, fmt.Errorf("--dns-metrics-port %d out of range", c.MetricsPort))
	}
	switch c.PodMode {
	case "", dns.PodsInsecure, dns.PodsVerified, dns.PodsDisabled:
	default:
		errs = append(errs, fmt.Errorf("--dns-pods %q is not %s, %s or %s", c.PodMode, dns.PodsInsecure, dns.PodsVerified, dns.PodsDisabled))
	}
	return errors.Join(errs...)
}

// parseUpstream returns an upstream as ip:port (port 53 when absent).
func parseUpstream(u string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(u); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), DNSPort), nil
	}
	ap, err := netip.ParseAddrPort(u)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not ip or ip:port", u)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// nodeDNS is the running DNS of a node.
type nodeDNS struct {
	server  *dns.Server
	metrics *http.Server
	addr    netip.Addr
}

// startDNS starts the node's DNS server on the pod gateway and keeps its kube-dns
// EndpointSlice published until the agent closes; Close waits for the DNS to stop.
func (a *Agent) startDNS(ctx context.Context) error {
	cfg := a.cfg.DNS
	if err := a.loadDNSFile(&cfg); err != nil {
		return err
	}
	if cfg.Disable {
		return nil
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	gw := a.PodGateway()
	if !gw.IsValid() {
		return errors.New("agent: cluster DNS: the node has no pod gateway address")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	listen := net.JoinHostPort(gw.String(), strconv.Itoa(DNSPort))
	srv, err := dns.New(dns.Config{
		Zone:      a.dns.ClusterDomain,
		Listen:    []string{listen},
		Upstreams: a.dnsUpstreams(cfg, gw),
		PodMode:   cfg.PodMode,
		Client:    a.client,
		Metrics:   reg,
	})
	if err != nil {
		return fmt.Errorf("agent: cluster DNS: %w", err)
	}
	if err := srv.Start(a.ctx); err != nil {
		return fmt.Errorf("agent: cluster DNS: %w", err)
	}
	nd := &nodeDNS{server: srv, addr: gw}
	if port := cfg.MetricsPort; port >= 0 {
		if port == 0 {
			port = DefaultDNSMetricsPort
		}
		if nd.metrics, err = serveDNSMetrics(net.JoinHostPort(gw.String(), strconv.Itoa(port)), reg); err != nil {
			srv.Close()
			return fmt.Errorf("agent: cluster DNS metrics: %w", err)
		}
	}
	poke := make(chan struct{}, 1)
	if err := a.watchDNSSlice(poke); err != nil {
		nd.close()
		return err
	}
	if err := a.ensureDNSSlice(ctx, gw); err != nil {
		klog.ErrorS(err, "publish the kube-dns endpoint (retrying)", "node", a.nodeName)
	}
	a.goLoop("dns", func(ctx context.Context) {
		defer nd.close()
		t := time.NewTicker(dnsSliceResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-poke:
			case <-t.C:
			}
			if err := a.ensureDNSSlice(ctx, gw); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "publish the kube-dns endpoint", "node", a.nodeName)
				select { // retry soon
				case poke <- struct{}{}:
				default:
				}
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
			}
		}
	})
	return nil
}

func (nd *nodeDNS) close() {
	nd.server.Close()
	if nd.metrics != nil {
		_ = nd.metrics.Close()
	}
}

// loadDNSFile fills the DNS settings the flags left at their zero values from the --config
// file's "dns" object.
func (a *Agent) loadDNSFile(cfg *DNSConfig) error {
	if a.cfg.ConfigFile == "" {
		return nil
	}
	data, err := os.ReadFile(a.cfg.ConfigFile)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var file struct {
		DNS DNSConfig `json:"dns"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return fmt.Errorf("--config %s: %w", a.cfg.ConfigFile, err)
	}
	cfg.Disable = cfg.Disable || file.DNS.Disable
	if len(cfg.Upstreams) == 0 {
		cfg.Upstreams = file.DNS.Upstreams
	}
	if cfg.MetricsPort == 0 {
		cfg.MetricsPort = file.DNS.MetricsPort
	}
	if cfg.PodMode == "" {
		cfg.PodMode = file.DNS.PodMode
	}
	return nil
}

// dnsUpstreams returns the configured upstreams, or the node resolver's nameservers minus the
// addresses that are this DNS itself (the gateway, the cluster DNS IPs), which would loop.
func (a *Agent) dnsUpstreams(cfg DNSConfig, gw netip.Addr) []string {
	if len(cfg.Upstreams) > 0 {
		return cfg.Upstreams
	}
	self := map[netip.Addr]bool{gw: true}
	for _, s := range a.dns.ClusterDNS {
		if ip, err := netip.ParseAddr(s); err == nil {
			self[ip.Unmap()] = true
		}
	}
	var out []string
	for _, s := range a.dns.Host.Nameservers {
		ap, err := parseUpstream(s)
		if err != nil || self[ap.Addr()] {
			continue
		}
		out = append(out, ap.String())
	}
	return out
}

// serveDNSMetrics serves reg at /metrics on addr.
func serveDNSMetrics(addr string, reg *prometheus.Registry) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "DNS metrics server stopped", "address", addr)
		}
	}()
	return srv, nil
}

// watchDNSSlice pokes when this node's kube-dns slice or its Node changes, so a deleted or
// edited slice is restored and a re-created Node becomes the slice's owner.
func (a *Agent) watchDNSSlice(poke chan<- struct{}) error {
	notify := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	name := DNSEndpointSliceName(a.nodeName)
	lw := cache.NewListWatchFromClient(a.client.DiscoveryV1().RESTClient(), "endpointslices", metav1.NamespaceSystem,
		fields.OneTermEqualSelector("metadata.name", name))
	inf := cache.NewSharedIndexInformer(lw, &discoveryv1.EndpointSlice{}, 0, cache.Indexers{})
	if _, err := inf.AddEventHandler(handler); err != nil {
		return fmt.Errorf("agent: watch %s: %w", name, err)
	}
	go inf.RunWithContext(a.ctx)
	nodes := a.factory.Core().V1().Nodes().Informer()
	_, err := nodes.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			n, ok := obj.(*corev1.Node)
			return ok && n.Name == a.nodeName
		},
		Handler: handler,
	})
	if err != nil {
		return fmt.Errorf("agent: watch node for %s: %w", name, err)
	}
	return nil
}

// dnsSlice is the EndpointSlice that makes addr this node's kube-dns endpoint, owned by the
// Node so that deleting the Node removes it (garbage collector).
func (a *Agent) dnsSlice(addr netip.Addr, owner *corev1.Node) *discoveryv1.EndpointSlice {
	addrType := discoveryv1.AddressTypeIPv4
	if addr.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	port := func(name string, proto corev1.Protocol, p int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(p)}
	}
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: DNSEndpointSliceName(a.nodeName), Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: DNSService,
				discoveryv1.LabelManagedBy:   DNSSliceManagedBy,
			},
		},
		AddressType: addrType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(a.nodeName),
		}},
		Ports: []discoveryv1.EndpointPort{
			port("dns", corev1.ProtocolUDP, DNSPort),
			port("dns-tcp", corev1.ProtocolTCP, DNSPort),
			port("metrics", corev1.ProtocolTCP, DefaultDNSMetricsPort),
		},
	}
	s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: owner.Name, UID: owner.UID}}
	return s
}

// ensureDNSSlice creates this node's kube-dns slice, or restores its labels, endpoints, ports
// and owner; without a Node it deletes the slice.
func (a *Agent) ensureDNSSlice(ctx context.Context, addr netip.Addr) error {
	c := a.client.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem)
	node, err := a.factory.Core().V1().Nodes().Lister().Get(a.nodeName)
	if apierrors.IsNotFound(err) {
		// A deleted Node takes its endpoint along (the garbage collector deletes the slice
		// it owns); do not publish one without an owner.
		err := c.Delete(ctx, DNSEndpointSliceName(a.nodeName), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s/%s: %w", metav1.NamespaceSystem, DNSEndpointSliceName(a.nodeName), err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	want := a.dnsSlice(addr, node)
	cur, err := c.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", want.Namespace, want.Name, err)
	}
	if sameDNSSlice(cur, want) {
		return nil
	}
	up := cur.DeepCopy()
	if up.Labels == nil {
		up.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		up.Labels[k] = v
	}
	up.OwnerReferences, up.AddressType, up.Endpoints, up.Ports = want.OwnerReferences, want.AddressType, want.Endpoints, want.Ports
	if _, err := c.Update(ctx, up, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

func sameDNSSlice(cur, want *discoveryv1.EndpointSlice) bool {
	for k, v := range want.Labels {
		if cur.Labels[k] != v {
			return false
		}
	}
	return cur.AddressType == want.AddressType && reflect.DeepEqual(cur.Endpoints, want.Endpoints) &&
		reflect.DeepEqual(cur.Ports, want.Ports) && reflect.DeepEqual(cur.OwnerReferences, want.OwnerReferences)
}
