package peertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ErrNoAPIServer is returned when the controller manager gets a nil rest.Config.
var ErrNoAPIServer = errors.New("peertest: a kube-apiserver rest.Config is required")

// DefaultControllers returns the kube-controller-manager controllers that shape Service
// networking and workload objects: endpoints, EndpointSlices (and mirroring), ReplicaSets,
// Deployments, garbage collection, namespace deletion, default ServiceAccounts and
// ServiceCIDR status. Each call returns a new slice.
func DefaultControllers() []string {
	return []string{
		"endpoints-controller",
		"endpointslice-controller",
		"endpointslice-mirroring-controller",
		"replicaset-controller",
		"deployment-controller",
		"garbage-collector-controller",
		"namespace-controller",
		"serviceaccount-controller",
		"service-cidr-controller",
	}
}

// ControllerManagerConfig configures a peer kube-controller-manager. The zero value runs
// DefaultControllers without leader election.
type ControllerManagerConfig struct {
	// Controllers is --controllers; empty means DefaultControllers. "*" enables upstream's
	// default set.
	Controllers []string `json:"controllers,omitempty"`
	// ExtraArgs are appended to the generated flags; a --name=value here replaces the
	// generated flag of the same name.
	ExtraArgs []string `json:"extraArgs,omitempty"`
	// Dir holds the kubeconfig, the self-signed serving certificate and the log. Empty means
	// a temporary directory, removed by Stop (Run) or by the test (Start).
	Dir string `json:"dir,omitempty"`
	// ReadyTimeout bounds the wait for /healthz; zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration `json:"readyTimeout,omitempty"`
}

// ControllerManager is a running peer kube-controller-manager. Stop (from the embedded
// Process) ends it.
type ControllerManager struct {
	// HealthURL is the https://127.0.0.1:port/healthz endpoint (self-signed certificate).
	HealthURL string
	*Process
}

// StartKubeControllerManager starts kube-controller-manager v1.37.2 against the API server
// that apiserver reaches (for example the config StartKubeAPIServer returned) and waits for
// its /healthz. The process is stopped by tb.Cleanup.
func StartKubeControllerManager(tb testing.TB, apiserver *rest.Config, cfg ControllerManagerConfig) error {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	cm, err := RunKubeControllerManager(context.Background(), apiserver, cfg)
	if err != nil {
		return err
	}
	tieToTest(tb, cm.Process)
	return nil
}

// RunKubeControllerManager starts kube-controller-manager with the credentials of apiserver,
// --leader-elect=false and a secure port on 127.0.0.1, and waits for /healthz. It stops when
// ctx is done or when the caller calls Stop.
func RunKubeControllerManager(ctx context.Context, apiserver *rest.Config, cfg ControllerManagerConfig) (*ControllerManager, error) {
	if apiserver == nil {
		return nil, ErrNoAPIServer
	}
	bin, err := binary(KubeControllerManagerBinary)
	if err != nil {
		return nil, err
	}
	dir, cleanup, err := workDir(cfg.Dir, "kube-controller-manager")
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, apiserver); err != nil {
		cleanup()
		return nil, fmt.Errorf("run kube-controller-manager: %w", err)
	}
	cm, err := startWithRetry(func() (*ControllerManager, *Process, error) {
		return startKubeControllerManager(ctx, bin, dir, kubeconfig, cfg)
	})
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("run kube-controller-manager: %w", err)
	}
	cm.cleanup = cleanup
	return cm, nil
}

func startKubeControllerManager(ctx context.Context, bin, dir, kubeconfig string, cfg ControllerManagerConfig) (*ControllerManager, *Process, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, nil, err
	}
	controllers := cfg.Controllers
	if len(controllers) == 0 {
		controllers = DefaultControllers()
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(controllers, ","),
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + dir,
		"--profiling=false",
	}
	p, err := startProcess(ctx, KubeControllerManagerBinary, bin, dir, mergeArgs(args, cfg.ExtraArgs))
	if err != nil {
		return nil, nil, err
	}
	health := fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0])
	// The serving certificate is self-signed by the peer on loopback; there is nothing to verify.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	probe := func(ctx context.Context) error { return getOK(ctx, hc, health) }
	if err := waitReady(ctx, p, cfg.ReadyTimeout, probe); err != nil {
		_ = p.Stop()
		return nil, p, err
	}
	hc.CloseIdleConnections()
	return &ControllerManager{HealthURL: health, Process: p}, p, nil
}

// writeKubeconfig writes a kubeconfig file equivalent to rc (host, CA, client certificate or
// bearer token, inline data or file paths).
func writeKubeconfig(path string, rc *rest.Config) error {
	const name = "peertest"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   rc.Host,
		CertificateAuthority:     rc.CAFile,
		CertificateAuthorityData: rc.CAData,
		InsecureSkipTLSVerify:    rc.Insecure,
		TLSServerName:            rc.ServerName,
	}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificate:     rc.CertFile,
		ClientCertificateData: rc.CertData,
		ClientKey:             rc.KeyFile,
		ClientKeyData:         rc.KeyData,
		Token:                 rc.BearerToken,
		TokenFile:             rc.BearerTokenFile,
		Username:              rc.Username,
		Password:              rc.Password,
	}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}
