// Package agent is the kubesvc node agent (DESIGN §5): it joins the cluster with the token,
// registers its Node (addresses, capacity, Ready, podCIDR from the server), renews its Lease
// every 10 s, routes to other nodes' podCIDRs, and runs the pods bound to it through
// internal/runtime like a kubelet: sandboxes, containers with the kubelet's environment,
// probes, restart back-off, status and graceful termination. It serves pods/log, exec and
// portforward to the API server on the kubelet port.
//
// Imported by cmd/kubesvc (`kubesvc agent`) and internal/server (the server's own node).
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"kubesvc/internal/agent/dnsconfig"
	"kubesvc/internal/agent/images"
	"kubesvc/internal/agent/join"
	"kubesvc/internal/agent/streaming"
	"kubesvc/internal/runtime"
)

// Defaults of the agent's timing, as the kubelet's.
const (
	DefaultLeaseDuration      = 40 * time.Second
	DefaultBackoffInitial     = 10 * time.Second
	DefaultBackoffMax         = 300 * time.Second
	DefaultRelistPeriod       = time.Second
	DefaultNodeStatusPeriod   = 10 * time.Second
	DefaultKubeletPort        = 10250
	DefaultPodCIDRWaitTimeout = 2 * time.Minute
)

// Config is the agent's configuration. NewConfig returns the defaults; flags and the config
// file (--config) override them.
type Config struct {
	// Server is the API server URL; required.
	Server string `json:"server"`
	// Token is the join token; required.
	Token string `json:"token"`
	// NodeName defaults to the host name (lower case).
	NodeName string `json:"nodeName"`
	// NodeIP is the node's InternalIP; default: the address of the interface with the
	// default route, else the first global unicast address.
	NodeIP string `json:"nodeIP"`
	// DataDir holds credentials, pod state and logs; default /var/lib/kubesvc/agent.
	DataDir string `json:"dataDir"`
	// KubeletPort serves pods/log, exec and portforward on NodeIP (10250; 0 picks a port).
	KubeletPort int `json:"kubeletPort"`
	// ResolvConf is the node's resolver configuration for dnsPolicy Default.
	ResolvConf string `json:"resolvConf"`
	// ClusterDNS and ClusterDomain override what the server announces at join.
	ClusterDNS    string `json:"clusterDNS"`
	ClusterDomain string `json:"clusterDomain"`
	// Bridge is the node bridge (kubesvc0).
	Bridge string `json:"bridge"`
	// Images maps image names to host commands (the image catalog, DESIGN §5.2).
	Images []images.Entry `json:"images"`
	// BackoffInitial and BackoffMax are the container restart back-off (10 s doubling to
	// 5 min, as the kubelet).
	BackoffInitial time.Duration `json:"backoffInitial"`
	BackoffMax     time.Duration `json:"backoffMax"`
	// LeaseDurationSeconds is the node Lease's duration (40); it is renewed every quarter of it.
	LeaseDurationSeconds int32 `json:"nodeLeaseDurationSeconds"`
	// NodeStatusPeriod is how often the Node's status is checked and re-posted if needed.
	NodeStatusPeriod time.Duration `json:"nodeStatusPeriod"`
	// Exe is the kubesvc binary for shims, exec sessions and toolbox images; default the
	// running executable.
	Exe string `json:"exe"`
	// Labels are extra Node labels.
	Labels map[string]string `json:"labels"`
	// DNS configures the node's cluster DNS server (dns.go).
	DNS DNSConfig `json:"dns"`
	// Proxy configures the node's service proxy (proxy.go).
	Proxy ProxyConfig `json:"proxy"`
	// ConfigFile is a YAML or JSON file with these fields (--config); read by Load.
	ConfigFile string `json:"-"`
	// Out receives start-up messages; default os.Stdout. Not a flag.
	Out io.Writer `json:"-"`
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	return &Config{
		DataDir:              "/var/lib/kubesvc/agent",
		KubeletPort:          DefaultKubeletPort,
		ResolvConf:           "/etc/resolv.conf",
		Bridge:               "kubesvc0",
		BackoffInitial:       DefaultBackoffInitial,
		BackoffMax:           DefaultBackoffMax,
		LeaseDurationSeconds: int32(DefaultLeaseDuration / time.Second),
		NodeStatusPeriod:     DefaultNodeStatusPeriod,
	}
}

