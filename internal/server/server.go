// Package server assembles `kubesvc server`: storage on embedded or external etcd, the PKI,
// the API server, bootstrap objects and the controllers. Only cmd/kubesvc and tests import it.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"kubesvc/internal/apiserver"
	"kubesvc/internal/pki"
	"kubesvc/internal/storage"
)

// Version is the Kubernetes version kubesvc reports at /version.
var Version = version.Info{
	Major: "1", Minor: "37", GitVersion: "v1.37.2-kubesvc", GitCommit: "", GitTreeState: "clean",
	BuildDate: "", GoVersion: "", Compiler: "gc", Platform: "linux/amd64",
}

// Config is the server's configuration. NewConfig returns the defaults; flags override them.
type Config struct {
	DataDir            string   `json:"dataDir"`
	BindAddress        string   `json:"bindAddress"`
	HTTPSPort          int      `json:"httpsListenPort"`
	DatastoreEndpoints []string `json:"datastoreEndpoints"`
	EtcdPrefix         string   `json:"etcdPrefix"`
	// EtcdClientPort and EtcdPeerPort of the embedded etcd on 127.0.0.1; 0 picks free ports.
	EtcdClientPort int      `json:"etcdClientPort"`
	EtcdPeerPort   int      `json:"etcdPeerPort"`
	ServiceCIDR    string   `json:"serviceCIDR"`
	ClusterCIDR    string   `json:"clusterCIDR"`
	ClusterDNS     string   `json:"clusterDNS"`
	ClusterDomain  string   `json:"clusterDomain"`
	NodePortRange  string   `json:"serviceNodePortRange"`
	Token          string   `json:"token"`
	TLSSANs        []string `json:"tlsSANs"`
	DisableAgent   bool     `json:"disableAgent"`
	// NodeName and NodeIP are the server's own node (its agent); defaults as the agent's.
	NodeName string `json:"nodeName"`
	NodeIP   string `json:"nodeIP"`
	// Controllers selects the in-server controllers as kube-controller-manager's
	// --controllers does: "*" all, "name" one, "-name" all but one.
	Controllers []string `json:"controllers"`
	// NodeMonitorGracePeriod is how long a node may not renew its Lease (nor post status)
	// before the node lifecycle controller marks it Ready=Unknown.
	NodeMonitorGracePeriod time.Duration `json:"nodeMonitorGracePeriod"`
	// PodEvictionTimeout is how long pods stay on a node that is not Ready (unless they
	// tolerate it otherwise) before they are evicted.
	PodEvictionTimeout time.Duration `json:"podEvictionTimeout"`
	// Out receives the start-up messages (where the kubeconfig is, what listens, ready);
	// default os.Stdout. Not a flag.
	Out io.Writer `json:"-"`
}

// NewConfig returns the default configuration.
func NewConfig() *Config {
	return &Config{
		DataDir:        "/var/lib/kubesvc",
		BindAddress:    "0.0.0.0",
		HTTPSPort:      6443,
		EtcdPrefix:     "/registry",
		EtcdClientPort: 2379,
		EtcdPeerPort:   2380,
		ServiceCIDR:    "10.96.0.0/12",
		ClusterCIDR:    "10.244.0.0/16",
		ClusterDNS:     "10.96.0.10",
		ClusterDomain:  "cluster.local",
		NodePortRange:  "30000-32767",
		Controllers:    []string{"*"},

		NodeMonitorGracePeriod: 40 * time.Second,
		PodEvictionTimeout:     5 * time.Minute,
	}
}

