package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kubesvc/internal/agent/dnsconfig"
	"kubesvc/internal/proxy"
)

// Services is the service part of a node running against any Kubernetes API server
// (`kubesvc agent --kubeconfig`, issue 6 item 5): the service proxy and the cluster DNS,
// without a join or pods. The DNS listens on --dns-bind-address, default the node IP (there is
// no pod bridge), and publishes kube-system/kube-dns-<node> like the full agent once the Node
// exists (a kubelet registered it); until then it serves without publishing.
type Services struct {
	proxy  *proxy.Proxier
	dns    *nodeDNS
	nodes  informers.SharedInformerFactory // this node only; started when the DNS publishes
	cancel context.CancelFunc
	done   chan struct{} // closed when the DNS loop (if s.dns is set) has stopped
}

// StartServices starts the node's service parts with the credentials of cfg.Proxy.Kubeconfig.
// --node-name and --node-ip are required (there is no join to learn them); --cluster-cidr,
// --service-cidr, --cluster-dns and --cluster-domain should be given (the API has no field
// for them; the zone defaults to cluster.local). On error nothing keeps running.
func StartServices(ctx context.Context, cfg *Config) (_ *Services, err error) {
	if cfg.NodeName == "" || cfg.NodeIP == "" {
		return nil, errors.New("agent: --kubeconfig needs --node-name and --node-ip")
	}
	if e := validation.IsDNS1123Subdomain(cfg.NodeName); len(e) > 0 {
		return nil, fmt.Errorf("agent: --node-name %q: %s", cfg.NodeName, strings.Join(e, "; "))
	}
	ips, err := ParseNodeIPs(cfg.NodeIP)
	if err != nil {
		return nil, fmt.Errorf("agent: --node-ip: %w", err)
	}
	ip := ips[0] // the DNS listens on the primary address
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Proxy.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("agent: --kubeconfig: %w", err)
	}
	useProtobuf(rc)
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("agent: --kubeconfig: %w", err)
	}
	s := &Services{done: make(chan struct{})}
	var runCtx context.Context
	runCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// The proxy first (both start their informers and return at once; the DNS answers from
	// its caches once they have synced).
	if s.proxy, err = runProxy(cfg.Proxy, proxyParams{client: client, nodeName: cfg.NodeName, nodeIPs: ips}); err != nil {
		return nil, err
	}
	if !cfg.DNS.Disable {
		if err := s.startDNS(runCtx, cfg, client, ip); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startDNS starts the cluster DNS on --dns-bind-address or the node IP; s.dns stays nil when
// the DNS is disabled (also by the --config file).
func (s *Services) startDNS(ctx context.Context, cfg *Config, client kubernetes.Interface, nodeIP netip.Addr) error {
	host, err := dnsconfig.ReadResolvConf(cfg.ResolvConf)
	if err != nil {
		return fmt.Errorf("agent: cluster DNS upstreams: %w", err)
	}
	settings := dnsconfig.Config{ClusterDomain: cfg.ClusterDomain, Host: host}
	if settings.ClusterDomain == "" {
		settings.ClusterDomain = "cluster.local"
	}
	if cfg.ClusterDNS != "" {
		settings.ClusterDNS = []string{cfg.ClusterDNS}
	}
	s.nodes = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
	}))
	nd, err := startNodeDNS(ctx, dnsParams{
		cfg: cfg.DNS, configFile: cfg.ConfigFile, client: client, nodeName: cfg.NodeName,
		nodes: s.nodes.Core().V1().Nodes().Informer(), settings: settings, addr: nodeIP,
	})
	if err != nil || nd == nil {
		return err
	}
	s.dns = nd
	s.nodes.Start(ctx.Done())
	go func() {
		defer close(s.done)
		nd.run(ctx)
	}()
	return nil
}

// DNSAddr returns the address the cluster DNS serves on port 53; invalid when it is off.
func (s *Services) DNSAddr() netip.Addr {
	if s.dns == nil {
		return netip.Addr{}
	}
	return s.dns.addr
}

// Ready is closed when the proxy has synced once (at once when it is off); the DNS serves
// from the start (it waits for its caches in StartServices).
func (s *Services) Ready() <-chan struct{} {
	if s.proxy == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.proxy.Ready()
}

// Close stops the service parts; kernel state stays, and so does the published kube-dns
// slice (a restarted agent takes it over; deleting the Node removes it).
func (s *Services) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.dns != nil {
		<-s.done
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.nodes != nil {
		s.nodes.Shutdown()
	}
}