// AddFlags binds the configuration to flags (kubelet/k3s names).
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Server, "server", c.Server, "API server URL (https://host:6443)")
	fs.StringVar(&c.Token, "token", c.Token, "join token (the server's DATA_DIR/token)")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "node name (default: the host name)")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "node InternalIP, or an IPv4,IPv6 pair for a dual-stack node (the first is primary; the proxy serves the families given) (default: the address of the default-route interface)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for credentials, pod state and logs")
	fs.IntVar(&c.KubeletPort, "kubelet-port", c.KubeletPort, "port serving pods/log, exec and portforward to the API server")
	fs.StringVar(&c.ResolvConf, "resolv-conf", c.ResolvConf, "resolver configuration of dnsPolicy Default")
	fs.StringVar(&c.ClusterDNS, "cluster-dns", c.ClusterDNS, "cluster DNS IP (default: the server's)")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "cluster domain (default: the server's)")
	fs.DurationVar(&c.BackoffInitial, "container-backoff", c.BackoffInitial, "first container restart back-off (doubles up to --container-backoff-max)")
	fs.DurationVar(&c.BackoffMax, "container-backoff-max", c.BackoffMax, "maximum container restart back-off")
	fs.StringToStringVar(&c.Labels, "node-labels", c.Labels, "extra node labels")
	fs.Int32Var(&c.LeaseDurationSeconds, "node-lease-duration-seconds", c.LeaseDurationSeconds, "duration of the node Lease, renewed every quarter of it")
	c.DNS.AddFlags(fs)
	c.Proxy.AddFlags(fs)
	fs.StringVar(&c.ConfigFile, "config", c.ConfigFile, "YAML/JSON config file (fields of the agent Config, e.g. images: [{name, entrypoint, cmd, env}])")
}

// Load merges the config file, if any, under the flags already set: file values fill only
// fields the flags left at their defaults.
func (c *Config) Load() error {
	if c.ConfigFile == "" {
		return nil
	}
	data, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	file := NewConfig()
	if err := yaml.UnmarshalStrict(data, file); err != nil {
		return fmt.Errorf("--config %s: %w", c.ConfigFile, err)
	}
	def := NewConfig()
	fill := func(dst *string, def, file string) {
		if *dst == def && file != def {
			*dst = file
		}
	}
	fill(&c.Server, def.Server, file.Server)
	fill(&c.Token, def.Token, file.Token)
	fill(&c.NodeName, def.NodeName, file.NodeName)
	fill(&c.NodeIP, def.NodeIP, file.NodeIP)
	fill(&c.DataDir, def.DataDir, file.DataDir)
	fill(&c.ResolvConf, def.ResolvConf, file.ResolvConf)
	fill(&c.ClusterDNS, def.ClusterDNS, file.ClusterDNS)
	fill(&c.ClusterDomain, def.ClusterDomain, file.ClusterDomain)
	c.Images = append(c.Images, file.Images...)
	for k, v := range file.Labels {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		if _, ok := c.Labels[k]; !ok {
			c.Labels[k] = v
		}
	}
	if c.KubeletPort == def.KubeletPort {
		c.KubeletPort = file.KubeletPort
	}
	if c.BackoffInitial == def.BackoffInitial {
		c.BackoffInitial = file.BackoffInitial
	}
	if c.BackoffMax == def.BackoffMax {
		c.BackoffMax = file.BackoffMax
	}
	if c.LeaseDurationSeconds == def.LeaseDurationSeconds {
		c.LeaseDurationSeconds = file.LeaseDurationSeconds
	}
	return nil
}