// AddFlags binds the configuration to flags with Kubernetes/k3s names.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for etcd data, certificates, kubeconfig and token")
	fs.StringVar(&c.BindAddress, "bind-address", c.BindAddress, "address the API server listens on")
	fs.IntVar(&c.HTTPSPort, "https-listen-port", c.HTTPSPort, "HTTPS port of the API server (0 picks a free port)")
	fs.StringSliceVar(&c.DatastoreEndpoints, "datastore-endpoint", c.DatastoreEndpoints, "external etcd client URLs (comma separated); empty runs embedded etcd")
	fs.StringVar(&c.EtcdPrefix, "etcd-prefix", c.EtcdPrefix, "key prefix of all objects in etcd")
	fs.IntVar(&c.EtcdClientPort, "etcd-client-port", c.EtcdClientPort, "client port of the embedded etcd on 127.0.0.1 (0 picks a free port)")
	fs.IntVar(&c.EtcdPeerPort, "etcd-peer-port", c.EtcdPeerPort, "peer port of the embedded etcd on 127.0.0.1 (0 picks a free port)")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "ClusterIP range (one CIDR, or two comma-separated for dual-stack)")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "pod IP range, split into node podCIDRs")
	fs.StringVar(&c.ClusterDNS, "cluster-dns", c.ClusterDNS, "ClusterIP of the kube-dns Service")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "cluster DNS domain")
	fs.StringVar(&c.NodePortRange, "service-node-port-range", c.NodePortRange, "NodePort range")
	fs.StringVar(&c.Token, "token", c.Token, "node join token (default: DATA_DIR/token, created on first start)")
	fs.StringSliceVar(&c.TLSSANs, "tls-san", c.TLSSANs, "extra names or IPs for the serving certificate")
	fs.BoolVar(&c.DisableAgent, "disable-agent", c.DisableAgent, "do not run a node agent in the server")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "name of this host's node (default: the host name)")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "InternalIP of this host's node (default: the address of the default-route interface)")
	fs.StringSliceVar(&c.Controllers, "controllers", c.Controllers, "controllers to run: '*' all, 'name' one, '-name' all but one (names: "+strings.Join(ControllerNames, ", ")+")")
	fs.DurationVar(&c.NodeMonitorGracePeriod, "node-monitor-grace-period", c.NodeMonitorGracePeriod, "time a node may go without renewing its lease before it is marked Ready=Unknown")
	fs.DurationVar(&c.PodEvictionTimeout, "pod-eviction-timeout", c.PodEvictionTimeout, "time pods stay on a not-ready or unreachable node before they are evicted")
}

// Validate checks the configuration; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if c.NodeMonitorGracePeriod <= 0 || c.PodEvictionTimeout <= 0 {
		errs = append(errs, errors.New("--node-monitor-grace-period and --pod-eviction-timeout must be positive"))
	}
	if net.ParseIP(c.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address %q is not an IP address", c.BindAddress))
	}
	if c.HTTPSPort < 0 || c.HTTPSPort > 65535 {
		errs = append(errs, fmt.Errorf("--https-listen-port %d out of range", c.HTTPSPort))
	}
	for _, cidr := range strings.Split(c.ServiceCIDR, ",") {
		if _, err := netip.ParsePrefix(strings.TrimSpace(cidr)); err != nil {
			errs = append(errs, fmt.Errorf("--service-cidr: %w", err))
		}
	}
	if _, err := netip.ParsePrefix(c.ClusterCIDR); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
	}
	if _, err := netip.ParseAddr(c.ClusterDNS); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-dns: %w", err))
	}
	if _, _, err := parsePortRange(c.NodePortRange); err != nil {
		errs = append(errs, fmt.Errorf("--service-node-port-range: %w", err))
	}
	return errors.Join(errs...)
}

func parsePortRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not of the form BASE-MAX", s)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a valid port range", s)
	}
	return lo, hi, nil
}

// firstServiceIP returns the first usable IP of the first service CIDR (the kubernetes Service).
func firstServiceIP(cidrs string) netip.Addr {
	p, err := netip.ParsePrefix(strings.TrimSpace(strings.Split(cidrs, ",")[0]))
	if err != nil {
		return netip.Addr{}
	}
	return p.Masked().Addr().Next()
}

// Server is a running `kubesvc server`.
type Server struct {
	cfg        *Config
	ds         *datastore
	store      *storage.Store
	pki        *pki.Bundle
	svcs       *services
	http       *http.Server
	listener   net.Listener
	URL        string
	Kubeconfig string
	// RESTConfig is an admin client configuration for in-process users (tests, controllers).
	RESTConfig *rest.Config

	ctrl   *controllers
	nodes  *nodeAccess
	ready  chan struct{}
	errc   chan error
	cancel context.CancelFunc
}

