package peertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// Defaults applied by RunKubeAPIServer to an APIServerConfig's empty fields.
const (
	DefaultEtcdPrefix    = "/registry"
	DefaultServiceCIDR   = "10.96.0.0/16"
	DefaultNodePortRange = "30000-32767"
)

// ErrNoEtcd is returned when APIServerConfig.EtcdURL is empty.
var ErrNoEtcd = errors.New("peertest: APIServerConfig.EtcdURL is required")

// APIServerConfig configures a peer kube-apiserver. Only EtcdURL is required.
type APIServerConfig struct {
	// EtcdURL is the etcd client URL (--etcd-servers), for example from StartEtcd.
	EtcdURL string `json:"etcdURL"`
	// EtcdPrefix is --etcd-prefix; empty means DefaultEtcdPrefix. Give kube-apiserver and
	// kubesvc different prefixes to let them share one etcd in benchmarks.
	EtcdPrefix string `json:"etcdPrefix,omitempty"`
	// ServiceCIDR is --service-cluster-ip-range (one CIDR or an IPv4,IPv6 pair); empty means
	// DefaultServiceCIDR.
	ServiceCIDR string `json:"serviceCIDR,omitempty"`
	// NodePortRange is --service-node-port-range; empty means DefaultNodePortRange.
	NodePortRange string `json:"nodePortRange,omitempty"`
	// BindAddress is --bind-address and --advertise-address, the host of URL, Config and
	// Kubeconfig, and an IP of the serving certificate; empty means 127.0.0.1. Tests give a
	// LAN address of their own network namespace (e.g. a testcluster world's 198.51.100.1)
	// so that processes in other namespaces of the test can reach the server.
	BindAddress string `json:"bindAddress,omitempty"`
	// ExtraArgs are appended to the generated flags; a --name=value here replaces the
	// generated flag of the same name (e.g. --authorization-mode=AlwaysAllow).
	ExtraArgs []string `json:"extraArgs,omitempty"`
	// Dir holds the generated certificates, the kubeconfig and the log. Empty means a
	// temporary directory, removed by Stop (Run) or by the test (Start).
	Dir string `json:"dir,omitempty"`
	// ReadyTimeout bounds the wait for /readyz; zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration `json:"readyTimeout,omitempty"`
}

// APIServer is a running peer kube-apiserver. Stop (from the embedded Process) ends it.
type APIServer struct {
	// URL is the https://127.0.0.1:port (or BindAddress) address of the secure port.
	URL string
	// Config authenticates as AdminUser in group system:masters with a client certificate.
	// Copy it (rest.CopyConfig) before changing QPS, Burst or content types.
	Config *rest.Config
	// Dir holds ca.crt, apiserver.{crt,key}, admin.{crt,key}, sa.{key,pub}, the kubeconfig
	// and kube-apiserver.log.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig file for kubectl and other peers.
	Kubeconfig string
	// ServiceAccountKeyFile is the service-account signing key, for a controller manager's
	// --service-account-private-key-file.
	ServiceAccountKeyFile string
	*Process
}

// StartKubeAPIServer starts kube-apiserver v1.37.2 against cfg.EtcdURL, waits for /readyz and
// returns an admin rest.Config. The process is stopped by tb.Cleanup.
func StartKubeAPIServer(tb testing.TB, cfg APIServerConfig) (*rest.Config, error) {
	tb.Helper()
	s, err := startForTest(tb, cfg)
	if err != nil {
		return nil, err
	}
	return s.Config, nil
}