// Validate checks the configuration; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, errors.New("--server is required"))
	} else if !strings.HasPrefix(c.Server, "https://") {
		errs = append(errs, fmt.Errorf("--server %q must be an https:// URL", c.Server))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("--token is required"))
	}
	if c.NodeName != "" {
		if e := validation.IsDNS1123Subdomain(c.NodeName); len(e) > 0 {
			errs = append(errs, fmt.Errorf("--node-name %q: %s", c.NodeName, strings.Join(e, "; ")))
		}
	}
	if c.NodeIP != "" {
		if _, err := ParseNodeIPs(c.NodeIP); err != nil {
			errs = append(errs, fmt.Errorf("--node-ip: %w", err))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if c.KubeletPort < 0 || c.KubeletPort > 65535 {
		errs = append(errs, fmt.Errorf("--kubelet-port %d out of range", c.KubeletPort))
	}
	if c.LeaseDurationSeconds <= 0 {
		errs = append(errs, fmt.Errorf("--node-lease-duration-seconds %d must be positive", c.LeaseDurationSeconds))
	}
	if c.BackoffInitial <= 0 || c.BackoffMax < c.BackoffInitial {
		errs = append(errs, fmt.Errorf("--container-backoff %s and --container-backoff-max %s: need 0 < initial <= max", c.BackoffInitial, c.BackoffMax))
	}
	return errors.Join(errs...)
}

// Agent is a running node agent.
type Agent struct {
	cfg      Config
	nodeName string
	nodeIP   netip.Addr   // the primary InternalIP: nodeIPs[0]
	nodeIPs  []netip.Addr // --node-ip: one address, or an IPv4 and an IPv6 one
	cluster  join.Cluster
	// RESTConfig is the node identity's client configuration.
	RESTConfig *rest.Config
	client     kubernetes.Interface
	caPEM      []byte
	podCIDR    netip.Prefix
	rt         *runtime.Runtime
	rtReady    atomic.Bool // rt and podFactory are set (read by the kubelet port)
	catalog    *images.Catalog
	dns        dnsconfig.Config
	factory    informers.SharedInformerFactory // services and nodes
	podFactory informers.SharedInformerFactory // pods bound to this node
	recorder   record.EventRecorder
	broadcast  record.EventBroadcaster
	streaming  *streaming.Server
	// KubeletPort is the port serving pods/log, exec and portforward.
	KubeletPort int

	mu      sync.Mutex
	workers map[types.UID]*podWorker

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  chan struct{}
	errc   chan error
	routes chan struct{}
}

// Start joins the cluster, registers the Node, waits for its podCIDR, adopts the pods of a
// previous run and starts serving. It returns once the agent is ready; on failure everything
// started so far is closed.
func Start(ctx context.Context, cfg *Config) (_ *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: *cfg, workers: map[types.UID]*podWorker{}, ready: make(chan struct{}), errc: make(chan error, 1), routes: make(chan struct{}, 1)}
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	out := cfg.Out
	if out == nil {
		out = os.Stdout
	}
	if a.cfg.Exe == "" {
		if a.cfg.Exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("agent: find own executable: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: --data-dir: %w", err)
	}
	if a.nodeName, err = nodeName(cfg.NodeName); err != nil {
		return nil, err
	}
	if a.nodeIPs, err = nodeIPs(cfg.NodeIP); err != nil {
		return nil, err
	}
	a.nodeIP = a.nodeIPs[0]
	if err := a.credentials(ctx); err != nil {
		return nil, err
	}
	if a.catalog, err = images.New(a.cfg.Exe, cfg.Images); err != nil {
		return nil, err
	}
	if err := a.setupDNS(); err != nil {
		return nil, err
	}
	a.broadcast = record.NewBroadcaster(record.WithContext(a.ctx))
	a.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	a.recorder = a.broadcast.NewRecorder(eventScheme(), corev1.EventSource{Component: "kubelet", Host: a.nodeName})
	if a.streaming, err = streaming.Start(streaming.Config{
		CAPEM: a.caPEM, NodeName: a.nodeName, IP: a.nodeIP.String(), Port: cfg.KubeletPort,
		Runtime: a.runtime, Pod: a.pod,
	}); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.KubeletPort = a.streaming.Port()
	if err := a.registerNode(ctx); err != nil {
		return nil, err
	}
	if a.podCIDR, err = a.waitPodCIDR(ctx); err != nil {
		return nil, err
	}
	if a.rt, err = runtime.New(runtime.Config{DataDir: filepath.Join(cfg.DataDir, "runtime"), Exe: a.cfg.Exe, Bridge: cfg.Bridge, PodCIDR: a.podCIDR}); err != nil {
		return nil, err
	}
	if err := a.startInformers(ctx); err != nil {
		return nil, err
	}
	a.rtReady.Store(true) // after podFactory is set: the kubelet port reads both
	a.adopt()
	a.goLoop("lease", a.leaseLoop)
	a.goLoop("node-status", a.nodeStatusLoop)
	a.goLoop("routes", a.routeLoop)
	a.goLoop("relist", a.relistLoop)
	if err := a.startDNS(ctx); err != nil {
		return nil, err
	}
	if err := a.startProxy(ctx); err != nil {
		return nil, err
	}
	if err := a.setNodeReady(ctx); err != nil {
		return nil, err
	}
	close(a.ready)
	fmt.Fprintf(out, "kubesvc agent: node %s (%s, podCIDR %s) joined %s; kubelet port %d\n", a.nodeName, a.nodeIP, a.podCIDR, cfg.Server, a.KubeletPort)
	return a, nil
}

// NodeName returns the registered node name.
func (a *Agent) NodeName() string { return a.nodeName }

// NodeIP returns the node's InternalIP.
func (a *Agent) NodeIP() netip.Addr { return a.nodeIP }

// PodCIDR returns the node's pod range.
func (a *Agent) PodCIDR() netip.Prefix { return a.podCIDR }

