package agent

// Cluster DNS in the agent (DESIGN §5.4, issue 7): every agent runs internal/dns on its pod
// bridge's gateway address (--dns-bind-address overrides it), port 53 over UDP and TCP, with
// CoreDNS's metrics on port 9153 of the same address, and publishes the EndpointSlice
// kube-system/kube-dns-<node> that makes that address the node's endpoint of the selectorless
// kube-dns Service (internalTrafficPolicy Local: a pod's queries to --cluster-dns reach its own
// node's DNS). The services-only mode (`kubesvc agent --kubeconfig`, services.go) runs the
// same nodeDNS on the node IP.

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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"kubesvc/internal/agent/dnsconfig"
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
	// BindAddress is the IP the DNS (and its metrics) listens on and publishes; default the
	// pod bridge's gateway, or the node IP in services-only mode (no bridge there).
	BindAddress string `json:"bindAddress"`
	// Unpublished serves DNS without publishing the kube-system/kube-dns-<node> EndpointSlice
	// (for clusters whose kube-dns selects other DNS pods, or whose kubelets point
	// --cluster-dns at BindAddress directly, as with NodeLocal DNSCache).
	Unpublished bool `json:"unpublished"`
}

// AddFlags binds the DNS configuration to flags.
func (c *DNSConfig) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.Disable, "disable-dns", c.Disable, "run no cluster DNS server on this node")
	fs.StringSliceVar(&c.Upstreams, "dns-upstream", c.Upstreams, "upstream DNS servers (ip or ip:port) for names outside the cluster domain (default: the nameservers of --resolv-conf)")
	fs.IntVar(&c.MetricsPort, "dns-metrics-port", c.MetricsPort, "port of the DNS metrics on the DNS address (--dns-bind-address) (0: 9153; negative: off)")
	fs.StringVar(&c.PodMode, "dns-pods", c.PodMode, "pod records <ip-with-dashes>.<ns>.pod.<zone>: insecure (default), verified or disabled")
	fs.StringVar(&c.BindAddress, "dns-bind-address", c.BindAddress, "IP the cluster DNS listens on and publishes as this node's kube-dns endpoint (default: the pod bridge's gateway; with --kubeconfig: --node-ip)")
	fs.BoolVar(&c.Unpublished, "dns-unpublished", c.Unpublished, "do not publish this node's kube-system/kube-dns-<node> EndpointSlice (pods reach the DNS at --dns-bind-address some other way)")
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
	if c.BindAddress != "" {
		if _, err := netip.ParseAddr(c.BindAddress); err != nil {
			errs = append(errs, fmt.Errorf("--dns-bind-address: %w", err))
		}
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

// dnsParams is what a node's cluster DNS needs from the process running it: the full agent
// (startDNS) or the services-only mode (StartServices, services.go).
type dnsParams struct {
	cfg DNSConfig
	// configFile is --config; its "dns" object fills the fields cfg leaves unset.
	configFile string
	client     kubernetes.Interface
	nodeName   string
	// nodes is an informer that holds (at least) this node's Node, the owner of the
	// published slice. Nothing is published or deleted before it has synced.
	nodes cache.SharedIndexInformer
	// settings are the zone, the cluster DNS IPs and the node's resolver.
	settings dnsconfig.Config
	// addr is the listen address when cfg.BindAddress is empty: the pod gateway (agent) or
	// the node IP (services-only mode).
	addr netip.Addr
}

// nodeDNS is the running DNS of a node.
type nodeDNS struct {
	dnsParams
	server  *dns.Server
	metrics *http.Server
	addr    netip.Addr
	poke    chan struct{} // nil when the slice is not published
}

// Retry delays of a failed slice publication (doubling up to dnsSliceResync), so a client
// without the right to write EndpointSlices in kube-system does not flood the log.
const dnsSliceRetry = 2 * time.Second

// startDNS starts the node's DNS server on the pod gateway and keeps its kube-dns
// EndpointSlice published until the agent closes; Close waits for the DNS to stop.
func (a *Agent) startDNS(context.Context) error {
	nd, err := startNodeDNS(a.ctx, dnsParams{
		cfg: a.cfg.DNS, configFile: a.cfg.ConfigFile, client: a.client, nodeName: a.nodeName,
		nodes: a.factory.Core().V1().Nodes().Informer(), settings: a.dns, addr: a.PodGateway(),
	})
	if err != nil || nd == nil {
		return err
	}
	a.goLoop("dns", nd.run)
	return nil
}

// startNodeDNS starts the DNS server (and its metrics) on p's address; nil when disabled. The
// caller runs nd.run, which publishes the slice and stops the DNS when its context ends.
func startNodeDNS(ctx context.Context, p dnsParams) (*nodeDNS, error) {
	cfg := p.cfg
	if err := loadDNSFile(p.configFile, &cfg); err != nil {
		return nil, err
	}
	if cfg.Disable {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	addr := p.addr
	if cfg.BindAddress != "" {
		addr = netip.MustParseAddr(cfg.BindAddress).Unmap() // checked by Validate
	}
	if !addr.IsValid() {
		return nil, errors.New("agent: cluster DNS: the node has no pod gateway address; set --dns-bind-address")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := dns.New(dns.Config{
		Zone:      p.settings.ClusterDomain,
		Listen:    []string{net.JoinHostPort(addr.String(), strconv.Itoa(DNSPort))},
		Upstreams: dnsUpstreams(cfg, p.settings, addr),
		PodMode:   cfg.PodMode,
		Client:    p.client,
		Metrics:   reg,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: cluster DNS: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("agent: cluster DNS on %s (--dns-bind-address; --disable-dns runs none): %w", addr, err)
	}
	nd := &nodeDNS{dnsParams: p, server: srv, addr: addr}
	if port := cfg.MetricsPort; port >= 0 {
		if port == 0 {
			port = DefaultDNSMetricsPort
		}
		if nd.metrics, err = serveDNSMetrics(net.JoinHostPort(addr.String(), strconv.Itoa(port)), reg); err != nil {
			srv.Close()
			return nil, fmt.Errorf("agent: cluster DNS metrics: %w", err)
		}
	}
	if cfg.Unpublished {
		return nd, nil
	}
	nd.poke = make(chan struct{}, 1)
	if err := nd.watchSlice(ctx); err != nil {
		nd.close()
		return nil, err
	}
	if nd.nodes.HasSynced() {
		if err := nd.ensureSlice(ctx); err != nil {
			klog.ErrorS(err, "publish the kube-dns endpoint (retrying)", "node", nd.nodeName)
			nd.notify()
		}
	}
	return nd, nil
}

// run keeps this node's kube-dns EndpointSlice published (restored when edited or deleted,
// re-owned when the Node is re-created) until ctx ends, then stops the DNS.
func (nd *nodeDNS) run(ctx context.Context) {
	defer nd.close()
	if nd.poke == nil {
		<-ctx.Done()
		return
	}
	// The slice follows the Node: decide nothing from a cache that has not listed it yet.
	if !cache.WaitForCacheSync(ctx.Done(), nd.nodes.HasSynced) {
		return
	}
	// Published ready only once the DNS answers from synced caches (CoreDNS's readiness
	// waits for its kubernetes plugin the same way): before that, pods sent here would time
	// out.
	select {
	case <-ctx.Done():
		return
	case <-nd.server.Ready():
	}
	nd.notify()
	t := time.NewTicker(dnsSliceResync)
	defer t.Stop()
	retry := dnsSliceRetry
	for {
		select {
		case <-ctx.Done():
			return
		case <-nd.poke:
		case <-t.C:
		}
		err := nd.ensureSlice(ctx)
		if err == nil {
			retry = dnsSliceRetry
			continue
		}
		if ctx.Err() != nil {
			return
		}
		klog.ErrorS(err, "publish the kube-dns endpoint", "node", nd.nodeName, "retryIn", retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, dnsSliceResync)
		nd.notify()
	}
}

func (nd *nodeDNS) notify() {
	select {
	case nd.poke <- struct{}{}:
	default:
	}
}

func (nd *nodeDNS) close() {
	nd.server.Close()
	if nd.metrics != nil {
		_ = nd.metrics.Close()
	}
}

// loadDNSFile fills the DNS settings the flags left at their zero values from the --config
// file's "dns" object.
func (a *Agent) loadDNSFile(cfg *DNSConfig) error { return loadDNSFile(a.cfg.ConfigFile, cfg) }

func loadDNSFile(configFile string, cfg *DNSConfig) error {
	if configFile == "" {
		return nil
	}
	data, err := os.ReadFile(configFile)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var file struct {
		DNS DNSConfig `json:"dns"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return fmt.Errorf("--config %s: %w", configFile, err)
	}
	cfg.Disable = cfg.Disable || file.DNS.Disable
	cfg.Unpublished = cfg.Unpublished || file.DNS.Unpublished
	if len(cfg.Upstreams) == 0 {
		cfg.Upstreams = file.DNS.Upstreams
	}
	if cfg.MetricsPort == 0 {
		cfg.MetricsPort = file.DNS.MetricsPort
	}
	if cfg.PodMode == "" {
		cfg.PodMode = file.DNS.PodMode
	}
	if cfg.BindAddress == "" {
		cfg.BindAddress = file.DNS.BindAddress
	}
	return nil
}

// dnsUpstreams returns the configured upstreams, or the node resolver's nameservers minus the
// addresses that are this DNS itself (the gateway, the cluster DNS IPs), which would loop.
func (a *Agent) dnsUpstreams(cfg DNSConfig, gw netip.Addr) []string {
	return dnsUpstreams(cfg, a.dns, gw)
}

func dnsUpstreams(cfg DNSConfig, settings dnsconfig.Config, self netip.Addr) []string {
	if len(cfg.Upstreams) > 0 {
		return cfg.Upstreams
	}
	selves := map[netip.Addr]bool{self: true}
	for _, s := range settings.ClusterDNS {
		if ip, err := netip.ParseAddr(s); err == nil {
			selves[ip.Unmap()] = true
		}
	}
	var out []string
	for _, s := range settings.Host.Nameservers {
		ap, err := parseUpstream(s)
		if err != nil || selves[ap.Addr()] {
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

// watchSlice pokes when this node's kube-dns slice or its Node changes, so a deleted or
// edited slice is restored and a re-created Node becomes the slice's owner.
func (nd *nodeDNS) watchSlice(ctx context.Context) error {
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { nd.notify() },
		UpdateFunc: func(any, any) { nd.notify() },
		DeleteFunc: func(any) { nd.notify() },
	}
	name := DNSEndpointSliceName(nd.nodeName)
	lw := cache.NewListWatchFromClient(nd.client.DiscoveryV1().RESTClient(), "endpointslices", metav1.NamespaceSystem,
		fields.OneTermEqualSelector("metadata.name", name))
	inf := cache.NewSharedIndexInformer(lw, &discoveryv1.EndpointSlice{}, 0, cache.Indexers{})
	if _, err := inf.AddEventHandler(handler); err != nil {
		return fmt.Errorf("agent: watch %s: %w", name, err)
	}
	go inf.RunWithContext(ctx)
	_, err := nd.nodes.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			n, ok := obj.(*corev1.Node)
			return ok && n.Name == nd.nodeName
		},
		Handler: handler,
	})
	if err != nil {
		return fmt.Errorf("agent: watch node for %s: %w", name, err)
	}
	return nil
}

// slice is the EndpointSlice that makes nd.addr this node's kube-dns endpoint, owned by the
// Node so that deleting the Node removes it (garbage collector).
func (nd *nodeDNS) slice(owner *corev1.Node) *discoveryv1.EndpointSlice {
	addrType := discoveryv1.AddressTypeIPv4
	if nd.addr.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	port := func(name string, proto corev1.Protocol, p int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(p)}
	}
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: DNSEndpointSliceName(nd.nodeName), Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: DNSService,
				discoveryv1.LabelManagedBy:   DNSSliceManagedBy,
			},
		},
		AddressType: addrType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{nd.addr.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(nd.nodeName),
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

// ensureSlice creates this node's kube-dns slice, or restores its labels, endpoints, ports
// and owner; without a Node it deletes the slice (a Kubernetes API server where no kubelet
// registered the node gets no slice, and nothing fails: the Node's creation pokes again).
func (nd *nodeDNS) ensureSlice(ctx context.Context) error {
	c := nd.client.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem)
	name := DNSEndpointSliceName(nd.nodeName)
	obj, exists, err := nd.nodes.GetIndexer().GetByKey(nd.nodeName)
	if err != nil {
		return err
	}
	node, ok := obj.(*corev1.Node)
	if !exists || !ok {
		// A deleted Node takes its endpoint along (the garbage collector deletes the slice
		// it owns); do not publish one without an owner.
		err := c.Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s/%s: %w", metav1.NamespaceSystem, name, err)
		}
		return nil
	}
	want := nd.slice(node)
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