// Start starts the server; it returns once the API is serving and bootstrap objects exist.
// On failure everything started so far is closed.
func Start(ctx context.Context, cfg *Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := cfg.Out
	if out == nil {
		out = os.Stdout
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{cfg: cfg, ready: make(chan struct{}), errc: make(chan error, 1), cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create --data-dir: %w", err)
	}
	s.ds, err = startDatastore(ctx, cfg.DataDir, cfg.DatastoreEndpoints, cfg.EtcdClientPort, cfg.EtcdPeerPort)
	if err != nil {
		return nil, err
	}
	hosts := append([]string{}, cfg.TLSSANs...)
	if cfg.BindAddress != "0.0.0.0" && cfg.BindAddress != "::" {
		hosts = append(hosts, cfg.BindAddress)
	}
	s.pki, err = pki.Ensure(pki.Config{Dir: cfg.DataDir, Hosts: hosts, ServiceIP: firstServiceIP(cfg.ServiceCIDR), Token: cfg.Token})
	if err != nil {
		return nil, err
	}
	s.store = storage.New(storage.Config{Client: s.ds.client, Prefix: cfg.EtcdPrefix})
	if err := s.store.StartCaches(); err != nil {
		return nil, err
	}
	if s.svcs, err = startServices(ctx, cfg, s.store); err != nil {
		return nil, err
	}
	s.listener, err = net.Listen("tcp", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort)))
	if err != nil {
		return nil, fmt.Errorf("listen on --bind-address/--https-listen-port: %w", err)
	}
	port := s.listener.Addr().(*net.TCPAddr).Port
	host := cfg.BindAddress
	if host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	oapi, err := openapiHandler()
	if err != nil {
		return nil, err
	}
	if s.nodes, err = newNodeAccess(cfg, s.store, s.pki); err != nil {
		return nil, err
	}
	api := apiserver.New(apiserver.Config{
		Store:     s.store,
		Kinds:     kinds(cfg),
		Version:   Version,
		Discovery: discoveryHandler(net.JoinHostPort(host, strconv.Itoa(port))),
		OpenAPI:   oapi,
		Hooks:     s.nodes.hooks(s.svcs.hooks()),
		Authenticate: func(r *http.Request) (apiserver.User, bool) {
			u, ok := s.pki.Authenticate(r)
			return apiserver.User{Name: u.Name, Groups: u.Groups}, ok
		},
		Authorize: s.nodes.authorize,
		Connect:   s.nodes.connectHandler(),
	})
	s.URL = "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	s.http = &http.Server{
		Handler:           s.nodes.wrap(cfg, api),
		TLSConfig:         s.pki.ServingTLS.Clone(),
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		// ServeTLS adds HTTP/2 (client-go multiplexes watches over one connection).
		if err := s.http.ServeTLS(s.listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	}()
	s.Kubeconfig, err = s.pki.WriteAdminKubeconfig(s.URL)
	if err != nil {
		return nil, err
	}
	s.RESTConfig, err = clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return nil, err
	}
	s.RESTConfig.QPS, s.RESTConfig.Burst = 1000, 2000
	fmt.Fprintf(out, "kubesvc: etcd %s (%s)\n", s.ds.URL, map[bool]string{true: "embedded", false: "external"}[s.ds.embedded != nil])
	fmt.Fprintf(out, "kubesvc: API server listening on https://%s (clients: %s)\n", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(port)), s.URL)
	fmt.Fprintf(out, "kubesvc: admin kubeconfig written to %s\n", s.Kubeconfig)
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	if err := s.bootstrapServices(ctx, port); err != nil {
		return nil, err
	}
	if s.ctrl, err = startControllers(ctx, s.RESTConfig, cfg.Controllers); err != nil {
		return nil, err
	}
	if err := s.ctrl.startWorkloadControllers(ctx, s.RESTConfig, cfg); err != nil {
		return nil, err
	}
	if err := s.startNodes(ctx, out); err != nil {
		return nil, err
	}
	close(s.ready)
	fmt.Fprintf(out, "kubesvc: ready\n")
	return s, nil
}

// bootstrap creates the system namespaces (idempotent).
func (s *Server) bootstrap(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(s.RESTConfig)
	if err != nil {
		return err
	}
	for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	return nil
}

// Ready is closed once the server serves and bootstrap objects exist.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Err reports a fatal serving error.
func (s *Server) Err() <-chan error { return s.errc }

// Token returns the node join token.
func (s *Server) Token() string { return s.pki.Token }

// Close shuts down in order: HTTP (ends watches), watch caches, etcd client, embedded etcd.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.nodes.close()
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
		_ = s.http.Close()
	} else if s.listener != nil {
		s.listener.Close()
	}
	if s.ctrl != nil {
		s.ctrl.wait()
	}
	if s.svcs != nil {
		s.svcs.close()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.ds != nil {
		s.ds.Close()
	}
	klog.Flush()
}