// PodGateway returns the pods' default gateway, the node bridge's address (where node-local
// services such as the cluster DNS listen).
func (a *Agent) PodGateway() netip.Addr {
	if b := a.rt.Bridge(); b != nil {
		return b.Gateway
	}
	return netip.Addr{}
}

// Client returns the node identity's clientset.
func (a *Agent) Client() kubernetes.Interface { return a.client }

// Ready is closed once the agent runs pods.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Err reports a fatal error.
func (a *Agent) Err() <-chan error {
	if a.streaming != nil {
		return a.streaming.Err()
	}
	return a.errc
}

// Close stops the agent: the streaming server, informers, probes and loops. Running pods keep
// running (a restarted agent adopts them), as when a kubelet stops.
func (a *Agent) Close() {
	if a.cancel != nil {
		a.cancel()
	}
	if a.streaming != nil {
		a.streaming.Close()
	}
	a.mu.Lock()
	workers := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		workers = append(workers, w)
	}
	a.mu.Unlock()
	for _, w := range workers {
		w.stop()
	}
	a.wg.Wait()
	if a.factory != nil {
		a.factory.Shutdown()
	}
	if a.podFactory != nil {
		a.podFactory.Shutdown()
	}
	if a.broadcast != nil {
		a.broadcast.Shutdown()
	}
}

// runtime returns the pod runtime once it exists.
func (a *Agent) runtime() *runtime.Runtime {
	if !a.rtReady.Load() {
		return nil
	}
	return a.rt
}

// pod returns a pod bound to this node from the informer cache.
func (a *Agent) pod(namespace, name string) (*corev1.Pod, error) {
	if a.podFactory == nil {
		return nil, fmt.Errorf("pods not synced yet")
	}
	return a.podFactory.Core().V1().Pods().Lister().Pods(namespace).Get(name)
}

// goLoop runs f until the agent closes.
func (a *Agent) goLoop(name string, f func(context.Context)) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		klog.V(4).InfoS("agent loop started", "loop", name)
		f(a.ctx)
	}()
}

func (a *Agent) setupDNS() error {
	host, err := dnsconfig.ReadResolvConf(a.cfg.ResolvConf)
	if err != nil {
		return err
	}
	dnsIP, zone := a.cluster.ClusterDNS, a.cluster.ClusterDomain
	if a.cfg.ClusterDNS != "" {
		dnsIP = a.cfg.ClusterDNS
	}
	if a.cfg.ClusterDomain != "" {
		zone = a.cfg.ClusterDomain
	}
	if zone == "" {
		zone = "cluster.local"
	}
	a.dns = dnsconfig.Config{ClusterDomain: zone, Host: host}
	if dnsIP != "" {
		a.dns.ClusterDNS = []string{dnsIP}
	}
	return nil
}

// nodeName is --node-name or the lower-case host name.
func nodeName(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("agent: host name: %w", err)
	}
	h = strings.ToLower(h)
	if e := validation.IsDNS1123Subdomain(h); len(e) > 0 {
		return "", fmt.Errorf("agent: host name %q is not a valid node name (%s): set --node-name", h, strings.Join(e, "; "))
	}
	return h, nil
}

// ParseNodeIPs parses --node-ip as the kubelet does: one address, or two of different
// families ("IPv4,IPv6" or "IPv6,IPv4") for a dual-stack node; the first is the primary.
func ParseNodeIPs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		ip, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if ip = ip.Unmap(); ip.IsUnspecified() || ip.IsLoopback() {
			return nil, fmt.Errorf("%s cannot be a node address", ip)
		}
		out = append(out, ip)
	}
	if len(out) > 2 || (len(out) == 2 && out[0].Is4() == out[1].Is4()) {
		return nil, fmt.Errorf("%q: want one address, or one IPv4 and one IPv6 address", s)
	}
	return out, nil
}

// nodeIPs is --node-ip (ParseNodeIPs), or else the source address of the default route, or
// the first global unicast IPv4 address outside the pod bridge.
func nodeIPs(flag string) ([]netip.Addr, error) {
	if flag != "" {
		return ParseNodeIPs(flag)
	}
	ip, err := defaultNodeIP()
	if err != nil {
		return nil, err
	}
	return []netip.Addr{ip}, nil
}

func defaultNodeIP() (netip.Addr, error) {
	// A UDP "connect" picks the source address of the default route without sending.
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer c.Close()
		if a, ok := netip.AddrFromSlice(c.LocalAddr().(*net.UDPAddr).IP); ok {
			return a.Unmap(), nil
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "kubesvc") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				ip, _ := netip.AddrFromSlice(n.IP.To4())
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("agent: no node IP found: set --node-ip")
}