// startForTest runs kube-apiserver for one test: an empty cfg.Dir means a temporary
// directory of the test; the process stops in tb.Cleanup.
func startForTest(tb testing.TB, cfg APIServerConfig) (*APIServer, error) {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	s, err := RunKubeAPIServer(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	tieToTest(tb, s.Process)
	return s, nil
}

// StartKubeAPIServerOnEtcd starts a fresh peer etcd (without fsync) and kube-apiserver
// v1.37.2 on it for one test: cfg.EtcdURL is set here, an empty cfg.Dir means a temporary
// directory of the test, and both processes stop in tb.Cleanup (the log tails are logged
// when the test failed). The handle gives the kubeconfig path as well as the rest.Config.
func StartKubeAPIServerOnEtcd(tb testing.TB, cfg APIServerConfig) (*APIServer, error) {
	tb.Helper()
	etcd, err := StartEtcd(tb, EtcdConfig{UnsafeNoFsync: true})
	if err != nil {
		return nil, err
	}
	cfg.EtcdURL = etcd
	return startForTest(tb, cfg)
}

// RunKubeAPIServer starts kube-apiserver on a free 127.0.0.1 port with generated certificates
// (serving, admin client, service-account signing key), RBAC authorization, the default
// admission plugins and --endpoint-reconciler-type=none (a loopback advertise address is not
// a valid Endpoints address), and waits for /readyz. It stops when ctx is done or when the
// caller calls Stop.
func RunKubeAPIServer(ctx context.Context, cfg APIServerConfig) (*APIServer, error) {
	if cfg.EtcdURL == "" {
		return nil, ErrNoEtcd
	}
	bin, err := binary(KubeAPIServerBinary)
	if err != nil {
		return nil, err
	}
	dir, cleanup, err := workDir(cfg.Dir, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	if cfg.BindAddress != "" {
		ip := net.ParseIP(cfg.BindAddress)
		if ip == nil {
			cleanup()
			return nil, fmt.Errorf("run kube-apiserver: BindAddress %q is not an IP", cfg.BindAddress)
		}
		ips = append(ips, ip)
	}
	pki, err := writePKI(dir, ips, []string{"localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("run kube-apiserver: %w", err)
	}
	s, err := startWithRetry(func() (*APIServer, *Process, error) {
		return startKubeAPIServer(ctx, bin, dir, pki, cfg)
	})
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("run kube-apiserver: %w", err)
	}
	s.cleanup = cleanup
	return s, nil
}

func startKubeAPIServer(ctx context.Context, bin, dir string, pki *pkiFiles, cfg APIServerConfig) (*APIServer, *Process, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, nil, err
	}
	bind := orDefault(cfg.BindAddress, "127.0.0.1")
	url := "https://" + net.JoinHostPort(bind, strconv.Itoa(ports[0]))
	args := []string{
		"--etcd-servers=" + cfg.EtcdURL,
		"--etcd-prefix=" + orDefault(cfg.EtcdPrefix, DefaultEtcdPrefix),
		"--bind-address=" + bind,
		"--advertise-address=" + bind,
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + dir,
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPub,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=" + orDefault(cfg.ServiceCIDR, DefaultServiceCIDR),
		"--service-node-port-range=" + orDefault(cfg.NodePortRange, DefaultNodePortRange),
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
	p, err := startProcess(ctx, KubeAPIServerBinary, bin, dir, mergeArgs(args, cfg.ExtraArgs))
	if err != nil {
		return nil, nil, err
	}
	rc := &rest.Config{
		Host: url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
	}
	probe, err := readyzProbe(rc)
	if err != nil {
		_ = p.Stop()
		return nil, nil, err
	}
	if err := waitReady(ctx, p, cfg.ReadyTimeout, probe); err != nil {
		_ = p.Stop()
		return nil, p, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, rc); err != nil {
		_ = p.Stop()
		return nil, nil, err
	}
	return &APIServer{
		URL:                   url,
		Config:                rc,
		Dir:                   dir,
		Kubeconfig:            kubeconfig,
		ServiceAccountKeyFile: pki.saKey,
		Process:               p,
	}, p, nil
}

// readyzProbe returns a probe that GETs /readyz with the admin credentials and wants "ok".
func readyzProbe(rc *rest.Config) (func(context.Context) error, error) {
	rt, err := rest.TransportFor(rc)
	if err != nil {
		return nil, fmt.Errorf("build admin transport: %w", err)
	}
	hc := &http.Client{Transport: rt}
	return func(ctx context.Context) error { return getOK(ctx, hc, rc.Host+"/readyz") }, nil
}

// getOK GETs url and wants 200 with body "ok".
func getOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8192))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return fmt.Errorf("get %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
